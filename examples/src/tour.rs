//! The pattern tour: runs each pattern end to end and reports what it returned.

use std::time::Instant;

use capstan::{Client, ClientError};
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
