//! Workflow tasks: scheduled on the run's queue (or its worker's sticky queue), started by
//! a poller, then completed with commands, failed or timed out.
//!
//! As on Temporal: a retry of a failed task is *transient* (its scheduled and started
//! events are not written until it completes), a task scheduled only to deliver updates is
//! *speculative* (if the worker rejects them all and does nothing else, it leaves no
//! events), and a task waiting on a sticky queue moves to the normal queue when its
//! schedule-to-start timeout passes.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tonic::Status;

use super::{task_queue, CrossRun, Ctx, Effect, Run};
use crate::{
    errors,
    matching::Token,
    pb,
    proto::{
        self,
        enums::{TaskQueueKind, TimeoutType, WorkflowTaskFailedCause},
        history::{history_event::Attributes, *},
        protocol::Message,
        service::{
            PollWorkflowTaskQueueResponse, RespondWorkflowTaskCompletedRequest,
            RespondWorkflowTaskFailedRequest,
        },
        taskqueue::TaskQueue,
    },
};

/// What a completion that would close the run over unseen events is answered, as on
/// Temporal (SDKs match this message).
const UNHANDLED_COMMAND: &str = "UnhandledCommand";

/// How long a task waits on a sticky queue when the worker names no timeout.
const DEFAULT_STICKY_SCHEDULE_TO_START: Duration = Duration::from_secs(10);

/// A workflow task that is scheduled, and maybe started.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WorkflowTask {
    pub(crate) scheduled_event_id: i64,
    pub(crate) started_event_id: Option<i64>,
    pub(crate) attempt: i32,
    pub(crate) scheduled_time: SystemTime,
    /// When a worker started it.
    #[serde(default)]
    pub(crate) started_time: Option<SystemTime>,
    /// Scheduled only to deliver updates: if the worker rejects them all and does nothing
    /// else, the task leaves no events (Temporal's speculative workflow task).
    #[serde(default)]
    pub(crate) speculative: bool,
    /// The sticky queue it waits on; `None`: the run's normal queue.
    #[serde(default)]
    pub(crate) sticky_queue: Option<String>,
    /// A retry of a failed task (attempt 2 on): its scheduled and started events are not
    /// in history; the worker gets them with the task, and they are written only if it
    /// completes (Temporal's transient workflow task).
    #[serde(default)]
    pub(crate) transient: bool,
    /// A started transient task's two events.
    #[serde(default, with = "pb::messages")]
    pub(crate) transient_events: Vec<HistoryEvent>,
    /// A transient task: the id of the history's last event when it was scheduled. If
    /// events came in since, it starts as a normal task (see `start_workflow_task`).
    #[serde(default)]
    pub(crate) after_event_id: i64,
}

/// The queue of the worker that has the run in its cache, as its last completed workflow
/// task named it: the next tasks go there with only the new events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StickyQueue {
    pub(crate) name: String,
    /// How long a task may wait there before it moves to the normal queue.
    pub(crate) schedule_to_start: Duration,
}

/// What a completion answers, besides what it did to the run.
#[derive(Debug, Default)]
pub(crate) struct Completed {
    /// A discarded speculative task: the event id the worker must reset its history to.
    pub(crate) reset_to: Option<i64>,
    /// What other runs must do, in order.
    pub(crate) cross_run: Vec<CrossRun>,
}

impl Run {
    /// Schedules a workflow task unless one is pending, the run waits for its backoff or
    /// it is closed.
    pub(crate) fn schedule_workflow_task(&mut self, ctx: &mut Ctx<'_>) {
        self.schedule_workflow_task_attempt(ctx, 1);
    }

