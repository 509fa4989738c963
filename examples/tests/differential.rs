//! Differential tests: each pattern runs on the embedded engine and on the real Temporal
//! dev server, and the histories of every workflow it started must match, event by event,
//! in type and key attributes (activity and timer ids and types, signal, marker and child
//! workflow names, failure messages), with ids and times normalized away.
//!
//! Compared event by event: every pattern whose history does not depend on timing.
//! Compared as what happened ([`what_happened`]: first and last events in place, the
//! others but workflow tasks' as a sorted list): `cancellation`, `concurrent-timers`,
//! `polling-frequent`, `parallel-activity` and `long-running-entity`, where when a cancel,
//! timer, heartbeat or update lands, and how parallel completions interleave with
//! workflow tasks, depend on the clock, and `schedule`, whose triggered run's id carries
//! the instant of the trigger ([`triggered_at_now`]). `encryption` and `custom-metrics`
//! run their own worker (with a codec, with metrics) against the server compared. Not
//! compared: `mtls`, which brings its own server (an engine with TLS).

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

/// A schedule's run id ends with its scheduled time (`…-2026-12-07T04:00:00Z`); one
/// started by a trigger carries the instant of the trigger, the one part of an id that is
/// the clock's: it reads `…-<trigger>`. Scheduled times, on the spec's minute grid, stay.
fn triggered_at_now(id: String) -> String {
    let Some(at) = id.len().checked_sub("2026-12-07T04:00:00Z".len()) else {
        return id;
    };
    let (head, time) = id.split_at(at);
    let is_time = time.len() == 20
        && time.as_bytes()[10] == b'T'
        && time.ends_with('Z')
        && time[..19]
            .chars()
            .all(|c| c.is_ascii_digit() || "-T:".contains(c));
    if is_time && &time[17..19] != "00" {
        format!("{head}<trigger>")
    } else {
        id
    }
}

/// Runs `pattern` against `address` and returns, per workflow it started (by id without
/// the run's suffix, in id order), the normalized history of its last run.
async fn histories(address: &str, pattern: &str) -> Vec<(String, Vec<String>)> {
    let client = Client::connect(address).await.unwrap();
    let queue = unique_task_queue("differential");
    // A run the tour cancelled (or left to finish) may still be closing: the worker
    // keeps running until every run closed (or a while passed), so that no history is
    // read half written.
    let report = worker(&client, &queue)
        .run_until(async {
            let report = tour::run(&client, &queue, pattern, &queue).await;
            for _ in 0..100 {
                let open = client
                    .list_workflows(&format!(
                        "TaskQueue STARTS_WITH '{queue}' AND ExecutionStatus = 'Running'"
                    ))
                    .await
                    .unwrap();
                if open.is_empty() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            report
        })
        .await
        .unwrap();
    assert!(report.ok, "{report:?}");
    // Patterns with a worker of their own run it on a queue named after the tour's.
    let mut runs = client
        .list_workflows(&format!("TaskQueue STARTS_WITH '{queue}'"))
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
        let id = triggered_at_now(run.workflow_id.replace(&queue, "*"));
        all.push((id, history.iter().map(normalized).collect()));
    }
    all
}

async fn compare(pattern: &str) {
    compare_as(pattern, |history| history).await;
}

/// What happened in a history whose order depends on timing: its first and last events
/// in place, and between them every event but the workflow tasks', in sorted order (how
/// timers, cancels, heartbeats and parallel completions interleave with workflow tasks is
/// the clock's doing; which of them happened, and how the run ended, is not).
fn what_happened(history: Vec<String>) -> Vec<String> {
    let Some((first, rest)) = history.split_first() else {
        return history;
    };
    let Some((last, middle)) = rest.split_last() else {
        return history;
    };
    let mut middle: Vec<String> = middle
        .iter()
        .filter(|e| !e.starts_with("WORKFLOW_TASK_"))
        .cloned()
        .collect();
    middle.sort();
    std::iter::once(first.clone())
        .chain(middle)
        .chain(std::iter::once(last.clone()))
        .collect()
}

/// [`compare`], each history seen through `view`.
async fn compare_as(pattern: &str, view: impl Fn(Vec<String>) -> Vec<String>) {
    let server = DevServer::shared().await;
    let seen = |histories: Vec<(String, Vec<String>)>| -> Vec<(String, Vec<String>)> {
        histories
            .into_iter()
            .map(|(id, history)| (id, view(history)))
            .collect()
    };
    let on_server = seen(histories(&server.address(), pattern).await);
    let engine = capstan_engine::Engine::start(Default::default())
        .await
        .expect("the engine starts");
    let on_engine = seen(histories(&engine.address(), pattern).await);
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

#[tokio::test]
async fn cancellation() {
    compare_as("cancellation", what_happened).await;
}

#[tokio::test]
async fn concurrent_timers() {
    compare_as("concurrent-timers", what_happened).await;
}

#[tokio::test]
async fn polling_frequent() {
    compare_as("polling-frequent", what_happened).await;
}

#[tokio::test]
async fn parallel_activity() {
    compare_as("parallel-activity", what_happened).await;
}

#[tokio::test]
async fn long_running_entity() {
    compare_as("long-running-entity", what_happened).await;
}

#[tokio::test]
async fn schedule() {
    compare_as("schedule", what_happened).await;
}

#[tokio::test]
async fn encryption() {
    compare("encryption").await;
}

#[tokio::test]
async fn custom_metrics() {
    compare("custom-metrics").await;
}
