//! One workflow run's state machine: its history and the state that writes it.
//!
//! `impl Run` is split by concept, one child module each:
//!
//! | module | owns |
//! |---|---|
//! | `start` | a new run and its first workflow task |
//! | `buffer` | events that arrive while a workflow task is started |
//! | `workflow_task` | scheduling, starting, completing, failing and timing out workflow tasks (sticky, transient, speculative) |
//! | `checks` | a completion's commands, all checked before any is applied |
//! | `commands` | a completion's commands applied, one function per command type |
//! | `activities` | activity attempts: scheduled, started, heartbeats, outcomes, retries, timeouts |
//! | `activity_actions` | what an operator does to pending activities: pause, unpause, reset, new options |
//! | `timers` | user timers |
//! | `children` | child workflows, as the parent sees them |
//! | `signals` | signals and cancel requests, received and sent |
//! | `updates` | the update protocol |
//! | `close` | closing the run, and the run that follows it (retry, cron, continue-as-new) |
//! | `reset` | a run rebuilt from a prefix of another's history, for a reset |
//! | `retry` | retry policies |
//! | `queries` | query-only workflow tasks |
//! | `describe` | what describe and list report of a run |
//!
//! A transition takes a [`Ctx`]: the transaction's instant and the engine settings it may
//! read, and where it records the [`Effect`]s it asks of the rest of the engine (tasks to
//! queue). The run never touches queues, timers or other runs itself: what it needs of
//! other runs it returns ([`CrossRun`]), and its timers are [`Run::deadlines`], which the
//! state arms after every transaction and after a restart alike.

// A server still carries the deprecated fields (`control`, `namespace`, checksums) that
// older clients send.
#![allow(deprecated)]

mod activities;
mod activity_actions;
mod buffer;
mod checks;
mod children;
mod close;
mod commands;
mod describe;
mod queries;
mod reset;
mod retry;
mod signals;
mod start;
mod timers;
mod updates;
mod workflow_task;

#[cfg(test)]
mod tests;

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::Arc,
    time::{Duration, SystemTime},
};

use serde::{Deserialize, Serialize};

pub(crate) use activities::{Activity, ActivityState, HeartbeatAnswer};
pub(crate) use activity_actions::{Restart, Targets};
pub(crate) use buffer::{Buffered, EventBuffer};
pub(crate) use children::{Child, ParentRef};
pub(crate) use reset::{Reapply, Reset, RESETTER_IDENTITY};
pub(crate) use start::StartRun;
pub(crate) use timers::UserTimer;
pub(crate) use updates::Update;
pub(crate) use workflow_task::{StickyQueue, WorkflowTask};

use crate::{
    clock::after,
    event_log::{event_type, EventLog},
    limits::Limits,
    matching::{ActivityTaskRef, StickyQueues},
    pb,
    proto::{
        self,
        common::{Memo, SearchAttributes, WorkflowExecution},
        enums::{EventType, TaskQueueKind, WorkflowExecutionStatus},
        history::{history_event::Attributes, *},
        sdk::UserMetadata,
        taskqueue::TaskQueue,
    },
    search_attributes::Custom,
    timers::{Deadline, RunTimer},
    visibility::Record,
};

/// Engine settings a run's transitions read.
#[derive(Debug, Clone, Default)]
pub(crate) struct Config {
    /// What a run accepts, and from when its workflow tasks suggest continue-as-new.
    pub(crate) limits: Limits,
}

/// What a transition asks of the engine beyond its own run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    /// The run's workflow task waits on `queue` (its sticky queue or its normal one).
    WorkflowTask { queue: String },
    /// An activity attempt waits on `queue`; `eager`: the completing worker asked to run
    /// it itself, and it may be handed back in the completion's answer instead.
    ActivityTask {
        queue: String,
        task: ActivityTaskRef,
        eager: bool,
    },
}

/// What a completed workflow task asks of other runs, applied by the state after the
/// run's own events (in command order).
#[derive(Debug)]
pub(crate) enum CrossRun {
    /// Start the child initiated at this event.
    StartChild(
        i64,
        Box<StartChildWorkflowExecutionInitiatedEventAttributes>,
    ),
    /// Signal the workflow this initiated event names.
    Signal(i64, SignalExternalWorkflowExecutionInitiatedEventAttributes),
    /// Ask the workflow this initiated event names to cancel.
    Cancel(
        i64,
        RequestCancelExternalWorkflowExecutionInitiatedEventAttributes,
    ),
    /// Start the run that continues this one (continue-as-new, retry, cron).
    ContinueAsNew(Box<StartRun>),
}

