//! `WorkflowContext`: everything workflow code may do, deterministically.

use std::{
    cell::RefCell,
    fmt,
    future::Future,
    pin::Pin,
    rc::Rc,
    task::{Context, Poll},
    time::{Duration, SystemTime},
};

use serde::Serialize;
use temporalio_common::protos::{
    coresdk::workflow_commands::{
        workflow_command::Variant as Command, ModifyWorkflowProperties,
        UpsertWorkflowSearchAttributes,
    },
    temporal::api::common::v1::{Memo, SearchAttributes},
};

use super::{
    ops::{ActivityCall, ChildWorkflowCall, ExternalWorkflowHandle, LocalActivityCall, Timer},
    run_state::SharedRun,
    ContinueAsNew, WorkflowInfo,
};
use crate::{
    converter::{self, Args},
    definition::{ActivityDefinition, WorkflowDefinition},
    failure::{Error, Failure, WorkflowResult},
};

/// The workflow's view of the world: its state, time, randomness, and the operations that
/// Temporal records in the history (activities, timers, child workflows, signals).
///
/// Cheap to clone; every clone refers to the same run.
pub struct WorkflowContext<W> {
    pub(crate) run: SharedRun,
    pub(crate) state: Rc<RefCell<W>>,
}

impl<W> Clone for WorkflowContext<W> {
    fn clone(&self) -> Self {
        Self {
            run: self.run.clone(),
            state: self.state.clone(),
        }
    }
}

impl<W> fmt::Debug for WorkflowContext<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let run = self.run.borrow();
        f.debug_struct("WorkflowContext")
            .field("workflow_id", &run.info.workflow_id)
            .field("run_id", &run.info.run_id)
            .finish()
    }
}

impl<W: 'static> WorkflowContext<W> {
    /// Reads the workflow's state.
    ///
    /// # Panics
    /// When called from inside [`state_mut`](Self::state_mut)'s closure or a synchronous
    /// handler (which already hold the state): use the `&mut self` you have there.
    pub fn state<R>(&self, read: impl FnOnce(&W) -> R) -> R {
        let state = self
            .state
            .try_borrow()
            .unwrap_or_else(|_| already_borrowed());
        read(&state)
    }

    /// Changes the workflow's state; conditions waiting on it are re-checked.
    ///
    /// # Panics
    /// When the state is already borrowed (see [`state`](Self::state)).
    pub fn state_mut<R>(&self, change: impl FnOnce(&mut W) -> R) -> R {
        let result = {
            let mut state = self
                .state
                .try_borrow_mut()
                .unwrap_or_else(|_| already_borrowed());
            change(&mut state)
        };
        self.run.borrow_mut().version += 1;
        result
    }

    /// Waits until `condition` holds. Re-checked whenever the state may have changed.
    /// Fails with a cancellation if the workflow is cancelled while waiting.
    pub fn wait_condition<F>(&self, condition: F) -> Condition<W, F>
    where
        F: FnMut(&W) -> bool,
    {
        Condition {
            ctx: self.clone(),
            condition,
            cancel_generation: None,
            timer: None,
        }
    }

    /// Waits until every asynchronous signal and update handler has finished: do it before
    /// returning or continuing as new, so no handler is cut off.
    pub async fn wait_all_handlers_finished(&self) -> Result<(), Failure> {
        let ctx = self.clone();
        self.wait_condition(move |_| ctx.all_handlers_finished())
            .await
    }

    /// Waits until `condition` holds or `timeout` passes: `Ok(true)` if it held,
    /// `Ok(false)` on timeout.
    pub fn wait_condition_timeout<F>(
        &self,
        timeout: Duration,
        condition: F,
    ) -> impl Future<Output = Result<bool, Failure>>
    where
        F: FnMut(&W) -> bool,
    {
        let mut waiting = self.wait_condition(condition);
        waiting.timer = Some(Box::pin(self.sleep(timeout)));
        TimedCondition(waiting)
    }
}

fn already_borrowed() -> ! {
    panic!(
        "workflow state is already borrowed: inside a synchronous handler or `state_mut`, use \
         the state you were given instead of the context"
    )
}

impl<W: WorkflowDefinition> WorkflowContext<W> {
    /// Ends this run and starts a new one of the same workflow with `input`, same workflow
    /// id, fresh history. Return it from the run function: `return ctx.continue_as_new(x);`.
    pub fn continue_as_new<T>(&self, input: W::Input) -> WorkflowResult<T> {
        Err(self.continue_as_new_with(ContinueAsNew::new::<W>(W::into_args(input))))
    }
}

impl<W> WorkflowContext<W> {
    /// The run's identity and attributes.
    pub fn info(&self) -> WorkflowInfo {
        self.run.borrow().info.clone()
    }

    /// The worker's metric meter, labelled with the workflow type; it records nothing
    /// while the workflow replays, so nothing is counted twice.
    pub fn metrics(&self) -> crate::metrics::MetricMeter {
        self.run.borrow().metrics.clone()
    }

    /// The workflow time: when the current workflow task started. Stable across replays.
    pub fn now(&self) -> SystemTime {
        self.run.borrow().now
    }

