//! Activity code: the context an activity receives (info, heartbeats, cancellation).

use std::{
    any::Any,
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use serde::Serialize;
use temporalio_common::protos::{
    coresdk::{activity_task, ActivityHeartbeat},
    temporal::api::common::v1::Payload,
};
use tokio_util::sync::CancellationToken;

use crate::{
    converter::{self, Args, PayloadError},
    metrics::MetricMeter,
};

/// Sends heartbeats to core; a trait so the context is independent of the worker type.
pub(crate) trait HeartbeatSink: Send + Sync {
    fn record_heartbeat(&self, heartbeat: ActivityHeartbeat);
}

/// The identity and attributes of one activity attempt.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ActivityInfo {
    /// The activity id.
    pub activity_id: String,
    /// The activity type name.
    pub activity_type: String,
    /// The attempt, from 1.
    pub attempt: u32,
    /// The workflow that scheduled it.
    pub workflow_id: String,
    /// The run that scheduled it.
    pub workflow_run_id: String,
    /// The scheduling workflow's type.
    pub workflow_type: String,
    /// The namespace.
    pub namespace: String,
    /// The heartbeat timeout, if set.
    pub heartbeat_timeout: Option<Duration>,
    /// The start-to-close timeout, if set.
    pub start_to_close_timeout: Option<Duration>,
    /// When the activity was first scheduled.
    pub scheduled_time: Option<SystemTime>,
    /// When this attempt was scheduled.
    pub current_attempt_scheduled_time: Option<SystemTime>,
    /// When this attempt started on a worker.
    pub started_time: Option<SystemTime>,
    /// Whether this is a local activity.
    pub is_local: bool,
    /// The opaque token naming this attempt to the server.
    pub task_token: Vec<u8>,
}

/// Why an activity was asked to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelReason {
    /// The workflow cancelled it.
    Cancelled,
    /// The server no longer knows the attempt.
    NotFound,
    /// It timed out.
    TimedOut,
    /// The worker is shutting down.
    WorkerShutdown,
    /// It was paused.
    Paused,
    /// The workflow was reset.
    Reset,
}

impl CancelReason {
    pub(crate) fn from_proto(reason: i32) -> Self {
        use activity_task::ActivityCancelReason as R;
        match R::try_from(reason).unwrap_or(R::Cancelled) {
            R::NotFound => Self::NotFound,
            R::Cancelled => Self::Cancelled,
            R::TimedOut => Self::TimedOut,
            R::WorkerShutdown => Self::WorkerShutdown,
            R::Paused => Self::Paused,
            R::Reset => Self::Reset,
        }
    }
}

/// What an activity may do besides computing its result: read its info, heartbeat, and
/// learn that it was cancelled. Cheap to clone, usable from any thread (also in synchronous
/// activities on the blocking pool).
#[derive(Clone)]
pub struct ActivityContext {
    inner: Arc<Inner>,
}

struct Inner {
    info: ActivityInfo,
    heartbeat_details: Vec<Payload>,
    sink: Option<Arc<dyn HeartbeatSink>>,
    cancel: CancellationToken,
    cancel_reason: Mutex<Option<CancelReason>>,
    metrics: MetricMeter,
    resources: Resources,
}

/// Values a worker shares with all its activities (connection pools, clients, caches),
/// looked up by type: [`Worker::resource`](crate::Worker::resource) adds one,
/// [`ActivityContext::resource`] reads it.
#[derive(Clone, Default)]
pub(crate) struct Resources(Arc<BTreeMap<std::any::TypeId, Resource>>);

/// A shared value and its type's name (for error messages).
type Resource = (&'static str, Arc<dyn Any + Send + Sync>);

impl Resources {
    pub(crate) fn insert<T: Any + Send + Sync>(&mut self, value: Arc<T>) {
        Arc::make_mut(&mut self.0).insert(
            std::any::TypeId::of::<T>(),
            (std::any::type_name::<T>(), value),
        );
    }

    fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let (_, value) = self.0.get(&std::any::TypeId::of::<T>())?;
        value.clone().downcast().ok()
    }

    fn names(&self) -> Vec<&'static str> {
        self.0.values().map(|(name, _)| *name).collect()
    }
}

