//! Custom Metrics: a Prometheus endpoint on the worker, an activity interceptor that
//! records the seed's schedule-to-start latency histogram and execution counter, and a
//! workflow-side counter that replays do not double-count.

use std::time::Duration;

use capstan::Client;
use capstan::{
    interceptor::{ActivityInterceptor, NextActivity},
    prelude::*,
};
use serde_json::{json, Value};

use crate::tour::workflow_id;

/// Captures activity scheduling and execution metrics (the seed's interceptor).
pub struct ActivityMetricsInterceptor;

impl ActivityInterceptor for ActivityMetricsInterceptor {
    fn execute_activity(&self, ctx: ActivityContext, next: NextActivity) -> NextActivity {
        Box::pin(async move {
            let info = ctx.info();
            let meter = ctx.metrics();
            let schedule_to_start = info
                .started_time
                .zip(info.current_attempt_scheduled_time)
                .and_then(|(started, scheduled)| started.duration_since(scheduled).ok())
                .unwrap_or_default();
            meter
                .histogram_duration(
                    "activity_schedule_to_start_latency",
                    "Time between activity scheduling and start",
                )
                .record(
                    schedule_to_start,
                    &[
                        ("workflow_type", &info.workflow_type),
                        ("activity_type", &info.activity_type),
                    ],
                );
            let counter = meter.counter(
                "activity_executions_total",
                "Total number of activity executions",
            );
            counter.add(1, &[("status", "started")]);
            let result = next.await;
            counter.add(
                1,
                &[(
                    "status",
                    if result.is_ok() {
                        "completed"
                    } else {
                        "failed"
                    },
                )],
            );
            result
        })
    }
}

/// Does some work.
#[activity]
pub async fn my_activity(name: String) -> Result<String, ActivityError> {
    Ok(format!("processed {name}"))
}

/// Runs `my_activity` and counts its own runs with a workflow-side metric.
#[workflow]
#[derive(Default)]
pub struct MyWorkflow;

#[workflow]
impl MyWorkflow {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>, name: String) -> WorkflowResult<String> {
        let started = ctx.now();
        // Runs again on every replay of this run; recorded only the first time.
        ctx.metrics()
            .counter("my_workflow_starts", "Runs of MyWorkflow that started")
            .add(1, &[]);
        let result = ctx
            .activity(my_activity, name)
            .start_to_close_timeout(Duration::from_secs(10))
            .await?;
        ctx.sleep(Duration::from_millis(10)).await?;
        // Recorded once per run, however often the run is replayed.
        ctx.metrics()
            .counter(
                "my_workflow_completions",
                "Runs of MyWorkflow that finished",
            )
            .add(1, &[]);
        let took = ctx.now().duration_since(started).unwrap_or_default();
        ctx.metrics()
            .histogram_duration("my_workflow_duration", "Workflow time from start to result")
            .record(took, &[]);
        Ok(result)
    }
}

/// Runs `MyWorkflow` on a worker with a Prometheus endpoint and the interceptor, then
/// scrapes the endpoint. With `replay_everything`, the worker keeps no run in memory, so
/// every workflow task replays the run from its start (the workflow counter must still
/// count one).
pub async fn run_and_scrape(
    client: &Client,
    task_queue: &str,
    workflow_id: &str,
    replay_everything: bool,
) -> anyhow::Result<(String, String)> {
    let exporter = capstan::metrics::PrometheusExporter::start("127.0.0.1:0".parse()?)?;
    let mut worker = Worker::new(client, task_queue)
        .metrics(exporter.meter())
        .activity_interceptor(ActivityMetricsInterceptor)
        .register_workflow::<MyWorkflow>()
        .register_activity(my_activity);
    if replay_everything {
        worker = worker.max_cached_workflows(0);
    }
    let result = worker
        .run_until(
            MyWorkflow::execute(client, workflow_id, "order-1".to_owned()).task_queue(task_queue),
        )
        .await??;
    let scraped = scrape(exporter.address()).await?;
    Ok((result, scraped))
}

/// `GET /metrics`, with a plain TCP request so the example needs no HTTP client.
pub async fn scrape(address: std::net::SocketAddr) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no HTTP response from {address}"))?;
    anyhow::ensure!(head.starts_with("HTTP/1.1 200"), "scrape failed: {head}");
    Ok(body.to_owned())
}

/// The value of the first series named `name` whose labels include every `labels` pair.
pub fn series_value(scraped: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scraped.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (series_name, rest) = series.split_once('{').unwrap_or((series, ""));
        (series_name == name
            && labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
        .then(|| value.parse().ok())
        .flatten()
    })
}

/// The tour's driver: one run of `MyWorkflow` on a worker of its own; the scrape shows one
/// completed execution and one schedule-to-start sample for `my_activity`.
pub async fn tour(client: &Client, task_queue: &str, run_id: &str) -> anyhow::Result<Value> {
    let queue = format!("{task_queue}-metrics");
    let (result, scraped) =
        run_and_scrape(client, &queue, &workflow_id("metrics", run_id), false).await?;
    let completed = series_value(
        &scraped,
        "activity_executions_total",
        &[("status", "completed")],
    );
    let latency = series_value(
        &scraped,
        "activity_schedule_to_start_latency_count",
        &[("activity_type", "my_activity")],
    );
    anyhow::ensure!(
        completed == Some(1.0) && latency == Some(1.0),
        "unexpected metrics:\n{scraped}"
    );
    Ok(
        json!({ "result": result, "activity_executions_total{status=completed}": completed,
               "activity_schedule_to_start_latency_count": latency }),
    )
}
