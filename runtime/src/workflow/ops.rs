//! The durable operations of a workflow: timers, activities, local activities, child
//! workflows, external signals and cancels. Each is a command sent to core when its future
//! is first polled, and a resolution core sends back. Dropping an unfinished operation
//! cancels it.

use std::{
    future::{Future, IntoFuture},
    marker::PhantomData,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use serde::de::DeserializeOwned;
use temporalio_common::protos::{
    coresdk::{
        activity_result::{self, activity_resolution::Status as ActivityStatus},
        child_workflow::{self, child_workflow_result::Status as ChildStatus},
        common::NamespacedWorkflowExecution,
        workflow_activation::resolve_child_workflow_execution_start::Status as ChildStartStatus,
        workflow_commands::{
            signal_external_workflow_execution::Target, workflow_command::Variant as Command,
            ActivityCancellationType, CancelChildWorkflowExecution, CancelTimer,
            RequestCancelActivity, RequestCancelExternalWorkflowExecution,
            RequestCancelLocalActivity, ScheduleActivity, ScheduleLocalActivity,
            SignalExternalWorkflowExecution, StartChildWorkflowExecution, StartTimer,
        },
    },
    temporal::api::{common::v1::Payload, enums::v1::WorkflowIdReusePolicy},
};

use super::{
    cancelled_failure,
    run_state::{OpKey, Resolution, RunState, SharedRun},
};
use crate::{
    converter::{self, Args, PayloadError},
    failure::Failure,
    options::RetryPolicy,
};

type Starter = Box<dyn FnOnce(&mut RunState) -> OpKey>;

/// One command and its resolution.
pub(crate) struct Op {
    run: SharedRun,
    starter: Option<Starter>,
    key: Option<OpKey>,
    done: bool,
    cancel_on_drop: bool,
    /// Whether a workflow cancellation request that no wait has seen yet cancels this
    /// operation before it starts (timers, activities, children: the waits a request
    /// cancels).
    cancellable: bool,
}

impl Op {
    /// A wait a workflow cancellation request cancels.
    pub(crate) fn new(run: SharedRun, starter: Starter) -> Self {
        Self {
            run,
            starter: Some(starter),
            key: None,
            done: false,
            cancel_on_drop: true,
            cancellable: true,
        }
    }

    /// An operation a workflow cancellation request leaves alone (signalling or cancelling
    /// another workflow).
    pub(crate) fn uncancellable(run: SharedRun, starter: Starter) -> Self {
        let mut op = Self::new(run, starter);
        op.cancellable = false;
        op
    }

    /// A child's result after its start: dropping the handle leaves the child running.
    pub(crate) fn child_result(run: SharedRun, key: OpKey) -> Self {
        Self {
            run,
            starter: None,
            key: Some(key),
            done: false,
            cancel_on_drop: false,
            cancellable: true,
        }
    }
}

impl Future for Op {
    type Output = Resolution;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Resolution> {
        let this = &mut *self;
        let mut run = this.run.borrow_mut();
        if let Some(start) = this.starter.take() {
            if this.cancellable && run.take_undelivered_cancel() {
                this.done = true;
                return Poll::Ready(Resolution::Cancelled(cancelled_failure(
                    "workflow cancelled before this operation started",
                )));
            }
            this.key = Some(start(&mut run));
        }
        let key = this
            .key
            .expect("an operation is started before it is polled");
        match run.poll_slot(key, cx.waker()) {
            Some(resolution) => {
                this.done = true;
                Poll::Ready(resolution)
            }
            None if !run.is_pending(key) => {
                // Forgotten already: its resolution was taken by another future.
                this.done = true;
                Poll::Ready(Resolution::Cancelled(cancelled_failure(
                    "operation was abandoned",
                )))
            }
            None => Poll::Pending,
        }
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        let (Some(key), false) = (self.key, self.done) else {
            return;
        };
        let Ok(mut run) = self.run.try_borrow_mut() else {
            return;
        };
        if run.close(key) && self.cancel_on_drop {
            cancel_command(&mut run, key);
        }
    }
}

/// Sends the command that cancels an operation, if it has one; timers resolve at once.
pub(crate) fn cancel_command(run: &mut RunState, key: OpKey) {
    match key {
        OpKey::Timer(seq) => {
            run.push_command(Command::CancelTimer(CancelTimer { seq }));
            run.resolve(
                key,
                Resolution::Cancelled(cancelled_failure("timer cancelled")),
            );
        }
        OpKey::Activity(seq) => {
            run.push_command(Command::RequestCancelActivity(RequestCancelActivity {
                seq,
            }))
        }
        OpKey::LocalActivity(seq) => run.push_command(Command::RequestCancelLocalActivity(
            RequestCancelLocalActivity { seq },
        )),
        OpKey::ChildStart(seq) | OpKey::ChildResult(seq) => run.push_command(
            Command::CancelChildWorkflowExecution(CancelChildWorkflowExecution {
                child_workflow_seq: seq,
                reason: "cancelled by the parent workflow".to_owned(),
            }),
        ),
        OpKey::SignalExternal(_) | OpKey::CancelExternal(_) => {}
    }
}

fn duration(d: Duration) -> Option<prost_wkt_types::Duration> {
    prost_wkt_types::Duration::try_from(d).ok()
}

fn decode<O: DeserializeOwned>(payload: Option<Payload>, what: &str) -> Result<O, Failure> {
    let payload = match payload {
        Some(p) => p,
        None => converter::to_payload(&()).map_err(|e| payload_failure(what, e))?,
    };
    converter::from_payload(&payload).map_err(|e| payload_failure(what, e))
}

pub(crate) fn payload_failure(what: &str, err: PayloadError) -> Failure {
    let err: crate::Error = crate::ApplicationError::new("PayloadError", format!("{what}: {err}"))
        .non_retryable()
        .into();
    err.as_failure().expect("an application error is a failure")
}

/// A durable timer; `Ok(())` when it fires, a cancellation failure if the workflow is
/// cancelled first.
pub struct Timer {
    op: Op,
}

impl Timer {
    pub(crate) fn new(run: SharedRun, after: Duration) -> Self {
        let op = Op::new(
            run,
            Box::new(move |run| {
                let seq = run.next_timer_seq();
                run.push_command(Command::StartTimer(StartTimer {
                    seq,
                    start_to_fire_timeout: duration(after),
                }));
                run.open(OpKey::Timer(seq), true);
                OpKey::Timer(seq)
            }),
        );
        Self { op }
    }
}

impl Future for Timer {
    type Output = Result<(), Failure>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.op)
            .poll(cx)
            .map(|resolution| match resolution {
                Resolution::TimerFired => Ok(()),
                Resolution::Cancelled(f) => Err(Failure::from_proto(f)),
                other => unreachable!("timer resolved with {other:?}"),
            })
    }
}

