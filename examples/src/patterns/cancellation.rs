//! Cancellation: a long-running activity heartbeats so that it learns when the workflow
//! is cancelled; the workflow's cleanup still runs (the seed's `try`/`finally`), and the
//! workflow ends as cancelled.

use std::time::Duration;

use capstan::{
    client::history::EventType, prelude::*, workflow::ActivityCancellation, ClientError,
};
use serde_json::{json, Value};

use crate::tour::{event_types, workflow_id};

/// Heartbeats every second until it is cancelled.
#[activity]
pub async fn never_complete_activity(ctx: ActivityContext) -> Result<(), ActivityError> {
    loop {
        // Required for cancellation delivery: the cancel request answers a heartbeat.
        ctx.heartbeat(());
        if ctx.is_cancelled() {
            return Err(capstan::Error::cancelled("Activity cancelled"));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The cleanup that must run however the workflow ends.
#[activity]
pub async fn cleanup_activity() -> Result<(), ActivityError> {
    Ok(())
}

/// Runs `never_complete_activity`, then `cleanup_activity` even when cancelled.
#[workflow]
#[derive(Default)]
pub struct CancellationWorkflow;

#[workflow]
impl CancellationWorkflow {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>) -> WorkflowResult<()> {
        let outcome = ctx
            .activity(never_complete_activity, ())
            .start_to_close_timeout(Duration::from_secs(1000))
            .heartbeat_timeout(Duration::from_secs(2)) // Critical for cancellation
            // Wait until the activity has stopped, so its cancellation is in the history.
            .cancellation(ActivityCancellation::WaitCancellationCompleted)
            .await;
        // Cleanup always executes, even on cancellation.
        ctx.activity(cleanup_activity, ())
            .start_to_close_timeout(Duration::from_secs(5))
            .await?;
        // A cancellation error ends the workflow as cancelled.
        Ok(outcome?)
    }
}

/// Registers the pattern's workflow and activities.
pub fn register(worker: Worker) -> Worker {
    worker
        .register_workflow::<CancellationWorkflow>()
        .register_activity(never_complete_activity)
        .register_activity(cleanup_activity)
}

/// The tour's driver: cancels the workflow while its activity heartbeats; the history
/// shows the activity cancelled, the cleanup completed and the workflow cancelled.
pub async fn tour(client: &Client, task_queue: &str, run_id: &str) -> anyhow::Result<Value> {
    let handle = CancellationWorkflow::start(client, workflow_id("cancellation", run_id))
        .task_queue(task_queue)
        .await?;
    // Let the activity heartbeat a little, then cancel the workflow.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    handle.cancel().await?;
    let outcome = handle.result().await;
    anyhow::ensure!(
        matches!(
            outcome,
            Err(ClientError::WorkflowFailed {
                how: "was cancelled",
                ..
            })
        ),
        "the workflow should end as cancelled, got {outcome:?}"
    );
    let events = event_types(&handle.history().await?);
    for expected in [
        EventType::ActivityTaskCancelRequested,
        EventType::ActivityTaskCanceled,
        EventType::ActivityTaskCompleted,
        EventType::WorkflowExecutionCanceled,
    ] {
        anyhow::ensure!(
            events.contains(&expected.as_str_name()),
            "{expected:?} missing from {events:?}"
        );
    }
    Ok(json!({ "history": events }))
}