    fn schedule_workflow_task_attempt(&mut self, ctx: &mut Ctx<'_>, attempt: i32) {
        if !self.is_open() || self.wft.is_some() || self.backoff_until.is_some() {
            return;
        }
        // A sticky worker that stopped polling (shut down, or gone with an engine restart)
        // loses the run: the task goes to the normal queue at once.
        if self
            .sticky
            .as_ref()
            .is_some_and(|s| !ctx.sticky.worker_polls(&s.name, ctx.now))
        {
            self.sticky = None;
        }
        if attempt > 1 {
            // A retry: nothing written until it completes.
            self.sticky = None;
            self.wft = Some(WorkflowTask {
                scheduled_event_id: 0,
                started_event_id: None,
                attempt,
                scheduled_time: ctx.now,
                started_time: None,
                speculative: false,
                sticky_queue: None,
                transient: true,
                transient_events: Vec::new(),
                after_event_id: self.next_event_id() - 1,
            });
            ctx.effects.push(Effect::WorkflowTask {
                queue: self.task_queue.clone(),
            });
            return;
        }
        let sticky = self.sticky.clone();
        let queue = match &sticky {
            Some(s) => Some(TaskQueue {
                name: s.name.clone(),
                kind: TaskQueueKind::Sticky as i32,
                normal_name: self.task_queue.clone(),
            }),
            None => task_queue(&self.task_queue),
        };
        let scheduled_event_id = self.append(
            ctx,
            Attributes::WorkflowTaskScheduledEventAttributes(
                WorkflowTaskScheduledEventAttributes {
                    task_queue: queue,
                    start_to_close_timeout: Some(proto::proto_duration(self.task_timeout)),
                    attempt,
                },
            ),
        );
        self.wft = Some(WorkflowTask {
            scheduled_event_id,
            started_event_id: None,
            attempt,
            scheduled_time: ctx.now,
            started_time: None,
            speculative: false,
            sticky_queue: sticky.as_ref().map(|s| s.name.clone()),
            transient: false,
            transient_events: Vec::new(),
            after_event_id: 0,
        });
        ctx.effects.push(Effect::WorkflowTask {
            queue: sticky.map_or_else(|| self.task_queue.clone(), |s| s.name),
        });
    }

    /// Moves a workflow task still waiting on a sticky queue to the normal queue, as
    /// Temporal does when its schedule-to-start timeout passes: a `WorkflowTaskTimedOut`
    /// (schedule-to-start) event, and the same attempt scheduled anew without stickiness.
    pub(crate) fn unstick_workflow_task(&mut self, ctx: &mut Ctx<'_>, scheduled: i64) {
        let Some(task) = &self.wft else { return };
        if task.scheduled_event_id != scheduled
            || task.started_event_id.is_some()
            || task.sticky_queue.is_none()
            || !self.is_open()
        {
            return;
        }
        let attempt = task.attempt;
        self.append(
            ctx,
            Attributes::WorkflowTaskTimedOutEventAttributes(WorkflowTaskTimedOutEventAttributes {
                scheduled_event_id: scheduled,
                started_event_id: 0,
                timeout_type: TimeoutType::ScheduleToStart as i32,
            }),
        );
        self.wft = None;
        self.sticky = None;
        self.schedule_workflow_task_attempt(ctx, attempt);
    }

    /// Forgets the run's sticky worker (a reset, or no sticky worker after a restart); a
    /// task waiting on its queue moves to the normal queue.
    pub(crate) fn drop_stickiness(&mut self, ctx: &mut Ctx<'_>) {
        let waiting = self
            .wft
            .as_ref()
            .filter(|t| t.sticky_queue.is_some() && t.started_event_id.is_none())
            .map(|t| t.scheduled_event_id);
        match waiting {
            Some(scheduled) => self.unstick_workflow_task(ctx, scheduled),
            None => self.sticky = None,
        }
    }

    /// Forgets the sticky worker without a trace in history: after a restart, when no
    /// worker can have the run cached; a task waiting on its queue waits on the normal
    /// queue instead.
    pub(crate) fn forget_sticky_worker(&mut self) {
        self.sticky = None;
        if let Some(task) = &mut self.wft {
            task.sticky_queue = None;
        }
    }

