//! The virtual clock: time jumps to the next timer whenever the engine is idle, so months
//! of timers run in milliseconds, and every stamp the workflow sees is virtual.

use std::time::{Duration, Instant, SystemTime};

use capstan::{
    client::history::{Attributes, EventType, HistoryEvent},
    prelude::*,
    testing::unique_task_queue,
};
use capstan_engine::{Engine, EngineOptions};
use capstan_examples::{
    patterns::concurrent_timers::{notifications, Maintenance, MaintenanceWorkflow},
    worker,
};
use support::event_time;

mod support;

const DAY: Duration = Duration::from_secs(24 * 3600);

/// A fresh engine, on the virtual clock or not, a client of it and a task queue.
async fn setup(virtual_clock: bool) -> (Engine, Client, String) {
    let (engine, client) = support::start(EngineOptions {
        virtual_clock,
        ..EngineOptions::default()
    })
    .await;
    (engine, client, unique_task_queue("virtual-clock"))
}

/// The seed's periods merged by hand: oil change every 3 months (91.25 days), inspection
/// every 365 days, coolant every 730 days, through day 730 inclusive. Timers due at the
/// same instant fire together and the workflow's select takes the leftmost first.
fn two_years_of_maintenance() -> Vec<&'static str> {
    use Maintenance::*;
    [
        OilChange,  // day 91.25
        OilChange,  // 182.5
        OilChange,  // 273.75
        OilChange,  // 365, with the inspection
        Inspection, // 365
        OilChange,  // 456.25
        OilChange,  // 547.5
        OilChange,  // 638.75
        OilChange,  // 730, with the inspection and the coolant
        Inspection, // 730
        Coolant,    // 730
    ]
    .map(Maintenance::message)
    .to_vec()
}

#[tokio::test]
async fn two_simulated_years_of_concurrent_timers_take_well_under_a_few_seconds() {
    let (engine, client, queue) = setup(true).await;
    let id = format!("maintenance-{queue}");
    let wall = Instant::now();
    let history = worker(&client, &queue)
        .run_until(async {
            // The workflow sends reminders forever; a run timeout just past day 730 ends
            // it on the engine's own clock, so the history is exactly two years.
            let handle =
                MaintenanceWorkflow::start(&client, &id, "driver@example.com".to_owned(), None)
                    .task_queue(&queue)
                    .run_timeout(DAY * 731)
                    .await
                    .unwrap();
            let outcome = handle.result().await;
            assert!(outcome.is_err(), "the run times out: {outcome:?}");
            handle.history().await.unwrap()
        })
        .await
        .expect("the worker runs");
    let wall = wall.elapsed();
    println!("two simulated years of MaintenanceWorkflow in {wall:?} of wall time");
    assert!(wall < Duration::from_secs(5), "took {wall:?}");

    assert_eq!(notifications(&history), two_years_of_maintenance());
    assert_eq!(
        history.last().unwrap().event_type(),
        EventType::WorkflowExecutionTimedOut
    );
    // Each notification is stamped at its timer's deadline exactly: the clock stands
    // still while the engine works, so re-armed timers do not drift.
    let start = event_time(&history[0]);
    let sent_on: Vec<f64> = history
        .iter()
        .filter(|e| e.event_type() == EventType::ActivityTaskScheduled)
        .map(|e| event_time(e).duration_since(start).unwrap().as_secs_f64() / DAY.as_secs_f64())
        .collect();
    assert_eq!(
        sent_on,
        [91.25, 182.5, 273.75, 365.0, 365.0, 456.25, 547.5, 638.75, 730.0, 730.0, 730.0]
    );
    let span = event_time(history.last().unwrap())
        .duration_since(start)
        .unwrap();
    assert_eq!(span, DAY * 731, "the history spans the run timeout");
    // The run started at the real time.
    let skew = SystemTime::now()
        .duration_since(start)
        .unwrap_or_else(|e| e.duration());
    assert!(skew < Duration::from_secs(60), "started {skew:?} from now");
    // The closed run's leftover timers do not move the clock.
    let now = engine.now();
    assert!(
        now >= start + DAY * 731 && now < start + DAY * 732,
        "{now:?}"
    );
    engine.shutdown().await;
}

