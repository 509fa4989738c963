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
use serde_json::{json, Value};

use crate::tour::{eventually, workflow_id};

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

/// Registers the workflow the schedules start.
pub fn register(worker: Worker) -> Worker {
    worker.register_workflow::<ScheduledWorkflow>()
}

/// The tour's driver: the interval schedule's triggered run and backfill, the cron
/// schedule's weekday mornings, and the managed schedule's final state; deletes the
/// schedules.
pub async fn tour(client: &Client, task_queue: &str, run_id: &str) -> anyhow::Result<Value> {
    let id = |w: &str| workflow_id(w, run_id);
    let interval = create_interval_schedule(
        client,
        &id("interval-schedule"),
        &id("scheduled-workflow"),
        task_queue,
    )
    .await?;
    trigger_schedule_manually(&interval).await?;
    let triggered = eventually("the triggered run", async || {
        let described = interval.describe().await.ok()?;
        described.recent_actions.first().cloned()
    })
    .await?;
    let result: String = client
        .workflow_handle(&triggered.workflow_id)
        .result_as()
        .await?;
    let now = SystemTime::now();
    backfill_schedule(&interval, now).await?;
    // One action per 2-minute mark in [now - 2 h, now - 5 min].
    let mark = |t: SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
    };
    let (from, to) = (mark(now) - 2 * 3600, mark(now) - 5 * 60);
    let backfilled = (from.div_ceil(120)..=to / 120).count() as i64;
    let described = eventually("the backfilled runs", async || {
        let d = interval.describe().await.ok()?;
        (d.action_count > backfilled).then_some(d)
    })
    .await?;

    let cron = create_cron_schedule(
        client,
        &id("cron-schedule"),
        &id("daily-report-workflow"),
        task_queue,
    )
    .await?;
    let mornings = cron.describe().await?.next_action_times;
    let weekday_nine = |t: &SystemTime| {
        let secs = mark(*t);
        let weekday = (secs / 86_400 + 4) % 7; // 1970-01-01 was a Thursday
        (1..=5).contains(&weekday) && secs % 86_400 == 9 * 3600
    };
    anyhow::ensure!(
        !mornings.is_empty() && mornings.iter().all(weekday_nine),
        "the cron schedule should act at 09:00 UTC on weekdays: {mornings:?}"
    );

    let managed = manage_schedule(
        client,
        &id("complex-schedule"),
        &id("complex-workflow"),
        task_queue,
    )
    .await?;
    let managed_state = managed.describe().await?;
    for handle in [&interval, &cron, &managed] {
        handle.delete().await?;
    }
    anyhow::ensure!(
        result == "Processed: scheduled data",
        "unexpected {result:?}"
    );
    anyhow::ensure!(
        managed_state.notes == "Maintenance complete"
            && managed_state.spec.intervals() == [(Duration::from_secs(3600), Duration::ZERO)],
        "unexpected managed schedule {managed_state:?}"
    );
    Ok(json!({
        "triggered": result,
        "backfilled_runs": backfilled,
        "actions": described.action_count,
        "weekday_mornings_ahead": mornings.len(),
        "managed": { "notes": managed_state.notes, "every_secs": 3600 },
    }))
}