    /// Whether a poller of `queue` would start a task of this run now.
    pub(crate) fn has_task_for(&self, queue: &str) -> bool {
        self.is_open()
            && self.wft.as_ref().is_some_and(|t| {
                t.started_event_id.is_none()
                    && t.sticky_queue.as_deref().unwrap_or(&self.task_queue) == queue
            })
    }

    /// Starts the scheduled workflow task for a poller of `queue`; `None` if there is none
    /// to start there.
    pub(crate) fn start_workflow_task(
        &mut self,
        ctx: &mut Ctx<'_>,
        identity: &str,
        queue: &str,
    ) -> Option<PollWorkflowTaskQueueResponse> {
        if !self.has_task_for(queue) {
            return None;
        }
        let mut task = self.wft.clone()?;
        let limits = &ctx.config.limits;
        let (count_after, size_after) = (
            limits.history_count_suggest_continue_as_new,
            limits.history_size_suggest_continue_as_new,
        );
        // The history's size before the started event, as Temporal reports it.
        let history_size = self.events.size();
        let started = |scheduled_event_id: i64, history_length: usize| {
            Attributes::WorkflowTaskStartedEventAttributes(WorkflowTaskStartedEventAttributes {
                scheduled_event_id,
                identity: identity.to_owned(),
                request_id: uuid::Uuid::new_v4().to_string(),
                suggest_continue_as_new: history_length >= count_after
                    || history_size >= size_after,
                history_size_bytes: i64::try_from(history_size).unwrap_or(i64::MAX),
                ..Default::default()
            })
        };
        let now = ctx.now;
        if task.transient && task.after_event_id != self.next_event_id() - 1 {
            // As on Temporal: events came in while the retry waited, so it starts as a
            // normal task, attempt 1, scheduled now (its events in history, in time order).
            task.transient = false;
            task.attempt = 1;
            task.scheduled_time = now;
            task.scheduled_event_id = self.append(
                ctx,
                Attributes::WorkflowTaskScheduledEventAttributes(
                    WorkflowTaskScheduledEventAttributes {
                        task_queue: task_queue(&self.task_queue),
                        start_to_close_timeout: Some(proto::proto_duration(self.task_timeout)),
                        attempt: 1,
                    },
                ),
            );
        }
        let started_event_id = if task.transient {
            let scheduled_event_id = self.next_event_id();
            let scheduled = Attributes::WorkflowTaskScheduledEventAttributes(
                WorkflowTaskScheduledEventAttributes {
                    task_queue: task_queue(&self.task_queue),
                    start_to_close_timeout: Some(proto::proto_duration(self.task_timeout)),
                    attempt: task.attempt,
                },
            );
            let started = started(scheduled_event_id, self.events.len() + 2);
            task.scheduled_event_id = scheduled_event_id;
            task.transient_events = vec![
                ctx.event(scheduled_event_id, task.scheduled_time, scheduled),
                ctx.event(scheduled_event_id + 1, now, started),
            ];
            scheduled_event_id + 1
        } else {
            let attrs = started(task.scheduled_event_id, self.events.len() + 1);
            self.append(ctx, attrs)
        };
        task.started_event_id = Some(started_event_id);
        task.started_time = Some(now);
        let messages = self.deliver_updates(task.scheduled_event_id);
        let token = Token::Workflow {
            ns: self.namespace.clone(),
            run: self.run_id.clone(),
            scheduled: task.scheduled_event_id,
            attempt: task.attempt,
        };
        let events = if task.sticky_queue.is_some() {
            // The sticky worker has the run up to the last task it completed.
            let seen = usize::try_from(self.previous_started_event_id).unwrap_or(0);
            self.events.range(seen..self.events.len())
        } else {
            let mut events = self.events.to_vec();
            events.extend(task.transient_events.iter().cloned());
            events
        };
        let response = PollWorkflowTaskQueueResponse {
            task_token: token.encode(),
            workflow_execution: Some(self.execution()),
            workflow_type: self.started.workflow_type.clone(),
            previous_started_event_id: self.previous_started_event_id,
            started_event_id,
            attempt: task.attempt,
            history: Some(History { events }),
            workflow_execution_task_queue: task_queue(&self.task_queue),
            scheduled_time: Some(proto::timestamp(task.scheduled_time)),
            started_time: Some(proto::timestamp(now)),
            messages,
            ..Default::default()
        };
        self.wft = Some(task);
        Some(response)
    }

