//! Starting workflows: the typed builders generated stubs return, and starts by name for
//! workflows written in other languages.

use std::{
    future::{Future, IntoFuture},
    marker::PhantomData,
    pin::Pin,
    time::Duration,
};

use temporalio_common::protos::temporal::api::{
    common::v1::{Payload, Payloads, WorkflowType},
    enums::v1::{WorkflowIdConflictPolicy, WorkflowIdReusePolicy},
    errordetails::v1::WorkflowExecutionAlreadyStartedFailure,
    taskqueue::v1::TaskQueue,
    workflowservice::v1::{SignalWithStartWorkflowExecutionRequest, StartWorkflowExecutionRequest},
};

use super::{error::RpcStatus, Client, ClientError, WorkflowHandle};
use crate::{
    converter::{Args, PayloadError},
    definition::WorkflowDefinition,
    options::RetryPolicy,
};

/// Starts a workflow; `.await` it for the workflow's handle. Generated as
/// `MyWorkflow::start(&client, id, input)` (typed), or made by
/// [`Client::start_workflow_by_name`] (`W = ()`).
#[must_use = "a workflow starts only when awaited"]
pub struct StartWorkflow<W = ()> {
    client: Client,
    workflow_id: String,
    workflow_type: String,
    args: Result<Vec<Payload>, PayloadError>,
    signal: Option<(String, Result<Vec<Payload>, PayloadError>)>,
    request: StartWorkflowExecutionRequest,
    _workflow: PhantomData<fn() -> W>,
}

impl<W: WorkflowDefinition> StartWorkflow<W> {
    /// A start of `W` with `args` under `workflow_id`.
    pub fn new(client: &Client, workflow_id: String, args: W::Args) -> Self {
        Self::of_type(client, workflow_id, W::NAME, args.to_payloads())
    }

    /// Waits for the workflow's result instead of returning its handle.
    pub fn execute(self) -> ExecuteWorkflow<W> {
        ExecuteWorkflow { start: self }
    }
}

impl Client {
    /// Starts a workflow by type name, for workflows written in any language; read its
    /// result with [`WorkflowHandle::result_as`].
    pub fn start_workflow_by_name<A: Args>(
        &self,
        workflow_type: impl Into<String>,
        workflow_id: impl Into<String>,
        args: A,
    ) -> StartWorkflow<()> {
        StartWorkflow::of_type(self, workflow_id.into(), workflow_type, args.to_payloads())
    }
}

impl<W> StartWorkflow<W> {
    fn of_type(
        client: &Client,
        workflow_id: String,
        workflow_type: impl Into<String>,
        args: Result<Vec<Payload>, PayloadError>,
    ) -> Self {
        Self {
            client: client.clone(),
            workflow_id,
            workflow_type: workflow_type.into(),
            args,
            signal: None,
            request: StartWorkflowExecutionRequest::default(),
            _workflow: PhantomData,
        }
    }

    /// Sends the signal `signal_name` with the start, atomically: the workflow starts if it
    /// is not running, and the signal reaches it either way (signal-with-start).
    pub fn signal_with_start<A: Args>(mut self, signal_name: impl Into<String>, args: A) -> Self {
        self.signal = Some((signal_name.into(), args.to_payloads()));
        self
    }

    /// The task queue its workers poll (default: the client's default task queue).
    pub fn task_queue(mut self, task_queue: impl Into<String>) -> Self {
        self.request.task_queue = Some(TaskQueue {
            name: task_queue.into(),
            ..Default::default()
        });
        self
    }

    /// Whether the id of a closed workflow may be reused.
    pub fn id_reuse_policy(mut self, policy: WorkflowIdReusePolicy) -> Self {
        self.request.workflow_id_reuse_policy = policy as i32;
        self
    }

    /// What happens when a workflow with this id is running.
    pub fn id_conflict_policy(mut self, policy: WorkflowIdConflictPolicy) -> Self {
        self.request.workflow_id_conflict_policy = policy as i32;
        self
    }

    /// The longest the workflow may run, continue-as-new and retries included.
    pub fn execution_timeout(mut self, timeout: Duration) -> Self {
        self.request.workflow_execution_timeout = timeout.try_into().ok();
        self
    }

    /// The longest one run may take.
    pub fn run_timeout(mut self, timeout: Duration) -> Self {
        self.request.workflow_run_timeout = timeout.try_into().ok();
        self
    }

    /// The longest one workflow task may take (default 10 s).
    pub fn task_timeout(mut self, timeout: Duration) -> Self {
        self.request.workflow_task_timeout = timeout.try_into().ok();
        self
    }