/// Sleeps 30 days and returns how much time the workflow saw pass.
#[workflow]
#[derive(Default)]
pub struct MonthLongNap;

#[workflow]
impl MonthLongNap {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>) -> WorkflowResult<u64> {
        let before = ctx.now();
        ctx.sleep(DAY * 30).await?;
        let after = ctx.now();
        Ok(after.duration_since(before).unwrap_or_default().as_secs())
    }
}

async fn nap(virtual_clock: bool) -> (Duration, u64, Vec<HistoryEvent>) {
    let (engine, client, queue) = setup(virtual_clock).await;
    let wall = Instant::now();
    let (slept, history) = Worker::new(&client, &queue)
        .register_workflow::<MonthLongNap>()
        .run_until(async {
            let handle = MonthLongNap::start(&client, format!("nap-{queue}"))
                .task_queue(&queue)
                .await
                .unwrap();
            let timeout = if virtual_clock { 30 } else { 2 };
            let slept = tokio::time::timeout(Duration::from_secs(timeout), handle.result())
                .await
                .ok()
                .map(|r| r.unwrap());
            (slept, handle.history().await.unwrap())
        })
        .await
        .expect("the worker runs");
    let wall = wall.elapsed();
    engine.shutdown().await;
    (wall, slept.unwrap_or(0), history)
}

#[tokio::test]
async fn a_thirty_day_sleep_completes_at_once_and_the_workflow_sees_thirty_days_pass() {
    let (wall, slept, history) = nap(true).await;
    println!("a 30-day sleep in {wall:?} of wall time");
    assert!(wall < Duration::from_secs(5), "took {wall:?}");
    assert_eq!(
        slept,
        30 * 24 * 3600,
        "ctx.now() moved by the sleep exactly"
    );
    assert_eq!(
        history.last().unwrap().event_type(),
        EventType::WorkflowExecutionCompleted
    );
    let fired = history
        .iter()
        .find(|e| e.event_type() == EventType::TimerFired)
        .unwrap();
    let started = history
        .iter()
        .find(|e| {
            matches!(
                e.attributes,
                Some(Attributes::TimerStartedEventAttributes(_))
            )
        })
        .unwrap();
    assert_eq!(
        event_time(fired)
            .duration_since(event_time(started))
            .unwrap(),
        DAY * 30
    );
}

#[tokio::test]
async fn without_the_virtual_clock_time_is_real() {
    let (_, slept, history) = nap(false).await;
    assert_eq!(slept, 0, "the 30-day sleep is still running");
    assert!(history
        .iter()
        .any(|e| e.event_type() == EventType::TimerStarted));
    assert!(!history
        .iter()
        .any(|e| e.event_type() == EventType::TimerFired));
    let start = event_time(&history[0]);
    let skew = SystemTime::now()
        .duration_since(start)
        .unwrap_or_else(|e| e.duration());
    assert!(skew < Duration::from_secs(60));
}

/// An activity that runs for a while keeps the engine busy: its start-to-close timeout
/// (an hour) is not skipped to while it runs.
#[activity]
pub async fn slow_step() -> Result<String, ActivityError> {
    tokio::time::sleep(Duration::from_millis(1500)).await;
    Ok("done".to_owned())
}

/// Runs [`slow_step`] with an hour's timeout, then sleeps a day.
#[workflow]
#[derive(Default)]
pub struct SlowThenSleep;

#[workflow]
impl SlowThenSleep {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>) -> WorkflowResult<String> {
        let out = ctx
            .activity(slow_step, ())
            .start_to_close_timeout(Duration::from_secs(3600))
            .await?;
        ctx.sleep(DAY).await?;
        Ok(out)
    }
}

#[tokio::test]
async fn a_running_activity_keeps_the_clock_from_skipping_its_timeouts() {
    let (engine, client, queue) = setup(true).await;
    let out = Worker::new(&client, &queue)
        .register_workflow::<SlowThenSleep>()
        .register_activity(slow_step)
        .run_until(async {
            SlowThenSleep::start(&client, format!("slow-{queue}"))
                .task_queue(&queue)
                .await
                .unwrap()
                .result()
                .await
        })
        .await
        .expect("the worker runs");
    assert_eq!(out.unwrap(), "done");
    engine.shutdown().await;
}