/// How an activity reacts when the workflow cancels it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ActivityCancellation {
    /// Request cancellation and resolve at once as cancelled (the default).
    #[default]
    TryCancel,
    /// Request cancellation and wait until the activity acknowledges it.
    WaitCancellationCompleted,
    /// Resolve at once as cancelled without telling the activity.
    Abandon,
}

impl ActivityCancellation {
    fn proto(self) -> i32 {
        (match self {
            Self::TryCancel => ActivityCancellationType::TryCancel,
            Self::WaitCancellationCompleted => ActivityCancellationType::WaitCancellationCompleted,
            Self::Abandon => ActivityCancellationType::Abandon,
        }) as i32
    }
}

macro_rules! activity_options {
    () => {
        /// The longest a single attempt may run.
        pub fn start_to_close_timeout(mut self, timeout: Duration) -> Self {
            self.cmd.start_to_close_timeout = duration(timeout);
            self
        }

        /// The longest the whole activity may take, retries included.
        pub fn schedule_to_close_timeout(mut self, timeout: Duration) -> Self {
            self.cmd.schedule_to_close_timeout = duration(timeout);
            self
        }

        /// The longest an attempt may wait for a worker.
        pub fn schedule_to_start_timeout(mut self, timeout: Duration) -> Self {
            self.cmd.schedule_to_start_timeout = duration(timeout);
            self
        }

        /// How attempts are retried (default: the server's, unlimited attempts with
        /// exponential backoff).
        pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
            self.cmd.retry_policy = Some(policy.into_proto());
            self
        }

        /// What cancelling this activity does.
        pub fn cancellation(mut self, cancellation: ActivityCancellation) -> Self {
            self.cmd.cancellation_type = cancellation.proto();
            self
        }

        /// The activity id (default: the sequence number).
        pub fn activity_id(mut self, id: impl Into<String>) -> Self {
            self.cmd.activity_id = id.into();
            self
        }
    };
}

