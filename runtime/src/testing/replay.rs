//! Replay tests: captured histories run against the current workflow code, which must
//! issue the same commands the history records.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use futures::stream;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage, SerializeOptions};
use temporalio_common::{
    protos::{
        coresdk::workflow_activation::{
            remove_from_cache::EvictionReason, workflow_activation_job::Variant, WorkflowActivation,
        },
        temporal::api::history::v1::History,
    },
    worker::WorkerTaskTypes,
};
use temporalio_sdk_core::{
    init_replay_worker,
    replay::{HistoryForReplay, HistoryInfo, ReplayWorkerInput},
    WorkerConfig, WorkerVersioningStrategy,
};

use crate::{
    client::Client,
    worker::{spawn_workflow_loops, Worker},
    workflow::executor::{RunEnvironment, Runs, WorkflowRegistration},
};

/// Why a replay failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The workflow code no longer issues the commands its history records.
    #[error(
        "workflow `{workflow_id}` (type `{workflow_type}`, history {history}) is no longer \
         deterministic: {message}\nhint: guard the change with `ctx.patched(\"…\")` so that \
         runs started before it keep the old behaviour"
    )]
    Nondeterminism {
        /// The workflow id the history was replayed as.
        workflow_id: String,
        /// The workflow type.
        workflow_type: String,
        /// Where the history came from.
        history: String,
        /// Core's message: the first command and event that do not match.
        message: String,
    },
    /// The replay failed for another reason (the workflow panicked, its type is not
    /// registered, the history is malformed).
    #[error(
        "replaying workflow `{workflow_id}` (type `{workflow_type}`, history {history}) \
         failed ({reason}): {message}"
    )]
    Failed {
        /// The workflow id the history was replayed as.
        workflow_id: String,
        /// The workflow type.
        workflow_type: String,
        /// Where the history came from.
        history: String,
        /// Core's eviction reason.
        reason: String,
        /// What went wrong.
        message: String,
    },
    /// A history file could not be read, decoded or written.
    #[error("history {path}: {message}")]
    History {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The replay worker could not run.
    #[error("the replay worker failed: {0}")]
    Worker(String),
}

/// A history to replay, with the workflow id it is replayed as (histories do not record
/// their workflow id).
#[derive(Debug, Clone)]
pub struct CapturedHistory {
    /// The workflow id.
    pub workflow_id: String,
    /// Where the history came from, for messages (a file name).
    pub source: String,
    /// The events.
    pub history: History,
}

impl CapturedHistory {
    /// Reads a history in Temporal's proto JSON, as written by
    /// `temporal workflow show --output json` or [`save_history`]; the workflow id is the
    /// file name without its extension.
    pub fn from_file(path: impl AsRef<Path>) -> Result<CapturedHistory, ReplayError> {
        let path = path.as_ref();
        let error = |message: String| ReplayError::History {
            path: path.to_owned(),
            message,
        };
        let json = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        Ok(CapturedHistory {
            workflow_id: path
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_default(),
            source: path.display().to_string(),
            history: history_from_json(&json).map_err(error)?,
        })
    }
}

/// Replays captured histories against the workflows registered on a [`Worker`], and fails
/// with the first history the current code no longer replays: its workflow id, and core's
/// message naming the first command and event that do not match.
///
/// Nothing is polled and no activity runs: a replay only checks that the workflow code
/// issues the commands its history records. The worker's client is used only for its
/// namespace and payload codecs.
///
/// ```no_run
/// # async fn demo(client: capstan::Client) -> Result<(), capstan::testing::ReplayError> {
/// use capstan::testing::Replayer;
///
/// let worker = capstan::Worker::new(&client, "fruit-orders");
///     // .register_workflow::<PurchaseFruitsWorkflow>();
/// // Histories captured with `temporal workflow show -w <id> --output json > <id>.json`.
/// Replayer::new(&worker).replay_dir("histories").await?;
/// # Ok(())
/// # }
/// ```
pub struct Replayer {
    client: Client,
    workflows: Vec<WorkflowRegistration>,
    environment: RunEnvironment,
}

impl Replayer {
    /// A replayer for the workflows registered on `worker`.
    pub fn new(worker: &Worker) -> Replayer {
        let (client, workflows, environment) = worker.replay_parts();
        Replayer {
            client,
            workflows,
            environment,
        }
    }

    /// Replays every `*.json` file of `dir` (see [`CapturedHistory::from_file`]), in file
    /// name order, and returns how many were replayed.
    pub async fn replay_dir(&self, dir: impl AsRef<Path>) -> Result<usize, ReplayError> {
        let dir = dir.as_ref();
        let listing = std::fs::read_dir(dir).map_err(|e| ReplayError::History {
            path: dir.to_owned(),
            message: e.to_string(),
        })?;
        let mut paths: Vec<PathBuf> = listing
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        paths.sort();
        let histories = paths
            .iter()
            .map(CapturedHistory::from_file)
            .collect::<Result<Vec<_>, _>>()?;
        let count = histories.len();
        self.replay(histories).await?;
        Ok(count)
    }

