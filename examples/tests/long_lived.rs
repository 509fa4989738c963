//! The long-lived patterns (cancellation, continue-as-new, entity, concurrent timers,
//! polling) against a real Temporal dev server, with assertions on results and histories.

use std::{
    sync::OnceLock,
    time::{Duration, SystemTime},
};

use capstan::{
    client::{
        history::{Attributes, EventType, HistoryEvent},
        WorkflowExecutionStatus,
    },
    prelude::*,
    testing::{unique_task_queue, DevServer},
    workflow::{join, join_all},
    ClientError,
};
use capstan_examples::{patterns::*, tour, worker};

/// A client of `server` and a fresh task queue, so tests run in parallel.
async fn connect(server: &DevServer) -> (Client, String) {
    let client = Client::connect(server.address())
        .await
        .expect("the client connects");
    (client, unique_task_queue("long-lived"))
}

async fn setup() -> (Client, String) {
    connect(DevServer::shared().await).await
}

/// Events in a run's history before the server suggests continuing as new.
const SUGGEST_CONTINUE_AS_NEW_AT: u32 = 40;

/// A second dev server that suggests continue-as-new after a few events, started once.
async fn setup_low_history_threshold() -> (Client, String) {
    static SERVER: OnceLock<DevServer> = OnceLock::new();
    if SERVER.get().is_none() {
        let server = DevServer::start_with_args(vec![
            "--dynamic-config-value".to_owned(),
            format!("limit.historyCount.suggestContinueAsNew={SUGGEST_CONTINUE_AS_NEW_AT}"),
        ])
        .await
        .expect("the low-threshold dev server starts");
        // Another test may have won the race: its server is used, this one stops.
        let _ = SERVER.set(server);
    }
    connect(SERVER.get().expect("set above")).await
}

async fn tour_pattern(name: &str) -> tour::Report {
    let (client, queue) = setup().await;
    worker(&client, &queue)
        .run_until(tour::run(&client, &queue, name, &queue))
        .await
        .expect("the worker runs")
}

fn types(history: &[HistoryEvent]) -> Vec<EventType> {
    history.iter().map(|e| e.event_type()).collect()
}

fn count(history: &[HistoryEvent], kind: EventType) -> usize {
    history.iter().filter(|e| e.event_type() == kind).count()
}

fn position(history: &[HistoryEvent], kind: EventType) -> usize {
    history
        .iter()
        .position(|e| e.event_type() == kind)
        .unwrap_or_else(|| panic!("no {kind:?} in {:?}", types(history)))
}

fn time(event: &HistoryEvent) -> SystemTime {
    SystemTime::try_from(event.event_time.expect("events have times")).expect("a valid time")
}

// ---------------------------------------------------------------------------------------
// The tour entries.

#[tokio::test]
async fn tour_cancellation() {
    let report = tour_pattern("cancellation").await;
    assert!(report.ok, "{report:?}");
}

#[tokio::test]
async fn tour_continue_as_new() {
    let report = tour_pattern("continue-as-new").await;
    assert!(report.ok, "{report:?}");
}

#[tokio::test]
async fn tour_long_running_entity() {
    let report = tour_pattern("long-running-entity").await;
    assert!(report.ok, "{report:?}");
    assert!(
        report.result["rejected"]
            .as_str()
            .unwrap()
            .contains("add_points"),
        "{report:?}"
    );
}

#[tokio::test]
async fn tour_concurrent_timers() {
    let report = tour_pattern("concurrent-timers").await;
    assert!(report.ok, "{report:?}");
}

#[tokio::test]
async fn tour_polling_frequent() {
    let report = tour_pattern("polling-frequent").await;
    assert!(report.ok, "{report:?}");
}

#[tokio::test]
async fn tour_polling_infrequent() {
    let report = tour_pattern("polling-infrequent").await;
    assert!(report.ok, "{report:?}");
}

// ---------------------------------------------------------------------------------------
// Cancellation.