fn check_timeouts(
    activity: &str,
    start_to_close: &Option<prost_wkt_types::Duration>,
    schedule_to_close: &Option<prost_wkt_types::Duration>,
) -> Result<(), Failure> {
    if start_to_close.is_none() && schedule_to_close.is_none() {
        let err: crate::Error = crate::ApplicationError::new(
            "InvalidActivityOptions",
            format!(
                "activity `{activity}` needs a timeout: call `.start_to_close_timeout(..)` or \
                 `.schedule_to_close_timeout(..)`"
            ),
        )
        .non_retryable()
        .into();
        return Err(err.as_failure().expect("application error"));
    }
    Ok(())
}

/// A scheduled activity, built by [`WorkflowContext::activity`](super::WorkflowContext::activity);
/// `.await` it for the result.
#[must_use = "an activity runs only when awaited"]
pub struct ActivityCall<O> {
    run: SharedRun,
    cmd: ScheduleActivity,
    args: Result<Vec<Payload>, PayloadError>,
    _out: PhantomData<fn() -> O>,
}

impl<O> ActivityCall<O> {
    pub(crate) fn new(
        run: SharedRun,
        activity_type: &str,
        args: Result<Vec<Payload>, PayloadError>,
    ) -> Self {
        let cmd = ScheduleActivity {
            activity_type: activity_type.to_owned(),
            ..Default::default()
        };
        Self {
            run,
            cmd,
            args,
            _out: PhantomData,
        }
    }

    activity_options!();

    /// The longest between two heartbeats before the attempt counts as failed; needed
    /// for an activity to learn that it was cancelled.
    pub fn heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.cmd.heartbeat_timeout = duration(timeout);
        self
    }

    /// The task queue of the workers that run it (default: the workflow's).
    pub fn task_queue(mut self, task_queue: impl Into<String>) -> Self {
        self.cmd.task_queue = task_queue.into();
        self
    }
}

impl<O: DeserializeOwned + 'static> IntoFuture for ActivityCall<O> {
    type Output = Result<O, Failure>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output>>>;

    fn into_future(self) -> Self::IntoFuture {
        let Self {
            run, mut cmd, args, ..
        } = self;
        Box::pin(async move {
            let what = format!("activity `{}`", cmd.activity_type);
            cmd.arguments = args.map_err(|e| payload_failure(&what, e))?;
            check_timeouts(
                &cmd.activity_type,
                &cmd.start_to_close_timeout,
                &cmd.schedule_to_close_timeout,
            )?;
            let op = Op::new(
                run,
                Box::new(move |run| {
                    let seq = run.next_activity_seq();
                    cmd.seq = seq;
                    if cmd.activity_id.is_empty() {
                        cmd.activity_id = seq.to_string();
                    }
                    if cmd.task_queue.is_empty() {
                        cmd.task_queue = run.info.task_queue.clone();
                    }
                    run.push_command(Command::ScheduleActivity(cmd));
                    run.open(OpKey::Activity(seq), true);
                    OpKey::Activity(seq)
                }),
            );
            activity_outcome(op.await, &what)
        })
    }
}

fn activity_outcome<O: DeserializeOwned>(resolution: Resolution, what: &str) -> Result<O, Failure> {
    let status = match resolution {
        Resolution::Activity(r) => r.status,
        Resolution::Cancelled(f) => return Err(Failure::from_proto(f)),
        other => unreachable!("activity resolved with {other:?}"),
    };
    match status {
        Some(ActivityStatus::Completed(activity_result::Success { result })) => {
            decode(result, what)
        }
        Some(ActivityStatus::Failed(activity_result::Failure { failure, .. }))
        | Some(ActivityStatus::Cancelled(activity_result::Cancellation { failure })) => {
            Err(Failure::from_proto(failure.unwrap_or_default()))
        }
        Some(ActivityStatus::Backoff(_)) | None => {
            unreachable!("backoff is handled by local activities")
        }
    }
}

/// A local activity, built by
/// [`WorkflowContext::local_activity`](super::WorkflowContext::local_activity); `.await` it.
#[must_use = "a local activity runs only when awaited"]
pub struct LocalActivityCall<O> {
    run: SharedRun,
    cmd: ScheduleLocalActivity,
    args: Result<Vec<Payload>, PayloadError>,
    _out: PhantomData<fn() -> O>,
}