    /// Checks a workflow task token against the started task: `(scheduled, started)`.
    pub(crate) fn started_task(&self, scheduled: i64) -> Result<(i64, i64), Status> {
        match &self.wft {
            Some(WorkflowTask {
                scheduled_event_id,
                started_event_id: Some(started),
                ..
            }) if *scheduled_event_id == scheduled && self.is_open() => {
                Ok((*scheduled_event_id, *started))
            }
            _ => Err(errors::workflow_task_not_found(
                &self.workflow_id,
                &self.run_id,
                scheduled,
            )),
        }
    }

    /// Ends the started workflow task as failed or timed out: undelivered updates go
    /// back to admitted, buffered events are written, and a new task is scheduled: the
    /// next attempt, transient, or (`afresh`) attempt 1 after the failure is written.
    ///
    /// As on Temporal, only a first attempt's failure is written: a transient attempt's
    /// failure leaves history as it was.
    fn end_task_unsuccessfully(&mut self, ctx: &mut Ctx<'_>, attrs: Attributes, afresh: bool) {
        let task = self.wft.take();
        let attempt = task.as_ref().map_or(1, |t| t.attempt);
        match task {
            Some(task) if task.transient && !afresh => {}
            Some(task) => {
                self.write_transient_events(task.transient_events);
                self.append(ctx, attrs);
            }
            None => {
                self.append(ctx, attrs);
            }
        }
        // The next attempt goes to any worker, with the whole history.
        self.sticky = None;
        self.undeliver_updates();
        self.flush_buffered(ctx);
        self.schedule_workflow_task_attempt(ctx, if afresh { 1 } else { attempt + 1 });
    }

    /// Writes a transient task's scheduled and started events, once it is settled.
    fn write_transient_events(&mut self, events: Vec<HistoryEvent>) {
        for event in events {
            debug_assert_eq!(event.event_id, self.next_event_id());
            self.events.push(&event);
        }
    }

    /// The worker failed the started task.
    pub(crate) fn fail_workflow_task(
        &mut self,
        ctx: &mut Ctx<'_>,
        request: RespondWorkflowTaskFailedRequest,
        scheduled: i64,
    ) -> Result<(), Status> {
        let (scheduled_event_id, started_event_id) = self.started_task(scheduled)?;
        self.end_task_unsuccessfully(
            ctx,
            Attributes::WorkflowTaskFailedEventAttributes(WorkflowTaskFailedEventAttributes {
                scheduled_event_id,
                started_event_id,
                cause: request.cause,
                failure: request.failure,
                identity: request.identity,
                binary_checksum: request.binary_checksum,
                ..Default::default()
            }),
            false,
        );
        Ok(())
    }

    /// The engine fails the started task (for a completion it cannot apply), as a worker
    /// failing it would: the next attempt is transient, so a worker that keeps sending
    /// the same completion does not grow the history.
    pub(crate) fn reject_workflow_task(
        &mut self,
        ctx: &mut Ctx<'_>,
        cause: WorkflowTaskFailedCause,
        message: String,
        identity: String,
    ) {
        let Some((scheduled_event_id, started_event_id)) = self
            .wft
            .as_ref()
            .and_then(|t| Some((t.scheduled_event_id, t.started_event_id?)))
        else {
            return;
        };
        self.end_task_unsuccessfully(
            ctx,
            Attributes::WorkflowTaskFailedEventAttributes(WorkflowTaskFailedEventAttributes {
                scheduled_event_id,
                started_event_id,
                cause: cause as i32,
                failure: Some(proto::failure::Failure {
                    message,
                    source: "capstan-engine".to_owned(),
                    ..Default::default()
                }),
                identity,
                ..Default::default()
            }),
            false,
        );
    }

