//! The scenarios, driven from the client side with one Capstan client for every
//! contestant: workflows are started by type name on the worker's task queue.

use std::{
    fmt,
    future::IntoFuture,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use capstan::{client::WorkflowHandle, prelude::*, testing::unique_task_queue};
use futures::{stream, StreamExt, TryStreamExt};
use serde::de::IgnoredAny;

use crate::{
    contestants::{resident_bytes, Contestant, FanOutInput, RunningWorker},
    Measurement, Metric,
};

/// A wait for a result longer than this (beyond the workflow's own sleep) is a stall:
/// the round is reported as stalled and left out of the medians.
pub const STALL: Duration = Duration::from_secs(30);

/// One benchmark scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scenario {
    /// `n` one-activity workflows, at most `concurrency` at a time: workflows per second.
    OneActivity {
        /// Workflows.
        n: usize,
        /// Most workflows in flight.
        concurrency: usize,
    },
    /// `n` one-activity workflows one after the other: start-to-result p50 and p99.
    Latency {
        /// Workflows.
        n: usize,
    },
    /// One `Counter` workflow, `rounds` rounds of signal then query: p50/p99 per round.
    SignalQuery {
        /// Rounds.
        rounds: usize,
    },
    /// One `Counter` workflow, `rounds` update round trips: p50/p99 per update.
    Update {
        /// Rounds.
        rounds: usize,
    },
    /// One workflow running `activities` activities at once, then `children` children.
    FanOut {
        /// Activities.
        activities: u32,
        /// Child workflows.
        children: u32,
    },
    /// `n` workflows each sleeping `millis` on a durable timer (real clock), all at once.
    Timers {
        /// Workflows.
        n: usize,
        /// Sleep of each.
        millis: u64,
    },
    /// A captured history of about `events` events replayed in this process: events per
    /// second.
    Replay {
        /// Events in the history.
        events: usize,
    },
    /// Resident memory of this process (the in-process engine's) per workflow parked on a
    /// signal (a `Counter`), with `n` parked; for a fresh process that runs only this.
    Parked {
        /// Parked workflows.
        n: usize,
    },
    /// Resident memory of the worker per cached idle workflow, with `n` open workflows.
    Cache {
        /// Open workflows.
        n: usize,
    },
}

impl Scenario {
    /// The kinds of scenario, as `--only` names them.
    pub const KINDS: [&'static str; 9] = [
        "one-activity",
        "latency",
        "signal-query",
        "update",
        "fan-out",
        "timers",
        "replay",
        "parked",
        "cache",
    ];

