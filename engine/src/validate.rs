//! Checks of what clients and workers send, where it enters: durations, retry policies,
//! failures, payload sizes. A value Temporal rejects is refused with a message naming the
//! field and the bound; below this boundary, time arithmetic may assume sane values (and
//! saturates, see `clock::after`, so that even a stored value from elsewhere cannot panic).

use std::time::Duration;

use prost::Message;

use crate::{
    limits::Limits,
    proto::{
        common::{Memo, RetryPolicy},
        failure::{failure::FailureInfo, ApplicationFailureInfo, Failure, ServerFailureInfo},
    },
};

/// Temporal's answer to a payload blob over [`Limits::blob_size_error`].
pub(crate) const BLOB_TOO_LARGE: &str = "Blob data size exceeds limit.";

/// Temporal's answer to a memo over [`Limits::blob_size_error`].
pub(crate) const MEMO_TOO_LARGE: &str = "Memo size exceeds limit.";

/// The failure an activity gets for a result over the blob limit.
pub(crate) const RESULT_TOO_LARGE: &str = "Complete result exceeds size limit.";

/// The failure that replaces a failure over the blob limit.
pub(crate) const FAILURE_TOO_LARGE: &str = "Failure exceeds size limit.";

/// The failure an activity gets for heartbeat details over the blob limit.
pub(crate) const HEARTBEAT_TOO_LARGE: &str = "Heartbeat details exceed size limit.";

/// The failure an activity gets for cancellation details over the blob limit.
pub(crate) const CANCEL_DETAILS_TOO_LARGE: &str = "Cancel details exceed size limit.";

/// A blob's size as Temporal measures it: its encoded length (0 when absent).
pub(crate) fn size_of<M: Message>(blob: Option<&M>) -> usize {
    blob.map_or(0, Message::encoded_len)
}

/// Checks a blob of `size` bytes sent in `field` for `run` (a workflow, for the log):
/// over [`Limits::blob_size_error`] it is refused with `refusal` (Temporal's wording),
/// followed by the field, its size and the limit; over [`Limits::blob_size_warn`] it is
/// logged.
pub(crate) fn blob_size(
    limits: &Limits,
    refusal: &str,
    field: &str,
    size: usize,
    run: &str,
) -> Result<(), String> {
    if size > limits.blob_size_error {
        tracing::warn!(
            "capstan-engine: refused {field} of {size} bytes for {run}: over the blob size \
             limit of {} bytes",
            limits.blob_size_error
        );
        return Err(format!(
            "{refusal} ({field} is {size} bytes; the limit is {} bytes)",
            limits.blob_size_error
        ));
    }
    if size > limits.blob_size_warn {
        tracing::warn!(
            "capstan-engine: {field} of {size} bytes for {run} is over the blob size warning \
             limit of {} bytes (refused from {} bytes)",
            limits.blob_size_warn,
            limits.blob_size_error
        );
    }
    Ok(())
}

/// [`blob_size`] of a memo.
pub(crate) fn memo_size(
    limits: &Limits,
    field: &str,
    memo: Option<&Memo>,
    run: &str,
) -> Result<(), String> {
    blob_size(limits, MEMO_TOO_LARGE, field, size_of(memo), run)
}

/// A failure the engine writes in a worker's stead (Temporal's server failure).
pub(crate) fn server_failure(message: &str, non_retryable: bool) -> Failure {
    Failure {
        message: message.to_owned(),
        source: "capstan-engine".to_owned(),
        failure_info: Some(FailureInfo::ServerFailureInfo(ServerFailureInfo {
            non_retryable,
        })),
        ..Default::default()
    }
}

