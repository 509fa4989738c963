//! Retry policies, shared by activity attempts and workflow runs.

use std::time::{Duration, SystemTime};

use crate::proto::{
    self,
    common::RetryPolicy,
    enums::RetryState,
    failure::{failure::FailureInfo, Failure},
};

/// The policy with Temporal's defaults filled in: a 1 s initial interval, a coefficient of
/// 2 and a maximum interval of 100 initial intervals.
pub(super) fn with_defaults(policy: Option<RetryPolicy>) -> RetryPolicy {
    let mut policy = policy.unwrap_or_default();
    let initial =
        proto::duration(policy.initial_interval.as_ref()).unwrap_or(Duration::from_secs(1));
    policy.initial_interval = Some(proto::proto_duration(initial));
    if policy.backoff_coefficient < 1.0 {
        policy.backoff_coefficient = 2.0;
    }
    if proto::duration(policy.maximum_interval.as_ref()).is_none() {
        policy.maximum_interval = Some(proto::proto_duration(initial * 100));
    }
    policy
}

/// Whether attempt `attempt`'s failure is retried under `policy`, and after what backoff;
/// no retry may begin at or after `deadline`.
pub(super) fn decide(
    attempt: i32,
    policy: &RetryPolicy,
    failure: &Failure,
    deadline: Option<SystemTime>,
    now: SystemTime,
) -> (Option<Duration>, RetryState) {
    let mut next_delay = None;
    if let Some(FailureInfo::ApplicationFailureInfo(info)) = &failure.failure_info {
        if info.non_retryable || policy.non_retryable_error_types.contains(&info.r#type) {
            return (None, RetryState::NonRetryableFailure);
        }
        next_delay = proto::duration(info.next_retry_delay.as_ref());
    }
    // The engine's own failures (an answer over the size limit) say whether they retry.
    if let Some(FailureInfo::ServerFailureInfo(info)) = &failure.failure_info {
        if info.non_retryable {
            return (None, RetryState::NonRetryableFailure);
        }
    }
    if policy.maximum_attempts > 0 && attempt >= policy.maximum_attempts {
        return (None, RetryState::MaximumAttemptsReached);
    }
    let initial =
        proto::duration(policy.initial_interval.as_ref()).unwrap_or(Duration::from_secs(1));
    // In floating point: a coefficient's power overflows to infinity, never panics.
    let coefficient = if policy.backoff_coefficient.is_finite() {
        policy.backoff_coefficient.max(1.0)
    } else {
        2.0
    };
    let seconds = initial.as_secs_f64() * coefficient.powi(attempt.saturating_sub(1));
    let mut backoff = Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX);
    if let Some(max) = proto::duration(policy.maximum_interval.as_ref()) {
        backoff = backoff.min(max);
    }
    let backoff = next_delay.unwrap_or(backoff);
    if deadline.is_some_and(|d| crate::clock::after(now, backoff) >= d) {
        return (None, RetryState::Timeout);
    }
    (Some(backoff), RetryState::InProgress)
}
