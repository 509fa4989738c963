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
        self as command, command::Attributes as Cmd, Command,
        CompleteWorkflowExecutionCommandAttributes,
    },
    common::v1::{
        ActivityType, Memo, Payload, Payloads, Priority, RetryPolicy, SearchAttributes,
        WorkflowExecution, WorkflowType,
    },
    enums::v1::{
        CommandType, EventType, IndexedValueType, QueryRejectCondition, TaskQueueKind,
        TaskQueueType, UpdateWorkflowExecutionLifecycleStage, WorkflowIdConflictPolicy,
    },
    errordetails::v1::MultiOperationExecutionFailure,
    failure::v1::{failure::FailureInfo, ApplicationFailureInfo},
    history::v1::{history_event::Attributes as Event, HistoryEvent},
    operatorservice::v1::{self as operator, operator_service_client::OperatorServiceClient},
    protocol::v1::{message, Message},
    query::v1::WorkflowQuery,
    schedule::v1 as schedule,
    sdk::v1::UserMetadata,
    taskqueue::v1::TaskQueue,
    update::v1::{self as update, WaitPolicy},
    workflow::v1 as workflow,
    workflowservice::v1::{self as service, workflow_service_client::WorkflowServiceClient},
};
use tonic::transport::Channel;

/// One server under test: a raw client of it and its namespace.
struct Server {
    client: WorkflowServiceClient<Channel>,
    operator: OperatorServiceClient<Channel>,
    namespace: String,
    /// Kept running while the test runs (the dev server is shared).
    _engine: Option<Engine>,
}

impl Server {
    async fn connect(address: &str, namespace: &str, engine: Option<Engine>) -> Self {
        let channel = Channel::from_shared(format!("http://{address}"))
            .expect("an address")
            .connect()
            .await
            .expect("the server accepts a connection");
        Self {
            client: WorkflowServiceClient::new(channel.clone()),
            operator: OperatorServiceClient::new(channel),
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
        self.start_with(id, queue, |_| {}).await
    }

    /// Starts workflow `id` of type `W` on `queue` with what `shape` sets in the request;
    /// answers its run id.
    async fn start_with(
        &mut self,
        id: &str,
        queue: &str,
        shape: impl FnOnce(&mut service::StartWorkflowExecutionRequest),
    ) -> String {
        let mut request = service::StartWorkflowExecutionRequest {
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
        };
        shape(&mut request);
        self.client
            .start_workflow_execution(request)
            .await
            .expect("the workflow starts")
            .into_inner()
            .run_id
    }

    /// Takes the next workflow task on `queue` and completes it with `commands`.
    async fn complete_task(&mut self, queue: &str, commands: Vec<Cmd>) {
        let commands = commands.into_iter().map(command).collect();
        self.complete_task_with(queue, commands).await;
    }

    /// Takes the next workflow task on `queue` and completes it with `commands`.
    async fn complete_task_with(&mut self, queue: &str, commands: Vec<Command>) {
        let task = self.take_task(queue).await;
        self.respond(task.task_token, commands, Vec::new()).await;
    }

    /// Polls `queue` once for an activity task (empty if none came before the deadline).
    async fn take_activity(&mut self, queue: &str) -> service::PollActivityTaskQueueResponse {
        self.client
            .poll_activity_task_queue(long_poll(service::PollActivityTaskQueueRequest {
                namespace: self.namespace.clone(),
                task_queue: Self::queue(queue),
                identity: "temporal-api-test".into(),
                ..Default::default()
            }))
            .await
            .expect("the poll is answered")
            .into_inner()
    }

    /// Takes the next workflow task on `queue`.
    async fn take_task(&mut self, queue: &str) -> service::PollWorkflowTaskQueueResponse {
        loop {
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
                return task;
            }
        }
    }

    /// Completes the workflow task of `task_token` with `commands` and `messages`.
    async fn respond(
        &mut self,
        task_token: Vec<u8>,
        commands: Vec<Command>,
        messages: Vec<Message>,
    ) {
        self.client
            .respond_workflow_task_completed(service::RespondWorkflowTaskCompletedRequest {
                namespace: self.namespace.clone(),
                task_token,
                identity: "temporal-api-test".into(),
                commands,
                messages,
                ..Default::default()
            })
            .await
            .expect("the completion is taken");
    }

    /// Starts workflow `id` and completes it with result `"done"`.
    async fn completed_workflow(&mut self, id: &str) -> String {
        let queue = unique_task_queue("api");
        let run_id = self.start(id, &queue).await;
        self.complete_task(&queue, vec![completion("done")]).await;
        run_id
    }

