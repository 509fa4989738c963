//! The clients `capstan stubs` generates from the examples' manifest: their text
//! (snapshots), and the real Python SDK and `@temporalio/client` (after `tsc --strict`)
//! using them against Capstan workflows on a real server.

use std::path::PathBuf;

use capstan::{
    client::history::Attributes,
    testing::{DevServer, Node, Python},
    Client,
};
use capstan_codegen::stubs::{self, Language};
use capstan_examples::{worker, TASK_QUEUE};
use serde_json::{json, Value};

/// The generated module for the examples' worker on its default task queue.
async fn generated_client(client: &Client, language: Language) -> String {
    let manifest = serde_json::to_value(worker(client, TASK_QUEUE).manifest()).unwrap();
    stubs::generate(language, &manifest).expect("stubs generate")
}

#[tokio::test]
async fn the_generated_clients_match_their_snapshots() {
    let engine = capstan_engine::Engine::start(Default::default())
        .await
        .unwrap();
    let client = Client::connect(engine.address()).await.unwrap();
    let python = generated_client(&client, Language::Python).await;
    insta::assert_snapshot!("examples_client.py", python);
    let typescript = generated_client(&client, Language::TypeScript).await;
    insta::assert_snapshot!("examples_client.ts", typescript);
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
        generated_client(&client, Language::Python).await,
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

#[tokio::test]
async fn temporalio_client_drives_capstan_workflows_through_the_generated_typescript() {
    let server = DevServer::shared().await;
    let node = Node::ensure()
        .await
        .expect("Node.js and the packages install");
    let client = Client::connect(server.address()).await.unwrap();
    let queue = capstan::testing::unique_task_queue("stubs-ts");

    // The project sits under the tools' npm folder, where `@temporalio/client` resolves.
    let project = node.projects_dir().join(&queue);
    std::fs::create_dir_all(&project).unwrap();
    let sources = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/typescript");
    for file in ["main.ts", "tsconfig.json"] {
        std::fs::copy(sources.join(file), project.join(file)).unwrap();
    }
    std::fs::write(
        project.join("examples_client.ts"),
        generated_client(&client, Language::TypeScript).await,
    )
    .unwrap();
    // Strict, with `@ts-expect-error` on wrong-typed calls: they must fail to compile.
    node.tsc(&project)
        .await
        .expect("the generated client type-checks");

    let stdout = worker(&client, &queue)
        .run_until(node.run_script(
            &project.join("out/main.js"),
            [server.address(), queue.clone(), queue.clone()],
        ))
        .await
        .expect("the worker runs")
        .expect("the TypeScript client succeeds");
    std::fs::remove_dir_all(&project).ok();
    let out: Value = serde_json::from_str(stdout.trim()).expect("JSON on stdout");
    assert_eq!(out["fruits"], "Ordered 3 Apples...Ordered 5 Bananas...");
    let gold = json!({ "is_active": true, "level": "GOLD", "points": 750 });
    assert_eq!(out["added"], gold);
    assert_eq!(out["queried"], gold);
    assert_eq!(
        out["result"],
        json!({ "is_active": false, "level": "GOLD", "points": 750 })
    );
}
