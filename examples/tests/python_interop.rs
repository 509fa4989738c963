//! Interop with the real Python SDK (`temporalio`), on the real dev server and on the
//! embedded engine: a Python client runs Capstan workflows, a Capstan client runs a
//! workflow of a Python worker, both write the same payload bytes, the seed's Python
//! schedules run on the engine's scheduler, an operator pauses a Python activity,
//! lock-serialised Python update handlers run one at a time, and a Python worker
//! replays a reset run.

use std::path::PathBuf;

use capstan::{
    client::{history::Attributes, WorkflowExecutionStatus},
    converter,
    prelude::*,
    testing::{DevServer, Python},
};
use capstan_examples::{patterns::activity_choice::*, worker};

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
}

/// The input payload of a workflow's first run, as the server stored it.
async fn stored_input(client: &Client, workflow_id: &str) -> Vec<u8> {
    let history = client.workflow_handle(workflow_id).history().await.unwrap();
    match &history[0].attributes {
        Some(Attributes::WorkflowExecutionStartedEventAttributes(a)) => {
            a.input.as_ref().unwrap().payloads[0].data.clone()
        }
        other => panic!("first event is not the start: {other:?}"),
    }
}

/// Runs the Python script `name` with `ADDRESS QUEUE PREFIX` (a fresh queue, also the
/// workflows' id prefix, named after `label`); answers the JSON it prints.
async fn python_json(address: &str, name: &str, label: &str) -> serde_json::Value {
    let python = Python::ensure().await.expect("the Python SDK installs");
    let prefix = capstan::testing::unique_task_queue(label);
    let output = python
        .run_script(script(name), [address.to_owned(), prefix.clone(), prefix])
        .await
        .expect("the Python script succeeds");
    serde_json::from_str(output.stdout.trim()).expect("JSON on stdout")
}

/// Runs `test` with the address of the real dev server, then of a fresh embedded engine.
async fn on_both_backends<F: std::future::Future<Output = ()>>(test: impl Fn(String) -> F) {
    test(DevServer::shared().await.address()).await;
    let engine = capstan_engine::Engine::start(Default::default())
        .await
        .expect("the engine starts");
    test(engine.address()).await;
    engine.shutdown().await;
}

#[tokio::test]
async fn a_python_client_runs_capstan_workflows_with_the_same_bytes() {
    on_both_backends(a_python_client_runs_capstan_workflows_on).await;
}

async fn a_python_client_runs_capstan_workflows_on(address: String) {
    let python = Python::ensure().await.expect("the Python SDK installs");
    let client = Client::connect(&address).await.unwrap();
    let queue = capstan::testing::unique_task_queue("interop-py-client");
    let output = worker(&client, &queue)
        .run_until(python.run_script(
            script("run_capstan_workflows.py"),
            [address.clone(), queue.clone(), queue.clone()],
        ))
        .await
        .expect("the worker runs")
        .expect("the Python client succeeds");
    let results: serde_json::Value =
        serde_json::from_str(output.stdout.trim()).expect("JSON on stdout");
    assert_eq!(results["greeting"], "Hello, Python!");
    assert_eq!(results["fruits"], "Ordered 3 Apples...Ordered 5 Bananas...");
    // Update-with-start from Python: the account started, then the running one updated.
    assert_eq!(results["points"], serde_json::json!([10, 15]));
    // The Python SDK reads the workflow's metadata as `temporal.api.sdk.v1.WorkflowMetadata`.
    assert_eq!(results["handlers"]["type"], "CustomerRewardAccount");
    let updates = results["handlers"]["updates"]
        .as_array()
        .expect("update names");
    assert!(
        updates.contains(&"add_points".into()) && updates.contains(&"cancel".into()),
        "{results}"
    );
    // Python's JSON converter and Capstan's write identical bytes for the same value.
    let list = ShoppingList::three_apples_and_five_bananas();
    let ours = converter::to_payload(&list).unwrap().data;
    assert_eq!(
        stored_input(&client, &format!("{queue}-fruits")).await,
        ours
    );
    assert_eq!(
        String::from_utf8(ours).unwrap(),
        r#"{"items":[{"amount":3,"fruit":1},{"amount":5,"fruit":2}]}"#
    );
}

/// The Capstan-side definition of a workflow written in Python.
#[workflow(name = "PyComposeGreeting")]
#[derive(Default)]
struct PyComposeGreeting;

