//! What a signal costs on a durable file (`#[ignore]`d; run in release and read the
//! output):
//!
//! ```text
//! cargo test --release -p capstan-engine --lib signal_costs -- --ignored --nocapture
//! ```
//!
//! A signal to a run with a small and with a 20 MiB input, and signals buffered (to the
//! small one) while a workflow task is held started: the 1st against the 3,000th.

use std::time::Instant;

use super::{durable_service_with, poll, signal_workflow, start_with, Service, TempDb};
use crate::{
    limits::Limits,
    proto::{
        common::{Payload, Payloads},
        WorkflowService,
    },
    run::Config,
};

/// A service on a file of its own; the 20 MiB input is past Temporal's 2 MiB blob limit:
/// this engine takes it.
fn durable_service(name: &str) -> (Service, TempDb) {
    let config = Config {
        limits: Limits {
            blob_size_error: 64 << 20,
            blob_size_warn: 64 << 20,
            ..Limits::default()
        },
    };
    durable_service_with(&format!("bench-{name}"), config)
}

async fn start_with_input(svc: &Service, id: &str, bytes: usize) {
    let input = Payloads {
        payloads: vec![Payload {
            data: vec![7; bytes],
            ..Default::default()
        }],
    };
    start_with(svc, id, Some(input)).await;
}

/// Mean time of `n` signals to `id`, in milliseconds.
async fn time_signals(svc: &Service, id: &str, n: usize) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        signal_workflow(svc, id).await;
    }
    t.elapsed().as_secs_f64() * 1000.0 / n as f64
}

#[tokio::test]
#[ignore = "a benchmark: run in release with --ignored --nocapture"]
async fn signal_costs() {
    const SIGNALS: usize = 50;
    const BUFFERED: usize = 3_000;
    for (name, bytes) in [("small", 16), ("20MiB", 20 << 20)] {
        let (svc, _db) = durable_service(name);
        start_with_input(&svc, name, bytes).await;
        // Warm up.
        time_signals(&svc, name, 5).await;
        let ms = time_signals(&svc, name, SIGNALS).await;
        println!("bench: input {name:>5}: signal (no task started): {ms:8.3} ms/signal");

        if bytes > 16 {
            continue;
        }
        // Hold a workflow task started: every signal is buffered.
        let task = svc
            .poll_workflow_task_queue(poll("q", false, std::time::Duration::from_secs(5)))
            .await
            .unwrap()
            .into_inner();
        assert!(!task.task_token.is_empty());
        let first = time_signals(&svc, name, 10).await;
        time_signals(&svc, name, BUFFERED - 20).await;
        let last = time_signals(&svc, name, 10).await;
        println!(
            "bench: input {name:>5}: buffered signal 1-10: {first:8.3} ms; {}-{BUFFERED}: {last:8.3} ms",
            BUFFERED - 9
        );
    }
}
