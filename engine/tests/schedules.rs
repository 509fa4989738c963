//! Schedules on the engine's own scheduler: a 2-minute interval over a simulated hour on
//! the virtual clock, a 2-hour backfill, every overlap policy, pause on failure, and
//! schedules that survive a restart and catch up what they missed.

use std::{
    collections::BTreeSet,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use capstan::{
    client::{
        schedule::{
            OverlapPolicy, ScheduleAction, ScheduleDescription, ScheduleHandle, ScheduleOptions,
            ScheduleSpec,
        },
        WorkflowExecutionStatus,
    },
    prelude::*,
    testing::unique_task_queue,
    ApplicationError,
};
use capstan_examples::patterns::schedule::ScheduledWorkflow;
use support::TempDb;

mod support;

/// Waits for the signal `finish`, or is cancelled.
#[workflow]
#[derive(Default)]
pub struct Blocker {
    done: bool,
}

#[workflow]
impl Blocker {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>, _data: String) -> WorkflowResult<String> {
        ctx.wait_condition(|s| s.done).await?;
        Ok("finished".to_owned())
    }

    #[signal]
    pub fn finish(&mut self) {
        self.done = true;
    }
}

/// Fails at once, for good.
#[workflow]
#[derive(Default)]
pub struct Failing;

#[workflow]
impl Failing {
    #[run]
    pub async fn run(_ctx: WorkflowContext<Self>, _data: String) -> WorkflowResult<String> {
        Err(ApplicationError::new("ReportError", "the report failed")
            .non_retryable()
            .into())
    }
}

fn worker(client: &Client, task_queue: &str) -> Worker {
    Worker::new(client, task_queue)
        .register_workflow::<ScheduledWorkflow>()
        .register_workflow::<Blocker>()
        .register_workflow::<Failing>()
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The first multiple of `every` seconds at least one `every` after `t`.
fn aligned_after(t: SystemTime, every: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs((secs(t) / every + 2) * every)
}

/// `{prefix}-2026-11-24T09:00:00Z` for each multiple of `every` seconds in `[from, to]`.
fn expected_ids(prefix: &str, from: SystemTime, to: SystemTime, every: u64) -> BTreeSet<String> {
    (secs(from).div_ceil(every)..=secs(to) / every)
        .map(|n| {
            let at = chrono::DateTime::<chrono::Utc>::from_timestamp((n * every) as i64, 0)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            format!("{prefix}-{at}")
        })
        .collect()
}

async fn scheduled_ids(client: &Client, schedule_id: &str) -> BTreeSet<String> {
    client
        .list_workflows(&format!("TemporalScheduledById = '{schedule_id}'"))
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.workflow_id)
        .collect()
}