impl<O> LocalActivityCall<O> {
    pub(crate) fn new(
        run: SharedRun,
        activity_type: &str,
        args: Result<Vec<Payload>, PayloadError>,
    ) -> Self {
        let cmd = ScheduleLocalActivity {
            activity_type: activity_type.to_owned(),
            attempt: 1,
            ..Default::default()
        };
        Self {
            run,
            cmd,
            args,
            _out: PhantomData,
        }
    }

    activity_options!();
}

impl<O: DeserializeOwned + 'static> IntoFuture for LocalActivityCall<O> {
    type Output = Result<O, Failure>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output>>>;

    fn into_future(self) -> Self::IntoFuture {
        let Self {
            run, mut cmd, args, ..
        } = self;
        Box::pin(async move {
            let what = format!("local activity `{}`", cmd.activity_type);
            cmd.arguments = args.map_err(|e| payload_failure(&what, e))?;
            check_timeouts(
                &cmd.activity_type,
                &cmd.start_to_close_timeout,
                &cmd.schedule_to_close_timeout,
            )?;
            loop {
                let mut attempt = cmd.clone();
                let op = Op::new(
                    run.clone(),
                    Box::new(move |run| {
                        let seq = run.next_activity_seq();
                        attempt.seq = seq;
                        if attempt.activity_id.is_empty() {
                            attempt.activity_id = seq.to_string();
                        }
                        run.push_command(Command::ScheduleLocalActivity(attempt));
                        run.open(OpKey::LocalActivity(seq), true);
                        OpKey::LocalActivity(seq)
                    }),
                );
                match op.await {
                    Resolution::Activity(activity_result::ActivityResolution {
                        status: Some(ActivityStatus::Backoff(backoff)),
                    }) => {
                        // Core asks for a durable timer before the next attempt.
                        let wait = backoff
                            .backoff_duration
                            .and_then(|d| Duration::try_from(d).ok())
                            .unwrap_or_default();
                        Timer::new(run.clone(), wait).await?;
                        cmd.attempt = backoff.attempt;
                        cmd.original_schedule_time = backoff.original_schedule_time;
                    }
                    other => return activity_outcome(other, &what),
                }
            }
        })
    }
}

/// What happens to a child workflow when its parent closes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ParentClosePolicy {
    /// Terminate the child (the server's default).
    #[default]
    Terminate,
    /// Let the child run on.
    Abandon,
    /// Request the child's cancellation.
    RequestCancel,
}

/// A child workflow, built by
/// [`WorkflowContext::child_workflow`](super::WorkflowContext::child_workflow). `.await` it
/// to run it to completion, or call [`start`](Self::start) for a handle.
#[must_use = "a child workflow starts only when awaited"]
pub struct ChildWorkflowCall<O> {
    run: SharedRun,
    cmd: StartChildWorkflowExecution,
    args: Result<Vec<Payload>, PayloadError>,
    _out: PhantomData<fn() -> O>,
}