    /// A random `u64` from the run's seeded generator: the same on every replay.
    pub fn random_u64(&self) -> u64 {
        self.run.borrow_mut().rng.next_u64()
    }

    /// A random `f64` in `[0, 1)`, deterministic like [`random_u64`](Self::random_u64).
    pub fn random(&self) -> f64 {
        (self.random_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A random (version 4) UUID, deterministic like [`random_u64`](Self::random_u64).
    pub fn uuid4(&self) -> String {
        let hi = self.random_u64().to_be_bytes();
        let lo = self.random_u64().to_be_bytes();
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&hi);
        bytes[8..].copy_from_slice(&lo);
        uuid::Builder::from_random_bytes(bytes)
            .into_uuid()
            .to_string()
    }

    /// Whether the workflow is replaying history (side effects such as logs should be
    /// skipped; [`logger`](Self::logger) does so).
    pub fn is_replaying(&self) -> bool {
        self.run.borrow().is_replaying
    }

    /// Whether cancellation of the workflow was requested.
    pub fn is_cancel_requested(&self) -> bool {
        self.run.borrow().cancel_requested.is_some()
    }

    /// Whether the server suggests continuing as new (history is getting large).
    pub fn is_continue_as_new_suggested(&self) -> bool {
        self.run.borrow().continue_as_new_suggested
    }

    /// The number of events in the history so far.
    pub fn history_length(&self) -> u32 {
        self.run.borrow().history_length
    }

    /// Whether every asynchronous signal and update handler has finished: wait for it
    /// before completing or continuing as new, so no handler is cut off.
    pub fn all_handlers_finished(&self) -> bool {
        self.run.borrow().running_handlers == 0
    }

    /// Versioning: `true` on new executions and on replays of histories that took the new
    /// path; `false` on replays of histories recorded before the patch.
    pub fn patched(&self, patch_id: &str) -> bool {
        self.run.borrow_mut().patched(patch_id, false)
    }

    /// Like [`patched`](Self::patched), once no history without the patch is running any
    /// more: always `true`, and marks the patch deprecated.
    pub fn deprecate_patch(&self, patch_id: &str) {
        self.run.borrow_mut().patched(patch_id, true);
    }

    /// A replay-safe logger: it logs through `tracing` with the workflow's ids, and stays
    /// silent while the workflow replays.
    pub fn logger(&self) -> WorkflowLogger {
        let run = self.run.borrow();
        WorkflowLogger {
            replaying: run.is_replaying,
            workflow_id: run.info.workflow_id.clone(),
            run_id: run.info.run_id.clone(),
            workflow_type: run.info.workflow_type.clone(),
        }
    }

    /// A durable timer: completes after `duration` of workflow time.
    pub fn sleep(&self, duration: Duration) -> Timer {
        Timer::new(self.run.clone(), duration)
    }

    /// Schedules an activity; configure it with the builder's methods, then `.await` it:
    /// `ctx.activity(order_apples, 5).start_to_close_timeout(secs(5)).await?` (the crate
    /// documentation has a whole example).
    pub fn activity<A: ActivityDefinition>(
        &self,
        _activity: A,
        input: A::Input,
    ) -> ActivityCall<A::Output> {
        let args = A::into_args(input).to_payloads();
        ActivityCall::new(self.run.clone(), A::NAME, args)
    }

    /// Runs an activity in this worker, recorded as a marker instead of a scheduled task:
    /// lower latency for short operations.
    pub fn local_activity<A: ActivityDefinition>(
        &self,
        _activity: A,
        input: A::Input,
    ) -> LocalActivityCall<A::Output> {
        let args = A::into_args(input).to_payloads();
        LocalActivityCall::new(self.run.clone(), A::NAME, args)
    }

    /// Schedules an activity by name, for activities written in other languages.
    pub fn activity_by_name<O, A: Args>(&self, activity_type: &str, args: A) -> ActivityCall<O> {
        ActivityCall::new(self.run.clone(), activity_type, args.to_payloads())
    }

    /// Starts a child workflow; `.await` the builder to run it to completion, or
    /// `.start().await` for a handle.
    pub fn child_workflow<C: WorkflowDefinition>(
        &self,
        input: C::Input,
    ) -> ChildWorkflowCall<C::Output> {
        let args = C::into_args(input).to_payloads();
        ChildWorkflowCall::new(self.run.clone(), C::NAME, args)
    }

    /// Starts a child workflow by type name, for workflows written in other languages.
    pub fn child_workflow_by_name<O: serde::de::DeserializeOwned + 'static, A: Args>(
        &self,
        workflow_type: &str,
        args: A,
    ) -> ChildWorkflowCall<O> {
        ChildWorkflowCall::new(self.run.clone(), workflow_type, args.to_payloads())
    }

    /// A typed handle to another execution of workflow `T` (a child, or any other), with
    /// a method per signal: `ctx.external_workflow_of::<Child>(id, None).poke(1).await?`.
    pub fn external_workflow_of<T: WorkflowDefinition>(
        &self,
        workflow_id: impl Into<String>,
        run_id: Option<String>,
    ) -> T::External {
        T::External::from(self.external_workflow(workflow_id, run_id))
    }

