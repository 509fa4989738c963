//! Schedules on a real Temporal dev server: create, describe, pause and unpause with notes,
//! update with the conflict token, trigger, backfill, list and delete.
#![cfg(feature = "testing")]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use capstan::{
    client::schedule::{OverlapPolicy, ScheduleAction, ScheduleOptions, ScheduleSpec},
    prelude::*,
    testing::{unique_task_queue, DevServer},
    ClientError,
};

async fn client() -> Client {
    Client::connect(DevServer::shared().await.address())
        .await
        .unwrap()
}

fn tick(id: &str) -> ScheduleAction {
    ScheduleAction::start_workflow_by_name("Tick", id, ("tock".to_owned(),), "schedules")
}

/// Polls `check` for up to ten seconds.
async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..100 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not reached in 10 s: {what}");
}

#[tokio::test]
async fn a_schedule_acts_pauses_updates_triggers_and_goes_away() {
    let client = client().await;
    let id = unique_task_queue("every-second");
    // No worker runs `Tick`: its runs stay open, so let actions overlap.
    let options = ScheduleOptions {
        overlap: OverlapPolicy::AllowAll,
        ..ScheduleOptions::default()
    };
    let schedule = client
        .create_schedule_with(
            &id,
            tick(&format!("{id}-wf")),
            ScheduleSpec::interval(Duration::from_secs(1)),
            options,
        )
        .await
        .unwrap();
    let described = eventually("two actions taken", async || {
        let d = schedule.describe().await.unwrap();
        (d.action_count >= 2).then_some(d)
    })
    .await;
    assert!(described
        .recent_actions
        .iter()
        .all(|a| a.workflow_id.starts_with(&format!("{id}-wf"))));
    assert_eq!(
        described.spec.intervals(),
        [(Duration::from_secs(1), Duration::ZERO)]
    );

    schedule.pause("maintenance window").await.unwrap();
    let paused = schedule.describe().await.unwrap();
    assert!(paused.paused);
    assert_eq!(paused.notes, "maintenance window");
    schedule.unpause("back to work").await.unwrap();
    let unpaused = schedule.describe().await.unwrap();
    assert!(!unpaused.paused);
    assert_eq!(unpaused.notes, "back to work");

    // Read-modify-write with the conflict token.
    schedule
        .update(|_| ScheduleSpec::interval(Duration::from_secs(3600)))
        .await
        .unwrap();
    let updated = schedule.describe().await.unwrap();
    assert_eq!(
        updated.spec.intervals(),
        [(Duration::from_secs(3600), Duration::ZERO)]
    );

    // Listing reads visibility, which may lag a moment behind.
    eventually("the schedule listed", async || {
        let all = client.list_schedules().await.unwrap();
        all.iter()
            .any(|s| s.schedule_id == id && s.workflow_type == "Tick")
            .then_some(())
    })
    .await;
    schedule.delete().await.unwrap();
    let gone = schedule.describe().await.unwrap_err();
    assert!(matches!(gone, ClientError::NotFound { .. }), "{gone:?}");
}

#[tokio::test]
async fn weekday_cron_schedules_act_on_weekdays_at_nine() {
    let client = client().await;
    let id = unique_task_queue("weekdays");
    let options = ScheduleOptions {
        paused: Some("only looking".to_owned()),
        ..ScheduleOptions::default()
    };
    let schedule = client
        .create_schedule_with(
            &id,
            tick(&id),
            ScheduleSpec::cron("0 9 * * MON-FRI"),
            options,
        )
        .await
        .unwrap();
    let described = schedule.describe().await.unwrap();
    assert!(described.next_action_times.len() >= 5, "{described:?}");
    for at in &described.next_action_times {
        let secs = at.duration_since(UNIX_EPOCH).unwrap().as_secs();
        let weekday = (secs / 86_400 + 4) % 7; // 1970-01-01 was a Thursday; 0 is Sunday
        assert!((1..=5).contains(&weekday), "{at:?} is not a weekday");
        assert_eq!(secs % 86_400, 9 * 3600, "{at:?} is not 09:00 UTC");
    }
    // Triggered now, paused or not, and only once.
    schedule.trigger(OverlapPolicy::AllowAll).await.unwrap();
    let triggered = eventually("the triggered action", async || {
        let d = schedule.describe().await.unwrap();
        (d.action_count == 1).then_some(d)
    })
    .await;
    assert_eq!(triggered.recent_actions.len(), 1);
    assert!(triggered.recent_actions[0].workflow_id.starts_with(&id));
    schedule.delete().await.unwrap();
}

#[tokio::test]
async fn a_backfill_takes_every_action_of_the_range() {
    let client = client().await;
    let id = unique_task_queue("backfill");
    let options = ScheduleOptions {
        paused: Some("backfill only".to_owned()),
        overlap: OverlapPolicy::AllowAll,
        ..ScheduleOptions::default()
    };
    let schedule = client
        .create_schedule_with(
            &id,
            tick(&id),
            ScheduleSpec::interval(Duration::from_secs(60)),
            options,
        )
        .await
        .unwrap();
    // Ten whole minutes in the past, with the range's ends between minute boundaries.
    let minute = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60;
    let at = |m: u64| UNIX_EPOCH + Duration::from_secs(m * 60 + 30);
    schedule
        .backfill(at(minute - 11), at(minute - 1), OverlapPolicy::AllowAll)
        .await
        .unwrap();
    let started = eventually("ten backfilled runs", async || {
        let runs = client
            .list_workflows(&format!("TemporalScheduledById = '{id}'"))
            .await
            .unwrap();
        (runs.len() >= 10).then_some(runs)
    })
    .await;
    assert_eq!(started.len(), 10, "one run per minute of the range");
    schedule.delete().await.unwrap();
}
