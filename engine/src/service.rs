//! The gRPC `WorkflowService`: request validation, long polls, and one store transaction
//! per state transition.

// `TerminateIfRunning` is deprecated but still sent by older clients.
#![allow(deprecated)]

use std::{sync::Arc, time::Duration};

use prost::Message as _;
use tokio::time::Instant;
use tonic::{Request, Response, Status};

use crate::{
    history::{ActivityState, Run, StartRun, UpdateState},
    matching::{PendingQuery, Token, WorkflowTaskRef},
    proto::{
        self,
        common::WorkflowExecution,
        enums::{
            HistoryEventFilterType, TaskQueueKind, UpdateWorkflowExecutionLifecycleStage,
            WorkflowExecutionStatus, WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
        },
        history::{History, WorkflowExecutionStartedEventAttributes},
        service::*,
        WorkflowService,
    },
    schedules::NewSchedule,
    store::{Scheduler, State, Store, Topic},
    visibility::Filter,
};

/// When a long poll's answer may leave (it matters only for a durable engine).
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// Once everything it read or wrote is on disk: what it tells is acknowledged.
    Written,
    /// At once. For a workflow task: workflow code has no effect outside the engine until
    /// the worker's answer, whose own transaction waits for everything staged before it
    /// (this dispatch too). A crash before the write loses only the dispatch (and whatever
    /// it read that was not yet written, none of it acknowledged), and the task is
    /// dispatched again; local activities it ran run again, as they may after any failed
    /// task. Saves one disk flush per workflow task in a workflow's latency.
    Staged,
}

/// How long a long poll is held when the client sets no deadline.
const DEFAULT_POLL: Duration = Duration::from_secs(60);
/// Answer this long before the client's deadline, so the empty answer arrives in time.
const DEADLINE_MARGIN: Duration = Duration::from_millis(1000);
/// Events per history page unless the client asks for fewer.
const PAGE_SIZE: usize = 1000;

/// The service over the store.
pub(crate) struct Service {
    pub(crate) store: Arc<Store>,
}

type Rpc<T> = Result<Response<T>, Status>;

/// When a long poll must answer: just before the client's `grpc-timeout`.
fn poll_deadline<T>(request: &Request<T>) -> Instant {
    let timeout = request
        .metadata()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout)
        .map(|t| t.saturating_sub(DEADLINE_MARGIN))
        .unwrap_or(DEFAULT_POLL)
        .min(DEFAULT_POLL);
    Instant::now() + timeout
}

fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

fn check_namespace(state: &State, namespace: &str) -> Result<(), Status> {
    if state.namespaces.contains_key(namespace) {
        Ok(())
    } else {
        Err(Status::not_found(format!(
            "namespace `{namespace}` is not found"
        )))
    }
}

/// Schedule listing takes no filter yet.
fn check_schedule_query(query: &str) -> Result<(), Status> {
    if query.trim().is_empty() {
        Ok(())
    } else {
        Err(Status::invalid_argument(format!(
            "unsupported schedule query `{query}`: the engine lists all of a namespace's \
             schedules (send an empty query)"
        )))
    }
}

fn closed_error(workflow_id: &str) -> Status {
    Status::not_found(format!(
        "workflow execution already completed: `{workflow_id}`"
    ))
}

/// `AlreadyExists` with the `WorkflowExecutionAlreadyStartedFailure` detail clients decode.
fn already_started(workflow_id: &str, run_id: &str, request_id: &str) -> Status {
    #[derive(Clone, PartialEq, prost::Message)]
    struct RpcStatus {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
        #[prost(message, repeated, tag = "3")]
        details: Vec<prost_wkt_types::Any>,
    }
    let message = format!("workflow execution already started: `{workflow_id}` run `{run_id}`");
    let detail = proto::errordetails::WorkflowExecutionAlreadyStartedFailure {
        start_request_id: request_id.to_owned(),
        run_id: run_id.to_owned(),
        ..Default::default()
    };
    let status = RpcStatus {
        code: tonic::Code::AlreadyExists as i32,
        message: message.clone(),
        details: vec![proto::pack(
            "temporal.api.errordetails.v1.WorkflowExecutionAlreadyStartedFailure",
            &detail,
        )],
    };
    Status::with_details(
        tonic::Code::AlreadyExists,
        message,
        status.encode_to_vec().into(),
    )
}

impl Service {
    /// Runs `check` in a transaction until it yields, the deadline passes (`None`) or the
    /// engine closes (`None`). Wakes only on committed changes to `topic` (what `check`
    /// reads): no busy loop, and no wake for other runs' or queues' changes.
    async fn wait_for<T>(
        &self,
        deadline: Instant,
        topic: Topic,
        answer: Answer,
        mut check: impl FnMut(&mut State) -> Result<Option<T>, Status>,
    ) -> Result<Option<T>, Status> {
        let mut changes = self.store.subscribe_to(topic);
        loop {
            let attempt = |state: &mut State| {
                if state.sched.closing {
                    return Ok(Some(None));
                }
                check(state).map(|o| o.map(Some))
            };
            let found = match answer {
                Answer::Written => self.store.transaction(attempt).await,
                Answer::Staged => self.store.apply(attempt).0,
            }?;
            if let Some(found) = found {
                return Ok(found);
            }
            tokio::select! {
                () = changes.woken() => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(None),
            }
        }
    }

    /// Runs `f` on the running activity attempt `target` names, in one transaction.
    async fn on_activity<R>(
        &self,
        target: ActivityTarget,
        f: impl FnOnce(&mut Run, &mut Scheduler, i64) -> R,
    ) -> Result<R, Status> {
        self.store
            .transaction(|state| {
                let (run_id, scheduled, attempt) = target.resolve(state)?;
                let (runs, sched) = (&mut state.runs, &mut state.sched);
                let run = runs
                    .get_mut(&run_id)
                    .ok_or_else(|| Status::not_found("workflow run not found"))?;
                run.started_activity(scheduled, attempt)?;
                Ok(f(run, sched, scheduled))
            })
            .await
    }

    /// Records a heartbeat; answers whether cancellation was requested.
    async fn heartbeat(
        &self,
        target: ActivityTarget,
        details: Option<proto::common::Payloads>,
    ) -> Result<bool, Status> {
        self.on_activity(target, |run, sched, scheduled| {
            let activity = run.activities.get_mut(&scheduled).expect("checked");
            if let ActivityState::Started { last_heartbeat, .. } = &mut activity.state {
                *last_heartbeat = sched.now();
            }
            if details.is_some() {
                activity.heartbeat_details = details;
            }
            activity.cancel_requested_event_id.is_some()
        })
        .await
    }

    async fn complete_activity(
        &self,
        target: ActivityTarget,
        result: Option<proto::common::Payloads>,
        identity: String,
    ) -> Result<(), Status> {
        self.on_activity(target, |run, sched, scheduled| {
            run.complete_activity(sched, scheduled, result, identity)
        })
        .await
    }

    async fn fail_activity(
        &self,
        target: ActivityTarget,
        failure: Option<proto::failure::Failure>,
        last_heartbeat_details: Option<proto::common::Payloads>,
        identity: String,
    ) -> Result<(), Status> {
        self.on_activity(target, |run, sched, scheduled| {
            if last_heartbeat_details.is_some() {
                let activity = run.activities.get_mut(&scheduled).expect("checked");
                activity.heartbeat_details = last_heartbeat_details;
            }
            run.fail_activity_attempt(
                sched,
                scheduled,
                failure.unwrap_or_default(),
                None,
                identity,
            );
        })
        .await
    }

    async fn cancel_activity(
        &self,
        target: ActivityTarget,
        details: Option<proto::common::Payloads>,
        identity: String,
    ) -> Result<(), Status> {
        self.on_activity(target, |run, sched, scheduled| {
            run.cancel_activity(sched, scheduled, details, identity)
        })
        .await
    }

