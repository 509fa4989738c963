//! Workflow runs: their histories and the state machines that write them (workflow
//! tasks, commands, activities, timers, children, signals, cancellation, updates).

// A server still carries the deprecated fields (`control`, `namespace`, checksums) that
// older clients send.
#![allow(deprecated)]

use std::{
    collections::{BTreeMap, HashMap},
    time::{Duration, SystemTime},
};

use prost::Message as _;
use serde::{Deserialize, Serialize};

use crate::{
    event_log::EventLog,
    matching::{ActivityTaskRef, Token, WorkflowTaskRef},
    proto::{
        self,
        command::{command::Attributes as Cmd, Command},
        common::{Payloads, RetryPolicy, WorkflowExecution},
        enums::{
            ContinueAsNewInitiator, EventType, ParentClosePolicy, RetryState, TimeoutType,
            WorkflowExecutionStatus, WorkflowTaskFailedCause,
        },
        failure::{failure::FailureInfo, Failure},
        history::{history_event::Attributes, *},
        protocol::Message,
        taskqueue::TaskQueue,
        update::{self, outcome, Outcome},
    },
    store::{pb, Scheduler, State},
    timers::TimerKind,
};

/// The default workflow task timeout, as Temporal's.
const DEFAULT_TASK_TIMEOUT: Duration = Duration::from_secs(10);
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
}

/// The queue of the worker that has the run in its cache, as its last completed workflow
/// task named it: the next tasks go there with only the new events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StickyQueue {
    pub(crate) name: String,
    /// How long a task may wait there before it moves to the normal queue.
    pub(crate) schedule_to_start: Duration,
}

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
    pub(crate) attempt_scheduled_time: SystemTime,
    pub(crate) attempt: i32,
    pub(crate) state: ActivityState,
    #[serde(with = "pb::option")]
    pub(crate) heartbeat_details: Option<Payloads>,
    #[serde(with = "pb::option")]
    pub(crate) last_failure: Option<Failure>,
    pub(crate) cancel_requested_event_id: Option<i64>,
}

/// A child the run started and that has not closed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Child {
    #[serde(with = "pb::message")]
    pub(crate) execution: WorkflowExecution,
    pub(crate) workflow_type: String,
    pub(crate) namespace: String,
    pub(crate) started_event_id: i64,
    pub(crate) parent_close_policy: i32,
}

/// The run that started this one as a child.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ParentRef {
    pub(crate) namespace: String,
    #[serde(with = "pb::message")]
    pub(crate) execution: WorkflowExecution,
    pub(crate) initiated_event_id: i64,
}

/// Where an update is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum UpdateState {
    /// Received, not yet given to a worker.
    Admitted,
    /// Given to a worker in the workflow task scheduled at this event.
    Delivered(i64),
    /// Accepted by the workflow at this event.
    Accepted(i64),
    /// Completed or rejected.
    Completed(#[serde(with = "pb::message")] Box<Outcome>),
}

/// An update sent to the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Update {
    pub(crate) id: String,
    #[serde(with = "pb::message")]
    pub(crate) request: update::Request,
    pub(crate) state: UpdateState,
}

/// One workflow run. Serialized (without its events, which are stored one row each) by
/// the durable store.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Run {
    pub(crate) namespace: String,
    pub(crate) workflow_id: String,
    pub(crate) run_id: String,
    pub(crate) workflow_type: String,
    pub(crate) task_queue: String,
    #[serde(with = "pb::message")]
    pub(crate) started: WorkflowExecutionStartedEventAttributes,
    pub(crate) request_id: String,
    #[serde(with = "pb::status")]
    pub(crate) status: WorkflowExecutionStatus,
    #[serde(skip)]
    pub(crate) events: EventLog,
    /// Events that arrived while a workflow task was started; written after it ends.
    #[serde(with = "pb::attributes")]
    buffered: Vec<Attributes>,
    pub(crate) wft: Option<WorkflowTask>,
    /// The started event of the last completed workflow task.
    pub(crate) previous_started_event_id: i64,
    #[serde(default)]
    pub(crate) sticky: Option<StickyQueue>,
    pub(crate) task_timeout: Duration,
    pub(crate) start_time: SystemTime,
    pub(crate) close_time: Option<SystemTime>,
    pub(crate) activities: BTreeMap<i64, Activity>,
    pub(crate) timers: HashMap<String, i64>,
    pub(crate) children: BTreeMap<i64, Child>,
    pub(crate) updates: Vec<Update>,
    pub(crate) parent: Option<ParentRef>,
    pub(crate) new_run_id: String,
    /// The first workflow task waits until then: a start delay, a retry's backoff or the
    /// next cron time.
    #[serde(default)]
    pub(crate) backoff_until: Option<SystemTime>,
    /// Inside `complete_workflow_task`: new events don't schedule a task by themselves.
    in_completion: bool,
    needs_task: bool,
    /// Activities the completing worker asked to run itself (eager execution), started and
    /// handed back in the completion's answer instead of queued.
    #[serde(skip)]
    eager: Vec<ActivityTaskRef>,
}

/// What starting a run needs.
#[derive(Debug, Clone, Default)]
pub(crate) struct StartRun {
    pub(crate) namespace: String,
    pub(crate) workflow_id: String,
    pub(crate) request_id: String,
    pub(crate) attrs: WorkflowExecutionStartedEventAttributes,
    pub(crate) parent: Option<ParentRef>,
}

/// Something a workflow task completion does to other runs, after its own events.
enum SideEffect {
    StartChild(
        i64,
        Box<StartChildWorkflowExecutionInitiatedEventAttributes>,
    ),
    Signal(i64, SignalExternalWorkflowExecutionInitiatedEventAttributes),
    Cancel(
        i64,
        RequestCancelExternalWorkflowExecutionInitiatedEventAttributes,
    ),
    ContinueAsNew(Box<StartRun>),
}

/// Event `event_id` at `time`, with the next task id.
fn history_event(
    sched: &mut Scheduler,
    event_id: i64,
    time: SystemTime,
    attrs: Attributes,
) -> HistoryEvent {
    HistoryEvent {
        event_id,
        event_time: Some(proto::timestamp(time)),
        event_type: event_type(&attrs) as i32,
        task_id: sched.next_seq() as i64,
        attributes: Some(attrs),
        ..Default::default()
    }
}

