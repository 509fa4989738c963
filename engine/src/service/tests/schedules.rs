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

use super::service;
use crate::{
    proto::{
        self,
        common::WorkflowType,
        enums::ScheduleOverlapPolicy,
        schedule::{
            schedule_action::Action, BackfillRequest, IntervalSpec, Schedule, ScheduleAction,
            SchedulePatch, ScheduleSpec, ScheduleState,
        },
        service::*,
        taskqueue::TaskQueue,
        workflow::NewWorkflowExecutionInfo,
        WorkflowService,
    },
    service::Service,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run in release with --ignored --nocapture"]
async fn measure_matching_times_over_a_thousand_days() {
    let svc = Arc::new(service());
    svc.create_schedule(Request::new(paused_schedule("minutely", MINUTE)))
        .await
        .unwrap();
    let task = svc.clone();
    let (times, took, slowest) = while_heavy(&svc, async move {
        let end = origin() + Duration::from_secs(1000 * 86_400);
        task.list_schedule_matching_times(Request::new(matching("minutely", origin(), end)))
            .await
            .unwrap()
            .into_inner()
            .start_time
            .len()
    })
    .await;
    println!(
        "ListScheduleMatchingTimes, 1,000 days of a 1-minute interval: {took:?} for {times} \
         times; slowest DescribeNamespace meanwhile: {slowest:?}"
    );
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
