//! The pattern tour: runs each pattern end to end and reports what it returned.

use std::time::{Duration, Instant};

use capstan::{
    client::history::{Attributes, EventType, HistoryEvent},
    Client, ClientError,
};
use serde::Serialize;
use serde_json::{json, Value};

use crate::patterns::*;

/// One pattern of the tour.
pub struct Pattern {
    /// Kebab-case of the seed's title.
    pub name: &'static str,
    /// What it shows.
    pub summary: &'static str,
}

/// Every pattern, in the seed's order.
pub const PATTERNS: &[Pattern] = &[
    Pattern {
        name: "activity-choice",
        summary: "pick the activity from the input",
    },
    Pattern {
        name: "parallel-activity",
        summary: "run activities concurrently and gather them",
    },
    Pattern {
        name: "cancellation",
        summary: "a heartbeating activity learns of the cancel; cleanup still runs",
    },
    Pattern {
        name: "continue-as-new",
        summary: "carry state into a fresh run with the same workflow id",
    },
    Pattern {
        name: "long-running-entity",
        summary: "an account driven by updates and queries",
    },
    Pattern {
        name: "concurrent-timers",
        summary: "three recurring timers raced (the seed's 3 months / 1 year / 2 years scaled \
                  to 1 s / 2.5 s / 4 s)",
    },
    Pattern {
        name: "child-workflow",
        summary: "execute a child, and start one with a handle",
    },
    Pattern {
        name: "exceptions",
        summary: "retries, then the full cause chain at the client",
    },
    Pattern {
        name: "local-activity",
        summary: "short activities inside the worker",
    },
    Pattern {
        name: "mtls",
        summary: "client and worker authenticate with certificates; others are refused",
    },
    Pattern {
        name: "custom-metrics",
        summary: "a Prometheus endpoint, an activity interceptor and workflow-side metrics",
    },
    Pattern {
        name: "encryption",
        summary: "AES-GCM payloads: the server stores only ciphertext",
    },
    Pattern {
        name: "polling-frequent",
        summary: "poll in a heartbeating activity loop",
    },
    Pattern {
        name: "polling-infrequent",
        summary: "poll by retrying a failing activity at a fixed interval",
    },
    Pattern {
        name: "schedule",
        summary: "the server starts workflows every 2 minutes, on weekday mornings, on \
                  trigger and for a backfilled range",
    },
    Pattern {
        name: "pydantic-converter",
        summary: "typed, validated payloads",
    },
];

/// The outcome of one pattern, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The pattern's name.
    pub pattern: &'static str,
    /// Whether it did what the seed says it does.
    pub ok: bool,
    /// What it returned (or the error).
    pub result: Value,
    /// Milliseconds it took.
    pub ms: u128,
}

/// Runs one pattern against a worker polling `task_queue`; `run_id` keeps workflow ids
/// unique between tours.
pub async fn run(client: &Client, task_queue: &str, name: &str, run_id: &str) -> Report {
    let pattern = PATTERNS
        .iter()
        .find(|p| p.name == name)
        .map(|p| p.name)
        .unwrap_or("unknown");
    let started = Instant::now();
    let outcome = run_pattern(client, task_queue, name, run_id).await;
    let (ok, result) = match outcome {
        Ok(value) => (true, value),
        Err(e) => (false, json!({ "error": format!("{e:#}") })),
    };
    Report {
        pattern,
        ok,
        result,
        ms: started.elapsed().as_millis(),
    }
}

