//! What an operator does to a run's pending activities, as Temporal's `PauseActivity`,
//! `UnpauseActivity`, `ResetActivity` and `UpdateActivityOptions` do. None of it is an
//! event: it changes the activity's state, and so what is queued and when.
//!
//! - Paused, an activity queues no attempt: one waiting to be polled, or in backoff, waits
//!   until it is unpaused; a running one goes on, its heartbeats answer
//!   `activity_paused`, and if it fails the next attempt waits (not a timeout of its own).
//! - Unpaused, a waiting attempt is queued at once (or within the jitter asked for).
//! - Reset, the activity is at attempt 1 again: a waiting attempt is queued at once; a
//!   running one goes on, its heartbeats answer `activity_reset`, and if it fails the
//!   activity starts again at attempt 1 with no backoff.
//! - New options (timeouts, retry policy, task queue, priority) apply from the next
//!   attempt; `restore_original` brings back those of the scheduled event.

use std::{
    hash::{Hash as _, Hasher as _},
    time::{Duration, SystemTime},
};

use tonic::Status;

use super::{
    activities::{ActivityState, Pause},
    retry, Ctx, Effect, Run,
};
use crate::{
    clock::after,
    errors,
    matching::ActivityTaskRef,
    proto::{
        self, activity::ActivityOptions, history::history_event::Attributes, taskqueue::TaskQueue,
    },
    validate,
};

/// Which pending activities a request names.
#[derive(Debug, Clone)]
pub(crate) enum Targets {
    Id(String),
    Type(String),
    All,
}

/// How to unpause or reset.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Restart {
    /// Back to attempt 1.
    pub(crate) reset_attempts: bool,
    /// Forget the heartbeat details the next attempt would get.
    pub(crate) reset_heartbeat: bool,
    /// Queue the waiting attempt at a random instant within this span, not at once.
    pub(crate) jitter: Option<Duration>,
}

impl Run {
    /// The scheduled event ids of the pending activities `targets` names; `NOT_FOUND` (in
    /// Temporal's words) when it names none.
    fn targeted(&self, targets: &Targets) -> Result<Vec<i64>, Status> {
        let ids: Vec<i64> = self
            .activities
            .iter()
            .filter(|(_, a)| match targets {
                Targets::Id(id) => a.attrs.activity_id == *id,
                Targets::Type(name) => a
                    .attrs
                    .activity_type
                    .as_ref()
                    .is_some_and(|t| t.name == *name),
                Targets::All => true,
            })
            .map(|(scheduled, _)| *scheduled)
            .collect();
        if ids.is_empty() {
            // Temporal's words for an id; the same shape for a type, and for all.
            return Err(errors::not_found(match targets {
                Targets::Id(_) => "Can't find pending activity with such ID. Invalid activityID \
                                   or activity already completed"
                    .to_owned(),
                Targets::Type(name) => format!(
                    "Can't find pending activity of type {name}. Invalid activity type or \
                     activity already completed"
                ),
                Targets::All => "The workflow has no pending activity.".to_owned(),
            }));
        }
        Ok(ids)
    }

    /// Pauses the activities `targets` names (one already paused stays as it was).
    pub(crate) fn pause_activities(
        &mut self,
        ctx: &mut Ctx<'_>,
        targets: &Targets,
        identity: &str,
        reason: &str,
    ) -> Result<(), Status> {
        for scheduled in self.targeted(targets)? {
            let activity = self.activities.get_mut(&scheduled).expect("targeted");
            activity.paused.get_or_insert_with(|| Pause {
                time: ctx.now,
                identity: identity.to_owned(),
                reason: reason.to_owned(),
            });
        }
        Ok(())
    }

    /// Unpauses the activities `targets` names: a waiting attempt is queued.
    pub(crate) fn unpause_activities(
        &mut self,
        ctx: &mut Ctx<'_>,
        targets: &Targets,
        restart: Restart,
    ) -> Result<(), Status> {
        for scheduled in self.targeted(targets)? {
            let activity = self.activities.get_mut(&scheduled).expect("targeted");
            if activity.paused.take().is_none() {
                continue;
            }
            if restart.reset_attempts {
                activity.attempt = 1;
                activity.last_failure = None;
            }
            if restart.reset_heartbeat {
                activity.heartbeat_details = None;
            }
            self.queue_waiting_attempt(ctx, scheduled, restart.jitter);
        }
        Ok(())
    }

