//! The gRPC `WorkflowService` and `OperatorService`: one file per RPC area. A handler decodes and validates the
//! request, then makes one store transaction that calls the state; policy (who may start,
//! what a command does, which task a poller gets) lives below, in `state` and `run`.
//!
//! | module | RPCs |
//! |---|---|
//! | `namespaces` | system and cluster info, namespaces |
//! | `search_attributes` | search attributes: list them, add and remove custom ones (`OperatorService`) |
//! | `workflows` | start, signal-with-start, signal, cancel, terminate, delete, describe, reset, reset sticky queue |
//! | `history` | history reads, forward (and waiting) and reverse |
//! | `workflow_tasks` | workflow task polls and answers, worker shutdown |
//! | `activity_tasks` | activity task polls, heartbeats and answers (by token and by id) |
//! | `pending_activities` | an operator's hand on pending activities: pause, unpause, reset, new options |
//! | `queries` | queries and their answers |
//! | `updates` | updates and update polls |
//! | `multi_operation` | update-with-start |
//! | `task_queues` | describe a task queue: its pollers and backlog |
//! | `visibility` | list and count |
//! | `schedules` | schedules |
//!
//! Every other method answers `Unimplemented`, naming itself and what the engine offers
//! instead (`refused`).

mod activity_tasks;
mod codec;
mod history;
mod long_poll;
mod multi_operation;
mod namespaces;
mod pending_activities;
mod queries;
mod refused;
mod schedules;
mod search_attributes;
mod task_queues;
mod updates;
mod visibility;
mod workflow_tasks;
mod workflows;

pub(crate) use codec::Codec;
pub(crate) use refused::unimplemented;
pub(crate) use schedules::take_backfills;

#[cfg(test)]
mod tests;

use std::{panic::AssertUnwindSafe, sync::Arc};

use futures_util::FutureExt as _;

use tonic::{Request, Response, Status};

use crate::{
    errors,
    proto::{common::Payloads, operator::*, service::*, OperatorService, WorkflowService},
    store::Store,
    validate,
};

/// The service over the store.
pub(crate) struct Service {
    pub(crate) store: Arc<Store>,
}

/// Implements a service (`WorkflowService as SERVED { … }`, `SERVED` naming the methods it
/// serves, for tests) from a table of `access rpc(Request) -> Response => handler`: each
/// handler is a method of [`Service`] in the module of its area, taking the
/// request (with its metadata, for long polls' deadlines) and answering the response
/// message; `access` says what the call may do while the database cannot be written
/// ([`Access`]).
///
/// A handler that panics (a bug) answers `INTERNAL`: its transaction was undone, and the
/// connection and its other calls go on.
macro_rules! rpcs {
    ($service:ident as $served:ident {
        $($access:ident $rpc:ident($request:ident) -> $response:ident => $handler:ident;)*
    }) => {
        /// The methods the engine serves of this service.
        #[cfg(test)]
        const $served: &[&str] = &[$(stringify!($rpc)),*];

        #[tonic::async_trait]
        impl $service for Service {
            $(
                async fn $rpc(
                    &self,
                    request: Request<$request>,
                ) -> Result<Response<$response>, Status> {
                    self.serve(Access::$access, stringify!($rpc), self.$handler(request))
                        .await
                        .map(Response::new)
                }
            )*
        }
    };
}

/// What a call may do while the database cannot be written (a full disk).
///
/// Calls that would change the state are refused before they change anything: a change
/// accepted then could not be acknowledged, and it would pile up in memory for as long as
/// the disk stays full. Reads go on, from memory.
#[derive(Debug, Clone, Copy)]
enum Access {
    /// Served as always; what it reads and was not yet written is answered from memory.
    /// Workflow task polls are reads too: a query reaches the worker that has its run
    /// cached from memory, while a workflow task (or a query that carries history) leaves
    /// once everything it read and wrote is on disk (`long_poll::Answer::Staged`).
    Read,
    /// Refused while the database cannot be written; once it fails under a call in flight,
    /// the call answers at once that its change is kept and will be written.
    Write,
    /// A long poll for activity tasks: refused while the database cannot be written, and
    /// otherwise held as always (a task it took waits for the disk with it, rather than
    /// being lost to a client that gave up).
    Poll,
}