/// The namespaces a run's commands may address.
#[derive(Clone, Copy)]
pub(crate) enum Namespaces<'a> {
    /// Every namespace, and any search attribute (a bare [`Ctx`], in tests).
    Any,
    /// Those the lookup finds, with their custom search attributes.
    Served(&'a dyn Fn(&str) -> Option<&'a Custom>),
}

impl Namespaces<'_> {
    /// Whether `namespace` is served.
    pub(crate) fn exists(&self, namespace: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Served(lookup) => lookup(namespace).is_some(),
        }
    }

    /// Checks the search attributes a command sets in `namespace` (see
    /// [`Custom::check`]); a namespace not served is left to the namespace check.
    pub(crate) fn check_search_attributes(
        &self,
        namespace: &str,
        attributes: Option<&SearchAttributes>,
    ) -> Result<(), String> {
        match self {
            Self::Any => Ok(()),
            Self::Served(lookup) => {
                lookup(namespace).map_or(Ok(()), |custom| custom.check(namespace, attributes))
            }
        }
    }
}

/// What a run's transition sees and where it records its effects.
pub(crate) struct Ctx<'a> {
    /// The transaction's instant: every event it writes has this time.
    pub(crate) now: SystemTime,
    pub(crate) config: &'a Config,
    /// Which sticky queues have a worker polling.
    pub(crate) sticky: &'a StickyQueues,
    /// The namespaces commands may address, and their search attributes.
    pub(crate) namespaces: Namespaces<'a>,
    /// The engine's task id sequence.
    seq: &'a mut u64,
    /// What the transition asked for, in order.
    pub(crate) effects: Vec<Effect>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(
        now: SystemTime,
        config: &'a Config,
        sticky: &'a StickyQueues,
        seq: &'a mut u64,
    ) -> Self {
        Self {
            now,
            config,
            sticky,
            namespaces: Namespaces::Any,
            seq,
            effects: Vec::new(),
        }
    }

    /// Names the namespaces commands may address, by a lookup of their custom search
    /// attributes (every namespace, checking no search attribute, unless told).
    pub(crate) fn with_namespaces(
        mut self,
        lookup: &'a dyn Fn(&str) -> Option<&'a Custom>,
    ) -> Self {
        self.namespaces = Namespaces::Served(lookup);
        self
    }

    /// The next task id.
    fn next_task_id(&mut self) -> i64 {
        *self.seq += 1;
        *self.seq as i64
    }

    /// Event `event_id` at `time`, with the next task id.
    fn event(&mut self, event_id: i64, time: SystemTime, attrs: Attributes) -> HistoryEvent {
        HistoryEvent {
            event_id,
            event_time: Some(proto::timestamp(time)),
            event_type: event_type(&attrs) as i32,
            task_id: self.next_task_id(),
            attributes: Some(attrs),
            ..Default::default()
        }
    }
}