    async fn describe(
        &mut self,
        id: &str,
        run_id: &str,
    ) -> service::DescribeWorkflowExecutionResponse {
        self.client
            .describe_workflow_execution(service::DescribeWorkflowExecutionRequest {
                namespace: self.namespace.clone(),
                execution: execution(id, run_id),
            })
            .await
            .expect("described")
            .into_inner()
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

/// A command with these attributes.
fn command(attributes: Cmd) -> Command {
    let command_type = match &attributes {
        Cmd::CompleteWorkflowExecutionCommandAttributes(_) => {
            CommandType::CompleteWorkflowExecution
        }
        Cmd::StartTimerCommandAttributes(_) => CommandType::StartTimer,
        Cmd::ScheduleActivityTaskCommandAttributes(_) => CommandType::ScheduleActivityTask,
        Cmd::ModifyWorkflowPropertiesCommandAttributes(_) => CommandType::ModifyWorkflowProperties,
        Cmd::UpsertWorkflowSearchAttributesCommandAttributes(_) => {
            CommandType::UpsertWorkflowSearchAttributes
        }
        Cmd::ProtocolMessageCommandAttributes(_) => CommandType::ProtocolMessage,
        Cmd::StartChildWorkflowExecutionCommandAttributes(_) => {
            CommandType::StartChildWorkflowExecution
        }
        other => panic!("a command these tests do not send: {other:?}"),
    };
    Command {
        command_type: command_type as i32,
        attributes: Some(attributes),
        ..Default::default()
    }
}

/// The command completing the workflow with `result`.
fn completion(result: &str) -> Cmd {
    Cmd::CompleteWorkflowExecutionCommandAttributes(CompleteWorkflowExecutionCommandAttributes {
        result: payloads(result),
    })
}

/// The command starting child `workflow_id` of type `C` on `queue`.
fn start_child(workflow_id: &str, queue: &str) -> Cmd {
    Cmd::StartChildWorkflowExecutionCommandAttributes(
        command::StartChildWorkflowExecutionCommandAttributes {
            workflow_id: workflow_id.to_owned(),
            workflow_type: Some(WorkflowType { name: "C".into() }),
            task_queue: Server::queue(queue),
            ..Default::default()
        },
    )
}

/// Activity `a` of type `A` on `queue`, with a start-to-close timeout of a minute.
fn activity_a(queue: &str) -> command::ScheduleActivityTaskCommandAttributes {
    command::ScheduleActivityTaskCommandAttributes {
        activity_id: "a".into(),
        activity_type: Some(ActivityType { name: "A".into() }),
        task_queue: Server::queue(queue),
        start_to_close_timeout: Some(prost_wkt_types::Duration {
            seconds: 60,
            nanos: 0,
        }),
        ..Default::default()
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
            .describe(&id, &run_id)
            .await
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
    let answer = answer.into_inner();
    let stage = answer.stage();
    let outcome = match answer.outcome.and_then(|o| o.value) {
        Some(update::outcome::Value::Failure(f)) => {
            format!(" failed: {:?} {:?}", f.message, f.failure_info)
        }
        Some(update::outcome::Value::Success(_)) => " succeeded".to_owned(),
        None => String::new(),
    };
    Ok(format!("{stage:?}{outcome}"))
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

/// A payload as the Go SDK encodes `nil`: Temporal reads it as "remove this key".
fn nil_payload() -> Payload {
    Payload {
        metadata: [("encoding".to_owned(), b"binary/null".to_vec())].into(),
        ..Default::default()
    }
}

fn json_payload(value: serde_json::Value) -> Payload {
    Payload {
        metadata: [("encoding".to_owned(), b"json/plain".to_vec())].into(),
        data: serde_json::to_vec(&value).unwrap(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_memo_key_upserted_as_null_is_removed() {
    same_on_both(async |server: &mut Server| {
        let id = unique_task_queue("memo-null");
        let queue = unique_task_queue("memo-null");
        let fields = |pairs: Vec<(&str, Payload)>| {
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect::<std::collections::HashMap<_, _>>()
        };
        let run_id = server
            .start_with(&id, &queue, |r| {
                r.memo = Some(Memo {
                    fields: fields(vec![
                        ("kept", json_payload("k".into())),
                        ("nulled", json_payload("n".into())),
                        ("emptied", json_payload("e".into())),
                    ]),
                });
            })
            .await;
        server
            .complete_task(
                &queue,
                vec![Cmd::ModifyWorkflowPropertiesCommandAttributes(
                    command::ModifyWorkflowPropertiesCommandAttributes {
                        upserted_memo: Some(Memo {
                            fields: fields(vec![
                                ("added", json_payload(1.into())),
                                ("nulled", nil_payload()),
                                ("emptied", json_payload(serde_json::json!([]))),
                                ("json-null", json_payload(serde_json::Value::Null)),
                            ]),
                        }),
                    },
                )],
            )
            .await;
        let info = server
            .describe(&id, &run_id)
            .await
            .workflow_execution_info
            .unwrap_or_default();
        let mut keys: Vec<String> = info.memo.unwrap_or_default().fields.into_keys().collect();
        keys.sort();
        format!("{keys:?}")
    })
    .await;
}

#[tokio::test]
async fn user_metadata_and_priority_are_kept() {
    same_on_both(async |server: &mut Server| {
        let id = unique_task_queue("metadata");
        let queue = unique_task_queue("metadata");
        let metadata = |summary: &str, details: &str| {
            Some(UserMetadata {
                summary: Some(json_payload(summary.into())),
                details: Some(json_payload(details.into())),
            })
        };
        let run_id = server
            .start_with(&id, &queue, |r| {
                r.user_metadata = metadata("the run", "all of it");
                r.priority = Some(Priority {
                    priority_key: 3,
                    ..Default::default()
                });
            })
            .await;
        let timer = Command {
            user_metadata: metadata("a pause", "one hour"),
            ..command(Cmd::StartTimerCommandAttributes(
                command::StartTimerCommandAttributes {
                    timer_id: "t".into(),
                    start_to_fire_timeout: Some(prost_wkt_types::Duration {
                        seconds: 3600,
                        nanos: 0,
                    }),
                },
            ))
        };
        let activity = Command {
            user_metadata: metadata("a call", "to somewhere"),
            ..command(Cmd::ScheduleActivityTaskCommandAttributes(activity_a(
                &queue,
            )))
        };
        server
            .complete_task_with(&queue, vec![timer, activity])
            .await;
        let described = server.describe(&id, &run_id).await;
        let text = |p: &Option<Payload>| {
            p.as_ref()
                .map(|p| String::from_utf8_lossy(&p.data).into_owned())
                .unwrap_or_default()
        };
        let shown = |m: &Option<UserMetadata>| {
            m.as_ref()
                .map(|m| format!("{} / {}", text(&m.summary), text(&m.details)))
        };
        let events: Vec<String> = server
            .history(&id, &run_id)
            .await
            .iter()
            .map(|e| {
                let priority = match &e.attributes {
                    Some(Event::WorkflowExecutionStartedEventAttributes(a)) => {
                        format!(
                            " priority {:?}",
                            a.priority.as_ref().map(|p| p.priority_key)
                        )
                    }
                    _ => String::new(),
                };
                format!(
                    "{:?} {:?}{priority}",
                    e.event_type(),
                    shown(&e.user_metadata)
                )
            })
            .collect();
        let config = described
            .execution_config
            .and_then(|c| shown(&c.user_metadata));
        let priority = described
            .workflow_execution_info
            .and_then(|i| i.priority)
            .map(|p| p.priority_key);
        format!("{events:#?}\ndescribed: {config:?}, priority {priority:?}")
    })
    .await;
}

#[tokio::test]
async fn a_schedule_describes_its_calendars_as_temporal_compiles_them() {
    same_on_both(async |server: &mut Server| {
        let id = unique_task_queue("schedule-spec");
        server
            .client
            .create_schedule(service::CreateScheduleRequest {
                namespace: server.namespace.clone(),
                schedule_id: id.clone(),
                schedule: Some(schedule::Schedule {
                    spec: Some(schedule::ScheduleSpec {
                        calendar: vec![schedule::CalendarSpec {
                            hour: "9".into(),
                            day_of_week: "MON-FRI".into(),
                            comment: "weekdays".into(),
                            ..Default::default()
                        }],
                        cron_string: vec!["30 12 * * *".into()],
                        structured_calendar: vec![schedule::StructuredCalendarSpec {
                            hour: vec![schedule::Range {
                                start: 6,
                                end: 18,
                                step: 6,
                            }],
                            year: vec![schedule::Range {
                                start: 2030,
                                ..Default::default()
                            }],
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                    action: Some(schedule::ScheduleAction {
                        action: Some(schedule::schedule_action::Action::StartWorkflow(
                            temporalio_protos::temporal::api::workflow::v1::NewWorkflowExecutionInfo {
                                workflow_id: format!("{id}-wf"),
                                workflow_type: Some(WorkflowType { name: "W".into() }),
                                task_queue: Server::queue(&unique_task_queue("unpolled")),
                                ..Default::default()
                            },
                        )),
                    }),
                    state: Some(schedule::ScheduleState {
                        paused: true,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                request_id: uuid::Uuid::new_v4().to_string(),
                ..Default::default()
            })
            .await
            .expect("the schedule is created");
        let described = server
            .client
            .describe_schedule(service::DescribeScheduleRequest {
                namespace: server.namespace.clone(),
                schedule_id: id.clone(),
            })
            .await
            .expect("described")
            .into_inner();
        server
            .client
            .delete_schedule(service::DeleteScheduleRequest {
                namespace: server.namespace.clone(),
                schedule_id: id,
                identity: "temporal-api-test".into(),
            })
            .await
            .expect("deleted");
        let spec = described.schedule.and_then(|s| s.spec).unwrap_or_default();
        format!(
            "calendar {:#?}\nstructured {:#?}\ncron {:?}",
            spec.calendar, spec.structured_calendar, spec.cron_string
        )
    })
    .await;
}

#[tokio::test]
async fn activity_timeouts_fail_as_on_temporal() {
    same_on_both(async |server: &mut Server| {
        let id = unique_task_queue("activity-timeouts");
        let queue = unique_task_queue("activity-timeouts");
        let taken = unique_task_queue("activity-taken");
        let run_id = server.start(&id, &queue).await;
        let seconds = |seconds| Some(prost_wkt_types::Duration { seconds, nanos: 0 });
        let activity =
            |activity_id: &str, queue: &str| command::ScheduleActivityTaskCommandAttributes {
                activity_id: activity_id.into(),
                activity_type: Some(ActivityType { name: "A".into() }),
                task_queue: Server::queue(queue),
                start_to_close_timeout: seconds(30),
                retry_policy: Some(RetryPolicy {
                    maximum_attempts: 1,
                    ..Default::default()
                }),
                ..Default::default()
            };
        let activities = vec![
            // No worker polls its queue.
            command::ScheduleActivityTaskCommandAttributes {
                schedule_to_start_timeout: seconds(1),
                ..activity("schedule-to-start", &unique_task_queue("unpolled"))
            },
            // Taken, and never heartbeats.
            command::ScheduleActivityTaskCommandAttributes {
                heartbeat_timeout: seconds(1),
                ..activity("heartbeat", &taken)
            },
            // Taken, and never answers.
            command::ScheduleActivityTaskCommandAttributes {
                start_to_close_timeout: seconds(1),
                ..activity("start-to-close", &taken)
            },
        ];
        server
            .complete_task(
                &queue,
                activities
                    .into_iter()
                    .map(Cmd::ScheduleActivityTaskCommandAttributes)
                    .collect(),
            )
            .await;
        for _ in 0..2 {
            let task = server.take_activity(&taken).await;
            assert!(
                !task.task_token.is_empty(),
                "an activity task is handed out"
            );
        }
        let mut timed_out = Vec::new();
        for _ in 0..60 {
            let events = server.history(&id, &run_id).await;
            let ids: std::collections::HashMap<i64, String> = events
                .iter()
                .filter_map(|e| match &e.attributes {
                    Some(Event::ActivityTaskScheduledEventAttributes(a)) => {
                        Some((e.event_id, a.activity_id.clone()))
                    }
                    _ => None,
                })
                .collect();
            timed_out = events
                .iter()
                .filter_map(|e| match &e.attributes {
                    Some(Event::ActivityTaskTimedOutEventAttributes(a)) => {
                        let failure = a.failure.clone().unwrap_or_default();
                        Some(format!(
                            "{}: {:?} from {:?}, {:?}, cause {:?}, {:?}",
                            ids[&a.scheduled_event_id],
                            failure.message,
                            failure.source,
                            failure.failure_info,
                            failure.cause.map(|c| c.message),
                            a.retry_state(),
                        ))
                    }
                    _ => None,
                })
                .collect();
            if timed_out.len() == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        timed_out.sort();
        format!("{timed_out:#?}")
    })
    .await;
}

/// An idle workflow named after `name` (its first task done), and an update sent to it by
/// a caller of its own: its id, task queue, run id and that caller.
async fn updated_idle_workflow(
    server: &mut Server,
    name: &str,
) -> (
    String,
    String,
    String,
    tokio::task::JoinHandle<Result<String, tonic::Status>>,
) {
    let id = unique_task_queue(name);
    let queue = unique_task_queue(name);
    let run_id = server.start(&id, &queue).await;
    server.complete_task(&queue, Vec::new()).await;
    let asked = spawn_update(server, &id);
    (id, queue, run_id, asked)
}

/// Sends update `u` to workflow `id` from a caller of its own, waiting for completion.
fn spawn_update(
    server: &Server,
    id: &str,
) -> tokio::task::JoinHandle<Result<String, tonic::Status>> {
    let mut caller = Server {
        client: server.client.clone(),
        operator: server.operator.clone(),
        namespace: server.namespace.clone(),
        _engine: None,
    };
    let id = id.to_owned();
    tokio::spawn(async move {
        update(
            &mut caller,
            &id,
            "",
            UpdateWorkflowExecutionLifecycleStage::Completed,
        )
        .await
    })
}

#[tokio::test]
async fn an_accepted_update_fails_when_its_workflow_completes_first() {
    same_on_both(async |server: &mut Server| {
        let (_, queue, _, asked) = updated_idle_workflow(server, "update-completed").await;
        let task = server.take_task(&queue).await;
        let request = task
            .messages
            .first()
            .cloned()
            .expect("the update is delivered");
        let accept = accept(&request);
        let commands = vec![
            command(Cmd::ProtocolMessageCommandAttributes(
                command::ProtocolMessageCommandAttributes {
                    message_id: accept.id.clone(),
                },
            )),
            command(completion("done")),
        ];
        server
            .respond(task.task_token, commands, vec![accept])
            .await;
        let started = std::time::Instant::now();
        let answer = asked.await.expect("the caller ends");
        let waited = started.elapsed() < Duration::from_secs(3);
        match answer {
            Ok(stage) => format!("{stage}, answered at once: {waited}"),
            Err(status) => format!("{}, answered at once: {waited}", seen(&status)),
        }
    })
    .await;
}

/// The worker's acceptance of the update `request` delivers.
fn accept(request: &Message) -> Message {
    let accepted = update::Acceptance {
        accepted_request_message_id: request.id.clone(),
        accepted_request_sequencing_event_id: match request.sequencing_id {
            Some(message::SequencingId::EventId(id)) => id,
            _ => 0,
        },
        accepted_request: request
            .body
            .as_ref()
            .and_then(|b| update::Request::decode(&b.value[..]).ok()),
    };
    protocol_message(request, "accept", "Acceptance", accepted.encode_to_vec())
}

/// The worker's answer `result` to the update `request` delivers.
fn respond(request: &Message, result: &str) -> Message {
    let meta = request
        .body
        .as_ref()
        .and_then(|b| update::Request::decode(&b.value[..]).ok())
        .and_then(|r| r.meta);
    let response = update::Response {
        meta,
        outcome: Some(update::Outcome {
            value: Some(update::outcome::Value::Success(
                payloads(result).unwrap_or_default(),
            )),
        }),
    };
    protocol_message(request, "respond", "Response", response.encode_to_vec())
}

fn protocol_message(request: &Message, kind: &str, type_name: &str, value: Vec<u8>) -> Message {
    Message {
        id: format!("{}/{kind}", request.protocol_instance_id),
        protocol_instance_id: request.protocol_instance_id.clone(),
        body: Some(prost_wkt_types::Any {
            type_url: format!("type.googleapis.com/temporal.api.update.v1.{type_name}"),
            value,
        }),
        ..Default::default()
    }
}

/// Takes the workflow task on `queue` that delivers an update, and accepts and completes
/// the update with `result`.
async fn complete_update(server: &mut Server, queue: &str, result: &str) {
    let task = server.take_task(queue).await;
    let request = task
        .messages
        .first()
        .cloned()
        .expect("the update is delivered");
    answer_update(server, task.task_token, &request, result).await;
}

/// Completes the workflow task of `task_token`, accepting and completing the update
/// `request` with `result`.
async fn answer_update(server: &mut Server, task_token: Vec<u8>, request: &Message, result: &str) {
    let messages = vec![accept(request), respond(request, result)];
    let commands = messages
        .iter()
        .map(|m| {
            command(Cmd::ProtocolMessageCommandAttributes(
                command::ProtocolMessageCommandAttributes {
                    message_id: m.id.clone(),
                },
            ))
        })
        .collect();
    server.respond(task_token, commands, messages).await;
}

/// An update-with-start of workflow `id` on `queue`, waiting for the update to complete.
fn update_with_start(
    server: &Server,
    id: &str,
    queue: &str,
    update_id: &str,
    conflict: WorkflowIdConflictPolicy,
) -> service::ExecuteMultiOperationRequest {
    use service::execute_multi_operation_request::{operation::Operation, Operation as Op};
    service::ExecuteMultiOperationRequest {
        namespace: server.namespace.clone(),
        operations: vec![
            Op {
                operation: Some(Operation::StartWorkflow(
                    service::StartWorkflowExecutionRequest {
                        namespace: server.namespace.clone(),
                        workflow_id: id.to_owned(),
                        workflow_type: Some(WorkflowType { name: "W".into() }),
                        task_queue: Server::queue(queue),
                        request_id: uuid::Uuid::new_v4().to_string(),
                        workflow_id_conflict_policy: conflict as i32,
                        ..Default::default()
                    },
                )),
            },
            Op {
                operation: Some(Operation::UpdateWorkflow(
                    service::UpdateWorkflowExecutionRequest {
                        namespace: server.namespace.clone(),
                        workflow_execution: execution(id, ""),
                        wait_policy: Some(WaitPolicy {
                            lifecycle_stage: UpdateWorkflowExecutionLifecycleStage::Completed
                                as i32,
                        }),
                        request: Some(update::Request {
                            meta: Some(update::Meta {
                                update_id: update_id.into(),
                                identity: "temporal-api-test".into(),
                            }),
                            input: Some(update::Input {
                                name: "change".into(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                )),
            },
        ],
        ..Default::default()
    }
}

/// What a client sees of an update-with-start: each operation's answer, or the error
/// with each operation's status.
fn seen_multi(
    answer: Result<tonic::Response<service::ExecuteMultiOperationResponse>, tonic::Status>,
    first_run: &mut String,
) -> String {
    use service::execute_multi_operation_response::response::Response;
    match answer {
        Ok(answer) => answer
            .into_inner()
            .responses
            .into_iter()
            .map(|r| match r.response {
                Some(Response::StartWorkflow(start)) => {
                    if first_run.is_empty() {
                        first_run.clone_from(&start.run_id);
                    }
                    format!(
                        "started {} (the first run: {})",
                        start.started,
                        start.run_id == *first_run
                    )
                }
                Some(Response::UpdateWorkflow(update)) => {
                    let stage = update.stage();
                    let outcome = match update.outcome.and_then(|o| o.value) {
                        Some(update::outcome::Value::Success(p)) => p
                            .payloads
                            .first()
                            .map(|p| String::from_utf8_lossy(&p.data).into_owned())
                            .unwrap_or_default(),
                        other => format!("{other:?}"),
                    };
                    format!("{stage:?} {outcome}")
                }
                None => "no response".to_owned(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        Err(status) => {
            let statuses: Vec<String> =
                temporalio_protos::google::rpc::Status::decode(status.details())
                    .map(|s| s.details)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|d| MultiOperationExecutionFailure::decode(&d.value[..]).ok())
                    .flat_map(|f| f.statuses)
                    .map(|s| {
                        let types: Vec<String> =
                            s.details.into_iter().map(|d| d.type_url).collect();
                        format!(
                            "{:?} {}: {types:?}",
                            tonic::Code::from_i32(s.code),
                            s.message
                        )
                    })
                    .collect();
            format!("{:?}: {} {statuses:#?}", status.code(), status.message())
        }
    }
}

#[tokio::test]
async fn update_with_start_starts_the_workflow_or_updates_the_running_one() {
    same_on_both(async |server: &mut Server| {
        let id = unique_task_queue("update-with-start");
        let queue = unique_task_queue("update-with-start");
        let mut first_run = String::new();
        let mut seen = Vec::new();
        for (update_id, conflict) in [
            ("u1", WorkflowIdConflictPolicy::UseExisting),
            ("u2", WorkflowIdConflictPolicy::UseExisting),
        ] {
            let request = update_with_start(server, &id, &queue, update_id, conflict);
            let mut client = server.client.clone();
            let asked = tokio::spawn(async move {
                let mut request = tonic::Request::new(request);
                request.set_timeout(Duration::from_secs(10));
                client.execute_multi_operation(request).await
            });
            complete_update(server, &queue, update_id).await;
            let answer = asked.await.expect("the caller ends");
            seen.push(seen_multi(answer, &mut first_run));
        }
        // The running workflow, under a policy that refuses it.
        let request = update_with_start(server, &id, &queue, "u3", WorkflowIdConflictPolicy::Fail);
        let answer = server.client.execute_multi_operation(request).await;
        seen.push(seen_multi(answer, &mut first_run));
        // Operations in the wrong order, or for two workflows.
        let mut reversed = update_with_start(
            server,
            &id,
            &queue,
            "u4",
            WorkflowIdConflictPolicy::UseExisting,
        );
        reversed.operations.reverse();
        seen.push(seen_multi(
            server.client.execute_multi_operation(reversed).await,
            &mut first_run,
        ));
        let mut two = update_with_start(
            server,
            &id,
            &queue,
            "u5",
            WorkflowIdConflictPolicy::UseExisting,
        );
        if let Some(
            service::execute_multi_operation_request::operation::Operation::UpdateWorkflow(u),
        ) = two.operations[1].operation.as_mut()
        {
            u.workflow_execution = execution("another", "");
        }
        seen.push(seen_multi(
            server.client.execute_multi_operation(two).await,
            &mut first_run,
        ));
        // Ids differ from server to server.
        seen.join("\n")
            .replace(&id, "<id>")
            .replace(&first_run, "<run>")
    })
    .await;
}

#[tokio::test]
async fn a_task_queue_describes_its_pollers() {
    same_on_both(async |server: &mut Server| {
        let queue = unique_task_queue("described");
        // A workflow waits in the queue; then a worker polls it (and takes it).
        server
            .start(&unique_task_queue("described-wf"), &queue)
            .await;
        // Temporal caches its stats for a while: the backlog it reports lags by seconds,
        // which is timing, not behaviour. Only whether stats are given is compared.
        let describe = async |server: &mut Server, kind: TaskQueueType| {
            let answer = server
                .client
                .describe_task_queue(service::DescribeTaskQueueRequest {
                    namespace: server.namespace.clone(),
                    task_queue: Server::queue(&queue),
                    task_queue_type: kind as i32,
                    report_stats: true,
                    ..Default::default()
                })
                .await
                .expect("described")
                .into_inner();
            let pollers: Vec<(String, bool)> = answer
                .pollers
                .iter()
                .map(|p| (p.identity.clone(), p.last_access_time.is_some()))
                .collect();
            format!(
                "{kind:?}: pollers {pollers:?}, stats given: {}",
                answer.stats.is_some()
            )
        };
        let before = describe(server, TaskQueueType::Workflow).await;
        server.take_task(&queue).await;
        let workflow = describe(server, TaskQueueType::Workflow).await;
        let activity = describe(server, TaskQueueType::Activity).await;
        format!("{before}\n{workflow}\n{activity}")
    })
    .await;
}

// SDKs still send the deprecated build fields (sdk-core does): the test sends them too.
#[allow(deprecated)]
#[tokio::test]
async fn a_completed_task_records_the_workers_build() {
    use temporalio_protos::temporal::api::{
        common::v1::WorkerVersionStamp, deployment::v1::WorkerDeploymentOptions,
        enums::v1::WorkerVersioningMode, sdk::v1::WorkflowTaskCompletedMetadata,
    };
    same_on_both(async |server: &mut Server| {
        let id = unique_task_queue("build-id");
        let queue = unique_task_queue("build-id");
        let run_id = server.start(&id, &queue).await;
        let task = server.take_task(&queue).await;
        server
            .client
            .respond_workflow_task_completed(service::RespondWorkflowTaskCompletedRequest {
                namespace: server.namespace.clone(),
                task_token: task.task_token,
                identity: "builder".into(),
                binary_checksum: "build-7".into(),
                worker_version_stamp: Some(WorkerVersionStamp {
                    build_id: "build-7".into(),
                    use_versioning: false,
                }),
                sdk_metadata: Some(WorkflowTaskCompletedMetadata {
                    core_used_flags: vec![1, 2],
                    sdk_name: "temporal-api-test".into(),
                    sdk_version: "1.0".into(),
                    ..Default::default()
                }),
                deployment_options: Some(WorkerDeploymentOptions {
                    build_id: "build-7".into(),
                    worker_versioning_mode: WorkerVersioningMode::Unversioned as i32,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("the completion is taken");
        let events = server.history(&id, &run_id).await;
        match events.last().and_then(|e| e.attributes.as_ref()) {
            Some(Event::WorkflowTaskCompletedEventAttributes(a)) => format!(
                "{a:#?}",
                a = temporalio_protos::temporal::api::history::v1::WorkflowTaskCompletedEventAttributes {
                    scheduled_event_id: 0,
                    started_event_id: 0,
                    ..a.clone()
                }
            ),
            other => format!("{other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn an_eager_start_hands_the_first_task_to_the_starter() {
    same_on_both(async |server: &mut Server| {
        let id = unique_task_queue("eager");
        let queue = unique_task_queue("eager");
        let answer = server
            .client
            .start_workflow_execution(service::StartWorkflowExecutionRequest {
                namespace: server.namespace.clone(),
                workflow_id: id.clone(),
                workflow_type: Some(WorkflowType { name: "W".into() }),
                task_queue: Server::queue(&queue),
                request_id: uuid::Uuid::new_v4().to_string(),
                identity: "eager-starter".into(),
                request_eager_execution: true,
                ..Default::default()
            })
            .await
            .expect("the workflow starts")
            .into_inner();
        let Some(task) = answer.eager_workflow_task else {
            return "no eager task".to_owned();
        };
        let types: Vec<EventType> = task
            .history
            .as_ref()
            .map(|h| h.events.iter().map(HistoryEvent::event_type).collect())
            .unwrap_or_default();
        let shape = format!(
            "eager task: token {}, attempt {}, events {types:?}, queue {:?}",
            !task.task_token.is_empty(),
            task.attempt,
            task.workflow_execution_task_queue.map(|q| q.name == queue)
        );
        server
            .respond(
                task.task_token,
                vec![command(completion("done"))],
                Vec::new(),
            )
            .await;
        let events = server.history(&id, &answer.run_id).await;
        let started_by = events.iter().find_map(|e| match &e.attributes {
            Some(Event::WorkflowTaskStartedEventAttributes(a)) => Some(a.identity.clone()),
            _ => None,
        });
        let types: Vec<EventType> = events.iter().map(HistoryEvent::event_type).collect();
        format!("{shape}\nstarted by {started_by:?}\n{types:?}")
    })
    .await;
}

#[tokio::test]
async fn an_update_not_yet_accepted_when_its_workflow_closes() {
    same_on_both(async |server: &mut Server| {
        let (id, _, run_id, asked) = updated_idle_workflow(server, "update-unaccepted").await;
        // Admitted (a worker never takes it), then the workflow is terminated.
        tokio::time::sleep(Duration::from_millis(500)).await;
        server
            .client
            .terminate_workflow_execution(service::TerminateWorkflowExecutionRequest {
                namespace: server.namespace.clone(),
                workflow_execution: execution(id.as_str(), run_id.as_str()),
                reason: "enough".into(),
                ..Default::default()
            })
            .await
            .expect("terminated");
        match asked.await.expect("the caller ends") {
            Ok(stage) => stage,
            Err(status) => format!(
                "{:?}: {} {:?}",
                status.code(),
                status.message(),
                tonic_types_of(status.details())
            ),
        }
    })
    .await;
}

#[tokio::test]
async fn an_acceptance_without_its_requests_sequencing_id_is_refused() {
    same_on_both(async |server: &mut Server| {
        let (id, queue, run_id, asked) = updated_idle_workflow(server, "bad-acceptance").await;
        let task = server.take_task(&queue).await;
        let request = task
            .messages
            .first()
            .cloned()
            .expect("the update is delivered");
        let mut accepted = accept(&request);
        if let Some(body) = accepted.body.as_mut() {
            let mut acceptance = update::Acceptance::decode(&body.value[..]).unwrap();
            acceptance.accepted_request_sequencing_event_id = 0;
            body.value = acceptance.encode_to_vec();
        }
        let commands = vec![command(Cmd::ProtocolMessageCommandAttributes(
            command::ProtocolMessageCommandAttributes {
                message_id: accepted.id.clone(),
            },
        ))];
        let answer = server
            .client
            .respond_workflow_task_completed(service::RespondWorkflowTaskCompletedRequest {
                namespace: server.namespace.clone(),
                task_token: task.task_token,
                identity: "temporal-api-test".into(),
                commands,
                messages: vec![accepted],
                ..Default::default()
            })
            .await;
        let answered = match answer {
            Ok(_) => "accepted".to_owned(),
            Err(status) => format!("{:?}: {}", status.code(), status.message()),
        };
        asked.abort();
        let events = server.history(&id, &run_id).await;
        let failed = events.iter().find_map(|e| match &e.attributes {
            Some(Event::WorkflowTaskFailedEventAttributes(a)) => Some(format!(
                "{:?} {:?}",
                a.cause(),
                a.failure.as_ref().map(|f| f.message.clone())
            )),
            _ => None,
        });
        format!("{answered}\nworkflow task failed: {failed:?}")
    })
    .await;
}

#[tokio::test]
async fn a_heartbeat_after_the_attempt_timed_out_is_refused() {
    same_on_both(async |server: &mut Server| {
        let id = unique_task_queue("late-heartbeat");
        let queue = unique_task_queue("late-heartbeat");
        let run_id = server.start(&id, &queue).await;
        server
            .complete_task(
                &queue,
                vec![Cmd::ScheduleActivityTaskCommandAttributes(
                    command::ScheduleActivityTaskCommandAttributes {
                        activity_id: "a".into(),
                        activity_type: Some(ActivityType { name: "A".into() }),
                        task_queue: Server::queue(&queue),
                        start_to_close_timeout: Some(prost_wkt_types::Duration {
                            seconds: 1,
                            nanos: 0,
                        }),
                        retry_policy: Some(RetryPolicy {
                            maximum_attempts: 1,
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                )],
            )
            .await;
        let task = server.take_activity(&queue).await;
        // Past the start-to-close timeout: the attempt timed out.
        let mut timed_out = false;
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let events = server.history(&id, &run_id).await;
            timed_out = events
                .iter()
                .any(|e| e.event_type() == EventType::ActivityTaskTimedOut);
            if timed_out {
                break;
            }
        }
        let answer = server
            .client
            .record_activity_task_heartbeat(service::RecordActivityTaskHeartbeatRequest {
                namespace: server.namespace.clone(),
                task_token: task.task_token.clone(),
                identity: "temporal-api-test".into(),
                ..Default::default()
            })
            .await;
        let heartbeat = match answer {
            Ok(answer) => format!("{:?}", answer.into_inner()),
            Err(status) => format!("{:?} {:?}", status.code(), tonic_types_of(status.details())),
        };
        let completed = server
            .client
            .respond_activity_task_completed(service::RespondActivityTaskCompletedRequest {
                namespace: server.namespace.clone(),
                task_token: task.task_token,
                identity: "temporal-api-test".into(),
                ..Default::default()
            })
            .await;
        let completed = match completed {
            Ok(_) => "completed".to_owned(),
            Err(status) => format!("{:?} {:?}", status.code(), tonic_types_of(status.details())),
        };
        format!("timed out: {timed_out}\nheartbeat: {heartbeat}\ncompletion: {completed}")
    })
    .await;
}

/// A search attribute map of `(name, JSON value)`.
fn search_attributes(pairs: &[(&str, serde_json::Value)]) -> Option<SearchAttributes> {
    Some(SearchAttributes {
        indexed_fields: pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), json_payload(value.clone())))
            .collect(),
    })
}

#[tokio::test]
async fn custom_search_attributes_are_registered_typed_and_queried() {
    same_on_both(async |server: &mut Server| {
        let mut seen_calls = Vec::new();
        let namespace = server.namespace.clone();
        let add = |names: &[(&str, IndexedValueType)], namespace: &str| {
            operator::AddSearchAttributesRequest {
                search_attributes: names
                    .iter()
                    .map(|(name, kind)| ((*name).to_owned(), *kind as i32))
                    .collect(),
                namespace: namespace.to_owned(),
            }
        };
        use IndexedValueType as T;
        let custom = [
            ("CapColor", T::Keyword),
            ("CapSize", T::Int),
            ("CapOk", T::Bool),
            ("CapWhen", T::Datetime),
            ("CapTags", T::KeywordList),
            ("CapScore", T::Double),
            ("CapNote", T::Text),
        ];
        for request in [
            add(&custom, &namespace),
            // Again: nothing to do.
            add(&custom[..1], &namespace),
            add(&[("WorkflowId", T::Keyword)], &namespace),
            add(&[("TemporalCapstan", T::Keyword)], &namespace),
            add(&[], &namespace),
            add(&[("CapOther", T::Keyword)], ""),
        ] {
            let answer = server.operator.add_search_attributes(request).await;
            seen_calls.push(answer.map_or_else(|s| seen(&s), |_| "added".to_owned()));
        }
        let unknown = server
            .operator
            .add_search_attributes(add(&[("CapOther", T::Keyword)], "no-such-namespace"))
            .await
            .expect_err("refused");
        seen_calls.push(format!(
            "{:?} {:?}",
            unknown.code(),
            tonic_types_of(unknown.details())
        ));
        let listed = |answer: operator::ListSearchAttributesResponse| {
            let mut custom: Vec<String> = answer
                .custom_attributes
                .iter()
                .filter(|(name, _)| name.starts_with("Cap"))
                .map(|(name, kind)| format!("{name}={kind}"))
                .collect();
            custom.sort();
            let system = [
                "WorkflowId",
                "StartTime",
                "TemporalScheduledById",
                "HistoryLength",
            ]
            .map(|name| format!("{name}={:?}", answer.system_attributes.get(name)));
            format!("{custom:?} {system:?}")
        };
        let list = operator::ListSearchAttributesRequest {
            namespace: namespace.clone(),
        };
        let answer = server.operator.list_search_attributes(list.clone()).await;
        seen_calls.push(answer.map_or_else(|s| seen(&s), |a| listed(a.into_inner())));

        // Starts: a value of each type, and what is refused.
        let prefix = unique_task_queue("sa");
        let queue = unique_task_queue("sa");
        use serde_json::json;
        let refused_starts = [
            search_attributes(&[("CapNope", json!("x"))]),
            search_attributes(&[("CapSize", json!("7"))]),
            search_attributes(&[("CapSize", json!(1.5))]),
            search_attributes(&[("CapOk", json!(1))]),
            search_attributes(&[("CapWhen", json!("yesterday"))]),
            search_attributes(&[("CapTags", json!("a"))]),
            search_attributes(&[("CapColor", json!(["a", "b"]))]),
            search_attributes(&[("WorkflowId", json!("x"))]),
        ];
        for (i, attributes) in refused_starts.into_iter().enumerate() {
            let request = service::StartWorkflowExecutionRequest {
                namespace: namespace.clone(),
                workflow_id: format!("{prefix}-refused-{i}"),
                workflow_type: Some(WorkflowType { name: "W".into() }),
                task_queue: Server::queue(&queue),
                request_id: uuid::Uuid::new_v4().to_string(),
                search_attributes: attributes,
                ..Default::default()
            };
            let answer = server.client.start_workflow_execution(request).await;
            seen_calls.push(answer.map_or_else(|s| seen(&s), |_| "started".to_owned()));
        }
        let started = [
            search_attributes(&[
                ("CapColor", json!("red")),
                ("CapSize", json!(7)),
                ("CapOk", json!(true)),
                ("CapWhen", json!("2026-01-02T03:04:05Z")),
                ("CapTags", json!(["a", "b"])),
                ("CapScore", json!(2.5)),
                ("CapNote", json!("hello capstan world")),
            ]),
            search_attributes(&[
                ("CapColor", json!("blue")),
                ("CapSize", json!(3)),
                ("CapTags", json!(["b"])),
                ("CapNote", json!("goodbye")),
            ]),
            search_attributes(&[("CapColor", json!(null)), ("CapOk", json!(false))]),
        ];
        for (i, attributes) in started.into_iter().enumerate() {
            server
                .start_with(&format!("{prefix}-{i}"), &queue, |r| {
                    r.search_attributes = attributes;
                })
                .await;
        }
        // A workflow that upserts an attribute the namespace does not have (on a queue of
        // its own: the runs above wait on `queue`, and a poll there could take theirs).
        let upserting = format!("{prefix}-upsert");
        let upsert_queue = unique_task_queue("sa-upsert");
        let run_id = server.start(&upserting, &upsert_queue).await;
        let task = server.take_task(&upsert_queue).await;
        let completion = server
            .client
            .respond_workflow_task_completed(service::RespondWorkflowTaskCompletedRequest {
                namespace: namespace.clone(),
                task_token: task.task_token,
                identity: "temporal-api-test".into(),
                commands: vec![command(
                    Cmd::UpsertWorkflowSearchAttributesCommandAttributes(
                        command::UpsertWorkflowSearchAttributesCommandAttributes {
                            search_attributes: search_attributes(&[("CapNope", json!("x"))]),
                        },
                    ),
                )],
                ..Default::default()
            })
            .await;
        seen_calls.push(format!("upsert: {:?}", completion.map_err(|s| s.code())));
        let failed = server
            .history(&upserting, &run_id)
            .await
            .into_iter()
            .find_map(|e| match e.attributes {
                Some(Event::WorkflowTaskFailedEventAttributes(a)) => Some(a.cause),
                _ => None,
            });
        seen_calls.push(format!("upsert failed the task with cause {failed:?}"));

        // Visibility is eventually consistent on Temporal: wait until it lists the four
        // runs, with the search attributes they were started with (one record each).
        for _ in 0..100 {
            let listed = server
                .client
                .count_workflow_executions(service::CountWorkflowExecutionsRequest {
                    namespace: namespace.clone(),
                    query: format!("WorkflowId STARTS_WITH '{prefix}'"),
                })
                .await
                .map(|a| a.into_inner().count);
            if listed.as_ref().is_ok_and(|count| *count == 4) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for query in [
            "CapColor = 'red'",
            "CapSize > 5",
            "CapSize BETWEEN 3 AND 7",
            "CapOk = true",
            "CapOk = false",
            "CapWhen > '2026-01-01T00:00:00Z'",
            "CapTags = 'b'",
            "CapTags IN ('a')",
            "CapScore >= 2",
            "CapColor STARTS_WITH 're'",
            "CapColor IS NULL",
            "CapNote = 'hello'",
            "`CapColor` != 'red'",
            "CapNope = 'x'",
            "CapSize > '5'",
            "CapOk = 'true'",
            "CapTags STARTS_WITH 'a'",
            "CapNote STARTS_WITH 'he'",
        ] {
            let answer = server
                .client
                .count_workflow_executions(service::CountWorkflowExecutionsRequest {
                    namespace: namespace.clone(),
                    query: format!("WorkflowId STARTS_WITH '{prefix}' AND {query}"),
                })
                .await;
            // Refusals differ in wording (Temporal's come from its SQL parser).
            seen_calls.push(format!(
                "{query}: {:?}",
                answer.map(|a| a.into_inner().count).map_err(|s| s.code())
            ));
        }

        // Removing.
        for names in [
            vec!["CapScore", "CapNeverAdded"],
            vec!["WorkflowId"],
            vec![],
        ] {
            let answer = server
                .operator
                .remove_search_attributes(operator::RemoveSearchAttributesRequest {
                    search_attributes: names.iter().map(|n| (*n).to_owned()).collect(),
                    namespace: namespace.clone(),
                })
                .await;
            seen_calls.push(answer.map_or_else(|s| seen(&s), |_| "removed".to_owned()));
        }
        let answer = server.operator.list_search_attributes(list).await;
        seen_calls.push(answer.map_or_else(|s| seen(&s), |a| listed(a.into_inner())));
        seen_calls.join("\n")
    })
    .await;
}

/// What describe says of the run's pending activity: state, attempt, pause, last failure
/// and start-to-close timeout.
async fn pending_activity(server: &mut Server, id: &str, run_id: &str) -> String {
    let described = server.describe(id, run_id).await;
    described
        .pending_activities
        .iter()
        .map(|a| {
            let paused_by = a.pause_info.as_ref().and_then(|p| match &p.paused_by {
                Some(workflow::pending_activity_info::pause_info::PausedBy::Manual(m)) => {
                    Some((m.identity.clone(), m.reason.clone()))
                }
                _ => None,
            });
            let options = a.activity_options.clone().unwrap_or_default();
            format!(
                "{}: {:?} attempt {} paused {} by {paused_by:?}, last failure {:?}, \
                 start-to-close {:?}s",
                a.activity_id,
                a.state(),
                a.attempt,
                a.paused,
                a.last_failure.as_ref().map(|f| f.message.clone()),
                options.start_to_close_timeout.map(|d| d.seconds),
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `ok`, or the status as a client sees it.
fn answered<T>(answer: Result<tonic::Response<T>, tonic::Status>) -> String {
    answer.map_or_else(|s| seen(&s), |_| "ok".to_owned())
}

/// Polls `queue` for an activity task for at most 3 s: its attempt, or `None`.
async fn activity_attempt(server: &mut Server, queue: &str) -> (Option<i32>, Vec<u8>) {
    let mut request = tonic::Request::new(service::PollActivityTaskQueueRequest {
        namespace: server.namespace.clone(),
        task_queue: Server::queue(queue),
        identity: "temporal-api-test".into(),
        ..Default::default()
    });
    request.set_timeout(Duration::from_secs(3));
    match server.client.poll_activity_task_queue(request).await {
        Ok(task) if !task.get_ref().task_token.is_empty() => {
            let task = task.into_inner();
            (Some(task.attempt), task.task_token)
        }
        _ => (None, Vec::new()),
    }
}

#[tokio::test]
async fn an_operator_pauses_unpauses_resets_and_changes_an_activity() {
    same_on_both(async |server: &mut Server| {
        let id = unique_task_queue("pause");
        let queue = unique_task_queue("pause");
        let run_id = server.start(&id, &queue).await;
        let seconds = |s| {
            Some(prost_wkt_types::Duration {
                seconds: s,
                nanos: 0,
            })
        };
        server
            .complete_task(
                &queue,
                vec![Cmd::ScheduleActivityTaskCommandAttributes(
                    command::ScheduleActivityTaskCommandAttributes {
                        activity_id: "a1".into(),
                        activity_type: Some(ActivityType { name: "A".into() }),
                        task_queue: Server::queue(&queue),
                        start_to_close_timeout: seconds(30),
                        heartbeat_timeout: seconds(20),
                        retry_policy: Some(RetryPolicy {
                            initial_interval: seconds(1),
                            maximum_attempts: 10,
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                )],
            )
            .await;
        let ns = server.namespace.clone();
        let execution = execution(&id, &run_id);
        let mut seen_calls = Vec::new();
        let pause = |activity: Option<service::pause_activity_request::Activity>, reason: &str| {
            service::PauseActivityRequest {
                namespace: ns.clone(),
                execution: execution.clone(),
                identity: "operator".into(),
                activity,
                reason: reason.into(),
                ..Default::default()
            }
        };
        let unpause = |reset_attempts: bool| service::UnpauseActivityRequest {
            namespace: ns.clone(),
            execution: execution.clone(),
            identity: "operator".into(),
            activity: Some(service::unpause_activity_request::Activity::Id("a1".into())),
            reset_attempts,
            ..Default::default()
        };
        let reset = |keep_paused: bool| service::ResetActivityRequest {
            namespace: ns.clone(),
            execution: execution.clone(),
            identity: "operator".into(),
            activity: Some(service::reset_activity_request::Activity::Id("a1".into())),
            keep_paused,
            ..Default::default()
        };
        let by_id = |id: &str| Some(service::pause_activity_request::Activity::Id(id.into()));

        // Waiting to be polled.
        seen_calls.push(answered(
            server.client.pause_activity(pause(by_id("nope"), "")).await,
        ));
        seen_calls.push(answered(
            server.client.pause_activity(pause(None, "")).await,
        ));
        seen_calls.push(answered(
            server
                .client
                .pause_activity(pause(by_id("a1"), "hold it"))
                .await,
        ));
        seen_calls.push(answered(
            server
                .client
                .pause_activity(pause(by_id("a1"), "again"))
                .await,
        ));
        seen_calls.push(pending_activity(server, &id, &run_id).await);
        seen_calls.push(format!(
            "polled while paused: {:?}",
            activity_attempt(server, &queue).await.0
        ));
        seen_calls.push(answered(
            server.client.unpause_activity(unpause(false)).await,
        ));
        seen_calls.push(answered(
            server.client.unpause_activity(unpause(false)).await,
        ));
        seen_calls.push(pending_activity(server, &id, &run_id).await);

        // Running.
        let (attempt, token) = activity_attempt(server, &queue).await;
        seen_calls.push(format!("polled: {attempt:?}"));
        seen_calls.push(answered(
            server
                .client
                .pause_activity(pause(by_id("a1"), "running"))
                .await,
        ));
        let heartbeat = |token: &Vec<u8>| service::RecordActivityTaskHeartbeatRequest {
            namespace: ns.clone(),
            task_token: token.clone(),
            identity: "temporal-api-test".into(),
            ..Default::default()
        };
        let beat = server
            .client
            .record_activity_task_heartbeat(heartbeat(&token))
            .await
            .map(|a| a.into_inner());
        seen_calls.push(format!("heartbeat: {beat:?}"));
        seen_calls.push(pending_activity(server, &id, &run_id).await);
        let failed = server
            .client
            .respond_activity_task_failed(service::RespondActivityTaskFailedRequest {
                namespace: ns.clone(),
                task_token: token,
                identity: "temporal-api-test".into(),
                failure: Some(temporalio_protos::temporal::api::failure::v1::Failure {
                    message: "boom".into(),
                    failure_info: Some(FailureInfo::ApplicationFailureInfo(
                        ApplicationFailureInfo {
                            r#type: "E".into(),
                            ..Default::default()
                        },
                    )),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await;
        seen_calls.push(answered(failed));
        seen_calls.push(pending_activity(server, &id, &run_id).await);
        seen_calls.push(format!(
            "polled while paused: {:?}",
            activity_attempt(server, &queue).await.0
        ));
        seen_calls.push(answered(server.client.reset_activity(reset(true)).await));
        seen_calls.push(pending_activity(server, &id, &run_id).await);
        seen_calls.push(answered(
            server.client.unpause_activity(unpause(true)).await,
        ));
        seen_calls.push(pending_activity(server, &id, &run_id).await);

        // Reset and changed while running.
        let (attempt, token) = activity_attempt(server, &queue).await;
        seen_calls.push(format!("polled: {attempt:?}"));
        seen_calls.push(answered(server.client.reset_activity(reset(false)).await));
        let beat = server
            .client
            .record_activity_task_heartbeat(heartbeat(&token))
            .await
            .map(|a| a.into_inner());
        seen_calls.push(format!("heartbeat: {beat:?}"));
        let changed = server
            .client
            .update_activity_options(service::UpdateActivityOptionsRequest {
                namespace: ns.clone(),
                execution: execution.clone(),
                identity: "operator".into(),
                activity_options: Some(
                    temporalio_protos::temporal::api::activity::v1::ActivityOptions {
                        start_to_close_timeout: seconds(77),
                        heartbeat_timeout: seconds(5),
                        ..Default::default()
                    },
                ),
                update_mask: Some(prost_wkt_types::FieldMask {
                    paths: vec!["start_to_close_timeout".into()],
                }),
                activity: Some(service::update_activity_options_request::Activity::Id(
                    "a1".into(),
                )),
                ..Default::default()
            })
            .await
            .map(|a| {
                let options = a.into_inner().activity_options.unwrap_or_default();
                (
                    options.start_to_close_timeout.map(|d| d.seconds),
                    options.heartbeat_timeout.map(|d| d.seconds),
                )
            });
        seen_calls.push(format!("changed: {changed:?}"));
        seen_calls.push(pending_activity(server, &id, &run_id).await);
        let completed = server
            .client
            .respond_activity_task_completed(service::RespondActivityTaskCompletedRequest {
                namespace: ns.clone(),
                task_token: token,
                identity: "temporal-api-test".into(),
                ..Default::default()
            })
            .await;
        seen_calls.push(answered(completed));
        let events: Vec<String> = server
            .history(&id, &run_id)
            .await
            .iter()
            .map(|e| format!("{:?}", e.event_type()))
            .collect();
        seen_calls.push(events.join(" "));
        seen_calls.join("\n")
    })
    .await;
}

#[tokio::test]
async fn a_worker_fails_an_attempt_only_with_an_application_failure() {
    same_on_both(async |server: &mut Server| {
        let id = unique_task_queue("fail-kind");
        let queue = unique_task_queue("fail-kind");
        server.start(&id, &queue).await;
        let schedule = |i: usize| {
            Cmd::ScheduleActivityTaskCommandAttributes(
                command::ScheduleActivityTaskCommandAttributes {
                    activity_id: format!("a{i}"),
                    activity_type: Some(ActivityType { name: "A".into() }),
                    task_queue: Server::queue(&queue),
                    start_to_close_timeout: Some(prost_wkt_types::Duration {
                        seconds: 30,
                        nanos: 0,
                    }),
                    retry_policy: Some(RetryPolicy {
                        maximum_attempts: 1,
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )
        };
        server
            .complete_task(&queue, (0..3).map(schedule).collect())
            .await;
        use temporalio_protos::temporal::api::failure::v1::{Failure, TimeoutFailureInfo};
        let bare = Failure {
            message: "bare".into(),
            ..Default::default()
        };
        let timeout = Failure {
            message: "timeout".into(),
            failure_info: Some(FailureInfo::TimeoutFailureInfo(
                TimeoutFailureInfo::default(),
            )),
            ..Default::default()
        };
        let mut seen_calls = Vec::new();
        let mut refused = String::new();
        for failure in [Some(bare.clone()), Some(timeout), None] {
            let task = server.take_activity(&queue).await;
            if refused.is_empty() {
                refused = task.activity_id.clone();
            }
            let answer = server
                .client
                .respond_activity_task_failed(service::RespondActivityTaskFailedRequest {
                    namespace: server.namespace.clone(),
                    task_token: task.task_token,
                    identity: "temporal-api-test".into(),
                    failure,
                    ..Default::default()
                })
                .await;
            seen_calls.push(answered(answer));
        }
        // By id, a failure of any kind is taken.
        let answer = server
            .client
            .respond_activity_task_failed_by_id(service::RespondActivityTaskFailedByIdRequest {
                namespace: server.namespace.clone(),
                workflow_id: id.clone(),
                activity_id: refused,
                identity: "temporal-api-test".into(),
                failure: Some(bare),
                ..Default::default()
            })
            .await;
        seen_calls.push(answered(answer));
        seen_calls.join("\n")
    })
    .await;
}

/// Sends signal `name` (input: its name) to workflow `id`.
async fn signal(server: &mut Server, id: &str, name: &str) {
    server
        .client
        .signal_workflow_execution(service::SignalWorkflowExecutionRequest {
            namespace: server.namespace.clone(),
            workflow_execution: execution(id, ""),
            signal_name: name.to_owned(),
            input: payloads(name),
            identity: "temporal-api-test".into(),
            request_id: uuid::Uuid::new_v4().to_string(),
            ..Default::default()
        })
        .await
        .expect("the signal is taken");
}

/// A change to a reset request.
type Shape<'a> = Box<dyn FnOnce(&mut service::ResetWorkflowExecutionRequest) + 'a>;

/// Resets run `run_id` of workflow `id` to `finish_event_id` with reason "because", and
/// what `shape` changes in the request; answers the new run's id.
async fn reset(
    server: &mut Server,
    id: &str,
    run_id: &str,
    finish_event_id: i64,
    shape: impl FnOnce(&mut service::ResetWorkflowExecutionRequest),
) -> Result<String, tonic::Status> {
    let mut request = service::ResetWorkflowExecutionRequest {
        namespace: server.namespace.clone(),
        workflow_execution: execution(id, run_id),
        reason: "because".into(),
        workflow_task_finish_event_id: finish_event_id,
        request_id: uuid::Uuid::new_v4().to_string(),
        ..Default::default()
    };
    shape(&mut request);
    let answer = server.client.reset_workflow_execution(request).await?;
    Ok(answer.into_inner().run_id)
}

/// A history as the reset tests compare it: each event's id, type and the attributes a
/// reset writes or keeps, with run ids named after `runs` (`base`, `new`, ...).
fn reset_history(events: &[HistoryEvent], runs: &[(&str, &str)]) -> String {
    let name = |run_id: &str| {
        runs.iter()
            .find(|(id, _)| *id == run_id)
            .map_or("another run", |(_, name)| *name)
            .to_owned()
    };
    let text = |p: &Option<Payloads>| {
        p.as_ref()
            .and_then(|p| p.payloads.first())
            .map(|p| String::from_utf8_lossy(&p.data).into_owned())
            .unwrap_or_default()
    };
    events
        .iter()
        .map(|event| {
            let detail = match &event.attributes {
                Some(Event::WorkflowTaskScheduledEventAttributes(a)) => {
                    format!("{:?}", a.task_queue.as_ref().map(|q| q.kind()))
                }
                Some(Event::WorkflowTaskStartedEventAttributes(a)) => a.identity.clone(),
                Some(Event::WorkflowTaskFailedEventAttributes(a)) => format!(
                    "{:?} {:?} {:?} by {}, base {}, new {}",
                    a.cause(),
                    a.failure.as_ref().map(|f| &f.message),
                    a.failure.as_ref().map(|f| &f.failure_info),
                    a.identity,
                    name(&a.base_run_id),
                    name(&a.new_run_id),
                ),
                Some(Event::WorkflowExecutionSignaledEventAttributes(a)) => {
                    format!("{} {} by {}", a.signal_name, text(&a.input), a.identity)
                }
                Some(Event::WorkflowExecutionUpdateAdmittedEventAttributes(a)) => format!(
                    "{:?} {:?}",
                    a.request
                        .as_ref()
                        .and_then(|r| r.meta.as_ref())
                        .map(|m| &m.update_id),
                    a.origin(),
                ),
                Some(Event::WorkflowExecutionUpdateAcceptedEventAttributes(a)) => format!(
                    "sequenced by {}, request kept: {}",
                    a.accepted_request_sequencing_event_id,
                    a.accepted_request.is_some()
                ),
                Some(Event::WorkflowExecutionTerminatedEventAttributes(a)) => {
                    format!("{:?} by {}", a.reason, a.identity)
                }
                Some(Event::ActivityTaskScheduledEventAttributes(a)) => a.activity_id.clone(),
                Some(Event::TimerStartedEventAttributes(a)) => a.timer_id.clone(),
                Some(Event::ChildWorkflowExecutionCompletedEventAttributes(a)) => text(&a.result),
                _ => String::new(),
            };
            format!("{} {:?} {detail}", event.event_id, event.event_type())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn a_reset_replays_its_prefix_and_reapplies_later_signals_and_updates() {
    same_on_both(async |server: &mut Server| {
        let id = unique_task_queue("reset");
        let queue = unique_task_queue("reset");
        let base = server.start(&id, &queue).await;
        let activity = activity_a(&queue);
        let timer = command::StartTimerCommandAttributes {
            timer_id: "t".into(),
            start_to_fire_timeout: Some(prost_wkt_types::Duration {
                seconds: 3600,
                nanos: 0,
            }),
        };
        // 1-6: started, the first task, the activity and the timer.
        server
            .complete_task(
                &queue,
                vec![
                    Cmd::ScheduleActivityTaskCommandAttributes(activity),
                    Cmd::StartTimerCommandAttributes(timer),
                ],
            )
            .await;
        // 7-10: a signal and its task; the reset point is that task's completion (10).
        signal(server, &id, "s1").await;
        server.complete_task(&queue, Vec::new()).await;
        // After the point: an update, accepted and completed, then a second signal.
        let asked = spawn_update(server, &id);
        complete_update(server, &queue, "ok").await;
        let updated = asked.await.expect("the caller ends");
        signal(server, &id, "s2").await;
        let mut seen_calls = vec![format!("update: {updated:?}")];

        // Points where no workflow task is pending, and requests Temporal refuses.
        for point in [0, 1, 7, 11, 99] {
            let answer = reset(server, &id, &base, point, |_| {}).await;
            seen_calls.push(format!(
                "reset to {point}: {:?}",
                answer.map_err(|s| seen(&s))
            ));
        }
        let unknown = "0193b7f2-0000-7000-8000-000000000000";
        let refused: [(&str, Shape<'_>); 5] = [
            ("no request id", Box::new(|r| r.request_id.clear())),
            (
                "no workflow id",
                Box::new(|r| r.workflow_execution = execution("", "")),
            ),
            ("no execution", Box::new(|r| r.workflow_execution = None)),
            (
                "a run id that is no uuid",
                Box::new(|r| r.workflow_execution = execution(&id, "xyz")),
            ),
            (
                "an unknown run",
                Box::new(|r| r.workflow_execution = execution(&id, unknown)),
            ),
        ];
        for (what, shape) in refused {
            let answer = reset(server, &id, &base, 10, shape).await;
            seen_calls.push(format!("{what}: {:?}", answer.map_err(|s| seen(&s))));
        }

        let new = reset(server, &id, &base, 10, |_| {})
            .await
            .expect("the reset is taken");
        let runs = [(base.as_str(), "base"), (new.as_str(), "new")];
        seen_calls.push(format!(
            "base:\n{}",
            reset_history(&server.history(&id, &base).await, &runs)
        ));
        seen_calls.push(format!(
            "new:\n{}",
            reset_history(&server.history(&id, &new).await, &runs)
        ));

        // The new run's task replays the prefix; the reapplied update is read from the
        // history, accepted and completed.
        let task = server.take_task(&queue).await;
        seen_calls.push(format!(
            "task of the new run: {}, started {}, previous started {}, attempt {}, {} \
             messages",
            task.workflow_execution.as_ref().map(|e| e.run_id == new) == Some(true),
            task.started_event_id,
            task.previous_started_event_id,
            task.attempt,
            task.messages.len(),
        ));
        let admitted = task
            .history
            .as_ref()
            .and_then(|h| {
                h.events.iter().find_map(|e| match &e.attributes {
                    Some(Event::WorkflowExecutionUpdateAdmittedEventAttributes(a)) => {
                        Some((e.event_id, a.request.clone()))
                    }
                    _ => None,
                })
            })
            .expect("the update is reapplied");
        let request = Message {
            id: "u/request".into(),
            protocol_instance_id: "u".into(),
            body: admitted.1.map(|r| prost_wkt_types::Any {
                type_url: "type.googleapis.com/temporal.api.update.v1.Request".into(),
                value: r.encode_to_vec(),
            }),
            sequencing_id: Some(message::SequencingId::EventId(admitted.0)),
        };
        answer_update(server, task.task_token, &request, "again").await;
        let history = server.history(&id, &new).await;
        seen_calls.push(format!(
            "after its task:\n{}",
            reset_history(&history[12..], &runs)
        ));

        // The pending activity is scheduled again, for the new run.
        seen_calls.push(format!(
            "pending: {}",
            pending_activity(server, &id, &new).await
        ));
        let activity = server.take_activity(&queue).await;
        seen_calls.push(format!(
            "activity {} of the new run: {}, attempt {}",
            activity.activity_id,
            activity
                .workflow_execution
                .as_ref()
                .map(|e| e.run_id == new)
                == Some(true),
            activity.attempt,
        ));
        let base_info = server.describe(&id, &base).await;
        let new_info = server.describe(&id, &new).await;
        let extended = |d: &service::DescribeWorkflowExecutionResponse| {
            d.workflow_extended_info.clone().unwrap_or_default()
        };
        seen_calls.push(format!(
            "base: {:?}, reset to the new run: {}; new: {:?}, original start is the base's: \
             {}, last reset set: {}",
            base_info
                .workflow_execution_info
                .as_ref()
                .map(|i| i.status()),
            extended(&base_info).reset_run_id == new,
            new_info
                .workflow_execution_info
                .as_ref()
                .map(|i| i.status()),
            extended(&new_info).original_start_time
                == base_info
                    .workflow_execution_info
                    .as_ref()
                    .and_then(|i| i.start_time),
            extended(&new_info).last_reset_time.is_some(),
        ));
        seen_calls.join("\n").replace(&id, "{id}")
    })
    .await;
}

#[tokio::test]
#[allow(deprecated)] // `reset_reapply_type`, which clients still send
async fn a_closed_workflow_resets_to_a_task_not_yet_started() {
    same_on_both(async |server: &mut Server| {
        let id = unique_task_queue("reset-closed");
        let queue = unique_task_queue("reset-closed");
        let base = server.start(&id, &queue).await;
        server.complete_task(&queue, Vec::new()).await;
        signal(server, &id, "s1").await;
        server.complete_task(&queue, vec![completion("done")]).await;
        // Before the first task started: the reset starts it, then fails it.
        let first = reset(server, &id, &base, 3, |_| {})
            .await
            .expect("the reset is taken");
        // Again, reapplying nothing: the first reset's run, open, is terminated.
        let second = reset(server, &id, &base, 3, |r| {
            r.reset_reapply_type =
                temporalio_protos::temporal::api::enums::v1::ResetReapplyType::None as i32;
        })
        .await
        .expect("the reset is taken");
        let runs = [
            (base.as_str(), "base"),
            (first.as_str(), "first"),
            (second.as_str(), "second"),
        ];
        let mut seen_calls = Vec::new();
        for (run, name) in runs {
            let history = server.history(&id, run).await;
            seen_calls.push(format!("{name}:\n{}", reset_history(&history, &runs)));
        }
        let current = server.describe(&id, "").await;
        seen_calls.push(format!(
            "current is the second: {}",
            current
                .workflow_execution_info
                .and_then(|i| i.execution)
                .is_some_and(|e| e.run_id == second)
        ));
        seen_calls.join("\n")
    })
    .await;
}

#[tokio::test]
async fn a_reset_run_hears_of_the_child_its_prefix_started() {
    same_on_both(async |server: &mut Server| {
        let id = unique_task_queue("reset-parent");
        let queue = unique_task_queue("reset-parent");
        let child_id = format!("{id}-child");
        let child_queue = unique_task_queue("reset-child");
        let base = server.start(&id, &queue).await;
        // 1-7: the parent starts a child; 8-9: its next task.
        server
            .complete_task(&queue, vec![start_child(&child_id, &child_queue)])
            .await;
        server.complete_task(&queue, Vec::new()).await;
        let new = reset(server, &id, &base, 9, |_| {})
            .await
            .expect("the reset is taken");
        // The child, untouched by the reset, completes: the new run hears of it.
        server
            .complete_task(&child_queue, vec![completion("child done")])
            .await;
        let runs = [(base.as_str(), "base"), (new.as_str(), "new")];
        // Temporal delivers the child's outcome a moment later.
        let mut new_history = Vec::new();
        for _ in 0..50 {
            new_history = server.history(&id, &new).await;
            let heard = new_history
                .iter()
                .any(|e| e.event_type() == EventType::ChildWorkflowExecutionCompleted);
            if heard {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            new_history
                .iter()
                .any(|e| e.event_type() == EventType::ChildWorkflowExecutionCompleted),
            "the new run hears of its child"
        );
        let child = server.describe(&child_id, "").await;
        let info = child.workflow_execution_info.unwrap_or_default();
        format!(
            "base:\n{}\nnew:\n{}\nchild: {:?}, its parent named {:?}",
            reset_history(&server.history(&id, &base).await, &runs),
            reset_history(&new_history, &runs),
            info.status(),
            info.parent_execution.map(|p| runs
                .iter()
                .find(|(run, _)| *run == p.run_id)
                .map(|(_, name)| *name)),
        )
        .replace(&id, "{id}")
    })
    .await;
}

#[tokio::test]
async fn task_failures_by_id_calls_sticky_resets_and_deletes_answer_as_on_temporal() {
    same_on_both(async |server: &mut Server| {
        let id = unique_task_queue("by-id");
        let queue = unique_task_queue("by-id");
        let run_id = server.start(&id, &queue).await;
        let mut seen_calls = Vec::new();
        // A worker fails the first workflow task: the failure and its cause are written.
        let task = server.take_task(&queue).await;
        let answer = server
            .client
            .respond_workflow_task_failed(service::RespondWorkflowTaskFailedRequest {
                namespace: server.namespace.clone(),
                task_token: task.task_token,
                cause: temporalio_protos::temporal::api::enums::v1::WorkflowTaskFailedCause::WorkflowWorkerUnhandledFailure as i32,
                failure: Some(temporalio_protos::temporal::api::failure::v1::Failure {
                    message: "the worker broke".into(),
                    ..Default::default()
                }),
                identity: "temporal-api-test".into(),
                ..Default::default()
            })
            .await;
        seen_calls.push(format!("task failed: {}", answered(answer)));
        // Its retry schedules an activity, which is heartbeaten and cancelled by id.
        let activity = activity_a(&queue);
        server
            .complete_task(&queue, vec![Cmd::ScheduleActivityTaskCommandAttributes(activity)])
            .await;
        let started = server.take_activity(&queue).await;
        seen_calls.push(format!("activity {} attempt {}", started.activity_id, started.attempt));
        let heartbeat = server
            .client
            .record_activity_task_heartbeat_by_id(service::RecordActivityTaskHeartbeatByIdRequest {
                namespace: server.namespace.clone(),
                workflow_id: id.clone(),
                activity_id: "a".into(),
                details: payloads("half way"),
                identity: "temporal-api-test".into(),
                ..Default::default()
            })
            .await
            .map(|r| r.into_inner().cancel_requested);
        seen_calls.push(format!("heartbeat by id: {:?}", heartbeat.map_err(|s| seen(&s))));
        let unknown = server
            .client
            .record_activity_task_heartbeat_by_id(service::RecordActivityTaskHeartbeatByIdRequest {
                namespace: server.namespace.clone(),
                workflow_id: id.clone(),
                activity_id: "no-such-activity".into(),
                identity: "temporal-api-test".into(),
                ..Default::default()
            })
            .await;
        seen_calls.push(format!("heartbeat of an unknown activity: {}", answered(unknown)));
        let cancelled = server
            .client
            .respond_activity_task_canceled_by_id(service::RespondActivityTaskCanceledByIdRequest {
                namespace: server.namespace.clone(),
                workflow_id: id.clone(),
                activity_id: "a".into(),
                details: payloads("stopped"),
                identity: "temporal-api-test".into(),
                ..Default::default()
            })
            .await;
        seen_calls.push(format!("cancelled by id: {}", answered(cancelled)));
        let reset_sticky = server
            .client
            .reset_sticky_task_queue(service::ResetStickyTaskQueueRequest {
                namespace: server.namespace.clone(),
                execution: execution(&id, &run_id),
            })
            .await;
        seen_calls.push(format!("sticky queue reset: {}", answered(reset_sticky)));
        let history = server.history(&id, &run_id).await;
        seen_calls.push(
            history
                .iter()
                .map(|e| {
                    let detail = match &e.attributes {
                        Some(Event::WorkflowTaskFailedEventAttributes(a)) => format!(
                            "{:?} {:?} by {}",
                            a.cause(),
                            a.failure.as_ref().map(|f| &f.message),
                            a.identity
                        ),
                        Some(Event::ActivityTaskCanceledEventAttributes(a)) => {
                            format!("{:?} by {}", a.details, a.identity)
                        }
                        Some(Event::WorkflowTaskScheduledEventAttributes(a)) => {
                            format!("attempt {}", a.attempt)
                        }
                        _ => String::new(),
                    };
                    format!("{} {:?} {detail}", e.event_id, e.event_type())
                })
                .collect::<Vec<_>>()
                .join("\n"),
        );
        // Deleted, the run is gone; deleting it again is NOT_FOUND.
        for _ in 0..2 {
            let deleted = server
                .client
                .delete_workflow_execution(service::DeleteWorkflowExecutionRequest {
                    namespace: server.namespace.clone(),
                    workflow_execution: execution(&id, &run_id),
                })
                .await;
            seen_calls.push(format!("delete: {}", answered(deleted)));
            // Temporal deletes in the background.
            for _ in 0..50 {
                let described = server
                    .client
                    .describe_workflow_execution(service::DescribeWorkflowExecutionRequest {
                        namespace: server.namespace.clone(),
                        execution: execution(&id, &run_id),
                    })
                    .await;
                if described.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        seen_calls.join("\n").replace(&id, "{id}").replace(&run_id, "{run}")
    })
    .await;
}

#[tokio::test]
async fn a_parent_cancelled_right_after_starting_a_child_still_times_out() {
    same_on_both(async |server: &mut Server| {
        let id = unique_task_queue("cancelled-parent");
        let queue = unique_task_queue("cancelled-parent");
        let child_id = format!("{id}-child");
        let run_id = server
            .start_with(&id, &queue, |r| {
                r.workflow_execution_timeout = Some(prost_wkt_types::Duration {
                    seconds: 2,
                    nanos: 0,
                });
            })
            .await;
        // The child goes to a queue no worker polls; the parent is asked to cancel at
        // once, and no worker answers it again.
        server
            .complete_task(
                &queue,
                vec![start_child(&child_id, &unique_task_queue("unpolled"))],
            )
            .await;
        server
            .client
            .request_cancel_workflow_execution(service::RequestCancelWorkflowExecutionRequest {
                namespace: server.namespace.clone(),
                workflow_execution: execution(&id, &run_id),
                identity: "temporal-api-test".into(),
                request_id: uuid::Uuid::new_v4().to_string(),
                reason: "stop".into(),
                ..Default::default()
            })
            .await
            .expect("the cancel request is taken");
        let mut parent = None;
        for _ in 0..100 {
            let info = server
                .describe(&id, &run_id)
                .await
                .workflow_execution_info
                .unwrap_or_default();
            if info.close_time.is_some() {
                parent = Some(info.status());
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut child = None;
        for _ in 0..50 {
            let info = server
                .describe(&child_id, "")
                .await
                .workflow_execution_info
                .unwrap_or_default();
            child = Some(info.status());
            if info.close_time.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        use temporalio_protos::temporal::api::enums::v1::WorkflowExecutionStatus as Status;
        assert_eq!(
            parent,
            Some(Status::TimedOut),
            "the parent closes at its timeout"
        );
        // Temporal starts the child asynchronously: the cancel request may come before
        // or after its started event. Compared: which events, and the last.
        let history = server.history(&id, &run_id).await;
        let last = history.last().map(|e| e.event_type());
        let mut events: Vec<String> = history
            .iter()
            .map(|e| format!("{:?}", e.event_type()))
            .collect();
        events.sort();
        format!("parent: {parent:?}, child: {child:?}, last {last:?}\n{events:?}")
    })
    .await;
}
