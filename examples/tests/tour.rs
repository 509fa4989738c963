//! The whole tour on both backends: every pattern reports `ok` on the embedded engine
//! (what the README's main command runs) and on a real Temporal dev server.

use capstan::{
    testing::{unique_task_queue, DevServer},
    Client,
};
use capstan_examples::{tour, worker};

/// Runs every pattern in order against `client`; returns the reports that are not ok.
async fn failures(client: &Client, queue: &str) -> Vec<tour::Report> {
    let mut failed = Vec::new();
    for pattern in tour::PATTERNS {
        let report = worker(client, queue)
            .run_until(tour::run(client, queue, pattern.name, queue))
            .await
            .expect("the worker runs");
        if !report.ok {
            failed.push(report);
        }
    }
    failed
}

#[tokio::test]
async fn every_pattern_passes_on_the_embedded_engine() {
    let engine = capstan_engine::Engine::start(Default::default())
        .await
        .expect("the engine starts");
    let client = Client::connect(engine.address()).await.unwrap();
    let failed = failures(&client, &unique_task_queue("tour-engine")).await;
    assert!(failed.is_empty(), "{failed:#?}");
    engine.shutdown().await;
}

#[tokio::test]
async fn every_pattern_passes_on_the_dev_server() {
    let server = DevServer::shared().await;
    let client = Client::connect(server.address()).await.unwrap();
    let failed = failures(&client, &unique_task_queue("tour-dev-server")).await;
    assert!(failed.is_empty(), "{failed:#?}");
}
