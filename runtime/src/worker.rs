//! The worker: polls a task queue through core, runs workflow activations on a dedicated
//! thread, and activities on the tokio runtime.

use std::{
    collections::HashMap,
    future::IntoFuture,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use futures::FutureExt;
use temporalio_common::{
    protos::{
        coresdk::{
            activity_result::{self, activity_execution_result, ActivityExecutionResult},
            activity_task::{activity_task, ActivityTask, Start},
            workflow_activation::WorkflowActivation,
            workflow_completion::WorkflowActivationCompletion,
            ActivityHeartbeat, ActivityTaskCompletion,
        },
        temporal::api::failure::v1::Failure as ProtoFailure,
    },
    telemetry::TelemetryOptions,
    worker::WorkerTaskTypes,
};
use temporalio_sdk_core::{
    init_worker, CoreRuntime, PollError, PollerBehavior, RuntimeOptions, Worker as CoreWorker,
    WorkerConfig, WorkerVersioningStrategy,
};

use crate::{
    activity::{ActivityContext, ActivityInfo, CancelReason, HeartbeatSink, Resources},
    client::Client,
    converter::{transcode, Codecs, Direction},
    definition::{ActivityDefinition, ActivityRegistry, ErasedActivity, WorkflowDefinition},
    failure::{ApplicationError, Error},
    interceptor::{ActivityInterceptor, WorkflowInterceptor},
    metrics::MetricMeter,
    workflow::executor::{panic_message, RunEnvironment, Runs, WorkflowRegistration},
};

/// Why a worker could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// The worker's configuration was refused (by core or the server).
    #[error("worker for task queue `{task_queue}` could not start: {message}")]
    Start {
        /// The task queue.
        task_queue: String,
        /// Why.
        message: String,
    },
    /// Polling failed for good (the server went away and core gave up retrying).
    #[error("worker for task queue `{task_queue}` stopped polling: {message}")]
    Poll {
        /// The task queue.
        task_queue: String,
        /// Why.
        message: String,
    },
}

/// Polls one task queue and runs the workflows and activities registered on it.
///
/// ```no_run
/// # async fn demo(client: capstan::Client) -> Result<(), capstan::WorkerError> {
/// capstan::Worker::new(&client, "fruit-orders")
///     // .register_workflow::<PurchaseFruitsWorkflow>()
///     // .register_activity(order_apples)
///     .run() // until Ctrl-C
///     .await
/// # }
/// ```
pub struct Worker {
    client: Client,
    task_queue: String,
    workflows: Vec<WorkflowRegistration>,
    activities: ActivityRegistry,
    max_concurrent_activities: usize,
    max_concurrent_workflow_tasks: usize,
    workflow_task_polls: usize,
    nonsticky_to_sticky_poll_ratio: f32,
    activity_task_polls: usize,
    max_cached_workflows: usize,
    sticky_schedule_to_start: Duration,
    graceful_shutdown: Duration,
    metrics: MetricMeter,
    activity_interceptors: Vec<Arc<dyn ActivityInterceptor>>,
    workflow_interceptors: Vec<Arc<dyn WorkflowInterceptor>>,
    resources: Resources,
}

impl Worker {
    /// A worker for `task_queue`, talking through `client`.
    pub fn new(client: &Client, task_queue: impl Into<String>) -> Self {
        Self {
            client: client.clone(),
            task_queue: task_queue.into(),
            workflows: Vec::new(),
            activities: ActivityRegistry::new(),
            max_concurrent_activities: 100,
            max_concurrent_workflow_tasks: 100,
            workflow_task_polls: 10,
            nonsticky_to_sticky_poll_ratio: 0.5,
            activity_task_polls: 5,
            max_cached_workflows: 1000,
            sticky_schedule_to_start: Duration::from_secs(10),
            graceful_shutdown: Duration::from_secs(10),
            metrics: MetricMeter::disabled(),
            activity_interceptors: Vec::new(),
            workflow_interceptors: Vec::new(),
            resources: Resources::default(),
        }
    }

