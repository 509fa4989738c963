//! The engine against Temporal, call by call: each test sends the same raw gRPC calls to
//! the embedded engine and to the Temporal dev server, and compares what a client sees
//! (status codes, messages where Temporal's are part of the contract, failure types,
//! events and the attributes that matter), with ids and times normalized away.

use std::time::Duration;

use capstan::testing::{unique_task_queue, DevServer};
use capstan_engine::{Engine, EngineOptions};
use prost::Message as _;
use temporalio_protos::temporal::api::{
    command::v1::{
        command::Attributes as Cmd, Command, CompleteWorkflowExecutionCommandAttributes,
    },
    common::v1::{Payload, Payloads, WorkflowExecution, WorkflowType},
    enums::v1::{
        CommandType, QueryRejectCondition, TaskQueueKind, UpdateWorkflowExecutionLifecycleStage,
    },
    history::v1::{history_event::Attributes as Event, HistoryEvent},
    query::v1::WorkflowQuery,
    taskqueue::v1::TaskQueue,
    update::v1::{self as update, WaitPolicy},
    workflowservice::v1::{self as service, workflow_service_client::WorkflowServiceClient},
};
use tonic::transport::Channel;

/// One server under test: a raw client of it and its namespace.
struct Server {
    client: WorkflowServiceClient<Channel>,
    namespace: String,
    /// Kept running while the test runs (the dev server is shared).
    _engine: Option<Engine>,
}

impl Server {
    async fn connect(address: &str, namespace: &str, engine: Option<Engine>) -> Self {
        let client = WorkflowServiceClient::connect(format!("http://{address}"))
            .await
            .expect("the server accepts a connection");
        Self {
            client,
            namespace: namespace.to_owned(),
            _engine: engine,
        }
    }

    /// The embedded engine (in memory, real time).
    async fn engine() -> Self {
        let engine = Engine::start(EngineOptions::default())
            .await
            .expect("the engine starts");
        let address = engine.socket_addr().to_string();
        Self::connect(&address, "default", Some(engine)).await
    }

    /// The Temporal dev server shared by this binary's tests.
    async fn temporal() -> Self {
        let dev = DevServer::shared().await;
        Self::connect(&dev.address(), dev.namespace(), None).await
    }

    fn queue(name: &str) -> Option<TaskQueue> {
        Some(TaskQueue {
            name: name.to_owned(),
            kind: TaskQueueKind::Normal as i32,
            ..Default::default()
        })
    }

    /// Starts workflow `id` of type `W` on `queue`; answers its run id.
    async fn start(&mut self, id: &str, queue: &str) -> String {
        self.client
            .start_workflow_execution(service::StartWorkflowExecutionRequest {
                namespace: self.namespace.clone(),
                workflow_id: id.to_owned(),
                workflow_type: Some(WorkflowType { name: "W".into() }),
                task_queue: Self::queue(queue),
                request_id: uuid::Uuid::new_v4().to_string(),
                workflow_task_timeout: Some(prost_wkt_types::Duration {
                    seconds: 10,
                    nanos: 0,
                }),
                ..Default::default()
            })
            .await
            .expect("the workflow starts")
            .into_inner()
            .run_id
    }