    /// Replays `histories` one after another and returns the first failure.
    ///
    /// Each history gets a replay worker of its own: core's replay worker, given several,
    /// can shut down with the last one still waiting for the workflow cache and never
    /// replay it (seen with histories of one workflow id whose runs were terminated).
    pub async fn replay(&self, histories: Vec<CapturedHistory>) -> Result<(), ReplayError> {
        for history in histories {
            self.replay_one(history).await?;
        }
        Ok(())
    }

    /// Replays one history on a replay worker of its own.
    async fn replay_one(&self, history: CapturedHistory) -> Result<(), ReplayError> {
        // Core's replay worker panics (in its poller, so the replay would end with the
        // history never run) on a history it cannot take: it is checked here first.
        let refused = |message: String| ReplayError::History {
            path: history.source.clone().into(),
            message,
        };
        let run_id = history
            .history
            .extract_run_id_from_start()
            .map_err(|e| refused(format!("does not start with a workflow execution: {e}")))?
            .to_owned();
        HistoryInfo::new_from_history(&history.history, None)
            .map_err(|e| refused(format!("is not a well-formed history: {e}")))?;
        let source = history.source;
        let feed = vec![HistoryForReplay::new(history.history, history.workflow_id)];
        let config = WorkerConfig::builder()
            .namespace(self.client.namespace().to_owned())
            .task_queue(self.environment.task_queue.clone())
            .task_types(WorkerTaskTypes::workflow_only())
            .versioning_strategy(WorkerVersioningStrategy::None {
                build_id: format!("capstan-replay-{}", env!("CARGO_PKG_VERSION")),
            })
            .max_cached_workflows(1_usize)
            .build()
            .map_err(ReplayError::Worker)?;
        let core = init_replay_worker(ReplayWorkerInput::new(config, stream::iter(feed)))
            .map_err(|e| ReplayError::Worker(e.to_string()))?;
        let core = Arc::new(core);
        let watcher = Arc::new(Mutex::new(EvictionWatcher::default()));
        let failed = Arc::new(tokio::sync::Notify::new());
        let fatal: Arc<Mutex<Option<String>>> = Arc::default();
        let (workflows, environment) = (self.workflows.clone(), self.environment.clone());
        let tasks = spawn_workflow_loops(
            core.clone(),
            self.client.codecs().clone(),
            move || Runs::new(&workflows, environment),
            {
                let watcher = watcher.clone();
                move |activation: &WorkflowActivation| {
                    watcher.lock().expect("watcher lock").watch(activation)
                }
            },
            failed,
            fatal.clone(),
        );
        // The replay worker shuts itself down once every history has been replayed.
        for task in tasks {
            let _ = task.await;
        }
        if let Ok(worker) = Arc::try_unwrap(core) {
            worker.finalize_shutdown().await;
        }
        if let Some(message) = fatal.lock().expect("fatal lock").take() {
            return Err(ReplayError::Worker(message));
        }
        let watcher = std::mem::take(&mut *watcher.lock().expect("watcher lock"));
        match watcher.failures.into_iter().next() {
            // A history the worker never started would otherwise pass unnoticed.
            None if !watcher.runs.contains_key(&run_id) => Err(ReplayError::History {
                path: source.into(),
                message: format!("the replay worker never started its workflow (run {run_id})"),
            }),
            None => Ok(()),
            Some((run, reason, message)) => {
                let (workflow_id, workflow_type) = run;
                Err(if reason == EvictionReason::Nondeterminism {
                    ReplayError::Nondeterminism {
                        workflow_id,
                        workflow_type,
                        history: source,
                        message,
                    }
                } else {
                    ReplayError::Failed {
                        workflow_id,
                        workflow_type,
                        history: source,
                        reason: reason.as_str_name().to_owned(),
                        message,
                    }
                })
            }
        }
    }
}

/// Follows the activations of a replay and keeps the evictions that mean it failed.
#[derive(Default)]
struct EvictionWatcher {
    /// Run id → (workflow id, workflow type).
    runs: HashMap<String, (String, String)>,
    failures: Vec<((String, String), EvictionReason, String)>,
}

impl EvictionWatcher {
    fn watch(&mut self, activation: &WorkflowActivation) {
        for job in &activation.jobs {
            match &job.variant {
                Some(Variant::InitializeWorkflow(start)) => {
                    self.runs.insert(
                        activation.run_id.clone(),
                        (start.workflow_id.clone(), start.workflow_type.clone()),
                    );
                }
                Some(Variant::RemoveFromCache(eviction)) => {
                    let reason = eviction.reason();
                    // The replay worker evicts every run once it is replayed; those and
                    // cache pressure are not failures.
                    if matches!(
                        reason,
                        EvictionReason::LangRequested
                            | EvictionReason::CacheFull
                            | EvictionReason::WorkflowExecutionEnding
                    ) {
                        continue;
                    }
                    let run = self
                        .runs
                        .get(&activation.run_id)
                        .cloned()
                        .unwrap_or_else(|| (activation.run_id.clone(), String::new()));
                    self.failures
                        .push((run, reason, core_message(&eviction.message)));
                }
                _ => {}
            }
        }
    }
}

