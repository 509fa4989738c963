//! Who polls each task queue, and when they last did: what `DescribeTaskQueue` reports.
//! Kept in memory only, as Temporal keeps it: a poller not seen for five minutes is gone.

use std::{
    collections::HashMap,
    time::{Duration, SystemTime},
};

/// How long a poller is reported after its last poll (Temporal's poller history TTL).
const FORGET_AFTER: Duration = Duration::from_secs(5 * 60);

/// At most this many pollers are remembered in all (a client that polls with a fresh
/// identity or queue each time cannot grow the engine's memory without bound); past it, a
/// new poller is not recorded until older ones are forgotten.
const MOST: usize = 10_000;

/// Whether a poller asked for workflow tasks or activity tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum PollerKind {
    Workflow,
    Activity,
}

/// The pollers of every task queue, by `(namespace, queue, kind)` then identity.
#[derive(Debug, Default)]
pub(crate) struct Pollers {
    queues: HashMap<(String, String, PollerKind), HashMap<String, SystemTime>>,
    count: usize,
}

impl Pollers {
    /// `identity` polls `queue` of `namespace` for `kind` tasks `now`.
    pub(crate) fn record(
        &mut self,
        namespace: &str,
        queue: &str,
        kind: PollerKind,
        identity: &str,
        now: SystemTime,
    ) {
        let key = (namespace.to_owned(), queue.to_owned(), kind);
        if let Some(last) = self
            .queues
            .get_mut(&key)
            .and_then(|pollers| pollers.get_mut(identity))
        {
            *last = now;
            return;
        }
        if self.count >= MOST {
            self.forget_before(now);
            if self.count >= MOST {
                return;
            }
        }
        self.queues
            .entry(key)
            .or_default()
            .insert(identity.to_owned(), now);
        self.count += 1;
    }

    /// The pollers of `queue` seen in the last five minutes, most recent first.
    pub(crate) fn of(
        &self,
        namespace: &str,
        queue: &str,
        kind: PollerKind,
        now: SystemTime,
    ) -> Vec<(String, SystemTime)> {
        let key = (namespace.to_owned(), queue.to_owned(), kind);
        let mut pollers: Vec<(String, SystemTime)> = self
            .queues
            .get(&key)
            .into_iter()
            .flatten()
            .filter(|(_, last)| !expired(**last, now))
            .map(|(identity, last)| (identity.clone(), *last))
            .collect();
        pollers.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        pollers
    }

    /// Forgets every poller not seen in the last five minutes.
    fn forget_before(&mut self, now: SystemTime) {
        let mut count = 0;
        self.queues.retain(|_, pollers| {
            pollers.retain(|_, last| !expired(*last, now));
            count += pollers.len();
            !pollers.is_empty()
        });
        self.count = count;
    }
}

fn expired(last: SystemTime, now: SystemTime) -> bool {
    now.duration_since(last)
        .is_ok_and(|idle| idle > FORGET_AFTER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poller_is_reported_for_five_minutes_and_memory_stays_bounded() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut pollers = Pollers::default();
        pollers.record("ns", "q", PollerKind::Workflow, "a", t0);
        pollers.record(
            "ns",
            "q",
            PollerKind::Workflow,
            "b",
            t0 + Duration::from_secs(1),
        );
        pollers.record("ns", "q", PollerKind::Activity, "c", t0);
        let seen = |p: &Pollers, at| -> Vec<String> {
            p.of("ns", "q", PollerKind::Workflow, at)
                .into_iter()
                .map(|(identity, _)| identity)
                .collect()
        };
        assert_eq!(seen(&pollers, t0 + Duration::from_secs(2)), ["b", "a"]);
        assert_eq!(seen(&pollers, t0 + Duration::from_secs(301)), ["b"]);
        assert!(seen(&pollers, t0 + Duration::from_secs(400)).is_empty());
        // A flood of fresh identities is capped; once they expire, new pollers count again.
        for i in 0..MOST + 10 {
            pollers.record("ns", &format!("q{i}"), PollerKind::Workflow, "x", t0);
        }
        assert_eq!(pollers.count, MOST);
        let later = t0 + Duration::from_secs(600);
        pollers.record("ns", "fresh", PollerKind::Workflow, "y", later);
        assert_eq!(pollers.count, 1);
        assert_eq!(
            pollers.of("ns", "fresh", PollerKind::Workflow, later),
            [("y".to_owned(), later)]
        );
    }
}