/// A new run id: a UUIDv7, as Temporal issues them (they sort by creation time).
pub(crate) fn new_run_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// One workflow run. Serialized by the durable store without what it stores apart: its
/// events (one row each), its started attributes (those of event 1) and its buffered
/// events (one row each).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Run {
    pub(crate) namespace: String,
    pub(crate) workflow_id: String,
    pub(crate) run_id: String,
    pub(crate) workflow_type: String,
    pub(crate) task_queue: String,
    /// The attributes of the started event (event 1), as written: shared, since they hold
    /// the input, which may be large.
    #[serde(skip)]
    pub(crate) started: Arc<WorkflowExecutionStartedEventAttributes>,
    /// The run's memo: the started event's, with what the workflow upserted since.
    #[serde(default, with = "pb::option")]
    pub(crate) memo: Option<Memo>,
    /// The run's search attributes: the started event's, with what the workflow upserted
    /// since.
    #[serde(default, with = "pb::option")]
    pub(crate) search_attributes: Option<SearchAttributes>,
    pub(crate) request_id: String,
    #[serde(with = "pb::status")]
    pub(crate) status: WorkflowExecutionStatus,
    #[serde(skip)]
    pub(crate) events: EventLog,
    /// Events that arrived while a workflow task was started; written after it ends.
    #[serde(skip)]
    pub(crate) buffered: EventBuffer,
    pub(crate) wft: Option<WorkflowTask>,
    /// The started event of the last completed workflow task.
    pub(crate) previous_started_event_id: i64,
    #[serde(default)]
    pub(crate) sticky: Option<StickyQueue>,
    pub(crate) task_timeout: Duration,
    pub(crate) start_time: SystemTime,
    pub(crate) close_time: Option<SystemTime>,
    pub(crate) activities: BTreeMap<i64, Activity>,
    /// Started user timers by timer id.
    pub(crate) timers: HashMap<String, UserTimer>,
    /// Started children by their initiated event id.
    pub(crate) children: BTreeMap<i64, Child>,
    pub(crate) updates: Vec<Update>,
    pub(crate) parent: Option<ParentRef>,
    /// The run that continues this one (continue-as-new, retry, cron); empty: none.
    pub(crate) new_run_id: String,
    /// The first workflow task waits until then: a start delay, a retry's backoff or the
    /// next cron time.
    #[serde(default)]
    pub(crate) backoff_until: Option<SystemTime>,
    /// The request ids of the last `signals::RECENT_SIGNAL_REQUEST_IDS` signals received from
    /// clients: a retried signal is applied once. Bounded, because the run's stored state
    /// is written at every change and a client retries within moments, not thousands of
    /// signals later.
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    signal_request_ids: VecDeque<String>,
    /// The run that reset this one (the latest, if it was reset more than once); empty:
    /// none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) reset_run_id: String,
    /// When the first run this one was reset from started (this run's start is its
    /// reset); `None`: it was not made by a reset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) original_start_time: Option<SystemTime>,
    /// Inside `complete_workflow_task`: new events don't schedule a task by themselves.
    in_completion: bool,
    needs_task: bool,
}

/// The identity of what the engine does in its own name (terminating a run over a
/// limit): Temporal's history service's.
pub(crate) const ENGINE_IDENTITY: &str = "history-service";

/// Placeholder for "the event just before this one" in an activity outcome whose started
/// event is written in the same breath (possibly later, when buffered).
const PREVIOUS_EVENT: i64 = -1;

/// A normal task queue named `name`.
fn task_queue(name: &str) -> Option<TaskQueue> {
    Some(TaskQueue {
        name: name.to_owned(),
        kind: TaskQueueKind::Normal as i32,
        ..Default::default()
    })
}

/// A run as it was when a transaction first touched it, to put back if the transaction
/// fails. Its events are kept as a length (they are only appended), or whole when a
/// speculative task may drop some.
#[derive(Debug)]
pub(crate) struct RunImage {
    run: Run,
    events: Result<EventLog, usize>,
}

impl RunImage {
    /// Keeps the image's events whole, taken from `now` (the run about to be removed).
    pub(crate) fn keep_events(&mut self, now: &Run) {
        if let Err(len) = self.events {
            self.events = Ok(now.events.prefix(len));
        }
    }

    /// The run as it was; `now` is the run as the failed transaction left it (`None`:
    /// removed, and then the image kept its events).
    pub(crate) fn restore(self, now: Option<Run>) -> Run {
        let mut run = self.run;
        run.events = match (self.events, now) {
            (Ok(events), _) => events,
            (Err(len), Some(now)) => {
                let mut events = now.events;
                events.truncate(len);
                events
            }
            (Err(_), None) => EventLog::default(),
        };
        run
    }
}

impl Run {
    /// What [`RunImage::restore`] needs to put the run back as it is now.
    pub(crate) fn image(&self) -> RunImage {
        let speculative = self.wft.as_ref().is_some_and(|t| t.speculative);
        RunImage {
            // A struct literal: a new field must be named here.
            run: Self {
                namespace: self.namespace.clone(),
                workflow_id: self.workflow_id.clone(),
                run_id: self.run_id.clone(),
                workflow_type: self.workflow_type.clone(),
                task_queue: self.task_queue.clone(),
                started: self.started.clone(),
                memo: self.memo.clone(),
                search_attributes: self.search_attributes.clone(),
                request_id: self.request_id.clone(),
                status: self.status,
                events: EventLog::default(),
                buffered: self.buffered.clone(),
                wft: self.wft.clone(),
                previous_started_event_id: self.previous_started_event_id,
                sticky: self.sticky.clone(),
                task_timeout: self.task_timeout,
                start_time: self.start_time,
                close_time: self.close_time,
                activities: self.activities.clone(),
                timers: self.timers.clone(),
                children: self.children.clone(),
                updates: self.updates.clone(),
                parent: self.parent.clone(),
                new_run_id: self.new_run_id.clone(),
                backoff_until: self.backoff_until,
                in_completion: self.in_completion,
                needs_task: self.needs_task,
                signal_request_ids: self.signal_request_ids.clone(),
                reset_run_id: self.reset_run_id.clone(),
                original_start_time: self.original_start_time,
            },
            events: if speculative {
                Ok(self.events.clone())
            } else {
                Err(self.events.len())
            },
        }
    }