impl Service {
    /// Runs a call's handler as its [`Access`] allows, answering a panic as `INTERNAL`.
    async fn serve<T>(
        &self,
        access: Access,
        rpc: &str,
        handler: impl std::future::Future<Output = Result<T, Status>>,
    ) -> Result<T, Status> {
        let handled = async {
            AssertUnwindSafe(handler)
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| Err(failed(rpc, panic.as_ref())))
        };
        if matches!(access, Access::Read) {
            return handled.await;
        }
        if let Some(failure) = self.store.write_failure() {
            return Err(errors::refused_unwritable(
                &failure.path,
                &failure.cause,
                failure.since,
            ));
        }
        if matches!(access, Access::Poll) {
            return handled.await;
        }
        tokio::select! {
            biased;
            answer = handled => answer,
            failure = self.store.write_fails() => Err(errors::unwritten(&failure.path, &failure.cause)),
        }
    }

    /// Refuses `payloads` sent in `field` if over the blob limit (`INVALID_ARGUMENT`, in
    /// Temporal's words, naming the field and the limit); `run` names the workflow for the
    /// log, where payloads over the warning limit are noted.
    fn check_payloads(
        &self,
        field: &str,
        payloads: Option<&Payloads>,
        run: &str,
    ) -> Result<(), Status> {
        let size = validate::size_of(payloads);
        validate::blob_size(
            self.store.limits(),
            validate::BLOB_TOO_LARGE,
            field,
            size,
            run,
        )
        .map_err(Status::invalid_argument)
    }
}

/// The answer to a call whose handler panicked.
fn failed(rpc: &str, panic: &(dyn std::any::Any + Send)) -> Status {
    let message = crate::store::panic_message(panic);
    tracing::error!("{rpc} failed and applied nothing: {message}");
    Status::internal(format!(
        "the engine failed handling {rpc} and applied none of it: {message}"
    ))
}

