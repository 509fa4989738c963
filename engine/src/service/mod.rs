//! The gRPC `WorkflowService`: one file per RPC area. A handler decodes and validates the
//! request, then makes one store transaction that calls the state; policy (who may start,
//! what a command does, which task a poller gets) lives below, in `state` and `run`.
//!
//! | module | RPCs |
//! |---|---|
//! | `namespaces` | system and cluster info, namespaces, search attribute names |
//! | `workflows` | start, signal-with-start, signal, cancel, terminate, delete, describe, reset sticky queue |
//! | `history` | history reads, forward (and waiting) and reverse |
//! | `workflow_tasks` | workflow task polls and answers, worker shutdown |
//! | `activity_tasks` | activity task polls, heartbeats and answers (by token and by id) |
//! | `queries` | queries and their answers |
//! | `updates` | updates and update polls |
//! | `visibility` | list and count |
//! | `schedules` | schedules |
//!
//! Every other `WorkflowService` method answers `Unimplemented`, naming itself.

mod activity_tasks;
mod codec;
mod history;
mod long_poll;
mod namespaces;
mod queries;
mod schedules;
mod updates;
mod visibility;
mod workflow_tasks;
mod workflows;

pub(crate) use codec::Codec;
pub(crate) use schedules::take_backfills;

#[cfg(test)]
mod tests;

use std::{panic::AssertUnwindSafe, sync::Arc};

use futures_util::FutureExt as _;

use tonic::{Request, Response, Status};

use crate::{
    proto::{common::Payloads, service::*, WorkflowService},
    store::Store,
    validate,
};

/// The service over the store.
pub(crate) struct Service {
    pub(crate) store: Arc<Store>,
}

/// Implements `WorkflowService` from a table of `rpc(Request) -> Response => handler`:
/// each handler is a method of [`Service`] in the module of its area, taking the request
/// (with its metadata, for long polls' deadlines) and answering the response message.
///
/// A handler that panics (a bug) answers `INTERNAL`: its transaction was undone, and the
/// connection and its other calls go on.
macro_rules! rpcs {
    ($($rpc:ident($request:ident) -> $response:ident => $handler:ident;)*) => {
        #[tonic::async_trait]
        impl WorkflowService for Service {
            $(
                async fn $rpc(
                    &self,
                    request: Request<$request>,
                ) -> Result<Response<$response>, Status> {
                    let handled = AssertUnwindSafe(self.$handler(request)).catch_unwind().await;
                    handled.unwrap_or_else(|panic| Err(failed(stringify!($rpc), panic.as_ref())))
                        .map(Response::new)
                }
            )*
        }
    };
}

impl Service {
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
    Status::internal(format!(
        "the engine failed handling {rpc} and applied none of it: {}",
        crate::store::panic_message(panic)
    ))
}

