//! Differential tests: each pattern runs on the embedded engine and on the real Temporal
//! dev server, and the histories of every workflow it started must match, event by event,
//! in type and key attributes (activity and timer ids and types, signal, marker and child
//! workflow names, failure messages), with ids and times normalized away.
//!
//! Compared: every pattern whose history does not depend on timing. Not compared:
//! `cancellation`, `concurrent-timers`, `polling-frequent` and `parallel-activity` (when
//! the cancel, timer or heartbeat lands, and how parallel completions interleave with
//! workflow tasks, depend on the clock), `schedule` (ids carry the time), and `mtls`,
//! `custom-metrics` and `encryption` (they bring their own server or codec; their
//! histories are those of `activity-choice`'s kind), and `long-running-entity`: whether
//! its first update rides the first workflow task depends on timing; the engine's tests
//! check its one subtle point, that a rejected update leaves no workflow task in history
//! (Temporal's speculative task).

use capstan::{
    client::history::{Attributes, HistoryEvent},
    testing::{unique_task_queue, DevServer},
    Client,
};
use capstan_examples::{tour, worker};

/// One event as compared: its type and the attributes that must agree.
fn normalized(event: &HistoryEvent) -> String {
    let kind = event
        .event_type()
        .as_str_name()
        .trim_start_matches("EVENT_TYPE_");
    let key = match &event.attributes {
        Some(Attributes::WorkflowExecutionStartedEventAttributes(a)) => a
            .workflow_type
            .as_ref()
            .map(|t| t.name.clone())
            .unwrap_or_default(),
        Some(Attributes::ActivityTaskScheduledEventAttributes(a)) => format!(
            "{} {}",
            a.activity_id,
            a.activity_type
                .as_ref()
                .map(|t| t.name.as_str())
                .unwrap_or("")
        ),
        Some(Attributes::ActivityTaskFailedEventAttributes(a)) => a
            .failure
            .as_ref()
            .map(|f| f.message.clone())
            .unwrap_or_default(),
        Some(Attributes::WorkflowExecutionFailedEventAttributes(a)) => a
            .failure
            .as_ref()
            .map(|f| f.message.clone())
            .unwrap_or_default(),
        Some(Attributes::TimerStartedEventAttributes(a)) => format!(
            "{} {:?}",
            a.timer_id,
            a.start_to_fire_timeout.map(|d| (d.seconds, d.nanos))
        ),
        Some(Attributes::MarkerRecordedEventAttributes(a)) => a.marker_name.clone(),
        Some(Attributes::WorkflowExecutionSignaledEventAttributes(a)) => a.signal_name.clone(),
        Some(Attributes::StartChildWorkflowExecutionInitiatedEventAttributes(a)) => a
            .workflow_type
            .as_ref()
            .map(|t| t.name.clone())
            .unwrap_or_default(),
        Some(Attributes::WorkflowExecutionUpdateAcceptedEventAttributes(a)) => a
            .accepted_request
            .as_ref()
            .and_then(|r| r.input.as_ref())
            .map(|i| i.name.clone())
            .unwrap_or_default(),
        _ => String::new(),
    };
    format!("{kind} {key}").trim_end().to_owned()
}

/// Runs `pattern` against `address` and returns, per workflow it started (by id without
/// the run's suffix, in id order), the normalized history of its last run.
async fn histories(address: &str, pattern: &str) -> Vec<(String, Vec<String>)> {
    let client = Client::connect(address).await.unwrap();
    let queue = unique_task_queue("differential");
    let report = worker(&client, &queue)
        .run_until(tour::run(&client, &queue, pattern, &queue))
        .await
        .unwrap();
    assert!(report.ok, "{report:?}");
    let mut runs = client
        .list_workflows(&format!("TaskQueue = '{queue}'"))
        .await
        .unwrap();
    runs.sort_by(|a, b| a.workflow_id.cmp(&b.workflow_id));
    runs.dedup_by(|a, b| a.workflow_id == b.workflow_id);
    let mut all = Vec::new();
    for run in runs {
        let history = client
            .workflow_handle(&run.workflow_id)
            .history()
            .await
            .unwrap();
        let id = run.workflow_id.replace(&queue, "*");
        all.push((id, history.iter().map(normalized).collect()));
    }
    all
}

async fn compare(pattern: &str) {
    let server = DevServer::shared().await;
    let on_server = histories(&server.address(), pattern).await;
    let engine = capstan_engine::Engine::start(Default::default())
        .await
        .expect("the engine starts");
    let on_engine = histories(&engine.address(), pattern).await;
    engine.shutdown().await;
    assert!(!on_server.is_empty(), "{pattern} started no workflow");
    assert_eq!(
        on_engine, on_server,
        "{pattern}: the engine's histories (left) differ from the dev server's (right)"
    );
}

#[tokio::test]
async fn activity_choice() {
    compare("activity-choice").await;
}

#[tokio::test]
async fn child_workflow() {
    compare("child-workflow").await;
}

#[tokio::test]
async fn exceptions() {
    compare("exceptions").await;
}

#[tokio::test]
async fn local_activity() {
    compare("local-activity").await;
}

#[tokio::test]
async fn pydantic_converter() {
    compare("pydantic-converter").await;
}

#[tokio::test]
async fn continue_as_new() {
    compare("continue-as-new").await;
}

#[tokio::test]
async fn polling_infrequent() {
    compare("polling-infrequent").await;
}
