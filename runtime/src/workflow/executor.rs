//! The deterministic executor: one instance per workflow run, fed core's activations, each
//! answered with the commands the workflow's futures produced.
//!
//! Every run is single-threaded: the run function and its handlers are futures polled in
//! the order they were created, until none can make progress. Conditions are re-checked
//! whenever state may have changed. Nothing here reads a clock or a random source: time,
//! randomness and patch decisions come from core, so a replay takes the same path.

use std::{
    cell::RefCell,
    collections::{BTreeMap, HashMap},
    panic::{catch_unwind, AssertUnwindSafe},
    rc::Rc,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{Context, Poll},
    time::{Duration, SystemTime},
};

use futures::task::{waker, ArcWake};
use temporalio_common::protos::{
    coresdk::{
        workflow_activation::{
            workflow_activation_job::Variant as Job, DoUpdate, InitializeWorkflow, QueryWorkflow,
            SignalWorkflow, WorkflowActivation,
        },
        workflow_commands::{
            query_result, update_response, workflow_command::Variant as Command,
            CancelWorkflowExecution, CompleteWorkflowExecution, FailWorkflowExecution, QueryResult,
            QuerySuccess, UpdateResponse,
        },
        workflow_completion::WorkflowActivationCompletion,
    },
    temporal::api::{
        common::v1::Payload, enums::v1::WorkflowTaskFailedCause,
        failure::v1::Failure as ProtoFailure,
    },
};

use super::{
    ops::cancel_command,
    run_state::{OpKey, Resolution, RunState, SharedRun},
    WorkflowContext, WorkflowInfo,
};
use crate::{
    definition::{Definition, LocalBoxFuture, SignalFn, UpdateFn, WorkflowDefinition},
    failure::{ApplicationError, Error, ErrorOutcome, Failure, FAILURE_SOURCE},
    interceptor::WorkflowInterceptor,
    metrics::MetricMeter,
};

/// Where a worker's workflow runs live: one per workflow thread.
pub(crate) struct Runs {
    factories: BTreeMap<String, Box<dyn RunFactory>>,
    runs: HashMap<String, Box<dyn Run>>,
    environment: RunEnvironment,
}

/// What every run of a worker shares.
#[derive(Clone)]
pub(crate) struct RunEnvironment {
    pub(crate) namespace: String,
    pub(crate) task_queue: String,
    pub(crate) metrics: MetricMeter,
    pub(crate) interceptors: Vec<Arc<dyn WorkflowInterceptor>>,
}

/// Registers a workflow type on a worker: a plain function, so it can cross threads; the
/// definition itself is built on the workflow thread.
#[derive(Clone, Copy)]
pub(crate) struct WorkflowRegistration {
    pub(crate) name: &'static str,
    pub(crate) factory: fn() -> Box<dyn RunFactory>,
    pub(crate) describe: fn(&mut crate::schema::SchemaGenerator) -> crate::schema::WorkflowSchema,
}

impl WorkflowRegistration {
    pub(crate) fn of<W: WorkflowDefinition>() -> Self {
        Self {
            name: W::NAME,
            factory: || Box::new(TypedFactory::<W>::new()),
            describe: crate::schema::workflow_schema::<W>,
        }
    }
}

pub(crate) trait RunFactory {
    fn start(
        &self,
        init: &InitializeWorkflow,
        info: WorkflowInfo,
        environment: &RunEnvironment,
    ) -> Box<dyn Run>;
}

pub(crate) trait Run {
    fn activate(&mut self, activation: WorkflowActivation) -> WorkflowActivationCompletion;
}

impl Runs {
    pub(crate) fn new(registrations: &[WorkflowRegistration], environment: RunEnvironment) -> Self {
        let factories = registrations
            .iter()
            .map(|r| (r.name.to_owned(), (r.factory)()))
            .collect();
        Self {
            factories,
            runs: HashMap::new(),
            environment,
        }
    }