rpcs! {
    // namespaces.rs
    get_system_info(GetSystemInfoRequest) -> GetSystemInfoResponse => system_info;
    get_cluster_info(GetClusterInfoRequest) -> GetClusterInfoResponse => cluster_info;
    get_search_attributes(GetSearchAttributesRequest) -> GetSearchAttributesResponse => search_attributes;
    describe_namespace(DescribeNamespaceRequest) -> DescribeNamespaceResponse => describe_namespace;
    list_namespaces(ListNamespacesRequest) -> ListNamespacesResponse => list_namespaces;
    register_namespace(RegisterNamespaceRequest) -> RegisterNamespaceResponse => register_namespace;
    // workflows.rs
    start_workflow_execution(StartWorkflowExecutionRequest) -> StartWorkflowExecutionResponse => start;
    signal_with_start_workflow_execution(SignalWithStartWorkflowExecutionRequest) -> SignalWithStartWorkflowExecutionResponse => signal_with_start;
    signal_workflow_execution(SignalWorkflowExecutionRequest) -> SignalWorkflowExecutionResponse => signal;
    request_cancel_workflow_execution(RequestCancelWorkflowExecutionRequest) -> RequestCancelWorkflowExecutionResponse => request_cancel;
    terminate_workflow_execution(TerminateWorkflowExecutionRequest) -> TerminateWorkflowExecutionResponse => terminate;
    delete_workflow_execution(DeleteWorkflowExecutionRequest) -> DeleteWorkflowExecutionResponse => delete;
    describe_workflow_execution(DescribeWorkflowExecutionRequest) -> DescribeWorkflowExecutionResponse => describe;
    reset_sticky_task_queue(ResetStickyTaskQueueRequest) -> ResetStickyTaskQueueResponse => reset_sticky_task_queue;
    // history.rs
    get_workflow_execution_history(GetWorkflowExecutionHistoryRequest) -> GetWorkflowExecutionHistoryResponse => history;
    get_workflow_execution_history_reverse(GetWorkflowExecutionHistoryReverseRequest) -> GetWorkflowExecutionHistoryReverseResponse => history_reverse;
    // workflow_tasks.rs
    poll_workflow_task_queue(PollWorkflowTaskQueueRequest) -> PollWorkflowTaskQueueResponse => poll_workflow_task;
    respond_workflow_task_completed(RespondWorkflowTaskCompletedRequest) -> RespondWorkflowTaskCompletedResponse => workflow_task_completed;
    respond_workflow_task_failed(RespondWorkflowTaskFailedRequest) -> RespondWorkflowTaskFailedResponse => workflow_task_failed;
    shutdown_worker(ShutdownWorkerRequest) -> ShutdownWorkerResponse => shutdown_worker;
    // activity_tasks.rs
    poll_activity_task_queue(PollActivityTaskQueueRequest) -> PollActivityTaskQueueResponse => poll_activity_task;
    record_activity_task_heartbeat(RecordActivityTaskHeartbeatRequest) -> RecordActivityTaskHeartbeatResponse => heartbeat;
    record_activity_task_heartbeat_by_id(RecordActivityTaskHeartbeatByIdRequest) -> RecordActivityTaskHeartbeatByIdResponse => heartbeat_by_id;
    respond_activity_task_completed(RespondActivityTaskCompletedRequest) -> RespondActivityTaskCompletedResponse => activity_completed;
    respond_activity_task_completed_by_id(RespondActivityTaskCompletedByIdRequest) -> RespondActivityTaskCompletedByIdResponse => activity_completed_by_id;
    respond_activity_task_failed(RespondActivityTaskFailedRequest) -> RespondActivityTaskFailedResponse => activity_failed;
    respond_activity_task_failed_by_id(RespondActivityTaskFailedByIdRequest) -> RespondActivityTaskFailedByIdResponse => activity_failed_by_id;
    respond_activity_task_canceled(RespondActivityTaskCanceledRequest) -> RespondActivityTaskCanceledResponse => activity_canceled;
    respond_activity_task_canceled_by_id(RespondActivityTaskCanceledByIdRequest) -> RespondActivityTaskCanceledByIdResponse => activity_canceled_by_id;
    // queries.rs
    query_workflow(QueryWorkflowRequest) -> QueryWorkflowResponse => query;
    respond_query_task_completed(RespondQueryTaskCompletedRequest) -> RespondQueryTaskCompletedResponse => query_answered;
    // updates.rs
    update_workflow_execution(UpdateWorkflowExecutionRequest) -> UpdateWorkflowExecutionResponse => update;
    poll_workflow_execution_update(PollWorkflowExecutionUpdateRequest) -> PollWorkflowExecutionUpdateResponse => poll_update;
    // visibility.rs
    list_workflow_executions(ListWorkflowExecutionsRequest) -> ListWorkflowExecutionsResponse => list;
    count_workflow_executions(CountWorkflowExecutionsRequest) -> CountWorkflowExecutionsResponse => count;
    // schedules.rs
    create_schedule(CreateScheduleRequest) -> CreateScheduleResponse => create_schedule;
    describe_schedule(DescribeScheduleRequest) -> DescribeScheduleResponse => describe_schedule;
    update_schedule(UpdateScheduleRequest) -> UpdateScheduleResponse => update_schedule;
    patch_schedule(PatchScheduleRequest) -> PatchScheduleResponse => patch_schedule;
    list_schedule_matching_times(ListScheduleMatchingTimesRequest) -> ListScheduleMatchingTimesResponse => schedule_matching_times;
    delete_schedule(DeleteScheduleRequest) -> DeleteScheduleResponse => delete_schedule;
    count_schedules(CountSchedulesRequest) -> CountSchedulesResponse => count_schedules;
    list_schedules(ListSchedulesRequest) -> ListSchedulesResponse => list_schedules;
}
