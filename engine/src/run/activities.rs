//! Activities: scheduled by a command, each attempt queued, started by a poller, ended by
//! the worker (completed, failed, cancelled) or by a timeout, retried per its policy.

use crate::proto::sdk::UserMetadata;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tonic::Status;

use super::{retry, task_queue, Ctx, Effect, Run, PREVIOUS_EVENT};
use crate::{
    clock::after,
    errors,
    matching::{ActivityTaskRef, Token},
    pb,
    proto::{
        self,
        command::{
            RequestCancelActivityTaskCommandAttributes, ScheduleActivityTaskCommandAttributes,
        },
        common::Payloads,
        enums::{RetryState, TimeoutType},
        failure::{failure::FailureInfo, Failure, TimeoutFailureInfo},
        history::{history_event::Attributes, *},
        service::PollActivityTaskQueueResponse,
    },
    timers::RunTimer,
};

/// Where an activity attempt is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum ActivityState {
    /// In the task queue.
    Scheduled,
    /// Polled by a worker.
    Started {
        identity: String,
        started_time: SystemTime,
        last_heartbeat: SystemTime,
    },
    /// Waiting for its retry backoff.
    Backoff,
}

/// An activity the run scheduled and that has not closed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Activity {
    #[serde(with = "pb::message")]
    pub(crate) attrs: ActivityTaskScheduledEventAttributes,
    pub(crate) scheduled_time: SystemTime,
    /// When the current attempt was (or, in backoff, will be) queued.
    pub(crate) attempt_scheduled_time: SystemTime,
    pub(crate) attempt: i32,
    pub(crate) state: ActivityState,
    #[serde(with = "pb::option")]
    pub(crate) heartbeat_details: Option<Payloads>,
    #[serde(with = "pb::option")]
    pub(crate) last_failure: Option<Failure>,
    pub(crate) cancel_requested_event_id: Option<i64>,
    /// Paused by an operator (`PauseActivity`): no attempt is queued until it is
    /// unpaused; a running attempt goes on, and its heartbeats tell it.
    #[serde(default)]
    pub(crate) paused: Option<Pause>,
    /// `ResetActivity` came while an attempt ran: its heartbeats tell it, and if it fails
    /// the activity starts again at attempt 1 at once.
    #[serde(default)]
    pub(crate) reset_requested: bool,
}

/// Who paused an activity, when and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Pause {
    pub(crate) time: SystemTime,
    pub(crate) identity: String,
    pub(crate) reason: String,
}

/// What a heartbeat's answer tells the worker.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct HeartbeatAnswer {
    pub(crate) cancel_requested: bool,
    pub(crate) paused: bool,
    pub(crate) reset: bool,
}

impl Activity {
    /// The activity's deadlines: its schedule-to-close timeout, and per its state the
    /// retry backoff or the running attempt's start-to-close and heartbeat timeouts.
    pub(super) fn deadlines(&self, scheduled_event_id: i64) -> Vec<(SystemTime, RunTimer)> {
        let attrs = &self.attrs;
        let attempt = self.attempt;
        let mut deadlines = Vec::new();
        if let Some(t) = proto::duration(attrs.schedule_to_close_timeout.as_ref()) {
            deadlines.push((
                after(self.scheduled_time, t),
                RunTimer::ActivityTimeout {
                    scheduled_event_id,
                    attempt: None,
                    timeout: TimeoutType::ScheduleToClose,
                },
            ));
        }
        match &self.state {
            // Paused: nothing is queued, and nothing waits to be.
            ActivityState::Scheduled | ActivityState::Backoff if self.paused.is_some() => {}
            ActivityState::Scheduled => {
                if let Some(t) = proto::duration(attrs.schedule_to_start_timeout.as_ref()) {
                    deadlines.push((
                        after(self.attempt_scheduled_time, t),
                        RunTimer::ActivityTimeout {
                            scheduled_event_id,
                            attempt: Some(attempt),
                            timeout: TimeoutType::ScheduleToStart,
                        },
                    ));
                }
            }
            ActivityState::Backoff => deadlines.push((
                self.attempt_scheduled_time,
                RunTimer::ActivityRetry {
                    scheduled_event_id,
                    attempt,
                },
            )),
            ActivityState::Started {
                started_time,
                last_heartbeat,
                ..
            } => {
                if let Some(t) = proto::duration(attrs.start_to_close_timeout.as_ref()) {
                    deadlines.push((
                        after(*started_time, t),
                        RunTimer::ActivityTimeout {
                            scheduled_event_id,
                            attempt: Some(attempt),
                            timeout: TimeoutType::StartToClose,
                        },
                    ));
                }
                if let Some(t) = proto::duration(attrs.heartbeat_timeout.as_ref()) {
                    deadlines.push((
                        after(*last_heartbeat, t),
                        RunTimer::ActivityTimeout {
                            scheduled_event_id,
                            attempt: Some(attempt),
                            timeout: TimeoutType::Heartbeat,
                        },
                    ));
                }
            }
        }
        deadlines
    }