/// A failure over [`Limits::blob_size_error`] replaced, as Temporal does, by a server
/// failure "Failure exceeds size limit." whose cause is the original cut down: its
/// message (to the warning limit), source, and application type, without details,
/// stack trace or causes. Smaller failures are kept.
pub(crate) fn limit_failure_size(
    limits: &Limits,
    failure: Failure,
    non_retryable: bool,
    field: &str,
    run: &str,
) -> Failure {
    let size = failure.encoded_len();
    if blob_size(limits, FAILURE_TOO_LARGE, field, size, run).is_ok() {
        return failure;
    }
    let mut message = failure.message;
    let mut cut = message.len().min(limits.blob_size_warn);
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    message.truncate(cut);
    let failure_info = match failure.failure_info {
        Some(FailureInfo::ApplicationFailureInfo(info)) => Some(
            FailureInfo::ApplicationFailureInfo(ApplicationFailureInfo {
                r#type: info.r#type,
                non_retryable: info.non_retryable,
                ..Default::default()
            }),
        ),
        _ => None,
    };
    Failure {
        cause: Some(Box::new(Failure {
            message,
            source: failure.source,
            failure_info,
            ..Default::default()
        })),
        ..server_failure(FAILURE_TOO_LARGE, non_retryable)
    }
}

/// The longest duration a protobuf `Duration` may hold (10,000 years): beyond it, as
/// Temporal, the value is invalid.
const MAX_SECONDS: i64 = crate::proto::MAX_DURATION_SECONDS;

/// How many causes a failure keeps: an event wrapping a deeper chain could not be decoded
/// again (protobuf's nesting limit is 100).
pub(crate) const MAX_FAILURE_DEPTH: usize = 32;

/// A duration a client sent in field `field`: `None` when unset or zero; an error when
/// negative or beyond [`MAX_SECONDS`].
pub(crate) fn duration(
    field: &str,
    d: Option<&prost_wkt_types::Duration>,
) -> Result<Option<Duration>, String> {
    let Some(d) = d else { return Ok(None) };
    if d.seconds < 0 || d.nanos < 0 {
        return Err(format!(
            "{field} is negative ({}s {}ns)",
            d.seconds, d.nanos
        ));
    }
    if d.nanos >= 1_000_000_000 {
        return Err(format!(
            "{field} has {} nanoseconds: at most 999,999,999",
            d.nanos
        ));
    }
    if d.seconds > MAX_SECONDS {
        return Err(format!(
            "{field} is {} seconds: at most {MAX_SECONDS} (10,000 years)",
            d.seconds
        ));
    }
    let d = Duration::new(d.seconds as u64, d.nanos as u32);
    Ok((!d.is_zero()).then_some(d))
}

/// Checks a retry policy sent in field `field`, as Temporal does: intervals valid and the
/// maximum not below the initial one, a finite backoff coefficient of at least 1 (0: the
/// default), a maximum attempts count that is not negative.
pub(crate) fn retry_policy(field: &str, policy: Option<&RetryPolicy>) -> Result<(), String> {
    let Some(policy) = policy else { return Ok(()) };
    let initial = duration(
        &format!("{field}.initial_interval"),
        policy.initial_interval.as_ref(),
    )?;
    let maximum = duration(
        &format!("{field}.maximum_interval"),
        policy.maximum_interval.as_ref(),
    )?;
    let coefficient = policy.backoff_coefficient;
    if coefficient != 0.0 && !(coefficient.is_finite() && coefficient >= 1.0) {
        return Err(format!(
            "{field}.backoff_coefficient is {coefficient}: it must be a finite number of at \
             least 1 (or 0 for the default, 2)"
        ));
    }
    if let (Some(initial), Some(maximum)) = (initial, maximum) {
        if maximum < initial {
            return Err(format!(
                "{field}.maximum_interval ({maximum:?}) is below its initial_interval \
                 ({initial:?})"
            ));
        }
    }
    if policy.maximum_attempts < 0 {
        return Err(format!(
            "{field}.maximum_attempts is {}: it cannot be negative",
            policy.maximum_attempts
        ));
    }
    Ok(())
}

