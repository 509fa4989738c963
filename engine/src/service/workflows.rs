//! Client calls on a workflow: start (and signal-with-start), signal, cancel, terminate,
//! delete, describe, reset, and resetting its sticky queue.

// `TerminateIfRunning` is deprecated but still sent by older clients.
#![allow(deprecated)]

use tonic::{Request, Status};

use super::Service;
use crate::{
    errors,
    limits::Limits,
    proto::{
        common::{link, Link},
        enums::{
            EventType, WorkflowExecutionStatus, WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
        },
        history::{
            WorkflowExecutionCancelRequestedEventAttributes,
            WorkflowExecutionSignaledEventAttributes, WorkflowExecutionStartedEventAttributes,
        },
        service::*,
    },
    run::{Reapply, Reset},
    state::StartWorkflow,
    validate,
};

/// Checks a start request (`request` names it in messages: a start or a
/// signal-with-start) and turns it into the state's start.
pub(super) fn start_request(
    r: StartWorkflowExecutionRequest,
    request: &str,
    limits: &Limits,
) -> Result<StartWorkflow, Status> {
    if r.workflow_id.is_empty() {
        return Err(errors::missing("workflow id"));
    }
    let run = format!("workflow `{}`", r.workflow_id);
    validate::blob_size(
        limits,
        validate::BLOB_TOO_LARGE,
        &format!("{request}.input"),
        validate::size_of(r.input.as_ref()),
        &run,
    )
    .map_err(Status::invalid_argument)?;
    validate::memo_size(limits, &format!("{request}.memo"), r.memo.as_ref(), &run)
        .map_err(Status::invalid_argument)?;
    if r.workflow_type.as_ref().is_none_or(|t| t.name.is_empty()) {
        return Err(errors::missing("workflow type"));
    }
    if r.task_queue.as_ref().is_none_or(|q| q.name.is_empty()) {
        return Err(errors::missing("task queue"));
    }
    for (field, d) in [
        ("workflow_execution_timeout", &r.workflow_execution_timeout),
        ("workflow_run_timeout", &r.workflow_run_timeout),
        ("workflow_task_timeout", &r.workflow_task_timeout),
        ("workflow_start_delay", &r.workflow_start_delay),
    ] {
        validate::duration(field, d.as_ref()).map_err(Status::invalid_argument)?;
    }
    validate::retry_policy("retry_policy", r.retry_policy.as_ref())
        .map_err(Status::invalid_argument)?;
    let mut r = r;
    validate::limit_optional_failure(&mut r.continued_failure);
    if !r.cron_schedule.is_empty() {
        if r.workflow_start_delay.is_some() {
            return Err(Status::invalid_argument(
                "a cron schedule and a start delay cannot be used together",
            ));
        }
        crate::schedules::spec::cron_spec(&r.cron_schedule).map_err(|e| {
            Status::invalid_argument(format!("cron schedule `{}`: {e}", r.cron_schedule))
        })?;
    }
    Ok(StartWorkflow {
        reuse: WorkflowIdReusePolicy::try_from(r.workflow_id_reuse_policy).unwrap_or_default(),
        conflict: WorkflowIdConflictPolicy::try_from(r.workflow_id_conflict_policy)
            .unwrap_or_default(),
        attrs: WorkflowExecutionStartedEventAttributes {
            workflow_type: r.workflow_type,
            task_queue: r.task_queue,
            input: r.input,
            workflow_execution_timeout: r.workflow_execution_timeout,
            workflow_run_timeout: r.workflow_run_timeout,
            workflow_task_timeout: r.workflow_task_timeout,
            identity: r.identity.clone(),
            retry_policy: r.retry_policy,
            memo: r.memo,
            search_attributes: r.search_attributes,
            header: r.header,
            last_completion_result: r.last_completion_result,
            continued_failure: r.continued_failure,
            cron_schedule: r.cron_schedule,
            first_workflow_task_backoff: r.workflow_start_delay,
            priority: r.priority,
            ..Default::default()
        },
        user_metadata: r.user_metadata,
        namespace: r.namespace,
        workflow_id: r.workflow_id,
        request_id: r.request_id,
        identity: r.identity,
    })
}