    /// Handles one activation; never panics.
    pub(crate) fn activate(
        &mut self,
        activation: WorkflowActivation,
    ) -> WorkflowActivationCompletion {
        let run_id = activation.run_id.clone();
        let evicted = activation
            .jobs
            .iter()
            .any(|j| matches!(j.variant, Some(Job::RemoveFromCache(_))));
        if evicted {
            // Dropping a run drops its futures; nothing may be sent for it any more.
            self.runs.remove(&run_id);
            return WorkflowActivationCompletion::empty(run_id);
        }
        let init = activation.jobs.iter().find_map(|j| match &j.variant {
            Some(Job::InitializeWorkflow(init)) => Some(init),
            _ => None,
        });
        if let Some(init) = init {
            let Some(factory) = self.factories.get(&init.workflow_type) else {
                let known: Vec<_> = self.factories.keys().map(String::as_str).collect();
                let message = format!(
                    "workflow type `{}` is not registered on this worker (task queue `{}`); \
                     registered: {}. The task will be retried once a worker that has it polls.",
                    init.workflow_type,
                    self.environment.task_queue,
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                );
                tracing::error!(workflow_id = %init.workflow_id, "{message}");
                return fail_activation(
                    run_id,
                    message,
                    WorkflowTaskFailedCause::WorkflowWorkerUnhandledFailure,
                );
            };
            let info = WorkflowInfo {
                workflow_id: init.workflow_id.clone(),
                run_id: run_id.clone(),
                workflow_type: init.workflow_type.clone(),
                task_queue: self.environment.task_queue.clone(),
                namespace: self.environment.namespace.clone(),
                attempt: init.attempt.max(1) as u32,
                continued_from_run_id: Some(init.continued_from_execution_run_id.clone())
                    .filter(|s| !s.is_empty()),
                first_execution_run_id: init.first_execution_run_id.clone(),
                parent: init
                    .parent_workflow_info
                    .as_ref()
                    .map(|p| (p.workflow_id.clone(), p.run_id.clone())),
                start_time: init.start_time.and_then(to_system_time),
                run_timeout: init
                    .workflow_run_timeout
                    .and_then(|d| Duration::try_from(d).ok()),
                execution_timeout: init
                    .workflow_execution_timeout
                    .and_then(|d| Duration::try_from(d).ok()),
            };
            let run = catch_unwind(AssertUnwindSafe(|| {
                factory.start(init, info, &self.environment)
            }));
            match run {
                Ok(run) => {
                    self.runs.insert(run_id.clone(), run);
                }
                Err(panic) => {
                    return fail_activation(
                        run_id,
                        format!(
                            "workflow `{}` panicked while starting: {}",
                            init.workflow_type,
                            panic_message(&panic)
                        ),
                        WorkflowTaskFailedCause::WorkflowWorkerUnhandledFailure,
                    )
                }
            }
        }
        match self.runs.get_mut(&run_id) {
            Some(run) => run.activate(activation),
            None => fail_activation(
                run_id,
                "activation for a run this worker does not hold (it was evicted); core will replay it".to_owned(),
                WorkflowTaskFailedCause::Unspecified,
            ),
        }
    }
}

fn fail_activation(
    run_id: String,
    message: String,
    cause: WorkflowTaskFailedCause,
) -> WorkflowActivationCompletion {
    WorkflowActivationCompletion::fail(
        run_id,
        ProtoFailure {
            message,
            source: FAILURE_SOURCE.to_owned(),
            ..Default::default()
        },
        Some(cause),
    )
}

fn to_system_time(ts: prost_wkt_types::Timestamp) -> Option<SystemTime> {
    SystemTime::try_from(ts).ok()
}

pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic with a non-text payload".to_owned())
}

struct TypedFactory<W> {
    definition: Rc<Definition<W>>,
}

impl<W: WorkflowDefinition> TypedFactory<W> {
    fn new() -> Self {
        let mut definition = Definition::default();
        W::define(&mut definition);
        Self {
            definition: Rc::new(definition),
        }
    }
}

impl<W: WorkflowDefinition> RunFactory for TypedFactory<W> {
    fn start(
        &self,
        init: &InitializeWorkflow,
        info: WorkflowInfo,
        environment: &RunEnvironment,
    ) -> Box<dyn Run> {
        Box::new(Instance::<W>::new(
            self.definition.clone(),
            init,
            info,
            environment,
        ))
    }
}

/// Wakes a task by raising its flag; the executor polls flagged tasks.
#[derive(Default)]
struct WakeFlag(AtomicBool);

impl ArcWake for WakeFlag {
    fn wake_by_ref(arc_self: &Arc<Self>) {
        arc_self.0.store(true, Ordering::SeqCst);
    }
}

struct Task {
    flag: Arc<WakeFlag>,
    future: LocalBoxFuture<()>,
    /// The run function's future (the others are signal and update handlers).
    main: bool,
}

