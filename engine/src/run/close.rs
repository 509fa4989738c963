//! Closing a run: by its workflow (complete, fail, cancel, continue-as-new) or from
//! outside (terminate, run timeout); and the run that follows it: a retry of a failed or
//! timed-out run within its retry policy, else the next run of its cron schedule.

use std::time::{Duration, SystemTime};

use super::{retry, task_queue, CrossRun, Ctx, Run, StartRun};
use crate::proto::{
    self,
    command::{
        CancelWorkflowExecutionCommandAttributes, CompleteWorkflowExecutionCommandAttributes,
        ContinueAsNewWorkflowExecutionCommandAttributes, FailWorkflowExecutionCommandAttributes,
    },
    common::Payloads,
    enums::{ContinueAsNewInitiator, RetryState, TimeoutType, WorkflowExecutionStatus},
    failure::{failure::FailureInfo, Failure, TimeoutFailureInfo},
    history::{history_event::Attributes, *},
};

/// How a run closes, for what follows it.
#[derive(Clone, Copy)]
enum Closing<'a> {
    Completed(Option<&'a Payloads>),
    Failed(&'a Failure),
    TimedOut,
}

/// The run id of a successor, for the close event (empty: none).
fn successor_id(next: &Option<StartRun>) -> String {
    next.as_ref()
        .map(|s| s.attrs.original_execution_run_id.clone())
        .unwrap_or_default()
}

/// The next time of a workflow's cron schedule after `now` (`None`: no schedule, or one
/// that never fires again).
pub(super) fn cron_next(cron: &str, now: SystemTime) -> Option<SystemTime> {
    if cron.trim().is_empty() {
        return None;
    }
    crate::schedules::spec::cron_spec(cron)
        .ok()?
        .next_after(now)
}

impl Run {
    /// Closes the run after its close event was written: nothing it waited on matters
    /// any more, and updates not completed fail.
    fn close(&mut self, ctx: &mut Ctx<'_>, status: WorkflowExecutionStatus) {
        self.status = status;
        self.close_time = Some(ctx.now);
        self.wft = None;
        self.backoff_until = None;
        self.activities.clear();
        self.timers.clear();
        self.buffered.clear();
        self.fail_pending_updates();
    }

    /// Writes a close event that no workflow code asked for (termination, timeout).
    fn close_from_outside(
        &mut self,
        ctx: &mut Ctx<'_>,
        attrs: Attributes,
        status: WorkflowExecutionStatus,
    ) {
        self.force_close_workflow_task(ctx);
        self.flush_buffered(ctx);
        self.append(ctx, attrs);
        self.close(ctx, status);
    }

    /// `CompleteWorkflowExecution`: closes the run (its cron schedule may start the next).
    pub(super) fn complete_workflow_execution(
        &mut self,
        ctx: &mut Ctx<'_>,
        completed_id: i64,
        a: CompleteWorkflowExecutionCommandAttributes,
    ) -> Option<CrossRun> {
        let (next, _) = self.successor(ctx.now, Closing::Completed(a.result.as_ref()));
        self.new_run_id = successor_id(&next);
        self.append(
            ctx,
            Attributes::WorkflowExecutionCompletedEventAttributes(
                WorkflowExecutionCompletedEventAttributes {
                    result: a.result,
                    workflow_task_completed_event_id: completed_id,
                    new_execution_run_id: self.new_run_id.clone(),
                },
            ),
        );
        self.close(ctx, WorkflowExecutionStatus::Completed);
        next.map(|start| CrossRun::ContinueAsNew(Box::new(start)))
    }

    /// `FailWorkflowExecution`: closes the run (its retry policy or cron schedule may
    /// start the next).
    pub(super) fn fail_workflow_execution(
        &mut self,
        ctx: &mut Ctx<'_>,
        completed_id: i64,
        a: FailWorkflowExecutionCommandAttributes,
    ) -> Option<CrossRun> {
        let failure = a.failure.unwrap_or_default();
        let (next, retry_state) = self.successor(ctx.now, Closing::Failed(&failure));
        self.new_run_id = successor_id(&next);
        self.append(
            ctx,
            Attributes::WorkflowExecutionFailedEventAttributes(
                WorkflowExecutionFailedEventAttributes {
                    failure: Some(failure),
                    retry_state: retry_state as i32,
                    workflow_task_completed_event_id: completed_id,
                    new_execution_run_id: self.new_run_id.clone(),
                },
            ),
        );
        self.close(ctx, WorkflowExecutionStatus::Failed);
        next.map(|start| CrossRun::ContinueAsNew(Box::new(start)))
    }

    /// `CancelWorkflowExecution`: closes the run as cancelled.
    pub(super) fn cancel_workflow_execution(
        &mut self,
        ctx: &mut Ctx<'_>,
        completed_id: i64,
        a: CancelWorkflowExecutionCommandAttributes,
    ) {
        self.append(
            ctx,
            Attributes::WorkflowExecutionCanceledEventAttributes(
                WorkflowExecutionCanceledEventAttributes {
                    workflow_task_completed_event_id: completed_id,
                    details: a.details,
                },
            ),
        );
        self.close(ctx, WorkflowExecutionStatus::Canceled);
    }

    /// `ContinueAsNewWorkflowExecution`: closes the run and names the one that continues
    /// it with the same workflow id.
    pub(super) fn continue_as_new(
        &mut self,
        ctx: &mut Ctx<'_>,
        completed_id: i64,
        a: ContinueAsNewWorkflowExecutionCommandAttributes,
    ) -> CrossRun {
        let new_run_id = super::new_run_id();
        let workflow_type = a
            .workflow_type
            .filter(|t| !t.name.is_empty())
            .or_else(|| self.started.workflow_type.clone());
        let queue = a
            .task_queue
            .filter(|q| !q.name.is_empty())
            .or_else(|| task_queue(&self.task_queue));
        let run_timeout = a.workflow_run_timeout.or(self.started.workflow_run_timeout);
        let task_timeout = a
            .workflow_task_timeout
            .or(self.started.workflow_task_timeout);
        self.append(
            ctx,
            Attributes::WorkflowExecutionContinuedAsNewEventAttributes(
                WorkflowExecutionContinuedAsNewEventAttributes {
                    new_execution_run_id: new_run_id.clone(),
                    workflow_type: workflow_type.clone(),
                    task_queue: queue.clone(),
                    input: a.input.clone(),
                    workflow_run_timeout: run_timeout,
                    workflow_task_timeout: task_timeout,
                    workflow_task_completed_event_id: completed_id,
                    backoff_start_interval: a.backoff_start_interval,
                    initiator: if a.initiator == 0 {
                        ContinueAsNewInitiator::Workflow as i32
                    } else {
                        a.initiator
                    },
                    failure: a.failure.clone(),
                    last_completion_result: a.last_completion_result.clone(),
                    header: a.header.clone(),
                    memo: a.memo.clone(),
                    search_attributes: a.search_attributes.clone(),
                    ..Default::default()
                },
            ),
        );
        self.new_run_id = new_run_id.clone();
        self.close(ctx, WorkflowExecutionStatus::ContinuedAsNew);
        let started = WorkflowExecutionStartedEventAttributes {
            workflow_type,
            parent_workflow_namespace: self.started.parent_workflow_namespace.clone(),
            parent_workflow_execution: self.started.parent_workflow_execution.clone(),
            parent_initiated_event_id: self.started.parent_initiated_event_id,
            task_queue: queue,
            input: a.input,
            workflow_execution_timeout: self.started.workflow_execution_timeout,
            workflow_run_timeout: run_timeout,
            workflow_task_timeout: task_timeout,
            continued_execution_run_id: self.run_id.clone(),
            initiator: ContinueAsNewInitiator::Workflow as i32,
            continued_failure: a.failure,
            last_completion_result: a.last_completion_result,
            original_execution_run_id: new_run_id.clone(),
            identity: self.started.identity.clone(),
            first_execution_run_id: self.started.first_execution_run_id.clone(),
            retry_policy: a.retry_policy.or(self.started.retry_policy.clone()),
            attempt: 1,
            header: a.header,
            memo: a.memo.or(self.memo.clone()),
            search_attributes: a.search_attributes.or(self.search_attributes.clone()),
            workflow_id: self.workflow_id.clone(),
            root_workflow_execution: self.started.root_workflow_execution.clone(),
            priority: self.started.priority.clone(),
            ..Default::default()
        };
        CrossRun::ContinueAsNew(Box::new(StartRun {
            namespace: self.namespace.clone(),
            workflow_id: self.workflow_id.clone(),
            request_id: new_run_id,
            attrs: started,
            user_metadata: None,
            parent: self.parent.clone(),
        }))
    }

    /// Terminates the open run.
    pub(crate) fn terminate(
        &mut self,
        ctx: &mut Ctx<'_>,
        reason: &str,
        details: Option<Payloads>,
        identity: &str,
    ) {
        if !self.is_open() {
            return;
        }
        self.close_from_outside(
            ctx,
            Attributes::WorkflowExecutionTerminatedEventAttributes(
                WorkflowExecutionTerminatedEventAttributes {
                    reason: reason.to_owned(),
                    details,
                    identity: identity.to_owned(),
                },
            ),
            WorkflowExecutionStatus::Terminated,
        );
    }

    /// The run timed out: closes it, and answers the run that follows it (a retry, or the
    /// next cron run), if any.
    pub(crate) fn time_out(&mut self, ctx: &mut Ctx<'_>) -> Option<StartRun> {
        if !self.is_open() || self.expiration().is_some_and(|at| ctx.now < at) {
            return None;
        }
        let (next, retry_state) = self.successor(ctx.now, Closing::TimedOut);
        self.new_run_id = successor_id(&next);
        self.close_from_outside(
            ctx,
            Attributes::WorkflowExecutionTimedOutEventAttributes(
                WorkflowExecutionTimedOutEventAttributes {
                    retry_state: retry_state as i32,
                    new_execution_run_id: self.new_run_id.clone(),
                },
            ),
            WorkflowExecutionStatus::TimedOut,
        );
        next
    }

    /// The run that follows this one as it closes, if any, and the retry state for the
    /// close event.
    fn successor(&self, now: SystemTime, closing: Closing<'_>) -> (Option<StartRun>, RetryState) {
        let mut retry_state = RetryState::RetryPolicyNotSet;
        let failure = match closing {
            Closing::Completed(_) => None,
            Closing::Failed(failure) => Some(failure.clone()),
            Closing::TimedOut => Some(Failure {
                message: "workflow run timed out".to_owned(),
                failure_info: Some(FailureInfo::TimeoutFailureInfo(TimeoutFailureInfo {
                    timeout_type: TimeoutType::StartToClose as i32,
                    ..Default::default()
                })),
                ..Default::default()
            }),
        };
        if let (Some(failure), Some(policy)) = (&failure, &self.started.retry_policy) {
            let policy = retry::with_defaults(Some(policy.clone()));
            let attempt = self.started.attempt.max(1);
            let (backoff, state) = retry::decide(attempt, &policy, failure, None, now);
            retry_state = state;
            if let Some(backoff) = backoff {
                let mut attrs = self.next_run_attributes(backoff, ContinueAsNewInitiator::Retry);
                attrs.attempt = attempt + 1;
                attrs.continued_failure = Some(failure.clone());
                attrs.last_completion_result = self.started.last_completion_result.clone();
                return (Some(self.next_run(attrs)), retry_state);
            }
        }
        if matches!(closing, Closing::TimedOut) && retry_state == RetryState::RetryPolicyNotSet {
            retry_state = RetryState::Timeout;
        }
        let Some(next) = cron_next(&self.started.cron_schedule, now) else {
            return (None, retry_state);
        };
        let mut attrs = self.next_run_attributes(
            next.duration_since(now).unwrap_or_default(),
            ContinueAsNewInitiator::CronSchedule,
        );
        match closing {
            Closing::Completed(result) => attrs.last_completion_result = result.cloned(),
            _ => {
                attrs.continued_failure = failure;
                attrs.last_completion_result = self.started.last_completion_result.clone();
            }
        }
        (Some(self.next_run(attrs)), retry_state)
    }

    /// The started attributes of a run that continues this one after `backoff`.
    fn next_run_attributes(
        &self,
        backoff: Duration,
        initiator: ContinueAsNewInitiator,
    ) -> WorkflowExecutionStartedEventAttributes {
        WorkflowExecutionStartedEventAttributes {
            continued_execution_run_id: self.run_id.clone(),
            original_execution_run_id: super::new_run_id(),
            initiator: initiator as i32,
            first_workflow_task_backoff: Some(proto::proto_duration(backoff)),
            attempt: 1,
            continued_failure: None,
            last_completion_result: None,
            parent_initiated_event_version: 0,
            prev_auto_reset_points: None,
            // As the workflow left them.
            memo: self.memo.clone(),
            search_attributes: self.search_attributes.clone(),
            ..(*self.started).clone()
        }
    }

    fn next_run(&self, attrs: WorkflowExecutionStartedEventAttributes) -> StartRun {
        StartRun {
            namespace: self.namespace.clone(),
            workflow_id: self.workflow_id.clone(),
            request_id: attrs.original_execution_run_id.clone(),
            attrs,
            user_metadata: None,
            parent: self.parent.clone(),
        }
    }
}