impl Service {
    pub(super) async fn start(
        &self,
        request: Request<StartWorkflowExecutionRequest>,
    ) -> Result<StartWorkflowExecutionResponse, Status> {
        let r = request.into_inner();
        // As on Temporal: a start that asks for it, with no delay, gets the first workflow
        // task itself (its caller is a worker of the workflow's queue).
        let eager = r.request_eager_execution && r.workflow_start_delay.is_none();
        let start = start_request(r, "StartWorkflowExecutionRequest", self.store.limits())?;
        let (run_id, started, eager_workflow_task) = self
            .store
            .transaction(|state| {
                let identity = start.identity.clone();
                let (run_id, started) = state.start_workflow(start)?;
                let task = if eager && started {
                    state.start_eagerly(&run_id, &identity)
                } else {
                    None
                };
                Ok::<_, Status>((run_id, started, task))
            })
            .await?;
        Ok(StartWorkflowExecutionResponse {
            run_id,
            started,
            status: WorkflowExecutionStatus::Running as i32,
            eager_workflow_task,
            ..Default::default()
        })
    }

    pub(super) async fn signal_with_start(
        &self,
        request: Request<SignalWithStartWorkflowExecutionRequest>,
    ) -> Result<SignalWithStartWorkflowExecutionResponse, Status> {
        let r = request.into_inner();
        self.check_payloads(
            "SignalWithStartWorkflowExecutionRequest.signal_input",
            r.signal_input.as_ref(),
            &format!("workflow `{}`", r.workflow_id),
        )?;
        let signal = WorkflowExecutionSignaledEventAttributes {
            signal_name: r.signal_name,
            input: r.signal_input,
            identity: r.identity.clone(),
            header: r.header.clone(),
            ..Default::default()
        };
        let start = start_request(
            StartWorkflowExecutionRequest {
                namespace: r.namespace,
                workflow_id: r.workflow_id,
                workflow_type: r.workflow_type,
                task_queue: r.task_queue,
                input: r.input,
                workflow_execution_timeout: r.workflow_execution_timeout,
                workflow_run_timeout: r.workflow_run_timeout,
                workflow_task_timeout: r.workflow_task_timeout,
                identity: r.identity,
                request_id: r.request_id,
                workflow_id_reuse_policy: r.workflow_id_reuse_policy,
                workflow_id_conflict_policy: r.workflow_id_conflict_policy,
                retry_policy: r.retry_policy,
                memo: r.memo,
                search_attributes: r.search_attributes,
                header: r.header,
                cron_schedule: r.cron_schedule,
                workflow_start_delay: r.workflow_start_delay,
                user_metadata: r.user_metadata,
                priority: r.priority,
                ..Default::default()
            },
            "SignalWithStartWorkflowExecutionRequest",
            self.store.limits(),
        )?;
        let (run_id, started) = self
            .store
            .transaction(|state| state.signal_with_start(start, signal))
            .await?;
        Ok(SignalWithStartWorkflowExecutionResponse {
            run_id,
            started,
            ..Default::default()
        })
    }

    pub(super) async fn signal(
        &self,
        request: Request<SignalWorkflowExecutionRequest>,
    ) -> Result<SignalWorkflowExecutionResponse, Status> {
        let r = request.into_inner();
        let workflow_id = r.workflow_execution.as_ref().map_or("", |e| &e.workflow_id);
        self.check_payloads(
            "SignalWorkflowExecutionRequest.input",
            r.input.as_ref(),
            &format!("workflow `{workflow_id}`"),
        )?;
        let signal = WorkflowExecutionSignaledEventAttributes {
            signal_name: r.signal_name,
            input: r.input,
            identity: r.identity,
            header: r.header,
            ..Default::default()
        };
        let run_id = self
            .store
            .transaction(|state| {
                let run_id =
                    state.resolve_open_run_id(&r.namespace, r.workflow_execution.as_ref())?;
                state.with_run(&run_id, |run, ctx| run.signal(ctx, &r.request_id, signal));
                Ok::<_, Status>(run_id)
            })
            .await?;
        // As Temporal: a link to the signal's event, by the request that sent it.
        Ok(SignalWorkflowExecutionResponse {
            link: Some(event_link(
                &r.namespace,
                workflow_id,
                &run_id,
                &r.request_id,
                EventType::WorkflowExecutionSignaled,
            )),
        })
    }

    pub(super) async fn request_cancel(
        &self,
        request: Request<RequestCancelWorkflowExecutionRequest>,
    ) -> Result<RequestCancelWorkflowExecutionResponse, Status> {
        let r = request.into_inner();
        let cancel = WorkflowExecutionCancelRequestedEventAttributes {
            cause: r.reason,
            identity: r.identity,
            ..Default::default()
        };
        self.store
            .transaction(|state| {
                // A run that already closed takes the request as done (as on Temporal).
                let run_id = state.resolve_run_id(&r.namespace, r.workflow_execution.as_ref())?;
                state.request_cancel(&run_id, cancel);
                Ok::<_, Status>(())
            })
            .await?;
        Ok(RequestCancelWorkflowExecutionResponse::default())
    }

