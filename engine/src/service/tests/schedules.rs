//! Schedules' heavy calls (matching times over a long range, long backfills) and what the
//! other calls see meanwhile.
//!
//! The `#[ignore]`d `measure_*` tests print timings for a before/after comparison; run
//! them in a release build:
//! `cargo test --release -p capstan-engine --lib measure_ -- --ignored --nocapture`.

use std::{
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use tonic::Request;

use super::{hostile::TempDb, service};
use crate::{
    proto::{
        self,
        common::WorkflowType,
        enums::ScheduleOverlapPolicy,
        schedule::{
            schedule_action::Action, BackfillRequest, IntervalSpec, Range, Schedule,
            ScheduleAction, SchedulePatch, ScheduleSpec, ScheduleState, StructuredCalendarSpec,
        },
        service::*,
        taskqueue::TaskQueue,
        workflow::NewWorkflowExecutionInfo,
        WorkflowService,
    },
    schedules::{backfill_chunk, BACKFILL_CHUNK, MAX_MATCHING_TIMES},
    service::{take_backfills, Service},
};

const MINUTE: Duration = Duration::from_secs(60);

/// 2001-09-09T01:46:40Z, a whole minute.
fn origin() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_000_000_000 - 40)
}

/// A paused schedule `id` acting every `every`.
fn paused_schedule(id: &str, every: Duration) -> CreateScheduleRequest {
    CreateScheduleRequest {
        namespace: "default".to_owned(),
        schedule_id: id.to_owned(),
        schedule: Some(Schedule {
            spec: Some(ScheduleSpec {
                interval: vec![IntervalSpec {
                    interval: Some(proto::proto_duration(every)),
                    phase: None,
                }],
                ..Default::default()
            }),
            action: Some(ScheduleAction {
                action: Some(Action::StartWorkflow(NewWorkflowExecutionInfo {
                    workflow_id: format!("{id}-wf"),
                    workflow_type: Some(WorkflowType { name: "W".into() }),
                    task_queue: Some(TaskQueue {
                        name: "q".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                })),
            }),
            state: Some(ScheduleState {
                paused: true,
                notes: "backfills only".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        request_id: format!("create-{id}"),
        ..Default::default()
    }
}

/// A backfill of `[start, end]` under ALLOW_ALL.
fn backfill(id: &str, start: SystemTime, end: SystemTime) -> PatchScheduleRequest {
    PatchScheduleRequest {
        namespace: "default".to_owned(),
        schedule_id: id.to_owned(),
        patch: Some(SchedulePatch {
            backfill_request: vec![BackfillRequest {
                start_time: Some(proto::timestamp(start)),
                end_time: Some(proto::timestamp(end)),
                overlap_policy: ScheduleOverlapPolicy::AllowAll as i32,
            }],
            ..Default::default()
        }),
        request_id: format!("backfill-{id}"),
        ..Default::default()
    }
}

fn matching(id: &str, start: SystemTime, end: SystemTime) -> ListScheduleMatchingTimesRequest {
    ListScheduleMatchingTimesRequest {
        namespace: "default".to_owned(),
        schedule_id: id.to_owned(),
        start_time: Some(proto::timestamp(start)),
        end_time: Some(proto::timestamp(end)),
    }
}

async fn action_count(svc: &Service, id: &str) -> i64 {
    svc.describe_schedule(Request::new(DescribeScheduleRequest {
        namespace: "default".to_owned(),
        schedule_id: id.to_owned(),
    }))
    .await
    .unwrap()
    .info
    .unwrap()
    .action_count
}

async fn describe_namespace(svc: &Service) {
    svc.describe_namespace(Request::new(DescribeNamespaceRequest {
        namespace: "default".to_owned(),
        ..Default::default()
    }))
    .await
    .unwrap();
}

/// Runs `heavy` on another task and calls DescribeNamespace in a loop until it is done;
/// answers how long `heavy` took and the slowest DescribeNamespace meanwhile.
async fn while_heavy<F, T>(svc: &Arc<Service>, heavy: F) -> (T, Duration, Duration)
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let began = Instant::now();
    let heavy = tokio::spawn(heavy);
    let mut slowest = Duration::ZERO;
    while !heavy.is_finished() {
        let asked = Instant::now();
        describe_namespace(svc).await;
        slowest = slowest.max(asked.elapsed());
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let out = heavy.await.unwrap();
    (out, began.elapsed(), slowest)
}

/// Times ListScheduleMatchingTimes over 1,000 days of schedule `id`.
async fn measure_matching_times(create: CreateScheduleRequest, what: &str) {
    let svc = Arc::new(service());
    let id = create.schedule_id.clone();
    svc.create_schedule(Request::new(create)).await.unwrap();
    let task = svc.clone();
    let (times, took, slowest) = while_heavy(&svc, async move {
        let end = origin() + Duration::from_secs(1000 * 86_400);
        task.list_schedule_matching_times(Request::new(matching(&id, origin(), end)))
            .await
            .unwrap()
            .into_inner()
            .start_time
            .len()
    })
    .await;
    println!(
        "ListScheduleMatchingTimes, 1,000 days of {what}: {took:?} for {times} times; \
         slowest DescribeNamespace meanwhile: {slowest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run in release with --ignored --nocapture"]
async fn measure_matching_times_over_a_thousand_days() {
    measure_matching_times(paused_schedule("minutely", MINUTE), "a 1-minute interval").await;
    let mut calendar = paused_schedule("calendar", MINUTE);
    let spec = calendar.schedule.as_mut().unwrap().spec.as_mut().unwrap();
    spec.interval.clear();
    spec.cron_string = vec!["* * * * *".to_owned()];
    measure_matching_times(calendar, "cron `* * * * *`").await;
    let mut sparse = paused_schedule("sparse", Duration::from_secs(1));
    let spec = sparse.schedule.as_mut().unwrap().spec.as_mut().unwrap();
    // Every second but those of minutes 1-59: 3,600 of 86,400 a day pass.
    let range = |start, end| Range {
        start,
        end,
        step: 1,
    };
    spec.exclude_structured_calendar = vec![StructuredCalendarSpec {
        second: vec![range(0, 59)],
        minute: vec![range(1, 59)],
        hour: vec![range(0, 23)],
        ..Default::default()
    }];
    measure_matching_times(
        sparse,
        "a 1-second interval excluding minutes 1-59 of every hour",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run in release with --ignored --nocapture"]
async fn measure_a_ten_thousand_action_allow_all_backfill() {
    let svc = Arc::new(service());
    svc.create_schedule(Request::new(paused_schedule("filled", MINUTE)))
        .await
        .unwrap();
    let task = svc.clone();
    let ((), took, slowest) = while_heavy(&svc, async move {
        let end = origin() + MINUTE * 9_999;
        task.patch_schedule(Request::new(backfill("filled", origin(), end)))
            .await
            .unwrap();
    })
    .await;
    let described = svc
        .describe_schedule(Request::new(DescribeScheduleRequest {
            namespace: "default".to_owned(),
            schedule_id: "filled".to_owned(),
        }))
        .await
        .unwrap();
    let actions = described.info.unwrap().action_count;
    println!(
        "PatchSchedule, a 10,000-action ALLOW_ALL backfill: {took:?} for {actions} actions; \
         slowest DescribeNamespace meanwhile: {slowest:?}"
    );
}

#[tokio::test]
async fn matching_times_stop_at_a_thousand_as_temporals_do() {
    let svc = service();
    svc.create_schedule(Request::new(paused_schedule("minutely", MINUTE)))
        .await
        .unwrap();
    let end = origin() + Duration::from_secs(1000 * 86_400);
    let times = svc
        .list_schedule_matching_times(Request::new(matching("minutely", origin(), end)))
        .await
        .unwrap()
        .into_inner()
        .start_time;
    assert_eq!(times.len(), MAX_MATCHING_TIMES);
    assert_eq!(proto::system_time(times.first()), Some(origin()));
    assert_eq!(
        proto::system_time(times.last()),
        Some(origin() + MINUTE * (MAX_MATCHING_TIMES as u32 - 1))
    );
}

/// Every second, except all but midnight: each match is 86,399 excluded times after the
/// last one.
fn one_second_a_day(id: &str) -> CreateScheduleRequest {
    let range = |start, end| Range {
        start,
        end,
        step: 1,
    };
    let mut request = paused_schedule(id, Duration::from_secs(1));
    let spec = request.schedule.as_mut().unwrap().spec.as_mut().unwrap();
    spec.exclude_structured_calendar = vec![
        StructuredCalendarSpec {
            second: vec![range(1, 59)],
            minute: vec![range(0, 59)],
            hour: vec![range(0, 23)],
            ..Default::default()
        },
        StructuredCalendarSpec {
            minute: vec![range(1, 59)],
            hour: vec![range(0, 23)],
            ..Default::default()
        },
        StructuredCalendarSpec {
            hour: vec![range(1, 23)],
            ..Default::default()
        },
    ];
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_that_excludes_nearly_everything_lists_what_its_search_budget_finds() {
    let svc = Arc::new(service());
    svc.create_schedule(Request::new(one_second_a_day("sparse")))
        .await
        .unwrap();
    // A thousand years: without a bound on the search, hours of work.
    let end = origin() + Duration::from_secs(1000 * 365 * 86_400);
    let task = svc.clone();
    let heavy = tokio::spawn(async move {
        task.list_schedule_matching_times(Request::new(matching("sparse", origin(), end)))
            .await
            .unwrap()
            .into_inner()
            .start_time
    });
    // The search runs outside the store's lock: other calls answer meanwhile.
    let mut answered_meanwhile = 0;
    while !heavy.is_finished() {
        describe_namespace(&svc).await;
        answered_meanwhile += 1;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let times = heavy.await.unwrap();
    assert!(
        answered_meanwhile >= 3,
        "only {answered_meanwhile} calls answered during the search"
    );
    assert!(
        !times.is_empty() && times.len() < MAX_MATCHING_TIMES,
        "{} times",
        times.len()
    );
    for t in &times {
        assert_eq!(t.seconds % 86_400, 0, "{t:?} is not a midnight");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_thousand_action_allow_all_backfill_starts_every_run() {
    let svc = service();
    svc.create_schedule(Request::new(paused_schedule("filled", MINUTE)))
        .await
        .unwrap();
    let end = origin() + MINUTE * 9_999;
    svc.patch_schedule(Request::new(backfill("filled", origin(), end)))
        .await
        .unwrap();
    let described = svc
        .describe_schedule(Request::new(DescribeScheduleRequest {
            namespace: "default".to_owned(),
            schedule_id: "filled".to_owned(),
        }))
        .await
        .unwrap();
    let info = described.info.unwrap();
    assert_eq!(info.action_count, 10_000);
    assert_eq!(info.running_workflows.len(), 10_000);
    assert_eq!(info.overlap_skipped, 0);
    assert!(described.schedule.unwrap().state.unwrap().paused);
    // In order: the last action is the last time of the range.
    let last = info.recent_actions.last().unwrap();
    let expected = format!("filled-wf-{}", crate::schedules::rfc3339(end));
    assert_eq!(
        last.start_workflow_result.as_ref().unwrap().workflow_id,
        expected
    );
}

#[tokio::test]
async fn a_backfill_is_noted_by_its_patch_and_taken_a_chunk_per_transaction() {
    let svc = service();
    svc.create_schedule(Request::new(paused_schedule("chunked", MINUTE)))
        .await
        .unwrap();
    let key = ("default".to_owned(), "chunked".to_owned());
    let end = origin() + MINUTE * 999;
    let PatchScheduleRequest {
        patch, request_id, ..
    } = backfill("chunked", origin(), end);
    // The patch's own transaction only notes the backfill.
    svc.store
        .transaction(|state| state.patch_schedule(&key, patch.unwrap(), &request_id))
        .await
        .unwrap();
    assert_eq!(action_count(&svc, "chunked").await, 0);
    // Each later transaction takes one chunk, found outside the lock.
    let read = svc
        .store
        .transaction(|state| state.pending_backfill(&key))
        .await
        .expect("a pending backfill");
    let chunk = backfill_chunk(&key.1, read.0.as_ref(), &read.1);
    assert_eq!(chunk.times.len(), BACKFILL_CHUNK);
    assert!(
        svc.store
            .transaction(|state| state.take_backfill_chunk(&key, &read, chunk))
            .await
    );
    assert_eq!(action_count(&svc, "chunked").await, BACKFILL_CHUNK as i64);
    // A chunk found from what moved on since is not applied.
    let stale = backfill_chunk(&key.1, read.0.as_ref(), &read.1);
    assert!(
        !svc.store
            .transaction(|state| state.take_backfill_chunk(&key, &read, stale))
            .await
    );
    assert_eq!(action_count(&svc, "chunked").await, BACKFILL_CHUNK as i64);
    take_backfills(svc.store.clone(), key.clone()).await;
    assert_eq!(action_count(&svc, "chunked").await, 1000);
    assert!(svc
        .store
        .transaction(|state| state.pending_backfill(&key))
        .await
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_calls_interleave_with_a_long_backfill() {
    let svc = Arc::new(service());
    svc.create_schedule(Request::new(paused_schedule("long", MINUTE)))
        .await
        .unwrap();
    let task = svc.clone();
    let heavy = tokio::spawn(async move {
        let end = origin() + MINUTE * 9_999;
        task.patch_schedule(Request::new(backfill("long", origin(), end)))
            .await
            .unwrap();
    });
    // Calls made meanwhile see the backfill part done: they were answered between its
    // transactions, not after all of it.
    let mut part_done = 0;
    while !heavy.is_finished() {
        let n = action_count(&svc, "long").await;
        if n > 0 && n < 10_000 {
            part_done += 1;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    heavy.await.unwrap();
    assert!(part_done > 0, "no call was answered during the backfill");
    assert_eq!(action_count(&svc, "long").await, 10_000);
}

#[tokio::test]
async fn a_backfill_under_way_survives_a_restart() {
    let db = TempDb::new("backfill-restart");
    let key = ("default".to_owned(), "kept".to_owned());
    {
        let svc = db.service();
        svc.create_schedule(Request::new(paused_schedule("kept", MINUTE)))
            .await
            .unwrap();
        let PatchScheduleRequest {
            patch, request_id, ..
        } = backfill("kept", origin(), origin() + MINUTE * 599);
        svc.store
            .transaction(|state| state.patch_schedule(&key, patch.unwrap(), &request_id))
            .await
            .unwrap();
        let read = svc
            .store
            .transaction(|state| state.pending_backfill(&key))
            .await
            .unwrap();
        let chunk = backfill_chunk(&key.1, read.0.as_ref(), &read.1);
        svc.store
            .transaction(|state| state.take_backfill_chunk(&key, &read, chunk))
            .await;
        svc.store.close_db();
    }
    let svc = db.service();
    assert_eq!(action_count(&svc, "kept").await, BACKFILL_CHUNK as i64);
    let pending = svc
        .store
        .transaction(|state| state.schedules_with_backfills())
        .await;
    assert_eq!(pending, vec![key.clone()]);
    take_backfills(svc.store.clone(), key).await;
    assert_eq!(action_count(&svc, "kept").await, 600);
}