impl Task {
    fn new(future: LocalBoxFuture<()>) -> Self {
        let flag = Arc::new(WakeFlag::default());
        flag.0.store(true, Ordering::SeqCst);
        Self {
            flag,
            future,
            main: false,
        }
    }

    fn main(future: LocalBoxFuture<()>) -> Self {
        Self {
            main: true,
            ..Self::new(future)
        }
    }
}

type Outcome = Rc<RefCell<Option<Result<Payload, Error>>>>;

/// One workflow run.
struct Instance<W: WorkflowDefinition> {
    definition: Rc<Definition<W>>,
    ctx: WorkflowContext<W>,
    tasks: Vec<Task>,
    outcome: Outcome,
    finished: bool,
    checked_version: u64,
    poisoned: Option<String>,
}

impl<W: WorkflowDefinition> Instance<W> {
    fn new(
        definition: Rc<Definition<W>>,
        init: &InitializeWorkflow,
        info: WorkflowInfo,
        environment: &RunEnvironment,
    ) -> Self {
        let replaying = Arc::new(AtomicBool::new(false));
        let metrics = environment
            .metrics
            .with_labels([("workflow_type", info.workflow_type.clone())])
            .gated(replaying.clone());
        let run: SharedRun = Rc::new(RefCell::new(RunState::new(
            info,
            init.randomness_seed,
            metrics,
            replaying,
        )));
        let ctx = WorkflowContext {
            run,
            state: Rc::new(RefCell::new(W::default())),
        };
        let outcome: Outcome = Rc::default();
        let mut instance = Self {
            definition,
            ctx,
            tasks: Vec::new(),
            outcome,
            finished: false,
            checked_version: 0,
            poisoned: None,
        };
        instance.start_main(init, &environment.interceptors);
        instance
    }

