//! The timer service: one task sleeping until the earliest deadline, woken when an
//! earlier one is added. Timers are never removed when what they guard changes; a fired
//! timer checks that its subject is still in the state it was armed for.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

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
}

/// Runs until the engine closes.
pub(crate) async fn service(store: Arc<Store>) {
    loop {
        let next = store.transaction(|state| {
            if state.sched.closing {
                return Err(());
            }
            let now = SystemTime::now();
            while let Some(entry) = state.sched.timers.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                let kind = entry.remove();
                fire(state, kind, now);
            }
            Ok(state.sched.timers.keys().next().map(|(at, _)| *at))
        });
        let Ok(next) = next else { return };
        let wait = next
            .map(|at| at.duration_since(SystemTime::now()).unwrap_or_default())
            .unwrap_or(Duration::from_secs(3600));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = store.timer_wake().notified() => {}
        }
    }
}

fn fire(state: &mut State, kind: TimerKind, now: SystemTime) {
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
            now,
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
            now,
        ),
        TimerKind::ActivityScheduleToClose {
            run_id,
            scheduled_event_id,
        } => state.time_out_activity(
            &run_id,
            scheduled_event_id,
            None,
            crate::proto::enums::TimeoutType::ScheduleToClose,
            now,
        ),
        TimerKind::RunTimeout { run_id } => state.time_out_run(&run_id),
    }
}