/// Keeps at most [`MAX_FAILURE_DEPTH`] causes of a failure; the last kept one says how
/// many were dropped.
pub(crate) fn limit_failure(failure: &mut Failure) {
    let mut at = failure;
    for _ in 1..MAX_FAILURE_DEPTH {
        match at.cause {
            Some(ref mut cause) => at = &mut **cause,
            None => return,
        }
    }
    let Some(rest) = at.cause.take() else { return };
    let mut dropped = 0;
    let mut next = Some(rest);
    // Unlinked one at a time: dropping a long chain at once would recurse through it.
    while let Some(mut cause) = next {
        dropped += 1;
        next = cause.cause.take();
    }
    at.message = format!(
        "{} (and {dropped} deeper causes, dropped: the engine keeps {MAX_FAILURE_DEPTH} levels)",
        at.message
    );
}

/// [`limit_failure`] for an optional failure.
pub(crate) fn limit_optional_failure(failure: &mut Option<Failure>) {
    if let Some(failure) = failure {
        limit_failure(failure);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(seconds: i64, nanos: i32) -> Option<prost_wkt_types::Duration> {
        Some(prost_wkt_types::Duration { seconds, nanos })
    }

    #[test]
    fn durations_beyond_their_bounds_are_named() {
        assert_eq!(duration("t", None), Ok(None));
        assert_eq!(duration("t", d(0, 0).as_ref()), Ok(None));
        assert_eq!(
            duration("t", d(5, 1).as_ref()),
            Ok(Some(Duration::new(5, 1)))
        );
        assert!(duration("t", d(-1, 0).as_ref())
            .unwrap_err()
            .contains("t is negative"));
        assert!(duration("t", d(i64::MAX, 0).as_ref())
            .unwrap_err()
            .contains("at most 315576000000"));
        assert!(duration("t", d(1, 1_000_000_000).as_ref()).is_err());
    }

    #[test]
    fn retry_policies_follow_temporals_rules() {
        let policy = |coefficient: f64, initial: i64, maximum: i64, attempts: i32| RetryPolicy {
            backoff_coefficient: coefficient,
            initial_interval: d(initial, 0),
            maximum_interval: d(maximum, 0),
            maximum_attempts: attempts,
            ..Default::default()
        };
        assert!(retry_policy("p", Some(&policy(0.0, 1, 10, 0))).is_ok());
        assert!(retry_policy("p", Some(&policy(1.5, 1, 0, 3))).is_ok());
        for (bad, named) in [
            (policy(f64::INFINITY, 1, 10, 0), "backoff_coefficient"),
            (policy(f64::NAN, 1, 10, 0), "backoff_coefficient"),
            (policy(0.5, 1, 10, 0), "backoff_coefficient"),
            (policy(2.0, 10, 1, 0), "maximum_interval"),
            (policy(2.0, -1, 10, 0), "initial_interval"),
            (policy(2.0, 1, 10, -1), "maximum_attempts"),
        ] {
            let error = retry_policy("p", Some(&bad)).unwrap_err();
            assert!(error.contains(&format!("p.{named}")), "{error}");
        }
    }

    #[test]
    fn a_deep_failure_keeps_its_first_causes() {
        let mut failure = Failure::default();
        for level in (0..100).rev() {
            failure = Failure {
                message: format!("level {level}"),
                cause: Some(Box::new(failure)),
                ..Default::default()
            };
        }
        limit_failure(&mut failure);
        let mut depth = 1;
        let mut at = &failure;
        while let Some(cause) = &at.cause {
            depth += 1;
            at = cause;
        }
        assert_eq!(depth, MAX_FAILURE_DEPTH);
        assert!(
            at.message.starts_with("level 31 (and 69 deeper causes"),
            "{}",
            at.message
        );
        let mut shallow = Failure::default();
        limit_failure(&mut shallow);
        assert_eq!(shallow, Failure::default());
    }
}