    async fn start(
        &self,
        request: StartWorkflowExecutionRequest,
    ) -> Result<(String, bool), Status> {
        if request.workflow_id.is_empty() {
            return Err(Status::invalid_argument("workflow id is not set"));
        }
        let workflow_type = request
            .workflow_type
            .as_ref()
            .map(|t| t.name.clone())
            .unwrap_or_default();
        if workflow_type.is_empty() {
            return Err(Status::invalid_argument("workflow type is not set"));
        }
        let queue = request
            .task_queue
            .as_ref()
            .map(|q| q.name.clone())
            .unwrap_or_default();
        if queue.is_empty() {
            return Err(Status::invalid_argument("task queue is not set"));
        }
        if !request.cron_schedule.is_empty() {
            if request.workflow_start_delay.is_some() {
                return Err(Status::invalid_argument(
                    "a cron schedule and a start delay cannot be used together",
                ));
            }
            crate::schedules::spec::cron_spec(&request.cron_schedule).map_err(|e| {
                Status::invalid_argument(format!("cron schedule `{}`: {e}", request.cron_schedule))
            })?;
        }
        self.store
            .transaction(|state| {
                check_namespace(state, &request.namespace)?;
                let key = (request.namespace.clone(), request.workflow_id.clone());
                if let Some(existing) = state.current.get(&key).cloned() {
                    let run = &state.runs[&existing];
                    if !request.request_id.is_empty() && run.request_id == request.request_id {
                        return Ok((existing, true));
                    }
                    let reuse = WorkflowIdReusePolicy::try_from(request.workflow_id_reuse_policy)
                        .unwrap_or_default();
                    if run.is_open() {
                        let conflict =
                            WorkflowIdConflictPolicy::try_from(request.workflow_id_conflict_policy)
                                .unwrap_or_default();
                        match (conflict, reuse) {
                            (WorkflowIdConflictPolicy::UseExisting, _) => {
                                return Ok((existing, false));
                            }
                            (WorkflowIdConflictPolicy::TerminateExisting, _)
                            | (_, WorkflowIdReusePolicy::TerminateIfRunning) => {
                                state.terminate(
                                    &existing,
                                    "terminated by a new start with the same workflow id",
                                    &request.identity,
                                );
                            }
                            _ => {
                                return Err(already_started(
                                    &request.workflow_id,
                                    &existing,
                                    &run.request_id,
                                ))
                            }
                        }
                    } else {
                        let reject = match reuse {
                            WorkflowIdReusePolicy::RejectDuplicate => true,
                            WorkflowIdReusePolicy::AllowDuplicateFailedOnly => {
                                run.status == WorkflowExecutionStatus::Completed
                            }
                            _ => false,
                        };
                        if reject {
                            return Err(already_started(
                                &request.workflow_id,
                                &existing,
                                &run.request_id,
                            ));
                        }
                    }
                }
                let run_id = state.start_run(StartRun {
                    namespace: request.namespace.clone(),
                    workflow_id: request.workflow_id.clone(),
                    request_id: request.request_id.clone(),
                    attrs: WorkflowExecutionStartedEventAttributes {
                        workflow_type: request.workflow_type.clone(),
                        task_queue: request.task_queue.clone(),
                        input: request.input.clone(),
                        workflow_execution_timeout: request.workflow_execution_timeout,
                        workflow_run_timeout: request.workflow_run_timeout,
                        workflow_task_timeout: request.workflow_task_timeout,
                        identity: request.identity.clone(),
                        retry_policy: request.retry_policy.clone(),
                        memo: request.memo.clone(),
                        search_attributes: request.search_attributes.clone(),
                        header: request.header.clone(),
                        last_completion_result: request.last_completion_result.clone(),
                        continued_failure: request.continued_failure.clone(),
                        cron_schedule: request.cron_schedule.clone(),
                        first_workflow_task_backoff: request.workflow_start_delay,
                        ..Default::default()
                    },
                    parent: None,
                });
                Ok((run_id, true))
            })
            .await
    }

    fn update_response(
        state: &State,
        run_id: &str,
        update_id: &str,
        stage: UpdateWorkflowExecutionLifecycleStage,
    ) -> Option<(i32, Option<proto::update::Outcome>)> {
        let run = state.runs.get(run_id)?;
        let update = run.updates.iter().find(|u| u.id == update_id)?;
        match &update.state {
            UpdateState::Completed(outcome) => Some((
                UpdateWorkflowExecutionLifecycleStage::Completed as i32,
                Some((**outcome).clone()),
            )),
            UpdateState::Accepted(_)
                if stage <= UpdateWorkflowExecutionLifecycleStage::Accepted =>
            {
                Some((UpdateWorkflowExecutionLifecycleStage::Accepted as i32, None))
            }
            _ if stage <= UpdateWorkflowExecutionLifecycleStage::Admitted => {
                Some((UpdateWorkflowExecutionLifecycleStage::Admitted as i32, None))
            }
            _ => None,
        }
    }

    fn describe(state: &State, run_id: &str) -> proto::workflow::WorkflowExecutionInfo {
        let run = &state.runs[run_id];
        proto::workflow::WorkflowExecutionInfo {
            execution: Some(run.execution()),
            r#type: run.started.workflow_type.clone(),
            start_time: Some(proto::timestamp(run.start_time)),
            close_time: run.close_time.map(proto::timestamp),
            status: run.status as i32,
            history_length: run.events.len() as i64,
            parent_execution: run.parent.as_ref().map(|p| p.execution.clone()),
            execution_time: Some(proto::timestamp(run.start_time)),
            memo: run.started.memo.clone(),
            search_attributes: run.started.search_attributes.clone(),
            task_queue: run.task_queue.clone(),
            first_run_id: run.started.first_execution_run_id.clone(),
            ..Default::default()
        }
    }
}

#[tonic::async_trait]
impl WorkflowService for Service {
    async fn get_system_info(
        &self,
        _request: Request<GetSystemInfoRequest>,
    ) -> Rpc<GetSystemInfoResponse> {
        Ok(Response::new(GetSystemInfoResponse {
            server_version: concat!("capstan-engine ", env!("CARGO_PKG_VERSION")).to_owned(),
            capabilities: Some(get_system_info_response::Capabilities {
                signal_and_query_header: true,
                internal_error_differentiation: true,
                activity_failure_include_heartbeat: true,
                encoded_failure_attributes: true,
                upsert_memo: true,
                sdk_metadata: true,
                ..Default::default()
            }),
        }))
    }

    async fn describe_namespace(
        &self,
        request: Request<DescribeNamespaceRequest>,
    ) -> Rpc<DescribeNamespaceResponse> {
        let request = request.into_inner();
        let namespace = self
            .store
            .transaction(|state| {
                state
                    .namespaces
                    .values()
                    .find(|n| {
                        n.name == request.namespace
                            || (!request.id.is_empty() && n.id == request.id)
                    })
                    .cloned()
            })
            .await;
        let namespace = namespace.ok_or_else(|| {
            Status::not_found(format!("namespace `{}` is not found", request.namespace))
        })?;
        Ok(Response::new(describe_namespace(namespace)))
    }

    async fn list_namespaces(
        &self,
        _request: Request<ListNamespacesRequest>,
    ) -> Rpc<ListNamespacesResponse> {
        let namespaces = self
            .store
            .transaction(|state| state.namespaces.values().cloned().collect::<Vec<_>>())
            .await;
        Ok(Response::new(ListNamespacesResponse {
            namespaces: namespaces.into_iter().map(describe_namespace).collect(),
            next_page_token: Vec::new(),
        }))
    }

    async fn get_cluster_info(
        &self,
        _request: Request<GetClusterInfoRequest>,
    ) -> Rpc<GetClusterInfoResponse> {
        Ok(Response::new(GetClusterInfoResponse {
            cluster_name: "capstan-engine".to_owned(),
            server_version: concat!("capstan-engine ", env!("CARGO_PKG_VERSION")).to_owned(),
            persistence_store: "sqlite".to_owned(),
            visibility_store: "sqlite".to_owned(),
            history_shard_count: 1,
            ..Default::default()
        }))
    }

    async fn get_search_attributes(
        &self,
        _request: Request<GetSearchAttributesRequest>,
    ) -> Rpc<GetSearchAttributesResponse> {
        Ok(Response::new(GetSearchAttributesResponse {
            keys: crate::visibility::search_attribute_types(),
        }))
    }

    async fn delete_workflow_execution(
        &self,
        request: Request<DeleteWorkflowExecutionRequest>,
    ) -> Rpc<DeleteWorkflowExecutionResponse> {
        let r = request.into_inner();
        self.store
            .transaction(|state| {
                check_namespace(state, &r.namespace)?;
                let run_id = state.resolve_run_id(&r.namespace, r.workflow_execution.as_ref())?;
                // As on Temporal, a running execution is terminated first.
                if state.runs[&run_id].is_open() {
                    state.terminate(&run_id, "deleted", "capstan-engine");
                }
                state.delete_run(&run_id);
                Ok::<_, Status>(())
            })
            .await?;
        Ok(Response::new(DeleteWorkflowExecutionResponse {}))
    }

    async fn get_workflow_execution_history_reverse(
        &self,
        request: Request<GetWorkflowExecutionHistoryReverseRequest>,
    ) -> Rpc<GetWorkflowExecutionHistoryReverseResponse> {
        let r = request.into_inner();
        // The page token is the number of events already returned from the end.
        let skip: usize = std::str::from_utf8(&r.next_page_token)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let page = usize::try_from(r.maximum_page_size)
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or(PAGE_SIZE);
        let (events, more) = self
            .store
            .transaction(|state| {
                check_namespace(state, &r.namespace)?;
                let run_id = state.resolve_run_id(&r.namespace, r.execution.as_ref())?;
                let events = &state.runs[&run_id].events;
                let more = events.len() > skip + page;
                let end = events.len().saturating_sub(skip);
                let mut page = events.range(end.saturating_sub(page)..end);
                page.reverse();
                Ok::<_, Status>((page, more))
            })
            .await?;
        let next = if more {
            (skip + events.len()).to_string().into_bytes()
        } else {
            Vec::new()
        };
        Ok(Response::new(GetWorkflowExecutionHistoryReverseResponse {
            history: Some(History { events }),
            next_page_token: next,
        }))
    }