    /// The run closes from outside (terminate, timeout) under a started task: as on
    /// Temporal, the task is failed first (cause `FORCE_CLOSE_COMMAND`, by the history
    /// service), so that no event follows `WorkflowTaskStarted` but the task's outcome.
    /// A transient task's events are not in history: it leaves none. The run has no
    /// task after this.
    pub(super) fn force_close_workflow_task(&mut self, ctx: &mut Ctx<'_>) {
        let Some((scheduled_event_id, started_event_id)) = self
            .wft
            .take()
            .filter(|t| !t.transient)
            .and_then(|t| Some((t.scheduled_event_id, t.started_event_id?)))
        else {
            return;
        };
        self.append(
            ctx,
            Attributes::WorkflowTaskFailedEventAttributes(WorkflowTaskFailedEventAttributes {
                scheduled_event_id,
                started_event_id,
                cause: WorkflowTaskFailedCause::ForceCloseCommand as i32,
                identity: super::ENGINE_IDENTITY.to_owned(),
                ..Default::default()
            }),
        );
    }

    /// The started task ran past its start-to-close timeout.
    pub(crate) fn time_out_workflow_task(&mut self, ctx: &mut Ctx<'_>, scheduled: i64) {
        let Ok((scheduled_event_id, started_event_id)) = self.started_task(scheduled) else {
            return;
        };
        let started_time = self.wft.as_ref().and_then(|t| t.started_time);
        if started_time.is_some_and(|t| ctx.now < crate::clock::after(t, self.task_timeout)) {
            return;
        }
        self.end_task_unsuccessfully(
            ctx,
            Attributes::WorkflowTaskTimedOutEventAttributes(WorkflowTaskTimedOutEventAttributes {
                scheduled_event_id,
                started_event_id,
                timeout_type: TimeoutType::StartToClose as i32,
            }),
            false,
        );
    }