    /// An activity with these attributes, its first attempt queued `now`.
    pub(super) fn new(attrs: ActivityTaskScheduledEventAttributes, now: SystemTime) -> Self {
        Self {
            attrs,
            scheduled_time: now,
            attempt_scheduled_time: now,
            attempt: 1,
            state: ActivityState::Scheduled,
            heartbeat_details: None,
            last_failure: None,
            cancel_requested_event_id: None,
            paused: None,
            reset_requested: false,
        }
    }

    /// The queue its attempts wait on.
    fn queue(&self) -> String {
        self.attrs
            .task_queue
            .as_ref()
            .map(|q| q.name.clone())
            .unwrap_or_default()
    }

    pub(crate) fn is_started(&self) -> bool {
        matches!(self.state, ActivityState::Started { .. })
    }
}

impl Run {
    /// `ScheduleActivityTask`: the scheduled event, and the first attempt queued (or kept
    /// for the completing worker, when it asks to run it eagerly).
    pub(super) fn schedule_activity_task(
        &mut self,
        ctx: &mut Ctx<'_>,
        completed_id: i64,
        a: ScheduleActivityTaskCommandAttributes,
        user_metadata: Option<UserMetadata>,
    ) {
        let schedule_to_close = proto::duration(a.schedule_to_close_timeout.as_ref());
        let start_to_close =
            proto::duration(a.start_to_close_timeout.as_ref()).or(schedule_to_close);
        let attrs = ActivityTaskScheduledEventAttributes {
            activity_id: a.activity_id,
            activity_type: a.activity_type,
            task_queue: a
                .task_queue
                .filter(|q| !q.name.is_empty())
                .or_else(|| task_queue(&self.task_queue)),
            header: a.header,
            input: a.input,
            schedule_to_close_timeout: a.schedule_to_close_timeout,
            schedule_to_start_timeout: a.schedule_to_start_timeout,
            start_to_close_timeout: start_to_close.map(proto::proto_duration),
            heartbeat_timeout: a.heartbeat_timeout,
            workflow_task_completed_event_id: completed_id,
            retry_policy: Some(retry::with_defaults(a.retry_policy)),
            priority: a.priority,
            ..Default::default()
        };
        let scheduled_event_id = self.append_described(
            ctx,
            Attributes::ActivityTaskScheduledEventAttributes(attrs.clone()),
            user_metadata,
        );
        let activity = Activity::new(attrs, ctx.now);
        // Temporal runs an activity eagerly only on the workflow's own task queue: the
        // completing worker polls that one.
        let eager = a.request_eager_execution && activity.queue() == self.task_queue;
        self.activities.insert(scheduled_event_id, activity);
        self.queue_first_attempt(ctx, scheduled_event_id, eager);
    }

    /// Queues the first attempt of the activity scheduled at `scheduled_event_id` (kept
    /// for the completing worker when `eager`).
    pub(super) fn queue_first_attempt(
        &self,
        ctx: &mut Ctx<'_>,
        scheduled_event_id: i64,
        eager: bool,
    ) {
        let Some(activity) = self.activities.get(&scheduled_event_id) else {
            return;
        };
        ctx.effects.push(Effect::ActivityTask {
            queue: activity.queue(),
            task: ActivityTaskRef {
                run_id: self.run_id.clone(),
                scheduled_event_id,
                attempt: 1,
            },
            eager,
        });
    }

    /// `RequestCancelActivityTask`: the cancel-requested event; an activity not running
    /// anywhere is cancelled at once, a running one learns of it from its heartbeats.
    pub(super) fn request_cancel_activity_task(
        &mut self,
        ctx: &mut Ctx<'_>,
        completed_id: i64,
        a: RequestCancelActivityTaskCommandAttributes,
    ) {
        let scheduled = a.scheduled_event_id;
        if !self.activities.contains_key(&scheduled) {
            return;
        }
        let requested = self.append(
            ctx,
            Attributes::ActivityTaskCancelRequestedEventAttributes(
                ActivityTaskCancelRequestedEventAttributes {
                    scheduled_event_id: scheduled,
                    workflow_task_completed_event_id: completed_id,
                },
            ),
        );
        let Some(activity) = self.activities.get_mut(&scheduled) else {
            return;
        };
        activity.cancel_requested_event_id = Some(requested);
        if !activity.is_started() {
            self.cancel_activity(ctx, scheduled, None, String::new());
        }
    }