    /// How the workflow is retried when it fails.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.request.retry_policy = Some(policy.into_proto());
        self
    }

    /// Runs the workflow on a cron schedule (`"*/5 * * * *"`, `"@daily"`, `CRON_TZ=…`): the
    /// first run waits for the schedule's first time, and each run that closes starts the
    /// next at the following time; the result is the last run's.
    pub fn cron_schedule(mut self, cron: impl Into<String>) -> Self {
        self.request.cron_schedule = cron.into();
        self
    }

    /// Delays the workflow's first task; a signal-with-start's signal is recorded at once.
    pub fn start_delay(mut self, delay: Duration) -> Self {
        self.request.workflow_start_delay = delay.try_into().ok();
        self
    }

    async fn send(self) -> Result<WorkflowHandle<W>, ClientError> {
        let (client, signal, request) = self.prepare()?;
        let workflow_id = request.workflow_id.clone();
        let service = || client.connection().workflow_service();
        let map_err = |status: tonic::Status| {
            already_started(&workflow_id, &status)
                .unwrap_or_else(|| ClientError::rpc("start", &workflow_id, status))
        };
        let run_id = match signal {
            None => {
                service()
                    .start_workflow_execution(tonic::Request::new(request))
                    .await
                    .map_err(map_err)?
                    .into_inner()
                    .run_id
            }
            Some((signal_name, signal_args)) => {
                let signal_input = Payloads {
                    payloads: client.codecs().encode(signal_args?)?,
                };
                let request = SignalWithStartWorkflowExecutionRequest {
                    namespace: request.namespace,
                    workflow_id: request.workflow_id,
                    workflow_type: request.workflow_type,
                    task_queue: request.task_queue,
                    input: request.input,
                    workflow_execution_timeout: request.workflow_execution_timeout,
                    workflow_run_timeout: request.workflow_run_timeout,
                    workflow_task_timeout: request.workflow_task_timeout,
                    identity: request.identity,
                    request_id: request.request_id,
                    workflow_id_reuse_policy: request.workflow_id_reuse_policy,
                    workflow_id_conflict_policy: request.workflow_id_conflict_policy,
                    signal_name,
                    signal_input: Some(signal_input),
                    retry_policy: request.retry_policy,
                    cron_schedule: request.cron_schedule,
                    memo: request.memo,
                    search_attributes: request.search_attributes,
                    header: request.header,
                    workflow_start_delay: request.workflow_start_delay,
                    ..Default::default()
                };
                service()
                    .signal_with_start_workflow_execution(tonic::Request::new(request))
                    .await
                    .map_err(map_err)?
                    .into_inner()
                    .run_id
            }
        };
        Ok(WorkflowHandle::with_run(&client, workflow_id, Some(run_id)))
    }
}

/// A signal sent with a start: its name and arguments.
pub(super) type WithSignal = Option<(String, Result<Vec<Payload>, PayloadError>)>;

impl<W> StartWorkflow<W> {
    /// The start request, complete, and the signal to send with it.
    pub(super) fn prepare(
        self,
    ) -> Result<(Client, WithSignal, StartWorkflowExecutionRequest), ClientError> {
        let Self {
            client,
            workflow_id,
            workflow_type,
            args,
            signal,
            mut request,
            ..
        } = self;
        let task_queue = match request.task_queue.take() {
            Some(tq) => tq,
            None => TaskQueue {
                name: client
                    .default_task_queue()
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        ClientError::Config(format!(
                            "no task queue for workflow `{workflow_id}` of type `{workflow_type}`: \
                             call `.task_queue(..)` or set the client's default task queue"
                        ))
                    })?,
                ..Default::default()
            },
        };
        let payloads = client.codecs().encode(args?)?;
        request.namespace = client.namespace().to_owned();
        request.workflow_id = workflow_id;
        request.workflow_type = Some(WorkflowType {
            name: workflow_type,
        });
        request.task_queue = Some(task_queue);
        request.input = Some(Payloads { payloads });
        request.identity = client.identity().to_owned();
        request.request_id = uuid::Uuid::new_v4().to_string();
        Ok((client, signal, request))
    }
}

pub(super) fn already_started(workflow_id: &str, status: &tonic::Status) -> Option<ClientError> {
    if status.code() != tonic::Code::AlreadyExists {
        return None;
    }
    use prost::Message;
    let details = tonic_types_any(status.details());
    let run_id = details
        .and_then(|any| WorkflowExecutionAlreadyStartedFailure::decode(any.as_slice()).ok())
        .map(|f| f.run_id)
        .unwrap_or_default();
    Some(ClientError::AlreadyStarted {
        workflow_id: workflow_id.to_owned(),
        run_id,
    })
}

/// The first detail of a gRPC status.
fn tonic_types_any(details: &[u8]) -> Option<Vec<u8>> {
    RpcStatus::decode_details(details)
        .into_iter()
        .next()
        .map(|any| any.value)
}

impl IntoFuture for StartWorkflow<()> {
    type Output = Result<WorkflowHandle<()>, ClientError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.send())
    }
}

impl<W: WorkflowDefinition> IntoFuture for StartWorkflow<W> {
    type Output = Result<W::Handle, ClientError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        let fut = self.send();
        Box::pin(async move { fut.await.map(W::Handle::from) })
    }
}

/// Starts a workflow and waits for its result. Generated as
/// `MyWorkflow::execute(&client, id, input)`.
#[must_use = "a workflow starts only when awaited"]
pub struct ExecuteWorkflow<W: WorkflowDefinition> {
    start: StartWorkflow<W>,
}

impl<W: WorkflowDefinition> ExecuteWorkflow<W> {
    /// A start of `W` with `args` under `workflow_id`, awaiting the result.
    pub fn new(client: &Client, workflow_id: String, args: W::Args) -> Self {
        Self {
            start: StartWorkflow::new(client, workflow_id, args),
        }
    }

    /// The task queue its workers poll.
    pub fn task_queue(mut self, task_queue: impl Into<String>) -> Self {
        self.start = self.start.task_queue(task_queue);
        self
    }

    /// Options of the start (timeouts, policies).
    pub fn with(mut self, configure: impl FnOnce(StartWorkflow<W>) -> StartWorkflow<W>) -> Self {
        self.start = configure(self.start);
        self
    }
}

impl<W: WorkflowDefinition> IntoFuture for ExecuteWorkflow<W> {
    type Output = Result<W::Output, ClientError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        let fut = self.start.send();
        Box::pin(async move { fut.await?.result().await })
    }
}