impl<O: DeserializeOwned + 'static> ChildWorkflowCall<O> {
    pub(crate) fn new(
        run: SharedRun,
        workflow_type: &str,
        args: Result<Vec<Payload>, PayloadError>,
    ) -> Self {
        let cmd = StartChildWorkflowExecution {
            workflow_type: workflow_type.to_owned(),
            cancellation_type:
                child_workflow::ChildWorkflowCancellationType::WaitCancellationCompleted as i32,
            ..Default::default()
        };
        Self {
            run,
            cmd,
            args,
            _out: PhantomData,
        }
    }

    /// The child's workflow id (default: a deterministic UUID).
    pub fn id(mut self, workflow_id: impl Into<String>) -> Self {
        self.cmd.workflow_id = workflow_id.into();
        self
    }

    /// The child's task queue (default: the parent's).
    pub fn task_queue(mut self, task_queue: impl Into<String>) -> Self {
        self.cmd.task_queue = task_queue.into();
        self
    }

    /// What happens to the child when the parent closes.
    pub fn parent_close_policy(mut self, policy: ParentClosePolicy) -> Self {
        self.cmd.parent_close_policy = (match policy {
            ParentClosePolicy::Terminate => child_workflow::ParentClosePolicy::Terminate,
            ParentClosePolicy::Abandon => child_workflow::ParentClosePolicy::Abandon,
            ParentClosePolicy::RequestCancel => child_workflow::ParentClosePolicy::RequestCancel,
        }) as i32;
        self
    }

    /// The longest the child may run, continue-as-new and retries included.
    pub fn execution_timeout(mut self, timeout: Duration) -> Self {
        self.cmd.workflow_execution_timeout = duration(timeout);
        self
    }

    /// The longest one run of the child may take.
    pub fn run_timeout(mut self, timeout: Duration) -> Self {
        self.cmd.workflow_run_timeout = duration(timeout);
        self
    }

    /// How the child is retried when it fails.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.cmd.retry_policy = Some(policy.into_proto());
        self
    }

    /// Whether a closed workflow's id may be reused.
    pub fn id_reuse_policy(mut self, policy: WorkflowIdReusePolicy) -> Self {
        self.cmd.workflow_id_reuse_policy = policy as i32;
        self
    }

    /// Starts the child and returns its handle once the server has started it.
    pub async fn start(self) -> Result<ChildWorkflowHandle<O>, Failure> {
        let Self {
            run, mut cmd, args, ..
        } = self;
        let what = format!("child workflow `{}`", cmd.workflow_type);
        cmd.input = args.map_err(|e| payload_failure(&what, e))?;
        let workflow_type = cmd.workflow_type.clone();
        let (seq, workflow_id) = {
            let mut state = run.borrow_mut();
            let seq = state.next_child_seq();
            cmd.seq = seq;
            if cmd.workflow_id.is_empty() {
                let hi = state.rng.next_u64().to_be_bytes();
                let lo = state.rng.next_u64().to_be_bytes();
                let mut bytes = [0u8; 16];
                bytes[..8].copy_from_slice(&hi);
                bytes[8..].copy_from_slice(&lo);
                cmd.workflow_id = uuid::Builder::from_random_bytes(bytes)
                    .into_uuid()
                    .to_string();
            }
            if cmd.task_queue.is_empty() {
                cmd.task_queue = state.info.task_queue.clone();
            }
            cmd.namespace = state.info.namespace.clone();
            (seq, cmd.workflow_id.clone())
        };
        let start = Op::new(
            run.clone(),
            Box::new(move |state| {
                state.push_command(Command::StartChildWorkflowExecution(cmd));
                state.open(OpKey::ChildStart(seq), false);
                state.open(OpKey::ChildResult(seq), true);
                OpKey::ChildStart(seq)
            }),
        );
        match start.await {
            Resolution::ChildStart(ChildStartStatus::Succeeded(s)) => Ok(ChildWorkflowHandle {
                result: Op::child_result(run.clone(), OpKey::ChildResult(seq)),
                run,
                seq,
                workflow_id,
                run_id: s.run_id,
                _out: PhantomData,
            }),
            Resolution::ChildStart(ChildStartStatus::Failed(f)) => {
                run.borrow_mut().close(OpKey::ChildResult(seq));
                let err: crate::Error = crate::ApplicationError::new(
                    "ChildWorkflowStartFailed",
                    format!(
                        "child workflow `{workflow_type}` with id `{}` could not start: {}",
                        f.workflow_id,
                        child_workflow::StartChildWorkflowExecutionFailedCause::try_from(f.cause)
                            .map(|c| c.as_str_name())
                            .unwrap_or("unknown cause")
                    ),
                )
                .non_retryable()
                .into();
                Err(err.as_failure().expect("application error"))
            }
            Resolution::ChildStart(ChildStartStatus::Cancelled(c)) => {
                run.borrow_mut().close(OpKey::ChildResult(seq));
                Err(Failure::from_proto(c.failure.unwrap_or_default()))
            }
            Resolution::Cancelled(f) => Err(Failure::from_proto(f)),
            other => unreachable!("child start resolved with {other:?}"),
        }
    }
}

impl<O: DeserializeOwned + 'static> IntoFuture for ChildWorkflowCall<O> {
    type Output = Result<O, Failure>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output>>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move { self.start().await?.result().await })
    }
}

/// A started child workflow: signal it, cancel it, await its result.
pub struct ChildWorkflowHandle<O> {
    run: SharedRun,
    seq: u32,
    result: Op,
    workflow_id: String,
    run_id: String,
    _out: PhantomData<fn() -> O>,
}

