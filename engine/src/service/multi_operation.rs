//! `ExecuteMultiOperation`: update-with-start. The workflow is started (or, as its
//! conflict policy allows, the running one is used) and the update admitted to it in one
//! transaction; the caller then waits for the update's stage, as for an update alone.
//!
//! As on Temporal, the operations must be exactly `[Start, Update]` on one workflow id, and
//! a failure names the operation that failed: `MultiOperationExecutionFailure` carries one
//! status per operation, the failed one's own and `ABORTED` for the other, and the call's
//! code is the failed operation's.

use tonic::{Code, Request, Status};

use super::{
    long_poll::poll_deadline,
    updates::{admit, CheckedUpdate},
    workflows::start_request,
    Service,
};
use crate::{
    errors,
    proto::{
        self, errordetails,
        service::{
            execute_multi_operation_request::operation::Operation,
            execute_multi_operation_response::{response::Response, Response as OperationResponse},
            ExecuteMultiOperationRequest, ExecuteMultiOperationResponse,
            StartWorkflowExecutionRequest, StartWorkflowExecutionResponse,
            UpdateWorkflowExecutionRequest,
        },
    },
    state::StartWorkflow,
};

/// Temporal's words for a request that is not a start followed by an update.
const NOT_START_AND_UPDATE: &str = "Operations have to be exactly [Start, Update].";

/// Temporal's words for an update-with-start that failed.
const NOT_EXECUTED: &str = "Update-with-Start could not be executed.";

/// Which operation failed, and how.
struct Failed {
    index: usize,
    status: Status,
}

impl Failed {
    fn start(status: Status) -> Self {
        Self { index: 0, status }
    }

    fn update(status: Status) -> Self {
        Self { index: 1, status }
    }

    /// The call's answer: the failed operation's code, and a status per operation.
    fn into_status(self, message: &str) -> Status {
        let statuses = (0..2)
            .map(|index| {
                if index == self.index {
                    operation_status(&self.status)
                } else {
                    aborted()
                }
            })
            .collect();
        errors::with_detail(
            self.status.code(),
            message.to_owned(),
            "temporal.api.errordetails.v1.MultiOperationExecutionFailure",
            &errordetails::MultiOperationExecutionFailure { statuses },
        )
    }
}

/// A status as one operation's, with its details.
fn operation_status(
    status: &Status,
) -> errordetails::multi_operation_execution_failure::OperationStatus {
    errordetails::multi_operation_execution_failure::OperationStatus {
        code: status.code() as i32,
        message: status.message().to_owned(),
        details: errors::details_of(status),
    }
}

/// The status of the operation that did not fail.
fn aborted() -> errordetails::multi_operation_execution_failure::OperationStatus {
    errordetails::multi_operation_execution_failure::OperationStatus {
        code: Code::Aborted as i32,
        message: "Operation was aborted.".to_owned(),
        details: vec![proto::pack(
            "temporal.api.failure.v1.MultiOperationExecutionAborted",
            &proto::failure::MultiOperationExecutionAborted {},
        )],
    }
}

/// The operations, checked for their shape: a start, then an update.
fn start_and_update(
    r: ExecuteMultiOperationRequest,
) -> Result<
    (
        StartWorkflowExecutionRequest,
        UpdateWorkflowExecutionRequest,
    ),
    Status,
> {
    let mut operations = r.operations.into_iter().map(|o| o.operation);
    match (operations.next(), operations.next(), operations.next()) {
        (
            Some(Some(Operation::StartWorkflow(start))),
            Some(Some(Operation::UpdateWorkflow(update))),
            None,
        ) => Ok((start, update)),
        _ => Err(Status::invalid_argument(NOT_START_AND_UPDATE)),
    }
}

impl Service {
    pub(super) async fn execute_multi_operation(
        &self,
        request: Request<ExecuteMultiOperationRequest>,
    ) -> Result<ExecuteMultiOperationResponse, Status> {
        let deadline = poll_deadline(&request);
        let r = request.into_inner();
        let namespace = r.namespace.clone();
        self.store
            .transaction(|state| state.check_namespace(&namespace))
            .await?;
        let (start, update) = start_and_update(r)?;
        let (start, checked) = self
            .check_operations(&namespace, start, &update)
            .map_err(|f| f.into_status(NOT_EXECUTED))?;
        let (run_id, started) = self
            .store
            .transaction(|state| {
                let (run_id, started) = state.start_workflow(start).map_err(Failed::start)?;
                admit(state, &run_id, &checked).map_err(Failed::update)?;
                Ok((run_id, started))
            })
            .await
            .map_err(|f: Failed| f.into_status(NOT_EXECUTED))?;
        let update = self
            .update_response(deadline, checked, run_id.clone())
            .await?;
        Ok(ExecuteMultiOperationResponse {
            responses: vec![
                OperationResponse {
                    response: Some(Response::StartWorkflow(StartWorkflowExecutionResponse {
                        run_id,
                        started,
                        ..Default::default()
                    })),
                },
                OperationResponse {
                    response: Some(Response::UpdateWorkflow(update)),
                },
            ],
        })
    }

    /// Checks each operation as Temporal does, then that both name one workflow.
    fn check_operations(
        &self,
        namespace: &str,
        start: StartWorkflowExecutionRequest,
        update: &UpdateWorkflowExecutionRequest,
    ) -> Result<(StartWorkflow, CheckedUpdate), Failed> {
        let same_namespace = |ns: &str| {
            (ns.is_empty() || ns == namespace)
                .then_some(())
                .ok_or_else(|| {
                    Status::invalid_argument(
                        "Operation namespace did not match request's namespace.",
                    )
                })
        };
        same_namespace(&start.namespace).map_err(Failed::start)?;
        if !start.cron_schedule.is_empty() {
            return Err(Failed::start(Status::invalid_argument(
                "CronSchedule is not allowed.",
            )));
        }
        if start.request_eager_execution {
            return Err(Failed::start(Status::invalid_argument(
                "RequestEagerExecution is not supported.",
            )));
        }
        let workflow_id = start.workflow_id.clone();
        let start = start_request(
            StartWorkflowExecutionRequest {
                namespace: namespace.to_owned(),
                ..start
            },
            "ExecuteMultiOperationRequest.operations[0].start_workflow",
            self.store.limits(),
        )
        .map_err(Failed::start)?;
        same_namespace(&update.namespace).map_err(Failed::update)?;
        let checked = self.check_update(update).map_err(Failed::update)?;
        let target = update.workflow_execution.as_ref();
        if target.is_some_and(|e| !e.run_id.is_empty()) {
            return Err(Failed::update(Status::invalid_argument(
                "RunId is not allowed.",
            )));
        }
        if target.map_or("", |e| e.workflow_id.as_str()) != workflow_id {
            return Err(Failed::update(Status::invalid_argument(
                "WorkflowId is not consistent with previous operation(s).",
            )));
        }
        Ok((start, checked))
    }
}
