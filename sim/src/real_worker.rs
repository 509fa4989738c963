//! The part of a seed that runs on a real Capstan worker (sdk-core underneath): `Errand`
//! workflows, through the same faults as the simulated worker's. Their histories must
//! also replay through Capstan's `Replayer` with no nondeterminism.
//!
//! On by default (`capstan-sim ... --simulated-only` turns it off). It found a lost
//! cancel request (runtime), an abort at the end of a run, queued tasks kept after their
//! run closed, and histories with an event inside a workflow task (engine): each is
//! fixed and kept in `sim/regressions.txt`.

use std::time::Duration;

use capstan::{
    prelude::*,
    testing::{CapturedHistory, Replayer},
};
use tokio::{sync::oneshot, task::JoinHandle};

use crate::{
    checks::Violation,
    proto::{History, HistoryEvent},
};

/// The task queue the real worker polls.
pub const TASK_QUEUE: &str = "sim-capstan";
/// The workflow type of an errand.
pub const WORKFLOW_TYPE: &str = "Errand";

/// What an errand is told.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ErrandInput {
    /// Its workflow's number, named by its result.
    pub w: u32,
    /// Attempts of its activity that fail.
    pub fail_first: u32,
    /// How long it sleeps after the activity.
    pub sleep_seconds: u64,
}

/// Fails its first `fail_first` attempts, then names the errand.
#[activity]
pub async fn flaky_errand(
    ctx: ActivityContext,
    input: ErrandInput,
) -> Result<String, ActivityError> {
    let attempt = ctx.info().attempt;
    if attempt <= input.fail_first {
        return Err(ApplicationError::new("SimFlaky", format!("attempt {attempt} fails")).into());
    }
    Ok(format!("errand-{}", input.w))
}

/// Runs its activity (retried until it succeeds), sleeps, waits for a signal, and
/// answers both.
#[workflow]
#[derive(Default)]
pub struct Errand {
    notes: Vec<String>,
}

#[workflow]
impl Errand {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>, input: ErrandInput) -> WorkflowResult<String> {
        let done = ctx
            .activity(flaky_errand, input.clone())
            .start_to_close_timeout(Duration::from_secs(30))
            .retry_policy(RetryPolicy {
                initial_interval: Some(Duration::from_secs(1)),
                maximum_interval: Some(Duration::from_secs(10)),
                ..RetryPolicy::default()
            })
            .await?;
        ctx.sleep(Duration::from_secs(input.sleep_seconds)).await?;
        ctx.wait_condition(|s| !s.notes.is_empty()).await?;
        Ok(format!("{done}:{}", ctx.state(|s| s.notes[0].clone())))
    }

    /// The simulator's signal: a note.
    #[signal(name = "sig")]
    pub fn note(&mut self, text: String) {
        self.notes.push(text);
    }

    /// The simulator's query: how many notes came.
    #[query(name = "signals")]
    pub fn count(&self) -> String {
        format!("signals:{}", self.notes.len())
    }
}

/// The result a completed errand must have: its number and its first note.
pub fn expected_result(w: usize, events: &[HistoryEvent]) -> String {
    let first = crate::scripts::signals(events)
        .into_iter()
        .next()
        .unwrap_or_default();
    format!("errand-{w}:{first}")
}

fn registered(client: &Client) -> Worker {
    Worker::new(client, TASK_QUEUE)
        .register_workflow::<Errand>()
        .register_activity(flaky_errand)
        .graceful_shutdown(Duration::from_millis(200))
}

/// A Capstan worker polling the engine at `address`, until stopped.
pub struct RealWorker {
    client: Client,
    stop: Option<oneshot::Sender<()>>,
    running: JoinHandle<Result<(), String>>,
}

impl RealWorker {
    pub async fn start(address: &str) -> anyhow::Result<Self> {
        let client = tokio::time::timeout(Duration::from_secs(30), Client::connect(address))
            .await
            .map_err(|_| {
                anyhow::anyhow!("the real worker's client did not connect within 30 s")
            })??;
        let worker = registered(&client);
        let (stop, stopped) = oneshot::channel::<()>();
        let running = tokio::spawn(async move {
            worker
                .run_until(async move {
                    let _ = stopped.await;
                })
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        });
        Ok(Self {
            client,
            stop: Some(stop),
            running,
        })
    }

    /// Whether the worker stopped on its own (an error it could not get past).
    pub fn failed(&self) -> bool {
        self.running.is_finished()
    }

    /// Replays `histories` (workflow id, events) through Capstan's `Replayer`.
    pub async fn replay(
        &self,
        histories: Vec<(String, Vec<HistoryEvent>)>,
    ) -> Result<usize, Violation> {
        let count = histories.len();
        // Kept cheap (event types only), and written out only if the replay fails.
        let shapes: Vec<(String, Vec<crate::proto::EventType>)> = histories
            .iter()
            .map(|(_, events)| {
                let run = events
                    .first()
                    .and_then(|e| match &e.attributes {
                        Some(crate::proto::Event::WorkflowExecutionStartedEventAttributes(a)) => {
                            Some(a.original_execution_run_id.clone())
                        }
                        _ => None,
                    })
                    .unwrap_or_default();
                (run, events.iter().map(crate::proto::event_type).collect())
            })
            .collect();
        let captured = histories
            .into_iter()
            .map(|(workflow_id, events)| CapturedHistory {
                source: format!("the simulator's run of {workflow_id}"),
                workflow_id,
                history: History { events },
            })
            .collect();
        let replayer = Replayer::new(&registered(&self.client));
        match tokio::time::timeout(Duration::from_secs(60), replayer.replay(captured)).await {
            Ok(Ok(())) => Ok(count),
            Ok(Err(e)) => Err(Violation::new(format!(
                "an errand's history does not replay: {e}\nthe histories given:\n{}",
                shapes
                    .iter()
                    .map(|(run, types)| format!("run {run}: {types:?}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ))),
            Err(_) => Err(Violation::new(
                "replaying the errands' histories did not finish within 60 s",
            )),
        }
    }

    /// Stops the worker; answers what it stopped with if it stopped on its own.
    pub async fn stop(mut self) -> Option<String> {
        let stopped_alone = self.running.is_finished();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let outcome = tokio::time::timeout(Duration::from_secs(10), &mut self.running).await;
        match outcome {
            Ok(Ok(Err(e))) if stopped_alone => Some(e),
            Ok(Err(e)) => Some(format!("the worker task failed: {e}")),
            Err(_) => {
                self.running.abort();
                Some("the worker did not stop within 10 s".to_owned())
            }
            _ => None,
        }
    }
}
