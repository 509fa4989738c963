//! Options shared by activities, child workflows and clients.

use std::time::Duration;

use temporalio_common::protos::temporal::api::common::v1::RetryPolicy as ProtoRetryPolicy;
/// What a start does when the workflow id is taken: by a running workflow (conflict
/// policy) or by a closed one (reuse policy). For `StartWorkflow::id_conflict_policy` and
/// `id_reuse_policy`.
pub use temporalio_common::protos::temporal::api::enums::v1::{
    WorkflowIdConflictPolicy, WorkflowIdReusePolicy,
};

/// How failed activities and workflows are retried: the next attempt waits
/// `initial_interval × backoff_coefficient^(attempt-1)`, capped at `maximum_interval`.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Wait before the first retry (server default: 1 s).
    pub initial_interval: Option<Duration>,
    /// Growth of the wait per attempt (server default: 2.0; 1.0 for a fixed interval).
    pub backoff_coefficient: f64,
    /// Longest wait (server default: 100 × the initial interval).
    pub maximum_interval: Option<Duration>,
    /// Attempts in all, the first included; 0 means unlimited.
    pub maximum_attempts: u32,
    /// Application error types that are never retried.
    pub non_retryable_error_types: Vec<String>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_interval: None,
            backoff_coefficient: 0.0,
            maximum_interval: None,
            maximum_attempts: 0,
            non_retryable_error_types: Vec::new(),
        }
    }
}

impl RetryPolicy {
    /// At most `attempts` attempts, with the server's default backoff.
    pub fn maximum_attempts(attempts: u32) -> Self {
        Self {
            maximum_attempts: attempts,
            ..Self::default()
        }
    }

    /// A fixed `interval` between attempts (backoff coefficient 1.0).
    pub fn fixed_interval(interval: Duration) -> Self {
        Self {
            initial_interval: Some(interval),
            backoff_coefficient: 1.0,
            ..Self::default()
        }
    }

    /// Sets the number of attempts.
    pub fn with_maximum_attempts(mut self, attempts: u32) -> Self {
        self.maximum_attempts = attempts;
        self
    }

    /// Adds application error types that are never retried.
    pub fn with_non_retryable_error_types<S: Into<String>>(
        mut self,
        types: impl IntoIterator<Item = S>,
    ) -> Self {
        self.non_retryable_error_types
            .extend(types.into_iter().map(Into::into));
        self
    }

    pub(crate) fn into_proto(self) -> ProtoRetryPolicy {
        ProtoRetryPolicy {
            initial_interval: self.initial_interval.and_then(|d| d.try_into().ok()),
            backoff_coefficient: self.backoff_coefficient,
            maximum_interval: self.maximum_interval.and_then(|d| d.try_into().ok()),
            maximum_attempts: self.maximum_attempts.min(i32::MAX as u32) as i32,
            non_retryable_error_types: self.non_retryable_error_types,
        }
    }
}