    /// The scenario's kind: one of [`Scenario::KINDS`].
    pub fn kind(self) -> &'static str {
        match self {
            Self::OneActivity { .. } => "one-activity",
            Self::Latency { .. } => "latency",
            Self::SignalQuery { .. } => "signal-query",
            Self::Update { .. } => "update",
            Self::FanOut { .. } => "fan-out",
            Self::Timers { .. } => "timers",
            Self::Replay { .. } => "replay",
            Self::Parked { .. } => "parked",
            Self::Cache { .. } => "cache",
        }
    }

    /// Whether the scenario needs a worker of its own (it measures the worker's memory).
    pub fn needs_fresh_worker(self) -> bool {
        matches!(self, Self::Cache { .. })
    }

    /// How many workflows the worker must keep cached.
    pub fn cached_workflows(self) -> usize {
        match self {
            Self::Cache { n } => n + 100,
            _ => 1000,
        }
    }

    /// Runs the scenario for `contestant`, whose worker is `worker`, through `client`.
    pub async fn run(
        self,
        contestant: Contestant,
        client: &Client,
        worker: &RunningWorker,
    ) -> anyhow::Result<Measurement> {
        let cpu_before = worker.cpu_time()?;
        let mut m = self.run_on(contestant, client, worker).await?;
        if let Some(units) = self.units() {
            let cpu = worker.cpu_time()?.saturating_sub(cpu_before);
            m.push(Metric::WorkerCpuMs, cpu.as_secs_f64() * 1e3 / units as f64);
        }
        Ok(m)
    }

    /// What [`Metric::PerSecond`] counts in one run: workflows, rounds or fanned-out items
    /// (`None` where the worker's CPU is not what the scenario is about).
    fn units(self) -> Option<usize> {
        match self {
            Self::OneActivity { n, .. } | Self::Latency { n } | Self::Timers { n, .. } => Some(n),
            Self::SignalQuery { rounds } | Self::Update { rounds } => Some(rounds),
            Self::FanOut {
                activities,
                children,
            } => Some((activities + children) as usize),
            Self::Replay { .. } | Self::Parked { .. } | Self::Cache { .. } => None,
        }
    }

    async fn run_on(
        self,
        contestant: Contestant,
        client: &Client,
        worker: &RunningWorker,
    ) -> anyhow::Result<Measurement> {
        let tq = worker.task_queue();
        match self {
            Self::OneActivity { n, concurrency } => one_activity(client, tq, n, concurrency).await,
            Self::Latency { n } => latency(client, tq, n).await,
            Self::SignalQuery { rounds } => counter_rounds(client, tq, rounds, false).await,
            Self::Update { rounds } => counter_rounds(client, tq, rounds, true).await,
            Self::FanOut {
                activities,
                children,
            } => fan_out(client, tq, activities, children).await,
            Self::Timers { n, millis } => timers(client, tq, n, millis).await,
            Self::Replay { events } => {
                let history = crate::replay::history(client, tq, events).await?;
                crate::replay::replay(contestant, client, history).await
            }
            Self::Parked { n } => parked(client, tq, n).await,
            Self::Cache { n } => cache(client, worker, n).await,
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::OneActivity { n, concurrency } => {
                write!(f, "one-activity N={n} (≤{concurrency} in flight)")
            }
            Self::Latency { n } => write!(f, "latency N={n}"),
            Self::SignalQuery { rounds } => write!(f, "signal+query ×{rounds}"),
            Self::Update { rounds } => write!(f, "update ×{rounds}"),
            Self::FanOut {
                activities,
                children,
            } => write!(f, "fan-out {activities} activities + {children} children"),
            Self::Timers { n, millis } => write!(f, "timers N={n} × {millis} ms"),
            Self::Replay { events } => write!(f, "replay ~{events} events"),
            Self::Parked { n } => write!(f, "engine with {n} parked workflows"),
            Self::Cache { n } => write!(f, "cache {n} idle workflows"),
        }
    }
}

/// Starts `workflow_type` and waits for its result; returns start-to-result, or `None`
/// if the result took `STALL` longer than `expected`.
async fn execute(
    client: &Client,
    tq: &str,
    workflow_type: &str,
    args: impl capstan::converter::Args,
    expected: Duration,
) -> anyhow::Result<Option<Duration>> {
    let started = Instant::now();
    let handle = client
        .start_workflow_by_name(workflow_type, unique_task_queue(workflow_type), args)
        .task_queue(tq)
        .await?;
    match tokio::time::timeout(expected + STALL, handle.result_as::<IgnoredAny>()).await {
        Ok(result) => {
            result.with_context(|| format!("a `{workflow_type}` workflow failed"))?;
            Ok(Some(started.elapsed()))
        }
        Err(_) => Ok(None),
    }
}

/// Sorts latencies and reads p50 and p99 from them; `stalled` if any is `None`.
fn percentiles(samples: Vec<Option<Duration>>) -> Measurement {
    let stalls = samples.iter().filter(|s| s.is_none()).count();
    let mut samples: Vec<Duration> = samples.into_iter().flatten().collect();
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    let mut m = Measurement::default();
    if !samples.is_empty() {
        m.push(Metric::P50Ms, at(0.5).as_secs_f64() * 1e3);
        m.push(Metric::P99Ms, at(0.99).as_secs_f64() * 1e3);
    }
    m.stall_if(stalls, "results");
    m
}