/// How a run closes, for what follows it (see `Run::successor`).
#[derive(Clone, Copy)]
enum Closing<'a> {
    Completed(Option<&'a Payloads>),
    Failed(&'a Failure),
    TimedOut,
}

/// The run id of a successor, for the close event (empty: none).
fn successor_id(next: &Option<StartRun>) -> String {
    next.as_ref()
        .map(|s| s.attrs.original_execution_run_id.clone())
        .unwrap_or_default()
}

/// The next time of a workflow's cron schedule after `now` (`None`: no schedule, or one
/// that never fires again).
fn cron_next(cron: &str, now: SystemTime) -> Option<SystemTime> {
    if cron.trim().is_empty() {
        return None;
    }
    crate::schedules::spec::cron_spec(cron)
        .ok()?
        .next_after(now)
}

macro_rules! event_types {
    ($($name:ident => $ty:ident),* $(,)?) => {
        fn event_type(a: &Attributes) -> EventType {
            match a {
                $(Attributes::$name(_) => EventType::$ty,)*
                _ => EventType::Unspecified,
            }
        }
    };
}

event_types! {
    WorkflowExecutionStartedEventAttributes => WorkflowExecutionStarted,
    WorkflowExecutionCompletedEventAttributes => WorkflowExecutionCompleted,
    WorkflowExecutionFailedEventAttributes => WorkflowExecutionFailed,
    WorkflowExecutionTimedOutEventAttributes => WorkflowExecutionTimedOut,
    WorkflowTaskScheduledEventAttributes => WorkflowTaskScheduled,
    WorkflowTaskStartedEventAttributes => WorkflowTaskStarted,
    WorkflowTaskCompletedEventAttributes => WorkflowTaskCompleted,
    WorkflowTaskTimedOutEventAttributes => WorkflowTaskTimedOut,
    WorkflowTaskFailedEventAttributes => WorkflowTaskFailed,
    ActivityTaskScheduledEventAttributes => ActivityTaskScheduled,
    ActivityTaskStartedEventAttributes => ActivityTaskStarted,
    ActivityTaskCompletedEventAttributes => ActivityTaskCompleted,
    ActivityTaskFailedEventAttributes => ActivityTaskFailed,
    ActivityTaskTimedOutEventAttributes => ActivityTaskTimedOut,
    TimerStartedEventAttributes => TimerStarted,
    TimerFiredEventAttributes => TimerFired,
    ActivityTaskCancelRequestedEventAttributes => ActivityTaskCancelRequested,
    ActivityTaskCanceledEventAttributes => ActivityTaskCanceled,
    TimerCanceledEventAttributes => TimerCanceled,
    MarkerRecordedEventAttributes => MarkerRecorded,
    WorkflowExecutionSignaledEventAttributes => WorkflowExecutionSignaled,
    WorkflowExecutionTerminatedEventAttributes => WorkflowExecutionTerminated,
    WorkflowExecutionCancelRequestedEventAttributes => WorkflowExecutionCancelRequested,
    WorkflowExecutionCanceledEventAttributes => WorkflowExecutionCanceled,
    RequestCancelExternalWorkflowExecutionInitiatedEventAttributes => RequestCancelExternalWorkflowExecutionInitiated,
    RequestCancelExternalWorkflowExecutionFailedEventAttributes => RequestCancelExternalWorkflowExecutionFailed,
    ExternalWorkflowExecutionCancelRequestedEventAttributes => ExternalWorkflowExecutionCancelRequested,
    WorkflowExecutionContinuedAsNewEventAttributes => WorkflowExecutionContinuedAsNew,
    StartChildWorkflowExecutionInitiatedEventAttributes => StartChildWorkflowExecutionInitiated,
    StartChildWorkflowExecutionFailedEventAttributes => StartChildWorkflowExecutionFailed,
    ChildWorkflowExecutionStartedEventAttributes => ChildWorkflowExecutionStarted,
    ChildWorkflowExecutionCompletedEventAttributes => ChildWorkflowExecutionCompleted,
    ChildWorkflowExecutionFailedEventAttributes => ChildWorkflowExecutionFailed,
    ChildWorkflowExecutionCanceledEventAttributes => ChildWorkflowExecutionCanceled,
    ChildWorkflowExecutionTimedOutEventAttributes => ChildWorkflowExecutionTimedOut,
    ChildWorkflowExecutionTerminatedEventAttributes => ChildWorkflowExecutionTerminated,
    SignalExternalWorkflowExecutionInitiatedEventAttributes => SignalExternalWorkflowExecutionInitiated,
    SignalExternalWorkflowExecutionFailedEventAttributes => SignalExternalWorkflowExecutionFailed,
    ExternalWorkflowExecutionSignaledEventAttributes => ExternalWorkflowExecutionSignaled,
    UpsertWorkflowSearchAttributesEventAttributes => UpsertWorkflowSearchAttributes,
    WorkflowExecutionUpdateAcceptedEventAttributes => WorkflowExecutionUpdateAccepted,
    WorkflowExecutionUpdateCompletedEventAttributes => WorkflowExecutionUpdateCompleted,
    WorkflowPropertiesModifiedEventAttributes => WorkflowPropertiesModified,
}

/// Placeholder for "the event just before this one" in an activity outcome whose started
/// event is written in the same breath (possibly later, when buffered).
const PREVIOUS_EVENT: i64 = -1;

fn is_closed(status: WorkflowExecutionStatus) -> bool {
    status != WorkflowExecutionStatus::Running
}

fn task_queue(name: &str) -> Option<TaskQueue> {
    Some(TaskQueue {
        name: name.to_owned(),
        kind: proto::enums::TaskQueueKind::Normal as i32,
        ..Default::default()
    })
}

impl Run {
    pub(crate) fn execution(&self) -> WorkflowExecution {
        WorkflowExecution {
            workflow_id: self.workflow_id.clone(),
            run_id: self.run_id.clone(),
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        !is_closed(self.status)
    }

    /// Whether the run waits on nothing but its timers (and outside input): no workflow
    /// task scheduled or started, no activity attempt queued or running, no update that
    /// the workflow has not yet seen. A virtual clock may skip ahead only then.
    pub(crate) fn waits_only_on_timers(&self) -> bool {
        !self.is_open()
            || (self.wft.is_none()
                && self
                    .activities
                    .values()
                    .all(|a| a.state == ActivityState::Backoff)
                && self
                    .updates
                    .iter()
                    .all(|u| !matches!(u.state, UpdateState::Admitted | UpdateState::Delivered(_))))
    }

    /// Whether cancellation was requested (a cancel-requested event is written).
    pub(crate) fn cancel_requested(&self) -> bool {
        self.events
            .iter()
            .any(|e| e.event_type == EventType::WorkflowExecutionCancelRequested as i32)
    }

    fn next_event_id(&self) -> i64 {
        self.events.len() as i64 + 1
    }

    /// Appends an event now and returns its id.
    fn append(&mut self, sched: &mut Scheduler, mut attrs: Attributes) -> i64 {
        let event_id = self.next_event_id();
        match &mut attrs {
            Attributes::ActivityTaskCompletedEventAttributes(a)
                if a.started_event_id == PREVIOUS_EVENT =>
            {
                a.started_event_id = event_id - 1
            }
            Attributes::ActivityTaskFailedEventAttributes(a)
                if a.started_event_id == PREVIOUS_EVENT =>
            {
                a.started_event_id = event_id - 1
            }
            Attributes::ActivityTaskTimedOutEventAttributes(a)
                if a.started_event_id == PREVIOUS_EVENT =>
            {
                a.started_event_id = event_id - 1
            }
            Attributes::ActivityTaskCanceledEventAttributes(a)
                if a.started_event_id == PREVIOUS_EVENT =>
            {
                a.started_event_id = event_id - 1
            }
            _ => {}
        }
        let event = history_event(sched, event_id, sched.now(), attrs);
        self.events.push(&event);
        sched.changed = true;
        event_id
    }

    /// Adds an event the workflow must see: buffered while a task is started, and
    /// followed by a workflow task otherwise.
    fn add_new_event(&mut self, sched: &mut Scheduler, attrs: Attributes) {
        if self
            .wft
            .as_ref()
            .is_some_and(|t| t.started_event_id.is_some())
        {
            self.buffered.push(attrs);
            sched.changed = true;
            return;
        }
        self.append(sched, attrs);
        if self.in_completion {
            self.needs_task = true;
        } else {
            self.schedule_workflow_task(sched);
        }
    }

    fn flush_buffered(&mut self, sched: &mut Scheduler) -> bool {
        let buffered = std::mem::take(&mut self.buffered);
        let any = !buffered.is_empty();
        for attrs in buffered {
            self.append(sched, attrs);
        }
        any
    }

    /// Schedules a workflow task unless one is pending or the run is closed.
    pub(crate) fn schedule_workflow_task(&mut self, sched: &mut Scheduler) {
        self.schedule_workflow_task_attempt(sched, 1);
    }

    fn schedule_workflow_task_attempt(&mut self, sched: &mut Scheduler, attempt: i32) {
        if !self.is_open() || self.wft.is_some() || self.backoff_until.is_some() {
            return;
        }
        // A sticky worker that stopped polling (shut down, or gone with an engine restart)
        // loses the run: the task goes to the normal queue at once.
        if self
            .sticky
            .as_ref()
            .is_some_and(|s| !sched.sticky_worker_polls(&s.name))
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
                scheduled_time: sched.now(),
                started_time: None,
                speculative: false,
                sticky_queue: None,
                transient: true,
                transient_events: Vec::new(),
            });
            sched.queues.push_workflow(
                &self.namespace,
                &self.task_queue,
                WorkflowTaskRef::Run(self.run_id.clone()),
            );
            sched.changed = true;
            return;
        }
        let sticky = self.sticky.clone();
        let queue = match &sticky {
            Some(s) => Some(TaskQueue {
                name: s.name.clone(),
                kind: proto::enums::TaskQueueKind::Sticky as i32,
                normal_name: self.task_queue.clone(),
            }),
            None => task_queue(&self.task_queue),
        };
        let scheduled_event_id = self.append(
            sched,
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
            scheduled_time: sched.now(),
            started_time: None,
            speculative: false,
            sticky_queue: sticky.as_ref().map(|s| s.name.clone()),
            transient: false,
            transient_events: Vec::new(),
        });
        if let Some(s) = &sticky {
            sched.add_timer(
                sched.now() + s.schedule_to_start,
                TimerKind::StickyScheduleToStart {
                    run_id: self.run_id.clone(),
                    scheduled_event_id,
                },
            );
        }
        let queue = sticky.map_or_else(|| self.task_queue.clone(), |s| s.name);
        sched.queues.push_workflow(
            &self.namespace,
            &queue,
            WorkflowTaskRef::Run(self.run_id.clone()),
        );
    }

    /// Moves a workflow task still waiting on a sticky queue to the normal queue, as
    /// Temporal does when its schedule-to-start timeout passes: a `WorkflowTaskTimedOut`
    /// (schedule-to-start) event, and the same attempt scheduled anew without stickiness.
    pub(crate) fn unstick_workflow_task(&mut self, sched: &mut Scheduler, scheduled: i64) {
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
            sched,
            Attributes::WorkflowTaskTimedOutEventAttributes(WorkflowTaskTimedOutEventAttributes {
                scheduled_event_id: scheduled,
                started_event_id: 0,
                timeout_type: TimeoutType::ScheduleToStart as i32,
            }),
        );
        self.wft = None;
        self.sticky = None;
        self.schedule_workflow_task_attempt(sched, attempt);
    }

    /// Starts the scheduled workflow task for a poller of `queue`; `None` if there is none
    /// to start there.
    pub(crate) fn start_workflow_task(
        &mut self,
        sched: &mut Scheduler,
        identity: &str,
        queue: &str,
    ) -> Option<proto::service::PollWorkflowTaskQueueResponse> {
        let mut task = self.wft.clone()?;
        let on = task.sticky_queue.as_deref().unwrap_or(&self.task_queue);
        if task.started_event_id.is_some() || !self.is_open() || on != queue {
            return None;
        }
        let started = |scheduled_event_id: i64, history_length: usize| {
            Attributes::WorkflowTaskStartedEventAttributes(WorkflowTaskStartedEventAttributes {
                scheduled_event_id,
                identity: identity.to_owned(),
                request_id: uuid::Uuid::new_v4().to_string(),
                suggest_continue_as_new: history_length >= sched.suggest_continue_as_new_after,
                ..Default::default()
            })
        };
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
                history_event(sched, scheduled_event_id, task.scheduled_time, scheduled),
                history_event(sched, scheduled_event_id + 1, sched.now(), started),
            ];
            scheduled_event_id + 1
        } else {
            let attrs = started(task.scheduled_event_id, self.events.len() + 1);
            self.append(sched, attrs)
        };
        let now = sched.now();
        self.wft = Some(WorkflowTask {
            started_event_id: Some(started_event_id),
            started_time: Some(now),
            ..task.clone()
        });
        sched.add_timer(
            now + self.task_timeout,
            TimerKind::WorkflowTaskTimeout {
                run_id: self.run_id.clone(),
                scheduled_event_id: task.scheduled_event_id,
            },
        );
        let mut messages = Vec::new();
        for update in &mut self.updates {
            if update.state == UpdateState::Admitted {
                update.state = UpdateState::Delivered(task.scheduled_event_id);
                messages.push(Message {
                    id: format!("{}/request", update.id),
                    protocol_instance_id: update.id.clone(),
                    body: Some(proto::pack(
                        "temporal.api.update.v1.Request",
                        &update.request,
                    )),
                    sequencing_id: Some(proto::protocol::message::SequencingId::EventId(
                        task.scheduled_event_id,
                    )),
                });
            }
        }
        let token = Token::Workflow {
            run: self.run_id.clone(),
            scheduled: task.scheduled_event_id,
            attempt: task.attempt,
        };
        Some(proto::service::PollWorkflowTaskQueueResponse {
            task_token: token.encode(),
            workflow_execution: Some(self.execution()),
            workflow_type: self.started.workflow_type.clone(),
            previous_started_event_id: self.previous_started_event_id,
            started_event_id,
            attempt: task.attempt,
            history: Some(History {
                // The sticky worker has the run up to the last task it completed.
                events: if task.sticky_queue.is_some() {
                    let seen = usize::try_from(self.previous_started_event_id).unwrap_or(0);
                    self.events.range(seen..self.events.len())
                } else {
                    let mut events = self.events.to_vec();
                    events.extend(task.transient_events.iter().cloned());
                    events
                },
            }),
            workflow_execution_task_queue: task_queue(&self.task_queue),
            scheduled_time: Some(proto::timestamp(task.scheduled_time)),
            started_time: Some(proto::timestamp(now)),
            messages,
            ..Default::default()
        })
    }

    /// Checks a workflow task token against the started task.
    pub(crate) fn started_task(&self, scheduled: i64) -> Result<(i64, i64), tonic::Status> {
        match &self.wft {
            Some(WorkflowTask {
                scheduled_event_id,
                started_event_id: Some(started),
                ..
            }) if *scheduled_event_id == scheduled && self.is_open() => {
                Ok((*scheduled_event_id, *started))
            }
            _ => Err(tonic::Status::not_found(format!(
                "workflow task not found: workflow `{}` run `{}` has no started task scheduled at event {scheduled}",
                self.workflow_id, self.run_id
            ))),
        }
    }

    /// Ends the started workflow task as failed or timed out: undelivered updates go
    /// back to admitted, buffered events are written, and a new task is scheduled: the
    /// next attempt, transient, or (`afresh`) attempt 1 after the failure is written.
    ///
    /// As on Temporal, only a first attempt's failure is written: a transient attempt's
    /// failure leaves history as it was.
    fn end_task_unsuccessfully(&mut self, sched: &mut Scheduler, attrs: Attributes, afresh: bool) {
        let task = self.wft.take();
        let attempt = task.as_ref().map_or(1, |t| t.attempt);
        match task {
            Some(task) if task.transient && !afresh => {}
            Some(task) => {
                self.write_transient_events(task.transient_events);
                self.append(sched, attrs);
            }
            None => {
                self.append(sched, attrs);
            }
        }
        // The next attempt goes to any worker, with the whole history.
        self.sticky = None;
        for update in &mut self.updates {
            if matches!(update.state, UpdateState::Delivered(_)) {
                update.state = UpdateState::Admitted;
            }
        }
        self.flush_buffered(sched);
        self.schedule_workflow_task_attempt(sched, if afresh { 1 } else { attempt + 1 });
    }

    /// Writes a transient task's scheduled and started events, once it is settled.
    fn write_transient_events(&mut self, events: Vec<HistoryEvent>) {
        for event in events {
            debug_assert_eq!(event.event_id, self.next_event_id());
            self.events.push(&event);
        }
    }

    pub(crate) fn fail_workflow_task(
        &mut self,
        sched: &mut Scheduler,
        request: proto::service::RespondWorkflowTaskFailedRequest,
        scheduled: i64,
    ) -> Result<(), tonic::Status> {
        let (scheduled_event_id, started_event_id) = self.started_task(scheduled)?;
        self.end_task_unsuccessfully(
            sched,
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

    fn time_out_workflow_task(&mut self, sched: &mut Scheduler, scheduled: i64) {
        let Ok((scheduled_event_id, started_event_id)) = self.started_task(scheduled) else {
            return;
        };
        // A discarded speculative task's timer may find a later task with the same ids.
        let started_time = self.wft.as_ref().and_then(|t| t.started_time);
        if started_time.is_some_and(|t| sched.now() < t + self.task_timeout) {
            return;
        }
        self.end_task_unsuccessfully(
            sched,
            Attributes::WorkflowTaskTimedOutEventAttributes(WorkflowTaskTimedOutEventAttributes {
                scheduled_event_id,
                started_event_id,
                timeout_type: TimeoutType::StartToClose as i32,
            }),
            false,
        );
    }

    /// Closes the run after its close event was written.
    fn close(&mut self, sched: &mut Scheduler, status: WorkflowExecutionStatus) {
        self.status = status;
        self.close_time = Some(sched.now());
        self.wft = None;
        self.activities.clear();
        self.timers.clear();
        self.buffered.clear();
        for update in &mut self.updates {
            if !matches!(update.state, UpdateState::Completed(_)) {
                update.state = UpdateState::Completed(Box::new(Outcome {
                    value: Some(outcome::Value::Failure(Failure {
                        message: "the workflow closed before the update completed".to_owned(),
                        ..Default::default()
                    })),
                }));
            }
        }
        sched.changed = true;
    }

    fn retry_policy_defaults(policy: Option<RetryPolicy>) -> RetryPolicy {
        let mut policy = policy.unwrap_or_default();
        let initial =
            proto::duration(policy.initial_interval.as_ref()).unwrap_or(Duration::from_secs(1));
        policy.initial_interval = Some(proto::proto_duration(initial));
        if policy.backoff_coefficient < 1.0 {
            policy.backoff_coefficient = 2.0;
        }
        if proto::duration(policy.maximum_interval.as_ref()).is_none() {
            policy.maximum_interval = Some(proto::proto_duration(initial * 100));
        }
        policy
    }

    fn schedule_activity(
        &mut self,
        sched: &mut Scheduler,
        completed_id: i64,
        a: proto::command::ScheduleActivityTaskCommandAttributes,
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
            retry_policy: Some(Self::retry_policy_defaults(a.retry_policy)),
            priority: a.priority,
            ..Default::default()
        };
        let eager = a.request_eager_execution;
        let scheduled_event_id = self.append(
            sched,
            Attributes::ActivityTaskScheduledEventAttributes(attrs.clone()),
        );
        let now = sched.now();
        if let Some(timeout) = schedule_to_close {
            sched.add_timer(
                now + timeout,
                TimerKind::ActivityScheduleToClose {
                    run_id: self.run_id.clone(),
                    scheduled_event_id,
                },
            );
        }
        let queue = attrs
            .task_queue
            .as_ref()
            .map(|q| q.name.clone())
            .unwrap_or_default();
        self.activities.insert(
            scheduled_event_id,
            Activity {
                attrs,
                scheduled_time: now,
                attempt_scheduled_time: now,
                attempt: 1,
                state: ActivityState::Scheduled,
                heartbeat_details: None,
                last_failure: None,
                cancel_requested_event_id: None,
            },
        );
        let task = ActivityTaskRef {
            run_id: self.run_id.clone(),
            scheduled_event_id,
            attempt: 1,
        };
        // Temporal runs an activity eagerly only on the workflow's own task queue: the
        // completing worker polls that one.
        if eager && queue == self.task_queue {
            self.eager.push(task);
        } else {
            sched.queues.push_activity(&self.namespace, &queue, task);
        }
    }

    /// Starts the activities this completion asked to run eagerly, for `identity`.
    fn start_eager_activities(
        &mut self,
        sched: &mut Scheduler,
        identity: &str,
    ) -> Vec<proto::service::PollActivityTaskQueueResponse> {
        let tasks = std::mem::take(&mut self.eager);
        if !self.is_open() {
            return Vec::new();
        }
        tasks
            .iter()
            .filter_map(|task| self.start_activity(sched, task, identity))
            .collect()
    }

    /// Hands an activity attempt to a poller.
    pub(crate) fn start_activity(
        &mut self,
        sched: &mut Scheduler,
        task: &ActivityTaskRef,
        identity: &str,
    ) -> Option<proto::service::PollActivityTaskQueueResponse> {
        let run_id = self.run_id.clone();
        let execution = self.execution();
        let workflow_type = self.started.workflow_type.clone();
        let namespace = self.namespace.clone();
        let activity = self.activities.get_mut(&task.scheduled_event_id)?;
        if activity.attempt != task.attempt || activity.state != ActivityState::Scheduled {
            return None;
        }
        let now = sched.now();
        activity.state = ActivityState::Started {
            identity: identity.to_owned(),
            started_time: now,
            last_heartbeat: now,
        };
        let attrs = &activity.attrs;
        if let Some(t) = proto::duration(attrs.start_to_close_timeout.as_ref()) {
            sched.add_timer(
                now + t,
                TimerKind::ActivityStartToClose {
                    run_id: run_id.clone(),
                    scheduled_event_id: task.scheduled_event_id,
                    attempt: task.attempt,
                },
            );
        }
        if let Some(t) = proto::duration(attrs.heartbeat_timeout.as_ref()) {
            sched.add_timer(
                now + t,
                TimerKind::ActivityHeartbeat {
                    run_id: run_id.clone(),
                    scheduled_event_id: task.scheduled_event_id,
                    attempt: task.attempt,
                },
            );
        }
        sched.changed = true;
        let token = Token::Activity {
            run: run_id,
            scheduled: task.scheduled_event_id,
            attempt: task.attempt,
        };
        Some(proto::service::PollActivityTaskQueueResponse {
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

    /// The started activity attempt a token names.
    pub(crate) fn started_activity(
        &mut self,
        scheduled: i64,
        attempt: i32,
    ) -> Result<&mut Activity, tonic::Status> {
        let open = self.is_open();
        match self.activities.get_mut(&scheduled) {
            Some(a)
                if open
                    && a.attempt == attempt
                    && matches!(a.state, ActivityState::Started { .. }) =>
            {
                Ok(a)
            }
            _ => Err(tonic::Status::not_found(format!(
                "activity task not found: workflow `{}` has no running attempt {attempt} of the activity scheduled at event {scheduled}",
                self.workflow_id
            ))),
        }
    }

    fn activity_started_event(activity: &Activity) -> Attributes {
        let identity = match &activity.state {
            ActivityState::Started { identity, .. } => identity.clone(),
            _ => String::new(),
        };
        Attributes::ActivityTaskStartedEventAttributes(ActivityTaskStartedEventAttributes {
            scheduled_event_id: 0,
            identity,
            request_id: uuid::Uuid::new_v4().to_string(),
            attempt: activity.attempt,
            last_failure: activity.last_failure.clone(),
            ..Default::default()
        })
    }

    /// Writes an activity's started event and its outcome, and forgets the activity.
    fn close_activity(&mut self, sched: &mut Scheduler, scheduled: i64, outcome: Attributes) {
        let Some(activity) = self.activities.remove(&scheduled) else {
            return;
        };
        if matches!(activity.state, ActivityState::Started { .. }) {
            let mut started = Self::activity_started_event(&activity);
            if let Attributes::ActivityTaskStartedEventAttributes(a) = &mut started {
                a.scheduled_event_id = scheduled;
            }
            // Written together so that PREVIOUS_EVENT resolves to the started event.
            if self
                .wft
                .as_ref()
                .is_some_and(|t| t.started_event_id.is_some())
            {
                self.buffered.push(started);
                self.buffered.push(outcome);
                sched.changed = true;
                return;
            }
            self.append(sched, started);
        }
        self.add_new_event(sched, outcome);
    }

    pub(crate) fn complete_activity(
        &mut self,
        sched: &mut Scheduler,
        scheduled: i64,
        result: Option<Payloads>,
        identity: String,
    ) {
        self.close_activity(
            sched,
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

    pub(crate) fn cancel_activity(
        &mut self,
        sched: &mut Scheduler,
        scheduled: i64,
        details: Option<Payloads>,
        identity: String,
    ) {
        let started = self
            .activities
            .get(&scheduled)
            .is_some_and(|a| matches!(a.state, ActivityState::Started { .. }));
        let latest = self
            .activities
            .get(&scheduled)
            .and_then(|a| a.cancel_requested_event_id)
            .unwrap_or_default();
        self.close_activity(
            sched,
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

    /// An attempt failed (or timed out): retry per the policy, or write the outcome.
    pub(crate) fn fail_activity_attempt(
        &mut self,
        sched: &mut Scheduler,
        scheduled: i64,
        failure: Failure,
        timeout: Option<TimeoutType>,
        identity: String,
    ) {
        let now = sched.now();
        let run_id = self.run_id.clone();
        let namespace = self.namespace.clone();
        let Some(activity) = self.activities.get_mut(&scheduled) else {
            return;
        };
        let policy = activity.attrs.retry_policy.clone().unwrap_or_default();
        let (retry, retry_state) = if timeout == Some(TimeoutType::ScheduleToClose) {
            (None, RetryState::Timeout)
        } else {
            let deadline = proto::duration(activity.attrs.schedule_to_close_timeout.as_ref())
                .map(|t| activity.scheduled_time + t);
            retry_decision(activity.attempt, &policy, &failure, deadline, now)
        };
        if let Some(backoff) = retry {
            activity.attempt += 1;
            activity.state = ActivityState::Backoff;
            activity.last_failure = Some(failure);
            activity.attempt_scheduled_time = now + backoff;
            let attempt = activity.attempt;
            if backoff.is_zero() {
                self.retry_activity(sched, scheduled, attempt);
                let _ = namespace;
            } else {
                sched.add_timer(
                    now + backoff,
                    TimerKind::ActivityRetry {
                        run_id,
                        scheduled_event_id: scheduled,
                        attempt,
                    },
                );
            }
            sched.changed = true;
            return;
        }
        let started = matches!(activity.state, ActivityState::Started { .. });
        let outcome = match timeout {
            None => {
                Attributes::ActivityTaskFailedEventAttributes(ActivityTaskFailedEventAttributes {
                    failure: Some(failure),
                    scheduled_event_id: scheduled,
                    started_event_id: if started { PREVIOUS_EVENT } else { 0 },
                    identity,
                    retry_state: retry_state as i32,
                    ..Default::default()
                })
            }
            Some(_) => Attributes::ActivityTaskTimedOutEventAttributes(
                ActivityTaskTimedOutEventAttributes {
                    failure: Some(failure),
                    scheduled_event_id: scheduled,
                    started_event_id: if started { PREVIOUS_EVENT } else { 0 },
                    retry_state: retry_state as i32,
                },
            ),
        };
        self.close_activity(sched, scheduled, outcome);
    }

    /// The backoff is over: queue the next attempt.
    pub(crate) fn retry_activity(&mut self, sched: &mut Scheduler, scheduled: i64, attempt: i32) {
        let Some(activity) = self.activities.get_mut(&scheduled) else {
            return;
        };
        if activity.attempt != attempt || activity.state != ActivityState::Backoff {
            return;
        }
        activity.state = ActivityState::Scheduled;
        let queue = activity
            .attrs
            .task_queue
            .as_ref()
            .map(|q| q.name.clone())
            .unwrap_or_default();
        sched.queues.push_activity(
            &self.namespace,
            &queue,
            ActivityTaskRef {
                run_id: self.run_id.clone(),
                scheduled_event_id: scheduled,
                attempt,
            },
        );
        sched.changed = true;
    }

    fn start_timer(
        &mut self,
        sched: &mut Scheduler,
        completed_id: i64,
        a: proto::command::StartTimerCommandAttributes,
    ) {
        let fire_in = proto::duration(a.start_to_fire_timeout.as_ref()).unwrap_or_default();
        let started_event_id = self.append(
            sched,
            Attributes::TimerStartedEventAttributes(TimerStartedEventAttributes {
                timer_id: a.timer_id.clone(),
                start_to_fire_timeout: a.start_to_fire_timeout,
                workflow_task_completed_event_id: completed_id,
            }),
        );
        self.timers.insert(a.timer_id.clone(), started_event_id);
        sched.add_timer(
            sched.now() + fire_in,
            TimerKind::UserTimer {
                run_id: self.run_id.clone(),
                timer_id: a.timer_id,
                started_event_id,
            },
        );
    }

    /// Completes the started workflow task with the worker's commands and messages.
    /// Returns what other runs must do.
    fn complete_workflow_task(
        &mut self,
        sched: &mut Scheduler,
        request: proto::service::RespondWorkflowTaskCompletedRequest,
        scheduled: i64,
    ) -> Result<Vec<SideEffect>, tonic::Status> {
        let (scheduled_event_id, started_event_id) = self.started_task(scheduled)?;
        let closes = request.commands.iter().any(|c| {
            matches!(
                c.attributes,
                Some(
                    Cmd::CompleteWorkflowExecutionCommandAttributes(_)
                        | Cmd::FailWorkflowExecutionCommandAttributes(_)
                        | Cmd::CancelWorkflowExecutionCommandAttributes(_)
                        | Cmd::ContinueAsNewWorkflowExecutionCommandAttributes(_)
                )
            )
        });
        let admitted_updates = self
            .updates
            .iter()
            .any(|u| u.state == UpdateState::Admitted);
        if closes && (!self.buffered.is_empty() || admitted_updates) {
            // New events arrived while the task ran: the workflow must see them before
            // it may close, as on Temporal.
            self.end_task_unsuccessfully(
                sched,
                Attributes::WorkflowTaskFailedEventAttributes(WorkflowTaskFailedEventAttributes {
                    scheduled_event_id,
                    started_event_id,
                    cause: WorkflowTaskFailedCause::UnhandledCommand as i32,
                    identity: request.identity,
                    ..Default::default()
                }),
                true,
            );
            return Ok(Vec::new());
        }
        if let Some(task) = self.wft.as_mut() {
            let events = std::mem::take(&mut task.transient_events);
            self.write_transient_events(events);
        }
        let completed_id = self.append(
            sched,
            Attributes::WorkflowTaskCompletedEventAttributes(
                WorkflowTaskCompletedEventAttributes {
                    scheduled_event_id,
                    started_event_id,
                    identity: request.identity.clone(),
                    binary_checksum: request.binary_checksum.clone(),
                    sdk_metadata: request.sdk_metadata.clone(),
                    metering_metadata: request.metering_metadata,
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
        let messages: HashMap<String, Message> = request
            .messages
            .iter()
            .map(|m| (m.id.clone(), m.clone()))
            .collect();
        let mut used_messages = Vec::new();
        let mut effects = Vec::new();
        for command in request.commands {
            if !self.is_open() {
                break;
            }
            if let Some(effect) =
                self.apply_command(sched, command, completed_id, &messages, &mut used_messages)
            {
                effects.push(effect);
            }
        }
        // Messages sent without a command (rejections).
        for message in &request.messages {
            if !used_messages.contains(&message.id) {
                self.apply_message(sched, message, completed_id);
            }
        }
        self.reject_unanswered_updates(sched, scheduled_event_id);
        let flushed = self.flush_buffered(sched);
        self.in_completion = false;
        let admitted = self
            .updates
            .iter()
            .any(|u| u.state == UpdateState::Admitted);
        if self.is_open()
            && (flushed || self.needs_task || admitted || request.force_create_new_workflow_task)
        {
            self.schedule_workflow_task(sched);
        }
        Ok(effects)
    }

    /// Updates given to the task scheduled at `scheduled` that the worker did not answer
    /// are rejected.
    fn reject_unanswered_updates(&mut self, sched: &mut Scheduler, scheduled: i64) {
        for update in &mut self.updates {
            if update.state == UpdateState::Delivered(scheduled) {
                update.state = UpdateState::Completed(Box::new(Outcome {
                    value: Some(outcome::Value::Failure(Failure {
                        message: "the workflow did not process the update".to_owned(),
                        ..Default::default()
                    })),
                }));
                sched.changed = true;
            }
        }
    }

    fn apply_message(&mut self, sched: &mut Scheduler, message: &Message, completed_id: i64) {
        let Some(body) = &message.body else { return };
        let type_name = body.type_url.rsplit('/').next().unwrap_or_default();
        let id = message.protocol_instance_id.clone();
        let Some(index) = self.updates.iter().position(|u| u.id == id) else {
            return;
        };
        match type_name {
            "temporal.api.update.v1.Acceptance" => {
                let Ok(acceptance) = update::Acceptance::decode(body.value.as_slice()) else {
                    return;
                };
                let event_id = self.append(
                    sched,
                    Attributes::WorkflowExecutionUpdateAcceptedEventAttributes(
                        WorkflowExecutionUpdateAcceptedEventAttributes {
                            protocol_instance_id: id,
                            accepted_request_message_id: acceptance.accepted_request_message_id,
                            accepted_request_sequencing_event_id: acceptance
                                .accepted_request_sequencing_event_id,
                            accepted_request: Some(
                                acceptance
                                    .accepted_request
                                    .unwrap_or_else(|| self.updates[index].request.clone()),
                            ),
                        },
                    ),
                );
                self.updates[index].state = UpdateState::Accepted(event_id);
            }
            "temporal.api.update.v1.Rejection" => {
                let Ok(rejection) = update::Rejection::decode(body.value.as_slice()) else {
                    return;
                };
                self.updates[index].state = UpdateState::Completed(Box::new(Outcome {
                    value: Some(outcome::Value::Failure(
                        rejection.failure.unwrap_or_default(),
                    )),
                }));
                sched.changed = true;
            }
            "temporal.api.update.v1.Response" => {
                let Ok(response) = update::Response::decode(body.value.as_slice()) else {
                    return;
                };
                let accepted_event_id = match self.updates[index].state {
                    UpdateState::Accepted(e) => e,
                    _ => 0,
                };
                let outcome = response.outcome.unwrap_or_default();
                self.append(
                    sched,
                    Attributes::WorkflowExecutionUpdateCompletedEventAttributes(
                        WorkflowExecutionUpdateCompletedEventAttributes {
                            meta: response.meta,
                            accepted_event_id,
                            outcome: Some(outcome.clone()),
                        },
                    ),
                );
                self.updates[index].state = UpdateState::Completed(Box::new(outcome));
            }
            _ => {}
        }
        let _ = completed_id;
    }

    fn apply_command(
        &mut self,
        sched: &mut Scheduler,
        command: Command,
        completed_id: i64,
        messages: &HashMap<String, Message>,
        used_messages: &mut Vec<String>,
    ) -> Option<SideEffect> {
        match command.attributes? {
            Cmd::ScheduleActivityTaskCommandAttributes(a) => {
                self.schedule_activity(sched, completed_id, a)
            }
            Cmd::StartTimerCommandAttributes(a) => self.start_timer(sched, completed_id, a),
            Cmd::CancelTimerCommandAttributes(a) => {
                if let Some(started_event_id) = self.timers.remove(&a.timer_id) {
                    self.append(
                        sched,
                        Attributes::TimerCanceledEventAttributes(TimerCanceledEventAttributes {
                            timer_id: a.timer_id,
                            started_event_id,
                            workflow_task_completed_event_id: completed_id,
                            identity: String::new(),
                        }),
                    );
                }
            }
            Cmd::RequestCancelActivityTaskCommandAttributes(a) => {
                let scheduled = a.scheduled_event_id;
                if !self.activities.contains_key(&scheduled) {
                    return None;
                }
                let requested = self.append(
                    sched,
                    Attributes::ActivityTaskCancelRequestedEventAttributes(
                        ActivityTaskCancelRequestedEventAttributes {
                            scheduled_event_id: scheduled,
                            workflow_task_completed_event_id: completed_id,
                        },
                    ),
                );
                let activity = self.activities.get_mut(&scheduled)?;
                activity.cancel_requested_event_id = Some(requested);
                if !matches!(activity.state, ActivityState::Started { .. }) {
                    // Not running anywhere: cancelled at once.
                    self.cancel_activity(sched, scheduled, None, String::new());
                }
                sched.changed = true;
            }
            Cmd::CompleteWorkflowExecutionCommandAttributes(a) => {
                let (next, _) = self.successor(sched, Closing::Completed(a.result.as_ref()));
                self.append(
                    sched,
                    Attributes::WorkflowExecutionCompletedEventAttributes(
                        WorkflowExecutionCompletedEventAttributes {
                            result: a.result,
                            workflow_task_completed_event_id: completed_id,
                            new_execution_run_id: successor_id(&next),
                        },
                    ),
                );
                self.new_run_id = successor_id(&next);
                self.close(sched, WorkflowExecutionStatus::Completed);
                return next.map(|start| SideEffect::ContinueAsNew(Box::new(start)));
            }
            Cmd::FailWorkflowExecutionCommandAttributes(a) => {
                let failure = a.failure.unwrap_or_default();
                let (next, retry_state) = self.successor(sched, Closing::Failed(&failure));
                self.append(
                    sched,
                    Attributes::WorkflowExecutionFailedEventAttributes(
                        WorkflowExecutionFailedEventAttributes {
                            failure: Some(failure),
                            retry_state: retry_state as i32,
                            workflow_task_completed_event_id: completed_id,
                            new_execution_run_id: successor_id(&next),
                        },
                    ),
                );
                self.new_run_id = successor_id(&next);
                self.close(sched, WorkflowExecutionStatus::Failed);
                return next.map(|start| SideEffect::ContinueAsNew(Box::new(start)));
            }
            Cmd::CancelWorkflowExecutionCommandAttributes(a) => {
                self.append(
                    sched,
                    Attributes::WorkflowExecutionCanceledEventAttributes(
                        WorkflowExecutionCanceledEventAttributes {
                            workflow_task_completed_event_id: completed_id,
                            details: a.details,
                        },
                    ),
                );
                self.close(sched, WorkflowExecutionStatus::Canceled);
            }
            Cmd::ContinueAsNewWorkflowExecutionCommandAttributes(a) => {
                let new_run_id = uuid::Uuid::new_v4().to_string();
                let workflow_type = a
                    .workflow_type
                    .filter(|t| !t.name.is_empty())
                    .or_else(|| self.started.workflow_type.clone());
                let queue = a
                    .task_queue
                    .filter(|q| !q.name.is_empty())
                    .or_else(|| task_queue(&self.task_queue));
                let run_timeout = a.workflow_run_timeout.or(self.started.workflow_run_timeout);
                let task_timeout = a
                    .workflow_task_timeout
                    .or(self.started.workflow_task_timeout);
                self.append(
                    sched,
                    Attributes::WorkflowExecutionContinuedAsNewEventAttributes(
                        WorkflowExecutionContinuedAsNewEventAttributes {
                            new_execution_run_id: new_run_id.clone(),
                            workflow_type: workflow_type.clone(),
                            task_queue: queue.clone(),
                            input: a.input.clone(),
                            workflow_run_timeout: run_timeout,
                            workflow_task_timeout: task_timeout,
                            workflow_task_completed_event_id: completed_id,
                            backoff_start_interval: a.backoff_start_interval,
                            initiator: if a.initiator == 0 {
                                ContinueAsNewInitiator::Workflow as i32
                            } else {
                                a.initiator
                            },
                            failure: a.failure.clone(),
                            last_completion_result: a.last_completion_result.clone(),
                            header: a.header.clone(),
                            memo: a.memo.clone(),
                            search_attributes: a.search_attributes.clone(),
                            ..Default::default()
                        },
                    ),
                );
                self.new_run_id = new_run_id.clone();
                self.close(sched, WorkflowExecutionStatus::ContinuedAsNew);
                let started = WorkflowExecutionStartedEventAttributes {
                    workflow_type,
                    parent_workflow_namespace: self.started.parent_workflow_namespace.clone(),
                    parent_workflow_execution: self.started.parent_workflow_execution.clone(),
                    parent_initiated_event_id: self.started.parent_initiated_event_id,
                    task_queue: queue,
                    input: a.input,
                    workflow_execution_timeout: self.started.workflow_execution_timeout,
                    workflow_run_timeout: run_timeout,
                    workflow_task_timeout: task_timeout,
                    continued_execution_run_id: self.run_id.clone(),
                    initiator: ContinueAsNewInitiator::Workflow as i32,
                    continued_failure: a.failure,
                    last_completion_result: a.last_completion_result,
                    original_execution_run_id: new_run_id.clone(),
                    identity: request_identity(&self.started),
                    first_execution_run_id: self.started.first_execution_run_id.clone(),
                    retry_policy: a.retry_policy.or(self.started.retry_policy.clone()),
                    attempt: 1,
                    header: a.header,
                    memo: a.memo.or(self.started.memo.clone()),
                    search_attributes: a
                        .search_attributes
                        .or(self.started.search_attributes.clone()),
                    workflow_id: self.workflow_id.clone(),
                    ..Default::default()
                };
                return Some(SideEffect::ContinueAsNew(Box::new(StartRun {
                    namespace: self.namespace.clone(),
                    workflow_id: self.workflow_id.clone(),
                    request_id: new_run_id,
                    attrs: started,
                    parent: self.parent.clone(),
                })));
            }
            Cmd::RecordMarkerCommandAttributes(a) => {
                self.append(
                    sched,
                    Attributes::MarkerRecordedEventAttributes(MarkerRecordedEventAttributes {
                        marker_name: a.marker_name,
                        details: a.details,
                        workflow_task_completed_event_id: completed_id,
                        header: a.header,
                        failure: a.failure,
                    }),
                );
            }
            Cmd::StartChildWorkflowExecutionCommandAttributes(a) => {
                let attrs = StartChildWorkflowExecutionInitiatedEventAttributes {
                    namespace: if a.namespace.is_empty() {
                        self.namespace.clone()
                    } else {
                        a.namespace
                    },
                    workflow_id: a.workflow_id,
                    workflow_type: a.workflow_type,
                    task_queue: a
                        .task_queue
                        .filter(|q| !q.name.is_empty())
                        .or_else(|| task_queue(&self.task_queue)),
                    input: a.input,
                    workflow_execution_timeout: a.workflow_execution_timeout,
                    workflow_run_timeout: a.workflow_run_timeout,
                    workflow_task_timeout: a.workflow_task_timeout,
                    parent_close_policy: a.parent_close_policy,
                    control: a.control,
                    workflow_task_completed_event_id: completed_id,
                    workflow_id_reuse_policy: a.workflow_id_reuse_policy,
                    retry_policy: a.retry_policy,
                    cron_schedule: a.cron_schedule,
                    header: a.header,
                    memo: a.memo,
                    search_attributes: a.search_attributes,
                    priority: a.priority,
                    ..Default::default()
                };
                let initiated = self.append(
                    sched,
                    Attributes::StartChildWorkflowExecutionInitiatedEventAttributes(attrs.clone()),
                );
                return Some(SideEffect::StartChild(initiated, Box::new(attrs)));
            }
            Cmd::SignalExternalWorkflowExecutionCommandAttributes(a) => {
                let attrs = SignalExternalWorkflowExecutionInitiatedEventAttributes {
                    workflow_task_completed_event_id: completed_id,
                    namespace: if a.namespace.is_empty() {
                        self.namespace.clone()
                    } else {
                        a.namespace
                    },
                    workflow_execution: a.execution,
                    signal_name: a.signal_name,
                    input: a.input,
                    control: a.control,
                    child_workflow_only: a.child_workflow_only,
                    header: a.header,
                    ..Default::default()
                };
                let initiated = self.append(
                    sched,
                    Attributes::SignalExternalWorkflowExecutionInitiatedEventAttributes(
                        attrs.clone(),
                    ),
                );
                return Some(SideEffect::Signal(initiated, attrs));
            }
            Cmd::RequestCancelExternalWorkflowExecutionCommandAttributes(a) => {
                let attrs = RequestCancelExternalWorkflowExecutionInitiatedEventAttributes {
                    workflow_task_completed_event_id: completed_id,
                    namespace: if a.namespace.is_empty() {
                        self.namespace.clone()
                    } else {
                        a.namespace
                    },
                    workflow_execution: Some(WorkflowExecution {
                        workflow_id: a.workflow_id,
                        run_id: a.run_id,
                    }),
                    control: a.control,
                    child_workflow_only: a.child_workflow_only,
                    reason: a.reason,
                    ..Default::default()
                };
                let initiated = self.append(
                    sched,
                    Attributes::RequestCancelExternalWorkflowExecutionInitiatedEventAttributes(
                        attrs.clone(),
                    ),
                );
                return Some(SideEffect::Cancel(initiated, attrs));
            }
            Cmd::UpsertWorkflowSearchAttributesCommandAttributes(a) => {
                let mut merged = self.started.search_attributes.clone().unwrap_or_default();
                if let Some(sa) = &a.search_attributes {
                    merged.indexed_fields.extend(
                        sa.indexed_fields
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone())),
                    );
                }
                self.started.search_attributes = Some(merged);
                self.append(
                    sched,
                    Attributes::UpsertWorkflowSearchAttributesEventAttributes(
                        UpsertWorkflowSearchAttributesEventAttributes {
                            workflow_task_completed_event_id: completed_id,
                            search_attributes: a.search_attributes,
                        },
                    ),
                );
            }
            Cmd::ModifyWorkflowPropertiesCommandAttributes(a) => {
                let mut merged = self.started.memo.clone().unwrap_or_default();
                if let Some(memo) = &a.upserted_memo {
                    merged
                        .fields
                        .extend(memo.fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                self.started.memo = Some(merged);
                self.append(
                    sched,
                    Attributes::WorkflowPropertiesModifiedEventAttributes(
                        WorkflowPropertiesModifiedEventAttributes {
                            workflow_task_completed_event_id: completed_id,
                            upserted_memo: a.upserted_memo,
                        },
                    ),
                );
            }
            Cmd::ProtocolMessageCommandAttributes(a) => {
                if let Some(message) = messages.get(&a.message_id) {
                    used_messages.push(a.message_id.clone());
                    self.apply_message(sched, message, completed_id);
                }
            }
            _ => {}
        }
        None
    }

    /// A signal from a client or another workflow.
    pub(crate) fn signal(
        &mut self,
        sched: &mut Scheduler,
        attrs: WorkflowExecutionSignaledEventAttributes,
    ) {
        self.add_new_event(
            sched,
            Attributes::WorkflowExecutionSignaledEventAttributes(attrs),
        );
    }

    pub(crate) fn request_cancel(
        &mut self,
        sched: &mut Scheduler,
        attrs: WorkflowExecutionCancelRequestedEventAttributes,
    ) {
        self.add_new_event(
            sched,
            Attributes::WorkflowExecutionCancelRequestedEventAttributes(attrs),
        );
    }

    /// Writes a close event that no workflow code asked for (termination, timeout).
    fn close_from_outside(
        &mut self,
        sched: &mut Scheduler,
        attrs: Attributes,
        status: WorkflowExecutionStatus,
    ) {
        self.flush_buffered(sched);
        self.append(sched, attrs);
        self.close(sched, status);
    }

    /// The run that follows this one as it closes, if any: a retry of a failed or timed-out
    /// run within its retry policy, else the next run of its cron schedule. Also the retry
    /// state for the close event.
    fn successor(&self, sched: &Scheduler, closing: Closing<'_>) -> (Option<StartRun>, RetryState) {
        let now = sched.now();
        let mut retry_state = RetryState::RetryPolicyNotSet;
        let failure = match closing {
            Closing::Completed(_) => None,
            Closing::Failed(failure) => Some(failure.clone()),
            Closing::TimedOut => Some(Failure {
                message: "workflow run timed out".to_owned(),
                failure_info: Some(FailureInfo::TimeoutFailureInfo(
                    proto::failure::TimeoutFailureInfo {
                        timeout_type: TimeoutType::StartToClose as i32,
                        ..Default::default()
                    },
                )),
                ..Default::default()
            }),
        };
        if let (Some(failure), Some(policy)) = (&failure, &self.started.retry_policy) {
            let policy = Self::retry_policy_defaults(Some(policy.clone()));
            let (backoff, state) =
                retry_decision(self.started.attempt.max(1), &policy, failure, None, now);
            retry_state = state;
            if let Some(backoff) = backoff {
                let mut attrs = self.next_run_attributes(backoff, ContinueAsNewInitiator::Retry);
                attrs.attempt = self.started.attempt.max(1) + 1;
                attrs.continued_failure = Some(failure.clone());
                attrs.last_completion_result = self.started.last_completion_result.clone();
                return (Some(self.next_run(attrs)), retry_state);
            }
        }
        if matches!(closing, Closing::TimedOut) && retry_state == RetryState::RetryPolicyNotSet {
            retry_state = RetryState::Timeout;
        }
        let Some(next) = cron_next(&self.started.cron_schedule, now) else {
            return (None, retry_state);
        };
        let mut attrs = self.next_run_attributes(
            next.duration_since(now).unwrap_or_default(),
            ContinueAsNewInitiator::CronSchedule,
        );
        match closing {
            Closing::Completed(result) => attrs.last_completion_result = result.cloned(),
            _ => {
                attrs.continued_failure = failure;
                attrs.last_completion_result = self.started.last_completion_result.clone();
            }
        }
        (Some(self.next_run(attrs)), retry_state)
    }

    /// The started attributes of a run that continues this one after `backoff`.
    fn next_run_attributes(
        &self,
        backoff: Duration,
        initiator: ContinueAsNewInitiator,
    ) -> WorkflowExecutionStartedEventAttributes {
        WorkflowExecutionStartedEventAttributes {
            continued_execution_run_id: self.run_id.clone(),
            original_execution_run_id: uuid::Uuid::new_v4().to_string(),
            initiator: initiator as i32,
            first_workflow_task_backoff: Some(proto::proto_duration(backoff)),
            attempt: 1,
            continued_failure: None,
            last_completion_result: None,
            parent_initiated_event_version: 0,
            prev_auto_reset_points: None,
            ..self.started.clone()
        }
    }

    fn next_run(&self, attrs: WorkflowExecutionStartedEventAttributes) -> StartRun {
        StartRun {
            namespace: self.namespace.clone(),
            workflow_id: self.workflow_id.clone(),
            request_id: attrs.original_execution_run_id.clone(),
            attrs,
            parent: self.parent.clone(),
        }
    }

    /// Admits an update (or finds the one with the same id).
    pub(crate) fn admit_update(&mut self, sched: &mut Scheduler, request: update::Request) {
        let id = request
            .meta
            .as_ref()
            .map(|m| m.update_id.clone())
            .unwrap_or_default();
        if self.updates.iter().any(|u| u.id == id) {
            return;
        }
        self.updates.push(Update {
            id,
            request,
            state: UpdateState::Admitted,
        });
        sched.changed = true;
        let idle = self.wft.is_none() && self.buffered.is_empty();
        self.schedule_workflow_task(sched);
        if idle {
            if let Some(task) = &mut self.wft {
                task.speculative = true;
            }
        }
    }

    /// Completes a speculative workflow task whose worker rejected every update and did
    /// nothing else by dropping its two events, as Temporal does; answers the started event
    /// id the worker must reset to. `None` (nothing done) for any other completion.
    fn discard_speculative_task(
        &mut self,
        sched: &mut Scheduler,
        request: &proto::service::RespondWorkflowTaskCompletedRequest,
        scheduled: i64,
    ) -> Option<i64> {
        let task = self.wft.as_ref()?;
        let started = task.started_event_id?;
        let only_its_events = task.scheduled_event_id == scheduled
            && started == scheduled + 1
            && self.events.len() as i64 == started;
        let only_rejections = !request.messages.is_empty()
            && request.messages.iter().all(|m| {
                m.body
                    .as_ref()
                    .is_some_and(|b| b.type_url.ends_with("temporal.api.update.v1.Rejection"))
            });
        let waiting = self
            .updates
            .iter()
            .any(|u| u.state == UpdateState::Admitted);
        if !task.speculative
            || !only_its_events
            || !only_rejections
            || waiting
            || !self.buffered.is_empty()
            || !request.commands.is_empty()
            || request.force_create_new_workflow_task
        {
            return None;
        }
        for message in &request.messages {
            self.apply_message(sched, message, 0);
        }
        self.reject_unanswered_updates(sched, scheduled);
        self.events.truncate((scheduled - 1) as usize);
        self.wft = None;
        sched.changed = true;
        Some(self.previous_started_event_id)
    }
}

fn request_identity(started: &WorkflowExecutionStartedEventAttributes) -> String {
    started.identity.clone()
}

/// Whether and when to retry a failed activity attempt.
/// Whether attempt `attempt`'s failure is retried under `policy`, and after what backoff;
/// no retry may begin at or after `deadline`.
fn retry_decision(
    attempt: i32,
    policy: &RetryPolicy,
    failure: &Failure,
    deadline: Option<SystemTime>,
    now: SystemTime,
) -> (Option<Duration>, RetryState) {
    let mut next_delay = None;
    if let Some(FailureInfo::ApplicationFailureInfo(info)) = &failure.failure_info {
        if info.non_retryable || policy.non_retryable_error_types.contains(&info.r#type) {
            return (None, RetryState::NonRetryableFailure);
        }
        next_delay = proto::duration(info.next_retry_delay.as_ref());
    }
    if policy.maximum_attempts > 0 && attempt >= policy.maximum_attempts {
        return (None, RetryState::MaximumAttemptsReached);
    }
    let initial =
        proto::duration(policy.initial_interval.as_ref()).unwrap_or(Duration::from_secs(1));
    let mut backoff = initial.mul_f64(
        policy
            .backoff_coefficient
            .max(1.0)
            .powi(attempt.saturating_sub(1)),
    );
    if let Some(max) = proto::duration(policy.maximum_interval.as_ref()) {
        backoff = backoff.min(max);
    }
    let backoff = next_delay.unwrap_or(backoff);
    if deadline.is_some_and(|d| now + backoff >= d) {
        return (None, RetryState::Timeout);
    }
    (Some(backoff), RetryState::InProgress)
}

impl State {
    /// Starts a run and its first workflow task.
    pub(crate) fn start_run(&mut self, start: StartRun) -> String {
        let run_id = if start.attrs.original_execution_run_id.is_empty() {
            uuid::Uuid::new_v4().to_string()
        } else {
            start.attrs.original_execution_run_id.clone()
        };
        let mut attrs = start.attrs;
        attrs.original_execution_run_id = run_id.clone();
        if attrs.first_execution_run_id.is_empty() {
            attrs.first_execution_run_id = run_id.clone();
        }
        if attrs.attempt == 0 {
            attrs.attempt = 1;
        }
        attrs.workflow_id = start.workflow_id.clone();
        let task_timeout =
            proto::duration(attrs.workflow_task_timeout.as_ref()).unwrap_or(DEFAULT_TASK_TIMEOUT);
        attrs.workflow_task_timeout = Some(proto::proto_duration(task_timeout));
        let queue = attrs
            .task_queue
            .as_ref()
            .map(|q| q.name.clone())
            .unwrap_or_default();
        attrs.task_queue = task_queue(&queue);
        let now = self.sched.now();
        let run_timeout = proto::duration(attrs.workflow_run_timeout.as_ref())
            .or(proto::duration(attrs.workflow_execution_timeout.as_ref()));
        let mut run = Run {
            namespace: start.namespace.clone(),
            workflow_id: start.workflow_id.clone(),
            run_id: run_id.clone(),
            workflow_type: attrs
                .workflow_type
                .as_ref()
                .map(|t| t.name.clone())
                .unwrap_or_default(),
            task_queue: queue,
            started: attrs.clone(),
            request_id: start.request_id,
            status: WorkflowExecutionStatus::Running,
            events: EventLog::default(),
            buffered: Vec::new(),
            wft: None,
            previous_started_event_id: 0,
            sticky: None,
            task_timeout,
            start_time: now,
            close_time: None,
            activities: BTreeMap::new(),
            timers: HashMap::new(),
            children: BTreeMap::new(),
            updates: Vec::new(),
            parent: start.parent,
            new_run_id: String::new(),
            backoff_until: None,
            in_completion: false,
            needs_task: false,
            eager: Vec::new(),
        };
        // The first run of a cron workflow waits for the schedule's first time.
        if attrs.first_workflow_task_backoff.is_none()
            && attrs.continued_execution_run_id.is_empty()
        {
            if let Some(first) = cron_next(&attrs.cron_schedule, now) {
                attrs.first_workflow_task_backoff = Some(proto::proto_duration(
                    first.duration_since(now).unwrap_or_default(),
                ));
            }
        }
        let backoff =
            proto::duration(attrs.first_workflow_task_backoff.as_ref()).filter(|b| !b.is_zero());
        run.append(
            &mut self.sched,
            Attributes::WorkflowExecutionStartedEventAttributes(attrs),
        );
        if let Some(backoff) = backoff {
            run.backoff_until = Some(now + backoff);
            self.sched.add_timer(
                now + backoff,
                TimerKind::FirstWorkflowTask {
                    run_id: run_id.clone(),
                },
            );
        }
        run.schedule_workflow_task(&mut self.sched);
        if let Some(timeout) = run_timeout {
            // The run's time starts when it may first run.
            self.sched.add_timer(
                now + backoff.unwrap_or_default() + timeout,
                TimerKind::RunTimeout {
                    run_id: run_id.clone(),
                },
            );
        }
        self.current
            .insert((start.namespace, start.workflow_id), run_id.clone());
        self.started.push(run_id.clone());
        self.runs.insert(run_id.clone(), run);
        run_id
    }

    pub(crate) fn resolve_run_id(
        &self,
        namespace: &str,
        execution: Option<&WorkflowExecution>,
    ) -> Result<String, tonic::Status> {
        let execution = execution.cloned().unwrap_or_default();
        if !execution.run_id.is_empty() {
            return match self.runs.get(&execution.run_id) {
                Some(run)
                    if run.namespace == namespace
                        && (execution.workflow_id.is_empty()
                            || run.workflow_id == execution.workflow_id) =>
                {
                    Ok(execution.run_id)
                }
                _ => Err(tonic::Status::not_found(format!(
                    "workflow execution not found: `{}` run `{}` in namespace `{namespace}`",
                    execution.workflow_id, execution.run_id
                ))),
            };
        }
        self.current
            .get(&(namespace.to_owned(), execution.workflow_id.clone()))
            .cloned()
            .ok_or_else(|| {
                tonic::Status::not_found(format!(
                    "workflow execution not found: `{}` in namespace `{namespace}`",
                    execution.workflow_id
                ))
            })
    }

    fn run_mut(&mut self, run_id: &str) -> Option<(&mut Run, &mut Scheduler)> {
        let run = self.runs.get_mut(run_id)?;
        Some((run, &mut self.sched))
    }

    pub(crate) fn complete_workflow_task(
        &mut self,
        run_id: &str,
        scheduled: i64,
        request: proto::service::RespondWorkflowTaskCompletedRequest,
    ) -> Result<proto::service::RespondWorkflowTaskCompletedResponse, tonic::Status> {
        let (run, sched) = self
            .run_mut(run_id)
            .ok_or_else(|| tonic::Status::not_found("workflow run not found"))?;
        run.started_task(scheduled)?;
        if let Some(reset) = run.discard_speculative_task(sched, &request, scheduled) {
            return Ok(proto::service::RespondWorkflowTaskCompletedResponse {
                reset_history_event_id: reset,
                ..Default::default()
            });
        }
        let identity = request.identity.clone();
        let effects = run.complete_workflow_task(sched, request, scheduled)?;
        let activity_tasks = run.start_eager_activities(sched, &identity);
        let closed = !run.is_open();
        for effect in effects {
            self.apply_side_effect(run_id, effect);
        }
        if closed {
            self.after_close(run_id);
        }
        Ok(proto::service::RespondWorkflowTaskCompletedResponse {
            activity_tasks,
            ..Default::default()
        })
    }

    fn apply_side_effect(&mut self, run_id: &str, effect: SideEffect) {
        let (namespace, parent_exec) = {
            let run = &self.runs[run_id];
            (run.namespace.clone(), run.execution())
        };
        match effect {
            SideEffect::ContinueAsNew(start) => {
                self.start_run(*start);
            }
            SideEffect::StartChild(initiated, attrs) => {
                let open = self
                    .current
                    .get(&(attrs.namespace.clone(), attrs.workflow_id.clone()))
                    .is_some_and(|id| self.runs[id].is_open());
                if open {
                    let (run, sched) = self.run_mut(run_id).expect("the parent exists");
                    run.add_new_event(
                        sched,
                        Attributes::StartChildWorkflowExecutionFailedEventAttributes(
                            StartChildWorkflowExecutionFailedEventAttributes {
                                namespace: attrs.namespace,
                                workflow_id: attrs.workflow_id,
                                workflow_type: attrs.workflow_type,
                                cause: proto::enums::StartChildWorkflowExecutionFailedCause::WorkflowAlreadyExists as i32,
                                control: attrs.control,
                                initiated_event_id: initiated,
                                workflow_task_completed_event_id: attrs
                                    .workflow_task_completed_event_id,
                                ..Default::default()
                            },
                        ),
                    );
                    return;
                }
                let child_run = self.start_run(StartRun {
                    namespace: attrs.namespace.clone(),
                    workflow_id: attrs.workflow_id.clone(),
                    request_id: uuid::Uuid::new_v4().to_string(),
                    attrs: WorkflowExecutionStartedEventAttributes {
                        workflow_type: attrs.workflow_type.clone(),
                        parent_workflow_namespace: namespace.clone(),
                        parent_workflow_execution: Some(parent_exec.clone()),
                        parent_initiated_event_id: initiated,
                        task_queue: attrs.task_queue.clone(),
                        input: attrs.input.clone(),
                        workflow_execution_timeout: attrs.workflow_execution_timeout,
                        workflow_run_timeout: attrs.workflow_run_timeout,
                        workflow_task_timeout: attrs.workflow_task_timeout,
                        retry_policy: attrs.retry_policy.clone(),
                        cron_schedule: attrs.cron_schedule.clone(),
                        header: attrs.header.clone(),
                        memo: attrs.memo.clone(),
                        search_attributes: attrs.search_attributes.clone(),
                        root_workflow_execution: Some(parent_exec.clone()),
                        ..Default::default()
                    },
                    parent: Some(ParentRef {
                        namespace: namespace.clone(),
                        execution: parent_exec,
                        initiated_event_id: initiated,
                    }),
                });
                let execution = WorkflowExecution {
                    workflow_id: attrs.workflow_id.clone(),
                    run_id: child_run,
                };
                let (run, sched) = self.run_mut(run_id).expect("the parent exists");
                run.add_new_event(
                    sched,
                    Attributes::ChildWorkflowExecutionStartedEventAttributes(
                        ChildWorkflowExecutionStartedEventAttributes {
                            namespace: attrs.namespace.clone(),
                            initiated_event_id: initiated,
                            workflow_execution: Some(execution.clone()),
                            workflow_type: attrs.workflow_type.clone(),
                            header: attrs.header,
                            ..Default::default()
                        },
                    ),
                );
                let started_event_id = run.events.len() as i64;
                let started_event_id = if run.buffered.is_empty() {
                    started_event_id
                } else {
                    0
                };
                run.children.insert(
                    initiated,
                    Child {
                        execution,
                        workflow_type: attrs.workflow_type.map(|t| t.name).unwrap_or_default(),
                        namespace: attrs.namespace,
                        started_event_id,
                        parent_close_policy: attrs.parent_close_policy,
                    },
                );
            }
            SideEffect::Signal(initiated, attrs) => {
                let target = self
                    .resolve_run_id(&attrs.namespace, attrs.workflow_execution.as_ref())
                    .ok()
                    .filter(|id| self.runs[id].is_open());
                let outcome = match target {
                    Some(target) => {
                        let (t, sched) = self.run_mut(&target).expect("the target exists");
                        t.signal(
                            sched,
                            WorkflowExecutionSignaledEventAttributes {
                                signal_name: attrs.signal_name.clone(),
                                input: attrs.input.clone(),
                                identity: format!("workflow {}", parent_exec.workflow_id),
                                header: attrs.header.clone(),
                                external_workflow_execution: Some(parent_exec.clone()),
                                ..Default::default()
                            },
                        );
                        Attributes::ExternalWorkflowExecutionSignaledEventAttributes(
                            ExternalWorkflowExecutionSignaledEventAttributes {
                                initiated_event_id: initiated,
                                namespace: attrs.namespace,
                                workflow_execution: attrs.workflow_execution,
                                control: attrs.control,
                                ..Default::default()
                            },
                        )
                    }
                    None => Attributes::SignalExternalWorkflowExecutionFailedEventAttributes(
                        SignalExternalWorkflowExecutionFailedEventAttributes {
                            cause: proto::enums::SignalExternalWorkflowExecutionFailedCause::ExternalWorkflowExecutionNotFound as i32,
                            workflow_task_completed_event_id: attrs.workflow_task_completed_event_id,
                            namespace: attrs.namespace,
                            workflow_execution: attrs.workflow_execution,
                            initiated_event_id: initiated,
                            control: attrs.control,
                            ..Default::default()
                        },
                    ),
                };
                if let Some((run, sched)) = self.run_mut(run_id) {
                    run.add_new_event(sched, outcome);
                }
            }
            SideEffect::Cancel(initiated, attrs) => {
                let target = self
                    .resolve_run_id(&attrs.namespace, attrs.workflow_execution.as_ref())
                    .ok()
                    .filter(|id| self.runs[id].is_open());
                let outcome = match target {
                    Some(target) => {
                        let (t, sched) = self.run_mut(&target).expect("the target exists");
                        t.request_cancel(
                            sched,
                            WorkflowExecutionCancelRequestedEventAttributes {
                                cause: attrs.reason.clone(),
                                external_initiated_event_id: initiated,
                                external_workflow_execution: Some(parent_exec.clone()),
                                identity: format!("workflow {}", parent_exec.workflow_id),
                            },
                        );
                        Attributes::ExternalWorkflowExecutionCancelRequestedEventAttributes(
                            ExternalWorkflowExecutionCancelRequestedEventAttributes {
                                initiated_event_id: initiated,
                                namespace: attrs.namespace,
                                workflow_execution: attrs.workflow_execution,
                                ..Default::default()
                            },
                        )
                    }
                    None => Attributes::RequestCancelExternalWorkflowExecutionFailedEventAttributes(
                        RequestCancelExternalWorkflowExecutionFailedEventAttributes {
                            cause: proto::enums::CancelExternalWorkflowExecutionFailedCause::ExternalWorkflowExecutionNotFound as i32,
                            workflow_task_completed_event_id: attrs.workflow_task_completed_event_id,
                            namespace: attrs.namespace,
                            workflow_execution: attrs.workflow_execution,
                            initiated_event_id: initiated,
                            control: attrs.control,
                            ..Default::default()
                        },
                    ),
                };
                if let Some((run, sched)) = self.run_mut(run_id) {
                    run.add_new_event(sched, outcome);
                }
            }
        }
    }

    /// After a run closed: tell its parent, and apply the parent close policy to its
    /// children.
    fn after_close(&mut self, run_id: &str) {
        let Some(run) = self.runs.get(run_id) else {
            return;
        };
        let children: Vec<Child> = run.children.values().cloned().collect();
        let status = run.status;
        let followed_by = run.new_run_id.clone();
        let parent = run.parent.clone();
        let close = run.events.last().and_then(|e| e.attributes);
        let execution = run.execution();
        let workflow_type = run.started.workflow_type.clone();
        let namespace = run.namespace.clone();
        for child in children {
            let policy = ParentClosePolicy::try_from(child.parent_close_policy)
                .unwrap_or(ParentClosePolicy::Terminate);
            let Ok(child_run) = self.resolve_run_id(
                &child.namespace,
                Some(&WorkflowExecution {
                    workflow_id: child.execution.workflow_id.clone(),
                    run_id: String::new(),
                }),
            ) else {
                continue;
            };
            match policy {
                ParentClosePolicy::Abandon => {}
                ParentClosePolicy::RequestCancel => {
                    if let Some((c, sched)) = self.run_mut(&child_run) {
                        if c.is_open() {
                            c.request_cancel(
                                sched,
                                WorkflowExecutionCancelRequestedEventAttributes {
                                    cause: "parent closed".to_owned(),
                                    identity: "capstan-engine".to_owned(),
                                    ..Default::default()
                                },
                            );
                        }
                    }
                }
                _ => {
                    self.terminate(&child_run, "parent closed", "capstan-engine");
                }
            }
        }
        self.schedule_run_closed(run_id);
        // A run continued by another (continue-as-new, retry, cron) is not the end of
        // the workflow: the parent hears of the last run only.
        if status == WorkflowExecutionStatus::ContinuedAsNew || !followed_by.is_empty() {
            return;
        }
        let Some(parent) = parent else { return };
        let Ok(parent_run) = self.resolve_run_id(&parent.namespace, Some(&parent.execution)) else {
            return;
        };
        let Some((p, sched)) = self.run_mut(&parent_run) else {
            return;
        };
        if !p.is_open() {
            return;
        }
        let Some(child) = p.children.remove(&parent.initiated_event_id) else {
            return;
        };
        let initiated_event_id = parent.initiated_event_id;
        let started_event_id = child.started_event_id;
        let event = match close {
            Some(Attributes::WorkflowExecutionCompletedEventAttributes(a)) => {
                Attributes::ChildWorkflowExecutionCompletedEventAttributes(
                    ChildWorkflowExecutionCompletedEventAttributes {
                        result: a.result,
                        namespace,
                        workflow_execution: Some(execution),
                        workflow_type,
                        initiated_event_id,
                        started_event_id,
                        ..Default::default()
                    },
                )
            }
            Some(Attributes::WorkflowExecutionFailedEventAttributes(a)) => {
                Attributes::ChildWorkflowExecutionFailedEventAttributes(
                    ChildWorkflowExecutionFailedEventAttributes {
                        failure: a.failure,
                        namespace,
                        workflow_execution: Some(execution),
                        workflow_type,
                        initiated_event_id,
                        started_event_id,
                        retry_state: a.retry_state,
                        ..Default::default()
                    },
                )
            }
            Some(Attributes::WorkflowExecutionCanceledEventAttributes(a)) => {
                Attributes::ChildWorkflowExecutionCanceledEventAttributes(
                    ChildWorkflowExecutionCanceledEventAttributes {
                        details: a.details,
                        namespace,
                        workflow_execution: Some(execution),
                        workflow_type,
                        initiated_event_id,
                        started_event_id,
                        ..Default::default()
                    },
                )
            }
            Some(Attributes::WorkflowExecutionTimedOutEventAttributes(a)) => {
                Attributes::ChildWorkflowExecutionTimedOutEventAttributes(
                    ChildWorkflowExecutionTimedOutEventAttributes {
                        namespace,
                        workflow_execution: Some(execution),
                        workflow_type,
                        initiated_event_id,
                        started_event_id,
                        retry_state: a.retry_state,
                        ..Default::default()
                    },
                )
            }
            _ => Attributes::ChildWorkflowExecutionTerminatedEventAttributes(
                ChildWorkflowExecutionTerminatedEventAttributes {
                    namespace,
                    workflow_execution: Some(execution),
                    workflow_type,
                    initiated_event_id,
                    started_event_id,
                    ..Default::default()
                },
            ),
        };
        p.add_new_event(sched, event);
    }

    /// Forgets a closed run: its history, its listing, and (if it is the latest run of
    /// its workflow id) the id's current run.
    pub(crate) fn delete_run(&mut self, run_id: &str) {
        let Some(run) = self.runs.remove(run_id) else {
            return;
        };
        let key = (run.namespace, run.workflow_id);
        if self.current.get(&key).is_some_and(|id| id == run_id) {
            self.current.remove(&key);
        }
        self.started.retain(|id| id != run_id);
        self.sched.changed = true;
    }

    pub(crate) fn terminate(&mut self, run_id: &str, reason: &str, identity: &str) {
        let Some((run, sched)) = self.run_mut(run_id) else {
            return;
        };
        if !run.is_open() {
            return;
        }
        run.close_from_outside(
            sched,
            Attributes::WorkflowExecutionTerminatedEventAttributes(
                WorkflowExecutionTerminatedEventAttributes {
                    reason: reason.to_owned(),
                    details: None,
                    identity: identity.to_owned(),
                },
            ),
            WorkflowExecutionStatus::Terminated,
        );
        self.after_close(run_id);
    }

    pub(crate) fn time_out_run(&mut self, run_id: &str) {
        let Some((run, sched)) = self.run_mut(run_id) else {
            return;
        };
        if !run.is_open() {
            return;
        }
        let (next, retry_state) = run.successor(sched, Closing::TimedOut);
        run.new_run_id = successor_id(&next);
        run.close_from_outside(
            sched,
            Attributes::WorkflowExecutionTimedOutEventAttributes(
                WorkflowExecutionTimedOutEventAttributes {
                    retry_state: retry_state as i32,
                    new_execution_run_id: successor_id(&next),
                },
            ),
            WorkflowExecutionStatus::TimedOut,
        );
        self.after_close(run_id);
        if let Some(next) = next {
            self.start_run(next);
        }
    }

    pub(crate) fn fire_user_timer(&mut self, run_id: &str, timer_id: &str, started: i64) {
        let Some((run, sched)) = self.run_mut(run_id) else {
            return;
        };
        if !run.is_open() || run.timers.get(timer_id) != Some(&started) {
            return;
        }
        run.timers.remove(timer_id);
        run.add_new_event(
            sched,
            Attributes::TimerFiredEventAttributes(TimerFiredEventAttributes {
                timer_id: timer_id.to_owned(),
                started_event_id: started,
            }),
        );
    }

    pub(crate) fn time_out_workflow_task(&mut self, run_id: &str, scheduled: i64) {
        if let Some((run, sched)) = self.run_mut(run_id) {
            run.time_out_workflow_task(sched, scheduled);
        }
    }

    /// A run's start delay or backoff is over: its first workflow task is scheduled.
    pub(crate) fn first_workflow_task(&mut self, run_id: &str) {
        if let Some((run, sched)) = self.run_mut(run_id) {
            if run.backoff_until.is_some_and(|t| t <= sched.now()) {
                run.backoff_until = None;
                run.schedule_workflow_task(sched);
            }
        }
    }

    pub(crate) fn unstick_workflow_task(&mut self, run_id: &str, scheduled: i64) {
        if let Some((run, sched)) = self.run_mut(run_id) {
            run.unstick_workflow_task(sched, scheduled);
        }
    }

    /// A sticky queue's worker is gone: its waiting tasks move to their normal queues now.
    pub(crate) fn close_sticky_queue(&mut self, namespace: &str, name: &str) {
        self.sched.closed_sticky.insert(name.to_owned());
        self.sched.sticky_pollers.remove(name);
        // Its held polls answer empty now.
        self.sched.queues.wake(namespace, name);
        self.sched.changed = true;
        let waiting = std::mem::take(&mut self.sched.queues.get_mut(namespace, name).workflow);
        for entry in waiting {
            let run_id = match entry {
                WorkflowTaskRef::Run(run_id) => run_id,
                WorkflowTaskRef::Query(id) => {
                    // A query waiting there goes to its run's normal queue.
                    let queue = self
                        .sched
                        .queries
                        .get(&id)
                        .and_then(|q| self.runs.get(&q.run_id))
                        .map(|r| r.task_queue.clone());
                    if let Some(queue) = queue {
                        self.sched.queues.push_workflow(
                            namespace,
                            &queue,
                            WorkflowTaskRef::Query(id),
                        );
                    }
                    continue;
                }
            };
            let scheduled = self
                .runs
                .get(&run_id)
                .and_then(|r| r.wft.as_ref())
                .map(|t| t.scheduled_event_id);
            if let Some(scheduled) = scheduled {
                self.unstick_workflow_task(&run_id, scheduled);
            }
        }
    }

    pub(crate) fn retry_activity(&mut self, run_id: &str, scheduled: i64, attempt: i32) {
        if let Some((run, sched)) = self.run_mut(run_id) {
            if run.is_open() {
                run.retry_activity(sched, scheduled, attempt);
            }
        }
    }

    pub(crate) fn time_out_activity(
        &mut self,
        run_id: &str,
        scheduled: i64,
        attempt: Option<i32>,
        timeout: TimeoutType,
    ) {
        let Some((run, sched)) = self.run_mut(run_id) else {
            return;
        };
        let now = sched.now();
        if !run.is_open() {
            return;
        }
        let run_key = run.run_id.clone();
        let Some(activity) = run.activities.get(&scheduled) else {
            return;
        };
        if let Some(attempt) = attempt {
            let ActivityState::Started { last_heartbeat, .. } = activity.state else {
                return;
            };
            if activity.attempt != attempt {
                return;
            }
            if timeout == TimeoutType::Heartbeat {
                let every =
                    proto::duration(activity.attrs.heartbeat_timeout.as_ref()).unwrap_or_default();
                if last_heartbeat + every > now {
                    sched.add_timer(
                        last_heartbeat + every,
                        TimerKind::ActivityHeartbeat {
                            run_id: run_key,
                            scheduled_event_id: scheduled,
                            attempt,
                        },
                    );
                    return;
                }
            }
        }
        let failure = Failure {
            message: format!("activity {} timeout", timeout.as_str_name()),
            source: "capstan-engine".to_owned(),
            failure_info: Some(FailureInfo::TimeoutFailureInfo(
                proto::failure::TimeoutFailureInfo {
                    timeout_type: timeout as i32,
                    last_heartbeat_details: activity.heartbeat_details.clone(),
                },
            )),
            ..Default::default()
        };
        run.fail_activity_attempt(sched, scheduled, failure, Some(timeout), String::new());
    }
}