    /// Resets the activities `targets` names to attempt 1; a waiting one is queued at
    /// once, unless it is paused and `keep_paused`.
    pub(crate) fn reset_activities(
        &mut self,
        ctx: &mut Ctx<'_>,
        targets: &Targets,
        restart: Restart,
        keep_paused: bool,
        restore_original: bool,
    ) -> Result<(), Status> {
        for scheduled in self.targeted(targets)? {
            if restore_original {
                self.restore_original_options(scheduled);
            }
            let activity = self.activities.get_mut(&scheduled).expect("targeted");
            if restart.reset_heartbeat {
                activity.heartbeat_details = None;
            }
            if !keep_paused {
                activity.paused = None;
            }
            if activity.is_started() {
                activity.reset_requested = true;
                continue;
            }
            activity.attempt = 1;
            if activity.paused.is_none() {
                self.queue_waiting_attempt(ctx, scheduled, restart.jitter);
            }
        }
        Ok(())
    }

    /// Changes the options of the activities `targets` names: the fields `mask` names
    /// take their values from `options` (or, with `restore_original`, every option
    /// returns to the scheduled event's). Answers the first activity's options now.
    pub(crate) fn update_activity_options(
        &mut self,
        targets: &Targets,
        options: &ActivityOptions,
        mask: &[String],
        restore_original: bool,
    ) -> Result<ActivityOptions, Status> {
        let targeted = self.targeted(targets)?;
        if restore_original {
            for scheduled in &targeted {
                self.restore_original_options(*scheduled);
            }
            return Ok(self.activity_options(targeted[0]));
        }
        // Every activity's new options first: a refused path changes none.
        let mut changed = Vec::with_capacity(targeted.len());
        for scheduled in &targeted {
            let mut attrs = self.activities[scheduled].attrs.clone();
            for path in mask {
                apply_option(&mut attrs, options, path)?;
            }
            attrs.retry_policy = Some(retry::with_defaults(attrs.retry_policy.take()));
            changed.push((*scheduled, attrs));
        }
        for (scheduled, attrs) in changed {
            if let Some(activity) = self.activities.get_mut(&scheduled) {
                activity.attrs = attrs;
            }
        }
        Ok(self.activity_options(targeted[0]))
    }

    /// The options of the pending activity scheduled at `scheduled` (as Temporal
    /// describes them).
    pub(crate) fn activity_options(&self, scheduled: i64) -> ActivityOptions {
        let Some(a) = self.activities.get(&scheduled) else {
            return ActivityOptions::default();
        };
        let attrs = &a.attrs;
        ActivityOptions {
            task_queue: attrs.task_queue.clone(),
            schedule_to_close_timeout: attrs.schedule_to_close_timeout,
            schedule_to_start_timeout: attrs.schedule_to_start_timeout,
            start_to_close_timeout: attrs.start_to_close_timeout,
            heartbeat_timeout: attrs.heartbeat_timeout,
            retry_policy: attrs.retry_policy.clone(),
            priority: attrs.priority.clone(),
            ..Default::default()
        }
    }

    /// The options of the activity's scheduled event come back.
    fn restore_original_options(&mut self, scheduled: i64) {
        let original = self
            .events
            .get(scheduled as usize - 1)
            .and_then(|e| match e.attributes {
                Some(Attributes::ActivityTaskScheduledEventAttributes(a)) => Some(a),
                _ => None,
            });
        if let (Some(original), Some(activity)) = (original, self.activities.get_mut(&scheduled)) {
            activity.attrs = original;
        }
    }

    /// Queues the attempt of an activity that waits (to be polled, or in backoff), now or
    /// within `jitter`; a running attempt is left alone.
    fn queue_waiting_attempt(
        &mut self,
        ctx: &mut Ctx<'_>,
        scheduled: i64,
        jitter: Option<Duration>,
    ) {
        let run_id = self.run_id.clone();
        let Some(activity) = self.activities.get_mut(&scheduled) else {
            return;
        };
        if activity.is_started() {
            return;
        }
        let delay = jitter.map_or(Duration::ZERO, |span| {
            span.mul_f64(unit_fraction(&run_id, scheduled, ctx.now))
        });
        activity.attempt_scheduled_time = after(ctx.now, delay);
        if delay.is_zero() {
            activity.state = ActivityState::Scheduled;
            ctx.effects.push(Effect::ActivityTask {
                queue: activity
                    .attrs
                    .task_queue
                    .as_ref()
                    .map(|q| q.name.clone())
                    .unwrap_or_default(),
                task: ActivityTaskRef {
                    run_id,
                    scheduled_event_id: scheduled,
                    attempt: activity.attempt,
                },
                eager: false,
            });
        } else {
            // The retry deadline queues it.
            activity.state = ActivityState::Backoff;
        }
    }
}