/// Core reports a failed activation as the `Debug` text of the whole failure; its
/// `message` is what names the command and event that do not match.
fn core_message(eviction: &str) -> String {
    const START: &str = "message: \"";
    eviction
        .split_once(START)
        .and_then(|(_, rest)| rest.split_once("\", source: "))
        .map_or_else(|| eviction.to_owned(), |(message, _)| message.to_owned())
}

/// The Temporal API's descriptors, for the proto JSON mapping.
fn descriptors() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        DescriptorPool::decode(include_bytes!(env!("CAPSTAN_TEMPORAL_DESCRIPTORS")).as_slice())
            .expect("temporalio-protos' descriptor set decodes")
    })
}

fn history_descriptor() -> prost_reflect::MessageDescriptor {
    descriptors()
        .get_message_by_name("temporal.api.history.v1.History")
        .expect("the descriptor set holds temporal.api.history.v1.History")
}

/// Decodes a history from Temporal's proto JSON (`{"events": [...]}` with camelCase
/// fields, enum names and 64-bit integers as strings), the format of
/// `temporal workflow show --output json`.
pub fn history_from_json(json: &str) -> Result<History, String> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    let message = DynamicMessage::deserialize_with_options(
        history_descriptor(),
        &mut deserializer,
        &DeserializeOptions::new().deny_unknown_fields(false),
    )
    .map_err(|e| format!("not a history in Temporal's proto JSON: {e}"))?;
    deserializer.end().map_err(|e| e.to_string())?;
    History::decode(message.encode_to_vec().as_slice()).map_err(|e| e.to_string())
}

/// Encodes a history as Temporal's proto JSON, the format [`history_from_json`] and the
/// `temporal` CLI read.
pub fn history_to_json(history: &History) -> Result<String, String> {
    let message = DynamicMessage::decode(history_descriptor(), history.encode_to_vec().as_slice())
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::pretty(&mut out);
    message
        .serialize_with_options(&mut serializer, &SerializeOptions::new())
        .map_err(|e| e.to_string())?;
    String::from_utf8(out).map_err(|e| e.to_string())
}

/// Writes the history of workflow `workflow_id`'s latest run to `path` as proto JSON, for
/// [`Replayer::replay_dir`] (name the file `<workflow id>.json`).
pub async fn save_history(
    client: &Client,
    workflow_id: &str,
    path: impl AsRef<Path>,
) -> Result<(), ReplayError> {
    let path = path.as_ref();
    let error = |message: String| ReplayError::History {
        path: path.to_owned(),
        message,
    };
    let events = client
        .workflow_handle(workflow_id)
        .history()
        .await
        .map_err(|e| error(e.to_string()))?;
    let json = history_to_json(&History { events }).map_err(error)?;
    std::fs::write(path, json + "\n").map_err(|e| error(e.to_string()))
}

#[cfg(test)]
mod tests {
    use temporalio_common::protos::temporal::api::{
        enums::v1::EventType,
        history::v1::{history_event::Attributes, HistoryEvent, TimerStartedEventAttributes},
    };

    use super::*;

    #[test]
    fn histories_round_trip_through_proto_json() {
        let history = History {
            events: vec![HistoryEvent {
                event_id: 5,
                event_type: EventType::TimerStarted as i32,
                attributes: Some(Attributes::TimerStartedEventAttributes(
                    TimerStartedEventAttributes {
                        timer_id: "1".to_owned(),
                        start_to_fire_timeout: Some(
                            std::time::Duration::from_secs(2).try_into().unwrap(),
                        ),
                        workflow_task_completed_event_id: 4,
                    },
                )),
                ..Default::default()
            }],
        };
        let json = history_to_json(&history).unwrap();
        assert!(
            json.contains("\"eventType\": \"EVENT_TYPE_TIMER_STARTED\""),
            "{json}"
        );
        assert!(json.contains("\"eventId\": \"5\""), "{json}");
        assert!(json.contains("\"startToFireTimeout\": \"2s\""), "{json}");
        assert_eq!(history_from_json(&json).unwrap(), history);
    }

    #[test]
    fn core_messages_are_unwrapped_from_the_failure() {
        let eviction = "Workflow activation completion failed: Failure { failure: Some(Failure { \
                        message: \"[TMPRL1100] Nondeterminism error: Timer machine does not \
                        handle this event: HistoryEvent(id: 5, ActivityTaskScheduled)\", \
                        source: \"\", stack_trace: \"\" }) }";
        assert_eq!(
            core_message(eviction),
            "[TMPRL1100] Nondeterminism error: Timer machine does not handle this event: \
             HistoryEvent(id: 5, ActivityTaskScheduled)"
        );
        assert_eq!(core_message("plain"), "plain");
    }
}
