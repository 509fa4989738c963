//! Sticky queues: a worker's own queue for the runs it has cached. A task goes there only
//! while that worker polls it.

use std::{
    collections::HashMap,
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
    /// Sticky queues whose worker shut down, and when: their held polls answer empty.
    closed: HashMap<String, SystemTime>,
    /// How many queues were known after the last [`StickyQueues::forget_idle`]: the next
    /// one runs when that doubled, so forgetting costs O(1) per poll, amortised.
    known_after_forget: usize,
}

impl StickyQueues {
    /// Whether the worker of sticky queue `name` is there at `now` to take a task.
    pub(crate) fn worker_polls(&self, name: &str, now: SystemTime) -> bool {
        if self.closed.contains_key(name) {
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
        if self.pollers.len() + self.closed.len() > 2 * self.known_after_forget.max(64) {
            self.forget_idle(now);
        }
    }

    /// The worker of sticky queue `name` shut down at `now`.
    pub(crate) fn close(&mut self, name: &str, now: SystemTime) {
        self.closed.insert(name.to_owned(), now);
        self.pollers.remove(name);
    }

    pub(crate) fn is_closed(&self, name: &str) -> bool {
        self.closed.contains_key(name)
    }

    /// Forgets queues nobody polled for a grace period, and shut-down queues closed longer
    /// ago than that (their held polls were answered at once): a worker's sticky queue is
    /// named once, so without this every worker ever seen would stay in memory.
    fn forget_idle(&mut self, now: SystemTime) {
        let idle = |t: SystemTime| now.duration_since(t).unwrap_or_default() > STICKY_POLLER_GRACE;
        self.pollers
            .retain(|_, p| p.held > 0 || !p.last_seen.is_some_and(idle));
        self.closed.retain(|_, closed| !idle(*closed));
        self.known_after_forget = self.pollers.len() + self.closed.len();
    }

    /// How many sticky queues are remembered.
    #[cfg(any(test, feature = "simulation"))]
    pub(crate) fn len(&self) -> usize {
        self.pollers.len() + self.closed.len()
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
        sticky.close("w", t0);
        assert!(!sticky.worker_polls("w", t0), "shut down");
        assert!(sticky.is_closed("w"));
    }

    #[test]
    fn idle_and_shut_down_queues_are_forgotten() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let mut sticky = StickyQueues::default();
        sticky.poll("held", true, t0);
        for i in 0..10_000 {
            let name = format!("worker-{i}");
            let now = t0 + Duration::from_secs(i);
            sticky.poll(&name, true, now);
            sticky.poll(&name, false, now);
            if i % 2 == 0 {
                sticky.close(&name, now);
            }
        }
        assert!(sticky.len() < 200, "remembers {} queues", sticky.len());
        assert!(
            sticky.worker_polls("held", t0 + Duration::from_secs(20_000)),
            "a held poll is never forgotten"
        );
        let last = t0 + Duration::from_secs(9_999);
        assert!(sticky.worker_polls("worker-9999", last));
        assert!(sticky.is_closed("worker-9998"), "closed within the grace");
    }
}
