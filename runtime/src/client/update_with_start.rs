//! Update-with-start: a workflow started (or its running run used) and an update sent to
//! it in one request (`ExecuteMultiOperation`), so the update cannot miss the workflow.

use std::{
    future::{Future, IntoFuture},
    marker::PhantomData,
    pin::Pin,
};

use prost::Message as _;
use serde::de::DeserializeOwned;
use temporalio_common::protos::temporal::api::{
    common::v1::{Payload, Payloads},
    enums::v1::{UpdateWorkflowExecutionLifecycleStage, WorkflowIdConflictPolicy},
    errordetails::v1::MultiOperationExecutionFailure,
    update::v1::{Input, Meta, Request as UpdateRequest, WaitPolicy},
    workflowservice::v1::{
        execute_multi_operation_request::{operation::Operation, Operation as Op},
        execute_multi_operation_response::response::Response,
        ExecuteMultiOperationRequest, UpdateWorkflowExecutionRequest,
    },
};

use super::{
    error::RpcStatus, start::already_started, ClientError, StartWorkflow, UpdateHandle,
    WorkflowHandle,
};
use crate::{
    converter::{Args, PayloadError},
    definition::WorkflowDefinition,
};

/// Starts a workflow with an update, atomically: the workflow starts unless it is running
/// (then, under the default `UseExisting` conflict policy, the running one takes the
/// update), and the update reaches it either way. `.await` it for the workflow's handle
/// and the update's result. Made by [`StartWorkflow::update_with_start`].
#[must_use = "a workflow starts only when awaited"]
pub struct UpdateWithStart<W, O> {
    start: StartWorkflow<W>,
    update_name: String,
    args: Result<Vec<Payload>, PayloadError>,
    _output: PhantomData<fn() -> O>,
}

/// One update of workflow `W`, with its arguments, whose result is an `O`: what
/// [`StartWorkflow::with_update`] sends with a start. The `#[workflow]` macro makes one
/// per `#[update]` handler, `W::update_<handler>(args...)`, so the update's name, argument
/// types and result type all come from the handler.
#[must_use = "an update call is sent by StartWorkflow::with_update"]
pub struct UpdateCall<W, O> {
    name: String,
    args: Result<Vec<Payload>, PayloadError>,
    _types: PhantomData<fn() -> (W, O)>,
}

impl<W, O> UpdateCall<W, O> {
    /// The update `name` of `W` with `args` (what the macro's `W::update_<handler>`
    /// builds).
    #[doc(hidden)]
    pub fn new<A: Args>(name: &str, args: A) -> Self {
        Self {
            name: name.to_owned(),
            args: args.to_payloads(),
            _types: PhantomData,
        }
    }
}

impl<W, O> std::fmt::Debug for UpdateCall<W, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateCall")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<W> StartWorkflow<W> {
    /// Sends `update` with the start (update-with-start), typed by the workflow's handler:
    /// `W::start(&client, id, input).with_update(W::update_add_points(points))`. As
    /// [`StartWorkflow::update_with_start`] otherwise.
    pub fn with_update<O: DeserializeOwned>(
        self,
        update: UpdateCall<W, O>,
    ) -> UpdateWithStart<W, O> {
        UpdateWithStart {
            start: self,
            update_name: update.name,
            args: update.args,
            _output: PhantomData,
        }
    }

    /// Sends the update `update_name` with the start (update-with-start): the workflow
    /// starts if it is not running (set [`StartWorkflow::id_conflict_policy`] to `Fail` to
    /// refuse a running one), and the update reaches it either way. Awaiting it gives the
    /// workflow's handle and the update's result.
    pub fn update_with_start<A: Args, O: DeserializeOwned>(
        self,
        update_name: impl Into<String>,
        args: A,
    ) -> UpdateWithStart<W, O> {
        UpdateWithStart {
            start: self,
            update_name: update_name.into(),
            args: args.to_payloads(),
            _output: PhantomData,
        }
    }
}

