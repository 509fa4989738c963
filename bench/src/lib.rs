//! Side-by-side benchmarks of Capstan: three SDKs' workers (Capstan, the official Rust
//! SDK, the Python SDK) against four servers (the embedded engine in memory and on a file,
//! the Temporal dev server tuned and with its defaults), every scenario run for every
//! contestant interleaved round by round, reported as medians and ratios (the machine is
//! shared and noisy: absolute times alone mean little).
//!
//! The pieces: [`contestants`] (the workers, each in a process of its own), [`servers`],
//! [`scenarios`] (driven by one Capstan client for every contestant), [`runner`] (the
//! interleaved rounds), [`build_cost`] (the build scenario, outside the rounds) and
//! [`report`] (tables, ratios against the targets, the chart).

pub mod build_cost;
pub mod contestants;
pub mod replay;
pub mod report;
pub mod runner;
pub mod scenarios;
pub mod servers;

/// A quantity a scenario measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    /// Workflows (or rounds, or fanned-out items) per second.
    PerSecond,
    /// Median latency, in milliseconds.
    P50Ms,
    /// 99th percentile latency, in milliseconds.
    P99Ms,
    /// Wall time of the whole scenario, in milliseconds.
    TotalMs,
    /// Worker resident memory per cached workflow, in KiB.
    KibPerWorkflow,
    /// CPU time (user and system) of the worker process per workflow (or round, or
    /// fanned-out item: what `PerSecond` counts), in milliseconds: what the work costs the
    /// worker, less sensitive to a shared machine's noise than wall time.
    WorkerCpuMs,
}

impl Metric {
    /// The column header.
    pub fn label(self) -> &'static str {
        match self {
            Self::PerSecond => "per s",
            Self::P50Ms => "p50 ms",
            Self::P99Ms => "p99 ms",
            Self::TotalMs => "total ms",
            Self::KibPerWorkflow => "KiB/workflow",
            Self::WorkerCpuMs => "worker CPU ms each",
        }
    }

    /// Whether more is better.
    pub fn higher_is_better(self) -> bool {
        self == Self::PerSecond
    }
}

/// What one scenario measured in one round.
#[derive(Clone, Debug, Default)]
pub struct Measurement {
    /// The values measured.
    pub values: Vec<(Metric, f64)>,
    /// Why the round does not count (a stalled long-poll, a failure), if it does not.
    pub stalled: Option<String>,
}

impl Measurement {
    /// Records `value` for `metric`.
    pub fn push(&mut self, metric: Metric, value: f64) {
        self.values.push((metric, value));
    }

    /// The value of `metric`, if measured.
    pub fn get(&self, metric: Metric) -> Option<f64> {
        self.values
            .iter()
            .find_map(|&(m, v)| (m == metric).then_some(v))
    }

    /// Marks the round stalled if `count` waits for `what` stalled.
    pub fn stall_if(&mut self, count: usize, what: &str) {
        if count > 0 {
            self.stalled = Some(format!(
                "{count} {what} stalled (over {:?} late)",
                scenarios::STALL
            ));
        }
    }
}

/// The median of some values (`NaN` for none).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}
