//! Hooks for Capstan's simulator (`sim/`, feature `simulation`): an engine on a manual
//! clock that moves only when told and fires each deadline at its exact instant, database
//! writes that fail on demand, a crash at a transaction boundary, and a census of what
//! the engine holds in memory. Not for production use.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use crate::{clock::Clock, Engine, EngineError, EngineOptions};

/// What an engine holds in memory besides its runs' histories: what must return to its
/// baseline once every workflow closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Census {
    /// Runs still open.
    pub open_runs: usize,
    /// Deadlines armed (timers, timeouts, retries, schedules).
    pub deadlines: usize,
    /// Workflow tasks and queries queued, stale entries included.
    pub queued_workflow_tasks: usize,
    /// Activity tasks queued, stale entries included.
    pub queued_activity_tasks: usize,
    /// Task queues holding anything.
    pub task_queues: usize,
    /// Queries in flight.
    pub queries: usize,
    /// Sticky queues remembered.
    pub sticky_queues: usize,
    /// Topics long polls wait on.
    pub waited_topics: usize,
    /// Whether database writes fail now.
    pub write_failing: bool,
}

impl Engine {
    /// Starts an engine whose clock reads `now` and moves only on [`Engine::advance`].
    pub async fn start_simulated(
        options: EngineOptions,
        now: SystemTime,
    ) -> Result<Engine, EngineError> {
        Self::start_on(options, Clock::Manual(now)).await
    }

    /// Moves the manual clock `by` forward, firing each deadline on the way at its own
    /// instant, in a transaction of its own, as a real clock would. Does not wait for the
    /// disk (a failing write must not hold the simulator). Answers the instants fired at,
    /// or the message of a firing that panicked (a bug; its transaction was undone).
    pub fn advance(&self, by: Duration) -> Result<Vec<SystemTime>, String> {
        let target = crate::clock::after(self.now(), by);
        let mut fired = Vec::new();
        loop {
            let step = self.store.try_apply(|state| {
                let next = state.wheel.next().filter(|at| *at <= target);
                state.clock.skip_to(next.unwrap_or(target));
                state.read_clock();
                state.fire_due();
                next
            });
            match step {
                Ok((Some(at), _)) => fired.push(at),
                Ok((None, _)) => return Ok(fired),
                Err(failed) => return Err(failed.message),
            }
        }
    }

    /// Sets the manual clock `by` back, as a wall clock stepped back (by NTP, or a
    /// machine restored from a snapshot) would be. The engine holds its time still until
    /// the clock catches up; the next [`Engine::advance`] moves the clock on from the
    /// engine's time, not from the earlier reading.
    pub fn step_clock_back(&self, by: Duration) {
        self.store.apply(|state| {
            let back = state
                .clock
                .now()
                .checked_sub(by)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            state.clock = Clock::Manual(back);
        });
    }

    /// The earliest armed deadline, if any.
    pub fn next_deadline(&self) -> Option<SystemTime> {
        self.store.apply(|state| state.wheel.next()).0
    }

    /// Makes every database write fail with `cause` (as a failing fsync would) until
    /// called with `None`.
    pub fn fail_writes(&self, cause: Option<&str>) {
        self.store.fail_writes(cause.map(str::to_owned));
    }

    /// Dies as a killed process would, at the boundary of the last transaction the
    /// writer took: what was not on disk is lost (none of it was acknowledged), held polls
    /// are cut off and the file is let go, so that an engine can open it at once.
    pub async fn crash(mut self) {
        self.store.crash();
        self.signal_stop();
        self.stop_server().await;
        if let Some(timers) = self.timers.take() {
            timers.abort();
            let _ = timers.await;
        }
    }

    /// What the engine holds in memory now.
    pub fn census(&self) -> Census {
        let store: &Arc<crate::store::Store> = &self.store;
        let (open_runs, deadlines, (workflow, activity), task_queues, queries, sticky) = store
            .apply(|state| {
                (
                    state.runs.values().filter(|r| r.is_open()).count(),
                    state.wheel.len(),
                    state.queues.tasks(),
                    state.queues.len(),
                    state.queries.len(),
                    state.sticky.len(),
                )
            })
            .0;
        Census {
            open_runs,
            deadlines,
            queued_workflow_tasks: workflow,
            queued_activity_tasks: activity,
            task_queues,
            queries,
            sticky_queues: sticky,
            waited_topics: store.waited_topics(),
            write_failing: store.write_failure().is_some(),
        }
    }
}
