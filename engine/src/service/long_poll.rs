//! Long polls: how long a request may be held, and waiting for a transaction to find what
//! it looks for.

use std::time::Duration;

use tokio::time::Instant;
use tonic::{Request, Status};

use super::Service;
use crate::{
    errors,
    state::{State, Topic},
};

/// When a long poll's answer `T` may leave (it matters only for a durable engine).
#[derive(Debug, Clone, Copy)]
pub(super) enum Answer<T> {
    /// Once everything it read or wrote is on disk: what it tells is acknowledged.
    Written,
    /// At once if `from_memory` says so of the answer (a query to the worker that has the
    /// run cached carries no history: it reaches that worker even while the disk is full);
    /// else once everything it read and wrote is on disk, even while writes fail, and not
    /// past the poll's deadline (then it answers empty, and what it took is handed out
    /// again later, as after a worker that vanished). A workflow task, or a query that
    /// carries history, must not leave before: a worker caches the run from the history it
    /// is given, and events lost with a crash would be replaced by others under the same
    /// ids, which the worker's cache would never see (soak seed 900197: a lost signal's id
    /// went to a cancel request, and the worker ignored it).
    Staged { from_memory: fn(&T) -> bool },
}

/// How long a long poll is held when the client sets no deadline.
const DEFAULT_POLL: Duration = Duration::from_secs(60);
/// Answer this long before the client's deadline, so the empty answer arrives in time.
pub(super) const DEADLINE_MARGIN: Duration = Duration::from_millis(1000);

/// When a long poll must answer: just before the client's `grpc-timeout`.
pub(super) fn poll_deadline<T>(request: &Request<T>) -> Instant {
    let timeout = request
        .metadata()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_grpc_timeout)
        .map(|t| t.saturating_sub(DEADLINE_MARGIN))
        .unwrap_or(DEFAULT_POLL)
        .min(DEFAULT_POLL);
    Instant::now() + timeout
}

/// A `grpc-timeout` header's value: digits and a unit.
pub(super) fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

impl Service {
    /// Runs `check` in a transaction until it yields, the deadline passes (`None`) or the
    /// engine closes (`None`). Wakes only on committed changes to `topic` (what `check`
    /// reads): no busy loop, and no wake for other runs' or queues' changes. An
    /// [`Answer::Written`] poll answers `UNAVAILABLE` once the database cannot be written.
    pub(super) async fn wait_for<T>(
        &self,
        deadline: Instant,
        topic: Topic,
        answer: Answer<T>,
        mut check: impl FnMut(&mut State) -> Result<Option<T>, Status>,
    ) -> Result<Option<T>, Status> {
        let mut changes = self.store.subscribe_to(topic);
        loop {
            if self.store.is_closing() {
                return Ok(None);
            }
            let found = match answer {
                Answer::Written => {
                    // A task taken now could not be acknowledged: the poll stops here.
                    if let Some(failure) = self.store.write_failure() {
                        return Err(errors::refused_unwritable(
                            &failure.path,
                            &failure.cause,
                            failure.since,
                        ));
                    }
                    self.store.transaction(&mut check).await
                }
                Answer::Staged { from_memory } => {
                    let (found, ticket) = self.store.apply(&mut check);
                    if matches!(&found, Ok(Some(answer)) if !from_memory(answer)) {
                        let written =
                            tokio::time::timeout_at(deadline, ticket.written_strictly()).await;
                        if written.is_err() {
                            return Ok(None);
                        }
                    }
                    found
                }
            }?;
            if let Some(found) = found {
                return Ok(Some(found));
            }
            tokio::select! {
                () = changes.woken() => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(None),
            }
        }
    }
}
