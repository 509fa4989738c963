//! The engine's limits, as Temporal enforces them: payloads over the blob limit refused
//! (from clients) or failing what carried them (from workers), histories past their limits
//! terminated, pending work and updates bounded. Small configured limits keep them fast;
//! one test runs at the default blob limit.

use std::{sync::Arc, time::Duration};

use tonic::{Code, Request};

use super::{history, hostile::starting, service, start, start_with, take};
use crate::{
    clock::Clock,
    limits::Limits,
    proto::{
        self,
        command::{command::Attributes as Cmd, *},
        common::{ActivityType, Memo, Payload, Payloads, WorkflowExecution, WorkflowType},
        enums::{CommandType, EventType, WorkflowTaskFailedCause},
        failure::failure::FailureInfo,
        history::history_event::Attributes,
        service::*,
        taskqueue::TaskQueue,
        update, WorkflowService,
    },
    run::Config,
    service::{long_poll::DEADLINE_MARGIN, Service},
    store::Store,
};

/// A service whose limits are `limits`.
fn service_with(limits: Limits) -> Service {
    let store = Store::open(
        &["default".to_owned()],
        Clock::Real,
        Config { limits },
        None,
    )
    .unwrap();
    Service {
        store: Arc::new(store),
    }
}

/// Small limits: 1,000-byte blobs.
fn small() -> Limits {
    Limits {
        blob_size_error: 1_000,
        blob_size_warn: 500,
        ..Limits::default()
    }
}

/// Payloads of one payload of `bytes` bytes of data.
fn payloads(bytes: usize) -> Option<Payloads> {
    Some(Payloads {
        payloads: vec![Payload {
            data: vec![7; bytes],
            ..Default::default()
        }],
    })
}

fn execution(id: &str) -> Option<WorkflowExecution> {
    Some(WorkflowExecution {
        workflow_id: id.to_owned(),
        run_id: String::new(),
    })
}

fn signal(id: &str, input: Option<Payloads>) -> Request<SignalWorkflowExecutionRequest> {
    Request::new(SignalWorkflowExecutionRequest {
        namespace: "default".to_owned(),
        workflow_execution: execution(id),
        signal_name: "s".to_owned(),
        input,
        ..Default::default()
    })
}