    async fn register_namespace(
        &self,
        request: Request<RegisterNamespaceRequest>,
    ) -> Rpc<RegisterNamespaceResponse> {
        let request = request.into_inner();
        if request.namespace.is_empty() {
            return Err(Status::invalid_argument("namespace name is not set"));
        }
        self.store
            .transaction(|state| {
                if state.namespaces.contains_key(&request.namespace) {
                    return Err(Status::already_exists(format!(
                        "namespace `{}` already exists",
                        request.namespace
                    )));
                }
                state.namespaces.insert(
                    request.namespace.clone(),
                    crate::store::Namespace {
                        name: request.namespace.clone(),
                        id: uuid::Uuid::new_v4().to_string(),
                    },
                );
                Ok(())
            })
            .await?;
        Ok(Response::new(RegisterNamespaceResponse {}))
    }

    async fn start_workflow_execution(
        &self,
        request: Request<StartWorkflowExecutionRequest>,
    ) -> Rpc<StartWorkflowExecutionResponse> {
        let (run_id, started) = self.start(request.into_inner()).await?;
        Ok(Response::new(StartWorkflowExecutionResponse {
            run_id,
            started,
            status: WorkflowExecutionStatus::Running as i32,
            ..Default::default()
        }))
    }

    async fn signal_with_start_workflow_execution(
        &self,
        request: Request<SignalWithStartWorkflowExecutionRequest>,
    ) -> Rpc<SignalWithStartWorkflowExecutionResponse> {
        let r = request.into_inner();
        let signal = proto::history::WorkflowExecutionSignaledEventAttributes {
            signal_name: r.signal_name.clone(),
            input: r.signal_input.clone(),
            identity: r.identity.clone(),
            header: r.header.clone(),
            ..Default::default()
        };
        let existing = self
            .store
            .transaction(|state| {
                check_namespace(state, &r.namespace)?;
                let key = (r.namespace.clone(), r.workflow_id.clone());
                let open = state
                    .current
                    .get(&key)
                    .filter(|id| state.runs[*id].is_open())
                    .cloned();
                if let Some(run_id) = &open {
                    let (runs, sched) = (&mut state.runs, &mut state.sched);
                    runs.get_mut(run_id)
                        .expect("the current run exists")
                        .signal(sched, signal.clone());
                }
                Ok::<_, Status>(open)
            })
            .await?;
        if let Some(run_id) = existing {
            return Ok(Response::new(SignalWithStartWorkflowExecutionResponse {
                run_id,
                started: false,
                ..Default::default()
            }));
        }
        let (run_id, started) = self
            .start(StartWorkflowExecutionRequest {
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
                ..Default::default()
            })
            .await?;
        self.store
            .transaction(|state| {
                let (runs, sched) = (&mut state.runs, &mut state.sched);
                if let Some(run) = runs.get_mut(&run_id) {
                    run.signal(sched, signal);
                }
            })
            .await;
        Ok(Response::new(SignalWithStartWorkflowExecutionResponse {
            run_id,
            started,
            ..Default::default()
        }))
    }

    async fn poll_workflow_task_queue(
        &self,
        request: Request<PollWorkflowTaskQueueRequest>,
    ) -> Rpc<PollWorkflowTaskQueueResponse> {
        let deadline = poll_deadline(&request);
        let request = request.into_inner();
        let queue = request.task_queue.clone().unwrap_or_default();
        self.store
            .transaction(|state| check_namespace(state, &request.namespace))
            .await?;
        let sticky = queue.kind == TaskQueueKind::Sticky as i32;
        let _poller = sticky.then(|| StickyPoll::begin(&self.store, &queue.name));
        let topic = Topic::Queue(request.namespace.clone(), queue.name.clone());
        let task = self
            .wait_for(deadline, topic, Answer::Staged, |state| {
                // A sticky queue whose worker shut down answers its held polls empty.
                if sticky && state.sched.closed_sticky.contains(&queue.name) {
                    return Ok(Some(None));
                }
                Ok(dispatch_workflow_task(
                    state,
                    &request.namespace,
                    &queue.name,
                    &request.identity,
                )
                .map(Some))
            })
            .await?
            .flatten();
        Ok(Response::new(task.unwrap_or_default()))
    }

    async fn respond_workflow_task_completed(
        &self,
        request: Request<RespondWorkflowTaskCompletedRequest>,
    ) -> Rpc<RespondWorkflowTaskCompletedResponse> {
        let request = request.into_inner();
        let Token::Workflow { run, scheduled, .. } = Token::decode(&request.task_token)? else {
            return Err(Status::invalid_argument("not a workflow task token"));
        };
        let answer = self
            .store
            .transaction(|state| state.complete_workflow_task(&run, scheduled, request))
            .await?;
        Ok(Response::new(answer))
    }

    async fn respond_workflow_task_failed(
        &self,
        request: Request<RespondWorkflowTaskFailedRequest>,
    ) -> Rpc<RespondWorkflowTaskFailedResponse> {
        let request = request.into_inner();
        let Token::Workflow { run, scheduled, .. } = Token::decode(&request.task_token)? else {
            return Err(Status::invalid_argument("not a workflow task token"));
        };
        self.store
            .transaction(|state| {
                let (runs, sched) = (&mut state.runs, &mut state.sched);
                let run = runs
                    .get_mut(&run)
                    .ok_or_else(|| Status::not_found("workflow run not found"))?;
                run.fail_workflow_task(sched, request, scheduled)
            })
            .await?;
        Ok(Response::new(Default::default()))
    }

    async fn poll_activity_task_queue(
        &self,
        request: Request<PollActivityTaskQueueRequest>,
    ) -> Rpc<PollActivityTaskQueueResponse> {
        let deadline = poll_deadline(&request);
        let request = request.into_inner();
        let queue = request.task_queue.clone().unwrap_or_default().name;
        self.store
            .transaction(|state| check_namespace(state, &request.namespace))
            .await?;
        let topic = Topic::Queue(request.namespace.clone(), queue.clone());
        let task = self
            .wait_for(deadline, topic, Answer::Written, |state| {
                let State { runs, sched, .. } = state;
                loop {
                    let Some(task) = sched
                        .queues
                        .get_mut(&request.namespace, &queue)
                        .activity
                        .pop_front()
                    else {
                        return Ok(None);
                    };
                    let Some(run) = runs.get_mut(&task.run_id) else {
                        continue;
                    };
                    if !run.is_open() {
                        continue;
                    }
                    if let Some(response) = run.start_activity(sched, &task, &request.identity) {
                        return Ok(Some(response));
                    }
                }
            })
            .await?;
        Ok(Response::new(task.unwrap_or_default()))
    }

    async fn record_activity_task_heartbeat(
        &self,
        request: Request<RecordActivityTaskHeartbeatRequest>,
    ) -> Rpc<RecordActivityTaskHeartbeatResponse> {
        let r = request.into_inner();
        let target = ActivityTarget::token(&r.task_token)?;
        let cancel_requested = self.heartbeat(target, r.details).await?;
        Ok(Response::new(RecordActivityTaskHeartbeatResponse {
            cancel_requested,
            ..Default::default()
        }))
    }

    async fn record_activity_task_heartbeat_by_id(
        &self,
        request: Request<RecordActivityTaskHeartbeatByIdRequest>,
    ) -> Rpc<RecordActivityTaskHeartbeatByIdResponse> {
        let r = request.into_inner();
        let target = ActivityTarget::by_id(r.namespace, r.workflow_id, r.run_id, r.activity_id);
        let cancel_requested = self.heartbeat(target, r.details).await?;
        Ok(Response::new(RecordActivityTaskHeartbeatByIdResponse {
            cancel_requested,
            ..Default::default()
        }))
    }

    async fn respond_activity_task_completed(
        &self,
        request: Request<RespondActivityTaskCompletedRequest>,
    ) -> Rpc<RespondActivityTaskCompletedResponse> {
        let r = request.into_inner();
        let target = ActivityTarget::token(&r.task_token)?;
        self.complete_activity(target, r.result, r.identity).await?;
        Ok(Response::new(Default::default()))
    }

    async fn respond_activity_task_completed_by_id(
        &self,
        request: Request<RespondActivityTaskCompletedByIdRequest>,
    ) -> Rpc<RespondActivityTaskCompletedByIdResponse> {
        let r = request.into_inner();
        let target = ActivityTarget::by_id(r.namespace, r.workflow_id, r.run_id, r.activity_id);
        self.complete_activity(target, r.result, r.identity).await?;
        Ok(Response::new(Default::default()))
    }

    async fn respond_activity_task_failed(
        &self,
        request: Request<RespondActivityTaskFailedRequest>,
    ) -> Rpc<RespondActivityTaskFailedResponse> {
        let r = request.into_inner();
        let target = ActivityTarget::token(&r.task_token)?;
        self.fail_activity(target, r.failure, r.last_heartbeat_details, r.identity)
            .await?;
        Ok(Response::new(Default::default()))
    }

    async fn respond_activity_task_failed_by_id(
        &self,
        request: Request<RespondActivityTaskFailedByIdRequest>,
    ) -> Rpc<RespondActivityTaskFailedByIdResponse> {
        let r = request.into_inner();
        let target = ActivityTarget::by_id(r.namespace, r.workflow_id, r.run_id, r.activity_id);
        self.fail_activity(target, r.failure, r.last_heartbeat_details, r.identity)
            .await?;
        Ok(Response::new(Default::default()))
    }