    /// Completes the started workflow task with the worker's commands and messages: the
    /// commands are checked first (a completion the engine cannot apply fails the task
    /// and changes nothing else), then applied in order.
    pub(crate) fn complete_workflow_task(
        &mut self,
        ctx: &mut Ctx<'_>,
        request: RespondWorkflowTaskCompletedRequest,
        scheduled: i64,
    ) -> Result<Completed, Status> {
        let (scheduled_event_id, started_event_id) = self.started_task(scheduled)?;
        let mut request = request;
        super::checks::limit_failures(&mut request.commands);
        let checked = self.check_messages(&request.messages).and_then(|()| {
            self.check_commands(
                &request.commands,
                &request.messages,
                ctx.namespaces,
                &ctx.config.limits,
            )
        });
        if let Err(rejected) = checked {
            let (reason, message) = (rejected.reason(), rejected.message.clone());
            self.reject_workflow_task(ctx, rejected.cause, rejected.message, request.identity);
            if rejected.terminate {
                // As Temporal does for a payload over the blob limit.
                self.terminate(ctx, &reason, None, super::ENGINE_IDENTITY);
            }
            return Err(Status::invalid_argument(message));
        }
        if let Some(reset_to) = self.discard_speculative_task(ctx, &request) {
            return Ok(Completed {
                reset_to: Some(reset_to),
                cross_run: Vec::new(),
            });
        }
        let closes = request.commands.iter().any(super::commands::closes_run);
        if closes && (!self.buffered.is_empty() || self.has_admitted_updates()) {
            // New events arrived while the task ran: the workflow must see them before
            // it may close, as on Temporal. The answer is Temporal's too: SDKs evict the
            // run on `UnhandledCommand` and replay it with the new events; a worker told
            // the task completed would go on from a workflow that already finished.
            self.end_task_unsuccessfully(
                ctx,
                Attributes::WorkflowTaskFailedEventAttributes(WorkflowTaskFailedEventAttributes {
                    scheduled_event_id,
                    started_event_id,
                    cause: WorkflowTaskFailedCause::UnhandledCommand as i32,
                    identity: request.identity,
                    ..Default::default()
                }),
                true,
            );
            return Err(Status::invalid_argument(UNHANDLED_COMMAND));
        }
        if let Some(task) = self.wft.as_mut() {
            let events = std::mem::take(&mut task.transient_events);
            self.write_transient_events(events);
        }
        let completed_id = self.append(
            ctx,
            Attributes::WorkflowTaskCompletedEventAttributes(
                WorkflowTaskCompletedEventAttributes {
                    scheduled_event_id,
                    started_event_id,
                    identity: request.identity.clone(),
                    binary_checksum: request.binary_checksum.clone(),
                    sdk_metadata: request.sdk_metadata.clone(),
                    metering_metadata: request.metering_metadata,
                    // The worker's build, as Temporal records it (worker versioning
                    // itself is not offered).
                    worker_version: request.worker_version_stamp.clone(),
                    ..Default::default()
                },
            ),
        );
        self.wft = None;
        self.previous_started_event_id = started_event_id;
        self.sticky = request.sticky_attributes.as_ref().and_then(|a| {
            let name = &a.worker_task_queue.as_ref()?.name;
            (!name.is_empty()).then(|| StickyQueue {
                name: name.clone(),
                schedule_to_start: proto::duration(a.schedule_to_start_timeout.as_ref())
                    .filter(|d| !d.is_zero())
                    .unwrap_or(DEFAULT_STICKY_SCHEDULE_TO_START),
            })
        });
        self.in_completion = true;
        self.needs_task = false;
        let cross_run = self.apply_commands(ctx, request.commands, &request.messages, completed_id);
        self.reject_unanswered_updates(scheduled_event_id);
        let flushed = self.flush_buffered(ctx);
        self.in_completion = false;
        if self.is_open()
            && (flushed
                || self.needs_task
                || self.has_admitted_updates()
                || request.force_create_new_workflow_task)
        {
            self.schedule_workflow_task(ctx);
        }
        Ok(Completed {
            reset_to: None,
            cross_run,
        })
    }

    /// Completes a speculative workflow task whose worker rejected every update and did
    /// nothing else by dropping its two events, as Temporal does; answers the started event
    /// id the worker must reset to. `None` (nothing done) for any other completion.
    fn discard_speculative_task(
        &mut self,
        ctx: &mut Ctx<'_>,
        request: &RespondWorkflowTaskCompletedRequest,
    ) -> Option<i64> {
        let task = self.wft.as_ref()?;
        let scheduled = task.scheduled_event_id;
        let started = task.started_event_id?;
        let only_its_events = started == scheduled + 1 && self.events.len() as i64 == started;
        let only_rejections =
            !request.messages.is_empty() && request.messages.iter().all(is_rejection);
        if !task.speculative
            || !only_its_events
            || !only_rejections
            || self.has_admitted_updates()
            || !self.buffered.is_empty()
            || !request.commands.is_empty()
            || request.force_create_new_workflow_task
        {
            return None;
        }
        for message in &request.messages {
            self.apply_message(ctx, message);
        }
        self.reject_unanswered_updates(scheduled);
        self.events.truncate((scheduled - 1) as usize);
        self.wft = None;
        Some(self.previous_started_event_id)
    }
}

fn is_rejection(message: &Message) -> bool {
    message
        .body
        .as_ref()
        .is_some_and(|b| b.type_url.ends_with("temporal.api.update.v1.Rejection"))
}