    /// Takes the next workflow task on `queue` and completes it with `commands`.
    async fn complete_task(&mut self, queue: &str, commands: Vec<Cmd>) {
        let task = loop {
            let task = self
                .client
                .poll_workflow_task_queue(long_poll(service::PollWorkflowTaskQueueRequest {
                    namespace: self.namespace.clone(),
                    task_queue: Self::queue(queue),
                    identity: "temporal-api-test".into(),
                    ..Default::default()
                }))
                .await
                .expect("the poll is answered")
                .into_inner();
            if !task.task_token.is_empty() {
                break task;
            }
        };
        self.client
            .respond_workflow_task_completed(service::RespondWorkflowTaskCompletedRequest {
                namespace: self.namespace.clone(),
                task_token: task.task_token,
                identity: "temporal-api-test".into(),
                commands: commands
                    .into_iter()
                    .map(|attributes| Command {
                        command_type: command_type(&attributes) as i32,
                        attributes: Some(attributes),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .await
            .expect("the completion is taken");
    }

    /// Starts workflow `id` and completes it with result `"done"`.
    async fn completed_workflow(&mut self, id: &str) -> String {
        let queue = unique_task_queue("api");
        let run_id = self.start(id, &queue).await;
        self.complete_task(
            &queue,
            vec![Cmd::CompleteWorkflowExecutionCommandAttributes(
                CompleteWorkflowExecutionCommandAttributes {
                    result: payloads("done"),
                },
            )],
        )
        .await;
        run_id
    }

    async fn history(&mut self, id: &str, run_id: &str) -> Vec<HistoryEvent> {
        self.client
            .get_workflow_execution_history(service::GetWorkflowExecutionHistoryRequest {
                namespace: self.namespace.clone(),
                execution: execution(id, run_id),
                ..Default::default()
            })
            .await
            .expect("the history is answered")
            .into_inner()
            .history
            .unwrap_or_default()
            .events
    }
}

/// A long poll, with the deadline Temporal requires of one.
fn long_poll<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(Duration::from_secs(70));
    request
}

fn command_type(attributes: &Cmd) -> CommandType {
    match attributes {
        Cmd::CompleteWorkflowExecutionCommandAttributes(_) => {
            CommandType::CompleteWorkflowExecution
        }
        other => panic!("a command these tests do not send: {other:?}"),
    }
}

/// Run `run_id` of workflow `id` (an empty run id: its current run).
fn execution(id: impl Into<String>, run_id: impl Into<String>) -> Option<WorkflowExecution> {
    Some(WorkflowExecution {
        workflow_id: id.into(),
        run_id: run_id.into(),
    })
}

fn payloads(text: &str) -> Option<Payloads> {
    Some(Payloads {
        payloads: vec![Payload {
            metadata: [("encoding".to_owned(), b"json/plain".to_vec())].into(),
            data: serde_json::to_vec(text).unwrap(),
            ..Default::default()
        }],
    })
}

/// A status as a client sees it: its code and, where Temporal's clients read them, its
/// message and the types of its details.
fn seen(status: &tonic::Status) -> String {
    let details = tonic_types_of(status.details());
    format!("{:?}: {} {details:?}", status.code(), status.message())
}

/// The type URLs of the `Any`s in a status's `google.rpc.Status` details.
fn tonic_types_of(details: &[u8]) -> Vec<String> {
    temporalio_protos::google::rpc::Status::decode(details)
        .map(|s| s.details.into_iter().map(|d| d.type_url).collect())
        .unwrap_or_default()
}

/// Runs `scenario` on the engine and on Temporal and asserts both answer the same.
async fn same_on_both<F>(scenario: F)
where
    F: AsyncFn(&mut Server) -> String,
{
    let mut engine = Server::engine().await;
    let on_engine = scenario(&mut engine).await;
    let mut temporal = Server::temporal().await;
    let on_temporal = scenario(&mut temporal).await;
    assert_eq!(
        on_engine, on_temporal,
        "the engine (left) answers otherwise than Temporal (right)"
    );
}

#[tokio::test]
async fn a_query_that_rejects_closed_runs_is_rejected_on_a_completed_one() {
    same_on_both(async |server: &mut Server| {
        let id = unique_task_queue("query-not-open");
        let run_id = server.completed_workflow(&id).await;
        let answer = server
            .client
            .query_workflow(service::QueryWorkflowRequest {
                namespace: server.namespace.clone(),
                execution: execution(id, run_id),
                query: Some(WorkflowQuery {
                    query_type: "state".into(),
                    ..Default::default()
                }),
                query_reject_condition: QueryRejectCondition::NotOpen as i32,
            })
            .await;
        match answer {
            Ok(answer) => format!("{:?}", answer.into_inner().query_rejected),
            Err(status) => seen(&status),
        }
    })
    .await;
}

#[tokio::test]
async fn cancelling_a_completed_workflow() {
    same_on_both(async |server: &mut Server| {
        let id = unique_task_queue("cancel-completed");
        let run_id = server.completed_workflow(&id).await;
        let answer = server
            .client
            .request_cancel_workflow_execution(service::RequestCancelWorkflowExecutionRequest {
                namespace: server.namespace.clone(),
                workflow_execution: execution(id, run_id),
                request_id: uuid::Uuid::new_v4().to_string(),
                ..Default::default()
            })
            .await;
        match answer {
            Ok(_) => "accepted".to_owned(),
            Err(status) => seen(&status),
        }
    })
    .await;
}

#[tokio::test]
async fn a_termination_keeps_its_reason_and_details() {
    same_on_both(async |server: &mut Server| {
        let id = unique_task_queue("terminate-details");
        let run_id = server.start(&id, &unique_task_queue("unpolled")).await;
        server
            .client
            .terminate_workflow_execution(service::TerminateWorkflowExecutionRequest {
                namespace: server.namespace.clone(),
                workflow_execution: execution(id.as_str(), run_id.as_str()),
                reason: "enough".into(),
                details: payloads("why"),
                identity: "operator".into(),
                ..Default::default()
            })
            .await
            .expect("the termination is taken");
        let events = server.history(&id, &run_id).await;
        match events.last().and_then(|e| e.attributes.as_ref()) {
            Some(Event::WorkflowExecutionTerminatedEventAttributes(a)) => format!(
                "{} {:?} {}",
                a.reason,
                a.details.as_ref().map(|d| d.payloads.len()),
                a.identity
            ),
            other => format!("{other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn an_unknown_namespace_is_not_found_with_its_detail() {
    same_on_both(async |server: &mut Server| {
        let answer = server
            .client
            .describe_workflow_execution(service::DescribeWorkflowExecutionRequest {
                namespace: "no-such-namespace".into(),
                execution: execution("w", ""),
            })
            .await;
        let status = answer.expect_err("refused");
        format!("{:?} {:?}", status.code(), tonic_types_of(status.details()))
    })
    .await;
}

#[tokio::test]
async fn describe_names_the_root_execution_and_history_size() {
    same_on_both(async |server: &mut Server| {
        let id = unique_task_queue("describe-root");
        let run_id = server.completed_workflow(&id).await;
        let info = server
            .client
            .describe_workflow_execution(service::DescribeWorkflowExecutionRequest {
                namespace: server.namespace.clone(),
                execution: execution(id.as_str(), run_id.as_str()),
            })
            .await
            .expect("described")
            .into_inner()
            .workflow_execution_info
            .unwrap_or_default();
        let root = info
            .root_execution
            .map(|r| r.workflow_id == id && r.run_id == run_id);
        let version = uuid::Uuid::parse_str(&run_id).map(|u| u.get_version_num());
        format!(
            "root is itself: {root:?}, history size > 0: {}, run id version {version:?}",
            info.history_size_bytes > 0
        )
    })
    .await;
}

#[tokio::test]
async fn counts_grouped_by_execution_status() {
    same_on_both(async |server: &mut Server| {
        // Only this test's workflows: their type is unique.
        let id = unique_task_queue("count-group");
        server.completed_workflow(&id).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let answer = server
            .client
            .count_workflow_executions(service::CountWorkflowExecutionsRequest {
                namespace: server.namespace.clone(),
                query: format!("WorkflowId = '{id}' GROUP BY ExecutionStatus"),
            })
            .await;
        match answer {
            Ok(answer) => {
                let answer = answer.into_inner();
                let groups: Vec<_> = answer
                    .groups
                    .iter()
                    .map(|g| {
                        let values: Vec<String> = g
                            .group_values
                            .iter()
                            .map(|p| String::from_utf8_lossy(&p.data).into_owned())
                            .collect();
                        format!("{values:?}={}", g.count)
                    })
                    .collect();
                format!("{} {groups:?}", answer.count)
            }
            Err(status) => seen(&status),
        }
    })
    .await;
}

/// Sends update `change` to the running workflow `id`, waiting for `stage`, naming
/// `first_run_id`; answers the stage reached within 5 s.
async fn update(
    server: &mut Server,
    id: &str,
    first_run_id: &str,
    stage: UpdateWorkflowExecutionLifecycleStage,
) -> Result<String, tonic::Status> {
    let mut request = tonic::Request::new(service::UpdateWorkflowExecutionRequest {
        namespace: server.namespace.clone(),
        workflow_execution: execution(id, ""),
        first_execution_run_id: first_run_id.to_owned(),
        wait_policy: Some(WaitPolicy {
            lifecycle_stage: stage as i32,
        }),
        request: Some(update::Request {
            meta: Some(update::Meta {
                update_id: "u".into(),
                identity: "temporal-api-test".into(),
            }),
            input: Some(update::Input {
                name: "change".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
    });
    request.set_timeout(Duration::from_secs(5));
    let answer = server.client.update_workflow_execution(request).await?;
    Ok(format!("{:?}", answer.into_inner().stage()))
}

#[tokio::test]
async fn an_update_may_not_wait_for_admission_only() {
    same_on_both(async |server: &mut Server| {
        let id = unique_task_queue("update-admitted");
        let run_id = server.start(&id, &unique_task_queue("unpolled")).await;
        update(
            server,
            &id,
            &run_id,
            UpdateWorkflowExecutionLifecycleStage::Admitted,
        )
        .await
        .unwrap_or_else(|status| seen(&status))
    })
    .await;
}

#[tokio::test]
async fn an_update_naming_another_first_run_is_not_found() {
    same_on_both(async |server: &mut Server| {
        let id = unique_task_queue("update-first-run");
        server.start(&id, &unique_task_queue("unpolled")).await;
        let other = uuid::Uuid::new_v4().to_string();
        // The engine's message says more than Temporal's: the code and detail count.
        match update(
            server,
            &id,
            &other,
            UpdateWorkflowExecutionLifecycleStage::Accepted,
        )
        .await
        {
            Ok(stage) => stage,
            Err(status) => format!("{:?} {:?}", status.code(), tonic_types_of(status.details())),
        }
    })
    .await;
}
