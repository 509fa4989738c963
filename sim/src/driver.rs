//! Runs a plan against a real engine on its own database file: each step through the
//! engine's gRPC API (or, for faults and time, through its simulation hooks), one at a
//! time, recording what was acknowledged for the checks.

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
    time::{Duration, SystemTime},
};

use capstan_engine::{Engine, EngineOptions};
use tokio::task::JoinHandle;
use tonic::{transport::Channel, Code, Request, Status};

use crate::{
    checks::{Observed, UpdateSeen, Violation},
    plan::{Behaviour, Plan, Script, Step},
    proto::{self, service, Event, HistoryEvent, WorkflowServiceClient},
    real_worker::{self, RealWorker},
    scripts,
};

/// How long any call may take before the engine counts as hung.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// Where the simulated worker's tasks go.
pub const TASK_QUEUE: &str = "sim";
/// The engine's clock at the start of every seed: the same instant, so that a seed's
/// times are the same in every replay.
pub fn start_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600) // 2026-01-01T00:00:00Z
}

/// What one seed's run did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub steps: u64,
    pub faults: u64,
    pub crashes: u64,
    pub calls: u64,
    pub checks: u64,
}

/// An answer kept back by a `Late` worker.
enum LateAnswer {
    Workflow(Box<service::RespondWorkflowTaskCompletedRequest>),
    Activity(Box<service::RespondActivityTaskCompletedRequest>),
}

/// A call running in the background: an update or a query.
struct Background {
    workflow: usize,
    kind: BackgroundKind,
    handle: JoinHandle<Result<BackgroundAnswer, Status>>,
}

#[derive(Debug, Clone, Copy)]
enum BackgroundKind {
    Update(u8),
    Query,
}

enum BackgroundAnswer {
    Update(Box<service::UpdateWorkflowExecutionResponse>),
    Query(service::QueryWorkflowResponse),
}

/// A plan being run.
pub struct Driver {
    pub plan: Plan,
    dir: PathBuf,
    engine: Option<Engine>,
    port: u16,
    pub(crate) client: WorkflowServiceClient<Channel>,
    pub observed: Observed,
    late: Vec<LateAnswer>,
    background: Vec<Background>,
    /// Each run's history as the worker last saw it (sticky tasks bring only what is new).
    cache: HashMap<String, Vec<HistoryEvent>>,
    sticky: u32,
    /// The real Capstan worker, when the plan has errands.
    pub real_worker: Option<RealWorker>,
    /// The engine's time at each reopen after a crash.
    pub reopened: Vec<SystemTime>,
    /// The workflow ids updates were sent to.
    updated: std::collections::BTreeSet<String>,
    /// While writes fail: every run's history as read before they began to.
    durable: Option<BTreeMap<(String, String), Vec<HistoryEvent>>>,
    pub counts: Counts,
    /// The trace so far: each step and what came of it.
    pub trace: Vec<String>,
}

impl Driver {
    /// An engine on a fresh database file under `dir`, and a client of it.
    pub async fn start(plan: Plan, dir: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let engine = open(&dir, 0, start_time()).await?;
        let port = engine.socket_addr().port();
        let client = connect(port).await?;
        let observed = Observed::new(&plan);
        let real_worker = if plan
            .workflows
            .iter()
            .any(|s| matches!(s, Script::Errand { .. }))
        {
            Some(RealWorker::start(&engine.address()).await?)
        } else {
            None
        };
        Ok(Self {
            plan,
            dir,
            engine: Some(engine),
            port,
            client,
            observed,
            late: Vec::new(),
            background: Vec::new(),
            cache: HashMap::new(),
            sticky: 0,
            durable: None,
            reopened: Vec::new(),
            updated: Default::default(),
            real_worker,
            counts: Counts::default(),
            trace: Vec::new(),
        })
    }