fn schedule(id: &str, input: Option<Payloads>) -> Command {
    Command {
        command_type: CommandType::ScheduleActivityTask as i32,
        attributes: Some(Cmd::ScheduleActivityTaskCommandAttributes(
            ScheduleActivityTaskCommandAttributes {
                activity_id: id.to_owned(),
                activity_type: Some(ActivityType { name: "a".into() }),
                task_queue: Some(TaskQueue {
                    name: "q".into(),
                    ..Default::default()
                }),
                start_to_close_timeout: Some(proto::proto_duration(Duration::from_secs(30))),
                input,
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

/// Completes the task `token` with `commands`.
async fn complete(
    svc: &Service,
    token: Vec<u8>,
    commands: Vec<Command>,
) -> Result<RespondWorkflowTaskCompletedResponse, tonic::Status> {
    svc.respond_workflow_task_completed(Request::new(RespondWorkflowTaskCompletedRequest {
        namespace: "default".to_owned(),
        task_token: token,
        identity: "worker".to_owned(),
        commands,
        ..Default::default()
    }))
    .await
    .map(tonic::Response::into_inner)
}

fn types(events: &[proto::history::HistoryEvent]) -> Vec<EventType> {
    events.iter().map(|e| e.event_type()).collect()
}

fn terminated(events: &[proto::history::HistoryEvent]) -> (String, String) {
    match events.last().and_then(|e| e.attributes.clone()) {
        Some(Attributes::WorkflowExecutionTerminatedEventAttributes(a)) => (a.reason, a.identity),
        other => panic!("not terminated: {other:?}"),
    }
}

#[tokio::test]
async fn a_signal_over_the_default_blob_limit_is_refused_and_changes_nothing() {
    let svc = service();
    start(&svc, "big").await;
    let before = history(&svc, "big").await;
    // 2 MiB of data: its encoding is a few bytes past 2 MiB.
    let status = svc
        .signal_workflow_execution(signal("big", payloads(2 << 20)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .starts_with("Blob data size exceeds limit.")
            && status
                .message()
                .contains("SignalWorkflowExecutionRequest.input")
            && status.message().contains("the limit is 2097152 bytes"),
        "{status:?}"
    );
    assert_eq!(history(&svc, "big").await, before);
    // Just under the limit is taken.
    svc.signal_workflow_execution(signal("big", payloads((2 << 20) - 64)))
        .await
        .unwrap();
    assert_eq!(history(&svc, "big").await.len(), before.len() + 1);
}

#[tokio::test]
async fn starts_and_updates_over_the_blob_limit_are_refused_naming_the_field() {
    let svc = service_with(small());
    let refused = |status: tonic::Status, refusal: &str, field: &str| {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(
            status.message().starts_with(refusal) && status.message().contains(field),
            "{status:?}"
        );
    };
    let status = svc
        .start_workflow_execution(Request::new(StartWorkflowExecutionRequest {
            input: payloads(2_000),
            ..starting("a")
        }))
        .await
        .unwrap_err();
    refused(
        status,
        "Blob data size exceeds limit.",
        "StartWorkflowExecutionRequest.input",
    );
    let memo = Memo {
        fields: [("m".to_owned(), payloads(2_000).unwrap().payloads.remove(0))].into(),
    };
    let status = svc
        .start_workflow_execution(Request::new(StartWorkflowExecutionRequest {
            memo: Some(memo),
            ..starting("a")
        }))
        .await
        .unwrap_err();
    refused(
        status,
        "Memo size exceeds limit.",
        "StartWorkflowExecutionRequest.memo",
    );
    let status = svc
        .signal_with_start_workflow_execution(Request::new(
            SignalWithStartWorkflowExecutionRequest {
                namespace: "default".to_owned(),
                workflow_id: "a".to_owned(),
                workflow_type: Some(WorkflowType { name: "W".into() }),
                task_queue: Some(TaskQueue {
                    name: "q".into(),
                    ..Default::default()
                }),
                signal_name: "s".to_owned(),
                signal_input: payloads(2_000),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    refused(
        status,
        "Blob data size exceeds limit.",
        "SignalWithStartWorkflowExecutionRequest.signal_input",
    );
    // None of them started a run.
    let status = svc
        .describe_workflow_execution(Request::new(DescribeWorkflowExecutionRequest {
            namespace: "default".to_owned(),
            execution: execution("a"),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    start(&svc, "u").await;
    let status = svc
        .update_workflow_execution(Request::new(update_request("u", "1", payloads(2_000))))
        .await
        .unwrap_err();
    refused(
        status,
        "Blob data size exceeds limit.",
        "UpdateWorkflowExecutionRequest.request.input.args",
    );
}

fn update_request(
    id: &str,
    update_id: &str,
    args: Option<Payloads>,
) -> UpdateWorkflowExecutionRequest {
    UpdateWorkflowExecutionRequest {
        namespace: "default".to_owned(),
        workflow_execution: execution(id),
        request: Some(update::Request {
            meta: Some(update::Meta {
                update_id: update_id.to_owned(),
                ..Default::default()
            }),
            input: Some(update::Input {
                name: "u".to_owned(),
                args,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Sends update `update_id` to `id`, waiting only a moment (it stays admitted).
async fn send_update(svc: &Service, id: &str, update_id: &str) -> Result<(), tonic::Status> {
    let mut request = Request::new(update_request(id, update_id, None));
    request.set_timeout(Duration::from_millis(20) + DEADLINE_MARGIN);
    svc.update_workflow_execution(request).await.map(drop)
}

#[tokio::test]
async fn the_eleventh_update_in_flight_is_refused() {
    let svc = service();
    start(&svc, "u").await;
    for n in 0..10 {
        send_update(&svc, "u", &n.to_string()).await.unwrap();
    }
    let status = send_update(&svc, "u", "10").await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(
        status.message(),
        "limit on number of concurrent in-flight updates has been reached (10)"
    );
    // An update already admitted is the same update, not a new one.
    send_update(&svc, "u", "3").await.unwrap();
}

#[tokio::test]
async fn updates_past_the_total_limit_are_refused() {
    let svc = service_with(Limits {
        total_updates: 3,
        ..Limits::default()
    });
    start(&svc, "u").await;
    for n in 0..3 {
        send_update(&svc, "u", &n.to_string()).await.unwrap();
    }
    let status = send_update(&svc, "u", "3").await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(
        status.message(),
        "limit on number of total updates has been reached (3)"
    );
}

#[tokio::test]
async fn a_command_over_the_blob_limit_terminates_the_run_as_temporal_does() {
    let svc = service_with(small());
    start(&svc, "cmd").await;
    let task = take(&svc, "q", false, Duration::from_secs(5)).await;
    let status = complete(&svc, task.task_token, vec![schedule("1", payloads(2_000))])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let events = history(&svc, "cmd").await;
    assert_eq!(
        types(&events)[3..],
        [
            EventType::WorkflowTaskFailed,
            EventType::WorkflowExecutionTerminated
        ]
    );
    let Some(Attributes::WorkflowTaskFailedEventAttributes(failed)) = &events[3].attributes else {
        panic!("{:?}", events[3]);
    };
    assert_eq!(
        failed.cause,
        WorkflowTaskFailedCause::BadScheduleActivityAttributes as i32
    );
    assert_eq!(
        terminated(&events),
        (
            "WORKFLOW_TASK_FAILED_CAUSE_BAD_SCHEDULE_ACTIVITY_ATTRIBUTES: \
             ScheduleActivityTaskCommandAttributes.Input exceeds size limit."
                .to_owned(),
            "history-service".to_owned()
        )
    );
}

#[tokio::test]
async fn pending_activities_past_the_limit_fail_the_task_with_temporals_cause() {
    let svc = service_with(Limits {
        pending_activities: 2,
        ..Limits::default()
    });
    start(&svc, "many").await;
    let task = take(&svc, "q", false, Duration::from_secs(5)).await;
    let commands = vec![
        schedule("1", None),
        schedule("2", None),
        schedule("3", None),
    ];
    let status = complete(&svc, task.task_token, commands).await.unwrap_err();
    assert_eq!(
        status.message(),
        "the number of pending activities, 2, has reached the per-workflow limit of 2"
    );
    let events = history(&svc, "many").await;
    assert_eq!(types(&events).last(), Some(&EventType::WorkflowTaskFailed));
    let Some(Attributes::WorkflowTaskFailedEventAttributes(failed)) = &events[3].attributes else {
        panic!("{:?}", events[3]);
    };
    assert_eq!(
        failed.cause,
        WorkflowTaskFailedCause::PendingActivitiesLimitExceeded as i32
    );
    // Two fit; the run goes on.
    let task = take(&svc, "q", false, Duration::from_secs(5)).await;
    complete(
        &svc,
        task.task_token,
        vec![schedule("1", None), schedule("2", None)],
    )
    .await
    .unwrap();
    let task_again = history(&svc, "many").await;
    assert_eq!(
        types(&task_again)
            .iter()
            .filter(|t| **t == EventType::ActivityTaskScheduled)
            .count(),
        2
    );
}

#[tokio::test]
async fn a_history_past_the_count_limit_is_terminated_and_stays_readable() {
    let svc = service_with(Limits {
        history_count_error: 10,
        ..Limits::default()
    });
    start(&svc, "long").await;
    // Started and a scheduled task: 2 events; each signal adds one.
    for _ in 0..8 {
        svc.signal_workflow_execution(signal("long", None))
            .await
            .unwrap();
    }
    assert_eq!(history(&svc, "long").await.len(), 10);
    // The 11th event is past the limit: the run is terminated after it.
    svc.signal_workflow_execution(signal("long", None))
        .await
        .unwrap();
    let events = history(&svc, "long").await;
    assert_eq!(events.len(), 12);
    assert_eq!(
        terminated(&events),
        (
            "Workflow history count exceeds limit.".to_owned(),
            "history-service".to_owned()
        )
    );
    let status = svc
        .signal_workflow_execution(signal("long", None))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
}

#[tokio::test]
async fn a_history_past_the_size_limit_is_terminated() {
    let svc = service_with(Limits {
        history_size_error: 5_000,
        ..small()
    });
    start(&svc, "wide").await;
    // Six signals of ~920 encoded bytes each pass 5,000 bytes.
    for _ in 0..6 {
        svc.signal_workflow_execution(signal("wide", payloads(900)))
            .await
            .unwrap();
    }
    let events = history(&svc, "wide").await;
    assert_eq!(
        terminated(&events).0,
        "Workflow history size exceeds limit."
    );
}

#[tokio::test]
async fn activity_answers_over_the_blob_limit_fail_the_activity() {
    let svc = service_with(small());
    start(&svc, "act").await;
    let task = take(&svc, "q", false, Duration::from_secs(5)).await;
    complete(
        &svc,
        task.task_token,
        vec![schedule("result", None), schedule("beat", None)],
    )
    .await
    .unwrap();
    let poll_activity = || {
        let mut request = Request::new(PollActivityTaskQueueRequest {
            namespace: "default".to_owned(),
            task_queue: Some(TaskQueue {
                name: "q".into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        request.set_timeout(Duration::from_secs(5) + DEADLINE_MARGIN);
        svc.poll_activity_task_queue(request)
    };
    let first = poll_activity().await.unwrap().into_inner();
    let second = poll_activity().await.unwrap().into_inner();
    svc.respond_activity_task_completed(Request::new(RespondActivityTaskCompletedRequest {
        namespace: "default".to_owned(),
        task_token: first.task_token,
        result: payloads(2_000),
        ..Default::default()
    }))
    .await
    .unwrap();
    let beat = svc
        .record_activity_task_heartbeat(Request::new(RecordActivityTaskHeartbeatRequest {
            namespace: "default".to_owned(),
            task_token: second.task_token,
            details: payloads(2_000),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(beat.cancel_requested);
    let failures: Vec<(String, bool)> = history(&svc, "act")
        .await
        .into_iter()
        .filter_map(|e| match e.attributes {
            Some(Attributes::ActivityTaskFailedEventAttributes(a)) => {
                let failure = a.failure.unwrap();
                let non_retryable = matches!(
                    failure.failure_info,
                    Some(FailureInfo::ServerFailureInfo(info)) if info.non_retryable
                );
                Some((failure.message, non_retryable))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        failures,
        [
            ("Complete result exceeds size limit.".to_owned(), true),
            ("Heartbeat details exceed size limit.".to_owned(), true)
        ]
    );
}

#[tokio::test]
async fn history_pages_fit_in_a_message_and_tasks_report_the_history_size() {
    let svc = service_with(Limits {
        grpc_message_size: 64 * 1024 + 2_000,
        history_size_suggest_continue_as_new: 1_500,
        ..small()
    });
    start_with(&svc, "paged", payloads(900)).await;
    for _ in 0..3 {
        svc.signal_workflow_execution(signal("paged", payloads(900)))
            .await
            .unwrap();
    }
    // Pages of at most 2,000 bytes of events, each signal ~920 bytes.
    let mut token = Vec::new();
    let mut pages = Vec::new();
    loop {
        let page = svc
            .get_workflow_execution_history(Request::new(GetWorkflowExecutionHistoryRequest {
                namespace: "default".to_owned(),
                execution: execution("paged"),
                next_page_token: token,
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        pages.push(page.history.unwrap().events.len());
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(pages.iter().sum::<usize>(), 5);
    assert!(pages.len() >= 2, "{pages:?}");
    // The task started on that history carries its size, past the suggestion's 1,500.
    let task = take(&svc, "q", false, Duration::from_secs(5)).await;
    let started = task.history.unwrap().events.pop().unwrap();
    let Some(Attributes::WorkflowTaskStartedEventAttributes(a)) = started.attributes else {
        panic!("{started:?}");
    };
    assert!(a.history_size_bytes > 3_600, "{a:?}");
    assert!(a.suggest_continue_as_new);
}
