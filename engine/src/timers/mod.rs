//! Timers as data: what a deadline is for, and the wheel that keeps every armed deadline
//! in time order.
//!
//! Nothing here decides a deadline or fires one. A run says which deadlines it needs
//! (`Run::deadlines`), a schedule names its next action time; the state arms exactly
//! those in the [`TimerWheel`] after every transaction that touched them, and the timer
//! service pops what is due. Because the wheel is set from the same function on the live
//! path and after a restart, the two cannot disagree.

use std::{
    collections::{BTreeMap, HashMap},
    time::SystemTime,
};

use crate::proto::enums::TimeoutType;

/// A deadline of one run: what happens when its time comes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum RunTimer {
    /// The run's start delay, retry backoff or cron wait is over: its first workflow task
    /// is scheduled.
    FirstWorkflowTask,
    /// The run's run timeout (or, without one, its execution timeout).
    RunTimeout,
    /// A started workflow task ran past its start-to-close timeout.
    WorkflowTaskTimeout { scheduled_event_id: i64 },
    /// A workflow task waited on a sticky queue past its schedule-to-start timeout.
    StickyScheduleToStart { scheduled_event_id: i64 },
    /// A workflow's `StartTimer`.
    UserTimer {
        timer_id: String,
        started_event_id: i64,
    },
    /// One of an activity's timeouts: schedule-to-close across attempts (`attempt` is
    /// `None`), or one attempt's schedule-to-start (waiting in its queue), start-to-close
    /// or heartbeat (from its last heartbeat).
    ActivityTimeout {
        scheduled_event_id: i64,
        attempt: Option<i32>,
        timeout: TimeoutType,
    },
    /// An activity's retry backoff is over: the next attempt is queued.
    ActivityRetry {
        scheduled_event_id: i64,
        attempt: i32,
    },
}

/// One deadline a run needs: `timer` fires at `at`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Deadline {
    pub(crate) at: SystemTime,
    pub(crate) timer: RunTimer,
}

/// Whose deadlines: a run (by run id) or a schedule (by namespace and schedule id).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Owner {
    Run(String),
    Schedule(String, String),
}

/// What fires: a run's timer, or a schedule's next action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fired {
    Run {
        run_id: String,
        timer: RunTimer,
    },
    Schedule {
        namespace: String,
        schedule_id: String,
    },
}

/// Every armed deadline in time order, and per owner the ones armed for it.
#[derive(Debug, Default)]
pub(crate) struct TimerWheel {
    /// By `(deadline, sequence number)`: deadlines at one instant fire in arming order.
    by_time: BTreeMap<(SystemTime, u64), (Owner, Option<RunTimer>)>,
    /// What is armed for each owner: its deadlines (a schedule's has no timer) and their
    /// keys in `by_time`.
    armed: HashMap<Owner, Vec<(Deadline, u64)>>,
    seq: u64,
}

impl TimerWheel {
    /// Arms exactly `deadlines` for `owner`, disarming what it had that is not among them.
    /// Returns whether the wheel's earliest deadline moved earlier (whoever sleeps until
    /// it must wake).
    pub(crate) fn set_run(&mut self, run_id: &str, mut deadlines: Vec<Deadline>) -> bool {
        deadlines.sort();
        self.set(Owner::Run(run_id.to_owned()), deadlines)
    }

    /// Arms schedule `(namespace, id)`'s next action at `at` (`None`: disarms it).
    pub(crate) fn set_schedule(
        &mut self,
        namespace: &str,
        id: &str,
        at: Option<SystemTime>,
    ) -> bool {
        let deadlines = at
            .map(|at| Deadline {
                at,
                // Never read: a schedule has one deadline and no kinds.
                timer: RunTimer::FirstWorkflowTask,
            })
            .into_iter()
            .collect();
        self.set(
            Owner::Schedule(namespace.to_owned(), id.to_owned()),
            deadlines,
        )
    }

    fn set(&mut self, owner: Owner, deadlines: Vec<Deadline>) -> bool {
        let unchanged = match self.armed.get(&owner) {
            Some(armed) => armed.iter().map(|(d, _)| d).eq(deadlines.iter()),
            None => deadlines.is_empty(),
        };
        if unchanged {
            return false;
        }
        let before = self.next();
        if let Some(old) = self.armed.remove(&owner) {
            for (deadline, seq) in old {
                self.by_time.remove(&(deadline.at, seq));
            }
        }
        if deadlines.is_empty() {
            return false;
        }
        let is_run = matches!(owner, Owner::Run(_));
        let mut armed = Vec::with_capacity(deadlines.len());
        for deadline in deadlines {
            self.seq += 1;
            let timer = is_run.then(|| deadline.timer.clone());
            self.by_time
                .insert((deadline.at, self.seq), (owner.clone(), timer));
            armed.push((deadline, self.seq));
        }
        self.armed.insert(owner, armed);
        self.next() < before || before.is_none()
    }