    pub fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("the engine runs between steps")
    }

    /// The workflow id of workflow `w`.
    pub fn workflow_id(&self, w: usize) -> String {
        format!("sim-{}-w{w}", self.plan.seed)
    }

    /// Runs the plan's steps, then lets every workflow finish, stopping at the first
    /// violation.
    pub async fn run(&mut self) -> Result<(), Violation> {
        for (i, step) in self.plan.steps.clone().into_iter().enumerate() {
            self.counts.steps += 1;
            if step.is_fault() {
                self.counts.faults += 1;
            }
            let began = std::time::Instant::now();
            let done = self.step(&step).await;
            let took = began.elapsed();
            let slow = if took > Duration::from_millis(200) {
                format!(" ({took:.1?})")
            } else {
                String::new()
            };
            self.trace.push(format!(
                "{i:>4} {step}{slow}{}",
                done.as_ref()
                    .err()
                    .map_or(String::new(), |v| format!("  <- {v}"))
            ));
            done?;
        }
        self.drain().await
    }

    async fn step(&mut self, step: &Step) -> Result<(), Violation> {
        if let Some(w) = step.workflow() {
            if matches!(self.plan.workflows[w], Script::Schedule { .. }) {
                return self.schedule_step(step, w).await;
            }
        }
        match *step {
            Step::Start(w) => self.start_workflow(w).await,
            Step::SignalWithStart(w, k) => self.signal_with_start(w, k).await,
            Step::Signal(w, k) => self.signal(w, k).await,
            Step::Update(w, k) => self.update(w, k).await,
            Step::Query(w) => self.query(w).await,
            Step::Cancel(w) => self.cancel(w).await,
            Step::Terminate(w) => self.terminate(w).await,
            Step::WorkflowTask(b) => self.workflow_task(b).await.map(drop),
            Step::ActivityTask(b) => self.activity_task(b).await.map(drop),
            Step::Late => self.late_answers().await,
            Step::Advance(s) => self.advance(Duration::from_secs(s)).map(drop),
            Step::Crash => self.crash().await,
            Step::FailWrites(cause) => self.fail_writes(cause).await,
            Step::DropConnections => self.drop_connections().await,
            Step::ClockBack(s) => {
                self.engine().step_clock_back(Duration::from_secs(s));
                Ok(())
            }
        }
    }

    /// A step aimed at a schedule: a start creates it, a cancel pauses it, a terminate
    /// deletes it, anything else describes it.
    async fn schedule_step(&mut self, step: &Step, w: usize) -> Result<(), Violation> {
        match *step {
            Step::Start(_) | Step::SignalWithStart(..) => self.create_schedule(w).await,
            Step::Cancel(_) => self.pause_schedule(w).await,
            Step::Terminate(_) => self.delete_schedule(w, false).await,
            _ => self.describe_schedule(w).await,
        }
    }

    /// Sends a call and waits for its answer within [`ANSWER_WITHIN`]; a hang, or an
    /// answer that says the engine failed (`INTERNAL`, `UNKNOWN`, `DATA_LOSS`), is a
    /// violation. Other refusals are the caller's to judge.
    pub(crate) async fn call<T>(
        &mut self,
        what: &str,
        call: impl std::future::Future<Output = Result<tonic::Response<T>, Status>>,
    ) -> Result<Result<T, Status>, Violation> {
        self.counts.calls += 1;
        match tokio::time::timeout(ANSWER_WITHIN, call).await {
            Err(_) => Err(Violation::new(format!(
                "the engine did not answer {what} within {ANSWER_WITHIN:?}"
            ))),
            Ok(Ok(answer)) => Ok(Ok(answer.into_inner())),
            Ok(Err(status)) => {
                check_status(what, &status)?;
                Ok(Err(status))
            }
        }
    }

    /// [`Driver::call`], taking a refusal with one of the `allowed` codes as an answer
    /// (`None`).
    pub(crate) async fn send<T>(
        &mut self,
        what: &str,
        call: impl std::future::Future<Output = Result<tonic::Response<T>, Status>>,
        allowed: &[Code],
    ) -> Result<Option<T>, Violation> {
        match self.call(what, call).await? {
            Ok(answer) => Ok(Some(answer)),
            Err(status) => expect_codes(what, &status, allowed).map(|()| None),
        }
    }

    /// What workflow `w` is started with: its script, or an errand's input.
    fn start_input(&self, w: usize) -> Option<proto::Payloads> {
        match self.plan.workflows[w] {
            Script::Errand {
                fail_first,
                sleep_seconds,
            } => proto::payloads(&real_worker::ErrandInput {
                w: w as u32,
                fail_first: u32::from(fail_first),
                sleep_seconds: u64::from(sleep_seconds),
            }),
            script => proto::payloads(&script),
        }
    }

    async fn start_workflow(&mut self, w: usize) -> Result<(), Violation> {
        let (task_queue, workflow_type) = self.plan.workflows[w].task_queue_and_type();
        let request = service::StartWorkflowExecutionRequest {
            namespace: proto::NAMESPACE.to_owned(),
            workflow_id: self.workflow_id(w),
            workflow_type: Some(proto::WorkflowType {
                name: workflow_type.to_owned(),
            }),
            task_queue: proto::task_queue(task_queue),
            input: self.start_input(w),
            identity: "sim-client".to_owned(),
            request_id: format!("start-{w}"),
            ..Default::default()
        };
        let mut client = self.client.clone();
        let answer = self
            .call(
                "StartWorkflowExecution",
                client.start_workflow_execution(request),
            )
            .await?;
        match answer {
            Ok(started) => self.observed.started(w, &started.run_id),
            Err(status) if status.code() == Code::AlreadyExists => {
                // Started another way (a signal-with-start whose answer was lost).
                let run_id = self.current_run(w).await?;
                self.observed.started(w, &run_id)
            }
            Err(status) => expect_codes("StartWorkflowExecution", &status, &[Code::Unavailable]),
        }
    }

    /// Every run of workflow `w` the engine lists, newest first.
    pub async fn listed_runs(&mut self, w: usize) -> Result<Vec<String>, Violation> {
        let query = format!("WorkflowId = '{}'", self.workflow_id(w));
        Ok(self
            .listed(&query)
            .await?
            .into_iter()
            .map(|(_, run_id)| run_id)
            .collect())
    }

    /// Every run matching `query` the engine lists, newest first: (workflow id, run id).
    pub(crate) async fn listed(&mut self, query: &str) -> Result<Vec<(String, String)>, Violation> {
        let mut runs = Vec::new();
        let mut token = Vec::new();
        loop {
            let request = service::ListWorkflowExecutionsRequest {
                namespace: proto::NAMESPACE.to_owned(),
                query: query.to_owned(),
                next_page_token: token,
                page_size: 100,
            };
            let mut client = self.client.clone();
            let page = self
                .call(
                    "ListWorkflowExecutions",
                    client.list_workflow_executions(request),
                )
                .await?
                .map_err(|status| {
                    Violation::new(format!(
                        "runs matching {query} cannot be listed: {status:?}"
                    ))
                })?;
            runs.extend(
                page.executions
                    .into_iter()
                    .filter_map(|e| e.execution.map(|e| (e.workflow_id, e.run_id))),
            );
            if page.next_page_token.is_empty() {
                return Ok(runs);
            }
            token = page.next_page_token;
        }
    }

    /// The run id of workflow `w`'s current run.
    async fn current_run(&mut self, w: usize) -> Result<String, Violation> {
        Ok(self.describe_current(w).await?.0)
    }

    /// The current run of `w`, and whether it is open.
    async fn describe_current(&mut self, w: usize) -> Result<(String, bool), Violation> {
        let request = service::DescribeWorkflowExecutionRequest {
            namespace: proto::NAMESPACE.to_owned(),
            execution: proto::execution(&self.workflow_id(w), ""),
        };
        let mut client = self.client.clone();
        let described = self
            .call(
                "DescribeWorkflowExecution",
                client.describe_workflow_execution(request),
            )
            .await?
            .map_err(|status| {
                Violation::new(format!(
                    "w{w} already exists, yet cannot be described: {status:?}"
                ))
            })?;
        let info = described.workflow_execution_info.unwrap_or_default();
        let open = info.status == proto::WorkflowExecutionStatus::Running as i32;
        Ok((info.execution.map(|e| e.run_id).unwrap_or_default(), open))
    }

    async fn signal_with_start(&mut self, w: usize, k: u8) -> Result<(), Violation> {
        let (task_queue, workflow_type) = self.plan.workflows[w].task_queue_and_type();
        let request = service::SignalWithStartWorkflowExecutionRequest {
            namespace: proto::NAMESPACE.to_owned(),
            workflow_id: self.workflow_id(w),
            workflow_type: Some(proto::WorkflowType {
                name: workflow_type.to_owned(),
            }),
            task_queue: proto::task_queue(task_queue),
            input: self.start_input(w),
            identity: "sim-client".to_owned(),
            request_id: format!("sws-{w}-{k}"),
            signal_name: "sig".to_owned(),
            signal_input: proto::payloads(&format!("w{k}")),
            ..Default::default()
        };
        let mut client = self.client.clone();
        let answer = self
            .call(
                "SignalWithStartWorkflowExecution",
                client.signal_with_start_workflow_execution(request),
            )
            .await?;
        match answer {
            Ok(started) => {
                self.observed.started(w, &started.run_id)?;
                self.observed.signal(w, &format!("w{k}"));
                Ok(())
            }
            Err(status) => {
                self.observed.maybe_signal(w, &format!("w{k}"));
                expect_codes(
                    "SignalWithStartWorkflowExecution",
                    &status,
                    &[Code::Unavailable],
                )
            }
        }
    }

    async fn signal(&mut self, w: usize, k: u8) -> Result<(), Violation> {
        let request = service::SignalWorkflowExecutionRequest {
            namespace: proto::NAMESPACE.to_owned(),
            workflow_execution: proto::execution(&self.workflow_id(w), ""),
            signal_name: "sig".to_owned(),
            input: proto::payloads(&format!("s{k}")),
            identity: "sim-client".to_owned(),
            request_id: format!("sig-{w}-{k}"),
            ..Default::default()
        };
        let mut client = self.client.clone();
        match self
            .call(
                "SignalWorkflowExecution",
                client.signal_workflow_execution(request),
            )
            .await?
        {
            Ok(_) => {
                self.observed.signal(w, &format!("s{k}"));
                Ok(())
            }
            Err(status) => {
                self.observed.maybe_signal(w, &format!("s{k}"));
                expect_codes(
                    "SignalWorkflowExecution",
                    &status,
                    &[Code::NotFound, Code::Unavailable],
                )
            }
        }
    }

    async fn update(&mut self, w: usize, k: u8) -> Result<(), Violation> {
        self.updated.insert(self.workflow_id(w));
        let request = service::UpdateWorkflowExecutionRequest {
            namespace: proto::NAMESPACE.to_owned(),
            workflow_execution: proto::execution(&self.workflow_id(w), ""),
            wait_policy: Some(proto::update::WaitPolicy {
                lifecycle_stage: proto::UpdateWorkflowExecutionLifecycleStage::Completed as i32,
            }),
            request: Some(proto::update::Request {
                meta: Some(proto::update::Meta {
                    update_id: format!("u{k}"),
                    identity: "sim-client".to_owned(),
                }),
                input: Some(proto::update::Input {
                    name: "upd".to_owned(),
                    args: proto::payloads(&u64::from(k)),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut client = self.client.clone();
        self.counts.calls += 1;
        let handle = tokio::spawn(async move {
            let mut request = Request::new(request);
            request.set_timeout(ANSWER_WITHIN);
            client
                .update_workflow_execution(request)
                .await
                .map(|r| BackgroundAnswer::Update(Box::new(r.into_inner())))
        });
        self.background.push(Background {
            workflow: w,
            kind: BackgroundKind::Update(k),
            handle,
        });
        settle().await;
        self.collect_background(false).await
    }

    async fn query(&mut self, w: usize) -> Result<(), Violation> {
        let request = service::QueryWorkflowRequest {
            namespace: proto::NAMESPACE.to_owned(),
            execution: proto::execution(&self.workflow_id(w), ""),
            query: Some(proto::WorkflowQuery {
                query_type: "signals".to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let mut client = self.client.clone();
        self.counts.calls += 1;
        let handle = tokio::spawn(async move {
            let mut request = Request::new(request);
            request.set_timeout(ANSWER_WITHIN);
            client
                .query_workflow(request)
                .await
                .map(|r| BackgroundAnswer::Query(r.into_inner()))
        });
        self.background.push(Background {
            workflow: w,
            kind: BackgroundKind::Query,
            handle,
        });
        settle().await;
        self.collect_background(false).await
    }

    /// Looks at the background calls that finished (all of them, waiting, with `wait`).
    async fn collect_background(&mut self, wait: bool) -> Result<(), Violation> {
        let mut still = Vec::new();
        for call in std::mem::take(&mut self.background) {
            if !wait && !call.handle.is_finished() {
                still.push(call);
                continue;
            }
            let answer = match call.handle.await {
                Ok(answer) => answer,
                Err(_) => continue, // aborted: its connection was dropped
            };
            let what = match call.kind {
                BackgroundKind::Update(_) => "UpdateWorkflowExecution",
                BackgroundKind::Query => "QueryWorkflow",
            };
            match (call.kind, answer) {
                // The engine's own deadline answer ("no worker answered the query in time")
                // is an answer; the client's timeout means the engine said nothing.
                (_, Err(status))
                    if status.code() == Code::DeadlineExceeded
                        && status.message().contains("Timeout expired") =>
                {
                    return Err(Violation::new(format!(
                        "the engine did not answer {what} within {ANSWER_WITHIN:?}"
                    )));
                }
                (_, Err(status)) => {
                    check_status(what, &status)?;
                    expect_codes(
                        what,
                        &status,
                        &[
                            Code::NotFound,
                            Code::FailedPrecondition,
                            Code::Unavailable,
                            Code::InvalidArgument,
                            Code::ResourceExhausted,
                            Code::Aborted,
                            Code::DeadlineExceeded,
                        ],
                    )?;
                }
                (BackgroundKind::Update(k), Ok(BackgroundAnswer::Update(answer))) => {
                    let seen = match answer.outcome.and_then(|o| o.value) {
                        Some(proto::update::outcome::Value::Success(payloads)) => {
                            UpdateSeen::Completed(
                                proto::decode(Some(&payloads)).unwrap_or(u64::MAX),
                            )
                        }
                        Some(proto::update::outcome::Value::Failure(_)) => UpdateSeen::Rejected,
                        None => continue,
                    };
                    let run_id = answer
                        .update_ref
                        .and_then(|r| r.workflow_execution)
                        .map(|e| e.run_id)
                        .unwrap_or_default();
                    self.observed.update(call.workflow, k, &run_id, seen)?;
                }
                (BackgroundKind::Query, Ok(BackgroundAnswer::Query(answer))) => {
                    let text: Option<String> = proto::decode(answer.query_result.as_ref());
                    if !text.as_deref().is_some_and(|t| t.starts_with("signals:")) {
                        return Err(Violation::new(format!(
                            "a query of w{} was answered {text:?}, not what its worker said",
                            call.workflow
                        )));
                    }
                }
                _ => unreachable!("each background call answers its own kind"),
            }
        }
        self.background.extend(still);
        Ok(())
    }

    async fn cancel(&mut self, w: usize) -> Result<(), Violation> {
        let request = service::RequestCancelWorkflowExecutionRequest {
            namespace: proto::NAMESPACE.to_owned(),
            workflow_execution: proto::execution(&self.workflow_id(w), ""),
            identity: "sim-client".to_owned(),
            request_id: format!("cancel-{w}"),
            ..Default::default()
        };
        let mut client = self.client.clone();
        match self
            .call(
                "RequestCancelWorkflowExecution",
                client.request_cancel_workflow_execution(request),
            )
            .await?
        {
            Ok(_) => {
                // A run that had closed takes the request as done, as on Temporal; one
                // open now was open then, and must record it.
                let (run_id, open) = self.describe_current(w).await?;
                self.observed.started(w, &run_id)?;
                if open {
                    self.observed.workflows[w].canceled.insert(run_id);
                }
                Ok(())
            }
            Err(status) => expect_codes(
                "RequestCancelWorkflowExecution",
                &status,
                &[Code::NotFound, Code::Unavailable],
            ),
        }
    }

    async fn terminate(&mut self, w: usize) -> Result<(), Violation> {
        let request = service::TerminateWorkflowExecutionRequest {
            namespace: proto::NAMESPACE.to_owned(),
            workflow_execution: proto::execution(&self.workflow_id(w), ""),
            reason: "the simulator says so".to_owned(),
            identity: "sim-client".to_owned(),
            ..Default::default()
        };
        let mut client = self.client.clone();
        match self
            .call(
                "TerminateWorkflowExecution",
                client.terminate_workflow_execution(request),
            )
            .await?
        {
            Ok(_) => {
                let run_id = self.current_run(w).await?;
                self.observed.started(w, &run_id)?;
                self.observed.workflows[w].terminated.insert(run_id);
                Ok(())
            }
            Err(status) => {
                self.observed.workflows[w].maybe_terminated = true;
                expect_codes(
                    "TerminateWorkflowExecution",
                    &status,
                    &[Code::NotFound, Code::Unavailable],
                )
            }
        }
    }

    /// Polls once without waiting (a `grpc-timeout` within the engine's margin).
    fn poll_request<T>(message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.set_timeout(Duration::from_millis(1000));
        request
    }

    /// Takes a workflow task if there is one and handles it as `behaviour` says; answers
    /// whether there was one.
    pub async fn workflow_task(&mut self, behaviour: Behaviour) -> Result<bool, Violation> {
        let poll = service::PollWorkflowTaskQueueRequest {
            namespace: proto::NAMESPACE.to_owned(),
            task_queue: proto::task_queue(TASK_QUEUE),
            identity: "sim-worker".to_owned(),
            ..Default::default()
        };
        let mut client = self.client.clone();
        let polled = self
            .send(
                "PollWorkflowTaskQueue",
                client.poll_workflow_task_queue(Self::poll_request(poll)),
                &[Code::Unavailable],
            )
            .await?;
        let Some(task) = polled.filter(|t| !t.task_token.is_empty()) else {
            return Ok(false);
        };
        let execution = task.workflow_execution.clone().unwrap_or_default();
        let events = self
            .history_of(
                &execution,
                task.history.clone().map(|h| h.events).unwrap_or_default(),
            )
            .await?;
        let script = script_of(&events);
        if let Some(query) = &task.query {
            // A query on its own: answered, whatever the behaviour.
            let _ = query;
            let answer = service::RespondQueryTaskCompletedRequest {
                namespace: proto::NAMESPACE.to_owned(),
                task_token: task.task_token.clone(),
                completed_type: proto::QueryResultType::Answered as i32,
                query_result: proto::payloads(&scripts::query_answer(&events)),
                ..Default::default()
            };
            let mut client = self.client.clone();
            self.send(
                "RespondQueryTaskCompleted",
                client.respond_query_task_completed(answer),
                &[Code::NotFound],
            )
            .await?;
            return Ok(true);
        }
        let Some(script) = script else {
            return Err(Violation::new(format!(
                "a workflow task of {} came without a readable start event",
                execution.workflow_id
            )));
        };
        if behaviour == Behaviour::Crash {
            self.cache.remove(&execution.run_id);
            return Ok(true);
        }
        if behaviour == Behaviour::Fail {
            let failed = service::RespondWorkflowTaskFailedRequest {
                namespace: proto::NAMESPACE.to_owned(),
                task_token: task.task_token.clone(),
                cause: 0,
                failure: Some(proto::failure(
                    "the simulated worker fails this task",
                    "SimTaskFailure",
                )),
                identity: "sim-worker".to_owned(),
                ..Default::default()
            };
            let mut client = self.client.clone();
            self.send(
                "RespondWorkflowTaskFailed",
                client.respond_workflow_task_failed(failed),
                &[Code::NotFound, Code::Unavailable],
            )
            .await?;
            self.cache.remove(&execution.run_id);
            return Ok(true);
        }
        let decision = scripts::decide(
            script,
            &events,
            &task.messages,
            &execution.workflow_id,
            TASK_QUEUE,
        );
        let query_results = task
            .queries
            .keys()
            .map(|id| {
                (
                    id.clone(),
                    proto::WorkflowQueryResult {
                        result_type: proto::QueryResultType::Answered as i32,
                        answer: proto::payloads(&scripts::query_answer(&events)),
                        ..Default::default()
                    },
                )
            })
            .collect();
        let sticky = (behaviour == Behaviour::Vanish).then(|| {
            self.sticky += 1;
            proto::StickyExecutionAttributes {
                worker_task_queue: Some(proto::TaskQueue {
                    name: format!("sim-sticky-{}", self.sticky),
                    kind: proto::TaskQueueKind::Sticky as i32,
                    normal_name: TASK_QUEUE.to_owned(),
                }),
                schedule_to_start_timeout: proto::seconds(5),
            }
        });
        let completion = service::RespondWorkflowTaskCompletedRequest {
            namespace: proto::NAMESPACE.to_owned(),
            task_token: task.task_token.clone(),
            commands: decision.commands,
            messages: decision.messages,
            identity: "sim-worker".to_owned(),
            sticky_attributes: sticky,
            query_results,
            ..Default::default()
        };
        if behaviour == Behaviour::Late {
            self.late.push(LateAnswer::Workflow(Box::new(completion)));
            return Ok(true);
        }
        let times = if behaviour == Behaviour::Twice { 2 } else { 1 };
        for n in 0..times {
            let mut client = self.client.clone();
            match self
                .call(
                    "RespondWorkflowTaskCompleted",
                    client.respond_workflow_task_completed(completion.clone()),
                )
                .await?
            {
                Ok(_) if n == 1 => {
                    return Err(Violation::new(format!(
                        "a workflow task of {} was completed twice with the same token",
                        execution.workflow_id
                    )))
                }
                Ok(_) => {}
                Err(status) => {
                    let allowed: &[Code] = if n == 0 {
                        &[Code::NotFound, Code::Unavailable, Code::InvalidArgument]
                    } else {
                        &[Code::NotFound, Code::Unavailable]
                    };
                    expect_codes("RespondWorkflowTaskCompleted", &status, allowed)?;
                    self.cache.remove(&execution.run_id);
                }
            }
        }
        Ok(true)
    }

    /// The run's whole history: `events` when the task brought it whole, else the cache
    /// with `events` after it (a sticky task), else read from the engine.
    async fn history_of(
        &mut self,
        execution: &proto::WorkflowExecution,
        events: Vec<HistoryEvent>,
    ) -> Result<Vec<HistoryEvent>, Violation> {
        let first = events.first().map_or(0, |e| e.event_id);
        let whole = if first == 1 {
            events
        } else {
            let cached = self.cache.remove(&execution.run_id).unwrap_or_default();
            if !cached.is_empty() && cached.last().map(|e| e.event_id + 1) == Some(first) {
                cached.into_iter().chain(events).collect()
            } else {
                self.read_history(&execution.workflow_id, &execution.run_id)
                    .await?
            }
        };
        self.cache.insert(execution.run_id.clone(), whole.clone());
        Ok(whole)
    }

    /// A run's history as the engine has it.
    pub async fn read_history(
        &mut self,
        workflow_id: &str,
        run_id: &str,
    ) -> Result<Vec<HistoryEvent>, Violation> {
        let mut events = Vec::new();
        let mut token = Vec::new();
        loop {
            let request = service::GetWorkflowExecutionHistoryRequest {
                namespace: proto::NAMESPACE.to_owned(),
                execution: proto::execution(workflow_id, run_id),
                next_page_token: token,
                ..Default::default()
            };
            let mut client = self.client.clone();
            let page = self
                .call(
                    "GetWorkflowExecutionHistory",
                    client.get_workflow_execution_history(request),
                )
                .await?
                .map_err(|status| {
                    Violation::new(format!(
                        "the history of {workflow_id} run {run_id} cannot be read: {status:?}"
                    ))
                })?;
            events.extend(page.history.map(|h| h.events).unwrap_or_default());
            if page.next_page_token.is_empty() {
                return Ok(events);
            }
            token = page.next_page_token;
        }
    }

    /// Takes an activity task if there is one and handles it as `behaviour` says;
    /// answers whether there was one.
    pub async fn activity_task(&mut self, behaviour: Behaviour) -> Result<bool, Violation> {
        let poll = service::PollActivityTaskQueueRequest {
            namespace: proto::NAMESPACE.to_owned(),
            task_queue: proto::task_queue(TASK_QUEUE),
            identity: "sim-worker".to_owned(),
            ..Default::default()
        };
        // While writes fail, a poll that took a task holds it until the disk takes the
        // dispatch (so the task is not lost to a client that gave up): the simulator's
        // short poll gives up first.
        let allowed: &[Code] = if self.durable.is_some() {
            &[Code::Unavailable, Code::Cancelled]
        } else {
            &[Code::Unavailable]
        };
        let mut client = self.client.clone();
        let polled = self
            .send(
                "PollActivityTaskQueue",
                client.poll_activity_task_queue(Self::poll_request(poll)),
                allowed,
            )
            .await?;
        let Some(task) = polled.filter(|t| !t.task_token.is_empty()) else {
            return Ok(false);
        };
        let Some(input) = proto::decode::<scripts::ActivityInput>(task.input.as_ref()) else {
            return Err(Violation::new(format!(
                "activity {} came without the input it was scheduled with",
                task.activity_id
            )));
        };
        if input.heartbeat || behaviour == Behaviour::Vanish {
            let heartbeat = service::RecordActivityTaskHeartbeatRequest {
                namespace: proto::NAMESPACE.to_owned(),
                task_token: task.task_token.clone(),
                identity: "sim-worker".to_owned(),
                ..Default::default()
            };
            let mut client = self.client.clone();
            self.send(
                "RecordActivityTaskHeartbeat",
                client.record_activity_task_heartbeat(heartbeat),
                &[Code::NotFound, Code::Unavailable],
            )
            .await?;
        }
        if matches!(behaviour, Behaviour::Crash | Behaviour::Vanish) {
            return Ok(true);
        }
        let result = if behaviour == Behaviour::Fail {
            Err("the simulated worker fails this attempt".to_owned())
        } else {
            scripts::activity_result(input, task.attempt)
        };
        let times = if behaviour == Behaviour::Twice { 2 } else { 1 };
        for n in 0..times {
            let mut client = self.client.clone();
            let answer = match &result {
                Ok(value) => {
                    let completed = service::RespondActivityTaskCompletedRequest {
                        namespace: proto::NAMESPACE.to_owned(),
                        task_token: task.task_token.clone(),
                        result: proto::payloads(value),
                        identity: "sim-worker".to_owned(),
                        ..Default::default()
                    };
                    if behaviour == Behaviour::Late {
                        self.late.push(LateAnswer::Activity(Box::new(completed)));
                        return Ok(true);
                    }
                    self.call(
                        "RespondActivityTaskCompleted",
                        client.respond_activity_task_completed(completed),
                    )
                    .await?
                    .map(drop)
                }
                Err(message) => {
                    let failed = service::RespondActivityTaskFailedRequest {
                        namespace: proto::NAMESPACE.to_owned(),
                        task_token: task.task_token.clone(),
                        failure: Some(proto::failure(message, "SimFailure")),
                        identity: "sim-worker".to_owned(),
                        ..Default::default()
                    };
                    self.call(
                        "RespondActivityTaskFailed",
                        client.respond_activity_task_failed(failed),
                    )
                    .await?
                    .map(drop)
                }
            };
            match answer {
                Ok(()) if n == 1 => {
                    return Err(Violation::new(format!(
                        "activity {} attempt {} was answered twice with the same token",
                        task.activity_id, task.attempt
                    )))
                }
                Ok(()) => {}
                Err(status) => expect_codes(
                    "RespondActivityTask*",
                    &status,
                    &[Code::NotFound, Code::Unavailable],
                )?,
            }
        }
        Ok(true)
    }

    async fn late_answers(&mut self) -> Result<(), Violation> {
        for answer in std::mem::take(&mut self.late) {
            let mut client = self.client.clone();
            let status = match answer {
                LateAnswer::Workflow(completion) => self
                    .call(
                        "RespondWorkflowTaskCompleted (late)",
                        client.respond_workflow_task_completed(*completion),
                    )
                    .await?
                    .err(),
                LateAnswer::Activity(completed) => self
                    .call(
                        "RespondActivityTaskCompleted (late)",
                        client.respond_activity_task_completed(*completed),
                    )
                    .await?
                    .err(),
            };
            if let Some(status) = status {
                expect_codes(
                    "a late answer",
                    &status,
                    &[Code::NotFound, Code::Unavailable, Code::InvalidArgument],
                )?;
            }
        }
        self.cache.clear();
        Ok(())
    }

    /// Passes `by` on the engine's clock, firing what falls due at its instant.
    pub fn advance(&mut self, by: Duration) -> Result<usize, Violation> {
        self.engine()
            .advance(by)
            .map(|fired| fired.len())
            .map_err(|panic| Violation::new(format!("firing a deadline panicked: {panic}")))
    }

    /// The engine dies and opens its file again; what was acknowledged must still be
    /// there.
    async fn crash(&mut self) -> Result<(), Violation> {
        self.counts.crashes += 1;
        // What every run's history holds is on disk, so it must be there after the
        // crash; while writes fail, reads are answered from memory, and only what was
        // read before they began to fail is known to be on disk.
        let before = match self.durable.take() {
            Some(before) => before,
            None => self.snapshot().await?,
        };
        for call in self.background.drain(..) {
            call.handle.abort();
        }
        // The client lets go of its connection, so the dying server need not wait for it.
        self.client = connect_lazily(self.port)
            .map_err(|e| Violation::new(format!("cannot make a client: {e}")))?;
        let engine = self.engine.take().expect("the engine runs between steps");
        let now = engine.now();
        engine.crash().await;
        let engine = match open(&self.dir, self.port, now).await {
            Ok(engine) => engine,
            Err(e) => {
                return Err(Violation::new(format!(
                    "the engine does not open its file again after a crash: {e}"
                )))
            }
        };
        self.port = engine.socket_addr().port();
        self.reopened.push(engine.now());
        self.engine = Some(engine);
        self.client = connect(self.port)
            .await
            .map_err(|e| Violation::new(format!("cannot connect after a restart: {e}")))?;
        self.cache.clear();
        self.late.clear();
        for ((workflow_id, run_id), events) in before {
            let after = self.read_history(&workflow_id, &run_id).await?;
            self.counts.checks += 1;
            let speculative = self.updated.contains(&workflow_id);
            crate::checks::keeps_prefix(&workflow_id, &run_id, &events, &after, speculative)?;
        }
        Ok(())
    }

    /// Database writes start failing (`Some`) or succeed again (`None`, returning once
    /// the engine wrote what waited).
    async fn fail_writes(&mut self, cause: Option<&str>) -> Result<(), Violation> {
        if cause.is_some() && self.durable.is_none() {
            self.durable = Some(self.snapshot().await?);
        }
        self.engine().fail_writes(cause);
        if cause.is_none() && self.durable.is_some() {
            let waited = std::time::Instant::now();
            while self.engine().census().write_failing {
                if waited.elapsed() > ANSWER_WITHIN {
                    return Err(Violation::new(format!(
                        "writes succeed again, yet the engine still reports them failing after {ANSWER_WITHIN:?}"
                    )));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            self.durable = None;
        }
        Ok(())
    }

    /// Every known run's history.
    async fn snapshot(
        &mut self,
    ) -> Result<BTreeMap<(String, String), Vec<HistoryEvent>>, Violation> {
        let mut histories = BTreeMap::new();
        for (workflow_id, run_id) in self.known_runs().await? {
            let events = self.read_history(&workflow_id, &run_id).await?;
            histories.insert((workflow_id, run_id), events);
        }
        Ok(histories)
    }

    /// Every run of every workflow started so far, children and continuations included.
    pub async fn known_runs(&mut self) -> Result<Vec<(String, String)>, Violation> {
        let mut runs = Vec::new();
        for w in 0..self.plan.workflows.len() {
            let Some(first) = self.observed.workflows[w].first_run.clone() else {
                continue;
            };
            let workflow_id = self.workflow_id(w);
            for (run_id, events) in self.chain(&workflow_id, &first).await? {
                for event in &events {
                    if let Some(Event::ChildWorkflowExecutionStartedEventAttributes(a)) =
                        &event.attributes
                    {
                        if let Some(child) = &a.workflow_execution {
                            runs.push((child.workflow_id.clone(), child.run_id.clone()));
                        }
                    }
                }
                runs.push((workflow_id.clone(), run_id));
            }
        }
        Ok(runs)
    }

    /// The runs of a workflow from `first` on, following continue-as-new, with their
    /// histories.
    pub async fn chain(
        &mut self,
        workflow_id: &str,
        first: &str,
    ) -> Result<Vec<(String, Vec<HistoryEvent>)>, Violation> {
        let mut chain = Vec::new();
        let mut run_id = first.to_owned();
        loop {
            let events = self.read_history(workflow_id, &run_id).await?;
            let next = events.last().and_then(|e| match &e.attributes {
                Some(Event::WorkflowExecutionContinuedAsNewEventAttributes(a)) => {
                    Some(a.new_execution_run_id.clone())
                }
                _ => None,
            });
            chain.push((run_id, events));
            match next {
                Some(next) if chain.len() < 64 => run_id = next,
                _ => return Ok(chain),
            }
        }
    }

    async fn drop_connections(&mut self) -> Result<(), Violation> {
        for call in self.background.drain(..) {
            call.handle.abort();
        }
        self.client = connect(self.port)
            .await
            .map_err(|e| Violation::new(format!("cannot connect again: {e}")))?;
        Ok(())
    }

    /// Lets every workflow run its course: a well-behaved worker, the signals and
    /// updates the scripts still wait for, and time passing when nothing else moves.
    async fn drain(&mut self) -> Result<(), Violation> {
        self.fail_writes(None).await?;
        // Schedules go first: what they started is then all there is to finish.
        for w in 0..self.plan.workflows.len() {
            if matches!(self.plan.workflows[w], Script::Schedule { .. }) {
                self.delete_schedule(w, true).await?;
            }
        }
        let mut k = 100u8;
        for round in 0..DRAIN_ROUNDS {
            self.collect_background(false).await?;
            let mut moved = false;
            for w in 0..self.plan.workflows.len() {
                if self.observed.workflows[w].first_run.is_none()
                    && !matches!(self.plan.workflows[w], Script::Schedule { .. })
                {
                    self.start_workflow(w).await?;
                    moved = true;
                }
            }
            while self.workflow_task(Behaviour::Normal).await? {
                moved = true;
            }
            while self.activity_task(Behaviour::Normal).await? {
                moved = true;
            }
            if self.engine().census().open_runs == 0 {
                self.collect_background(true).await?;
                self.trace.push(format!("     drained in {round} rounds"));
                return Ok(());
            }
            if moved {
                continue;
            }
            if let Some(worker) = &self.real_worker {
                if worker.failed() {
                    return Err(Violation::new("the real Capstan worker stopped on its own"));
                }
                // The real worker works in real time: it gets a moment before time jumps.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // Nothing moved: what the scripts wait for is sent, or time passes.
            if round % 4 == 1 {
                k = k.wrapping_add(2).max(100);
                for w in 0..self.plan.workflows.len() {
                    match self.plan.workflows[w] {
                        Script::Signals { .. } | Script::Errand { .. } => self.signal(w, k).await?,
                        Script::Updates { .. } => self.update(w, k).await?,
                        _ => {}
                    }
                }
            } else {
                let now = self.engine().now();
                let next = self.engine().next_deadline().unwrap_or(now);
                self.advance(
                    next.duration_since(now)
                        .unwrap_or_default()
                        .max(Duration::from_secs(1)),
                )?;
            }
        }
        Err(Violation::new(format!(
            "after {DRAIN_ROUNDS} rounds of a well-behaved worker and passing time, {} run(s) are still open",
            self.engine().census().open_runs
        )))
    }

    /// Stops the engine (answering held polls) and removes its files.
    pub async fn finish(mut self) {
        for call in self.background.drain(..) {
            call.handle.abort();
        }
        if let Some(worker) = self.real_worker.take() {
            worker.stop().await;
        }
        if let Some(engine) = self.engine.take() {
            engine.shutdown().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const DRAIN_ROUNDS: usize = 400;

/// Gives a call sent in the background time to reach the engine.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(5)).await;
}

/// The script a run was started with.
fn script_of(events: &[HistoryEvent]) -> Option<Script> {
    match &events.first()?.attributes {
        Some(Event::WorkflowExecutionStartedEventAttributes(a)) => proto::decode(a.input.as_ref()),
        _ => None,
    }
}

/// An engine on `dir`'s database file, on the manual clock at `now`, on `port` if it is
/// free.
async fn open(
    dir: &std::path::Path,
    port: u16,
    now: SystemTime,
) -> Result<Engine, capstan_engine::EngineError> {
    let options = |port| EngineOptions {
        port,
        db: Some(dir.join("engine.db")),
        ..EngineOptions::default()
    };
    match Engine::start_simulated(options(port), now).await {
        Err(capstan_engine::EngineError::Bind { .. }) if port != 0 => {
            Engine::start_simulated(options(0), now).await
        }
        other => other,
    }
}

fn connect_lazily(port: u16) -> anyhow::Result<WorkflowServiceClient<Channel>> {
    let channel = Channel::from_shared(format!("http://127.0.0.1:{port}"))?.connect_lazy();
    Ok(WorkflowServiceClient::new(channel).max_decoding_message_size(256 * 1024 * 1024))
}

async fn connect(port: u16) -> anyhow::Result<WorkflowServiceClient<Channel>> {
    let channel = Channel::from_shared(format!("http://127.0.0.1:{port}"))?
        .connect()
        .await?;
    Ok(WorkflowServiceClient::new(channel).max_decoding_message_size(256 * 1024 * 1024))
}

/// A status that says the engine itself failed is a violation.
fn check_status(what: &str, status: &Status) -> Result<(), Violation> {
    if matches!(
        status.code(),
        Code::Internal | Code::Unknown | Code::DataLoss
    ) {
        return Err(Violation::new(format!(
            "{what} was answered {:?}: {}",
            status.code(),
            status.message()
        )));
    }
    Ok(())
}

/// A refusal other than `allowed` is a violation.
pub(crate) fn expect_codes(what: &str, status: &Status, allowed: &[Code]) -> Result<(), Violation> {
    if allowed.contains(&status.code()) {
        Ok(())
    } else {
        Err(Violation::new(format!(
            "{what} was refused {:?}: {} (expected one of {allowed:?})",
            status.code(),
            status.message()
        )))
    }
}