    fn run(&self) -> std::cell::RefMut<'_, RunState> {
        self.ctx.run.borrow_mut()
    }

    fn start_main(
        &mut self,
        init: &InitializeWorkflow,
        interceptors: &[Arc<dyn WorkflowInterceptor>],
    ) {
        let run_fn = self
            .definition
            .run
            .as_ref()
            .expect("`#[workflow]` registers a run function");
        match run_fn(self.ctx.clone(), &init.arguments) {
            Ok(mut future) => {
                let (info, metrics) = {
                    let run = self.ctx.run.borrow();
                    (run.info.clone(), run.metrics.clone())
                };
                for interceptor in interceptors.iter().rev() {
                    future = interceptor.execute_workflow(info.clone(), metrics.clone(), future);
                }
                let outcome = self.outcome.clone();
                let run = self.ctx.run.clone();
                self.tasks.push(Task::main(Box::pin(async move {
                    let result = future.await;
                    *outcome.borrow_mut() = Some(result);
                    run.borrow_mut().version += 1;
                })));
            }
            Err(e) => {
                let err = ApplicationError::new(
                    "PayloadError",
                    format!("workflow `{}` could not read its input: {e}", W::NAME),
                )
                .non_retryable();
                *self.outcome.borrow_mut() = Some(Err(err.into()));
            }
        }
    }

    fn activate_inner(&mut self, activation: WorkflowActivation) -> WorkflowActivationCompletion {
        {
            let mut run = self.run();
            if let Some(now) = activation.timestamp.and_then(to_system_time) {
                run.now = now;
            }
            run.is_replaying = activation.is_replaying;
            run.replaying_flag
                .store(activation.is_replaying, Ordering::Relaxed);
            run.history_length = activation.history_length;
            run.continue_as_new_suggested = activation.continue_as_new_suggested;
            run.version += 1;
        }
        let only_queries = activation
            .jobs
            .iter()
            .all(|j| matches!(j.variant, Some(Job::QueryWorkflow(_))));
        // A cancellation request is applied after everything else the activation brings,
        // so that it reaches the outcomes resolved beside it whatever their order.
        let mut cancel = None;
        for job in activation.jobs {
            match job.variant {
                // The run function runs up to its first `.await` before the first
                // activation's signals and updates are handled, so it can set up the state
                // they work on (what Python needs `@workflow.init` for).
                Some(Job::InitializeWorkflow(_)) => self.run_until_stalled(),
                Some(Job::CancelWorkflow(c)) => cancel = Some(c.reason),
                Some(job) => self.apply(job),
                None => {}
            }
        }
        if let Some(reason) = cancel {
            self.cancel(reason);
        }
        if !only_queries && !self.finished {
            self.run_until_stalled();
        }
        let mut commands = self.run().take_commands();
        if !self.finished {
            if let Some(outcome) = self.outcome.borrow_mut().take() {
                commands.push(self.terminal_command(outcome));
                self.finished = true;
            }
        }
        WorkflowActivationCompletion::from_cmds(activation.run_id, commands)
    }

    fn apply(&mut self, job: Job) {
        let resolve = |this: &Self, key, resolution| this.run().resolve(key, resolution);
        match job {
            Job::InitializeWorkflow(_) | Job::RemoveFromCache(_) => {}
            Job::FireTimer(t) => resolve(self, OpKey::Timer(t.seq), Resolution::TimerFired),
            Job::UpdateRandomSeed(s) => self.run().rng.0 = s.randomness_seed,
            Job::QueryWorkflow(q) => self.answer_query(q),
            // Applied by `activate_inner` once every other job is in.
            Job::CancelWorkflow(_) => {}
            Job::SignalWorkflow(s) => self.signal(s),
            Job::ResolveActivity(a) => {
                let key = if a.is_local {
                    OpKey::LocalActivity(a.seq)
                } else {
                    OpKey::Activity(a.seq)
                };
                resolve(
                    self,
                    key,
                    Resolution::Activity(a.result.unwrap_or_default()),
                );
            }
            Job::NotifyHasPatch(p) => self.run().notify_patch(p.patch_id),
            Job::ResolveChildWorkflowExecutionStart(s) => {
                if let Some(status) = s.status {
                    resolve(
                        self,
                        OpKey::ChildStart(s.seq),
                        Resolution::ChildStart(status),
                    );
                }
            }
            Job::ResolveChildWorkflowExecution(r) => resolve(
                self,
                OpKey::ChildResult(r.seq),
                Resolution::ChildResult(r.result.unwrap_or_default()),
            ),
            Job::ResolveSignalExternalWorkflow(r) => resolve(
                self,
                OpKey::SignalExternal(r.seq),
                Resolution::External(r.failure),
            ),
            Job::ResolveRequestCancelExternalWorkflow(r) => resolve(
                self,
                OpKey::CancelExternal(r.seq),
                Resolution::External(r.failure),
            ),
            Job::DoUpdate(u) => self.update(u),
            Job::ResolveNexusOperationStart(_) | Job::ResolveNexusOperation(_) => {
                tracing::warn!("Nexus operations are not supported; resolution ignored");
            }
        }
    }

    fn cancel(&mut self, reason: String) {
        let mut run = self.run();
        for key in run.request_cancel(reason) {
            cancel_command(&mut run, key);
        }
    }

    fn signal(&mut self, signal: SignalWorkflow) {
        let name = signal.signal_name.as_str();
        match self.definition.signals.get(name) {
            Some(SignalFn::Sync(handler)) => {
                let result = handler(&mut self.ctx.state.borrow_mut(), &signal.input);
                self.run().version += 1;
                if let Err(e) = result {
                    self.ctx
                        .logger()
                        .warn(format!("signal `{name}` dropped: {e}"));
                }
            }
            Some(SignalFn::Async(handler)) => match handler(self.ctx.clone(), &signal.input) {
                Ok(future) => self.spawn_handler(Box::pin(async move {
                    let _ = future.await;
                })),
                Err(e) => self
                    .ctx
                    .logger()
                    .warn(format!("signal `{name}` dropped: {e}")),
            },
            None => {
                let known = self.definition.handler_names().signals.join(", ");
                self.ctx.logger().warn(format!(
                    "signal `{name}` has no handler on workflow `{}` (known signals: {known}); \
                     it stays in the history but nothing handles it",
                    W::NAME
                ));
            }
        }
    }

    /// Runs a handler future as its own task, counted until it finishes.
    fn spawn_handler(&mut self, future: LocalBoxFuture<()>) {
        self.run().running_handlers += 1;
        let run = self.ctx.run.clone();
        self.tasks.push(Task::new(Box::pin(async move {
            future.await;
            let mut run = run.borrow_mut();
            run.running_handlers -= 1;
            run.version += 1;
        })));
    }

    fn update(&mut self, update: DoUpdate) {
        let DoUpdate {
            protocol_instance_id: id,
            name,
            input,
            run_validator,
            ..
        } = update;
        let respond = |run: &mut RunState, response| {
            run.push_command(Command::UpdateResponse(UpdateResponse {
                protocol_instance_id: id.clone(),
                response: Some(response),
            }))
        };
        let reject = |run: &mut RunState, failure: ProtoFailure| {
            respond(run, update_response::Response::Rejected(failure))
        };
        let Some(def) = self.definition.updates.get(name.as_str()) else {
            let known = self.definition.handler_names().updates.join(", ");
            let message = format!(
                "unknown update `{name}` of workflow `{}`; known updates: {known}",
                W::NAME
            );
            reject(
                &mut self.run(),
                application_failure("UnknownUpdate", message),
            );
            return;
        };
        if run_validator {
            if let Some(validator) = &def.validator {
                if let Err(e) = validator(&self.ctx.state.borrow(), &input) {
                    reject(&mut self.run(), error_failure(e));
                    return;
                }
            }
        }
        let bad_input = |e| application_failure("PayloadError", format!("update `{name}`: {e}"));
        match &def.handler {
            UpdateFn::Sync(handler) => match handler(&input) {
                Ok(thunk) => {
                    respond(&mut self.run(), update_response::Response::Accepted(()));
                    let result = thunk(&mut self.ctx.state.borrow_mut());
                    let mut run = self.run();
                    run.version += 1;
                    match result {
                        Ok(p) => respond(&mut run, update_response::Response::Completed(p)),
                        Err(e) => reject(&mut run, error_failure(e)),
                    }
                }
                Err(e) => reject(&mut self.run(), bad_input(e)),
            },
            UpdateFn::Async(handler) => match handler(self.ctx.clone(), &input) {
                Ok(future) => {
                    respond(&mut self.run(), update_response::Response::Accepted(()));
                    let run = self.ctx.run.clone();
                    self.spawn_handler(Box::pin(async move {
                        let result = future.await;
                        let response = match result {
                            Ok(p) => update_response::Response::Completed(p),
                            Err(e) => update_response::Response::Rejected(error_failure(e)),
                        };
                        run.borrow_mut()
                            .push_command(Command::UpdateResponse(UpdateResponse {
                                protocol_instance_id: id,
                                response: Some(response),
                            }));
                    }));
                }
                Err(e) => reject(&mut self.run(), bad_input(e)),
            },
        }
    }

    fn answer_query(&mut self, query: QueryWorkflow) {
        const WORKFLOW_METADATA_QUERY: &str = "__temporal_workflow_metadata";
        let QueryWorkflow {
            query_id,
            query_type,
            arguments,
            ..
        } = query;
        let result = match self.definition.queries.get(query_type.as_str()) {
            Some(handler) => handler(&self.ctx.state.borrow(), &arguments).map_err(error_failure),
            None if query_type == "__stack_trace" => {
                crate::converter::to_payload(&self.describe_pending())
                    .map_err(|e| application_failure("PayloadError", e.to_string()))
            }
            None if query_type == WORKFLOW_METADATA_QUERY => Ok(self.metadata()),
            None => {
                let known = self.definition.handler_names().queries.join(", ");
                Err(application_failure(
                    "UnknownQuery",
                    format!(
                        "unknown query `{query_type}` of workflow `{}`; known queries: {known}",
                        W::NAME
                    ),
                ))
            }
        };
        let variant = match result {
            Ok(response) => query_result::Variant::Succeeded(QuerySuccess {
                response: Some(response),
            }),
            Err(failure) => query_result::Variant::Failed(failure),
        };
        self.run()
            .push_command(Command::RespondToQuery(QueryResult {
                query_id,
                variant: Some(variant),
            }));
    }

    /// The workflow's type and the names of its queries, signals and updates, as
    /// `temporal.api.sdk.v1.WorkflowMetadata`: the Temporal UI lists them (its Queries tab,
    /// its signal form) from this built-in query, which every Temporal SDK answers.
    fn metadata(&self) -> Payload {
        let names = self.definition.handler_names();
        let definitions = |names: &[&str]| {
            let mut names = names.to_vec();
            names.sort_unstable();
            names
                .into_iter()
                .map(|name| serde_json::json!({ "name": name }))
                .collect::<Vec<_>>()
        };
        crate::converter::proto_json_payload(
            "temporal.api.sdk.v1.WorkflowMetadata",
            &serde_json::json!({
                "definition": {
                    "type": W::NAME,
                    "queryDefinitions": definitions(&names.queries),
                    "signalDefinitions": definitions(&names.signals),
                    "updateDefinitions": definitions(&names.updates),
                }
            }),
        )
    }

    /// What the run is waiting on, for the `__stack_trace` query of the CLI and UI.
    fn describe_pending(&self) -> String {
        let run = self.ctx.run.borrow();
        format!(
            "workflow `{}` run `{}`: {} task(s), {} running handler(s), cancellable operations pending: {:?}",
            W::NAME,
            run.info.run_id,
            self.tasks.len(),
            run.running_handlers,
            run.cancellable_pending()
        )
    }

    fn run_until_stalled(&mut self) {
        loop {
            let mut polled = false;
            let mut i = 0;
            while i < self.tasks.len() {
                if !self.tasks[i].flag.0.swap(false, Ordering::SeqCst) {
                    i += 1;
                    continue;
                }
                polled = true;
                let waker = waker(self.tasks[i].flag.clone());
                let mut cx = Context::from_waker(&waker);
                self.run().polling_main = self.tasks[i].main;
                let poll = self.tasks[i].future.as_mut().poll(&mut cx);
                self.run().polling_main = false;
                if let Poll::Ready(()) = poll {
                    self.tasks.remove(i);
                } else {
                    i += 1;
                }
                if self.outcome.borrow().is_some() {
                    // The run returned: nothing after its last command may be sent.
                    return;
                }
            }
            if polled {
                continue;
            }
            let mut run = self.ctx.run.borrow_mut();
            if run.version == self.checked_version {
                return;
            }
            self.checked_version = run.version;
            if !run.wake_conditions() {
                return;
            }
        }
    }

    fn terminal_command(&self, outcome: Result<Payload, Error>) -> Command {
        match outcome {
            Ok(result) => Command::CompleteWorkflowExecution(CompleteWorkflowExecution {
                result: Some(result),
            }),
            Err(e) => match e.into_outcome() {
                ErrorOutcome::ContinueAsNew(request) => match request.into_command() {
                    Ok(command) => Command::ContinueAsNewWorkflowExecution(command),
                    Err(e) => fail_command(application_failure("PayloadError", e.to_string())),
                },
                ErrorOutcome::Failure(failure) => {
                    let cancelled = Failure::from_proto(failure.clone()).is_cancelled();
                    if cancelled && self.ctx.run.borrow().cancel_requested.is_some() {
                        Command::CancelWorkflowExecution(CancelWorkflowExecution::default())
                    } else {
                        fail_command(failure)
                    }
                }
            },
        }
    }
}

