//! The engine's notion of now: the real clock, or a virtual clock for tests.
//!
//! Every time the engine stamps (event times, task timestamps, timer deadlines, timeouts)
//! comes from the [`Clock`], read once per store transaction so that one transition
//! happens at one instant. A reading earlier than the last transaction's (the wall clock
//! stepped back, before or across a restart) is not used: time holds still until the
//! clock catches up (`State::begin`, `State::rebuild`).
//!
//! The virtual clock starts at the real time. It stands still while the engine makes
//! progress, so that work done after a timer fires is stamped with the timer's deadline
//! and re-armed timers do not drift with the machine's speed; this keeps tests
//! deterministic. When the engine is idle and only timers remain, the timer service
//! jumps it to the earliest deadline ([`Clock::skip_to`]). If the engine is busy but makes
//! no progress for [`STALL`] (a hung activity, a worker that died holding a task), it
//! flows again at the real pace, so that timeouts still fire.

use std::time::{Duration, Instant, SystemTime};

/// The last instant the engine represents (9999-12-31T23:59:59Z): time arithmetic
/// saturates there instead of overflowing.
pub(crate) fn end_of_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_799)
}

/// `t + d`, saturating at [`end_of_time`].
pub(crate) fn after(t: SystemTime, d: Duration) -> SystemTime {
    let end = end_of_time();
    t.checked_add(d).map_or(end, |t| t.min(end))
}

/// How long the virtual clock waits without progress before it flows at the real pace.
pub(crate) const STALL: Duration = Duration::from_secs(2);

/// The real clock, or a virtual one.
#[derive(Debug, Default)]
pub(crate) enum Clock {
    /// `SystemTime::now()`.
    #[default]
    Real,
    /// Stands still while work progresses, jumps to timers when idle.
    Virtual {
        /// The virtual time at `since`.
        at: SystemTime,
        /// When the clock last moved or the engine last made progress.
        since: Instant,
    },
    /// Stands still; moves only when a test moves it ([`Clock::skip_to`]).
    #[cfg(any(test, feature = "simulation"))]
    Manual(SystemTime),
}

impl Clock {
    /// A virtual clock starting at the real time.
    pub(crate) fn new_virtual() -> Self {
        Self::Virtual {
            at: SystemTime::now(),
            since: Instant::now(),
        }
    }

    pub(crate) fn is_virtual(&self) -> bool {
        matches!(self, Self::Virtual { .. })
    }

    /// The engine's current time.
    pub(crate) fn now(&self) -> SystemTime {
        match self {
            Self::Real => SystemTime::now(),
            Self::Virtual { at, since } => *at + since.elapsed().saturating_sub(STALL),
            #[cfg(any(test, feature = "simulation"))]
            Self::Manual(at) => *at,
        }
    }

    /// The engine made progress: a virtual clock stands still for another [`STALL`].
    pub(crate) fn progress(&mut self) {
        if let Self::Virtual { .. } = self {
            *self = Self::Virtual {
                at: self.now(),
                since: Instant::now(),
            };
        }
    }

    /// Moves a virtual clock forward to `to` (never backward); the real clock ignores it.
    pub(crate) fn skip_to(&mut self, to: SystemTime) {
        #[cfg(any(test, feature = "simulation"))]
        if let Self::Manual(at) = self {
            *at = (*at).max(to);
        }
        if let Self::Virtual { .. } = self {
            *self = Self::Virtual {
                at: self.now().max(to),
                since: Instant::now(),
            };
        }
    }

    /// How long to sleep in real time until the clock reads `deadline`.
    pub(crate) fn real_wait(&self, deadline: SystemTime) -> Duration {
        match self {
            Self::Real => deadline
                .duration_since(SystemTime::now())
                .unwrap_or_default(),
            // The clock reads `at` until `STALL` has passed, then flows.
            Self::Virtual { at, since } => match deadline.duration_since(*at) {
                Ok(ahead) if !ahead.is_zero() => (STALL + ahead).saturating_sub(since.elapsed()),
                _ => Duration::ZERO,
            },
            #[cfg(any(test, feature = "simulation"))]
            Self::Manual(at) => deadline.duration_since(*at).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_virtual_clock_stands_still_then_flows_and_skips_forward_only() {
        let mut clock = Clock::new_virtual();
        let start = clock.now();
        assert_eq!(clock.now(), start, "stands still within the stall window");
        let later = start + Duration::from_secs(3600);
        assert!(clock.real_wait(later) > Duration::from_secs(3600));
        clock.skip_to(later);
        assert_eq!(clock.now(), later);
        assert_eq!(clock.real_wait(later), Duration::ZERO);
        clock.skip_to(start);
        assert_eq!(clock.now(), later, "never goes back");
        clock.progress();
        assert_eq!(clock.now(), later);
    }

    #[test]
    fn the_real_clock_is_the_system_time() {
        let clock = Clock::Real;
        let before = SystemTime::now();
        let now = clock.now();
        assert!(now >= before && now <= SystemTime::now());
    }
}
