//! Handles to workflow executions and updates.

use std::{marker::PhantomData, time::SystemTime};

use serde::de::DeserializeOwned;
pub use temporalio_common::protos::temporal::api::enums::v1::WorkflowExecutionStatus;
use temporalio_common::protos::temporal::api::{
    common::v1::{Payloads, WorkflowExecution},
    enums::v1::{EventType, HistoryEventFilterType, UpdateWorkflowExecutionLifecycleStage},
    history::v1::{history_event::Attributes, HistoryEvent},
    query::v1::WorkflowQuery,
    update::{
        self,
        v1::{outcome::Value as OutcomeValue, Outcome, UpdateRef, WaitPolicy},
    },
    workflowservice::v1::{
        DescribeWorkflowExecutionRequest, GetWorkflowExecutionHistoryRequest,
        ListWorkflowExecutionsRequest, PollWorkflowExecutionUpdateRequest, QueryWorkflowRequest,
        RequestCancelWorkflowExecutionRequest, SignalWorkflowExecutionRequest,
        TerminateWorkflowExecutionRequest, UpdateWorkflowExecutionRequest,
    },
};

use super::{Client, ClientError};
use crate::{
    converter::{self, Args},
    failure::Failure,
};

/// A workflow execution, seen from a client. `W` is the workflow type (or `()` for a
/// handle by name): it types [`result`](Self::result).
pub struct WorkflowHandle<W> {
    client: Client,
    workflow_id: String,
    run_id: Option<String>,
    _workflow: PhantomData<fn() -> W>,
}

impl<W> Clone for WorkflowHandle<W> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            workflow_id: self.workflow_id.clone(),
            run_id: self.run_id.clone(),
            _workflow: PhantomData,
        }
    }
}

impl<W> std::fmt::Debug for WorkflowHandle<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowHandle")
            .field("workflow_id", &self.workflow_id)
            .field("run_id", &self.run_id)
            .finish()
    }
}

/// What [`WorkflowHandle::describe`] returns.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WorkflowDescription {
    /// The workflow id.
    pub workflow_id: String,
    /// The described run.
    pub run_id: String,
    /// The workflow type.
    pub workflow_type: String,
    /// Running, completed, failed, …
    pub status: WorkflowExecutionStatus,
    /// The task queue.
    pub task_queue: String,
    /// When the run started.
    pub start_time: Option<SystemTime>,
    /// When it closed.
    pub close_time: Option<SystemTime>,
    /// Events in its history.
    pub history_length: i64,
    /// Activities scheduled and not yet finished.
    pub pending_activities: usize,
}

/// One execution in a [`Client::list_workflows`] answer.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WorkflowSummary {
    /// The workflow id.
    pub workflow_id: String,
    /// The run id.
    pub run_id: String,
    /// The workflow type.
    pub workflow_type: String,
    /// Its status.
    pub status: WorkflowExecutionStatus,
}

fn time(ts: Option<prost_wkt_types::Timestamp>) -> Option<SystemTime> {
    ts.and_then(|t| SystemTime::try_from(t).ok())
}

impl<W> WorkflowHandle<W> {
    /// A handle to the latest run of `workflow_id`.
    pub fn new(client: &Client, workflow_id: String) -> Self {
        Self::with_run(client, workflow_id, None)
    }

    /// This handle, pinned to one run of the workflow (its history, its result).
    pub fn for_run(&self, run_id: impl Into<String>) -> Self {
        Self::with_run(&self.client, self.workflow_id.clone(), Some(run_id.into()))
    }

    pub(crate) fn with_run(client: &Client, workflow_id: String, run_id: Option<String>) -> Self {
        Self {
            client: client.clone(),
            workflow_id,
            run_id,
            _workflow: PhantomData,
        }
    }

    /// The workflow id.
    pub fn workflow_id(&self) -> &str {
        &self.workflow_id
    }

    /// The run this handle was started with, if it knows one.
    pub fn run_id(&self) -> Option<&str> {
        self.run_id.as_deref()
    }