    async fn respond_activity_task_canceled(
        &self,
        request: Request<RespondActivityTaskCanceledRequest>,
    ) -> Rpc<RespondActivityTaskCanceledResponse> {
        let r = request.into_inner();
        let target = ActivityTarget::token(&r.task_token)?;
        self.cancel_activity(target, r.details, r.identity).await?;
        Ok(Response::new(Default::default()))
    }

    async fn respond_activity_task_canceled_by_id(
        &self,
        request: Request<RespondActivityTaskCanceledByIdRequest>,
    ) -> Rpc<RespondActivityTaskCanceledByIdResponse> {
        let r = request.into_inner();
        let target = ActivityTarget::by_id(r.namespace, r.workflow_id, r.run_id, r.activity_id);
        self.cancel_activity(target, r.details, r.identity).await?;
        Ok(Response::new(Default::default()))
    }

    async fn signal_workflow_execution(
        &self,
        request: Request<SignalWorkflowExecutionRequest>,
    ) -> Rpc<SignalWorkflowExecutionResponse> {
        let r = request.into_inner();
        self.store
            .transaction(|state| {
                check_namespace(state, &r.namespace)?;
                let run_id = state.resolve_run_id(&r.namespace, r.workflow_execution.as_ref())?;
                let (runs, sched) = (&mut state.runs, &mut state.sched);
                let run = runs.get_mut(&run_id).expect("resolved");
                if !run.is_open() {
                    return Err(closed_error(&run.workflow_id));
                }
                run.signal(
                    sched,
                    proto::history::WorkflowExecutionSignaledEventAttributes {
                        signal_name: r.signal_name,
                        input: r.input,
                        identity: r.identity,
                        header: r.header,
                        ..Default::default()
                    },
                );
                Ok(())
            })
            .await?;
        Ok(Response::new(Default::default()))
    }

    async fn request_cancel_workflow_execution(
        &self,
        request: Request<RequestCancelWorkflowExecutionRequest>,
    ) -> Rpc<RequestCancelWorkflowExecutionResponse> {
        let r = request.into_inner();
        self.store
            .transaction(|state| {
                check_namespace(state, &r.namespace)?;
                let run_id = state.resolve_run_id(&r.namespace, r.workflow_execution.as_ref())?;
                let (runs, sched) = (&mut state.runs, &mut state.sched);
                let run = runs.get_mut(&run_id).expect("resolved");
                if !run.is_open() {
                    return Err(closed_error(&run.workflow_id));
                }
                if !run.cancel_requested() {
                    run.request_cancel(
                        sched,
                        proto::history::WorkflowExecutionCancelRequestedEventAttributes {
                            cause: r.reason,
                            identity: r.identity,
                            ..Default::default()
                        },
                    );
                }
                Ok(())
            })
            .await?;
        Ok(Response::new(Default::default()))
    }

    async fn terminate_workflow_execution(
        &self,
        request: Request<TerminateWorkflowExecutionRequest>,
    ) -> Rpc<TerminateWorkflowExecutionResponse> {
        let r = request.into_inner();
        self.store
            .transaction(|state| {
                check_namespace(state, &r.namespace)?;
                let run_id = state.resolve_run_id(&r.namespace, r.workflow_execution.as_ref())?;
                let run = &state.runs[&run_id];
                if !run.is_open() {
                    return Err(closed_error(&run.workflow_id));
                }
                state.terminate(&run_id, &r.reason, &r.identity);
                Ok(())
            })
            .await?;
        Ok(Response::new(Default::default()))
    }

    async fn describe_workflow_execution(
        &self,
        request: Request<DescribeWorkflowExecutionRequest>,
    ) -> Rpc<DescribeWorkflowExecutionResponse> {
        let r = request.into_inner();
        let response = self
            .store
            .transaction(|state| {
                check_namespace(state, &r.namespace)?;
                let run_id = state.resolve_run_id(&r.namespace, r.execution.as_ref())?;
                let run = &state.runs[&run_id];
                let pending_activities = run
                    .activities
                    .values()
                    .map(|a| proto::workflow::PendingActivityInfo {
                        activity_id: a.attrs.activity_id.clone(),
                        activity_type: a.attrs.activity_type.clone(),
                        state: match a.state {
                            ActivityState::Started { .. } => {
                                proto::enums::PendingActivityState::Started as i32
                            }
                            _ => proto::enums::PendingActivityState::Scheduled as i32,
                        },
                        heartbeat_details: a.heartbeat_details.clone(),
                        attempt: a.attempt,
                        maximum_attempts: a
                            .attrs
                            .retry_policy
                            .as_ref()
                            .map_or(0, |p| p.maximum_attempts),
                        scheduled_time: Some(proto::timestamp(a.attempt_scheduled_time)),
                        last_failure: a.last_failure.clone(),
                        ..Default::default()
                    })
                    .collect();
                let pending_children = run
                    .children
                    .iter()
                    .map(
                        |(initiated, c)| proto::workflow::PendingChildExecutionInfo {
                            workflow_id: c.execution.workflow_id.clone(),
                            run_id: c.execution.run_id.clone(),
                            workflow_type_name: c.workflow_type.clone(),
                            initiated_id: *initiated,
                            parent_close_policy: c.parent_close_policy,
                        },
                    )
                    .collect();
                Ok::<_, Status>(DescribeWorkflowExecutionResponse {
                    execution_config: Some(proto::workflow::WorkflowExecutionConfig {
                        task_queue: run.started.task_queue.clone(),
                        workflow_execution_timeout: run.started.workflow_execution_timeout,
                        workflow_run_timeout: run.started.workflow_run_timeout,
                        default_workflow_task_timeout: run.started.workflow_task_timeout,
                        ..Default::default()
                    }),
                    workflow_execution_info: Some(Self::describe(state, &run_id)),
                    pending_activities,
                    pending_children,
                    ..Default::default()
                })
            })
            .await?;
        Ok(Response::new(response))
    }