    pub(super) async fn terminate(
        &self,
        request: Request<TerminateWorkflowExecutionRequest>,
    ) -> Result<TerminateWorkflowExecutionResponse, Status> {
        let r = request.into_inner();
        self.store
            .transaction(|state| {
                let run_id =
                    state.resolve_open_run_id(&r.namespace, r.workflow_execution.as_ref())?;
                state.terminate_with_details(&run_id, &r.reason, r.details, &r.identity);
                Ok::<_, Status>(())
            })
            .await?;
        Ok(TerminateWorkflowExecutionResponse::default())
    }

    pub(super) async fn delete(
        &self,
        request: Request<DeleteWorkflowExecutionRequest>,
    ) -> Result<DeleteWorkflowExecutionResponse, Status> {
        let r = request.into_inner();
        self.store
            .transaction(|state| {
                let run_id = state.resolve_run_id(&r.namespace, r.workflow_execution.as_ref())?;
                state.delete_run(&run_id);
                Ok::<_, Status>(())
            })
            .await?;
        Ok(DeleteWorkflowExecutionResponse {})
    }

    pub(super) async fn describe(
        &self,
        request: Request<DescribeWorkflowExecutionRequest>,
    ) -> Result<DescribeWorkflowExecutionResponse, Status> {
        let r = request.into_inner();
        self.store
            .transaction(|state| {
                let run_id = state.resolve_run_id(&r.namespace, r.execution.as_ref())?;
                let run = &state.runs[&run_id];
                Ok(DescribeWorkflowExecutionResponse {
                    execution_config: Some(run.execution_config()),
                    workflow_execution_info: Some(run.execution_info()),
                    pending_activities: run.pending_activities(),
                    pending_children: run.pending_children(),
                    workflow_extended_info: Some(run.extended_info()),
                    ..Default::default()
                })
            })
            .await
    }

    pub(super) async fn reset(
        &self,
        request: Request<ResetWorkflowExecutionRequest>,
    ) -> Result<ResetWorkflowExecutionResponse, Status> {
        let r = request.into_inner();
        // Temporal's checks and words.
        if r.namespace.is_empty() {
            return Err(Status::invalid_argument("Namespace is empty."));
        }
        let Some(execution) = r.workflow_execution.as_ref() else {
            return Err(Status::invalid_argument("Execution is not set on request."));
        };
        if execution.workflow_id.is_empty() {
            return Err(Status::invalid_argument(
                "WorkflowId is not set on request.",
            ));
        }
        if !execution.run_id.is_empty() && uuid::Uuid::parse_str(&execution.run_id).is_err() {
            return Err(Status::invalid_argument("Invalid RunId."));
        }
        if r.request_id.is_empty() {
            return Err(Status::invalid_argument("RequestId is not set on request."));
        }
        let reset = Reset {
            reason: r.reason,
            request_id: r.request_id,
            finish_event_id: r.workflow_task_finish_event_id,
            reapply: Reapply::from_request(r.reset_reapply_type, &r.reset_reapply_exclude_types),
        };
        let run_id = self
            .store
            .transaction(|state| {
                state.reset_workflow(&r.namespace, r.workflow_execution.as_ref(), reset)
            })
            .await?;
        Ok(ResetWorkflowExecutionResponse { run_id })
    }

    pub(super) async fn reset_sticky_task_queue(
        &self,
        request: Request<ResetStickyTaskQueueRequest>,
    ) -> Result<ResetStickyTaskQueueResponse, Status> {
        let r = request.into_inner();
        self.store
            .transaction(|state| {
                let run_id = state.resolve_run_id(&r.namespace, r.execution.as_ref())?;
                state.with_run(&run_id, |run, ctx| run.drop_stickiness(ctx));
                Ok::<_, Status>(())
            })
            .await?;
        Ok(ResetStickyTaskQueueResponse::default())
    }
}

/// A link to the event a request made in a run, by the request's id, as Temporal answers
/// a signal with.
fn event_link(
    namespace: &str,
    workflow_id: &str,
    run_id: &str,
    request_id: &str,
    event_type: EventType,
) -> Link {
    Link {
        variant: Some(link::Variant::WorkflowEvent(link::WorkflowEvent {
            namespace: namespace.to_owned(),
            workflow_id: workflow_id.to_owned(),
            run_id: run_id.to_owned(),
            reference: Some(link::workflow_event::Reference::RequestIdRef(
                link::workflow_event::RequestIdReference {
                    request_id: request_id.to_owned(),
                    event_type: event_type as i32,
                },
            )),
        })),
    }
}