    /// The earliest armed deadline.
    pub(crate) fn next(&self) -> Option<SystemTime> {
        self.by_time.keys().next().map(|(at, _)| *at)
    }

    /// Takes the earliest deadline if it is due at `now`, disarming it.
    pub(crate) fn pop_due(&mut self, now: SystemTime) -> Option<(SystemTime, Fired)> {
        let entry = self.by_time.first_entry()?;
        let (at, seq) = *entry.key();
        if at > now {
            return None;
        }
        let (owner, timer) = entry.remove();
        if let Some(armed) = self.armed.get_mut(&owner) {
            armed.retain(|(_, s)| *s != seq);
            if armed.is_empty() {
                self.armed.remove(&owner);
            }
        }
        let fired = match (owner, timer) {
            (Owner::Run(run_id), Some(timer)) => Fired::Run { run_id, timer },
            (Owner::Schedule(namespace, schedule_id), _) => Fired::Schedule {
                namespace,
                schedule_id,
            },
            (Owner::Run(_), None) => unreachable!("a run's deadline always has its timer"),
        };
        Some((at, fired))
    }

    /// The deadlines armed for run `run_id`, in time order.
    #[cfg(test)]
    pub(crate) fn of_run(&self, run_id: &str) -> Vec<Deadline> {
        self.armed
            .get(&Owner::Run(run_id.to_owned()))
            .map(|armed| armed.iter().map(|(d, _)| d.clone()).collect())
            .unwrap_or_default()
    }

    /// The time armed for schedule `(namespace, id)`.
    #[cfg(test)]
    pub(crate) fn of_schedule(&self, namespace: &str, id: &str) -> Option<SystemTime> {
        self.armed
            .get(&Owner::Schedule(namespace.to_owned(), id.to_owned()))
            .and_then(|armed| armed.first())
            .map(|(d, _)| d.at)
    }

    /// How many deadlines are armed.
    #[cfg(any(test, feature = "simulation"))]
    pub(crate) fn len(&self) -> usize {
        self.by_time.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn user(id: &str, secs: u64) -> Deadline {
        Deadline {
            at: at(secs),
            timer: RunTimer::UserTimer {
                timer_id: id.to_owned(),
                started_event_id: 5,
            },
        }
    }

    #[test]
    fn setting_a_runs_deadlines_replaces_what_it_had() {
        let mut wheel = TimerWheel::default();
        assert!(wheel.set_run("r", vec![user("b", 20), user("a", 10)]));
        assert_eq!(wheel.of_run("r"), [user("a", 10), user("b", 20)]);
        assert!(
            !wheel.set_run("r", vec![user("a", 10), user("b", 20)]),
            "unchanged"
        );
        assert!(
            !wheel.set_run("r", vec![user("b", 20)]),
            "only later deadlines left"
        );
        assert_eq!(wheel.len(), 1);
        assert!(
            wheel.set_run("other", vec![user("c", 5)]),
            "an earlier deadline"
        );
        assert!(!wheel.set_run("r", Vec::new()));
        assert_eq!(wheel.of_run("r"), []);
        assert_eq!(wheel.len(), 1);
    }

    #[test]
    fn due_deadlines_pop_in_time_order_and_leave_the_owners_list() {
        let mut wheel = TimerWheel::default();
        wheel.set_run("r", vec![user("a", 10), user("b", 20)]);
        wheel.set_schedule("ns", "s", Some(at(15)));
        assert_eq!(wheel.of_schedule("ns", "s"), Some(at(15)));
        assert_eq!(wheel.pop_due(at(9)), None);
        let (first, fired) = wheel.pop_due(at(30)).unwrap();
        assert_eq!(first, at(10));
        assert!(matches!(fired, Fired::Run { ref run_id, .. } if run_id == "r"));
        assert_eq!(wheel.of_run("r"), [user("b", 20)]);
        assert_eq!(
            wheel.pop_due(at(30)),
            Some((
                at(15),
                Fired::Schedule {
                    namespace: "ns".into(),
                    schedule_id: "s".into()
                }
            ))
        );
        assert_eq!(wheel.of_schedule("ns", "s"), None);
        assert!(wheel.pop_due(at(30)).is_some());
        assert_eq!(wheel.next(), None);
    }
}
