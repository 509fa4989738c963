//! The service end to end in-process: RPCs straight into the handlers, no network.

mod bench;
mod hostile;
mod limits;
mod properties;
mod schedules;

use std::{sync::Arc, time::Duration};

use tokio::time::Instant;
use tonic::Request;

use super::{
    long_poll::{parse_grpc_timeout, DEADLINE_MARGIN},
    Service,
};
use crate::{
    proto::{
        self,
        command::{command::Attributes as Cmd, Command},
        common::WorkflowExecution,
        enums::{EventType, TaskQueueKind},
        history::history_event::Attributes,
        service::*,
        WorkflowService,
    },
    store::Store,
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
    start_with(svc, id, None).await
}

/// [`start`] with `input`.
async fn start_with(svc: &Service, id: &str, input: Option<proto::common::Payloads>) -> String {
    svc.start_workflow_execution(Request::new(StartWorkflowExecutionRequest {
        namespace: "default".to_owned(),
        workflow_id: id.to_owned(),
        workflow_type: Some(proto::common::WorkflowType {
            name: "W".to_owned(),
        }),
        task_queue: Some(proto::taskqueue::TaskQueue {
            name: "q".to_owned(),
            ..Default::default()
        }),
        input,
        ..Default::default()
    }))
    .await
    .unwrap()
    .into_inner()
    .run_id
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
        namespace: "default".to_owned(),
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
    let timers = tokio::spawn(crate::timer_service::run(svc.store.clone()));
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
    // A signal while attempt 3 waits is written; the task then starts as a new one, as
    // on Temporal: attempt 1, its events written after the signal.
    signal_workflow(&svc, "transient").await;
    let third = take(&svc, "q", false, long).await;
    assert_eq!(third.attempt, 1);
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
    let Some(Attributes::WorkflowTaskScheduledEventAttributes(a)) = &events[5].attributes else {
        panic!("{:?}", events[5]);
    };
    assert_eq!(a.attempt, 1);
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

/// A service on a database file of its own, removed when the guard drops.
fn durable_service(name: &str) -> (Service, TempDb) {
    durable_service_with(name, crate::run::Config::default())
}

/// [`durable_service`] with `config`.
fn durable_service_with(name: &str, config: crate::run::Config) -> (Service, TempDb) {
    let db = TempDb(std::env::temp_dir().join(format!("capstan-{name}-{}.db", std::process::id())));
    db.remove();
    let store = Store::open(
        &["default".to_owned()],
        crate::clock::Clock::Real,
        config,
        Some(&db.0),
    )
    .unwrap();
    let svc = Service {
        store: Arc::new(store),
    };
    (svc, db)
}

struct TempDb(std::path::PathBuf);

impl TempDb {
    fn remove(&self) {
        for suffix in ["", "-wal", "-shm", "-lock"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        self.remove();
    }
}

#[cfg(feature = "simulation")]
#[tokio::test]
async fn a_workflow_task_leaves_only_once_its_dispatch_is_written() {
    let (svc, _db) = durable_service("dispatch-written");
    start(&svc, "w").await;
    // The disk fails: a task taken now could be lost with a crash, and its events' ids
    // given to others, which the worker's cache of the run would never see.
    svc.store.fail_writes(Some("disk I/O error".to_owned()));
    let held = svc
        .poll_workflow_task_queue(poll("q", false, Duration::from_millis(500)))
        .await
        .unwrap()
        .into_inner();
    assert!(
        held.task_token.is_empty(),
        "a workflow task left before its dispatch was written"
    );
    svc.store.fail_writes(None);
    // What the held poll took is handed out again once its task times out; here the
    // dispatch is on disk now, and the run's history says the task started.
    let events = history(&svc, "w").await;
    assert_eq!(
        types(&events),
        [
            EventType::WorkflowExecutionStarted,
            EventType::WorkflowTaskScheduled,
            EventType::WorkflowTaskStarted
        ]
    );
}

/// A query of workflow `id` whose caller waits at most `wait`.
fn query_request(id: &str, wait: Duration) -> Request<QueryWorkflowRequest> {
    let mut request = Request::new(QueryWorkflowRequest {
        namespace: "default".to_owned(),
        execution: Some(WorkflowExecution {
            workflow_id: id.to_owned(),
            run_id: String::new(),
        }),
        query: Some(proto::query::WorkflowQuery {
            query_type: "state".to_owned(),
            ..Default::default()
        }),
        ..Default::default()
    });
    request.set_timeout(wait + DEADLINE_MARGIN);
    request
}

/// A query that carries the run's history to a worker without it cached leaves only once
/// that history is on disk: the worker caches the run from it, and events lost with a
/// crash would be replaced by others under the same ids (soak seed 1000621).
#[cfg(feature = "simulation")]
#[tokio::test]
async fn a_query_carrying_history_leaves_only_once_that_history_is_written() {
    let (svc, _db) = durable_service("query-history-written");
    start(&svc, "w").await;
    let task = take(&svc, "q", false, Duration::from_secs(5)).await;
    // The task's completion is staged, then the disk fails before it is written: the
    // worker is told it is kept in memory.
    svc.store.slow_writes(Duration::from_millis(300));
    let mut completed = Box::pin(svc.respond_workflow_task_completed(Request::new(
        complete_sticky(task.task_token, "gone", Duration::from_secs(10)),
    )));
    assert!(tokio::time::timeout(Duration::ZERO, &mut completed)
        .await
        .is_err());
    svc.store.fail_writes(Some("disk I/O error".to_owned()));
    let kept = completed.await.unwrap_err();
    assert_eq!(kept.code(), tonic::Code::Unavailable, "{kept:?}");
    // A query now goes to the normal queue (no worker polls the sticky one), with the
    // whole history: the completion's events are not on disk yet.
    let asked = tokio::spawn({
        let svc = Service {
            store: svc.store.clone(),
        };
        async move {
            svc.query_workflow(query_request("w", Duration::from_secs(3)))
                .await
        }
    });
    let held = take(&svc, "q", false, Duration::from_millis(500)).await;
    assert!(
        held.query.is_none(),
        "a query left with history that is not on disk: {held:?}"
    );
    svc.store.fail_writes(None);
    let _ = asked.await;
}

/// A query whose caller hangs up at any point leaves the engine, even while the
/// transaction that queued it waits for the disk (CI seed 68: one stayed for good).
#[cfg(feature = "simulation")]
#[tokio::test]
async fn a_query_whose_caller_hangs_up_leaves_the_engine() {
    let (svc, _db) = durable_service("query-hang-up");
    start(&svc, "w").await;
    svc.store.slow_writes(Duration::from_millis(50));
    let query = || svc.query_workflow(query_request("w", Duration::from_secs(60)));
    for _ in 0..3 {
        // A signal staged, not yet on disk: the query's transaction waits for it.
        let mut signal = Box::pin(signal_workflow(&svc, "w"));
        let signalled = tokio::time::timeout(Duration::ZERO, &mut signal).await;
        assert!(signalled.is_err(), "the signal was written at once");
        let mut asked = Box::pin(query());
        let answered = tokio::time::timeout(Duration::ZERO, &mut asked).await;
        assert!(
            answered.is_err(),
            "no worker polls: the query cannot be answered"
        );
        drop(asked);
        signal.await;
        let (queries, queued) = svc
            .store
            .apply(|state| (state.queries.len(), state.queues.tasks().0))
            .0;
        assert_eq!((queries, queued), (0, 1), "the query stayed in the engine");
    }
}

#[tokio::test]
async fn a_task_queue_reports_its_pollers_and_backlog() {
    let svc = service();
    let describe = async |svc: &Service| {
        let answer = WorkflowService::describe_task_queue(
            svc,
            Request::new(DescribeTaskQueueRequest {
                namespace: "default".to_owned(),
                task_queue: Some(proto::taskqueue::TaskQueue {
                    name: "q".to_owned(),
                    ..Default::default()
                }),
                report_stats: true,
                ..Default::default()
            }),
        )
        .await
        .unwrap()
        .into_inner();
        let pollers: Vec<String> = answer.pollers.into_iter().map(|p| p.identity).collect();
        (pollers, answer.stats.map(|s| s.approximate_backlog_count))
    };
    start(&svc, "w").await;
    assert_eq!(describe(&svc).await, (vec![], Some(1)));
    take(&svc, "q", false, Duration::from_secs(5)).await;
    assert_eq!(
        describe(&svc).await,
        (vec!["test-worker".to_owned()], Some(0))
    );
}
