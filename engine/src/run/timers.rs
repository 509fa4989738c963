//! User timers: started and cancelled by commands, fired at their deadline.

use crate::proto::sdk::UserMetadata;
use std::time::SystemTime;

use serde::{Deserialize, Deserializer, Serialize};

use super::{Ctx, Run};
use crate::proto::{
    self,
    command::{CancelTimerCommandAttributes, StartTimerCommandAttributes},
    history::{
        history_event::Attributes, HistoryEvent, TimerCanceledEventAttributes,
        TimerFiredEventAttributes, TimerStartedEventAttributes,
    },
};

/// A started timer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct UserTimer {
    pub(crate) started_event_id: i64,
    pub(crate) fire_at: SystemTime,
}

impl<'de> Deserialize<'de> for UserTimer {
    /// Also reads a file written before timers kept their deadline (just the started event
    /// id); [`Run::restore_timer_deadlines`] then reads it from the started event.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Timer {
                started_event_id: i64,
                fire_at: SystemTime,
            },
            StartedEventId(i64),
        }
        Ok(match Stored::deserialize(d)? {
            Stored::Timer {
                started_event_id,
                fire_at,
            } => Self {
                started_event_id,
                fire_at,
            },
            Stored::StartedEventId(started_event_id) => Self {
                started_event_id,
                fire_at: SystemTime::UNIX_EPOCH,
            },
        })
    }
}

impl Run {
    /// `StartTimer`: the started event; the timer fires after its duration.
    pub(super) fn start_timer(
        &mut self,
        ctx: &mut Ctx<'_>,
        completed_id: i64,
        a: StartTimerCommandAttributes,
        user_metadata: Option<UserMetadata>,
    ) {
        let fire_in = proto::duration(a.start_to_fire_timeout.as_ref()).unwrap_or_default();
        let started_event_id = self.append_described(
            ctx,
            Attributes::TimerStartedEventAttributes(TimerStartedEventAttributes {
                timer_id: a.timer_id.clone(),
                start_to_fire_timeout: a.start_to_fire_timeout,
                workflow_task_completed_event_id: completed_id,
            }),
            user_metadata,
        );
        self.timers.insert(
            a.timer_id,
            UserTimer {
                started_event_id,
                fire_at: crate::clock::after(ctx.now, fire_in),
            },
        );
    }

    /// The ids of timers whose fired event waits in the buffer (they fired while a task
    /// ran).
    pub(super) fn buffered_fired_timers(&self) -> impl Iterator<Item = &str> {
        self.buffered.iter().filter_map(|a| match a {
            Attributes::TimerFiredEventAttributes(fired) => Some(fired.timer_id.as_str()),
            _ => None,
        })
    }

    /// `CancelTimer`: the canceled event, for a timer still pending, or one that fired
    /// while the task ran (its fired event, still buffered, is dropped, as on Temporal).
    pub(super) fn cancel_timer(
        &mut self,
        ctx: &mut Ctx<'_>,
        completed_id: i64,
        a: CancelTimerCommandAttributes,
    ) {
        let started_event_id = match self.timers.remove(&a.timer_id) {
            Some(timer) => timer.started_event_id,
            None => {
                let fired = self.buffered.iter().position(|e| {
                    matches!(e, Attributes::TimerFiredEventAttributes(f) if f.timer_id == a.timer_id)
                });
                let Some(at) = fired else { return };
                match self.buffered.remove(at) {
                    Attributes::TimerFiredEventAttributes(f) => f.started_event_id,
                    _ => return,
                }
            }
        };
        self.append(
            ctx,
            Attributes::TimerCanceledEventAttributes(TimerCanceledEventAttributes {
                timer_id: a.timer_id,
                started_event_id,
                workflow_task_completed_event_id: completed_id,
                identity: String::new(),
            }),
        );
    }

    /// Timer `timer_id` started at event `started` fires (if it is still that timer).
    pub(crate) fn fire_timer(&mut self, ctx: &mut Ctx<'_>, timer_id: &str, started: i64) {
        if self.timers.get(timer_id).map(|t| t.started_event_id) != Some(started) {
            return;
        }
        self.timers.remove(timer_id);
        self.add_new_event(
            ctx,
            Attributes::TimerFiredEventAttributes(TimerFiredEventAttributes {
                timer_id: timer_id.to_owned(),
                started_event_id: started,
            }),
        );
    }

    /// Timers read from a file that kept only their started event ids get their deadline
    /// from that event (its time plus the timer's duration).
    pub(crate) fn restore_timer_deadlines(&mut self) {
        for timer in self.timers.values_mut() {
            if timer.fire_at != SystemTime::UNIX_EPOCH {
                continue;
            }
            let started = usize::try_from(timer.started_event_id - 1)
                .ok()
                .and_then(|i| self.events.get(i));
            if let Some((_, started)) = started.and_then(|e| UserTimer::started_by(&e)) {
                timer.fire_at = started.fire_at;
            }
        }
    }
}

impl UserTimer {
    /// The timer a `TimerStarted` event started, and its id: it fires its duration after
    /// the event's time.
    pub(super) fn started_by(event: &HistoryEvent) -> Option<(String, Self)> {
        let Some(Attributes::TimerStartedEventAttributes(a)) = &event.attributes else {
            return None;
        };
        let at = proto::system_time(event.event_time.as_ref())?;
        let fire_in = proto::duration(a.start_to_fire_timeout.as_ref()).unwrap_or_default();
        let timer = Self {
            started_event_id: event.event_id,
            fire_at: crate::clock::after(at, fire_in),
        };
        Some((a.timer_id.clone(), timer))
    }
}