    pub(crate) fn execution(&self) -> WorkflowExecution {
        WorkflowExecution {
            workflow_id: self.workflow_id.clone(),
            run_id: self.run_id.clone(),
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.status == WorkflowExecutionStatus::Running
    }

    /// Whether the run waits on nothing but its timers (and outside input): no workflow
    /// task scheduled or started, no activity attempt queued or running (a paused one
    /// waits for an operator), no update that the workflow has not yet seen. A virtual
    /// clock may skip ahead only then.
    pub(crate) fn waits_only_on_timers(&self) -> bool {
        !self.is_open()
            || (self.wft.is_none()
                && self.activities.values().all(|a| {
                    a.state == ActivityState::Backoff || (a.paused.is_some() && !a.is_started())
                })
                && self.updates.iter().all(|u| !u.waits_for_worker()))
    }

    /// Whether cancellation was requested (a cancel-requested event is written).
    pub(crate) fn cancel_requested(&self) -> bool {
        self.events
            .iter()
            .any(|e| e.event_type == EventType::WorkflowExecutionCancelRequested as i32)
    }

    /// The latest instant the run records: its last event, a buffered event, its
    /// workflow task's scheduling or start (a transient task's are in no event).
    pub(crate) fn latest_time(&self) -> SystemTime {
        let last_event = self.events.last_time();
        let task = self
            .wft
            .as_ref()
            .map(|t| t.started_time.unwrap_or(t.scheduled_time));
        let buffered = self.buffered.entries().filter_map(|b| b.at).max();
        [last_event, task, buffered]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(self.start_time)
    }

    /// The last event: the close event, once the run is closed.
    pub(crate) fn last_event(&self) -> Option<Attributes> {
        self.events.last().and_then(|e| e.attributes)
    }

    fn next_event_id(&self) -> i64 {
        self.events.len() as i64 + 1
    }

    /// Whether a workflow task is started: new events wait in the buffer until it ends.
    fn task_started(&self) -> bool {
        self.wft
            .as_ref()
            .is_some_and(|t| t.started_event_id.is_some())
    }

    /// Appends an event now and returns its id.
    fn append(&mut self, ctx: &mut Ctx<'_>, attrs: Attributes) -> i64 {
        self.append_at(ctx, ctx.now, attrs)
    }

    /// Appends an event that happened `time` and returns its id.
    fn append_at(&mut self, ctx: &mut Ctx<'_>, time: SystemTime, attrs: Attributes) -> i64 {
        self.append_event(ctx, time, attrs, None)
    }

    /// Appends an event with what the workflow's author said of it (a summary and details,
    /// which UIs show), and returns its id.
    fn append_described(
        &mut self,
        ctx: &mut Ctx<'_>,
        attrs: Attributes,
        user_metadata: Option<UserMetadata>,
    ) -> i64 {
        self.append_event(ctx, ctx.now, attrs, user_metadata)
    }

    fn append_event(
        &mut self,
        ctx: &mut Ctx<'_>,
        time: SystemTime,
        mut attrs: Attributes,
        user_metadata: Option<UserMetadata>,
    ) -> i64 {
        let event_id = self.next_event_id();
        let started = match &mut attrs {
            Attributes::ActivityTaskCompletedEventAttributes(a) => Some(&mut a.started_event_id),
            Attributes::ActivityTaskFailedEventAttributes(a) => Some(&mut a.started_event_id),
            Attributes::ActivityTaskTimedOutEventAttributes(a) => Some(&mut a.started_event_id),
            Attributes::ActivityTaskCanceledEventAttributes(a) => Some(&mut a.started_event_id),
            _ => None,
        };
        if let Some(started) = started.filter(|id| **id == PREVIOUS_EVENT) {
            *started = event_id - 1;
        }
        let mut event = ctx.event(event_id, time, attrs);
        event.user_metadata = user_metadata;
        self.events.push(&event);
        event_id
    }

    /// Adds an event the workflow must see: buffered while a task is started, and
    /// followed by a workflow task otherwise.
    fn add_new_event(&mut self, ctx: &mut Ctx<'_>, attrs: Attributes) {
        if self.task_started() {
            self.buffered.push(ctx.now, attrs);
            return;
        }
        self.append(ctx, attrs);
        if self.in_completion {
            self.needs_task = true;
        } else {
            self.schedule_workflow_task(ctx);
        }
    }

    /// Writes the events buffered while a task was started; whether there were any.
    fn flush_buffered(&mut self, ctx: &mut Ctx<'_>) -> bool {
        let buffered = self.buffered.take();
        let any = !buffered.is_empty();
        for Buffered { at, attrs } in buffered {
            self.append_at(ctx, at.unwrap_or(ctx.now), attrs);
        }
        any
    }

    /// When the run times out: its run timeout (else its execution timeout) from the
    /// moment it may first run, after any start delay, backoff or cron wait.
    fn expiration(&self) -> Option<SystemTime> {
        let timeout = proto::duration(self.started.workflow_run_timeout.as_ref()).or(
            proto::duration(self.started.workflow_execution_timeout.as_ref()),
        )?;
        Some(after(self.execution_time(), timeout))
    }

    /// When the run may first execute: its start, after any start delay, backoff or cron
    /// wait.
    pub(crate) fn execution_time(&self) -> SystemTime {
        // A reset's run starts at the reset, past any wait.
        if self.original_start_time.is_some() {
            return self.start_time;
        }
        after(
            self.start_time,
            proto::duration(self.started.first_workflow_task_backoff.as_ref()).unwrap_or_default(),
        )
    }

    /// Every timer the run needs now, with its instant: the one derivation of its
    /// deadlines, which the state arms after each transaction and after a restart.
    pub(crate) fn deadlines(&self) -> Vec<Deadline> {
        let mut deadlines = Vec::new();
        if !self.is_open() {
            return deadlines;
        }
        let mut add = |at: SystemTime, timer: RunTimer| deadlines.push(Deadline { at, timer });
        if let Some(until) = self.backoff_until {
            add(until, RunTimer::FirstWorkflowTask);
        }
        if let Some(at) = self.expiration() {
            add(at, RunTimer::RunTimeout);
        }
        if let Some(task) = &self.wft {
            let scheduled_event_id = task.scheduled_event_id;
            match (task.started_time, &task.sticky_queue, &self.sticky) {
                (Some(started), _, _) => add(
                    after(started, self.task_timeout),
                    RunTimer::WorkflowTaskTimeout { scheduled_event_id },
                ),
                (None, Some(queue), Some(sticky)) if *queue == sticky.name => add(
                    after(task.scheduled_time, sticky.schedule_to_start),
                    RunTimer::StickyScheduleToStart { scheduled_event_id },
                ),
                _ => {}
            }
        }
        for (timer_id, timer) in &self.timers {
            add(
                timer.fire_at,
                RunTimer::UserTimer {
                    timer_id: timer_id.clone(),
                    started_event_id: timer.started_event_id,
                },
            );
        }
        for (&scheduled_event_id, activity) in &self.activities {
            for (at, timer) in activity.deadlines(scheduled_event_id) {
                add(at, timer);
            }
        }
        deadlines
    }

    /// What a list query sees of the run.
    pub(crate) fn record(&self) -> Record<'_> {
        Record {
            workflow_type: &self.workflow_type,
            workflow_id: &self.workflow_id,
            run_id: &self.run_id,
            task_queue: &self.task_queue,
            status: self.status,
            start_time: self.start_time,
            execution_time: self.execution_time(),
            close_time: self.close_time,
            history_length: self.events.len(),
            search_attributes: self.search_attributes.as_ref(),
            root: self
                .started
                .root_workflow_execution
                .as_ref()
                .map_or((&self.workflow_id, &self.run_id), |root| {
                    (&root.workflow_id, &root.run_id)
                }),
            parent: self.parent.as_ref().map(|p| {
                (
                    p.execution.workflow_id.as_str(),
                    p.execution.run_id.as_str(),
                )
            }),
        }
    }
}
