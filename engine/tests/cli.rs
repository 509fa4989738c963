//! The `temporal` CLI, a client no one here wrote, against the embedded engine: workflow
//! start, signal, query, describe, list, show, cancel and terminate, and schedules.

use std::{process::Output, time::Duration};

use capstan::prelude::*;
use serde_json::Value;
use support::counter::Counter;

mod support;

/// Runs `temporal ARGS --address ADDRESS` and returns its output; panics with its stderr
/// when it fails.
async fn temporal(address: &str, args: &[&str]) -> Output {
    let cli = capstan::testing::temporal_cli().expect("the temporal CLI installs");
    let output = tokio::process::Command::new(cli)
        .args(args)
        .args(["--address", address, "--namespace", "default"])
        .env_remove("TEMPORAL_ADDRESS")
        .env_remove("TEMPORAL_NAMESPACE")
        .output()
        .await
        .expect("the CLI runs");
    assert!(
        output.status.success(),
        "temporal {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `temporal workflow start` of a `Counter` with id `id` and input `input`.
async fn start_counter(address: &str, tq: &str, id: &str, input: &str) {
    let args = ["workflow", "start", "--type", "Counter", "--task-queue", tq];
    temporal(
        address,
        &[&args[..], &["--workflow-id", id, "--input", input]].concat(),
    )
    .await;
}

async fn temporal_json(address: &str, args: &[&str]) -> Value {
    let output = temporal(address, &[args, &["--output", "json"]].concat()).await;
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "temporal {args:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn status(described: &Value) -> &str {
    described["workflowExecutionInfo"]["status"]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test]
async fn the_temporal_cli_drives_workflows_and_schedules_on_the_engine() {
    let (engine, client) = support::engine().await;
    let address = engine.address();
    let tq = "cli";
    Worker::new(&client, tq)
        .register_workflow::<Counter>()
        .run_until(async {
            let a = &address;
            start_counter(a, tq, "counter", "5").await;
            temporal(
                a,
                &[
                    "workflow",
                    "signal",
                    "--workflow-id",
                    "counter",
                    "--name",
                    "add",
                    "--input",
                    "3",
                ],
            )
            .await;
            let queried = temporal_json(
                a,
                &[
                    "workflow",
                    "query",
                    "--workflow-id",
                    "counter",
                    "--type",
                    "value",
                ],
            )
            .await;
            assert_eq!(queried["queryResult"], serde_json::json!([8]), "{queried}");

            let described =
                temporal_json(a, &["workflow", "describe", "--workflow-id", "counter"]).await;
            assert_eq!(
                status(&described),
                "WORKFLOW_EXECUTION_STATUS_RUNNING",
                "{described}"
            );
            let listed = temporal_json(a, &["workflow", "list"]).await;
            assert!(listed.to_string().contains("\"counter\""), "{listed}");
            let shown = temporal_json(a, &["workflow", "show", "--workflow-id", "counter"]).await;
            let types: Vec<&str> = shown["events"]
                .as_array()
                .expect("events")
                .iter()
                .filter_map(|e| e["eventType"].as_str())
                .collect();
            assert_eq!(
                types.first(),
                Some(&"EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"),
                "{types:?}"
            );
            assert!(
                types.contains(&"EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED"),
                "{types:?}"
            );

            temporal(a, &["workflow", "cancel", "--workflow-id", "counter"]).await;
            let outcome = client.workflow_handle("counter").result_as::<i64>().await;
            assert!(
                outcome.is_err(),
                "a cancelled run has no result: {outcome:?}"
            );
            let described =
                temporal_json(a, &["workflow", "describe", "--workflow-id", "counter"]).await;
            assert_eq!(
                status(&described),
                "WORKFLOW_EXECUTION_STATUS_CANCELED",
                "{described}"
            );

            start_counter(a, tq, "doomed", "1").await;
            temporal(
                a,
                &[
                    "workflow",
                    "terminate",
                    "--workflow-id",
                    "doomed",
                    "--reason",
                    "done with it",
                ],
            )
            .await;
            let described =
                temporal_json(a, &["workflow", "describe", "--workflow-id", "doomed"]).await;
            assert_eq!(
                status(&described),
                "WORKFLOW_EXECUTION_STATUS_TERMINATED",
                "{described}"
            );
            temporal(
                a,
                &["workflow", "delete", "--workflow-id", "doomed", "--yes"],
            )
            .await;
            let listed = temporal_json(a, &["workflow", "list"]).await.to_string();
            assert!(
                !listed.contains("\"doomed\""),
                "deleted, yet listed: {listed}"
            );
            assert!(listed.contains("\"counter\""), "{listed}");

            let stdout = |o: Output| String::from_utf8_lossy(&o.stdout).into_owned();
            let namespaces = stdout(temporal(a, &["operator", "namespace", "list"]).await);
            assert!(namespaces.contains("default"), "{namespaces}");
            let cluster = stdout(temporal(a, &["operator", "cluster", "describe"]).await);
            assert!(cluster.contains("capstan-engine"), "{cluster}");

            temporal(
                a,
                &[
                    "schedule",
                    "create",
                    "--schedule-id",
                    "hourly",
                    "--interval",
                    "1h",
                    "--workflow-id",
                    "hourly-counter",
                    "--task-queue",
                    tq,
                    "--type",
                    "Counter",
                    "--input",
                    "0",
                    "--overlap-policy",
                    "AllowAll",
                ],
            )
            .await;
            temporal(a, &["schedule", "trigger", "--schedule-id", "hourly"]).await;
            let mut described = Value::Null;
            for _ in 0..100 {
                described =
                    temporal_json(a, &["schedule", "describe", "--schedule-id", "hourly"]).await;
                if described.to_string().contains("hourly-counter-") {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(
                described.to_string().contains("hourly-counter-"),
                "the triggered run: {described}"
            );
            let schedules = temporal(a, &["schedule", "list"]).await;
            assert!(String::from_utf8_lossy(&schedules.stdout).contains("hourly"));
            temporal(a, &["schedule", "delete", "--schedule-id", "hourly"]).await;
        })
        .await
        .unwrap();
    engine.shutdown().await;
}

#[tokio::test]
async fn the_temporal_cli_registers_a_search_attribute_that_starts_and_lists_use() {
    let (engine, _client) = support::engine().await;
    let a = &engine.address();
    temporal(
        a,
        &[
            "operator",
            "search-attribute",
            "create",
            "--name",
            "Color",
            "--type",
            "Keyword",
        ],
    )
    .await;
    let listed = temporal_json(a, &["operator", "search-attribute", "list"]).await;
    assert!(listed.to_string().contains("\"Color\""), "{listed}");
    for (id, color) in [("red-one", "red"), ("blue-one", "blue")] {
        let args = [
            "workflow",
            "start",
            "--type",
            "Counter",
            "--task-queue",
            "cli-sa",
        ];
        let attribute = format!("Color=\"{color}\"");
        temporal(
            a,
            &[
                &args[..],
                &[
                    "--workflow-id",
                    id,
                    "--input",
                    "1",
                    "--search-attribute",
                    &attribute,
                ],
            ]
            .concat(),
        )
        .await;
    }
    let listed = temporal_json(a, &["workflow", "list", "--query", "Color = 'red'"]).await;
    let listed = listed.to_string();
    assert!(
        listed.contains("red-one") && !listed.contains("blue-one"),
        "{listed}"
    );
    temporal(
        a,
        &[
            "operator",
            "search-attribute",
            "remove",
            "--name",
            "Color",
            "--yes",
        ],
    )
    .await;
    let listed = temporal_json(a, &["operator", "search-attribute", "list"]).await;
    assert!(!listed.to_string().contains("\"Color\""), "{listed}");
}