    async fn get_workflow_execution_history(
        &self,
        request: Request<GetWorkflowExecutionHistoryRequest>,
    ) -> Rpc<GetWorkflowExecutionHistoryResponse> {
        let deadline = poll_deadline(&request);
        let r = request.into_inner();
        let start: usize = if r.next_page_token.is_empty() {
            0
        } else {
            std::str::from_utf8(&r.next_page_token)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| Status::invalid_argument("malformed next page token"))?
        };
        let page = if r.maximum_page_size > 0 {
            r.maximum_page_size as usize
        } else {
            PAGE_SIZE
        };
        let close_only = r.history_event_filter_type == HistoryEventFilterType::CloseEvent as i32;
        let run_id = self
            .store
            .transaction(|state| {
                check_namespace(state, &r.namespace)?;
                state.resolve_run_id(&r.namespace, r.execution.as_ref())
            })
            .await?;
        let read =
            |state: &mut State| -> Result<Option<GetWorkflowExecutionHistoryResponse>, Status> {
                // Deleted while a read waited for it.
                let run = state.runs.get(&run_id).ok_or_else(|| {
                    Status::not_found(format!("workflow run `{run_id}` was deleted"))
                })?;
                if close_only {
                    if run.is_open() {
                        return Ok(None);
                    }
                    return Ok(Some(GetWorkflowExecutionHistoryResponse {
                        history: Some(History {
                            events: run.events.last().into_iter().collect(),
                        }),
                        ..Default::default()
                    }));
                }
                if start >= run.events.len() && run.is_open() && r.wait_new_event {
                    return Ok(None);
                }
                let end = (start + page).min(run.events.len());
                let events = run.events.range(start..end);
                let more = end < run.events.len();
                Ok(Some(GetWorkflowExecutionHistoryResponse {
                    history: Some(History { events }),
                    next_page_token: if more {
                        end.to_string().into_bytes()
                    } else {
                        Vec::new()
                    },
                    ..Default::default()
                }))
            };
        let response = if r.wait_new_event {
            self.wait_for(deadline, Topic::Run(run_id.clone()), Answer::Written, read)
                .await?
        } else {
            self.store.transaction(read).await?
        };
        Ok(Response::new(response.unwrap_or_else(|| {
            GetWorkflowExecutionHistoryResponse {
                history: Some(History::default()),
                next_page_token: if close_only || r.next_page_token.is_empty() {
                    Vec::new()
                } else {
                    r.next_page_token.clone()
                },
                ..Default::default()
            }
        })))
    }

    async fn query_workflow(
        &self,
        request: Request<QueryWorkflowRequest>,
    ) -> Rpc<QueryWorkflowResponse> {
        let deadline = poll_deadline(&request);
        let r = request.into_inner();
        let query = r
            .query
            .ok_or_else(|| Status::invalid_argument("query is not set"))?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let id = uuid::Uuid::new_v4().to_string();
        self.store
            .transaction(|state| {
                check_namespace(state, &r.namespace)?;
                let run_id = state.resolve_run_id(&r.namespace, r.execution.as_ref())?;
                // The worker that has the run cached answers from its cache: the query
                // goes to its sticky queue, without history.
                let (namespace, queue) = {
                    let run = &state.runs[&run_id];
                    let queue = match &run.sticky {
                        Some(s) if state.sched.sticky_worker_polls(&s.name) => s.name.clone(),
                        _ => run.task_queue.clone(),
                    };
                    (run.namespace.clone(), queue)
                };
                state.sched.queries.insert(
                    id.clone(),
                    PendingQuery {
                        run_id,
                        query,
                        reply: Some(tx),
                    },
                );
                state.sched.queues.push_workflow(
                    &namespace,
                    &queue,
                    WorkflowTaskRef::Query(id.clone()),
                );
                state.sched.changed = true;
                Ok::<_, Status>(())
            })
            .await?;
        let answer = tokio::time::timeout_at(deadline, rx).await;
        // A query ending may leave the engine idle: tell the waiters (a virtual clock).
        self.store
            .transaction(|state| {
                state.sched.queries.remove(&id);
                state.sched.changed = true;
            })
            .await;
        match answer {
            Ok(Ok(Ok(result))) => Ok(Response::new(QueryWorkflowResponse {
                query_result: result,
                ..Default::default()
            })),
            Ok(Ok(Err(message))) => Err(Status::invalid_argument(message)),
            Ok(Err(_)) => Err(Status::unavailable("the engine is stopping")),
            Err(_) => Err(Status::deadline_exceeded(
                "no worker answered the query in time: is a worker polling the workflow's task queue?",
            )),
        }
    }

    async fn respond_query_task_completed(
        &self,
        request: Request<RespondQueryTaskCompletedRequest>,
    ) -> Rpc<RespondQueryTaskCompletedResponse> {
        let r = request.into_inner();
        let Token::Query { id } = Token::decode(&r.task_token)? else {
            return Err(Status::invalid_argument("not a query task token"));
        };
        let pending = self
            .store
            .transaction(|state| {
                state
                    .sched
                    .queries
                    .get_mut(&id)
                    .and_then(|q| q.reply.take())
            })
            .await
            .ok_or_else(|| Status::not_found("query not found: it may have timed out"))?;
        let answer = if r.completed_type == proto::enums::QueryResultType::Answered as i32 {
            Ok(r.query_result)
        } else if !r.error_message.is_empty() {
            Err(r.error_message)
        } else {
            Err(r.failure.map(|f| f.message).unwrap_or_default())
        };
        let _ = pending.send(answer);
        Ok(Response::new(Default::default()))
    }

    async fn update_workflow_execution(
        &self,
        request: Request<UpdateWorkflowExecutionRequest>,
    ) -> Rpc<UpdateWorkflowExecutionResponse> {
        let deadline = poll_deadline(&request);
        let r = request.into_inner();
        let update_request = r
            .request
            .clone()
            .ok_or_else(|| Status::invalid_argument("update request is not set"))?;
        let update_id = update_request
            .meta
            .as_ref()
            .map(|m| m.update_id.clone())
            .filter(|id| !id.is_empty())
            .ok_or_else(|| Status::invalid_argument("update id is not set"))?;
        let stage = r
            .wait_policy
            .map(|p| p.lifecycle_stage())
            .filter(|s| *s != UpdateWorkflowExecutionLifecycleStage::Unspecified)
            .unwrap_or(UpdateWorkflowExecutionLifecycleStage::Accepted);
        let run_id = self
            .store
            .transaction(|state| {
                check_namespace(state, &r.namespace)?;
                let run_id = state.resolve_run_id(&r.namespace, r.workflow_execution.as_ref())?;
                let (runs, sched) = (&mut state.runs, &mut state.sched);
                let run = runs.get_mut(&run_id).expect("resolved");
                let known = run.updates.iter().any(|u| u.id == update_id);
                if !run.is_open() && !known {
                    return Err(closed_error(&run.workflow_id));
                }
                run.admit_update(sched, update_request);
                Ok(run_id)
            })
            .await?;
        let reached = self
            .wait_for(
                deadline,
                Topic::Run(run_id.clone()),
                Answer::Written,
                |state| Ok(Self::update_response(state, &run_id, &update_id, stage)),
            )
            .await?;
        let (stage, outcome) =
            reached.unwrap_or((UpdateWorkflowExecutionLifecycleStage::Admitted as i32, None));
        let workflow_id = r
            .workflow_execution
            .map(|e| e.workflow_id)
            .unwrap_or_default();
        Ok(Response::new(UpdateWorkflowExecutionResponse {
            update_ref: Some(proto::update::UpdateRef {
                workflow_execution: Some(WorkflowExecution {
                    workflow_id,
                    run_id,
                }),
                update_id,
            }),
            outcome,
            stage,
            ..Default::default()
        }))
    }

    async fn poll_workflow_execution_update(
        &self,
        request: Request<PollWorkflowExecutionUpdateRequest>,
    ) -> Rpc<PollWorkflowExecutionUpdateResponse> {
        let deadline = poll_deadline(&request);
        let r = request.into_inner();
        let update_ref = r
            .update_ref
            .clone()
            .ok_or_else(|| Status::invalid_argument("update ref is not set"))?;
        let stage = r
            .wait_policy
            .map(|p| p.lifecycle_stage())
            .filter(|s| *s != UpdateWorkflowExecutionLifecycleStage::Unspecified)
            .unwrap_or(UpdateWorkflowExecutionLifecycleStage::Accepted);
        let run_id = self
            .store
            .transaction(|state| {
                check_namespace(state, &r.namespace)?;
                let run_id =
                    state.resolve_run_id(&r.namespace, update_ref.workflow_execution.as_ref())?;
                if !state.runs[&run_id]
                    .updates
                    .iter()
                    .any(|u| u.id == update_ref.update_id)
                {
                    return Err(Status::not_found(format!(
                        "update `{}` not found",
                        update_ref.update_id
                    )));
                }
                Ok(run_id)
            })
            .await?;
        let reached = self
            .wait_for(
                deadline,
                Topic::Run(run_id.clone()),
                Answer::Written,
                |state| {
                    Ok(Self::update_response(
                        state,
                        &run_id,
                        &update_ref.update_id,
                        stage,
                    ))
                },
            )
            .await?;
        let (stage, outcome) =
            reached.unwrap_or((UpdateWorkflowExecutionLifecycleStage::Admitted as i32, None));
        Ok(Response::new(PollWorkflowExecutionUpdateResponse {
            outcome,
            stage,
            update_ref: Some(update_ref),
        }))
    }

    async fn list_workflow_executions(
        &self,
        request: Request<ListWorkflowExecutionsRequest>,
    ) -> Rpc<ListWorkflowExecutionsResponse> {
        let r = request.into_inner();
        let filter = Filter::parse(&r.query)?;
        let skip: usize = std::str::from_utf8(&r.next_page_token)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let page = if r.page_size > 0 {
            r.page_size as usize
        } else {
            1000
        };
        let (executions, more) = self
            .store
            .transaction(|state| {
                check_namespace(state, &r.namespace)?;
                let matching: Vec<String> = state
                    .started
                    .iter()
                    .rev()
                    .filter(|id| {
                        let run = &state.runs[*id];
                        run.namespace == r.namespace && filter.matches(run)
                    })
                    .cloned()
                    .collect();
                let more = matching.len() > skip + page;
                let executions = matching
                    .iter()
                    .skip(skip)
                    .take(page)
                    .map(|id| Self::describe(state, id))
                    .collect::<Vec<_>>();
                Ok::<_, Status>((executions, more))
            })
            .await?;
        Ok(Response::new(ListWorkflowExecutionsResponse {
            executions,
            next_page_token: if more {
                (skip + page).to_string().into_bytes()
            } else {
                Vec::new()
            },
        }))
    }

    async fn count_workflow_executions(
        &self,
        request: Request<CountWorkflowExecutionsRequest>,
    ) -> Rpc<CountWorkflowExecutionsResponse> {
        let r = request.into_inner();
        let filter = Filter::parse(&r.query)?;
        let count = self
            .store
            .transaction(|state| {
                check_namespace(state, &r.namespace)?;
                Ok::<_, Status>(
                    state
                        .runs
                        .values()
                        .filter(|run| run.namespace == r.namespace && filter.matches(run))
                        .count(),
                )
            })
            .await?;
        Ok(Response::new(CountWorkflowExecutionsResponse {
            count: count as i64,
            ..Default::default()
        }))
    }

    async fn shutdown_worker(
        &self,
        request: Request<ShutdownWorkerRequest>,
    ) -> Rpc<ShutdownWorkerResponse> {
        let r = request.into_inner();
        if !r.sticky_task_queue.is_empty() {
            self.store
                .transaction(|state| state.close_sticky_queue(&r.namespace, &r.sticky_task_queue))
                .await;
        }
        Ok(Response::new(Default::default()))
    }

    async fn reset_sticky_task_queue(
        &self,
        request: Request<ResetStickyTaskQueueRequest>,
    ) -> Rpc<ResetStickyTaskQueueResponse> {
        let r = request.into_inner();
        self.store
            .transaction(|state| {
                check_namespace(state, &r.namespace)?;
                let run_id = state.resolve_run_id(&r.namespace, r.execution.as_ref())?;
                let (runs, sched) = (&mut state.runs, &mut state.sched);
                let run = runs.get_mut(&run_id).expect("resolved");
                run.sticky = None;
                if let Some(task) = &run.wft {
                    let scheduled = task.scheduled_event_id;
                    run.unstick_workflow_task(sched, scheduled);
                }
                Ok::<_, Status>(())
            })
            .await?;
        Ok(Response::new(Default::default()))
    }

    async fn create_schedule(
        &self,
        request: Request<CreateScheduleRequest>,
    ) -> Rpc<CreateScheduleResponse> {
        let r = request.into_inner();
        let conflict_token = self
            .store
            .transaction(|state| {
                check_namespace(state, &r.namespace)?;
                state.create_schedule(NewSchedule {
                    namespace: r.namespace,
                    id: r.schedule_id,
                    schedule: r.schedule.unwrap_or_default(),
                    initial_patch: r.initial_patch,
                    memo: r.memo,
                    search_attributes: r.search_attributes,
                })
            })
            .await?;
        Ok(Response::new(CreateScheduleResponse { conflict_token }))
    }

    async fn describe_schedule(
        &self,
        request: Request<DescribeScheduleRequest>,
    ) -> Rpc<DescribeScheduleResponse> {
        let r = request.into_inner();
        let described = self
            .store
            .transaction(|state| {
                check_namespace(state, &r.namespace)?;
                state.describe_schedule(&(r.namespace, r.schedule_id))
            })
            .await?;
        Ok(Response::new(described))
    }

    async fn update_schedule(
        &self,
        request: Request<UpdateScheduleRequest>,
    ) -> Rpc<UpdateScheduleResponse> {
        let r = request.into_inner();
        self.store
            .transaction(|state| {
                check_namespace(state, &r.namespace)?;
                state.update_schedule(
                    &(r.namespace, r.schedule_id),
                    r.schedule.unwrap_or_default(),
                    &r.conflict_token,
                    r.memo,
                    r.search_attributes,
                )
            })
            .await?;
        Ok(Response::new(UpdateScheduleResponse {}))
    }

    async fn patch_schedule(
        &self,
        request: Request<PatchScheduleRequest>,
    ) -> Rpc<PatchScheduleResponse> {
        let r = request.into_inner();
        self.store
            .transaction(|state| {
                check_namespace(state, &r.namespace)?;
                state.patch_schedule(
                    &(r.namespace, r.schedule_id),
                    r.patch.unwrap_or_default(),
                    &r.request_id,
                )
            })
            .await?;
        Ok(Response::new(PatchScheduleResponse {}))
    }

    async fn list_schedule_matching_times(
        &self,
        request: Request<ListScheduleMatchingTimesRequest>,
    ) -> Rpc<ListScheduleMatchingTimesResponse> {
        let r = request.into_inner();
        let (Some(start), Some(end)) = (
            proto::system_time(r.start_time.as_ref()),
            proto::system_time(r.end_time.as_ref()),
        ) else {
            return Err(Status::invalid_argument(
                "matching times need a start time and an end time",
            ));
        };
        let times = self
            .store
            .transaction(|state| {
                check_namespace(state, &r.namespace)?;
                state.schedule_matching_times(&(r.namespace, r.schedule_id), start, end)
            })
            .await?;
        Ok(Response::new(ListScheduleMatchingTimesResponse {
            start_time: times.into_iter().map(proto::timestamp).collect(),
        }))
    }

    async fn delete_schedule(
        &self,
        request: Request<DeleteScheduleRequest>,
    ) -> Rpc<DeleteScheduleResponse> {
        let r = request.into_inner();
        self.store
            .transaction(|state| {
                check_namespace(state, &r.namespace)?;
                state.delete_schedule(&(r.namespace, r.schedule_id))
            })
            .await?;
        Ok(Response::new(DeleteScheduleResponse {}))
    }

    async fn count_schedules(
        &self,
        request: Request<CountSchedulesRequest>,
    ) -> Rpc<CountSchedulesResponse> {
        let r = request.into_inner();
        check_schedule_query(&r.query)?;
        let count = self
            .store
            .transaction(|state| {
                check_namespace(state, &r.namespace)?;
                Ok::<_, Status>(state.list_schedules(&r.namespace, "", usize::MAX).0.len())
            })
            .await?;
        Ok(Response::new(CountSchedulesResponse {
            count: count as i64,
            ..Default::default()
        }))
    }

    async fn list_schedules(
        &self,
        request: Request<ListSchedulesRequest>,
    ) -> Rpc<ListSchedulesResponse> {
        let r = request.into_inner();
        check_schedule_query(&r.query)?;
        let after = String::from_utf8(r.next_page_token).unwrap_or_default();
        let page = usize::try_from(r.maximum_page_size)
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or(1000);
        let (schedules, next) = self
            .store
            .transaction(|state| {
                check_namespace(state, &r.namespace)?;
                Ok::<_, Status>(state.list_schedules(&r.namespace, &after, page))
            })
            .await?;
        Ok(Response::new(ListSchedulesResponse {
            schedules,
            next_page_token: next.map(String::into_bytes).unwrap_or_default(),
        }))
    }
}

