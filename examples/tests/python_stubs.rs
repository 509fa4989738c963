//! The Python client `capstan stubs --lang python` generates from the examples' manifest:
//! its text (a snapshot), and the real Python SDK using it against Capstan workflows.

use std::path::PathBuf;

use capstan::{
    client::history::Attributes,
    testing::{DevServer, Python},
    Client,
};
use capstan_codegen::stubs::{self, Language};
use capstan_examples::{worker, TASK_QUEUE};
use serde_json::{json, Value};

/// The generated module for the examples' worker on its default task queue.
async fn generated_client(client: &Client) -> String {
    let manifest = worker(client, TASK_QUEUE).manifest();
    let manifest = serde_json::to_value(&manifest).unwrap();
    stubs::generate(Language::Python, &manifest).expect("stubs generate")
}

#[tokio::test]
async fn the_generated_python_client_matches_its_snapshot() {
    let engine = capstan_engine::Engine::start(Default::default())
        .await
        .unwrap();
    let client = Client::connect(engine.address()).await.unwrap();
    insta::assert_snapshot!("examples_client.py", generated_client(&client).await);
}

#[tokio::test]
async fn the_python_sdk_drives_capstan_workflows_through_the_generated_client() {
    let server = DevServer::shared().await;
    let python = Python::ensure().await.expect("the Python SDK installs");
    let client = Client::connect(server.address()).await.unwrap();
    let dir = std::env::temp_dir().join(capstan::testing::unique_task_queue("stubs"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("examples_client.py"),
        generated_client(&client).await,
    )
    .unwrap();

    let queue = capstan::testing::unique_task_queue("stubs-py");
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/use_generated_client.py");
    let output = worker(&client, &queue)
        .run_until(python.run_script(
            script,
            [
                server.address(),
                queue.clone(),
                queue.clone(),
                dir.display().to_string(),
            ],
        ))
        .await
        .expect("the worker runs")
        .expect("the Python client succeeds");
    std::fs::remove_dir_all(&dir).ok();
    let out: Value = serde_json::from_str(output.stdout.trim()).expect("JSON on stdout");

    assert_eq!(out["fruits"], "Ordered 3 Apples...Ordered 5 Bananas...");
    // 50 by signal, then 700 by update: 750 points is GOLD.
    let gold = json!({ "is_active": true, "level": "GOLD", "points": 750 });
    assert_eq!(out["added"], gold);
    assert_eq!(out["queried"], gold);
    assert_eq!(out["closed"]["is_active"], false);
    assert_eq!(
        out["result"],
        json!({ "type": "CustomerRewardAccountStatus", "is_active": false, "level": "GOLD", "points": 750 })
    );
    assert_eq!(
        out["errors"],
        json!({
            "update": { "loc": ["points"], "type": "int_type" },
            "signal": { "loc": ["points"], "type": "int_type" },
            "start": { "loc": ["items", "0", "fruit"], "type": "literal_error" },
        })
    );

    // Nothing of the refused calls reached the server: no such workflow, and the account
    // saw one signal and two updates (add_points, cancel).
    let never = client.workflow_handle(format!("{queue}-never-started"));
    assert!(never.describe().await.is_err());
    let history = client
        .workflow_handle(format!("{queue}-account"))
        .history()
        .await
        .unwrap();
    let count = |wanted: fn(&Attributes) -> bool| {
        history
            .iter()
            .filter(|e| e.attributes.as_ref().is_some_and(wanted))
            .count()
    };
    let signals = count(|a| matches!(a, Attributes::WorkflowExecutionSignaledEventAttributes(_)));
    let updates = count(|a| {
        matches!(
            a,
            Attributes::WorkflowExecutionUpdateAcceptedEventAttributes(_)
        )
    });
    assert_eq!((signals, updates), (1, 2));
}