    /// Whether the outcome of the activity scheduled at `scheduled` waits in the buffer
    /// (it closed while a task ran).
    pub(super) fn has_buffered_activity_outcome(&self, scheduled: i64) -> bool {
        self.buffered.iter().any(|a| match a {
            Attributes::ActivityTaskCompletedEventAttributes(e) => {
                e.scheduled_event_id == scheduled
            }
            Attributes::ActivityTaskFailedEventAttributes(e) => e.scheduled_event_id == scheduled,
            Attributes::ActivityTaskTimedOutEventAttributes(e) => e.scheduled_event_id == scheduled,
            Attributes::ActivityTaskCanceledEventAttributes(e) => e.scheduled_event_id == scheduled,
            _ => false,
        })
    }

    /// Whether the queued attempt `task` names is still there to start.
    pub(crate) fn has_activity_task(&self, task: &ActivityTaskRef) -> bool {
        self.is_open()
            && self
                .activities
                .get(&task.scheduled_event_id)
                .is_some_and(|a| {
                    a.attempt == task.attempt
                        && a.state == ActivityState::Scheduled
                        && a.paused.is_none()
                })
    }

    /// Hands an activity attempt to a poller; `None` if it is no longer queued.
    pub(crate) fn start_activity(
        &mut self,
        ctx: &mut Ctx<'_>,
        task: &ActivityTaskRef,
        identity: &str,
    ) -> Option<PollActivityTaskQueueResponse> {
        if !self.has_activity_task(task) {
            return None;
        }
        let execution = self.execution();
        let workflow_type = self.started.workflow_type.clone();
        let namespace = self.namespace.clone();
        let token = Token::Activity {
            ns: namespace.clone(),
            run: self.run_id.clone(),
            scheduled: task.scheduled_event_id,
            attempt: task.attempt,
        };
        let activity = self.activities.get_mut(&task.scheduled_event_id)?;
        let now = ctx.now;
        activity.state = ActivityState::Started {
            identity: identity.to_owned(),
            started_time: now,
            last_heartbeat: now,
        };
        let attrs = &activity.attrs;
        Some(PollActivityTaskQueueResponse {
            task_token: token.encode(),
            workflow_namespace: namespace,
            workflow_type,
            workflow_execution: Some(execution),
            activity_type: attrs.activity_type.clone(),
            activity_id: attrs.activity_id.clone(),
            header: attrs.header.clone(),
            input: attrs.input.clone(),
            heartbeat_details: activity.heartbeat_details.clone(),
            scheduled_time: Some(proto::timestamp(activity.scheduled_time)),
            current_attempt_scheduled_time: Some(proto::timestamp(activity.attempt_scheduled_time)),
            started_time: Some(proto::timestamp(now)),
            attempt: task.attempt,
            schedule_to_close_timeout: attrs.schedule_to_close_timeout,
            start_to_close_timeout: attrs.start_to_close_timeout,
            heartbeat_timeout: attrs.heartbeat_timeout,
            retry_policy: attrs.retry_policy.clone(),
            priority: attrs.priority.clone(),
            ..Default::default()
        })
    }

    /// Checks that attempt `attempt` of the activity scheduled at `scheduled` is running.
    pub(crate) fn check_started_activity(
        &self,
        scheduled: i64,
        attempt: i32,
    ) -> Result<(), Status> {
        match self.activities.get(&scheduled) {
            Some(a) if self.is_open() && a.attempt == attempt && a.is_started() => Ok(()),
            _ => Err(errors::activity_task_not_found(
                &self.workflow_id,
                scheduled,
                attempt,
            )),
        }
    }

    /// The pending activity with id `activity_id`: its scheduled event id and attempt.
    pub(crate) fn activity_by_id(&self, activity_id: &str) -> Result<(i64, i32), Status> {
        self.activities
            .iter()
            .find(|(_, a)| a.attrs.activity_id == activity_id)
            .map(|(scheduled, a)| (*scheduled, a.attempt))
            .ok_or_else(|| errors::activity_not_found(activity_id))
    }

