//! Metrics: a Prometheus endpoint serving core's metrics and the user's, and a meter in
//! activity and workflow contexts. Workflow-side instruments record nothing while the
//! workflow replays, so nothing is counted twice.
//!
//! ```no_run
//! # async fn demo(client: capstan::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use capstan::metrics::PrometheusExporter;
//! let exporter = PrometheusExporter::start("127.0.0.1:9090".parse()?)?;
//! capstan::Worker::new(&client, "metrics-task-queue")
//!     .metrics(exporter.meter())
//!     // .register_activity(..)
//!     .run()
//!     .await?;
//! # Ok(()) }
//! ```

use std::{
    fmt,
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use temporalio_common::telemetry::{
    metrics::{
        self as core_metrics, CoreMeter, MetricAttributes, MetricKeyValue, MetricParameters,
        NewAttributes,
    },
    start_prometheus_metric_exporter, PrometheusExporterOptions,
};

/// A Prometheus scrape endpoint (`GET /metrics`); stops when dropped.
pub struct PrometheusExporter {
    meter: Arc<dyn CoreMeter>,
    address: SocketAddr,
    abort: tokio::task::AbortHandle,
}

impl fmt::Debug for PrometheusExporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrometheusExporter")
            .field("address", &self.address)
            .finish()
    }
}

/// Why metrics could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve Prometheus metrics on {address}: {message}")]
pub struct MetricsError {
    address: SocketAddr,
    message: String,
}

impl PrometheusExporter {
    /// Serves metrics on `address` (port 0 picks a free one). Must be called inside a tokio
    /// runtime.
    pub fn start(address: SocketAddr) -> Result<Self, MetricsError> {
        let options = PrometheusExporterOptions::builder()
            .socket_addr(address)
            .counters_total_suffix(false)
            .use_seconds_for_durations(true)
            .build();
        let started = start_prometheus_metric_exporter(options).map_err(|e| MetricsError {
            address,
            message: e.to_string(),
        })?;
        Ok(Self {
            meter: started.meter,
            address: started.bound_addr,
            abort: started.abort_handle,
        })
    }

    /// Where it serves `/metrics`.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The meter to give workers ([`Worker::metrics`](crate::Worker::metrics)) and to
    /// record with directly.
    pub fn meter(&self) -> MetricMeter {
        MetricMeter::new(self.meter.clone())
    }
}

impl Drop for PrometheusExporter {
    fn drop(&mut self) {
        self.abort.abort();
    }
}

/// Creates instruments; labels given here apply to everything they record.
#[derive(Clone)]
pub struct MetricMeter {
    meter: Option<Arc<dyn CoreMeter>>,
    labels: Vec<(String, String)>,
    replaying: Option<Arc<AtomicBool>>,
}

impl fmt::Debug for MetricMeter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricMeter")
            .field("enabled", &self.meter.is_some())
            .field("labels", &self.labels)
            .finish()
    }
}

impl MetricMeter {
    pub(crate) fn new(meter: Arc<dyn CoreMeter>) -> Self {
        Self {
            meter: Some(meter),
            labels: Vec::new(),
            replaying: None,
        }
    }

    /// A meter that records nothing (when no exporter is configured).
    pub fn disabled() -> Self {
        Self {
            meter: None,
            labels: Vec::new(),
            replaying: None,
        }
    }

    pub(crate) fn core(&self) -> Option<Arc<dyn CoreMeter>> {
        self.meter.clone()
    }

    /// The same meter with more labels on everything it records.
    pub fn with_labels<K: Into<String>, V: Into<String>>(
        &self,
        labels: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let mut meter = self.clone();
        meter
            .labels
            .extend(labels.into_iter().map(|(k, v)| (k.into(), v.into())));
        meter
    }

    /// The same meter, silent while `replaying` is set (workflow contexts).
    pub(crate) fn gated(&self, replaying: Arc<AtomicBool>) -> Self {
        Self {
            replaying: Some(replaying),
            ..self.clone()
        }
    }

