//! Workflow retry policies, cron schedules and start delays: each run that fails within its
//! retry policy is followed by the next attempt, a cron workflow runs at every time of its
//! schedule, a delayed start waits. Retries run on the engine and on the dev server alike;
//! cron and delays run on the engine's virtual clock (the dev server's cron is by the
//! minute, in real time).

use std::time::{Duration, SystemTime};

use capstan::{
    client::history::{Attributes, EventType},
    prelude::*,
    testing::{unique_task_queue, DevServer},
    ApplicationError, ClientError, RetryPolicy,
};
use support::event_time;

mod support;

/// Fails until attempt `succeed_on`, then returns its attempt.
#[workflow]
#[derive(Default)]
pub struct Flaky;

#[workflow]
impl Flaky {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>, succeed_on: u32) -> WorkflowResult<u32> {
        let attempt = ctx.info().attempt;
        if attempt < succeed_on {
            return Err(ApplicationError::new("Flaky", format!("attempt {attempt} fails")).into());
        }
        Ok(attempt)
    }
}

/// Returns when it ran, by the workflow's clock.
#[workflow]
#[derive(Default)]
pub struct Stamp;

#[workflow]
impl Stamp {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>) -> WorkflowResult<u64> {
        Ok(ctx
            .now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs())
    }
}

fn quick_retries(maximum_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        initial_interval: Some(Duration::from_millis(100)),
        backoff_coefficient: 1.0,
        maximum_attempts,
        ..RetryPolicy::default()
    }
}

/// The failed runs' retry states and the result of a workflow that succeeds on attempt 3
/// of 5, and the failure of one that gives up after 2.
async fn retries_on(address: String) -> (Vec<i32>, u32, String) {
    let client = Client::connect(&address).await.unwrap();
    let queue = unique_task_queue("retry");
    Worker::new(&client, &queue)
        .register_workflow::<Flaky>()
        .run_until(async {
            let id = format!("{queue}-third-time");
            let handle = Flaky::start(&client, &id, 3)
                .task_queue(&queue)
                .retry_policy(quick_retries(5))
                .await
                .unwrap();
            let result = handle.result().await.unwrap();
            // Visibility may lag behind on a real server.
            let mut runs = Vec::new();
            for _ in 0..100 {
                runs = client
                    .list_workflows(&format!("WorkflowId = '{id}'"))
                    .await
                    .unwrap();
                if runs.len() == 3 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let mut states = Vec::new();
            for run in runs {
                let history = client
                    .workflow_handle(&id)
                    .for_run(run.run_id)
                    .history()
                    .await
                    .unwrap();
                if let Some(Attributes::WorkflowExecutionFailedEventAttributes(a)) =
                    &history.last().unwrap().attributes
                {
                    states.push(a.retry_state);
                }
            }
            let gives_up = Flaky::start(&client, format!("{queue}-gives-up"), 10)
                .task_queue(&queue)
                .retry_policy(quick_retries(2))
                .await
                .unwrap();
            let error = match gives_up.result().await {
                Err(ClientError::WorkflowFailed { failure, .. }) => failure.to_string(),
                other => panic!("expected the workflow to fail, got {other:?}"),
            };
            (states, result, error)
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn a_failed_workflow_is_retried_by_its_policy_on_both_backends() {
    let dev = retries_on(DevServer::shared().await.address()).await;
    let (engine, _) = support::engine().await;
    let ours = retries_on(engine.address()).await;
    engine.shutdown().await;
    // Two failed runs, each followed by a retry (RETRY_STATE_IN_PROGRESS = 1); the third
    // attempt succeeds.
    assert_eq!(dev.0, [1, 1], "dev server");
    assert_eq!(dev.1, 3);
    assert!(dev.2.contains("attempt 2 fails"), "{}", dev.2);
    assert_eq!(ours, dev, "the engine retries as the dev server does");
}

#[tokio::test]
async fn a_cron_workflow_runs_at_each_time_of_its_schedule_and_a_delayed_start_waits() {
    let (engine, client) = support::virtual_clock_engine().await;
    let queue = unique_task_queue("cron");
    Worker::new(&client, &queue)
        .register_workflow::<Stamp>()
        .run_until(async {
            // Every 15 minutes, on the virtual clock: runs follow each other in
            // milliseconds of real time, each at its quarter hour.
            let cron = Stamp::start(&client, format!("{queue}-cron"))
                .task_queue(&queue)
                .cron_schedule("*/15 * * * *")
                .await
                .unwrap();
            let mut runs = Vec::new();
            for _ in 0..200 {
                runs = client
                    .list_workflows(&format!(
                        "WorkflowId = '{queue}-cron' AND ExecutionStatus = 'Completed'"
                    ))
                    .await
                    .unwrap();
                if runs.len() >= 4 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(runs.len() >= 4, "{} cron runs completed", runs.len());
            cron.terminate("enough").await.unwrap();
            let mut stamps = Vec::new();
            for run in &runs {
                let value: u64 = client
                    .workflow_handle(format!("{queue}-cron"))
                    .for_run(run.run_id.clone())
                    .history()
                    .await
                    .unwrap()
                    .iter()
                    .find_map(|e| match &e.attributes {
                        Some(Attributes::WorkflowExecutionCompletedEventAttributes(a)) => {
                            let data = &a.result.as_ref()?.payloads[0].data;
                            serde_json::from_slice(data).ok()
                        }
                        _ => None,
                    })
                    .expect("a completed run has a result");
                stamps.push(value);
            }
            stamps.sort_unstable();
            for stamp in &stamps {
                assert_eq!(stamp % 900, 0, "a run at {stamp} is off the quarter hours");
            }
            for pair in stamps.windows(2) {
                assert_eq!(pair[1] - pair[0], 900, "{stamps:?}");
            }

            // A start delay of a day: the first workflow task waits for it.
            let id = format!("{queue}-delayed");
            let delayed = Stamp::start(&client, &id)
                .task_queue(&queue)
                .start_delay(Duration::from_secs(24 * 3600))
                .await
                .unwrap();
            delayed.result().await.unwrap();
            let history = client.workflow_handle(&id).history().await.unwrap();
            let scheduled = history
                .iter()
                .find(|e| e.event_type() == EventType::WorkflowTaskScheduled)
                .unwrap();
            let waited = event_time(scheduled)
                .duration_since(event_time(&history[0]))
                .unwrap();
            assert!(
                waited >= Duration::from_secs(24 * 3600),
                "the first task came after {waited:?}"
            );
        })
        .await
        .unwrap();
    engine.shutdown().await;
}

#[tokio::test]
async fn a_bad_cron_schedule_is_refused_at_start() {
    let (engine, client) = support::engine().await;
    let error = Stamp::start(&client, "bad-cron")
        .task_queue("nobody")
        .cron_schedule("61 * * * *")
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("cron schedule `61 * * * *`"), "{error}");
    assert!(error.contains("out of range"), "{error}");
    engine.shutdown().await;
}