#[derive(Debug, Serialize, Deserialize, PartialEq, JsonSchema)]
struct Greeting {
    text: String,
    from: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
struct GreetingInput {
    greeting: String,
    name: String,
}

#[workflow]
impl PyComposeGreeting {
    #[run]
    async fn run(_ctx: WorkflowContext<Self>, _input: GreetingInput) -> WorkflowResult<Greeting> {
        unreachable!("implemented in Python")
    }
}

#[tokio::test]
async fn a_capstan_client_runs_a_python_workflow() {
    on_both_backends(a_capstan_client_runs_a_python_workflow_on).await;
}

async fn a_capstan_client_runs_a_python_workflow_on(address: String) {
    let python = Python::ensure().await.expect("the Python SDK installs");
    let client = Client::connect(&address).await.unwrap();
    let queue = capstan::testing::unique_task_queue("interop-py-worker");
    let python_worker = tokio::spawn({
        let (python, address, queue) = (python.clone(), address.clone(), queue.clone());
        async move {
            python
                .run_script(script("python_worker.py"), [address, queue])
                .await
        }
    });
    let id = format!("{queue}-greeting");
    let input = GreetingInput {
        greeting: "Hello".into(),
        name: "Rust".into(),
    };
    let greeting = PyComposeGreeting::execute(&client, &id, input)
        .task_queue(&queue)
        .await
        .unwrap();
    assert_eq!(
        greeting,
        Greeting {
            text: "Hello, Rust!".into(),
            from: "python".into()
        }
    );
    python_worker
        .await
        .unwrap()
        .expect("the Python worker exits cleanly");
    let sent = converter::to_payload(&GreetingInput {
        greeting: "Hello".into(),
        name: "Rust".into(),
    })
    .unwrap()
    .data;
    assert_eq!(stored_input(&client, &id).await, sent);
}

/// The seed's Schedule pattern as Python code, through the real Python SDK, against the
/// embedded engine's scheduler, with a Capstan worker running the scheduled workflows.
#[tokio::test]
async fn the_seeds_python_schedules_run_on_the_embedded_engine() {
    let engine = capstan_engine::Engine::start(Default::default())
        .await
        .expect("the engine starts");
    let python = Python::ensure().await.expect("the Python SDK installs");
    let client = Client::connect(engine.address()).await.unwrap();
    let queue = capstan::testing::unique_task_queue("interop-py-schedules");
    let (output, runs) = worker(&client, &queue)
        .run_until(async {
            let output = python
                .run_script(
                    script("seed_schedules.py"),
                    [engine.address(), queue.clone(), "seed".to_owned()],
                )
                .await
                .expect("the Python script succeeds");
            // The triggered and backfilled runs, once the Capstan worker finished them.
            for _ in 0..100 {
                let runs = client
                    .list_workflows("TemporalScheduledById = 'seed-interval'")
                    .await
                    .unwrap();
                if runs
                    .iter()
                    .all(|r| r.status == WorkflowExecutionStatus::Completed)
                {
                    return (output, runs);
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            panic!("the scheduled runs did not complete in 10 s");
        })
        .await
        .expect("the worker runs");
    let seen: serde_json::Value =
        serde_json::from_str(output.stdout.trim()).expect("JSON on stdout");
    assert_eq!(seen["interval_note"], "Runs every 2 minutes");
    assert_eq!(seen["interval_every"], 120.0);
    // The trigger, then one action per 2-minute mark of [now - 2 h, now - 5 min].
    let now = seen["now"].as_f64().unwrap();
    let (from, to) = ((now - 7200.0).ceil() as u64, (now - 300.0).floor() as u64);
    let backfilled = (from.div_ceil(120)..=to / 120).count() as u64;
    assert_eq!(seen["interval_actions"], 1 + backfilled, "{seen}");
    assert_eq!(runs.len() as u64, 1 + backfilled);
    let recent = seen["recent_workflow_ids"].as_array().unwrap();
    assert_eq!(recent.len(), 10, "{seen}");
    assert!(recent
        .iter()
        .all(|id| id.as_str().unwrap().starts_with("seed-scheduled-workflow-")));
    let next = seen["cron_next"].as_array().unwrap();
    assert!(!next.is_empty());
    for t in next {
        let secs = t.as_f64().unwrap() as u64;
        assert_eq!(secs % 86_400, 9 * 3600, "{t} is not 09:00 UTC");
        assert!(
            (1..=5).contains(&((secs / 86_400 + 4) % 7)),
            "{t} is not a weekday"
        );
    }
    assert_eq!(seen["cron_calendars"], 1, "the cron string, as a calendar");
    assert_eq!(seen["mixed_paused_by_pause"], true);
    assert_eq!(seen["mixed_paused"], false);
    assert_eq!(seen["mixed_note"], "Updated schedule");
    assert_eq!(
        seen["listed"],
        serde_json::json!(["seed-complex", "seed-cron", "seed-interval"])
    );
    let result: String = client
        .workflow_handle(&runs[0].workflow_id)
        .result_as()
        .await
        .unwrap();
    assert_eq!(result, "Processed: scheduled data");
    engine.shutdown().await;
}

/// A Python worker's activities are completed and failed from outside, by workflow and
/// activity id (the `ById` methods), on both backends alike.
#[tokio::test]
async fn python_activities_complete_by_id() {
    on_both_backends(python_activities_complete_by_id_on).await;
}

async fn python_activities_complete_by_id_on(address: String) {
    let seen = python_json(&address, "async_activity_completion.py", "interop-by-id").await;
    assert_eq!(seen["result"]["approved"], "approved by finance", "{seen}");
    assert_eq!(
        seen["result"]["refused"], "Refused: over the limit",
        "{seen}"
    );
    assert_eq!(seen["unknown_activity"]["status"], "NOT_FOUND", "{seen}");
}

/// The Python SDK pauses and unpauses a running activity (the activity is told why it
/// was cancelled, and runs again from attempt 1), and registers a custom search attribute
/// that a schedule's workflow carries and a list query finds, on both backends alike.
#[tokio::test]
async fn python_pauses_an_activity_and_finds_a_scheduled_run_by_its_search_attribute() {
    on_both_backends(python_operator_controls_on).await;
}

async fn python_operator_controls_on(address: String) {
    let seen = python_json(&address, "operator_controls.py", "interop-operator").await;
    assert_eq!(
        seen["paused"],
        serde_json::json!({"attempt": 2, "paused": true}),
        "{address}: {seen}"
    );
    assert_eq!(seen["result"], "done at attempt 1", "{address}: {seen}");
    assert_eq!(
        seen["attempts"],
        serde_json::json!([1, "paused", 1]),
        "{address}: {seen}"
    );
    assert_eq!(
        seen["found"],
        serde_json::json!([true]),
        "{address}: {seen}"
    );
    assert_eq!(seen["schedule_region"], true, "{address}: {seen}");
}

/// Updates sent before any worker runs, whose Python handlers a lock in the workflow
/// serialises across a durable timer: each completes with its own result, and no two
/// handlers are ever inside the lock at once, on both backends alike.
#[tokio::test]
async fn python_updates_admitted_before_the_worker_run_one_at_a_time_under_a_lock() {
    on_both_backends(python_serialized_updates_on).await;
}

async fn python_serialized_updates_on(address: String) {
    let seen = python_json(&address, "serialized_updates.py", "interop-serialized").await;
    assert_eq!(
        seen,
        serde_json::json!({
            "results": ["step 0", "step 1", "step 2", "step 3", "step 4"],
            "order": [0, 1, 2, 3, 4],
            "most_inside": 1,
        }),
        "{address}"
    );
}

/// Summaries and details the Python SDK sets on a workflow, its timer, its activity and
/// its child are kept: describe gives the run's and the child's, and the history each
/// event's, on both backends alike.
#[tokio::test]
async fn python_user_metadata_is_kept_on_runs_and_events() {
    on_both_backends(python_user_metadata_on).await;
}

async fn python_user_metadata_on(address: String) {
    let seen = python_json(&address, "user_metadata.py", "interop-metadata").await;
    assert_eq!(
        seen,
        serde_json::json!({
            "result": "hello metadata",
            "summary": "the run",
            "details": "all of it",
            "child_summary": "the child",
            "events": {
                "timer_started": "a short nap",
                "activity_task_scheduled": "greets",
                "start_child_workflow_execution_initiated": "the child",
            },
        }),
        "{address}"
    );
}

/// The Python SDK resets a workflow to the end of its first workflow task: the new run
/// replays the kept prefix on a Python worker, gets the later signal and update
/// reapplied, runs the activity again and completes; the run it replaced is terminated
/// and names it, on both backends alike.
#[tokio::test]
async fn python_resets_a_workflow_and_its_worker_replays_the_new_run() {
    on_both_backends(python_reset_on).await;
}

async fn python_reset_on(address: String) {
    let seen = python_json(&address, "reset_workflow.py", "interop-reset").await;
    assert_eq!(
        seen,
        serde_json::json!({
            "update before the reset": 2,
            "result": {
                "greeting": "hello reset",
                "inputs": ["signal 1", "update 1", "signal 2"],
            },
            "activity calls": ["reset", "reset"],
            "new run, after the prefix": [
                "WORKFLOW_TASK_FAILED",
                "WORKFLOW_EXECUTION_SIGNALED",
                "WORKFLOW_EXECUTION_UPDATE_ADMITTED",
                "WORKFLOW_TASK_SCHEDULED",
            ],
            "base closed": ["WORKFLOW_EXECUTION_TERMINATED", "try again"],
            "base names the new run": true,
            "base status": "WORKFLOW_EXECUTION_STATUS_TERMINATED",
        }),
        "{address}"
    );
}