    /// Shares `value` with every activity of this worker, which reads it with
    /// [`ActivityContext::resource`]: a connection pool, an HTTP client, a cache.
    pub fn resource<T: std::any::Any + Send + Sync>(mut self, value: T) -> Self {
        self.resources.insert(Arc::new(value));
        self
    }

    /// Records core's metrics and the contexts' metrics with `meter` (for example a
    /// [`PrometheusExporter`](crate::metrics::PrometheusExporter)'s).
    pub fn metrics(mut self, meter: MetricMeter) -> Self {
        self.metrics = meter;
        self
    }

    /// Runs `interceptor` around every activity attempt (the first added is outermost).
    pub fn activity_interceptor(mut self, interceptor: impl ActivityInterceptor) -> Self {
        self.activity_interceptors.push(Arc::new(interceptor));
        self
    }

    /// Runs `interceptor` around every workflow run (the first added is outermost).
    pub fn workflow_interceptor(mut self, interceptor: impl WorkflowInterceptor) -> Self {
        self.workflow_interceptors.push(Arc::new(interceptor));
        self
    }

    /// Registers a workflow type (a struct with `#[workflow]`).
    pub fn register_workflow<W: WorkflowDefinition>(mut self) -> Self {
        self.workflows.push(WorkflowRegistration::of::<W>());
        self
    }

    /// Registers an activity (a function with `#[activity]`).
    pub fn register_activity<A: ActivityDefinition>(mut self, activity: A) -> Self {
        self.activities
            .insert(A::NAME.to_owned(), Arc::new(activity));
        self
    }

    /// The most activities running at once (default 100).
    pub fn max_concurrent_activities(mut self, n: usize) -> Self {
        self.max_concurrent_activities = n.max(1);
        self
    }

    /// The most workflow tasks processed at once (default 100).
    pub fn max_concurrent_workflow_tasks(mut self, n: usize) -> Self {
        self.max_concurrent_workflow_tasks = n.max(2);
        self
    }

    /// The most workflow task polls held on the server at once (default 10): a share of
    /// them (see [`Worker::nonsticky_to_sticky_poll_ratio`]) on the task queue, where new
    /// workflows' first tasks wait, the rest on this worker's sticky queue, where its
    /// cached runs' tasks wait. One poll takes one task per round trip: with 1 of 5 on the
    /// task queue (Temporal's SDKs' default), starting workflows was the limit of a worker
    /// on the embedded engine (1,250 one-activity workflows a second, 1,800 with 5 of 10).
    pub fn max_concurrent_workflow_task_polls(mut self, n: usize) -> Self {
        self.workflow_task_polls = n.max(2);
        self
    }

    /// The task queue's share of the workflow task polls (default 0.5); the rest poll the
    /// sticky queue.
    pub fn nonsticky_to_sticky_poll_ratio(mut self, ratio: f32) -> Self {
        self.nonsticky_to_sticky_poll_ratio = ratio.clamp(0.0, 1.0);
        self
    }

    /// The most activity task polls held on the server at once (default 5).
    pub fn max_concurrent_activity_task_polls(mut self, n: usize) -> Self {
        self.activity_task_polls = n.max(1);
        self
    }

    /// The most workflow runs kept in memory between tasks (default 1000); others are
    /// replayed from history when they next have work.
    pub fn max_cached_workflows(mut self, n: usize) -> Self {
        self.max_cached_workflows = n;
        self
    }

    /// How long the server keeps this worker's next workflow task of a cached run on the
    /// worker's own (sticky) queue before giving it to any worker with the whole history
    /// (default 10 s). Shorter: faster recovery when a worker dies without shutting down.
    pub fn sticky_queue_schedule_to_start_timeout(mut self, timeout: Duration) -> Self {
        self.sticky_schedule_to_start = timeout;
        self
    }