async fn run_pattern(client: &Client, tq: &str, name: &str, run_id: &str) -> anyhow::Result<Value> {
    let id = |w: &str| format!("{w}-{run_id}");
    match name {
        "activity-choice" => {
            use activity_choice::*;
            let list = ShoppingList {
                items: vec![
                    ShoppingItem {
                        fruit: Fruit::Apple,
                        amount: 3,
                    },
                    ShoppingItem {
                        fruit: Fruit::Banana,
                        amount: 5,
                    },
                ],
            };
            let text = PurchaseFruitsWorkflow::execute(client, id("purchase-fruits"), list)
                .task_queue(tq)
                .await?;
            anyhow::ensure!(
                text == "Ordered 3 Apples...Ordered 5 Bananas...",
                "unexpected result {text:?}"
            );
            Ok(json!(text))
        }
        "parallel-activity" => {
            use parallel_activity::*;
            let greetings = SayHelloWorkflow::execute(client, id("say-hello"))
                .task_queue(tq)
                .await?;
            anyhow::ensure!(
                greetings == ["Hello, user1!", "Hello, user2!", "Hello, user3!"],
                "unexpected result {greetings:?}"
            );
            Ok(json!(greetings))
        }
        "child-workflow" => {
            use child_workflow::*;
            let executed = GreetingWorkflow::execute(client, id("greeting"), "World".to_owned())
                .task_queue(tq)
                .await?;
            let started =
                AdvancedParentWorkflow::execute(client, id("advanced-parent"), "World".to_owned())
                    .task_queue(tq)
                    .await?;
            anyhow::ensure!(
                executed == "Hello, World!" && started == "Hi, World!",
                "unexpected results {executed:?}, {started:?}"
            );
            Ok(json!({ "execute_child_workflow": executed, "start_child_workflow": started }))
        }
        "exceptions" => {
            use exceptions::*;
            let outcome = DataProcessingWorkflow::execute(
                client,
                id("data-processing"),
                "test-data".to_owned(),
            )
            .task_queue(tq)
            .await;
            let Err(err @ ClientError::WorkflowFailed { .. }) = outcome else {
                anyhow::bail!("the workflow should fail, got {outcome:?}");
            };
            let failure = err.failure().expect("a workflow failure");
            let chain: Vec<Value> = failure
                .chain()
                .map(|f| json!({ "kind": format!("{:?}", f.kind()), "message": f.message(), "type": f.error_type() }))
                .collect();
            let root = failure.root_cause();
            anyhow::ensure!(
                root.error_type() == Some("RuntimeError"),
                "root cause should be the activity's RuntimeError: {failure}"
            );
            Ok(json!({ "error": err.to_string(), "chain": chain }))
        }
        "local-activity" => {
            use local_activity::*;
            let text =
                LocalActivityWorkflow::execute(client, id("local-activity"), "World".to_owned())
                    .task_queue(tq)
                    .await?;
            anyhow::ensure!(text == "Hello, World!", "unexpected result {text:?}");
            Ok(json!(text))
        }
        "pydantic-converter" => {
            use pydantic_converter::*;
            let users: Vec<UserData> = serde_json::from_value(json!([
                { "user_id": 1, "ip_address": "192.168.1.1" },
                { "user_id": 2, "ip_address": "10.0.0.1" }
            ]))?;
            let count = PydanticWorkflow::execute(client, id("pydantic"), users)
                .task_queue(tq)
                .await?;
            anyhow::ensure!(count == 2, "unexpected count {count}");
            let rejected = serde_json::from_value::<Vec<UserData>>(
                json!([{ "user_id": 0, "ip_address": "10.0.0.1" }]),
            )
            .map(|_| "accepted".to_owned())
            .unwrap_or_else(|e| e.to_string());
            Ok(json!({ "processed": count, "invalid_user_id": rejected }))
        }
        "cancellation" => {
            use cancellation::*;
            let handle = CancellationWorkflow::start(client, id("cancellation"))
                .task_queue(tq)
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
        "continue-as-new" => {
            use continue_as_new::*;
            let input = WorkflowInput {
                max_iterations: 6,
                iterations_per_run: Some(2),
                ..WorkflowInput::default()
            };
            let handle = LongRunningWorkflow::start(client, id("long-running"), input)
                .task_queue(tq)
                .await?;
            let state = handle.result().await?;
            let last_run = client
                .workflow_handle(handle.workflow_id())
                .describe()
                .await?;
            anyhow::ensure!(
                state.iteration == 6 && state.processed_items == 60,
                "unexpected final state {state:?}"
            );
            anyhow::ensure!(
                Some(last_run.run_id.as_str()) != handle.run_id(),
                "the workflow should have continued as new"
            );
            Ok(json!({
                "iteration": state.iteration,
                "processed_items": state.processed_items,
                "first_run": handle.run_id(),
                "last_run": last_run.run_id,
            }))
        }
        "long-running-entity" => {
            use long_running_entity::*;
            let input = CustomerRewardAccountInput {
                user_id: "user-1".to_owned(),
                ..Default::default()
            };
            let account = CustomerRewardAccount::start(client, id("reward-account"), input)
                .task_queue(tq)
                .await?;
            let mut levels = Vec::new();
            for points in [300, 300, 500, -5000, 120] {
                let status = account.add_points(AddPointInput { points }).await?;
                levels.push(json!([points, status.points, status.level]));
            }
            let rejected = account
                .update_with::<_, CustomerRewardAccountStatus>(
                    "add_points",
                    (json!({ "points": 1.5 }),),
                )
                .await
                .map(|_| "accepted".to_owned())
                .unwrap_or_else(|e| e.to_string());
            let queried = account.query_reward_status().await?;
            let closed = account.cancel_account().await?;
            let result = account.result().await?;
            anyhow::ensure!(
                queried.points == 120 && !closed.is_active && result == closed,
                "unexpected statuses {queried:?}, {closed:?}, {result:?}"
            );
            Ok(json!({ "add_points": levels, "rejected": rejected, "result": result }))
        }
        "concurrent-timers" => {
            use concurrent_timers::*;
            let schedule = MaintenanceSchedule {
                oil_change: Duration::from_millis(1000),
                inspection: Duration::from_millis(2500),
                coolant: Duration::from_millis(4000),
            };
            let handle = MaintenanceWorkflow::start(
                client,
                id("maintenance"),
                "driver@example.com".to_owned(),
                Some(schedule),
            )
            .task_queue(tq)
            .await?;
            let sent = loop {
                let sent = notifications(&handle.history().await?);
                if sent.len() >= 3 {
                    break sent;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            handle.cancel().await?;
            let expected = [
                Maintenance::OilChange,
                Maintenance::OilChange,
                Maintenance::Inspection,
            ]
            .map(Maintenance::message);
            anyhow::ensure!(sent[..3] == expected, "unexpected notifications {sent:?}");
            Ok(json!(sent))
        }
        "polling-frequent" => {
            use polling_frequent::*;
            let data = FrequentPollingWorkflow::execute(
                client,
                id("frequent-polling"),
                "fake://ready-after/4".to_owned(),
                Some(0.1),
            )
            .task_queue(tq)
            .await?;
            anyhow::ensure!(
                data == "data after 4 calls (attempt 1)",
                "unexpected {data:?}"
            );
            Ok(json!(data))
        }
        "schedule" => {
            use schedule::*;
            let interval = create_interval_schedule(
                client,
                &id("interval-schedule"),
                &id("scheduled-workflow"),
                tq,
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
            let now = std::time::SystemTime::now();
            backfill_schedule(&interval, now).await?;
            // One action per 2-minute mark in [now - 2 h, now - 5 min].
            let mark = |t: std::time::SystemTime| {
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
                tq,
            )
            .await?;
            let mornings = cron.describe().await?.next_action_times;
            let weekday_nine = |t: &std::time::SystemTime| {
                let secs = mark(*t);
                let weekday = (secs / 86_400 + 4) % 7; // 1970-01-01 was a Thursday
                (1..=5).contains(&weekday) && secs % 86_400 == 9 * 3600
            };
            anyhow::ensure!(
                !mornings.is_empty() && mornings.iter().all(weekday_nine),
                "the cron schedule should act at 09:00 UTC on weekdays: {mornings:?}"
            );

            let managed =
                manage_schedule(client, &id("complex-schedule"), &id("complex-workflow"), tq)
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
                    && managed_state.spec.intervals()
                        == [(Duration::from_secs(3600), Duration::ZERO)],
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
        "polling-infrequent" => {
            use polling_infrequent::*;
            let every = Some(Duration::from_millis(500));
            let status = InfrequentPollingWorkflow::execute(
                client,
                id("infrequent-polling"),
                "fake://ready-at/3".to_owned(),
                every,
            )
            .task_queue(tq)
            .await?;
            let job = JobMonitoringWorkflow::execute(
                client,
                id("job-monitoring"),
                "fake-job/fails-at/2".to_owned(),
                every,
            )
            .task_queue(tq)
            .await;
            let Err(err @ ClientError::WorkflowFailed { .. }) = job else {
                anyhow::bail!("the failed job should fail the workflow, got {job:?}");
            };
            let root = err.failure().expect("a workflow failure").root_cause();
            anyhow::ensure!(
                status == "ready" && root.error_type() == Some("ValueError"),
                "unexpected {status:?}, {root}"
            );
            Ok(json!({ "service": status, "job": root.message() }))
        }
        "mtls" => {
            use mtls::*;
            // A server of its own that requires client certificates (the embedded engine
            // with TLS), with throwaway certificates in files.
            let dir = std::env::temp_dir().join(format!("capstan-tour-mtls-{run_id}"));
            let certs = Certificates::generate(&dir)?;
            let tls = capstan_engine::EngineTls::from_files(
                &certs.server.0,
                &certs.server.1,
                Some(&certs.ca),
            )?;
            let engine = capstan_engine::Engine::start(capstan_engine::EngineOptions {
                tls: Some(tls),
                ..Default::default()
            })
            .await?;
            let secure = create_secure_client(
                &engine.address(),
                Some(certs.ca.clone()),
                certs.client.0.clone(),
                certs.client.1.clone(),
            )
            .await?;
            let queue = format!("{tq}-secure");
            let result = capstan::Worker::new(&secure, &queue)
                .register_workflow::<SecureWorkflow>()
                .run_until(
                    SecureWorkflow::execute(&secure, id("secure"), "payload".to_owned())
                        .task_queue(&queue),
                )
                .await??;
            let refused = Client::builder(engine.address())
                .tls(capstan::TlsConfig {
                    server_root_ca_cert: Some(certs.ca.clone()),
                    domain: Some("localhost".to_owned()),
                    ..Default::default()
                })
                .connect()
                .await
                .err()
                .map(|e| e.to_string());
            std::fs::remove_dir_all(&dir)?;
            anyhow::ensure!(
                result == "Securely processed: payload",
                "unexpected {result:?}"
            );
            anyhow::ensure!(
                refused.is_some(),
                "a client without a certificate was let in"
            );
            Ok(json!({ "result": result, "without_certificate": refused }))
        }
        "custom-metrics" => {
            use custom_metrics::*;
            let queue = format!("{tq}-metrics");
            let (result, scraped) = run_and_scrape(client, &queue, &id("metrics"), false).await?;
            let completed = series_value(
                &scraped,
                "activity_executions_total",
                &[("status", "completed")],
            );
            let latency = series_value(
                &scraped,
                "activity_schedule_to_start_latency_count",
                &[("activity_type", "my_activity")],
            );
            anyhow::ensure!(
                completed == Some(1.0) && latency == Some(1.0),
                "unexpected metrics:\n{scraped}"
            );
            Ok(
                json!({ "result": result, "activity_executions_total{status=completed}": completed,
                       "activity_schedule_to_start_latency_count": latency }),
            )
        }
        "encryption" => {
            use encryption::*;
            // A throwaway key in a file, as an operator would keep one.
            let dir = std::env::temp_dir().join(format!("capstan-tour-{run_id}"));
            std::fs::create_dir_all(&dir)?;
            let key_file = dir.join("keys");
            let key: [u8; 32] = std::array::from_fn(|i| (i as u8) ^ (run_id.len() as u8) ^ 0x5a);
            std::fs::write(&key_file, format!("tour-key={}\n", base64_encode(&key)))?;
            let codec = codec(Some(&key_file))?;
            let (result, history) = run_encrypted(
                client.address(),
                codec,
                &format!("{tq}-encrypted"),
                &id("encrypted"),
            )
            .await?;
            std::fs::remove_dir_all(&dir)?;
            anyhow::ensure!(
                !stored_in_clear(&history, PLAINTEXT_CARD),
                "plaintext in the server's history"
            );
            Ok(json!({ "result": result, "plaintext_in_history": false }))
        }
        other => anyhow::bail!(
            "unknown pattern `{other}`; patterns: {}",
            PATTERNS
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Polls `check` every 100 ms for up to 30 s.
async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> anyhow::Result<T> {
    for _ in 0..300 {
        if let Some(value) = check().await {
            return Ok(value);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("not reached in 30 s: {what}")
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The names of the events of a history, in order.
fn event_types(history: &[HistoryEvent]) -> Vec<&'static str> {
    history
        .iter()
        .map(|e| e.event_type().as_str_name())
        .collect()
}

/// The messages `send_notification` was scheduled with, in order.
pub fn notifications(history: &[HistoryEvent]) -> Vec<String> {
    history
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(Attributes::ActivityTaskScheduledEventAttributes(a)) => {
                let message = a.input.as_ref()?.payloads.get(1)?;
                capstan::converter::from_payload(message).ok()
            }
            _ => None,
        })
        .collect()
}
