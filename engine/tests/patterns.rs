//! The tour's patterns, end to end on the embedded engine: a Capstan worker and client
//! connected to an engine started in this process.

use capstan::{
    client::history::{Attributes, EventType},
    testing::unique_task_queue,
    Client,
};
use capstan_engine::Engine;
use capstan_examples::{tour, worker};

mod support;

/// A fresh engine, a client of it and a task queue.
async fn setup() -> (Engine, Client, String) {
    let (engine, client) = support::engine().await;
    (engine, client, unique_task_queue("engine"))
}

async fn tour_pattern(name: &str) -> (tour::Report, Client) {
    let (engine, client, queue) = setup().await;
    let report = worker(&client, &queue)
        .run_until(tour::run(&client, &queue, name, &queue))
        .await
        .expect("the worker runs");
    engine.shutdown().await;
    (report, client)
}

fn event_types(history: &[capstan::client::history::HistoryEvent]) -> Vec<EventType> {
    history.iter().map(|e| e.event_type()).collect()
}

#[tokio::test]
async fn activity_choice() {
    let (engine, client, queue) = setup().await;
    let report = worker(&client, &queue)
        .run_until(tour::run(&client, &queue, "activity-choice", &queue))
        .await
        .expect("the worker runs");
    assert!(report.ok, "{report:?}");
    let history = client
        .workflow_handle(format!("purchase-fruits-{queue}"))
        .history()
        .await
        .unwrap();
    let types = event_types(&history);
    assert_eq!(types.first(), Some(&EventType::WorkflowExecutionStarted));
    assert_eq!(types.last(), Some(&EventType::WorkflowExecutionCompleted));
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == EventType::ActivityTaskCompleted)
            .count(),
        2
    );
    support::assert_contiguous(&history, "activity choice");
    engine.shutdown().await;
}

#[tokio::test]
async fn parallel_activity() {
    let (report, _) = tour_pattern("parallel-activity").await;
    assert!(report.ok, "{report:?}");
}

#[tokio::test]
async fn child_workflow() {
    let (report, _) = tour_pattern("child-workflow").await;
    assert!(report.ok, "{report:?}");
}

#[tokio::test]
async fn local_activity() {
    let (report, _) = tour_pattern("local-activity").await;
    assert!(report.ok, "{report:?}");
}

#[tokio::test]
async fn pydantic_converter() {
    let (report, _) = tour_pattern("pydantic-converter").await;
    assert!(report.ok, "{report:?}");
}

#[tokio::test]
async fn exceptions_retry_three_times() {
    let (engine, client, queue) = setup().await;
    let report = worker(&client, &queue)
        .run_until(tour::run(&client, &queue, "exceptions", &queue))
        .await
        .expect("the worker runs");
    assert!(report.ok, "{report:?}");
    let history = client
        .workflow_handle(format!("data-processing-{queue}"))
        .history()
        .await
        .unwrap();
    let attempts: Vec<i32> = history
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(Attributes::ActivityTaskStartedEventAttributes(a)) => Some(a.attempt),
            _ => None,
        })
        .collect();
    assert_eq!(attempts, [3], "only the last attempt is in the history");
    assert_eq!(
        event_types(&history).last(),
        Some(&EventType::WorkflowExecutionFailed)
    );
    engine.shutdown().await;
}

#[tokio::test]
async fn cancellation() {
    let (report, _) = tour_pattern("cancellation").await;
    assert!(report.ok, "{report:?}");
}

#[tokio::test]
async fn continue_as_new() {
    let (report, _) = tour_pattern("continue-as-new").await;
    assert!(report.ok, "{report:?}");
}

#[tokio::test]
async fn long_running_entity() {
    let (report, _) = tour_pattern("long-running-entity").await;
    assert!(report.ok, "{report:?}");
}

#[tokio::test]
async fn concurrent_timers() {
    let (report, _) = tour_pattern("concurrent-timers").await;
    assert!(report.ok, "{report:?}");
}

#[tokio::test]
async fn polling_frequent() {
    let (report, _) = tour_pattern("polling-frequent").await;
    assert!(report.ok, "{report:?}");
}

#[tokio::test]
async fn polling_infrequent() {
    let (report, _) = tour_pattern("polling-infrequent").await;
    assert!(report.ok, "{report:?}");
}