#[tokio::test]
async fn cancellation_stops_the_heartbeating_activity_and_still_runs_cleanup() {
    use cancellation::*;
    let (client, queue) = setup().await;
    let id = format!("cancellation-{queue}");
    let history = worker(&client, &queue)
        .run_until(async {
            let handle = CancellationWorkflow::start(&client, &id)
                .task_queue(&queue)
                .await
                .unwrap();
            // Two heartbeats at least, then cancel.
            tokio::time::sleep(Duration::from_millis(2500)).await;
            handle.cancel().await.unwrap();
            let outcome = handle.result().await;
            assert!(
                matches!(
                    outcome,
                    Err(ClientError::WorkflowFailed {
                        how: "was cancelled",
                        ..
                    })
                ),
                "{outcome:?}"
            );
            let description = handle.describe().await.unwrap();
            assert_eq!(description.status, WorkflowExecutionStatus::Canceled);
            handle.history().await.unwrap()
        })
        .await
        .expect("the worker runs");

    let requested = position(&history, EventType::ActivityTaskCancelRequested);
    let cancelled = position(&history, EventType::ActivityTaskCanceled);
    let Some(Attributes::ActivityTaskCanceledEventAttributes(acknowledged)) =
        &history[cancelled].attributes
    else {
        panic!("attributes of ActivityTaskCanceled");
    };
    // The running attempt acknowledged the cancel (it learned of it by heartbeating):
    // an activity cancelled before it started has no started event.
    assert_ne!(acknowledged.started_event_id, 0, "{acknowledged:?}");
    let cleanup = history
        .iter()
        .position(|e| match &e.attributes {
            Some(Attributes::ActivityTaskScheduledEventAttributes(a)) => {
                a.activity_type.as_ref().unwrap().name == "cleanup_activity"
            }
            _ => false,
        })
        .expect("cleanup_activity was scheduled");
    let Some(Attributes::ActivityTaskScheduledEventAttributes(scheduled)) =
        &history[cleanup].attributes
    else {
        unreachable!()
    };
    let cleanup_completed = history
        .iter()
        .position(|e| match &e.attributes {
            Some(Attributes::ActivityTaskCompletedEventAttributes(a)) => {
                a.scheduled_event_id == history[cleanup].event_id
            }
            _ => false,
        })
        .expect("cleanup_activity completed");
    assert!(
        requested < cancelled && cancelled < cleanup && cleanup < cleanup_completed,
        "{:?}",
        types(&history)
    );
    assert_eq!(
        scheduled.activity_type.as_ref().unwrap().name,
        "cleanup_activity"
    );
    assert_eq!(
        history.last().unwrap().event_type(),
        EventType::WorkflowExecutionCanceled
    );
}

// ---------------------------------------------------------------------------------------
// Continue-as-new.