    /// A heartbeat of the running activity (checked by the caller); answers whether it
    /// was asked to cancel, paused or reset.
    pub(crate) fn record_heartbeat(
        &mut self,
        ctx: &mut Ctx<'_>,
        scheduled: i64,
        details: Option<Payloads>,
    ) -> HeartbeatAnswer {
        let Some(activity) = self.activities.get_mut(&scheduled) else {
            return HeartbeatAnswer::default();
        };
        if let ActivityState::Started { last_heartbeat, .. } = &mut activity.state {
            *last_heartbeat = ctx.now;
        }
        if details.is_some() {
            activity.heartbeat_details = details;
        }
        HeartbeatAnswer {
            cancel_requested: activity.cancel_requested_event_id.is_some(),
            paused: activity.paused.is_some(),
            reset: activity.reset_requested,
        }
    }

    /// Writes an activity's started event and its outcome, and forgets the activity.
    fn close_activity(&mut self, ctx: &mut Ctx<'_>, scheduled: i64, outcome: Attributes) {
        let Some(activity) = self.activities.remove(&scheduled) else {
            return;
        };
        if let ActivityState::Started { identity, .. } = activity.state {
            let started = Attributes::ActivityTaskStartedEventAttributes(
                ActivityTaskStartedEventAttributes {
                    scheduled_event_id: scheduled,
                    identity,
                    request_id: uuid::Uuid::new_v4().to_string(),
                    attempt: activity.attempt,
                    last_failure: activity.last_failure,
                    ..Default::default()
                },
            );
            // Written together so that PREVIOUS_EVENT resolves to the started event.
            if self.task_started() {
                self.buffered.push(ctx.now, started);
                self.buffered.push(ctx.now, outcome);
                return;
            }
            self.append(ctx, started);
        }
        self.add_new_event(ctx, outcome);
    }

    /// The worker completed the running attempt.
    pub(crate) fn complete_activity(
        &mut self,
        ctx: &mut Ctx<'_>,
        scheduled: i64,
        result: Option<Payloads>,
        identity: String,
    ) {
        self.close_activity(
            ctx,
            scheduled,
            Attributes::ActivityTaskCompletedEventAttributes(
                ActivityTaskCompletedEventAttributes {
                    result,
                    scheduled_event_id: scheduled,
                    started_event_id: PREVIOUS_EVENT,
                    identity,
                    ..Default::default()
                },
            ),
        );
    }

    /// The activity is cancelled (by its worker, or at once when it was not running).
    pub(crate) fn cancel_activity(
        &mut self,
        ctx: &mut Ctx<'_>,
        scheduled: i64,
        details: Option<Payloads>,
        identity: String,
    ) {
        let Some(activity) = self.activities.get(&scheduled) else {
            return;
        };
        let started = activity.is_started();
        let latest = activity.cancel_requested_event_id.unwrap_or_default();
        self.close_activity(
            ctx,
            scheduled,
            Attributes::ActivityTaskCanceledEventAttributes(ActivityTaskCanceledEventAttributes {
                details,
                latest_cancel_requested_event_id: latest,
                scheduled_event_id: scheduled,
                started_event_id: if started { PREVIOUS_EVENT } else { 0 },
                identity,
                ..Default::default()
            }),
        );
    }

    /// The worker says it cancelled the activity: as on Temporal, only one asked to cancel
    /// may be (`INVALID_ARGUMENT` otherwise).
    pub(crate) fn worker_cancels_activity(
        &mut self,
        ctx: &mut Ctx<'_>,
        scheduled: i64,
        details: Option<Payloads>,
        identity: String,
    ) -> Result<(), Status> {
        let asked = self
            .activities
            .get(&scheduled)
            .is_some_and(|a| a.cancel_requested_event_id.is_some());
        if !asked {
            return Err(errors::activity_not_cancel_requested());
        }
        self.cancel_activity(ctx, scheduled, details, identity);
        Ok(())
    }

    /// The worker failed the running attempt, with the heartbeat details it last had.
    pub(crate) fn fail_activity(
        &mut self,
        ctx: &mut Ctx<'_>,
        scheduled: i64,
        failure: Failure,
        last_heartbeat_details: Option<Payloads>,
        identity: String,
    ) {
        if let Some(activity) = self.activities.get_mut(&scheduled) {
            if last_heartbeat_details.is_some() {
                activity.heartbeat_details = last_heartbeat_details;
            }
        }
        self.fail_activity_attempt(ctx, scheduled, failure, None, identity);
    }

