//! The timer service: one task sleeping until the earliest deadline, woken when an
//! earlier one is added. Timers are never removed when what they guard changes; a fired
//! timer checks that its subject is still in the state it was armed for.

use std::{sync::Arc, time::Duration};

use crate::store::{State, Store};

/// What a timer does when it fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TimerKind {
    /// A workflow's `StartTimer`.
    UserTimer {
        run_id: String,
        timer_id: String,
        started_event_id: i64,
    },
    /// A started workflow task ran past its start-to-close timeout.
    WorkflowTaskTimeout {
        run_id: String,
        scheduled_event_id: i64,
    },
    /// A run's start delay, retry backoff or cron wait is over.
    FirstWorkflowTask { run_id: String },
    /// A workflow task waited on a sticky queue past its schedule-to-start timeout.
    StickyScheduleToStart {
        run_id: String,
        scheduled_event_id: i64,
    },
    /// An activity's retry backoff is over: dispatch the next attempt.
    ActivityRetry {
        run_id: String,
        scheduled_event_id: i64,
        attempt: i32,
    },
    /// An activity attempt's start-to-close timeout.
    ActivityStartToClose {
        run_id: String,
        scheduled_event_id: i64,
        attempt: i32,
    },
    /// An activity attempt's heartbeat timeout (re-armed while heartbeats arrive).
    ActivityHeartbeat {
        run_id: String,
        scheduled_event_id: i64,
        attempt: i32,
    },
    /// The activity's schedule-to-close timeout, across attempts.
    ActivityScheduleToClose {
        run_id: String,
        scheduled_event_id: i64,
    },
    /// The run's run timeout.
    RunTimeout { run_id: String },
    /// A schedule's next action.
    Schedule {
        namespace: String,
        schedule_id: String,
    },
}

impl TimerKind {
    /// Whether firing the timer armed for `at` could still change anything: its run is
    /// open, or its schedule still waits for it.
    fn is_live(&self, state: &State, at: std::time::SystemTime) -> bool {
        let run_id = match self {
            Self::UserTimer { run_id, .. }
            | Self::WorkflowTaskTimeout { run_id, .. }
            | Self::StickyScheduleToStart { run_id, .. }
            | Self::FirstWorkflowTask { run_id }
            | Self::ActivityRetry { run_id, .. }
            | Self::ActivityStartToClose { run_id, .. }
            | Self::ActivityHeartbeat { run_id, .. }
            | Self::ActivityScheduleToClose { run_id, .. }
            | Self::RunTimeout { run_id } => run_id,
            Self::Schedule {
                namespace,
                schedule_id,
            } => {
                return state.schedule_timer_is_live(&(namespace.clone(), schedule_id.clone()), at)
            }
        };
        state.runs.get(run_id).is_some_and(|run| run.is_open())
    }
}

/// Runs until the engine closes.
///
/// With a virtual clock the service also wakes on every committed change, since any change
/// may leave the engine idle; when it is, the clock jumps to the earliest deadline.
pub(crate) async fn service(store: Arc<Store>) {
    let mut changes = store.subscribe();
    loop {
        let next = store
            .transaction(|state| {
                if state.sched.closing {
                    return Err(());
                }
                fire_due(state);
                while state.sched.clock.is_virtual() && is_idle(state) {
                    // Timers of closed runs would only move the clock for nothing.
                    let Some((&(at, seq), kind)) = state.sched.timers.first_key_value() else {
                        break;
                    };
                    if !kind.is_live(state, at) {
                        state.sched.timers.remove(&(at, seq));
                        continue;
                    }
                    state.sched.clock.skip_to(at);
                    state.sched.now = state.sched.clock.now();
                    fire_due(state);
                }
                let next = state.sched.timers.keys().next().map(|(at, _)| *at);
                Ok((
                    next.map(|at| state.sched.clock.real_wait(at)),
                    state.sched.clock.is_virtual(),
                ))
            })
            .await;
        let Ok((wait, is_virtual)) = next else { return };
        let wait = wait.unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = store.timer_wake().notified() => {}
            changed = changes.changed(), if is_virtual => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// Fires, in deadline order, every timer due at the transaction's instant.
fn fire_due(state: &mut State) {
    let now = state.sched.now();
    while let Some(entry) = state.sched.timers.first_entry() {
        if entry.key().0 > now {
            break;
        }
        let at = entry.key().0;
        let kind = entry.remove();
        fire(state, kind, at);
    }
}

/// Nothing but timers can make progress: no workflow or activity task is queued or held
/// by a worker, and no query or update waits for one.
fn is_idle(state: &State) -> bool {
    state.sched.queries.is_empty() && state.runs.values().all(|r| r.waits_only_on_timers())
}

fn fire(state: &mut State, kind: TimerKind, at: std::time::SystemTime) {
    match kind {
        TimerKind::UserTimer {
            run_id,
            timer_id,
            started_event_id,
        } => state.fire_user_timer(&run_id, &timer_id, started_event_id),
        TimerKind::WorkflowTaskTimeout {
            run_id,
            scheduled_event_id,
        } => state.time_out_workflow_task(&run_id, scheduled_event_id),
        TimerKind::FirstWorkflowTask { run_id } => state.first_workflow_task(&run_id),
        TimerKind::StickyScheduleToStart {
            run_id,
            scheduled_event_id,
        } => state.unstick_workflow_task(&run_id, scheduled_event_id),
        TimerKind::ActivityRetry {
            run_id,
            scheduled_event_id,
            attempt,
        } => state.retry_activity(&run_id, scheduled_event_id, attempt),
        TimerKind::ActivityStartToClose {
            run_id,
            scheduled_event_id,
            attempt,
        } => state.time_out_activity(
            &run_id,
            scheduled_event_id,
            Some(attempt),
            crate::proto::enums::TimeoutType::StartToClose,
        ),
        TimerKind::ActivityHeartbeat {
            run_id,
            scheduled_event_id,
            attempt,
        } => state.time_out_activity(
            &run_id,
            scheduled_event_id,
            Some(attempt),
            crate::proto::enums::TimeoutType::Heartbeat,
        ),
        TimerKind::ActivityScheduleToClose {
            run_id,
            scheduled_event_id,
        } => state.time_out_activity(
            &run_id,
            scheduled_event_id,
            None,
            crate::proto::enums::TimeoutType::ScheduleToClose,
        ),
        TimerKind::RunTimeout { run_id } => state.time_out_run(&run_id),
        TimerKind::Schedule {
            namespace,
            schedule_id,
        } => state.fire_schedule(&(namespace, schedule_id), at),
    }
}
