//! Schedule: the server starts `ScheduledWorkflow` every two minutes, on weekday mornings,
//! on demand (trigger) and for a past range (backfill); schedules pause, resume and
//! change without losing their history.

use std::time::{Duration, SystemTime};

use capstan::{
    client::schedule::{
        OverlapPolicy, ScheduleAction, ScheduleHandle, ScheduleOptions, ScheduleSpec,
    },
    prelude::*,
    ClientError,
};

/// The workflow the schedules start.
#[workflow]
#[derive(Default)]
pub struct ScheduledWorkflow;

#[workflow]
impl ScheduledWorkflow {
    #[run]
    pub async fn run(_ctx: WorkflowContext<Self>, data: String) -> WorkflowResult<String> {
        Ok(format!("Processed: {data}"))
    }
}

fn start(data: &str, workflow_id: &str, task_queue: &str) -> ScheduleAction {
    ScheduleAction::start_workflow::<ScheduledWorkflow>(workflow_id, data.to_owned(), task_queue)
}

/// A schedule that runs every 2 minutes.
pub async fn create_interval_schedule(
    client: &Client,
    schedule_id: &str,
    workflow_id: &str,
    task_queue: &str,
) -> Result<ScheduleHandle, ClientError> {
    client
        .create_schedule_with(
            schedule_id,
            start("scheduled data", workflow_id, task_queue),
            ScheduleSpec::interval(Duration::from_secs(2 * 60)),
            ScheduleOptions {
                note: Some("Runs every 2 minutes".to_owned()),
                ..ScheduleOptions::default()
            },
        )
        .await
}

/// A schedule from a cron expression: 9 AM on weekdays.
pub async fn create_cron_schedule(
    client: &Client,
    schedule_id: &str,
    workflow_id: &str,
    task_queue: &str,
) -> Result<ScheduleHandle, ClientError> {
    client
        .create_schedule_with(
            schedule_id,
            start("daily report", workflow_id, task_queue),
            ScheduleSpec::cron("0 9 * * MON-FRI"),
            ScheduleOptions {
                note: Some("Daily report generation".to_owned()),
                ..ScheduleOptions::default()
            },
        )
        .await
}

/// Runs the schedule's action now.
pub async fn trigger_schedule_manually(handle: &ScheduleHandle) -> Result<(), ClientError> {
    handle.trigger(OverlapPolicy::AllowAll).await
}

/// Takes every action of the last two hours up to five minutes ago, overlapping freely.
pub async fn backfill_schedule(
    handle: &ScheduleHandle,
    now: SystemTime,
) -> Result<(), ClientError> {
    handle
        .backfill(
            now - Duration::from_secs(2 * 3600), // Backfill last 2 hours
            now - Duration::from_secs(5 * 60),   // Up to 5 minutes ago
            OverlapPolicy::AllowAll,             // Allow overlapping executions
        )
        .await
}

/// Every 30 minutes and weekly on Sunday; paused, resumed, then changed to hourly.
pub async fn manage_schedule(
    client: &Client,
    schedule_id: &str,
    workflow_id: &str,
    task_queue: &str,
) -> Result<ScheduleHandle, ClientError> {
    let handle = client
        .create_schedule_with(
            schedule_id,
            start("complex data", workflow_id, task_queue),
            ScheduleSpec::interval(Duration::from_secs(30 * 60)).and_cron("0 0 * * SUN"),
            ScheduleOptions {
                note: Some("Mixed interval and cron schedule".to_owned()),
                ..ScheduleOptions::default()
            },
        )
        .await?;
    handle.pause("Pausing for maintenance").await?;
    handle.unpause("Maintenance complete").await?;
    handle
        .update(|_| ScheduleSpec::interval(Duration::from_secs(3600)))
        .await?;
    Ok(handle)
}