    /// How long running activities may take to finish at shutdown before they are told
    /// to stop (default 10 s).
    pub fn graceful_shutdown(mut self, period: Duration) -> Self {
        self.graceful_shutdown = period;
        self
    }

    /// The task queue this worker polls.
    pub fn task_queue(&self) -> &str {
        &self.task_queue
    }

    /// What a replay of this worker's workflows needs: the client (for its namespace and
    /// codecs), the registered workflows, and how they run.
    #[cfg(feature = "testing")]
    pub(crate) fn replay_parts(&self) -> (Client, Vec<WorkflowRegistration>, RunEnvironment) {
        (
            self.client.clone(),
            self.workflows.clone(),
            self.run_environment(),
        )
    }

    fn run_environment(&self) -> RunEnvironment {
        RunEnvironment {
            namespace: self.client.namespace().to_owned(),
            task_queue: self.task_queue.clone(),
            metrics: self.metrics.with_labels([
                ("namespace", self.client.namespace().to_owned()),
                ("task_queue", self.task_queue.clone()),
            ]),
            interceptors: self.workflow_interceptors.clone(),
        }
    }

    /// The [schema manifest](crate::schema) of everything registered so far: names, the
    /// task queue, and the JSON Schema of every argument and result.
    pub fn manifest(&self) -> crate::schema::Manifest {
        let mut generator = crate::schema::generator();
        let workflows = self
            .workflows
            .iter()
            .map(|registration| (registration.describe)(&mut generator))
            .collect();
        let activities = self
            .activities
            .values()
            .map(|activity| activity.describe(&mut generator))
            .collect();
        crate::schema::Manifest::assemble(&self.task_queue, workflows, activities, generator)
    }

    /// Runs until Ctrl-C, then shuts down gracefully.
    pub async fn run(self) -> Result<(), WorkerError> {
        self.run_until(async {
            if tokio::signal::ctrl_c().await.is_err() {
                futures::future::pending::<()>().await;
            }
            tracing::info!("Ctrl-C: shutting the worker down");
        })
        .await
    }

    /// Runs while `until` runs, then shuts down gracefully and returns its output. Handy
    /// for programs and tests that start a worker, drive some workflows, and stop.
    pub async fn run_until<F: IntoFuture>(self, until: F) -> Result<F::Output, WorkerError> {
        let task_queue = self.task_queue.clone();
        let running = self.start().await?;
        let mut until = std::pin::pin!(until.into_future());
        let mut failed = std::pin::pin!(running.failed.clone().notified_owned());
        let output = tokio::select! {
            output = &mut until => Ok(output),
            () = &mut failed => Err(()),
        };
        let error = running.stop().await;
        match (output, error) {
            (Ok(output), None) => Ok(output),
            (_, Some(e)) => Err(e),
            (Err(()), None) => Err(WorkerError::Poll {
                task_queue,
                message: "polling stopped".to_owned(),
            }),
        }
    }

