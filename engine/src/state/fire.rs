//! Firing due deadlines, in deadline order, and the virtual clock's skips to the next
//! one when nothing else can make progress.

use std::time::SystemTime;

use super::State;
use crate::{
    run::Run,
    timers::{Fired, RunTimer},
};

impl State {
    /// Fires every deadline due at the transaction's instant; with a virtual clock, then
    /// skips to the next deadline and fires it, for as long as the engine is idle.
    pub(crate) fn fire_due(&mut self) {
        self.fire_due_now();
        while self.clock.is_virtual() && self.is_idle() {
            // What just fired may have closed runs whose other deadlines must not move
            // the clock.
            self.sync_deadlines();
            let Some(next) = self.wheel.next() else {
                break;
            };
            self.clock.skip_to(next);
            self.read_clock();
            self.fire_due_now();
        }
    }

    fn fire_due_now(&mut self) {
        while self.fire_next_due() {}
    }

    /// Fires the earliest deadline if it is due; whether there was one.
    pub(crate) fn fire_next_due(&mut self) -> bool {
        let Some((at, fired)) = self.wheel.pop_due(self.now) else {
            return false;
        };
        self.fire(at, fired);
        true
    }

    /// The earliest due deadline cannot be fired (firing it failed, `why`): it is
    /// disarmed, and its run terminated (or its schedule paused) saying why, so that the
    /// engine goes on. Answers what was set aside, if anything was due.
    pub(crate) fn set_aside_next_due(&mut self, why: &str, terminate: bool) -> Option<String> {
        let (at, fired) = self.wheel.pop_due(self.now)?;
        match fired {
            Fired::Run { run_id, timer } => {
                let reason =
                    format!("the engine could not fire the run's {timer:?} deadline: {why}");
                if terminate {
                    self.terminate(&run_id, &reason, "capstan-engine");
                }
                Some(format!("run `{run_id}`'s {timer:?} deadline at {at:?}"))
            }
            Fired::Schedule {
                namespace,
                schedule_id,
            } => {
                let key = (namespace, schedule_id);
                if terminate {
                    if let Some(schedule) = self.schedules.get_mut(&key) {
                        schedule.pause(format!(
                            "paused: the engine could not take its action: {why}"
                        ));
                    }
                }
                Some(format!("schedule `{}`'s action at {at:?}", key.1))
            }
        }
    }

    /// Nothing but timers can make progress: no workflow or activity task is queued or held
    /// by a worker, and no query or update waits for one.
    fn is_idle(&self) -> bool {
        self.queries.is_empty() && self.runs.values().all(Run::waits_only_on_timers)
    }

    fn fire(&mut self, at: SystemTime, fired: Fired) {
        let (run_id, timer) = match fired {
            Fired::Schedule {
                namespace,
                schedule_id,
            } => {
                let key = (namespace, schedule_id);
                self.fire_schedule(&key, at);
                self.fired_schedules.push(key);
                return;
            }
            Fired::Run { run_id, timer } => (run_id, timer),
        };
        self.fired_runs.push(run_id.clone());
        if !self.runs.get(&run_id).is_some_and(Run::is_open) {
            return;
        }
        #[cfg(test)]
        if self.fail_firing.as_ref() == Some(&run_id) {
            // Half-way through, as a bug would.
            self.with_run(&run_id, |run, ctx| run.signal(ctx, "", Default::default()));
            panic!("injected fault firing {timer:?}");
        }
        match timer {
            RunTimer::RunTimeout => self.time_out_run(&run_id),
            RunTimer::FirstWorkflowTask => {
                self.with_run(&run_id, |run, ctx| run.end_backoff(ctx));
            }
            RunTimer::WorkflowTaskTimeout { scheduled_event_id } => {
                self.with_run(&run_id, |run, ctx| {
                    run.time_out_workflow_task(ctx, scheduled_event_id)
                });
            }
            RunTimer::StickyScheduleToStart { scheduled_event_id } => {
                self.with_run(&run_id, |run, ctx| {
                    run.unstick_workflow_task(ctx, scheduled_event_id)
                });
            }
            RunTimer::UserTimer {
                timer_id,
                started_event_id,
            } => {
                self.with_run(&run_id, |run, ctx| {
                    run.fire_timer(ctx, &timer_id, started_event_id)
                });
            }
            RunTimer::ActivityTimeout {
                scheduled_event_id,
                attempt,
                timeout,
            } => {
                self.with_run(&run_id, |run, ctx| {
                    run.time_out_activity(ctx, scheduled_event_id, attempt, timeout)
                });
            }
            RunTimer::ActivityRetry {
                scheduled_event_id,
                attempt,
            } => {
                self.with_run(&run_id, |run, ctx| {
                    run.retry_activity(ctx, scheduled_event_id, attempt)
                });
            }
        }
    }
}