/// What DescribeNamespace and ListNamespaces say of a namespace.
fn describe_namespace(namespace: crate::store::Namespace) -> DescribeNamespaceResponse {
    DescribeNamespaceResponse {
        namespace_info: Some(proto::namespace::NamespaceInfo {
            name: namespace.name,
            id: namespace.id,
            state: proto::enums::NamespaceState::Registered as i32,
            capabilities: Some(Default::default()),
            ..Default::default()
        }),
        config: Some(proto::namespace::NamespaceConfig {
            workflow_execution_retention_ttl: Some(proto::proto_duration(Duration::from_secs(
                86400,
            ))),
            ..Default::default()
        }),
        // One cluster: this engine (tools such as the `temporal` CLI print it).
        replication_config: Some(
            temporalio_protos::temporal::api::replication::v1::NamespaceReplicationConfig {
                active_cluster_name: "capstan-engine".to_owned(),
                clusters: vec![
                    temporalio_protos::temporal::api::replication::v1::ClusterReplicationConfig {
                        cluster_name: "capstan-engine".to_owned(),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
        ),
        ..Default::default()
    }
}

/// A sticky poll in progress: counted from its start until it is answered or dropped (a
/// client that goes away drops it), so that tasks go to a sticky queue only while its
/// worker polls it.
struct StickyPoll {
    store: Arc<Store>,
    queue: String,
}

impl StickyPoll {
    fn begin(store: &Arc<Store>, queue: &str) -> Self {
        // Only scheduler bookkeeping changes: nothing to write.
        let _ = store.apply(|state| state.sched.sticky_poll(queue, true));
        Self {
            store: store.clone(),
            queue: queue.to_owned(),
        }
    }
}

impl Drop for StickyPoll {
    fn drop(&mut self) {
        let _ = self
            .store
            .apply(|state| state.sched.sticky_poll(&self.queue, false));
    }
}

/// The activity attempt a worker answers for: named by its task token, or (the `ById`
/// methods) by its workflow and activity id, meaning the current attempt.
enum ActivityTarget {
    Token {
        run_id: String,
        scheduled: i64,
        attempt: i32,
    },
    ById {
        namespace: String,
        execution: WorkflowExecution,
        activity_id: String,
    },
}

impl ActivityTarget {
    fn token(token: &[u8]) -> Result<Self, Status> {
        match Token::decode(token)? {
            Token::Activity {
                run,
                scheduled,
                attempt,
            } => Ok(Self::Token {
                run_id: run,
                scheduled,
                attempt,
            }),
            _ => Err(Status::invalid_argument("not an activity task token")),
        }
    }

    fn by_id(namespace: String, workflow_id: String, run_id: String, activity_id: String) -> Self {
        Self::ById {
            namespace,
            execution: WorkflowExecution {
                workflow_id,
                run_id,
            },
            activity_id,
        }
    }

    /// `(run id, scheduled event id, attempt)`.
    fn resolve(self, state: &State) -> Result<(String, i64, i32), Status> {
        match self {
            Self::Token {
                run_id,
                scheduled,
                attempt,
            } => Ok((run_id, scheduled, attempt)),
            Self::ById {
                namespace,
                execution,
                activity_id,
            } => {
                check_namespace(state, &namespace)?;
                if execution.workflow_id.is_empty() || activity_id.is_empty() {
                    return Err(Status::invalid_argument(
                        "the workflow id and the activity id are both required",
                    ));
                }
                let run_id = state.resolve_run_id(&namespace, Some(&execution))?;
                let run = &state.runs[&run_id];
                let (scheduled, activity) = run
                    .activities
                    .iter()
                    .find(|(_, a)| a.attrs.activity_id == activity_id)
                    .ok_or_else(|| {
                        Status::not_found(format!(
                            "workflow `{}` has no pending activity `{activity_id}`",
                            execution.workflow_id
                        ))
                    })?;
                Ok((run_id, *scheduled, activity.attempt))
            }
        }
    }
}

/// Takes the first dispatchable workflow task or query of a queue; drops stale entries.
fn dispatch_workflow_task(
    state: &mut State,
    namespace: &str,
    queue: &str,
    identity: &str,
) -> Option<PollWorkflowTaskQueueResponse> {
    let State { runs, sched, .. } = state;
    let mut index = 0;
    loop {
        let entry = sched
            .queues
            .get_mut(namespace, queue)
            .workflow
            .get(index)
            .cloned()?;
        match entry {
            WorkflowTaskRef::Run(run_id) => {
                sched
                    .queues
                    .get_mut(namespace, queue)
                    .workflow
                    .remove(index);
                if let Some(run) = runs.get_mut(&run_id) {
                    if let Some(task) = run.start_workflow_task(sched, identity, queue) {
                        return Some(task);
                    }
                }
            }
            WorkflowTaskRef::Query(id) => {
                let Some(pending) = sched.queries.get(&id) else {
                    sched
                        .queues
                        .get_mut(namespace, queue)
                        .workflow
                        .remove(index);
                    continue;
                };
                let Some(run) = runs.get(&pending.run_id) else {
                    sched
                        .queues
                        .get_mut(namespace, queue)
                        .workflow
                        .remove(index);
                    continue;
                };
                // A query waits for the first workflow task and for any task in flight.
                let ready =
                    !run.is_open() || (run.wft.is_none() && run.previous_started_event_id > 0);
                if !ready {
                    index += 1;
                    continue;
                }
                sched
                    .queues
                    .get_mut(namespace, queue)
                    .workflow
                    .remove(index);
                let sticky = queue != run.task_queue;
                if sticky && run.sticky.as_ref().map(|s| s.name.as_str()) != Some(queue) {
                    // The run lost its sticky worker meanwhile: any worker answers it.
                    sched.queues.push_workflow(
                        namespace,
                        &run.task_queue,
                        WorkflowTaskRef::Query(id),
                    );
                    sched.changed = true;
                    continue;
                }
                return Some(PollWorkflowTaskQueueResponse {
                    task_token: Token::Query { id }.encode(),
                    workflow_execution: Some(run.execution()),
                    workflow_type: run.started.workflow_type.clone(),
                    previous_started_event_id: run.previous_started_event_id,
                    attempt: 1,
                    history: Some(History {
                        events: if sticky {
                            Vec::new()
                        } else {
                            run.events.to_vec()
                        },
                    }),
                    query: Some(pending.query.clone()),
                    workflow_execution_task_queue: run.started.task_queue.clone(),
                    ..Default::default()
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{
        command::{command::Attributes as Cmd, Command},
        enums::EventType,
        history::history_event::Attributes,
    };

    fn service() -> Service {
        Service {
            store: Arc::new(Store::new(
                &["default".to_owned()],
                crate::clock::Clock::Real,
            )),
        }
    }

    #[tokio::test]
    async fn unimplemented_methods_name_themselves() {
        let status =
            WorkflowService::list_batch_operations(&service(), Request::new(Default::default()))
                .await
                .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unimplemented);
        assert!(
            status.message().contains("ListBatchOperations"),
            "{status:?}"
        );
    }

    #[tokio::test]
    async fn unknown_namespaces_and_forged_tokens_are_refused() {
        let svc = service();
        let status = svc
            .describe_namespace(Request::new(DescribeNamespaceRequest {
                namespace: "nope".to_owned(),
                ..Default::default()
            }))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::NotFound);
        let status = svc
            .respond_activity_task_completed(Request::new(RespondActivityTaskCompletedRequest {
                task_token: b"forged".to_vec(),
                ..Default::default()
            }))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::NotFound);
    }

    /// Starts workflow `id` of type `W` on queue `q`; returns its run id.
    async fn start(svc: &Service, id: &str) -> String {
        svc.start(StartWorkflowExecutionRequest {
            namespace: "default".to_owned(),
            workflow_id: id.to_owned(),
            workflow_type: Some(proto::common::WorkflowType {
                name: "W".to_owned(),
            }),
            task_queue: Some(proto::taskqueue::TaskQueue {
                name: "q".to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .0
    }

    #[tokio::test]
    async fn history_pages_follow_the_token() {
        let svc = service();
        let run_id = start(&svc, "paged").await;
        let read = |token: Vec<u8>| GetWorkflowExecutionHistoryRequest {
            namespace: "default".to_owned(),
            execution: Some(WorkflowExecution {
                workflow_id: "paged".to_owned(),
                run_id: run_id.clone(),
            }),
            maximum_page_size: 1,
            next_page_token: token,
            ..Default::default()
        };
        let first = svc
            .get_workflow_execution_history(Request::new(read(Vec::new())))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(first.history.unwrap().events[0].event_id, 1);
        let second = svc
            .get_workflow_execution_history(Request::new(read(first.next_page_token)))
            .await
            .unwrap()
            .into_inner();
        let events = second.history.unwrap().events;
        assert_eq!(events[0].event_id, 2);
        assert_eq!(events[0].event_type(), EventType::WorkflowTaskScheduled);
        assert!(second.next_page_token.is_empty());
    }

    /// A poll of `queue` (sticky or not) that waits at most `wait`.
    fn poll(queue: &str, sticky: bool, wait: Duration) -> Request<PollWorkflowTaskQueueRequest> {
        let mut request = Request::new(PollWorkflowTaskQueueRequest {
            namespace: "default".to_owned(),
            task_queue: Some(proto::taskqueue::TaskQueue {
                name: queue.to_owned(),
                kind: if sticky {
                    TaskQueueKind::Sticky as i32
                } else {
                    TaskQueueKind::Normal as i32
                },
                normal_name: if sticky {
                    "q".to_owned()
                } else {
                    String::new()
                },
            }),
            identity: "test-worker".to_owned(),
            ..Default::default()
        });
        // The engine answers a margin of 1 s before the client's deadline.
        request.set_timeout(wait + DEADLINE_MARGIN);
        request
    }

    /// Completes a workflow task with no commands, asking for stickiness on `sticky`.
    fn complete_sticky(
        token: Vec<u8>,
        sticky: &str,
        schedule_to_start: Duration,
    ) -> RespondWorkflowTaskCompletedRequest {
        RespondWorkflowTaskCompletedRequest {
            namespace: "default".to_owned(),
            task_token: token,
            sticky_attributes: Some(proto::taskqueue::StickyExecutionAttributes {
                worker_task_queue: Some(proto::taskqueue::TaskQueue {
                    name: sticky.to_owned(),
                    kind: TaskQueueKind::Sticky as i32,
                    normal_name: "q".to_owned(),
                }),
                schedule_to_start_timeout: Some(proto::proto_duration(schedule_to_start)),
            }),
            ..Default::default()
        }
    }

    async fn signal_workflow(svc: &Service, id: &str) {
        svc.signal_workflow_execution(Request::new(SignalWorkflowExecutionRequest {
            namespace: "default".to_owned(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: id.to_owned(),
                run_id: String::new(),
            }),
            signal_name: "poke".to_owned(),
            ..Default::default()
        }))
        .await
        .unwrap();
    }

    async fn take(
        svc: &Service,
        queue: &str,
        sticky: bool,
        wait: Duration,
    ) -> PollWorkflowTaskQueueResponse {
        svc.poll_workflow_task_queue(poll(queue, sticky, wait))
            .await
            .unwrap()
            .into_inner()
    }

    async fn complete(svc: &Service, token: Vec<u8>, sticky: &str, schedule_to_start: Duration) {
        svc.respond_workflow_task_completed(Request::new(complete_sticky(
            token,
            sticky,
            schedule_to_start,
        )))
        .await
        .unwrap();
    }

    async fn shut_down(svc: &Service, sticky: &str) {
        svc.shutdown_worker(Request::new(ShutdownWorkerRequest {
            namespace: "default".to_owned(),
            sticky_task_queue: sticky.to_owned(),
            ..Default::default()
        }))
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn activities_asked_for_eagerly_come_back_with_the_completion() {
        let svc = service();
        start(&svc, "eager").await;
        let task = take(&svc, "q", false, Duration::from_secs(5)).await;
        let schedule = |id: &str, queue: &str, eager: bool| Command {
            command_type: proto::enums::CommandType::ScheduleActivityTask as i32,
            attributes: Some(Cmd::ScheduleActivityTaskCommandAttributes(
                proto::command::ScheduleActivityTaskCommandAttributes {
                    activity_id: id.to_owned(),
                    activity_type: Some(proto::common::ActivityType {
                        name: "a".to_owned(),
                    }),
                    task_queue: Some(proto::taskqueue::TaskQueue {
                        name: queue.to_owned(),
                        ..Default::default()
                    }),
                    start_to_close_timeout: Some(proto::proto_duration(Duration::from_secs(9))),
                    request_eager_execution: eager,
                    ..Default::default()
                },
            )),
            ..Default::default()
        };
        let answer = svc
            .respond_workflow_task_completed(Request::new(RespondWorkflowTaskCompletedRequest {
                namespace: "default".to_owned(),
                task_token: task.task_token,
                identity: "eager-worker".to_owned(),
                commands: vec![
                    schedule("1", "q", true),
                    schedule("2", "q", false),
                    // Only the workflow's own queue runs eagerly: this one is queued.
                    schedule("3", "other", true),
                ],
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        let eager: Vec<&str> = answer
            .activity_tasks
            .iter()
            .map(|t| t.activity_id.as_str())
            .collect();
        assert_eq!(eager, ["1"]);
        let poll_activity = |queue: &str| {
            let mut request = Request::new(PollActivityTaskQueueRequest {
                namespace: "default".to_owned(),
                task_queue: Some(proto::taskqueue::TaskQueue {
                    name: queue.to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            });
            request.set_timeout(Duration::from_millis(100) + DEADLINE_MARGIN);
            svc.poll_activity_task_queue(request)
        };
        let queued = poll_activity("q").await.unwrap().into_inner();
        assert_eq!(queued.activity_id, "2");
        assert_eq!(
            poll_activity("q").await.unwrap().into_inner().activity_id,
            ""
        );
        assert_eq!(
            poll_activity("other")
                .await
                .unwrap()
                .into_inner()
                .activity_id,
            "3"
        );
        // The eager task is started: its token completes it.
        svc.respond_activity_task_completed(Request::new(RespondActivityTaskCompletedRequest {
            task_token: answer.activity_tasks[0].task_token.clone(),
            identity: "eager-worker".to_owned(),
            ..Default::default()
        }))
        .await
        .unwrap();
        let history = svc
            .get_workflow_execution_history(Request::new(GetWorkflowExecutionHistoryRequest {
                namespace: "default".to_owned(),
                execution: Some(WorkflowExecution {
                    workflow_id: "eager".to_owned(),
                    run_id: String::new(),
                }),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        let started = history
            .history
            .unwrap()
            .events
            .into_iter()
            .find_map(|e| match e.attributes {
                Some(Attributes::ActivityTaskStartedEventAttributes(a)) => Some(a),
                _ => None,
            })
            .expect("the eager activity's started event");
        assert_eq!(started.identity, "eager-worker");
    }

    #[tokio::test]
    async fn sticky_tasks_carry_new_events_and_fall_back_to_the_normal_queue() {
        let svc = service();
        let timers = tokio::spawn(crate::timers::service(svc.store.clone()));
        start(&svc, "sticky").await;
        let long = Duration::from_secs(5);
        // 1-3: started, task scheduled and started on the normal queue, whole history.
        let first = take(&svc, "q", false, long).await;
        assert_eq!(first.history.unwrap().events.len(), 3);
        complete(&svc, first.task_token, "w1", Duration::from_secs(60)).await;
        // 4 completed; 5 signaled, 6-7 the next task: to the sticky poll, with events 4-7.
        let (second, ()) = tokio::join!(
            svc.poll_workflow_task_queue(poll("w1", true, long)),
            async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                signal_workflow(&svc, "sticky").await;
            }
        );
        let second = second.unwrap().into_inner();
        assert_eq!(second.previous_started_event_id, 3);
        let ids: Vec<i64> = second
            .history
            .unwrap()
            .events
            .iter()
            .map(|e| e.event_id)
            .collect();
        assert_eq!(ids, [4, 5, 6, 7]);
        complete(&svc, second.task_token, "w1", Duration::from_millis(300)).await;
        // The sticky worker polled a moment ago but does not now: the task waits there
        // until its schedule-to-start timeout, then goes to the normal queue with the
        // whole history.
        signal_workflow(&svc, "sticky").await;
        let nothing = take(&svc, "q", false, Duration::from_millis(100)).await;
        assert!(
            nothing.task_token.is_empty(),
            "the normal queue gave away a sticky task"
        );
        let third = take(&svc, "q", false, long).await;
        let events = third.history.unwrap().events;
        assert_eq!(events[0].event_id, 1);
        let timed_out = &events[events.len() - 3];
        assert_eq!(timed_out.event_type(), EventType::WorkflowTaskTimedOut);
        let Some(Attributes::WorkflowTaskTimedOutEventAttributes(a)) = &timed_out.attributes else {
            panic!("{timed_out:?}");
        };
        assert_eq!(
            a.timeout_type,
            proto::enums::TimeoutType::ScheduleToStart as i32
        );
        assert_eq!(third.attempt, 1);
        // Sticky on w2, whose worker polls, then shuts down: the task waiting there moves
        // at once, and a sticky poll of a shut-down queue is answered empty.
        complete(&svc, third.task_token, "w2", Duration::from_secs(60)).await;
        let empty = take(&svc, "w2", true, Duration::from_millis(50)).await;
        assert!(empty.task_token.is_empty());
        signal_workflow(&svc, "sticky").await;
        shut_down(&svc, "w2").await;
        let started = Instant::now();
        let after = take(&svc, "w2", true, long).await;
        assert!(after.task_token.is_empty());
        let fourth = take(&svc, "q", false, long).await;
        assert!(!fourth.task_token.is_empty());
        assert!(started.elapsed() < Duration::from_secs(1));
        // A sticky worker that never polled gets nothing: the next task is normal.
        complete(&svc, fourth.task_token, "w3", Duration::from_secs(60)).await;
        signal_workflow(&svc, "sticky").await;
        let fifth = take(&svc, "q", false, Duration::from_millis(500)).await;
        assert!(!fifth.task_token.is_empty());
        timers.abort();
    }

    async fn history(svc: &Service, id: &str) -> Vec<proto::history::HistoryEvent> {
        svc.get_workflow_execution_history(Request::new(GetWorkflowExecutionHistoryRequest {
            namespace: "default".to_owned(),
            execution: Some(WorkflowExecution {
                workflow_id: id.to_owned(),
                run_id: String::new(),
            }),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner()
        .history
        .unwrap()
        .events
    }

    async fn fail(svc: &Service, token: Vec<u8>) {
        svc.respond_workflow_task_failed(Request::new(RespondWorkflowTaskFailedRequest {
            namespace: "default".to_owned(),
            task_token: token,
            ..Default::default()
        }))
        .await
        .unwrap();
    }

    fn types(events: &[proto::history::HistoryEvent]) -> Vec<EventType> {
        events.iter().map(|e| e.event_type()).collect()
    }

    #[tokio::test]
    async fn only_the_first_failure_of_a_workflow_task_is_written() {
        use EventType::*;
        let svc = service();
        start(&svc, "transient").await;
        let long = Duration::from_secs(5);
        let first = take(&svc, "q", false, long).await;
        fail(&svc, first.task_token).await;
        let written = [
            WorkflowExecutionStarted,
            WorkflowTaskScheduled,
            WorkflowTaskStarted,
            WorkflowTaskFailed,
        ];
        assert_eq!(types(&history(&svc, "transient").await), written);
        // Attempt 2 carries its scheduled and started events, which history does not.
        let second = take(&svc, "q", false, long).await;
        assert_eq!(second.attempt, 2);
        assert_eq!(second.started_event_id, 6);
        let events = second.history.unwrap().events;
        assert_eq!(
            types(&events),
            [&written[..], &[WorkflowTaskScheduled, WorkflowTaskStarted]].concat()
        );
        fail(&svc, second.task_token).await;
        assert_eq!(types(&history(&svc, "transient").await), written);
        // A signal while attempt 3 waits is written; the attempt's events follow it.
        signal_workflow(&svc, "transient").await;
        let third = take(&svc, "q", false, long).await;
        assert_eq!(third.attempt, 3);
        assert_eq!(third.started_event_id, 7);
        svc.respond_workflow_task_completed(Request::new(RespondWorkflowTaskCompletedRequest {
            namespace: "default".to_owned(),
            task_token: third.task_token,
            ..Default::default()
        }))
        .await
        .unwrap();
        let events = history(&svc, "transient").await;
        assert_eq!(
            types(&events),
            [
                &written[..],
                &[
                    WorkflowExecutionSignaled,
                    WorkflowTaskScheduled,
                    WorkflowTaskStarted,
                    WorkflowTaskCompleted
                ]
            ]
            .concat()
        );
        let ids: Vec<i64> = events.iter().map(|e| e.event_id).collect();
        assert_eq!(ids, (1..=8).collect::<Vec<_>>());
        let Some(Attributes::WorkflowTaskScheduledEventAttributes(a)) = &events[5].attributes
        else {
            panic!("{:?}", events[5]);
        };
        assert_eq!(a.attempt, 3);
    }

    #[tokio::test]
    async fn reverse_history_pages_from_the_last_event() {
        let svc = service();
        start(&svc, "reverse").await;
        let read = |token: Vec<u8>| {
            Request::new(GetWorkflowExecutionHistoryReverseRequest {
                namespace: "default".to_owned(),
                execution: Some(WorkflowExecution {
                    workflow_id: "reverse".to_owned(),
                    run_id: String::new(),
                }),
                maximum_page_size: 1,
                next_page_token: token,
            })
        };
        let first = svc
            .get_workflow_execution_history_reverse(read(Vec::new()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(first.history.unwrap().events[0].event_id, 2);
        let second = svc
            .get_workflow_execution_history_reverse(read(first.next_page_token))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(second.history.unwrap().events[0].event_id, 1);
        assert!(second.next_page_token.is_empty());
    }

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(parse_grpc_timeout("70S"), Some(Duration::from_secs(70)));
        assert_eq!(
            parse_grpc_timeout("69999m"),
            Some(Duration::from_millis(69999))
        );
        assert_eq!(parse_grpc_timeout("x"), None);
    }
}