/// Describes the schedule until `done` holds (up to 20 s), and returns that description.
async fn settle(
    schedule: &ScheduleHandle,
    what: &str,
    done: impl Fn(&ScheduleDescription) -> bool,
) -> ScheduleDescription {
    let mut last = None;
    for _ in 0..200 {
        let described = schedule.describe().await.unwrap();
        if done(&described) {
            return described;
        }
        last = Some(described);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not reached in 20 s: {what}; last described as {last:#?}");
}

#[tokio::test]
async fn a_two_minute_interval_acts_thirty_times_in_a_simulated_hour() {
    let (engine, client) = support::virtual_clock_engine().await;
    let tq = unique_task_queue("interval");
    let start = aligned_after(engine.now(), 120);
    let end = start + Duration::from_secs(3600 - 1);
    let (schedule, ids) = worker(&client, &tq)
        .run_until(async {
            let schedule = client
                .create_schedule(
                    "every-two-minutes",
                    ScheduleAction::start_workflow::<ScheduledWorkflow>(
                        "report",
                        "tick".to_owned(),
                        &tq,
                    ),
                    ScheduleSpec::interval(Duration::from_secs(120))
                        .starting_at(start)
                        .ending_at(end),
                )
                .await
                .unwrap();
            let described = settle(&schedule, "30 actions, all finished", |d| {
                d.action_count == 30 && d.running_workflows.is_empty()
            })
            .await;
            assert!(described.next_action_times.is_empty(), "{described:#?}");
            assert_eq!(described.recent_actions.len(), 10, "the last ten");
            (schedule, scheduled_ids(&client, "every-two-minutes").await)
        })
        .await
        .unwrap();
    assert_eq!(ids, expected_ids("report", start, end, 120));
    for id in &ids {
        let result: String = client.workflow_handle(id).result_as().await.unwrap();
        assert_eq!(result, "Processed: tick");
    }
    assert!(
        engine.now() >= start + Duration::from_secs(58 * 60),
        "an hour passed"
    );
    schedule.delete().await.unwrap();
    engine.shutdown().await;
}

#[tokio::test]
async fn a_two_hour_backfill_under_allow_all_starts_every_run_of_the_range() {
    let (engine, client) = support::engine().await;
    let tq = unique_task_queue("backfill");
    let schedule = client
        .create_schedule_with(
            "backfilled",
            ScheduleAction::start_workflow::<ScheduledWorkflow>("past", "old".to_owned(), &tq),
            ScheduleSpec::interval(Duration::from_secs(120)),
            ScheduleOptions {
                paused: Some("backfill only".to_owned()),
                ..ScheduleOptions::default()
            },
        )
        .await
        .unwrap();
    let to = engine.now() - Duration::from_secs(5 * 60);
    let from = to - Duration::from_secs(2 * 3600);
    schedule
        .backfill(from, to, OverlapPolicy::AllowAll)
        .await
        .unwrap();
    let expected = expected_ids("past", from, to, 120);
    assert_eq!(scheduled_ids(&client, "backfilled").await, expected);
    let described = schedule.describe().await.unwrap();
    assert_eq!(described.action_count, expected.len() as i64);
    assert_eq!(
        described.running_workflows.len(),
        expected.len(),
        "all overlap"
    );
    assert!(described.paused, "a backfill leaves the schedule paused");
    engine.shutdown().await;
}

/// Ten actions a minute apart while each run blocks: what each overlap policy makes of them.
#[tokio::test]
async fn every_overlap_policy_does_what_it_says() {
    struct Expect {
        policy: OverlapPolicy,
        actions: i64,
        running: usize,
        skipped: i64,
        buffered: i64,
        dropped: i64,
    }
    let cases = [
        Expect {
            policy: OverlapPolicy::Skip,
            actions: 1,
            running: 1,
            skipped: 9,
            buffered: 0,
            dropped: 0,
        },
        Expect {
            policy: OverlapPolicy::BufferOne,
            actions: 1,
            running: 1,
            skipped: 0,
            buffered: 1,
            dropped: 8,
        },
        Expect {
            policy: OverlapPolicy::BufferAll,
            actions: 1,
            running: 1,
            skipped: 0,
            buffered: 9,
            dropped: 0,
        },
        Expect {
            policy: OverlapPolicy::AllowAll,
            actions: 10,
            running: 10,
            skipped: 0,
            buffered: 0,
            dropped: 0,
        },
        Expect {
            policy: OverlapPolicy::TerminateOther,
            actions: 10,
            running: 1,
            skipped: 0,
            buffered: 0,
            dropped: 0,
        },
        Expect {
            policy: OverlapPolicy::CancelOther,
            actions: 10,
            running: 1,
            skipped: 0,
            buffered: 0,
            dropped: 0,
        },
    ];
    for case in cases {
        let (engine, client) = support::virtual_clock_engine().await;
        let tq = unique_task_queue("overlap");
        let start = aligned_after(engine.now(), 60);
        let end = start + Duration::from_secs(9 * 60);
        let id = format!("{:?}", case.policy);
        worker(&client, &tq)
            .run_until(async {
                let schedule = client
                    .create_schedule_with(
                        &id,
                        ScheduleAction::start_workflow::<Blocker>("blocker", "x".to_owned(), &tq),
                        ScheduleSpec::interval(Duration::from_secs(60))
                            .starting_at(start)
                            .ending_at(end),
                        ScheduleOptions {
                            overlap: case.policy,
                            ..ScheduleOptions::default()
                        },
                    )
                    .await
                    .unwrap();
                let described = settle(&schedule, &id, |d| {
                    d.next_action_times.is_empty()
                        && d.action_count == case.actions
                        && d.running_workflows.len() == case.running
                        && d.overlap_skipped == case.skipped
                        && d.buffer_size == case.buffered
                        && d.buffer_dropped == case.dropped
                })
                .await;
                let runs = client
                    .list_workflows(&format!("TemporalScheduledById = '{id}'"))
                    .await
                    .unwrap();
                let closed = |status| runs.iter().filter(|r| r.status == status).count() as i64;
                match case.policy {
                    OverlapPolicy::TerminateOther => {
                        assert_eq!(closed(WorkflowExecutionStatus::Terminated), 9, "{id}")
                    }
                    OverlapPolicy::CancelOther => {
                        assert_eq!(closed(WorkflowExecutionStatus::Canceled), 9, "{id}")
                    }
                    OverlapPolicy::BufferOne => {
                        // Finishing the running workflow starts the buffered action.
                        let first = described.running_workflows[0].clone();
                        client
                            .workflow_handle(&first)
                            .signal_with("finish", ())
                            .await
                            .unwrap();
                        let after = settle(&schedule, "the buffered action started", |d| {
                            d.action_count == 2 && d.buffer_size == 0
                        })
                        .await;
                        assert_eq!(after.running_workflows.len(), 1);
                        assert_ne!(after.running_workflows[0], first);
                    }
                    _ => {}
                }
            })
            .await
            .unwrap();
        engine.shutdown().await;
    }
}

#[tokio::test]
async fn a_failed_run_pauses_a_schedule_that_asks_for_it() {
    let (engine, client) = support::engine().await;
    let tq = unique_task_queue("pause-on-failure");
    worker(&client, &tq)
        .run_until(async {
            let schedule = client
                .create_schedule_with(
                    "fragile",
                    ScheduleAction::start_workflow::<Failing>("fragile", "x".to_owned(), &tq),
                    ScheduleSpec::interval(Duration::from_secs(3600)),
                    ScheduleOptions {
                        pause_on_failure: true,
                        trigger_immediately: true,
                        ..ScheduleOptions::default()
                    },
                )
                .await
                .unwrap();
            let described = settle(&schedule, "paused by the failure", |d| d.paused).await;
            assert!(
                described.notes.contains("failed: the report failed"),
                "{}",
                described.notes
            );
            assert_eq!(described.action_count, 1);
        })
        .await
        .unwrap();
    engine.shutdown().await;
}

#[tokio::test]
async fn schedules_survive_a_restart_and_catch_up_within_their_window() {
    let db = TempDb::new("schedules");
    let tq = unique_task_queue("restart");
    let action =
        |id: &str| ScheduleAction::start_workflow::<ScheduledWorkflow>(id, "x".to_owned(), &tq);
    let every_second = ScheduleSpec::interval(Duration::from_secs(1));
    let (first, client) = support::engine_on(db.path()).await;
    let paused = client
        .create_schedule_with(
            "paused",
            action("paused"),
            ScheduleSpec::cron("0 9 * * MON-FRI"),
            ScheduleOptions {
                paused: Some("until the audit".to_owned()),
                ..ScheduleOptions::default()
            },
        )
        .await
        .unwrap();
    let catching_up = client
        .create_schedule_with(
            "catching-up",
            action("catching-up"),
            every_second.clone(),
            ScheduleOptions {
                overlap: OverlapPolicy::AllowAll,
                catchup_window: Some(Duration::from_secs(3600)),
                ..ScheduleOptions::default()
            },
        )
        .await
        .unwrap();
    client
        .create_schedule_with(
            "strict",
            action("strict"),
            every_second,
            ScheduleOptions {
                overlap: OverlapPolicy::AllowAll,
                catchup_window: Some(Duration::from_millis(500)),
                ..ScheduleOptions::default()
            },
        )
        .await
        .unwrap();
    settle(&catching_up, "a first action", |d| d.action_count >= 1).await;
    let before = catching_up.describe().await.unwrap().action_count;
    let paused_spec = paused.describe().await.unwrap().spec;
    first.shutdown().await;

    tokio::time::sleep(Duration::from_secs(3)).await;
    let (second, client) = support::engine_on(db.path()).await;
    let [paused, catching_up, strict] =
        ["paused", "catching-up", "strict"].map(|id| client.schedule_handle(id));
    let paused_again = paused.describe().await.unwrap();
    assert!(paused_again.paused);
    assert_eq!(paused_again.notes, "until the audit");
    assert_eq!(paused_again.spec.as_proto(), paused_spec.as_proto());
    // The seconds missed while the engine was down: taken at start within the window,
    // counted as missed outside it.
    let caught_up = catching_up.describe().await.unwrap();
    assert!(
        caught_up.action_count >= before + 2,
        "{before} actions before the restart, {} after",
        caught_up.action_count
    );
    let strict_now = strict.describe().await.unwrap();
    assert!(strict_now.missed_catchup_window >= 2, "{strict_now:#?}");
    for handle in [&paused, &catching_up, &strict] {
        handle.delete().await.unwrap();
    }
    assert!(client.list_schedules().await.unwrap().is_empty());
    second.shutdown().await;
}