/// A number in [0, 1) drawn from the activity and the instant: the same on a replay of
/// the same transaction, as the engine's other choices are.
fn unit_fraction(run_id: &str, scheduled: i64, now: SystemTime) -> f64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (run_id, scheduled, now).hash(&mut hasher);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Sets the option `path` names (`start_to_close_timeout`, `retry_policy.maximum_attempts`,
/// `task_queue.name`, …; camelCase too) from `options`.
fn apply_option(
    attrs: &mut proto::history::ActivityTaskScheduledEventAttributes,
    options: &ActivityOptions,
    path: &str,
) -> Result<(), Status> {
    let key: String = path
        .chars()
        .filter(|c| *c != '_')
        .collect::<String>()
        .to_ascii_lowercase();
    let duration = |field: &str, d: Option<prost_wkt_types::Duration>| {
        validate::duration(field, d.as_ref())
            .map(|_| d)
            .map_err(Status::invalid_argument)
    };
    let policy = || options.retry_policy.clone().unwrap_or_default();
    let current = |attrs: &mut proto::history::ActivityTaskScheduledEventAttributes| {
        attrs
            .retry_policy
            .get_or_insert_with(Default::default)
            .clone()
    };
    match key.as_str() {
        "taskqueue" | "taskqueue.name" => {
            let name = options.task_queue.as_ref().map_or("", |q| q.name.as_str());
            if name.is_empty() {
                return Err(Status::invalid_argument(
                    "activity_options.task_queue.name is not set",
                ));
            }
            attrs.task_queue = Some(TaskQueue {
                name: name.to_owned(),
                kind: proto::enums::TaskQueueKind::Normal as i32,
                ..Default::default()
            });
        }
        "scheduletoclosetimeout" => {
            attrs.schedule_to_close_timeout = duration(
                "schedule_to_close_timeout",
                options.schedule_to_close_timeout,
            )?
        }
        "scheduletostarttimeout" => {
            attrs.schedule_to_start_timeout = duration(
                "schedule_to_start_timeout",
                options.schedule_to_start_timeout,
            )?
        }
        "starttoclosetimeout" => {
            attrs.start_to_close_timeout =
                duration("start_to_close_timeout", options.start_to_close_timeout)?
        }
        "heartbeattimeout" => {
            attrs.heartbeat_timeout = duration("heartbeat_timeout", options.heartbeat_timeout)?
        }
        "retrypolicy" => attrs.retry_policy = Some(policy()),
        "retrypolicy.initialinterval" => {
            let mut p = current(attrs);
            p.initial_interval =
                duration("retry_policy.initial_interval", policy().initial_interval)?;
            attrs.retry_policy = Some(p);
        }
        "retrypolicy.maximuminterval" => {
            let mut p = current(attrs);
            p.maximum_interval =
                duration("retry_policy.maximum_interval", policy().maximum_interval)?;
            attrs.retry_policy = Some(p);
        }
        "retrypolicy.backoffcoefficient" => {
            let mut p = current(attrs);
            p.backoff_coefficient = policy().backoff_coefficient;
            attrs.retry_policy = Some(p);
        }
        "retrypolicy.maximumattempts" => {
            let mut p = current(attrs);
            p.maximum_attempts = policy().maximum_attempts;
            attrs.retry_policy = Some(p);
        }
        "priority" => attrs.priority = options.priority.clone(),
        _ => {
            return Err(Status::invalid_argument(format!(
                "update_mask names `{path}`, which is not an activity option: use task_queue.name, \
                 schedule_to_close_timeout, schedule_to_start_timeout, start_to_close_timeout, \
                 heartbeat_timeout, retry_policy (or one of its fields) or priority"
            )))
        }
    }
    if key.starts_with("retrypolicy") {
        validate::retry_policy("activity_options.retry_policy", attrs.retry_policy.as_ref())
            .map_err(Status::invalid_argument)?;
    }
    Ok(())
}
