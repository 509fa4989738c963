//! Side-by-side benchmarks of Capstan: the same Capstan worker against the embedded engine
//! and the Temporal dev server, scenarios interleaved round by round, reported as medians
//! and ratios (the machine is shared and noisy: absolute times alone mean little).

use std::{
    future::IntoFuture,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use capstan::{prelude::*, testing::unique_task_queue};
use futures::{stream, StreamExt};

/// The no-op activity every scenario runs.
#[activity]
pub async fn noop() -> Result<(), ActivityError> {
    Ok(())
}

/// One workflow running one no-op activity.
#[workflow]
#[derive(Default)]
pub struct OneActivity;

#[workflow]
impl OneActivity {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>) -> WorkflowResult<()> {
        ctx.activity(noop, ())
            .start_to_close_timeout(Duration::from_secs(30))
            .await?;
        Ok(())
    }
}

/// What one scenario measured on one server.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// Workflows per second (throughput scenarios).
    pub per_second: Option<f64>,
    /// Median start-to-result latency (latency scenario).
    pub p50: Option<Duration>,
    /// 99th percentile latency (latency scenario).
    pub p99: Option<Duration>,
}

/// Runs `n` one-activity workflows, at most `concurrency` at a time, on a fresh task queue
/// of `address`; returns workflows per second.
pub async fn one_activity(
    address: &str,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<Measurement> {
    let client = Client::connect(address).await?;
    let tq = unique_task_queue("bench-one-activity");
    let elapsed = Worker::new(&client, &tq)
        .register_workflow::<OneActivity>()
        .register_activity(noop)
        .max_concurrent_workflow_tasks(200)
        .run_until(async {
            let started = Instant::now();
            let results: Vec<_> = stream::iter(0..n)
                .map(|i| {
                    OneActivity::execute(&client, format!("{tq}-{i}"))
                        .task_queue(&tq)
                        .into_future()
                })
                .buffer_unordered(concurrency)
                .collect()
                .await;
            for result in results {
                result.context("a benchmark workflow failed")?;
            }
            anyhow::Ok(started.elapsed())
        })
        .await??;
    Ok(Measurement {
        per_second: Some(n as f64 / elapsed.as_secs_f64()),
        p50: None,
        p99: None,
    })
}

/// Starts `n` one-activity workflows one after the other, each awaited to its result;
/// returns p50 and p99 of start-to-result.
pub async fn latency(address: &str, n: usize) -> anyhow::Result<Measurement> {
    let client = Client::connect(address).await?;
    let tq = unique_task_queue("bench-latency");
    let mut samples = Worker::new(&client, &tq)
        .register_workflow::<OneActivity>()
        .register_activity(noop)
        .run_until(async {
            let mut samples = Vec::with_capacity(n);
            for i in 0..n {
                let started = Instant::now();
                OneActivity::execute(&client, format!("{tq}-{i}"))
                    .task_queue(&tq)
                    .await
                    .context("a benchmark workflow failed")?;
                samples.push(started.elapsed());
            }
            anyhow::Ok(samples)
        })
        .await??;
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Ok(Measurement {
        per_second: None,
        p50: Some(at(0.5)),
        p99: Some(at(0.99)),
    })
}

/// The median of some values.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}