rpcs! { WorkflowService as SERVED {
    // namespaces.rs
    Read get_system_info(GetSystemInfoRequest) -> GetSystemInfoResponse => system_info;
    Read get_cluster_info(GetClusterInfoRequest) -> GetClusterInfoResponse => cluster_info;
    // search_attributes.rs
    Read get_search_attributes(GetSearchAttributesRequest) -> GetSearchAttributesResponse => search_attributes;
    Read describe_namespace(DescribeNamespaceRequest) -> DescribeNamespaceResponse => describe_namespace;
    Read list_namespaces(ListNamespacesRequest) -> ListNamespacesResponse => list_namespaces;
    Write register_namespace(RegisterNamespaceRequest) -> RegisterNamespaceResponse => register_namespace;
    // workflows.rs
    Write start_workflow_execution(StartWorkflowExecutionRequest) -> StartWorkflowExecutionResponse => start;
    Write signal_with_start_workflow_execution(SignalWithStartWorkflowExecutionRequest) -> SignalWithStartWorkflowExecutionResponse => signal_with_start;
    Write signal_workflow_execution(SignalWorkflowExecutionRequest) -> SignalWorkflowExecutionResponse => signal;
    Write request_cancel_workflow_execution(RequestCancelWorkflowExecutionRequest) -> RequestCancelWorkflowExecutionResponse => request_cancel;
    Write terminate_workflow_execution(TerminateWorkflowExecutionRequest) -> TerminateWorkflowExecutionResponse => terminate;
    Write delete_workflow_execution(DeleteWorkflowExecutionRequest) -> DeleteWorkflowExecutionResponse => delete;
    Read describe_workflow_execution(DescribeWorkflowExecutionRequest) -> DescribeWorkflowExecutionResponse => describe;
    Write reset_workflow_execution(ResetWorkflowExecutionRequest) -> ResetWorkflowExecutionResponse => reset;
    Write reset_sticky_task_queue(ResetStickyTaskQueueRequest) -> ResetStickyTaskQueueResponse => reset_sticky_task_queue;
    // history.rs
    Read get_workflow_execution_history(GetWorkflowExecutionHistoryRequest) -> GetWorkflowExecutionHistoryResponse => history;
    Read get_workflow_execution_history_reverse(GetWorkflowExecutionHistoryReverseRequest) -> GetWorkflowExecutionHistoryReverseResponse => history_reverse;
    // workflow_tasks.rs
    Read poll_workflow_task_queue(PollWorkflowTaskQueueRequest) -> PollWorkflowTaskQueueResponse => poll_workflow_task;
    Write respond_workflow_task_completed(RespondWorkflowTaskCompletedRequest) -> RespondWorkflowTaskCompletedResponse => workflow_task_completed;
    Write respond_workflow_task_failed(RespondWorkflowTaskFailedRequest) -> RespondWorkflowTaskFailedResponse => workflow_task_failed;
    Write shutdown_worker(ShutdownWorkerRequest) -> ShutdownWorkerResponse => shutdown_worker;
    // activity_tasks.rs
    Poll poll_activity_task_queue(PollActivityTaskQueueRequest) -> PollActivityTaskQueueResponse => poll_activity_task;
    Write record_activity_task_heartbeat(RecordActivityTaskHeartbeatRequest) -> RecordActivityTaskHeartbeatResponse => heartbeat;
    Write record_activity_task_heartbeat_by_id(RecordActivityTaskHeartbeatByIdRequest) -> RecordActivityTaskHeartbeatByIdResponse => heartbeat_by_id;
    Write respond_activity_task_completed(RespondActivityTaskCompletedRequest) -> RespondActivityTaskCompletedResponse => activity_completed;
    Write respond_activity_task_completed_by_id(RespondActivityTaskCompletedByIdRequest) -> RespondActivityTaskCompletedByIdResponse => activity_completed_by_id;
    Write respond_activity_task_failed(RespondActivityTaskFailedRequest) -> RespondActivityTaskFailedResponse => activity_failed;
    Write respond_activity_task_failed_by_id(RespondActivityTaskFailedByIdRequest) -> RespondActivityTaskFailedByIdResponse => activity_failed_by_id;
    Write respond_activity_task_canceled(RespondActivityTaskCanceledRequest) -> RespondActivityTaskCanceledResponse => activity_canceled;
    Write respond_activity_task_canceled_by_id(RespondActivityTaskCanceledByIdRequest) -> RespondActivityTaskCanceledByIdResponse => activity_canceled_by_id;
    // pending_activities.rs
    Write pause_activity(PauseActivityRequest) -> PauseActivityResponse => pause_activity;
    Write unpause_activity(UnpauseActivityRequest) -> UnpauseActivityResponse => unpause_activity;
    Write reset_activity(ResetActivityRequest) -> ResetActivityResponse => reset_activity;
    Write update_activity_options(UpdateActivityOptionsRequest) -> UpdateActivityOptionsResponse => update_activity_options;
    // queries.rs
    Read query_workflow(QueryWorkflowRequest) -> QueryWorkflowResponse => query;
    Read respond_query_task_completed(RespondQueryTaskCompletedRequest) -> RespondQueryTaskCompletedResponse => query_answered;
    // updates.rs
    Write update_workflow_execution(UpdateWorkflowExecutionRequest) -> UpdateWorkflowExecutionResponse => update;
    Read poll_workflow_execution_update(PollWorkflowExecutionUpdateRequest) -> PollWorkflowExecutionUpdateResponse => poll_update;
    // task_queues.rs
    Read describe_task_queue(DescribeTaskQueueRequest) -> DescribeTaskQueueResponse => describe_task_queue;
    // multi_operation.rs
    Write execute_multi_operation(ExecuteMultiOperationRequest) -> ExecuteMultiOperationResponse => execute_multi_operation;
    // visibility.rs
    Read list_workflow_executions(ListWorkflowExecutionsRequest) -> ListWorkflowExecutionsResponse => list;
    Read count_workflow_executions(CountWorkflowExecutionsRequest) -> CountWorkflowExecutionsResponse => count;
    // schedules.rs
    Write create_schedule(CreateScheduleRequest) -> CreateScheduleResponse => create_schedule;
    Read describe_schedule(DescribeScheduleRequest) -> DescribeScheduleResponse => describe_schedule;
    Write update_schedule(UpdateScheduleRequest) -> UpdateScheduleResponse => update_schedule;
    Write patch_schedule(PatchScheduleRequest) -> PatchScheduleResponse => patch_schedule;
    Read list_schedule_matching_times(ListScheduleMatchingTimesRequest) -> ListScheduleMatchingTimesResponse => schedule_matching_times;
    Write delete_schedule(DeleteScheduleRequest) -> DeleteScheduleResponse => delete_schedule;
    Read count_schedules(CountSchedulesRequest) -> CountSchedulesResponse => count_schedules;
    Read list_schedules(ListSchedulesRequest) -> ListSchedulesResponse => list_schedules;
} }

rpcs! { OperatorService as SERVED_OPERATOR {
    // search_attributes.rs
    Read list_search_attributes(ListSearchAttributesRequest) -> ListSearchAttributesResponse => list_search_attributes;
    Write add_search_attributes(AddSearchAttributesRequest) -> AddSearchAttributesResponse => add_search_attributes;
    Write remove_search_attributes(RemoveSearchAttributesRequest) -> RemoveSearchAttributesResponse => remove_search_attributes;
} }
