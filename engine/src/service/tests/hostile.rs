//! Hostile requests and worker answers: each is refused with a status naming the field,
//! or kept within the engine's bounds, and the engine (and its file) goes on serving.

use std::{path::PathBuf, sync::Arc, time::Duration};

use tonic::{Code, Request};

use super::{history, service, start, take};
use crate::{
    clock::Clock,
    proto::{
        self,
        command::{command::Attributes as Cmd, *},
        common::{ActivityType, RetryPolicy, WorkflowExecution, WorkflowType},
        enums::{EventType, WorkflowTaskFailedCause},
        failure::{failure::FailureInfo, ApplicationFailureInfo, Failure},
        history::history_event::Attributes,
        service::*,
        taskqueue::TaskQueue,
        WorkflowService,
    },
    run::Config,
    service::{long_poll::DEADLINE_MARGIN, Service},
    store::Store,
};

/// The longest `Duration` a client can send: 2^63 − 1 seconds.
fn absurd() -> Option<prost_wkt_types::Duration> {
    Some(prost_wkt_types::Duration {
        seconds: i64::MAX,
        nanos: 999_999_999,
    })
}

/// A start of workflow `id` of type `W` on queue `q`.
pub(super) fn starting(id: &str) -> StartWorkflowExecutionRequest {
    StartWorkflowExecutionRequest {
        namespace: "default".to_owned(),
        workflow_id: id.to_owned(),
        workflow_type: Some(WorkflowType { name: "W".into() }),
        task_queue: Some(TaskQueue {
            name: "q".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn absurd_start_options_are_refused_naming_the_field() {
    let svc = service();
    let cases: Vec<(&str, StartWorkflowExecutionRequest)> = vec![
        (
            "workflow_execution_timeout",
            StartWorkflowExecutionRequest {
                workflow_execution_timeout: absurd(),
                ..starting("a")
            },
        ),
        (
            "workflow_run_timeout",
            StartWorkflowExecutionRequest {
                workflow_run_timeout: absurd(),
                ..starting("a")
            },
        ),
        (
            "workflow_task_timeout",
            StartWorkflowExecutionRequest {
                workflow_task_timeout: Some(prost_wkt_types::Duration {
                    seconds: -5,
                    nanos: 0,
                }),
                ..starting("a")
            },
        ),
        (
            "workflow_start_delay",
            StartWorkflowExecutionRequest {
                workflow_start_delay: absurd(),
                ..starting("a")
            },
        ),
        (
            "retry_policy.backoff_coefficient",
            StartWorkflowExecutionRequest {
                retry_policy: Some(RetryPolicy {
                    backoff_coefficient: f64::INFINITY,
                    ..Default::default()
                }),
                ..starting("a")
            },
        ),
    ];
    for (field, request) in cases {
        let status = svc
            .start_workflow_execution(Request::new(request))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(status.message().contains(field), "{field}: {status:?}");
    }
    // Nothing was started.
    let status = svc
        .describe_workflow_execution(Request::new(DescribeWorkflowExecutionRequest {
            namespace: "default".into(),
            execution: Some(WorkflowExecution {
                workflow_id: "a".into(),
                run_id: String::new(),
            }),
        }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

/// A temporary database file, removed with its WAL files.
pub(super) struct TempDb(PathBuf);

impl TempDb {
    pub(super) fn new(name: &str) -> Self {
        let db = Self(
            std::env::temp_dir().join(format!("capstan-hostile-{name}-{}.db", std::process::id())),
        );
        db.remove();
        db
    }

    fn remove(&self) {
        for suffix in ["", "-wal", "-shm", "-lock"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.0.display()));
        }
    }

    pub(super) fn path(&self) -> &std::path::Path {
        &self.0
    }

    pub(super) fn service(&self) -> Service {
        let store = Store::open(
            &["default".to_owned()],
            Clock::Real,
            Config::default(),
            Some(&self.0),
        )
        .expect("the file opens");
        Service {
            store: Arc::new(store),
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        self.remove();
    }
}

pub(super) fn completion(
    token: Vec<u8>,
    commands: Vec<Cmd>,
) -> Request<RespondWorkflowTaskCompletedRequest> {
    Request::new(RespondWorkflowTaskCompletedRequest {
        namespace: "default".into(),
        task_token: token,
        commands: commands
            .into_iter()
            .map(|attributes| Command {
                attributes: Some(attributes),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    })
}

fn activity(retry_policy: Option<RetryPolicy>) -> Cmd {
    Cmd::ScheduleActivityTaskCommandAttributes(ScheduleActivityTaskCommandAttributes {
        activity_id: "a".into(),
        activity_type: Some(ActivityType { name: "a".into() }),
        start_to_close_timeout: Some(proto::proto_duration(Duration::from_secs(5))),
        retry_policy,
        ..Default::default()
    })
}

/// A failure nesting `depth` causes.
fn deep_failure(depth: usize) -> Failure {
    let mut failure = Failure {
        message: "root".into(),
        failure_info: Some(FailureInfo::ApplicationFailureInfo(
            ApplicationFailureInfo {
                non_retryable: true,
                ..Default::default()
            },
        )),
        ..Default::default()
    };
    for level in 1..depth {
        failure = Failure {
            message: format!("level {level}"),
            cause: Some(Box::new(failure)),
            failure_info: Some(FailureInfo::ApplicationFailureInfo(
                ApplicationFailureInfo {
                    non_retryable: true,
                    ..Default::default()
                },
            )),
            ..Default::default()
        };
    }
    failure
}

#[tokio::test]
async fn absurd_commands_and_deep_failures_leave_a_file_that_opens_again() {
    let db = TempDb::new("commands");
    let long = Duration::from_secs(5);
    {
        let svc = db.service();
        start(&svc, "absurd").await;
        let bad_commands: Vec<(Cmd, &str)> = vec![
            (
                Cmd::StartTimerCommandAttributes(StartTimerCommandAttributes {
                    timer_id: "t".into(),
                    start_to_fire_timeout: absurd(),
                }),
                "start_to_fire_timeout",
            ),
            (
                activity(Some(RetryPolicy {
                    backoff_coefficient: f64::INFINITY,
                    ..Default::default()
                })),
                "retry_policy.backoff_coefficient",
            ),
            (
                Cmd::ScheduleActivityTaskCommandAttributes(ScheduleActivityTaskCommandAttributes {
                    start_to_close_timeout: absurd(),
                    ..match activity(None) {
                        Cmd::ScheduleActivityTaskCommandAttributes(a) => a,
                        _ => unreachable!(),
                    }
                }),
                "start_to_close_timeout",
            ),
        ];
        for (bad, field) in bad_commands {
            let task = take(&svc, "q", false, long).await;
            let status = svc
                .respond_workflow_task_completed(completion(task.task_token, vec![bad]))
                .await
                .unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
            assert!(status.message().contains(field), "{field}: {status:?}");
        }
        // Only the first attempt's failure is written; the later attempts were transient.
        let causes: Vec<i32> = history(&svc, "absurd")
            .await
            .iter()
            .filter_map(|e| match &e.attributes {
                Some(Attributes::WorkflowTaskFailedEventAttributes(a)) => Some(a.cause),
                _ => None,
            })
            .collect();
        assert_eq!(
            causes,
            [WorkflowTaskFailedCause::BadStartTimerAttributes as i32]
        );
        // An activity whose failure nests 100 causes.
        let task = take(&svc, "q", false, long).await;
        svc.respond_workflow_task_completed(completion(task.task_token, vec![activity(None)]))
            .await
            .unwrap();
        let mut request = Request::new(PollActivityTaskQueueRequest {
            namespace: "default".into(),
            task_queue: Some(TaskQueue {
                name: "q".into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        request.set_timeout(long + DEADLINE_MARGIN);
        let attempt = svc
            .poll_activity_task_queue(request)
            .await
            .unwrap()
            .into_inner();
        svc.respond_activity_task_failed(Request::new(RespondActivityTaskFailedRequest {
            namespace: "default".into(),
            task_token: attempt.task_token,
            failure: Some(deep_failure(100)),
            ..Default::default()
        }))
        .await
        .unwrap();
        let events = history(&svc, "absurd").await;
        let failure = events
            .iter()
            .find_map(|e| match &e.attributes {
                Some(Attributes::ActivityTaskFailedEventAttributes(a)) => a.failure.clone(),
                _ => None,
            })
            .expect("the activity failed");
        let mut depth = 1;
        let mut at = &failure;
        while let Some(cause) = &at.cause {
            depth += 1;
            at = cause;
        }
        assert_eq!(depth, crate::validate::MAX_FAILURE_DEPTH);
        assert!(at.message.contains("deeper causes"), "{}", at.message);
        svc.store.close_db();
    }
    // The file opens, and the history reads back whole.
    let svc = db.service();
    let events = history(&svc, "absurd").await;
    assert!(events
        .iter()
        .any(|e| e.event_type() == EventType::ActivityTaskFailed));
    svc.store.close_db();
}

#[tokio::test]
async fn a_shutdown_naming_a_normal_queue_leaves_its_tasks_there() {
    let svc = service();
    start(&svc, "waits").await;
    // A buggy worker names the normal queue as its sticky one.
    super::shut_down(&svc, "q").await;
    let task = take(&svc, "q", false, Duration::from_secs(2)).await;
    assert!(
        !task.task_token.is_empty(),
        "the workflow task is still queued"
    );
}

#[tokio::test]
async fn queues_polled_once_are_not_remembered() {
    let svc = service();
    for i in 0..200 {
        let name = format!("sticky-{i}");
        let task = take(&svc, &name, true, Duration::ZERO).await;
        assert!(task.task_token.is_empty());
        if i % 2 == 0 {
            super::shut_down(&svc, &name).await;
        }
    }
    // (Sticky pollers are forgotten once idle for a grace period: matching's unit tests.)
    let queues = svc.store.apply(|state| state.queues.len()).0;
    assert_eq!(queues, 0, "empty queues are forgotten");
}

#[tokio::test]
async fn a_token_from_another_namespace_is_refused() {
    let svc = Service {
        store: Arc::new(Store::new(
            &["default".to_owned(), "other".to_owned()],
            Clock::Real,
        )),
    };
    start(&svc, "bound").await;
    let task = take(&svc, "q", false, Duration::from_secs(2)).await;
    let mut request = completion(task.task_token.clone(), Vec::new());
    request.get_mut().namespace = "other".into();
    let status = svc
        .respond_workflow_task_completed(request)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("different namespace"),
        "{status:?}"
    );
    // In its own namespace the token still works.
    svc.respond_workflow_task_completed(completion(task.task_token, Vec::new()))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_signal_retried_with_its_request_id_is_applied_once() {
    let svc = service();
    start(&svc, "retried").await;
    for request_id in ["a", "a", "b", ""] {
        svc.signal_workflow_execution(Request::new(SignalWorkflowExecutionRequest {
            namespace: "default".to_owned(),
            workflow_execution: Some(WorkflowExecution {
                workflow_id: "retried".to_owned(),
                run_id: String::new(),
            }),
            signal_name: "poke".to_owned(),
            request_id: request_id.to_owned(),
            ..Default::default()
        }))
        .await
        .unwrap();
    }
    let signals = history(&svc, "retried")
        .await
        .iter()
        .filter(|e| e.event_type() == EventType::WorkflowExecutionSignaled)
        .count();
    assert_eq!(signals, 3, "`a` twice counts once");
}

#[tokio::test]
async fn absurd_operator_requests_are_refused_naming_the_field() {
    use crate::proto::{activity::ActivityOptions, operator::*, OperatorService};
    let svc = service();
    start(&svc, "operated").await;
    let task = take(&svc, "q", false, Duration::from_secs(5)).await;
    svc.respond_workflow_task_completed(completion(task.task_token, vec![activity(None)]))
        .await
        .unwrap();
    let execution = Some(WorkflowExecution {
        workflow_id: "operated".into(),
        ..Default::default()
    });
    let refused = |status: tonic::Status, code: Code, field: &str| {
        assert_eq!(status.code(), code, "{status:?}");
        assert!(status.message().contains(field), "{field}: {status:?}");
    };
    let long = "x".repeat(2_000);
    let status = WorkflowService::pause_activity(
        &svc,
        Request::new(PauseActivityRequest {
            namespace: "default".into(),
            execution: execution.clone(),
            activity: Some(pause_activity_request::Activity::Id("a".into())),
            reason: long.clone(),
            ..Default::default()
        }),
    )
    .await
    .unwrap_err();
    refused(status, Code::InvalidArgument, "PauseActivityRequest.reason");
    let status = WorkflowService::unpause_activity(
        &svc,
        Request::new(UnpauseActivityRequest {
            namespace: "default".into(),
            execution: execution.clone(),
            activity: Some(unpause_activity_request::Activity::UnpauseAll(true)),
            jitter: absurd(),
            ..Default::default()
        }),
    )
    .await
    .unwrap_err();
    refused(status, Code::InvalidArgument, "jitter");
    let update = |options: ActivityOptions, paths: &[&str], restore: bool| {
        Request::new(UpdateActivityOptionsRequest {
            namespace: "default".into(),
            execution: execution.clone(),
            activity: Some(update_activity_options_request::Activity::Id("a".into())),
            activity_options: Some(options),
            update_mask: Some(prost_wkt_types::FieldMask {
                paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            }),
            restore_original: restore,
            ..Default::default()
        })
    };
    let cases = [
        (
            update(
                ActivityOptions {
                    start_to_close_timeout: absurd(),
                    ..Default::default()
                },
                &["start_to_close_timeout"],
                false,
            ),
            "start_to_close_timeout",
        ),
        (
            update(
                ActivityOptions {
                    heartbeat_timeout: Some(proto::proto_duration(Duration::from_secs(1))),
                    retry_policy: Some(RetryPolicy {
                        backoff_coefficient: f64::INFINITY,
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                // The first path is fine, the second is not: neither applies.
                &["heartbeat_timeout", "retry_policy.backoff_coefficient"],
                false,
            ),
            "backoff_coefficient",
        ),
        (update(Default::default(), &["input"], false), "`input`"),
        (
            update(Default::default(), &["task_queue.name"], false),
            "task_queue.name",
        ),
        (
            update(Default::default(), &[], false),
            "update_mask is not set",
        ),
        (
            update(Default::default(), &["heartbeat_timeout"], true),
            "restore_original cannot be combined",
        ),
    ];
    for (request, field) in cases {
        let status = WorkflowService::update_activity_options(&svc, request)
            .await
            .unwrap_err();
        refused(status, Code::InvalidArgument, field);
    }
    // Too many custom search attributes at once: none is added.
    let many = (0..101)
        .map(|i| {
            (
                format!("Attribute{i}"),
                proto::enums::IndexedValueType::Keyword as i32,
            )
        })
        .collect();
    let status = OperatorService::add_search_attributes(
        &svc,
        Request::new(AddSearchAttributesRequest {
            search_attributes: many,
            namespace: "default".into(),
        }),
    )
    .await
    .unwrap_err();
    refused(
        status,
        Code::InvalidArgument,
        "at most 100 custom search attributes",
    );
    let listed = OperatorService::list_search_attributes(
        &svc,
        Request::new(ListSearchAttributesRequest {
            namespace: "default".into(),
        }),
    )
    .await
    .unwrap()
    .into_inner();
    assert!(listed.custom_attributes.is_empty(), "{listed:?}");
    // The activity is as it was, and the engine serves on.
    let described = svc
        .describe_workflow_execution(Request::new(DescribeWorkflowExecutionRequest {
            namespace: "default".into(),
            execution,
        }))
        .await
        .unwrap()
        .into_inner();
    let pending = &described.pending_activities[0];
    assert!(!pending.paused);
    let options = pending.activity_options.as_ref().unwrap();
    assert_eq!(
        options.start_to_close_timeout,
        Some(proto::proto_duration(Duration::from_secs(5)))
    );
    assert_eq!(options.heartbeat_timeout, None);
}