    fn instrument<I>(&self, make: impl FnOnce(&dyn CoreMeter) -> I) -> Instrument<I> {
        Instrument {
            inner: self.meter.as_deref().map(make),
            meter: self.clone(),
        }
    }

    /// A monotonic counter.
    pub fn counter(&self, name: &'static str, description: &'static str) -> Counter {
        Counter(self.instrument(|m| {
            m.counter(
                MetricParameters::builder()
                    .name(name)
                    .description(description)
                    .build(),
            )
        }))
    }

    /// A histogram of whole numbers (`unit` like `"bytes"`, `"items"`).
    pub fn histogram(
        &self,
        name: &'static str,
        description: &'static str,
        unit: &'static str,
    ) -> Histogram {
        Histogram(self.instrument(|m| {
            m.histogram(
                MetricParameters::builder()
                    .name(name)
                    .description(description)
                    .unit(unit)
                    .build(),
            )
        }))
    }

    /// A histogram of durations (exported in seconds).
    pub fn histogram_duration(
        &self,
        name: &'static str,
        description: &'static str,
    ) -> DurationHistogram {
        DurationHistogram(self.instrument(|m| {
            m.histogram_duration(
                MetricParameters::builder()
                    .name(name)
                    .description(description)
                    .unit("duration")
                    .build(),
            )
        }))
    }

    /// A gauge: the latest value wins.
    pub fn gauge(&self, name: &'static str, description: &'static str) -> Gauge {
        Gauge(self.instrument(|m| {
            m.gauge(
                MetricParameters::builder()
                    .name(name)
                    .description(description)
                    .build(),
            )
        }))
    }

    fn attributes(
        &self,
        meter: &dyn CoreMeter,
        extra: &[(&str, &str)],
    ) -> Option<MetricAttributes> {
        if self
            .replaying
            .as_ref()
            .is_some_and(|r| r.load(Ordering::Relaxed))
        {
            return None;
        }
        let attributes = self
            .labels
            .iter()
            .map(|(k, v)| MetricKeyValue::new(k.clone(), v.clone()))
            .chain(
                extra
                    .iter()
                    .map(|(k, v)| MetricKeyValue::new(k.to_string(), v.to_string())),
            )
            .collect();
        Some(meter.new_attributes(NewAttributes { attributes }))
    }
}

struct Instrument<I> {
    inner: Option<I>,
    meter: MetricMeter,
}

impl<I> Instrument<I> {
    fn record(&self, labels: &[(&str, &str)], record: impl FnOnce(&I, &MetricAttributes)) {
        if let (Some(inner), Some(meter)) = (&self.inner, &self.meter.meter) {
            if let Some(attributes) = self.meter.attributes(meter.as_ref(), labels) {
                record(inner, &attributes);
            }
        }
    }
}

/// See [`MetricMeter::counter`].
pub struct Counter(Instrument<core_metrics::Counter>);
/// See [`MetricMeter::histogram`].
pub struct Histogram(Instrument<core_metrics::Histogram>);
/// See [`MetricMeter::histogram_duration`].
pub struct DurationHistogram(Instrument<core_metrics::HistogramDuration>);
/// See [`MetricMeter::gauge`].
pub struct Gauge(Instrument<core_metrics::Gauge>);

impl Counter {
    /// Adds `value` with extra labels.
    pub fn add(&self, value: u64, labels: &[(&str, &str)]) {
        self.0.record(labels, |c, a| c.add(value, a));
    }
}

impl Histogram {
    /// Records `value` with extra labels.
    pub fn record(&self, value: u64, labels: &[(&str, &str)]) {
        self.0.record(labels, |h, a| h.record(value, a));
    }
}

impl DurationHistogram {
    /// Records `value` with extra labels.
    pub fn record(&self, value: Duration, labels: &[(&str, &str)]) {
        self.0.record(labels, |h, a| h.record(value, a));
    }
}

impl Gauge {
    /// Sets the gauge to `value` with extra labels.
    pub fn set(&self, value: u64, labels: &[(&str, &str)]) {
        self.0.record(labels, |g, a| g.record(value, a));
    }
}