fn fail_command(failure: ProtoFailure) -> Command {
    Command::FailWorkflowExecution(FailWorkflowExecution {
        failure: Some(failure),
    })
}

fn application_failure(error_type: &str, message: String) -> ProtoFailure {
    error_failure(
        ApplicationError::new(error_type, message)
            .non_retryable()
            .into(),
    )
}

fn error_failure(error: Error) -> ProtoFailure {
    match error.into_outcome() {
        ErrorOutcome::Failure(f) => f,
        ErrorOutcome::ContinueAsNew(_) => ProtoFailure {
            message: "continue-as-new can only be returned from the run function".to_owned(),
            source: FAILURE_SOURCE.to_owned(),
            ..Default::default()
        },
    }
}

impl<W: WorkflowDefinition> Run for Instance<W> {
    fn activate(&mut self, activation: WorkflowActivation) -> WorkflowActivationCompletion {
        let run_id = activation.run_id.clone();
        if let Some(message) = &self.poisoned {
            return fail_activation(
                run_id,
                message.clone(),
                WorkflowTaskFailedCause::WorkflowWorkerUnhandledFailure,
            );
        }
        match catch_unwind(AssertUnwindSafe(|| self.activate_inner(activation))) {
            Ok(completion) => completion,
            Err(panic) => {
                let message = format!(
                    "workflow `{}` panicked: {}",
                    W::NAME,
                    panic_message(&*panic)
                );
                tracing::error!(run_id = %run_id, "{message}; the workflow task fails and is retried");
                self.poisoned = Some(message.clone());
                fail_activation(
                    run_id,
                    message,
                    WorkflowTaskFailedCause::WorkflowWorkerUnhandledFailure,
                )
            }
        }
    }
}
