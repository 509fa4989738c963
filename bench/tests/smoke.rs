//! A smoke run of each scenario with tiny N on the embedded engine (the real benchmark is
//! `cargo run --release -p capstan-bench`).

use capstan_engine::{Engine, EngineOptions};

#[tokio::test]
async fn every_scenario_runs() {
    let engine = Engine::start(EngineOptions::default()).await.unwrap();
    let throughput = capstan_bench::one_activity(&engine.address(), 20, 5)
        .await
        .unwrap();
    assert!(throughput.per_second.unwrap() > 0.0);
    let latency = capstan_bench::latency(&engine.address(), 5).await.unwrap();
    assert!(latency.p50.unwrap() <= latency.p99.unwrap());
}
