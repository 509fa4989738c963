//! The engine's limits, in one place: Temporal's defaults, each configurable through
//! [`EngineOptions::limits`](crate::EngineOptions::limits).

/// How much the engine accepts, per request and per run. [`Limits::default`] is Temporal
/// server's defaults (the dynamic config key of each is in its documentation), so that a
/// workflow that runs here runs on a Temporal cluster too.
///
/// ```
/// let options = capstan_engine::EngineOptions {
///     limits: capstan_engine::Limits {
///         blob_size_error: 8 * 1024 * 1024,
///         grpc_message_size: 16 * 1024 * 1024,
///         ..Default::default()
///     },
///     ..Default::default()
/// };
/// # let _ = options;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The largest payload blob a request or a command may carry (an input, a signal's
    /// input, a result, a failure, heartbeat details, a memo), in bytes (default 2 MiB,
    /// `limit.blobSize.error`). A client's request over it is refused with
    /// `INVALID_ARGUMENT` "Blob data size exceeds limit."; a worker's command over it
    /// terminates the run, and an activity's answer over it fails the activity, as on
    /// Temporal.
    pub blob_size_error: usize,
    /// A blob over this many bytes is accepted with a warning in the log naming the run
    /// (default 512 KiB, `limit.blobSize.warn`).
    pub blob_size_warn: usize,
    /// A run whose history grows past this many events is terminated, with the reason
    /// "Workflow history count exceeds limit." (default 51,200, `limit.historyCount.error`).
    pub history_count_error: usize,
    /// A history past this many events is logged as a warning (default 10,240,
    /// `limit.historyCount.warn`).
    pub history_count_warn: usize,
    /// A run whose history grows past this many bytes (encoded events) is terminated, with
    /// the reason "Workflow history size exceeds limit." (default 50 MiB,
    /// `limit.historySize.error`).
    pub history_size_error: usize,
    /// A history past this many bytes is logged as a warning (default 10 MiB,
    /// `limit.historySize.warn`).
    pub history_size_warn: usize,
    /// From this many events, workflow tasks carry `suggest_continue_as_new` (default
    /// 4,096, `limit.historyCount.suggestContinueAsNew`). Workflows read it as
    /// `ctx.is_continue_as_new_suggested()`.
    pub history_count_suggest_continue_as_new: usize,
    /// From this many bytes of history, workflow tasks carry `suggest_continue_as_new`
    /// (default 4 MiB, `limit.historySize.suggestContinueAsNew`).
    pub history_size_suggest_continue_as_new: usize,
    /// Activities a run may have pending; a workflow task that would schedule more fails
    /// with `PENDING_ACTIVITIES_LIMIT_EXCEEDED` (default 2,000,
    /// `limit.numPendingActivities.error`).
    pub pending_activities: usize,
    /// Child workflows a run may have pending (`PENDING_CHILD_WORKFLOWS_LIMIT_EXCEEDED`,
    /// default 2,000, `limit.numPendingChildExecutions.error`).
    pub pending_children: usize,
    /// Signals to other workflows a run may have pending (`PENDING_SIGNALS_LIMIT_EXCEEDED`,
    /// default 2,000, `limit.numPendingSignals.error`).
    pub pending_signals: usize,
    /// Cancel requests to other workflows a run may have pending
    /// (`PENDING_REQUEST_CANCEL_LIMIT_EXCEEDED`, default 2,000,
    /// `limit.numPendingCancelRequests.error`).
    pub pending_cancels: usize,
    /// Updates a run may have in flight (admitted, not yet completed); one more is refused
    /// with `RESOURCE_EXHAUSTED` (default 10, `history.maxInFlightUpdates`).
    pub in_flight_updates: usize,
    /// Updates a run may receive in all (rejected ones aside); one more is refused with
    /// `FAILED_PRECONDITION` (default 2,000, `history.maxTotalUpdates`).
    pub total_updates: usize,
    /// The largest gRPC request the engine decodes, in bytes (default 4 MiB, gRPC's and
    /// Temporal's default). A larger one is refused with `OUT_OF_RANGE` naming both sizes;
    /// history pages are cut to fit in it.
    pub grpc_message_size: usize,
    /// Custom search attributes a namespace may have (default 100). Temporal's own limit
    /// depends on its visibility store (3 `Int` on the dev server's SQLite, hundreds on
    /// Elasticsearch); the engine keeps values as JSON, so one number bounds them all.
    pub custom_search_attributes: usize,
}

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Self {
            blob_size_error: 2 * MIB,
            blob_size_warn: 512 * KIB,
            history_count_error: 51_200,
            history_count_warn: 10_240,
            history_size_error: 50 * MIB,
            history_size_warn: 10 * MIB,
            history_count_suggest_continue_as_new: 4_096,
            history_size_suggest_continue_as_new: 4 * MIB,
            pending_activities: 2_000,
            pending_children: 2_000,
            pending_signals: 2_000,
            pending_cancels: 2_000,
            in_flight_updates: 10,
            total_updates: 2_000,
            grpc_message_size: 4 * MIB,
            custom_search_attributes: 100,
        }
    }
}