    /// A handle to another workflow execution, to signal or cancel it.
    pub fn external_workflow(
        &self,
        workflow_id: impl Into<String>,
        run_id: Option<String>,
    ) -> ExternalWorkflowHandle {
        ExternalWorkflowHandle::new(
            self.run.clone(),
            workflow_id.into(),
            run_id.unwrap_or_default(),
        )
    }

    /// Continues as new with full control over the new run (type, task queue, timeouts,
    /// memo). Return the result: `return Err(ctx.continue_as_new_with(options))`.
    pub fn continue_as_new_with(&self, mut request: ContinueAsNew) -> Error {
        if request.command.task_queue.is_empty() {
            request.command.task_queue = self.run.borrow().info.task_queue.clone();
        }
        Error::continue_as_new(request)
    }

    /// Adds or replaces search attributes (values as JSON; the attributes must be
    /// registered on the server).
    pub fn upsert_search_attributes<V: Serialize + 'static>(
        &self,
        attributes: impl IntoIterator<Item = (String, V)>,
    ) -> Result<(), Error> {
        let indexed_fields = attributes
            .into_iter()
            .map(|(k, v)| Ok((k, converter::to_payload(&v)?)))
            .collect::<Result<_, converter::PayloadError>>()?;
        self.run
            .borrow_mut()
            .push_command(Command::UpsertWorkflowSearchAttributes(
                UpsertWorkflowSearchAttributes {
                    search_attributes: Some(SearchAttributes { indexed_fields }),
                },
            ));
        Ok(())
    }

    /// Adds or replaces memo entries.
    pub fn upsert_memo<V: Serialize + 'static>(
        &self,
        entries: impl IntoIterator<Item = (String, V)>,
    ) -> Result<(), Error> {
        let fields = entries
            .into_iter()
            .map(|(k, v)| Ok((k, converter::to_payload(&v)?)))
            .collect::<Result<_, converter::PayloadError>>()?;
        self.run
            .borrow_mut()
            .push_command(Command::ModifyWorkflowProperties(
                ModifyWorkflowProperties {
                    upserted_memo: Some(Memo { fields }),
                },
            ));
        Ok(())
    }
}

/// Logs from workflow code without repeating lines on replay.
#[derive(Clone, Debug)]
pub struct WorkflowLogger {
    replaying: bool,
    workflow_id: String,
    run_id: String,
    workflow_type: String,
}

macro_rules! log_method {
    ($name:ident, $level:ident) => {
        #[doc = concat!("Logs at `", stringify!($level), "` level unless replaying.")]
        pub fn $name(&self, message: impl fmt::Display) {
            if !self.replaying {
                tracing::$name!(
                    workflow_id = %self.workflow_id,
                    run_id = %self.run_id,
                    workflow_type = %self.workflow_type,
                    "{message}"
                );
            }
        }
    };
}

impl WorkflowLogger {
    log_method!(debug, DEBUG);
    log_method!(info, INFO);
    log_method!(warn, WARN);
    log_method!(error, ERROR);
}

/// The future of [`WorkflowContext::wait_condition`].
pub struct Condition<W, F> {
    ctx: WorkflowContext<W>,
    condition: F,
    cancel_generation: Option<u64>,
    timer: Option<Pin<Box<Timer>>>,
}

impl<W, F> Unpin for Condition<W, F> {}

impl<W: 'static, F: FnMut(&W) -> bool> Condition<W, F> {
    fn poll_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, Failure>> {
        {
            let mut run = self.ctx.run.borrow_mut();
            let generation = run.cancel_generation;
            let started = *self.cancel_generation.get_or_insert(generation);
            // A request seen by this wait, or one no wait of the main future has seen yet.
            let cancelled = generation != started;
            if run.take_undelivered_cancel() || cancelled {
                return Poll::Ready(Err(Failure::from_proto(super::cancelled_failure(
                    "workflow cancelled while waiting for a condition",
                ))));
            }
        }
        let holds = {
            let state = self
                .ctx
                .state
                .try_borrow()
                .unwrap_or_else(|_| already_borrowed());
            (self.condition)(&state)
        };
        if holds {
            return Poll::Ready(Ok(true));
        }
        if let Some(timer) = &mut self.timer {
            if let Poll::Ready(fired) = timer.as_mut().poll(cx) {
                return Poll::Ready(fired.map(|()| false));
            }
        }
        self.ctx.run.borrow_mut().wait_for_change(cx.waker());
        Poll::Pending
    }
}

impl<W: 'static, F: FnMut(&W) -> bool> Future for Condition<W, F> {
    type Output = Result<(), Failure>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.poll_inner(cx).map(|r| r.map(|_| ()))
    }
}

struct TimedCondition<W, F>(Condition<W, F>);

impl<W: 'static, F: FnMut(&W) -> bool> Future for TimedCondition<W, F> {
    type Output = Result<bool, Failure>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.poll_inner(cx)
    }
}