/// The runs of `workflow_id`, newest first, once `expected` of them are visible.
async fn runs(client: &Client, workflow_id: &str, expected: usize) -> Vec<WorkflowExecutionStatus> {
    for _ in 0..100 {
        let runs = client
            .list_workflows(&format!("WorkflowId = '{workflow_id}'"))
            .await
            .unwrap();
        if runs.len() >= expected
            && runs
                .iter()
                .all(|r| r.status != WorkflowExecutionStatus::Running)
        {
            return runs.into_iter().map(|r| r.status).collect();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {expected} closed runs of {workflow_id} are visible");
}

#[tokio::test]
async fn continue_as_new_when_the_server_suggests_it_carries_the_state() {
    use continue_as_new::*;
    let (client, queue) = setup_low_history_threshold().await;
    let id = format!("long-running-{queue}");
    let input = WorkflowInput {
        max_iterations: 20,
        ..WorkflowInput::default()
    };
    let (handle, state) = worker(&client, &queue)
        .run_until(async {
            let handle = LongRunningWorkflow::start(&client, &id, input)
                .task_queue(&queue)
                .await
                .unwrap();
            let state = handle.result().await.unwrap();
            (handle, state)
        })
        .await
        .expect("the worker runs");
    assert_eq!(
        state,
        WorkflowState {
            iteration: 20,
            processed_items: 200
        }
    );
    // The first run ended by continuing as new, near the threshold.
    let first = handle.history().await.unwrap();
    let Some(Attributes::WorkflowExecutionContinuedAsNewEventAttributes(next)) =
        &first.last().unwrap().attributes
    else {
        panic!("the first run should continue as new: {:?}", types(&first));
    };
    assert!(!next.new_execution_run_id.is_empty());
    assert!(
        first.len() as u32 <= SUGGEST_CONTINUE_AS_NEW_AT + 10,
        "{} events",
        first.len()
    );
    // The last run has the same workflow id, and descends from the first.
    let last = client.workflow_handle(&id).history().await.unwrap();
    let Some(Attributes::WorkflowExecutionStartedEventAttributes(started)) = &last[0].attributes
    else {
        panic!("a history starts with WorkflowExecutionStarted");
    };
    assert_eq!(
        Some(started.first_execution_run_id.as_str()),
        handle.run_id()
    );
    assert!(!started.continued_execution_run_id.is_empty());
    assert_eq!(
        last.last().unwrap().event_type(),
        EventType::WorkflowExecutionCompleted
    );
    // Every run but the newest continued as new.
    let statuses = runs(&client, &id, 2).await;
    assert!(statuses.len() >= 2, "{statuses:?}");
    assert_eq!(statuses[0], WorkflowExecutionStatus::Completed);
    assert!(
        statuses[1..]
            .iter()
            .all(|s| *s == WorkflowExecutionStatus::ContinuedAsNew),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn continue_as_new_every_two_iterations_makes_a_chain_of_three_runs() {
    use continue_as_new::*;
    let (client, queue) = setup().await;
    let id = format!("long-running-{queue}");
    let input = WorkflowInput {
        max_iterations: 6,
        iterations_per_run: Some(2),
        ..WorkflowInput::default()
    };
    let state = worker(&client, &queue)
        .run_until(async {
            LongRunningWorkflow::execute(&client, &id, input)
                .task_queue(&queue)
                .await
                .unwrap()
        })
        .await
        .expect("the worker runs");
    assert_eq!(
        state,
        WorkflowState {
            iteration: 6,
            processed_items: 60
        }
    );
    let statuses = runs(&client, &id, 3).await;
    assert_eq!(
        statuses,
        [
            WorkflowExecutionStatus::Completed,
            WorkflowExecutionStatus::ContinuedAsNew,
            WorkflowExecutionStatus::ContinuedAsNew
        ]
    );
    // The last run started with the state of the one before.
    let last = client.workflow_handle(&id).history().await.unwrap();
    let Some(Attributes::WorkflowExecutionStartedEventAttributes(started)) = &last[0].attributes
    else {
        panic!("a history starts with WorkflowExecutionStarted");
    };
    let carried: WorkflowInput =
        capstan::converter::from_payload(&started.input.as_ref().unwrap().payloads[0]).unwrap();
    assert_eq!(
        carried.state,
        Some(WorkflowState {
            iteration: 4,
            processed_items: 40
        })
    );
}

// ---------------------------------------------------------------------------------------
// Long-running entity.

mod entity {
    pub(super) use capstan_examples::patterns::long_running_entity::*;

    pub(super) fn input(user_id: &str) -> CustomerRewardAccountInput {
        CustomerRewardAccountInput {
            user_id: user_id.to_owned(),
            ..Default::default()
        }
    }
}

#[tokio::test]
async fn entity_rejected_update_leaves_no_trace_and_the_account_goes_on() {
    use entity::*;
    let (client, queue) = setup().await;
    let id = format!("reward-{queue}");
    worker(&client, &queue)
        .run_until(async {
            let account = CustomerRewardAccount::start(&client, &id, input("u1"))
                .task_queue(&queue)
                .await
                .unwrap();
            account
                .add_points(AddPointInput { points: 10 })
                .await
                .unwrap();
            let rejected = account
                .update_with::<_, CustomerRewardAccountStatus>(
                    "add_points",
                    (serde_json::json!({ "points": 1.5 }),),
                )
                .await;
            let Err(ClientError::UpdateFailed {
                update, failure, ..
            }) = &rejected
            else {
                panic!("a non-integer must be rejected: {rejected:?}");
            };
            assert_eq!(update, "add_points");
            assert!(failure.message().contains("points"), "{failure}");
            // The workflow goes on.
            let status = account
                .add_points(AddPointInput { points: 20 })
                .await
                .unwrap();
            assert_eq!(status.points, 30);
            assert_eq!(account.query_reward_status().await.unwrap(), status);
            account.cancel_account().await.unwrap();
            account.result().await.unwrap();
            // Two updates accepted and completed besides `cancel`; no trace of the third.
            let history = account.history().await.unwrap();
            assert_eq!(
                count(&history, EventType::WorkflowExecutionUpdateAccepted),
                3
            );
            assert_eq!(
                count(&history, EventType::WorkflowExecutionUpdateCompleted),
                3
            );
            assert_eq!(
                count(&history, EventType::WorkflowExecutionUpdateRejected),
                0
            );
        })
        .await
        .expect("the worker runs");
}

/// Update-with-start: the first call starts the account and adds the points, the next
/// one reaches the running account, and one that must not meet a running workflow is
/// refused as a start would be. On the engine and on the dev server.
#[tokio::test]
async fn entity_update_with_start_starts_the_account_or_updates_the_running_one() {
    use entity::*;
    let engine = capstan_engine::Engine::start(Default::default())
        .await
        .expect("the engine starts");
    let on_engine = Client::connect(engine.address()).await.unwrap();
    let (on_dev_server, _) = setup().await;
    for client in [on_engine, on_dev_server] {
        let queue = unique_task_queue("update-with-start");
        let id = format!("reward-{queue}");
        worker(&client, &queue)
            .run_until(async {
                // Typed by the handler: its name, argument and result come from it.
                let add = |points| {
                    CustomerRewardAccount::start(&client, &id, input("u1"))
                        .task_queue(&queue)
                        .with_update(CustomerRewardAccount::update_add_points(AddPointInput {
                            points,
                        }))
                };
                let (account, first) = add(10).await.expect("the account starts");
                assert_eq!(first.points, 10);
                let (again, second) = add(5).await.expect("the running account takes it");
                assert_eq!(second.points, 15);
                assert_eq!(again.run_id(), account.run_id(), "the same run");
                let third = add(1).await.map(|(_, status)| status.points);
                let refused_by_policy = CustomerRewardAccount::start(&client, &id, input("u1"))
                    .task_queue(&queue)
                    .id_conflict_policy(capstan::options::WorkflowIdConflictPolicy::Fail)
                    .update_with_start::<_, CustomerRewardAccountStatus>(
                        "add_points",
                        (AddPointInput { points: 1 },),
                    )
                    .await;
                assert_eq!(third.ok(), Some(16));
                assert!(
                    matches!(refused_by_policy, Err(ClientError::AlreadyStarted { .. })),
                    "{:?}",
                    refused_by_policy.map(|(_, status)| status)
                );
                assert_eq!(account.query_reward_status().await.unwrap().points, 16);
                account.cancel_account().await.unwrap();
                account.result().await.unwrap();
            })
            .await
            .expect("the worker runs");
    }
}

/// `add_points`, sent again while the server refuses it for having 10 updates in flight
/// already (a refused update was not admitted, so sending it again cannot apply it twice).
async fn add_points_retrying(
    account: &entity::CustomerRewardAccountHandle,
    points: i64,
) -> entity::CustomerRewardAccountStatus {
    loop {
        match account.add_points(entity::AddPointInput { points }).await {
            Ok(status) => return status,
            Err(ClientError::Rpc { code, .. }) if format!("{code:?}") == "ResourceExhausted" => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("add_points({points}): {e}"),
        }
    }
}

#[tokio::test]
async fn entity_applies_concurrent_updates_exactly_once() {
    use entity::*;
    let (client, queue) = setup().await;
    let id = format!("reward-{queue}");
    worker(&client, &queue)
        .run_until(async {
            let account = CustomerRewardAccount::start(&client, &id, input("u2"))
                .task_queue(&queue)
                .await
                .unwrap();
            let updates = (1..=20).map(|i| {
                let account = account.clone();
                async move { add_points_retrying(&account, i * 10).await }
            });
            // Queries one at a time: the server buffers one query while a workflow task
            // is running, and refuses more.
            let queries = async {
                let mut seen = Vec::new();
                while seen.len() < 10 {
                    match account.query_reward_status().await {
                        Ok(status) => seen.push(status),
                        Err(ClientError::Rpc { code, .. })
                            if format!("{code:?}") == "ResourceExhausted" => {}
                        Err(e) => panic!("query_reward_status: {e}"),
                    }
                }
                seen
            };
            let (statuses, seen) = join(join_all(updates), queries).await;
            // Each update saw a different total: none was applied twice or lost.
            let mut totals: Vec<i64> = statuses.iter().map(|s| s.points).collect();
            totals.sort_unstable();
            totals.dedup();
            assert_eq!(totals.len(), 20, "{statuses:?}");
            assert_eq!(totals.last(), Some(&2100));
            // Queries during the updates see consistent states.
            for status in statuses.iter().chain(&seen) {
                assert_eq!(status.level, CustomerRewardLevel::for_points(status.points));
            }
            let status = account.query_reward_status().await.unwrap();
            assert_eq!(status.points, 2100);
            assert_eq!(status.level, CustomerRewardLevel::Platinum);
            let history = account.history().await.unwrap();
            assert_eq!(
                count(&history, EventType::WorkflowExecutionUpdateAccepted),
                20
            );
            assert_eq!(
                count(&history, EventType::WorkflowExecutionUpdateCompleted),
                20
            );
            account.cancel_account().await.unwrap();
        })
        .await
        .expect("the worker runs");
}

#[tokio::test]
async fn entity_levels_clamping_and_cancel() {
    use entity::*;
    use CustomerRewardLevel::*;
    let (client, queue) = setup().await;
    let id = format!("reward-{queue}");
    worker(&client, &queue)
        .run_until(async {
            let account = CustomerRewardAccount::start(&client, &id, input("u3"))
                .task_queue(&queue)
                .await
                .unwrap();
            for (points, total, level) in [
                (499, 499, Basic),
                (1, 500, Gold),
                (499, 999, Gold),
                (1, 1000, Platinum),
                (-5000, 0, Basic),
                (-1, 0, Basic),
                (42, 42, Basic),
            ] {
                let status = account.add_points(AddPointInput { points }).await.unwrap();
                assert_eq!(
                    (status.points, status.level),
                    (total, level),
                    "adding {points}"
                );
                assert!(status.is_active);
            }
            let closed = account.cancel_account().await.unwrap();
            let expected = CustomerRewardAccountStatus {
                level: Basic,
                points: 42,
                is_active: false,
            };
            assert_eq!(closed, expected);
            assert_eq!(account.result().await.unwrap(), expected);
            let description = account.describe().await.unwrap();
            assert_eq!(description.status, WorkflowExecutionStatus::Completed);
        })
        .await
        .expect("the worker runs");
}

#[tokio::test]
async fn entity_continues_as_new_with_its_points_and_level() {
    use entity::*;
    let (client, queue) = setup_low_history_threshold().await;
    let id = format!("reward-{queue}");
    worker(&client, &queue)
        .run_until(async {
            let account = CustomerRewardAccount::start(&client, &id, input("u4"))
                .task_queue(&queue)
                .await
                .unwrap();
            let mut total = 0;
            let mut updates = 0;
            loop {
                updates += 1;
                total += 100;
                let status = account
                    .add_points(AddPointInput { points: 100 })
                    .await
                    .unwrap();
                assert_eq!(status.points, total);
                let latest = client.workflow_handle(&id).describe().await.unwrap();
                if Some(latest.run_id.as_str()) != account.run_id() {
                    break;
                }
                assert!(updates < 40, "no continue-as-new after {updates} updates");
            }
            // The new run carries the points and level over, and takes more.
            let status = account
                .add_points(AddPointInput { points: 1 })
                .await
                .unwrap();
            assert_eq!(status.points, total + 1);
            assert_eq!(status.level, CustomerRewardLevel::for_points(total + 1));
            let closed = account.cancel_account().await.unwrap();
            assert_eq!(account.result().await.unwrap(), closed);
            let statuses = runs(&client, &id, 2).await;
            assert_eq!(statuses[0], WorkflowExecutionStatus::Completed);
            assert!(statuses[1..]
                .iter()
                .all(|s| *s == WorkflowExecutionStatus::ContinuedAsNew));
        })
        .await
        .expect("the worker runs");
}

// ---------------------------------------------------------------------------------------
// Concurrent timers.

#[tokio::test]
async fn concurrent_timers_send_the_exact_notification_sequence() {
    use concurrent_timers::*;
    use Maintenance::*;
    let (client, queue) = setup().await;
    let id = format!("maintenance-{queue}");
    // The seed's 3 months : 1 year : 2 years, with a month of 2/3 s.
    let schedule = MaintenanceSchedule {
        oil_change: Duration::from_secs(2),
        inspection: Duration::from_secs(8),
        coolant: Duration::from_secs(16),
    };
    let expected = [
        OilChange, OilChange, OilChange, Inspection, OilChange, OilChange, OilChange, OilChange,
        Coolant, Inspection, OilChange,
    ]
    .map(Maintenance::message);
    let history = worker(&client, &queue)
        .run_until(async {
            let handle = MaintenanceWorkflow::start(
                &client,
                &id,
                "driver@example.com".to_owned(),
                Some(schedule),
            )
            .task_queue(&queue)
            .await
            .unwrap();
            loop {
                let history = handle.history().await.unwrap();
                if count(&history, EventType::ActivityTaskCompleted) >= expected.len() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            handle.cancel().await.unwrap();
            let outcome = handle.result().await;
            assert!(outcome.is_err(), "{outcome:?}");
            handle.history().await.unwrap()
        })
        .await
        .expect("the worker runs");
    let sent = notifications(&history);
    assert_eq!(sent[..expected.len()], expected, "{sent:#?}");
    // Each timer was armed with its own period.
    let armed: Vec<Duration> = history
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(Attributes::TimerStartedEventAttributes(t)) => {
                Duration::try_from(t.start_to_fire_timeout.unwrap()).ok()
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        armed[..3],
        [schedule_secs(2), schedule_secs(8), schedule_secs(16)]
    );
    assert_eq!(
        history.last().unwrap().event_type(),
        EventType::WorkflowExecutionCanceled
    );
}

fn schedule_secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

// ---------------------------------------------------------------------------------------
// Frequent polling.

#[tokio::test]
async fn frequent_polling_succeeds_after_n_calls_in_one_attempt() {
    use polling_frequent::*;
    let (client, queue) = setup().await;
    let id = format!("frequent-{queue}");
    let data = worker(&client, &queue)
        .run_until(async {
            FrequentPollingWorkflow::execute(
                &client,
                &id,
                "fake://ready-after/5".to_owned(),
                Some(0.1),
            )
            .task_queue(&queue)
            .await
            .unwrap()
        })
        .await
        .expect("the worker runs");
    assert_eq!(data, "data after 5 calls (attempt 1)");
    let history = client.workflow_handle(&id).history().await.unwrap();
    assert_eq!(count(&history, EventType::ActivityTaskStarted), 1);
}

#[tokio::test]
async fn frequent_polling_retried_attempt_resumes_its_count() {
    use polling_frequent::*;
    let (client, queue) = setup().await;
    let id = format!("frequent-retry-{queue}");
    let data = worker(&client, &queue)
        .run_until(async {
            FrequentPollingWorkflow::execute(
                &client,
                &id,
                "fake://ready-after/30/crash-at/25".to_owned(),
                Some(0.1),
            )
            .task_queue(&queue)
            .await
            .unwrap()
        })
        .await
        .expect("the worker runs");
    assert_eq!(data, "data after 30 calls (attempt 2)");
    let history = client.workflow_handle(&id).history().await.unwrap();
    let started = position(&history, EventType::ActivityTaskStarted);
    let completed = position(&history, EventType::ActivityTaskCompleted);
    let Some(Attributes::ActivityTaskStartedEventAttributes(attempt)) =
        &history[started].attributes
    else {
        unreachable!()
    };
    assert_eq!(attempt.attempt, 2);
    let crash = attempt
        .last_failure
        .as_ref()
        .expect("the first attempt's failure");
    assert!(crash.message.contains("crashed"), "{crash:?}");
    // Resumed from call 24: the second attempt made a few calls, not thirty.
    let second_attempt = time(&history[completed])
        .duration_since(time(&history[started]))
        .unwrap();
    eprintln!("second attempt took {second_attempt:?}");
    assert!(
        second_attempt < Duration::from_secs(2),
        "{second_attempt:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Infrequent polling.

#[tokio::test]
async fn infrequent_polling_retries_at_a_fixed_interval() {
    use polling_infrequent::*;
    let (client, queue) = setup().await;
    let id = format!("infrequent-{queue}");
    let interval = Duration::from_secs(1);
    let status = worker(&client, &queue)
        .run_until(async {
            InfrequentPollingWorkflow::execute(
                &client,
                &id,
                "fake://ready-at/4".to_owned(),
                Some(interval),
            )
            .task_queue(&queue)
            .await
            .unwrap()
        })
        .await
        .expect("the worker runs");
    assert_eq!(status, "ready");
    let history = client.workflow_handle(&id).history().await.unwrap();
    let scheduled = position(&history, EventType::ActivityTaskScheduled);
    let started = position(&history, EventType::ActivityTaskStarted);
    let Some(Attributes::ActivityTaskStartedEventAttributes(attempt)) =
        &history[started].attributes
    else {
        unreachable!()
    };
    assert_eq!(attempt.attempt, 4);
    let previous = attempt
        .last_failure
        .as_ref()
        .expect("the third attempt's failure");
    assert!(
        previous.message.contains("Service not ready"),
        "{previous:?}"
    );
    let Some(Attributes::ActivityTaskScheduledEventAttributes(options)) =
        &history[scheduled].attributes
    else {
        unreachable!()
    };
    let policy = options.retry_policy.as_ref().unwrap();
    assert_eq!(policy.backoff_coefficient, 1.0);
    assert_eq!(policy.maximum_attempts, 100);
    // Three retries, one interval each (the last attempt's started event is written when
    // it starts; the first one's scheduled event when it was scheduled).
    let waited = time(&history[started])
        .duration_since(time(&history[scheduled]))
        .unwrap();
    assert!(
        waited >= interval * 3 && waited < interval * 3 + Duration::from_secs(2),
        "{waited:?}"
    );
}

#[tokio::test]
async fn infrequent_polling_stops_at_once_on_a_non_retryable_error() {
    use polling_infrequent::*;
    let (client, queue) = setup().await;
    let id = format!("job-{queue}");
    let interval = Duration::from_millis(500);
    let outcome = worker(&client, &queue)
        .run_until(async {
            JobMonitoringWorkflow::execute(
                &client,
                &id,
                "fake-job/fails-at/2".to_owned(),
                Some(interval),
            )
            .task_queue(&queue)
            .await
        })
        .await
        .expect("the worker runs");
    let err = outcome.expect_err("the failed job fails the workflow");
    let root = err.failure().unwrap().root_cause();
    assert_eq!(root.error_type(), Some("ValueError"));
    assert!(root.is_non_retryable());
    let history = client.workflow_handle(&id).history().await.unwrap();
    let started = position(&history, EventType::ActivityTaskStarted);
    let Some(Attributes::ActivityTaskStartedEventAttributes(attempt)) =
        &history[started].attributes
    else {
        unreachable!()
    };
    // The second of 48 allowed attempts was the last.
    assert_eq!(attempt.attempt, 2);
    assert_eq!(count(&history, EventType::ActivityTaskFailed), 1);
    assert_eq!(
        history.last().unwrap().event_type(),
        EventType::WorkflowExecutionFailed
    );
}

#[tokio::test]
async fn job_monitoring_completes_after_polls() {
    use polling_infrequent::*;
    let (client, queue) = setup().await;
    let id = format!("job-ok-{queue}");
    let done = worker(&client, &queue)
        .run_until(async {
            JobMonitoringWorkflow::execute(
                &client,
                &id,
                "fake-job/completes-at/3".to_owned(),
                Some(Duration::from_millis(300)),
            )
            .task_queue(&queue)
            .await
            .unwrap()
        })
        .await
        .expect("the worker runs");
    assert!(done);
    let history = client.workflow_handle(&id).history().await.unwrap();
    let Some(Attributes::ActivityTaskStartedEventAttributes(attempt)) =
        &history[position(&history, EventType::ActivityTaskStarted)].attributes
    else {
        unreachable!()
    };
    assert_eq!(attempt.attempt, 3);
}