impl std::fmt::Debug for ActivityContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActivityContext")
            .field("info", &self.inner.info)
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl ActivityContext {
    pub(crate) fn new(
        info: ActivityInfo,
        heartbeat_details: Vec<Payload>,
        sink: Option<Arc<dyn HeartbeatSink>>,
        metrics: MetricMeter,
        resources: Resources,
    ) -> Self {
        let metrics = metrics.with_labels([
            ("namespace", info.namespace.clone()),
            ("activity_type", info.activity_type.clone()),
        ]);
        Self {
            inner: Arc::new(Inner {
                info,
                heartbeat_details,
                sink,
                cancel: CancellationToken::new(),
                cancel_reason: Mutex::new(None),
                metrics,
                resources,
            }),
        }
    }

    /// A value the worker shares with its activities, by type: what an impl block's `self`
    /// would hold in other SDKs (a connection pool, an HTTP client).
    ///
    /// ```
    /// # use capstan::prelude::*;
    /// struct Database { url: String }
    ///
    /// #[activity]
    /// async fn get_user(ctx: ActivityContext, id: String) -> Result<String, ActivityError> {
    ///     let db = ctx.resource::<Database>()?;
    ///     Ok(format!("{id}@{}", db.url))
    /// }
    /// // Worker::new(&client, "q").resource(Database { url: "…".into() }).register_activity(get_user)
    /// ```
    pub fn resource<T: Any + Send + Sync>(&self) -> Result<Arc<T>, crate::Error> {
        self.inner.resources.get::<T>().ok_or_else(|| {
            crate::ApplicationError::new(
                "MissingResource",
                format!(
                    "activity `{}` needs a `{}`, which this worker does not have: add it with \
                     `Worker::resource(..)` (it has: {})",
                    self.inner.info.activity_type,
                    std::any::type_name::<T>(),
                    self.inner.resources.names().join(", ")
                ),
            )
            .non_retryable()
            .into()
        })
    }

    /// The worker's metric meter, labelled with the namespace and activity type.
    pub fn metrics(&self) -> &MetricMeter {
        &self.inner.metrics
    }

    /// A context for calling an activity function directly in a unit test: heartbeats go
    /// nowhere, and [`cancel`](Self::cancel) simulates a cancellation.
    pub fn for_test(info: ActivityInfo) -> Self {
        Self::new(
            info,
            Vec::new(),
            None,
            MetricMeter::disabled(),
            Resources::default(),
        )
    }

    /// Adds a resource to a test context (see [`resource`](Self::resource)).
    pub fn with_resource<T: Any + Send + Sync>(self, value: T) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            info: shared.info.clone(),
            heartbeat_details: shared.heartbeat_details.clone(),
            sink: shared.sink.clone(),
            cancel: CancellationToken::new(),
            cancel_reason: Mutex::new(None),
            metrics: shared.metrics.clone(),
            resources: shared.resources.clone(),
        });
        inner.resources.insert(Arc::new(value));
        Self {
            inner: Arc::new(inner),
        }
    }

    /// This attempt's info.
    pub fn info(&self) -> &ActivityInfo {
        &self.inner.info
    }

    /// Records a heartbeat with `details` (use `()` for none). Heartbeats are throttled by
    /// core; a cancellation requested by the workflow arrives in answer to one.
    pub fn heartbeat<D: Serialize + 'static>(&self, details: D) {
        let details = match converter::to_payload(&details) {
            Ok(p) if converter::encoding_of(&p) == converter::BINARY_NULL => Vec::new(),
            Ok(p) => vec![p],
            Err(e) => {
                tracing::warn!(activity = %self.inner.info.activity_type, "heartbeat details dropped: {e}");
                Vec::new()
            }
        };
        if let Some(sink) = &self.inner.sink {
            sink.record_heartbeat(ActivityHeartbeat {
                task_token: self.inner.info.task_token.clone(),
                details,
            });
        }
    }

    /// The details of the last heartbeat of the previous attempt, to resume where it
    /// stopped: `ctx.heartbeat_details::<(u32,)>()`.
    pub fn heartbeat_details<T: Args>(&self) -> Option<Result<T, PayloadError>> {
        (!self.inner.heartbeat_details.is_empty())
            .then(|| T::from_payloads(&self.inner.heartbeat_details))
    }

    /// Whether the activity was asked to stop.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }

    /// Why the activity was asked to stop, once it was.
    pub fn cancel_reason(&self) -> Option<CancelReason> {
        *self.inner.cancel_reason.lock().expect("cancel reason lock")
    }

    /// Completes when the activity is asked to stop: `select!` it against the work.
    pub async fn cancelled(&self) {
        self.inner.cancel.cancelled().await
    }

    /// Asks the activity to stop (the worker calls it; tests may too).
    pub fn cancel(&self, reason: CancelReason) {
        self.inner
            .cancel_reason
            .lock()
            .expect("cancel reason lock")
            .get_or_insert(reason);
        self.inner.cancel.cancel();
    }
}