impl<O: DeserializeOwned + 'static> ChildWorkflowHandle<O> {
    /// The child's workflow id.
    pub fn workflow_id(&self) -> &str {
        &self.workflow_id
    }

    /// The child's first run id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Waits for the child to close and returns its result.
    pub async fn result(self) -> Result<O, Failure> {
        let what = format!("child workflow `{}`", self.workflow_id);
        match self.result.await {
            Resolution::ChildResult(r) => match r.status {
                Some(ChildStatus::Completed(child_workflow::Success { result })) => {
                    decode(result, &what)
                }
                Some(ChildStatus::Failed(child_workflow::Failure { failure }))
                | Some(ChildStatus::Cancelled(child_workflow::Cancellation { failure })) => {
                    Err(Failure::from_proto(failure.unwrap_or_default()))
                }
                None => Err(payload_failure(
                    &what,
                    PayloadError::Codec("empty child result".into()),
                )),
            },
            Resolution::Cancelled(f) => Err(Failure::from_proto(f)),
            other => unreachable!("child result resolved with {other:?}"),
        }
    }

    /// Requests the child's cancellation.
    pub fn cancel(&self) {
        let mut run = self.run.borrow_mut();
        cancel_command(&mut run, OpKey::ChildResult(self.seq));
    }

    /// Signals the child by handler name.
    pub async fn signal<A: Args>(&self, signal_name: &str, args: A) -> Result<(), Failure> {
        let target = Target::ChildWorkflowId(self.workflow_id.clone());
        signal_external(&self.run, target, signal_name, args).await
    }
}

/// Another workflow execution, seen from a workflow: signal it or request its cancellation.
pub struct ExternalWorkflowHandle {
    run: SharedRun,
    workflow_id: String,
    run_id: String,
}

impl ExternalWorkflowHandle {
    pub(crate) fn new(run: SharedRun, workflow_id: String, run_id: String) -> Self {
        Self {
            run,
            workflow_id,
            run_id,
        }
    }

    fn execution(&self) -> NamespacedWorkflowExecution {
        NamespacedWorkflowExecution {
            namespace: self.run.borrow().info.namespace.clone(),
            workflow_id: self.workflow_id.clone(),
            run_id: self.run_id.clone(),
        }
    }

    /// Signals the workflow by handler name; resolves once the server delivered it.
    pub async fn signal<A: Args>(&self, signal_name: &str, args: A) -> Result<(), Failure> {
        signal_external(
            &self.run,
            Target::WorkflowExecution(self.execution()),
            signal_name,
            args,
        )
        .await
    }

    /// Requests the workflow's cancellation; resolves once the server recorded the request.
    pub async fn cancel(&self, reason: impl Into<String>) -> Result<(), Failure> {
        let execution = self.execution();
        let reason = reason.into();
        let op = Op::uncancellable(
            self.run.clone(),
            Box::new(move |run| {
                let seq = run.next_cancel_external_seq();
                run.push_command(Command::RequestCancelExternalWorkflowExecution(
                    RequestCancelExternalWorkflowExecution {
                        seq,
                        workflow_execution: Some(execution),
                        reason,
                    },
                ));
                run.open(OpKey::CancelExternal(seq), false);
                OpKey::CancelExternal(seq)
            }),
        );
        external_outcome(op.await)
    }
}

impl crate::definition::SignalTarget for ExternalWorkflowHandle {
    type Error = Failure;
    fn send_signal<A: Args>(
        &self,
        signal_name: &'static str,
        args: A,
    ) -> impl Future<Output = Result<(), Failure>> {
        self.signal(signal_name, args)
    }
}

async fn signal_external<A: Args>(
    run: &SharedRun,
    target: Target,
    signal_name: &str,
    args: A,
) -> Result<(), Failure> {
    let what = format!("signal `{signal_name}`");
    let args = args.to_payloads().map_err(|e| payload_failure(&what, e))?;
    let signal_name = signal_name.to_owned();
    let op = Op::uncancellable(
        run.clone(),
        Box::new(move |run| {
            let seq = run.next_signal_external_seq();
            run.push_command(Command::SignalExternalWorkflowExecution(
                SignalExternalWorkflowExecution {
                    seq,
                    target: Some(target),
                    signal_name,
                    args,
                    headers: Default::default(),
                },
            ));
            run.open(OpKey::SignalExternal(seq), false);
            OpKey::SignalExternal(seq)
        }),
    );
    external_outcome(op.await)
}

fn external_outcome(resolution: Resolution) -> Result<(), Failure> {
    match resolution {
        Resolution::External(None) => Ok(()),
        Resolution::External(Some(f)) | Resolution::Cancelled(f) => Err(Failure::from_proto(f)),
        other => unreachable!("external operation resolved with {other:?}"),
    }
}