    async fn start(self) -> Result<Running, WorkerError> {
        let task_queue = self.task_queue.clone();
        let start_err = |message: String| WorkerError::Start {
            task_queue: task_queue.clone(),
            message,
        };
        let telemetry = TelemetryOptions::builder()
            .maybe_metrics(self.metrics.core())
            .build();
        let runtime_options = RuntimeOptions::builder()
            .telemetry_options(telemetry)
            .build()
            .map_err(|e| start_err(e.to_string()))?;
        let runtime =
            CoreRuntime::new_assume_tokio(runtime_options).map_err(|e| start_err(e.to_string()))?;
        let has_workflows = !self.workflows.is_empty();
        let has_activities = !self.activities.is_empty();
        if !has_workflows && !has_activities {
            return Err(start_err(
                "nothing registered: register a workflow or an activity".to_owned(),
            ));
        }
        let config = WorkerConfig::builder()
            .namespace(self.client.namespace().to_owned())
            .task_queue(self.task_queue.clone())
            .task_types(WorkerTaskTypes {
                enable_workflows: has_workflows,
                enable_local_activities: has_workflows && has_activities,
                enable_remote_activities: has_activities,
                enable_nexus: false,
            })
            .versioning_strategy(WorkerVersioningStrategy::None {
                build_id: format!("capstan-{}", env!("CARGO_PKG_VERSION")),
            })
            .max_cached_workflows(if has_workflows {
                self.max_cached_workflows
            } else {
                0
            })
            .sticky_queue_schedule_to_start_timeout(self.sticky_schedule_to_start)
            .max_outstanding_activities(self.max_concurrent_activities)
            .max_outstanding_local_activities(self.max_concurrent_activities)
            .max_outstanding_workflow_tasks(self.max_concurrent_workflow_tasks)
            .workflow_task_poller_behavior(PollerBehavior::SimpleMaximum(self.workflow_task_polls))
            .nonsticky_to_sticky_poll_ratio(self.nonsticky_to_sticky_poll_ratio)
            .activity_task_poller_behavior(PollerBehavior::SimpleMaximum(self.activity_task_polls))
            .graceful_shutdown_period(self.graceful_shutdown)
            .build()
            .map_err(start_err)?;
        let core = init_worker(&runtime, config, self.client.connection())
            .map_err(|e| start_err(e.to_string()))?;
        core.validate()
            .await
            .map_err(|e| start_err(e.to_string()))?;
        let core = Arc::new(core);
        let failed = Arc::new(tokio::sync::Notify::new());
        let fatal: Arc<Mutex<Option<String>>> = Arc::default();
        let mut tasks = Vec::new();
        if has_workflows {
            let environment = self.run_environment();
            let workflows = self.workflows.clone();
            tasks.extend(spawn_workflow_loops(
                core.clone(),
                self.client.codecs().clone(),
                move || Runs::new(&workflows, environment),
                |_: &WorkflowActivation| {},
                failed.clone(),
                fatal.clone(),
            ));
        }
        if has_activities {
            tasks.push(tokio::spawn(activity_loop(
                core.clone(),
                Arc::new(self.activities),
                ActivityEnvironment {
                    codecs: self.client.codecs().clone(),
                    namespace: self.client.namespace().to_owned(),
                    metrics: self
                        .metrics
                        .with_labels([("task_queue", self.task_queue.clone())]),
                    interceptors: self.activity_interceptors.clone(),
                    resources: self.resources.clone(),
                },
                failed.clone(),
                fatal.clone(),
            )));
        }
        tracing::info!(task_queue = %self.task_queue, "worker started");
        Ok(Running {
            core,
            runtime,
            tasks,
            failed,
            fatal,
            task_queue: self.task_queue,
        })
    }
}

/// A started worker.
struct Running {
    core: Arc<CoreWorker>,
    runtime: CoreRuntime,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    failed: Arc<tokio::sync::Notify>,
    fatal: Arc<Mutex<Option<String>>>,
    task_queue: String,
}