    /// An attempt failed (or timed out): retry per the policy, or write the outcome.
    fn fail_activity_attempt(
        &mut self,
        ctx: &mut Ctx<'_>,
        scheduled: i64,
        failure: Failure,
        timeout: Option<TimeoutType>,
        identity: String,
    ) {
        let now = ctx.now;
        let Some(activity) = self.activities.get_mut(&scheduled) else {
            return;
        };
        let policy = activity.attrs.retry_policy.clone().unwrap_or_default();
        // As on Temporal, an attempt no worker took in time is not retried.
        let (retry, retry_state) = if matches!(
            timeout,
            Some(TimeoutType::ScheduleToClose | TimeoutType::ScheduleToStart)
        ) {
            (None, RetryState::Timeout)
        } else {
            let deadline = proto::duration(activity.attrs.schedule_to_close_timeout.as_ref())
                .map(|t| after(activity.scheduled_time, t));
            // A reset attempt counts as the first.
            let attempt = if activity.reset_requested {
                1
            } else {
                activity.attempt
            };
            retry::decide(attempt, &policy, &failure, deadline, now)
        };
        if let Some(mut backoff) = retry {
            activity.attempt += 1;
            if std::mem::take(&mut activity.reset_requested) {
                activity.attempt = 1;
                backoff = std::time::Duration::ZERO;
            }
            activity.state = ActivityState::Backoff;
            activity.last_failure = Some(failure);
            activity.attempt_scheduled_time = after(now, backoff);
            // A paused activity waits in backoff until it is unpaused.
            if backoff.is_zero() && activity.paused.is_none() {
                let attempt = activity.attempt;
                self.retry_activity(ctx, scheduled, attempt);
            }
            return;
        }
        let started = if activity.is_started() {
            PREVIOUS_EVENT
        } else {
            0
        };
        let outcome = match timeout {
            None => {
                Attributes::ActivityTaskFailedEventAttributes(ActivityTaskFailedEventAttributes {
                    failure: Some(failure),
                    scheduled_event_id: scheduled,
                    started_event_id: started,
                    identity,
                    retry_state: retry_state as i32,
                    ..Default::default()
                })
            }
            Some(_) => Attributes::ActivityTaskTimedOutEventAttributes(
                ActivityTaskTimedOutEventAttributes {
                    failure: Some(failure),
                    scheduled_event_id: scheduled,
                    started_event_id: started,
                    retry_state: retry_state as i32,
                },
            ),
        };
        self.close_activity(ctx, scheduled, outcome);
    }

    /// The backoff is over: queue the next attempt.
    pub(crate) fn retry_activity(&mut self, ctx: &mut Ctx<'_>, scheduled: i64, attempt: i32) {
        let Some(activity) = self.activities.get_mut(&scheduled) else {
            return;
        };
        if activity.attempt != attempt
            || activity.state != ActivityState::Backoff
            || activity.paused.is_some()
        {
            return;
        }
        activity.state = ActivityState::Scheduled;
        ctx.effects.push(Effect::ActivityTask {
            queue: activity.queue(),
            task: ActivityTaskRef {
                run_id: self.run_id.clone(),
                scheduled_event_id: scheduled,
                attempt,
            },
            eager: false,
        });
    }

    /// A timeout of the activity fired: `attempt` names the attempt for the
    /// schedule-to-start, start-to-close and heartbeat timeouts (`None`: schedule-to-close,
    /// across attempts).
    pub(crate) fn time_out_activity(
        &mut self,
        ctx: &mut Ctx<'_>,
        scheduled: i64,
        attempt: Option<i32>,
        timeout: TimeoutType,
    ) {
        let Some(activity) = self.activities.get(&scheduled) else {
            return;
        };
        if let Some(attempt) = attempt {
            if activity.attempt != attempt {
                return;
            }
            match (timeout, &activity.state) {
                (TimeoutType::ScheduleToStart, ActivityState::Scheduled) => {}
                (TimeoutType::Heartbeat, ActivityState::Started { last_heartbeat, .. }) => {
                    let every = proto::duration(activity.attrs.heartbeat_timeout.as_ref());
                    if every.is_some_and(|every| after(*last_heartbeat, every) > ctx.now) {
                        return;
                    }
                }
                (TimeoutType::StartToClose, ActivityState::Started { .. }) => {}
                _ => return,
            }
        }
        // In Temporal's words: the type as Go names it ("activity StartToClose timeout").
        let failure = Failure {
            message: format!("activity {timeout:?} timeout"),
            source: "Server".to_owned(),
            failure_info: Some(FailureInfo::TimeoutFailureInfo(TimeoutFailureInfo {
                timeout_type: timeout as i32,
                last_heartbeat_details: activity.heartbeat_details.clone(),
            })),
            ..Default::default()
        };
        self.fail_activity_attempt(ctx, scheduled, failure, Some(timeout), String::new());
    }
}