    /// The client this handle uses.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn execution(&self) -> WorkflowExecution {
        WorkflowExecution {
            workflow_id: self.workflow_id.clone(),
            run_id: String::new(),
        }
    }

    fn encode<A: Args>(&self, args: &A) -> Result<Option<Payloads>, ClientError> {
        let payloads = self.client.codecs().encode(args.to_payloads()?)?;
        Ok(Some(Payloads { payloads }))
    }

    fn decode_first<O: DeserializeOwned>(
        &self,
        payloads: Option<Payloads>,
    ) -> Result<O, ClientError> {
        let payloads = self
            .client
            .codecs()
            .decode(payloads.map(|p| p.payloads).unwrap_or_default())?;
        Ok(match payloads.first() {
            Some(p) => converter::from_payload(p)?,
            None => converter::from_payload(&converter::to_payload(&())?)?,
        })
    }

    /// Sends a signal by handler name (generated handles offer typed methods).
    pub async fn signal_with<A: Args>(
        &self,
        signal_name: &str,
        args: A,
    ) -> Result<(), ClientError> {
        let request = SignalWorkflowExecutionRequest {
            namespace: self.client.namespace().to_owned(),
            workflow_execution: Some(self.execution()),
            signal_name: signal_name.to_owned(),
            input: self.encode(&args)?,
            identity: self.client.identity().to_owned(),
            request_id: uuid::Uuid::new_v4().to_string(),
            ..Default::default()
        };
        self.client
            .connection()
            .workflow_service()
            .signal_workflow_execution(tonic::Request::new(request))
            .await
            .map_err(|s| ClientError::rpc("signal", &self.workflow_id, s))?;
        Ok(())
    }

    /// Runs a query by handler name.
    pub async fn query_with<A: Args, O: DeserializeOwned>(
        &self,
        query_name: &str,
        args: A,
    ) -> Result<O, ClientError> {
        let request = QueryWorkflowRequest {
            namespace: self.client.namespace().to_owned(),
            execution: Some(self.execution()),
            query: Some(WorkflowQuery {
                query_type: query_name.to_owned(),
                query_args: self.encode(&args)?,
                header: None,
            }),
            query_reject_condition: 0,
        };
        let response = self
            .client
            .call_retrying(|mut service| {
                let request = request.clone();
                async move { service.query_workflow(tonic::Request::new(request)).await }
            })
            .await
            .map_err(|s| match s.code() {
                tonic::Code::InvalidArgument | tonic::Code::Unknown | tonic::Code::Internal
                    if !s.message().is_empty() =>
                {
                    ClientError::QueryFailed {
                        query: query_name.to_owned(),
                        workflow_id: self.workflow_id.clone(),
                        message: s.message().to_owned(),
                    }
                }
                _ => ClientError::rpc("query", &self.workflow_id, s),
            })?;
        if let Some(rejected) = response.query_rejected {
            return Err(ClientError::QueryFailed {
                query: query_name.to_owned(),
                workflow_id: self.workflow_id.clone(),
                message: format!("rejected: workflow status {:?}", rejected.status()),
            });
        }
        self.decode_first(response.query_result)
    }

    /// Runs an update by handler name and waits for its result.
    pub async fn update_with<A: Args, O: DeserializeOwned>(
        &self,
        update_name: &str,
        args: A,
    ) -> Result<O, ClientError> {
        self.start_update_stage(
            update_name,
            args,
            UpdateWorkflowExecutionLifecycleStage::Completed,
        )
        .await?
        .result()
        .await
    }

    /// Sends an update by handler name and returns once the workflow accepted it.
    pub async fn start_update_with<A: Args, O: DeserializeOwned>(
        &self,
        update_name: &str,
        args: A,
    ) -> Result<UpdateHandle<O>, ClientError> {
        self.start_update_stage(
            update_name,
            args,
            UpdateWorkflowExecutionLifecycleStage::Accepted,
        )
        .await
    }

    async fn start_update_stage<A: Args, O: DeserializeOwned>(
        &self,
        update_name: &str,
        args: A,
        stage: UpdateWorkflowExecutionLifecycleStage,
    ) -> Result<UpdateHandle<O>, ClientError> {
        let update_id = uuid::Uuid::new_v4().to_string();
        let request = UpdateWorkflowExecutionRequest {
            namespace: self.client.namespace().to_owned(),
            workflow_execution: Some(self.execution()),
            wait_policy: Some(WaitPolicy {
                lifecycle_stage: stage as i32,
            }),
            request: Some(update::v1::Request {
                meta: Some(update::v1::Meta {
                    update_id: update_id.clone(),
                    identity: self.client.identity().to_owned(),
                }),
                input: Some(update::v1::Input {
                    header: None,
                    name: update_name.to_owned(),
                    args: self.encode(&args)?,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut handle = UpdateHandle {
            workflow: WorkflowHandle::<()>::with_run(&self.client, self.workflow_id.clone(), None),
            update_name: update_name.to_owned(),
            update_id,
            outcome: None,
            _output: PhantomData,
        };
        // The server answers when the stage is reached or its own deadline passes; ask
        // again until the update was at least accepted.
        loop {
            let response = self
                .client
                .call_retrying(|mut service| {
                    let request = request.clone();
                    async move {
                        service
                            .update_workflow_execution(tonic::Request::new(request))
                            .await
                    }
                })
                .await
                .map_err(|s| ClientError::rpc("update", &self.workflow_id, s))?;
            if let Some(outcome) = response.outcome {
                handle.check_rejection(&outcome)?;
                handle.outcome = Some(outcome);
                return Ok(handle);
            }
            if response.stage >= UpdateWorkflowExecutionLifecycleStage::Accepted as i32 {
                return Ok(handle);
            }
        }
    }

    /// Requests cancellation: the workflow sees it and may clean up.
    pub async fn cancel(&self) -> Result<(), ClientError> {
        let request = RequestCancelWorkflowExecutionRequest {
            namespace: self.client.namespace().to_owned(),
            workflow_execution: Some(self.execution()),
            identity: self.client.identity().to_owned(),
            request_id: uuid::Uuid::new_v4().to_string(),
            ..Default::default()
        };
        self.client
            .connection()
            .workflow_service()
            .request_cancel_workflow_execution(tonic::Request::new(request))
            .await
            .map_err(|s| ClientError::rpc("cancel", &self.workflow_id, s))?;
        Ok(())
    }

    /// Terminates the workflow at once; no workflow code runs.
    pub async fn terminate(&self, reason: impl Into<String>) -> Result<(), ClientError> {
        let request = TerminateWorkflowExecutionRequest {
            namespace: self.client.namespace().to_owned(),
            workflow_execution: Some(self.execution()),
            reason: reason.into(),
            identity: self.client.identity().to_owned(),
            ..Default::default()
        };
        self.client
            .connection()
            .workflow_service()
            .terminate_workflow_execution(tonic::Request::new(request))
            .await
            .map_err(|s| ClientError::rpc("terminate", &self.workflow_id, s))?;
        Ok(())
    }

    /// The workflow's status and attributes.
    pub async fn describe(&self) -> Result<WorkflowDescription, ClientError> {
        let request = DescribeWorkflowExecutionRequest {
            namespace: self.client.namespace().to_owned(),
            execution: Some(self.execution()),
        };
        let response = self
            .client
            .connection()
            .workflow_service()
            .describe_workflow_execution(tonic::Request::new(request))
            .await
            .map_err(|s| ClientError::rpc("describe", &self.workflow_id, s))?
            .into_inner();
        let info = response.workflow_execution_info.unwrap_or_default();
        let execution = info.execution.clone().unwrap_or_default();
        Ok(WorkflowDescription {
            workflow_id: execution.workflow_id,
            run_id: execution.run_id,
            workflow_type: info.r#type.clone().map(|t| t.name).unwrap_or_default(),
            status: info.status(),
            task_queue: info.task_queue.clone(),
            start_time: time(info.start_time),
            close_time: time(info.close_time),
            history_length: info.history_length,
            pending_activities: response.pending_activities.len(),
        })
    }

    /// Every event of the run's history (the latest run unless the handle names one).
    pub async fn history(&self) -> Result<Vec<HistoryEvent>, ClientError> {
        self.fetch_history(self.run_id.clone().unwrap_or_default(), false)
            .await
    }

    async fn fetch_history(
        &self,
        run_id: String,
        close_event_only: bool,
    ) -> Result<Vec<HistoryEvent>, ClientError> {
        let mut events = Vec::new();
        let mut next_page_token = Vec::new();
        loop {
            let request = GetWorkflowExecutionHistoryRequest {
                namespace: self.client.namespace().to_owned(),
                execution: Some(WorkflowExecution {
                    workflow_id: self.workflow_id.clone(),
                    run_id: run_id.clone(),
                }),
                next_page_token: next_page_token.clone(),
                wait_new_event: close_event_only,
                history_event_filter_type: if close_event_only {
                    HistoryEventFilterType::CloseEvent as i32
                } else {
                    HistoryEventFilterType::AllEvent as i32
                },
                ..Default::default()
            };
            let response = self
                .client
                .connection()
                .workflow_service()
                .get_workflow_execution_history(tonic::Request::new(request))
                .await
                .map_err(|s| ClientError::rpc("get history", &self.workflow_id, s))?
                .into_inner();
            events.extend(response.history.map(|h| h.events).unwrap_or_default());
            if response.next_page_token.is_empty() || (close_event_only && !events.is_empty()) {
                return Ok(events);
            }
            next_page_token = response.next_page_token;
        }
    }

    /// Waits for the workflow to close, following continue-as-new, and returns its result.
    pub async fn result_as<O: DeserializeOwned>(&self) -> Result<O, ClientError> {
        let mut run_id = self.run_id.clone().unwrap_or_default();
        loop {
            let events = self.fetch_history(run_id.clone(), true).await?;
            let Some(close) = events.into_iter().last() else {
                continue;
            };
            let failed = |how, failure| ClientError::WorkflowFailed {
                workflow_id: self.workflow_id.clone(),
                how,
                failure,
            };
            match close.attributes {
                Some(Attributes::WorkflowExecutionCompletedEventAttributes(a)) => {
                    if !a.new_execution_run_id.is_empty() {
                        // A cron or retried workflow goes on: its next run has the result.
                        run_id = a.new_execution_run_id;
                        continue;
                    }
                    return self.decode_first(a.result);
                }
                Some(Attributes::WorkflowExecutionContinuedAsNewEventAttributes(a)) => {
                    run_id = a.new_execution_run_id;
                }
                Some(Attributes::WorkflowExecutionFailedEventAttributes(a)) => {
                    if !a.new_execution_run_id.is_empty() {
                        run_id = a.new_execution_run_id;
                        continue;
                    }
                    return Err(failed(
                        "failed",
                        Failure::from_proto(a.failure.unwrap_or_default()),
                    ));
                }
                Some(Attributes::WorkflowExecutionCanceledEventAttributes(_)) => {
                    return Err(failed("was cancelled", cancelled("workflow cancelled")));
                }
                Some(Attributes::WorkflowExecutionTerminatedEventAttributes(a)) => {
                    return Err(failed("was terminated", terminated(&a.reason)));
                }
                Some(Attributes::WorkflowExecutionTimedOutEventAttributes(a)) => {
                    if !a.new_execution_run_id.is_empty() {
                        run_id = a.new_execution_run_id;
                        continue;
                    }
                    return Err(failed("timed out", timed_out()));
                }
                _ => {
                    let kind = EventType::try_from(close.event_type)
                        .map(|e| e.as_str_name())
                        .unwrap_or("?");
                    return Err(ClientError::Rpc {
                        operation: "get result",
                        workflow_id: self.workflow_id.clone(),
                        code: tonic::Code::Internal,
                        message: format!("unexpected close event {kind}"),
                    });
                }
            }
        }
    }
}

impl<W: Send + Sync> crate::definition::SignalTarget for WorkflowHandle<W> {
    type Error = ClientError;
    fn send_signal<A: Args>(
        &self,
        signal_name: &'static str,
        args: A,
    ) -> impl std::future::Future<Output = Result<(), ClientError>> {
        self.signal_with(signal_name, args)
    }
}

impl<W: crate::definition::WorkflowDefinition> WorkflowHandle<W> {
    /// Waits for the workflow to close, following continue-as-new, and returns its result.
    pub async fn result(&self) -> Result<W::Output, ClientError> {
        self.result_as().await
    }
}

fn cancelled(message: &str) -> Failure {
    Failure::from_proto(crate::workflow::cancelled_failure(message))
}

fn terminated(reason: &str) -> Failure {
    use temporalio_common::protos::temporal::api::failure::v1::{
        failure::FailureInfo, Failure as P, TerminatedFailureInfo,
    };
    Failure::from_proto(P {
        message: if reason.is_empty() {
            "terminated".to_owned()
        } else {
            reason.to_owned()
        },
        failure_info: Some(FailureInfo::TerminatedFailureInfo(
            TerminatedFailureInfo::default(),
        )),
        ..Default::default()
    })
}

fn timed_out() -> Failure {
    use temporalio_common::protos::temporal::api::failure::v1::{
        failure::FailureInfo, Failure as P, TimeoutFailureInfo,
    };
    Failure::from_proto(P {
        message: "workflow execution timed out".to_owned(),
        failure_info: Some(FailureInfo::TimeoutFailureInfo(
            TimeoutFailureInfo::default(),
        )),
        ..Default::default()
    })
}

impl Client {
    /// Executions matching a visibility query (`WorkflowType = 'X' AND ExecutionStatus =
    /// 'Running'`; empty for all), newest first.
    pub async fn list_workflows(&self, query: &str) -> Result<Vec<WorkflowSummary>, ClientError> {
        let mut out = Vec::new();
        let mut next_page_token = Vec::new();
        loop {
            let response = self
                .connection()
                .workflow_service()
                .list_workflow_executions(tonic::Request::new(ListWorkflowExecutionsRequest {
                    namespace: self.namespace().to_owned(),
                    page_size: 1000,
                    next_page_token,
                    query: query.to_owned(),
                }))
                .await
                .map_err(|s| ClientError::rpc("list", "", s))?
                .into_inner();
            out.extend(response.executions.into_iter().map(|info| {
                let execution = info.execution.clone().unwrap_or_default();
                WorkflowSummary {
                    workflow_id: execution.workflow_id,
                    run_id: execution.run_id,
                    workflow_type: info.r#type.clone().map(|t| t.name).unwrap_or_default(),
                    status: info.status(),
                }
            }));
            if response.next_page_token.is_empty() {
                return Ok(out);
            }
            next_page_token = response.next_page_token;
        }
    }

    /// A handle to a workflow by id, for workflows written in any language.
    pub fn workflow_handle(&self, workflow_id: impl Into<String>) -> WorkflowHandle<()> {
        WorkflowHandle::new(self, workflow_id.into())
    }
}

/// An update sent to a workflow; [`result`](Self::result) waits for its outcome.
pub struct UpdateHandle<O> {
    workflow: WorkflowHandle<()>,
    update_name: String,
    update_id: String,
    outcome: Option<Outcome>,
    _output: PhantomData<fn() -> O>,
}

impl<O> UpdateHandle<O> {
    /// The handle of update `update_id` (`update_name`) of `workflow`, with its outcome if
    /// the server gave it.
    pub(crate) fn new(
        workflow: WorkflowHandle<()>,
        update_name: String,
        update_id: String,
        outcome: Option<Outcome>,
    ) -> Self {
        Self {
            workflow,
            update_name,
            update_id,
            outcome,
            _output: PhantomData,
        }
    }
}

impl<O: DeserializeOwned> UpdateHandle<O> {
    /// The update's id.
    pub fn update_id(&self) -> &str {
        &self.update_id
    }

    fn check_rejection(&self, outcome: &Outcome) -> Result<(), ClientError> {
        match &outcome.value {
            Some(OutcomeValue::Failure(f)) => Err(ClientError::UpdateFailed {
                update: self.update_name.clone(),
                workflow_id: self.workflow.workflow_id.clone(),
                failure: Failure::from_proto(f.clone()),
            }),
            _ => Ok(()),
        }
    }

    /// Waits for the update to complete and returns its result.
    pub async fn result(self) -> Result<O, ClientError> {
        let outcome = match self.outcome.clone() {
            Some(o) => o,
            None => self.poll_outcome().await?,
        };
        self.check_rejection(&outcome)?;
        match outcome.value {
            Some(OutcomeValue::Success(p)) => self.workflow.decode_first(Some(p)),
            _ => self.workflow.decode_first(None),
        }
    }

    async fn poll_outcome(&self) -> Result<Outcome, ClientError> {
        loop {
            let request = PollWorkflowExecutionUpdateRequest {
                namespace: self.workflow.client.namespace().to_owned(),
                update_ref: Some(UpdateRef {
                    workflow_execution: Some(self.workflow.execution()),
                    update_id: self.update_id.clone(),
                }),
                identity: self.workflow.client.identity().to_owned(),
                wait_policy: Some(WaitPolicy {
                    lifecycle_stage: UpdateWorkflowExecutionLifecycleStage::Completed as i32,
                }),
            };
            let response = self
                .workflow
                .client
                .call_retrying(|mut service| {
                    let request = request.clone();
                    async move {
                        service
                            .poll_workflow_execution_update(tonic::Request::new(request))
                            .await
                    }
                })
                .await
                .map_err(|s| ClientError::rpc("poll update", &self.workflow.workflow_id, s))?;
            if let Some(outcome) = response.outcome {
                return Ok(outcome);
            }
        }
    }
}