impl Running {
    /// Shuts down gracefully: stops polling, lets running tasks finish, and returns the
    /// fatal error that stopped polling, if one did.
    async fn stop(self) -> Option<WorkerError> {
        self.core.initiate_shutdown();
        for task in self.tasks {
            let _ = task.await;
        }
        // Activity contexts kept by user code hold only weak references; the poll loops
        // have ended, so this is the last strong one unless a completion is in flight.
        let mut core = self.core;
        for _ in 0..100 {
            match Arc::try_unwrap(core) {
                Ok(worker) => {
                    worker.finalize_shutdown().await;
                    break;
                }
                Err(shared) => {
                    core = shared;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        drop(self.runtime);
        let fatal = self.fatal.lock().expect("fatal lock").take();
        fatal.map(|message| WorkerError::Poll {
            task_queue: self.task_queue,
            message,
        })
    }
}

fn report_fatal(fatal: &Mutex<Option<String>>, failed: &tokio::sync::Notify, message: String) {
    tracing::error!("{message}");
    fatal.lock().expect("fatal lock").get_or_insert(message);
    failed.notify_one();
}

/// Starts the workflow thread: it polls core for activations, runs them, and sends their
/// completions back; `inspect` sees each decoded activation before it runs (the replayer
/// watches for evictions). The returned task ends when the thread does.
///
/// Polling, decoding and completing are async (core, codecs), so the thread drives them
/// on a runtime of its own; completions run as local tasks while the next activation is
/// awaited. One thread from poll to completion: an activation crosses no thread of
/// Capstan's on its way (a hand-off between threads costs a wake-up and often a context
/// switch, a large part of a short activation's cost).
pub(crate) fn spawn_workflow_loops(
    core: Arc<CoreWorker>,
    codecs: Codecs,
    make_runs: impl FnOnce() -> Runs + Send + 'static,
    inspect: impl Fn(&WorkflowActivation) + Send + 'static,
    failed: Arc<tokio::sync::Notify>,
    fatal: Arc<Mutex<Option<String>>>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let (finished, thread_finished) = tokio::sync::oneshot::channel::<()>();
    // Workflow futures are not `Send`: every run lives on this one thread.
    std::thread::Builder::new()
        .name("capstan-workflows".to_owned())
        .spawn(move || {
            // Timers only, no IO driver: the thread then sleeps on a futex, not in epoll,
            // and core wakes it without an eventfd write per activation (in a profile of
            // short replays, 30% of the samples were those writes).
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let message = format!("the workflow thread could not start: {e}");
                    return report_fatal(&fatal, &failed, message);
                }
            };
            let completions = tokio::task::LocalSet::new();
            let mut runs = make_runs();
            while let Some(activation) =
                completions.block_on(&runtime, next_activation(&core, &codecs, &fatal, &failed))
            {
                inspect(&activation);
                // Outside `block_on`, the thread is in no runtime's context: workflow
                // code that reaches for tokio (a spawn, a timer) fails at once, as it
                // must, instead of running outside the replayable executor.
                let completion = runs.activate(activation);
                completions.spawn_local(complete_activation(
                    core.clone(),
                    codecs.clone(),
                    completion,
                ));
            }
            // Shut down: the completions still in flight go out first.
            runtime.block_on(completions);
            drop(finished);
        })
        .expect("spawning the workflow thread");
    vec![tokio::spawn(async move {
        let _ = thread_finished.await;
    })]
}

/// The next decoded activation, or `None` once core shuts down or polling fails for
/// good (reported as fatal). An activation the codecs cannot decode fails its workflow
/// task and is skipped.
async fn next_activation(
    core: &CoreWorker,
    codecs: &Codecs,
    fatal: &Mutex<Option<String>>,
    failed: &tokio::sync::Notify,
) -> Option<WorkflowActivation> {
    loop {
        match core.poll_workflow_activation().await {
            Ok(mut activation) => {
                if let Err(e) = transcode(codecs, &mut activation, Direction::Decode).await {
                    let completion = codec_failure(activation.run_id.clone(), &e);
                    if let Err(e) = core.complete_workflow_activation(completion).await {
                        tracing::error!("failing an undecodable activation failed: {e}");
                    }
                    continue;
                }
                return Some(activation);
            }
            Err(PollError::ShutDown) => return None,
            Err(e) => {
                report_fatal(fatal, failed, format!("workflow polling failed: {e}"));
                return None;
            }
        }
    }
}

/// Encodes a completion's payloads and hands it to core (which answers the server when
/// the completion ends a workflow task).
async fn complete_activation(
    core: Arc<CoreWorker>,
    codecs: Codecs,
    mut completion: WorkflowActivationCompletion,
) {
    if let Err(e) = transcode(&codecs, &mut completion, Direction::Encode).await {
        completion = codec_failure(completion.run_id.clone(), &e);
    }
    if let Err(e) = core.complete_workflow_activation(completion).await {
        tracing::error!("completing a workflow activation failed: {e}");
    }
}

/// The failed completion of an activation whose payloads the codecs could not handle:
/// the workflow task fails and is retried, the payloads stay untouched in the history.
fn codec_failure(
    run_id: String,
    error: &crate::converter::PayloadError,
) -> WorkflowActivationCompletion {
    WorkflowActivationCompletion::fail(
        run_id,
        ProtoFailure {
            message: error.to_string(),
            source: crate::failure::FAILURE_SOURCE.to_owned(),
            ..Default::default()
        },
        None,
    )
}

struct CoreHeartbeats {
    core: Weak<CoreWorker>,
    codecs: Codecs,
}

impl HeartbeatSink for CoreHeartbeats {
    fn record_heartbeat(&self, mut heartbeat: ActivityHeartbeat) {
        match self.codecs.encode(std::mem::take(&mut heartbeat.details)) {
            Ok(details) => heartbeat.details = details,
            Err(e) => {
                tracing::warn!("heartbeat details dropped: {e}");
                return;
            }
        }
        if let Some(core) = self.core.upgrade() {
            core.record_activity_heartbeat(heartbeat);
        }
    }
}

/// What every activity of a worker shares.
struct ActivityEnvironment {
    codecs: Codecs,
    namespace: String,
    metrics: MetricMeter,
    interceptors: Vec<Arc<dyn ActivityInterceptor>>,
    resources: Resources,
}

async fn activity_loop(
    core: Arc<CoreWorker>,
    activities: Arc<ActivityRegistry>,
    environment: ActivityEnvironment,
    failed: Arc<tokio::sync::Notify>,
    fatal: Arc<Mutex<Option<String>>>,
) {
    let ActivityEnvironment {
        codecs,
        namespace,
        metrics,
        interceptors,
        resources,
    } = environment;
    let interceptors = Arc::new(interceptors);
    let running: Arc<Mutex<HashMap<Vec<u8>, ActivityContext>>> = Arc::default();
    let sink: Arc<dyn HeartbeatSink> = Arc::new(CoreHeartbeats {
        core: Arc::downgrade(&core),
        codecs: codecs.clone(),
    });
    let mut in_flight = tokio::task::JoinSet::new();
    loop {
        let mut task = match core.poll_activity_task().await {
            Ok(task) => task,
            Err(PollError::ShutDown) => break,
            Err(e) => {
                report_fatal(&fatal, &failed, format!("activity polling failed: {e}"));
                break;
            }
        };
        let undecodable = transcode(&codecs, &mut task, Direction::Decode)
            .await
            .err()
            .map(|e| e.to_string());
        let ActivityTask {
            task_token,
            variant,
        } = task;
        match variant {
            Some(activity_task::Variant::Start(start)) => {
                let ctx = ActivityContext::new(
                    activity_info(&start, &namespace, task_token.clone()),
                    start.heartbeat_details.clone(),
                    Some(sink.clone()),
                    metrics.clone(),
                    resources.clone(),
                );
                running
                    .lock()
                    .expect("activities lock")
                    .insert(task_token.clone(), ctx.clone());
                let activity = activities.get(&start.activity_type).cloned();
                let known: Vec<String> = activities.keys().cloned().collect();
                let (core, running, codecs) = (core.clone(), running.clone(), codecs.clone());
                let interceptors = interceptors.clone();
                in_flight.spawn(async move {
                    let mut result = match undecodable {
                        None => run_activity(activity, ctx, start, known, &interceptors).await,
                        Some(e) => failed_result(ApplicationError::new("PayloadError", e).into()),
                    };
                    if let Err(e) = transcode(&codecs, &mut result, Direction::Encode).await {
                        result = failed_result(
                            ApplicationError::new("PayloadError", e.to_string()).into(),
                        );
                    }
                    running.lock().expect("activities lock").remove(&task_token);
                    if let Err(e) = core
                        .complete_activity_task(ActivityTaskCompletion {
                            task_token,
                            result: Some(result),
                        })
                        .await
                    {
                        tracing::error!("completing an activity failed: {e}");
                    }
                });
            }
            Some(activity_task::Variant::Cancel(cancel)) => {
                if let Some(ctx) = running.lock().expect("activities lock").get(&task_token) {
                    ctx.cancel(CancelReason::from_proto(cancel.reason));
                }
            }
            None => {}
        }
    }
    while in_flight.join_next().await.is_some() {}
}

fn activity_info(start: &Start, namespace: &str, task_token: Vec<u8>) -> ActivityInfo {
    let execution = start.workflow_execution.clone().unwrap_or_default();
    ActivityInfo {
        activity_id: start.activity_id.clone(),
        activity_type: start.activity_type.clone(),
        attempt: start.attempt,
        workflow_id: execution.workflow_id,
        workflow_run_id: execution.run_id,
        workflow_type: start.workflow_type.clone(),
        namespace: if start.workflow_namespace.is_empty() {
            namespace.to_owned()
        } else {
            start.workflow_namespace.clone()
        },
        heartbeat_timeout: start
            .heartbeat_timeout
            .and_then(|d| Duration::try_from(d).ok()),
        start_to_close_timeout: start
            .start_to_close_timeout
            .and_then(|d| Duration::try_from(d).ok()),
        current_attempt_scheduled_time: start
            .current_attempt_scheduled_time
            .and_then(|t| std::time::SystemTime::try_from(t).ok()),
        started_time: start
            .started_time
            .and_then(|t| std::time::SystemTime::try_from(t).ok()),
        scheduled_time: start
            .scheduled_time
            .and_then(|t| std::time::SystemTime::try_from(t).ok()),
        is_local: start.is_local,
        task_token,
    }
}

async fn run_activity(
    activity: Option<Arc<dyn ErasedActivity>>,
    ctx: ActivityContext,
    start: Start,
    known: Vec<String>,
    interceptors: &[Arc<dyn ActivityInterceptor>],
) -> ActivityExecutionResult {
    let Some(activity) = activity else {
        let error: Error = ApplicationError::new(
            "NotFoundError",
            format!(
                "activity type `{}` is not registered on this worker; registered: {}",
                start.activity_type,
                known.join(", ")
            ),
        )
        .into();
        return failed_result(error);
    };
    let mut attempt = activity.execute(ctx.clone(), start.input);
    for interceptor in interceptors.iter().rev() {
        attempt = interceptor.execute_activity(ctx.clone(), attempt);
    }
    let outcome = std::panic::AssertUnwindSafe(attempt).catch_unwind().await;
    match outcome {
        Ok(Ok(result)) => ActivityExecutionResult {
            status: Some(activity_execution_result::Status::Completed(
                activity_result::Success {
                    result: Some(result),
                },
            )),
        },
        Ok(Err(error))
            if error.is_cancelled() || (ctx.is_cancelled() && is_cancel_like(&error)) =>
        {
            let failure = error
                .as_failure()
                .map(|f| f.into_proto())
                .unwrap_or_default();
            ActivityExecutionResult {
                status: Some(activity_execution_result::Status::Cancelled(
                    activity_result::Cancellation {
                        failure: Some(failure),
                    },
                )),
            }
        }
        Ok(Err(error)) => failed_result(error),
        Err(panic) => failed_result(
            ApplicationError::new(
                "Panic",
                format!(
                    "activity `{}` panicked: {}",
                    start.activity_type,
                    panic_message(&*panic)
                ),
            )
            .into(),
        ),
    }
}

fn is_cancel_like(error: &Error) -> bool {
    error.as_failure().is_some_and(|f| f.is_cancelled())
}

fn failed_result(error: Error) -> ActivityExecutionResult {
    let failure: ProtoFailure = error
        .as_failure()
        .map(|f| f.into_proto())
        .unwrap_or_default();
    ActivityExecutionResult {
        status: Some(activity_execution_result::Status::Failed(
            activity_result::Failure {
                failure: Some(failure),
                ..Default::default()
            },
        )),
    }
}
