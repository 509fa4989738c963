//! Sticky queues: a worker's own queue for the runs it has cached. A task goes there only
//! while that worker polls it.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, SystemTime},
};

/// How long after its last poll a sticky queue's worker still counts as there, as
/// Temporal's matching service (a worker re-polls at once after each answer).
pub(crate) const STICKY_POLLER_GRACE: Duration = Duration::from_secs(10);

/// The polls of one sticky queue.
#[derive(Debug, Default)]
struct Pollers {
    /// Polls being held now.
    held: usize,
    /// When the last poll arrived or ended.
    last_seen: Option<SystemTime>,
}

/// Who polls each sticky queue, and which ones their workers shut down.
#[derive(Debug, Default)]
pub(crate) struct StickyQueues {
    pollers: HashMap<String, Pollers>,
    /// Sticky queues whose worker shut down: their held polls answer empty.
    closed: HashSet<String>,
}

impl StickyQueues {
    /// Whether the worker of sticky queue `name` is there at `now` to take a task.
    pub(crate) fn worker_polls(&self, name: &str, now: SystemTime) -> bool {
        if self.closed.contains(name) {
            return false;
        }
        self.pollers.get(name).is_some_and(|p| {
            p.held > 0
                || p.last_seen.is_some_and(|t| {
                    now.duration_since(t).unwrap_or_default() <= STICKY_POLLER_GRACE
                })
        })
    }

    /// Notes a poll of sticky queue `name` beginning (`begins`) or ending at `now`.
    pub(crate) fn poll(&mut self, name: &str, begins: bool, now: SystemTime) {
        let pollers = self.pollers.entry(name.to_owned()).or_default();
        if begins {
            pollers.held += 1;
        } else {
            pollers.held = pollers.held.saturating_sub(1);
        }
        pollers.last_seen = Some(now);
    }

    /// The worker of sticky queue `name` shut down.
    pub(crate) fn close(&mut self, name: &str) {
        self.closed.insert(name.to_owned());
        self.pollers.remove(name);
    }

    pub(crate) fn is_closed(&self, name: &str) -> bool {
        self.closed.contains(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sticky_worker_counts_while_it_polls_and_for_a_grace_after() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let mut sticky = StickyQueues::default();
        assert!(!sticky.worker_polls("w", t0), "never polled");
        sticky.poll("w", true, t0);
        assert!(
            sticky.worker_polls("w", t0 + Duration::from_secs(3600)),
            "holds a poll"
        );
        sticky.poll("w", false, t0);
        assert!(sticky.worker_polls("w", t0 + STICKY_POLLER_GRACE));
        assert!(!sticky.worker_polls("w", t0 + STICKY_POLLER_GRACE + Duration::from_secs(1)));
        sticky.poll("w", true, t0);
        sticky.close("w");
        assert!(!sticky.worker_polls("w", t0), "shut down");
        assert!(sticky.is_closed("w"));
    }
}