async fn concurrently(
    client: &Client,
    tq: &str,
    workflow_type: &str,
    n: usize,
    concurrency: usize,
    millis: u64,
) -> anyhow::Result<Measurement> {
    let started = Instant::now();
    let expected = Duration::from_millis(millis);
    let samples: Vec<Option<Duration>> = stream::iter(0..n)
        .map(|_| async move {
            if millis == 0 {
                execute(client, tq, workflow_type, (), expected).await
            } else {
                execute(client, tq, workflow_type, (millis,), expected).await
            }
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    let elapsed = started.elapsed();
    let mut m = percentiles(samples);
    m.push(Metric::PerSecond, n as f64 / elapsed.as_secs_f64());
    Ok(m)
}

async fn one_activity(
    client: &Client,
    tq: &str,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<Measurement> {
    concurrently(client, tq, "OneActivity", n, concurrency, 0).await
}

async fn timers(client: &Client, tq: &str, n: usize, millis: u64) -> anyhow::Result<Measurement> {
    concurrently(client, tq, "Sleeper", n, n, millis).await
}

async fn latency(client: &Client, tq: &str, n: usize) -> anyhow::Result<Measurement> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        samples.push(execute(client, tq, "OneActivity", (), Duration::ZERO).await?);
    }
    Ok(percentiles(samples))
}

async fn start_counter(client: &Client, tq: &str) -> anyhow::Result<WorkflowHandle<()>> {
    Ok(client
        .start_workflow_by_name("Counter", unique_task_queue("Counter"), ())
        .task_queue(tq)
        .await?)
}

async fn counter_rounds(
    client: &Client,
    tq: &str,
    rounds: usize,
    update: bool,
) -> anyhow::Result<Measurement> {
    let handle = start_counter(client, tq).await?;
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        let round = async {
            if update {
                handle.update_with::<_, u64>("bump_and_get", ()).await?;
            } else {
                handle.signal_with("bump", ()).await?;
                handle.query_with::<_, u64>("count", ()).await?;
            }
            anyhow::Ok(())
        };
        samples.push(match tokio::time::timeout(STALL, round).await {
            Ok(outcome) => {
                outcome.context("a Counter round failed")?;
                Some(started.elapsed())
            }
            Err(_) => None,
        });
    }
    handle.signal_with("finish", ()).await?;
    let count: u64 = handle.result_as().await?;
    anyhow::ensure!(
        count as usize == rounds,
        "the Counter counted {count} of {rounds} bumps"
    );
    Ok(percentiles(samples))
}

async fn fan_out(
    client: &Client,
    tq: &str,
    activities: u32,
    children: u32,
) -> anyhow::Result<Measurement> {
    let input = FanOutInput {
        activities,
        children,
    };
    let elapsed = execute(client, tq, "FanOut", (input,), Duration::ZERO).await?;
    let mut m = Measurement::default();
    match elapsed {
        Some(elapsed) => {
            m.push(Metric::TotalMs, elapsed.as_secs_f64() * 1e3);
            m.push(
                Metric::PerSecond,
                f64::from(activities + children) / elapsed.as_secs_f64(),
            );
        }
        None => m.stall_if(1, "results"),
    }
    Ok(m)
}

async fn parked(client: &Client, tq: &str, n: usize) -> anyhow::Result<Measurement> {
    let before = resident_bytes(std::process::id())?;
    let handles: Vec<WorkflowHandle<()>> = stream::iter(0..n)
        .map(|_| start_counter(client, tq))
        .buffer_unordered(100)
        .try_collect()
        .await?;
    // A workflow started after all the others runs after (nearly) every first workflow
    // task of theirs: once it is done, every Counter is parked on its condition.
    // (Within 5 ms per parked workflow: the worker runs about a thousand tasks a second.)
    execute(
        client,
        tq,
        "OneActivity",
        (),
        Duration::from_millis(5 * n as u64),
    )
    .await?
    .context("the probe workflow behind the parked ones stalled")?;
    let after = resident_bytes(std::process::id())?;
    terminate_all(&handles).await?;
    Ok(growth_per_workflow(before, after, n))
}

async fn cache(client: &Client, worker: &RunningWorker, n: usize) -> anyhow::Result<Measurement> {
    let tq = worker.task_queue();
    let before = worker.resident_bytes()?;
    let handles: Vec<WorkflowHandle<()>> = stream::iter(0..n)
        .map(|_| start_counter(client, tq))
        .buffer_unordered(100)
        .try_collect()
        .await?;
    // A query is answered by the worker from its cached run: once every workflow has
    // answered one, every workflow has been loaded into the cache.
    stream::iter(&handles)
        .map(|handle| handle.query_with::<_, u64>("count", ()).into_future())
        .buffer_unordered(100)
        .try_collect::<Vec<_>>()
        .await
        .context("a cached Counter did not answer its query")?;
    let after = worker.resident_bytes()?;
    terminate_all(&handles).await?;
    Ok(growth_per_workflow(before, after, n))
}

async fn terminate_all(handles: &[WorkflowHandle<()>]) -> anyhow::Result<()> {
    stream::iter(handles)
        .map(|handle| handle.terminate("benchmark over"))
        .buffer_unordered(100)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

/// Resident memory growth from `before` to `after` bytes, per workflow of `n`.
fn growth_per_workflow(before: u64, after: u64, n: usize) -> Measurement {
    let mut m = Measurement::default();
    m.push(
        Metric::KibPerWorkflow,
        after.saturating_sub(before) as f64 / 1024.0 / n as f64,
    );
    m
}