impl<W, O: DeserializeOwned> UpdateWithStart<W, O> {
    async fn send(self) -> Result<(WorkflowHandle<W>, O), ClientError> {
        let (client, signal, mut start) = self.start.prepare()?;
        if signal.is_some() {
            return Err(ClientError::Config(
                "a start carries a signal or an update, not both: send the signal once the \
                 update is done"
                    .to_owned(),
            ));
        }
        if start.workflow_id_conflict_policy == WorkflowIdConflictPolicy::Unspecified as i32 {
            start.workflow_id_conflict_policy = WorkflowIdConflictPolicy::UseExisting as i32;
        }
        let workflow_id = start.workflow_id.clone();
        let update_id = uuid::Uuid::new_v4().to_string();
        let update = UpdateWorkflowExecutionRequest {
            namespace: start.namespace.clone(),
            workflow_execution: Some(
                temporalio_common::protos::temporal::api::common::v1::WorkflowExecution {
                    workflow_id: workflow_id.clone(),
                    run_id: String::new(),
                },
            ),
            wait_policy: Some(WaitPolicy {
                lifecycle_stage: UpdateWorkflowExecutionLifecycleStage::Completed as i32,
            }),
            request: Some(UpdateRequest {
                meta: Some(Meta {
                    update_id: update_id.clone(),
                    identity: client.identity().to_owned(),
                }),
                input: Some(Input {
                    header: None,
                    name: self.update_name.clone(),
                    args: Some(Payloads {
                        payloads: client.codecs().encode(self.args?)?,
                    }),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let request = ExecuteMultiOperationRequest {
            namespace: start.namespace.clone(),
            operations: vec![
                Op {
                    operation: Some(Operation::StartWorkflow(start)),
                },
                Op {
                    operation: Some(Operation::UpdateWorkflow(update)),
                },
            ],
            ..Default::default()
        };
        // The server answers when the update completes or its own deadline passes: ask
        // again (the same start request id and update id: the same start and update)
        // until the update was at least accepted.
        loop {
            let responses = client
                .call_retrying(|mut service| {
                    let request = request.clone();
                    async move {
                        service
                            .execute_multi_operation(tonic::Request::new(request))
                            .await
                    }
                })
                .await
                .map_err(|status| failed(&workflow_id, status))?
                .responses;
            let mut run_id = None;
            let mut update = None;
            for response in responses {
                match response.response {
                    Some(Response::StartWorkflow(start)) => run_id = Some(start.run_id),
                    Some(Response::UpdateWorkflow(answer)) => update = Some(answer),
                    None => {}
                }
            }
            let Some(update) = update else {
                return Err(ClientError::Config(format!(
                    "the server answered update-with-start of workflow `{workflow_id}` without \
                     the update's response"
                )));
            };
            if update.outcome.is_none()
                && update.stage < UpdateWorkflowExecutionLifecycleStage::Accepted as i32
            {
                continue;
            }
            let workflow = WorkflowHandle::<W>::with_run(&client, workflow_id.clone(), run_id);
            let updated = WorkflowHandle::<()>::with_run(&client, workflow_id.clone(), None);
            let result = UpdateHandle::<O>::new(
                updated,
                self.update_name.clone(),
                update_id.clone(),
                update.outcome,
            )
            .result()
            .await?;
            return Ok((workflow, result));
        }
    }
}

/// The client error of a failed update-with-start: the failed operation's (the start's
/// `AlreadyStarted` as for a start alone), found in the status's per-operation details.
fn failed(workflow_id: &str, status: tonic::Status) -> ClientError {
    let operation = operation_statuses(&status)
        .into_iter()
        .find(|s| s.code() != tonic::Code::Aborted)
        .unwrap_or(status);
    already_started(workflow_id, &operation)
        .unwrap_or_else(|| ClientError::rpc("update-with-start", workflow_id, operation))
}

/// The per-operation statuses of a `MultiOperationExecutionFailure`, as statuses.
fn operation_statuses(status: &tonic::Status) -> Vec<tonic::Status> {
    let details = RpcStatus::decode_details(status.details());
    details
        .iter()
        .filter_map(|any| MultiOperationExecutionFailure::decode(any.value.as_slice()).ok())
        .flat_map(|failure| failure.statuses)
        .map(|s| {
            let code = tonic::Code::from_i32(s.code);
            let own = RpcStatus {
                code: s.code,
                message: s.message.clone(),
                details: s.details,
            };
            tonic::Status::with_details(code, s.message, own.encode_to_vec().into())
        })
        .collect()
}

impl<O: DeserializeOwned + Send + 'static> IntoFuture for UpdateWithStart<(), O> {
    type Output = Result<(WorkflowHandle<()>, O), ClientError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

impl<W: WorkflowDefinition, O: DeserializeOwned + Send + 'static> IntoFuture
    for UpdateWithStart<W, O>
{
    type Output = Result<(W::Handle, O), ClientError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        let fut = self.send();
        Box::pin(async move {
            let (handle, result) = fut.await?;
            Ok((W::Handle::from(handle), result))
        })
    }
}
