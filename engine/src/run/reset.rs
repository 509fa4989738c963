//! Resetting a workflow (`ResetWorkflowExecution`), as Temporal's resetter does: a new run
//! whose history is a prefix of another run's, up to one of its workflow tasks; that task
//! failed with cause `RESET_WORKFLOW`; the signals and updates received after it
//! reapplied; and a new workflow task, which a worker answers by replaying the prefix.
//!
//! The new run's state is rebuilt from the prefix's events ([`Run::rebuilt`]), one event
//! at a time, into the structures the live transitions keep (activities, timers, children,
//! updates, memo and search attributes), with the constructors they use; its deadlines
//! then come from `Run::deadlines`, as for every run.

use std::{
    collections::{BTreeMap, HashMap},
    time::SystemTime,
};

use tonic::Status;

use super::{
    children::ClosedChild, commands::upsert, updates::UpdateState, Activity, Child, Ctx,
    EventBuffer, Run, Update, UserTimer, ENGINE_IDENTITY,
};
use crate::{
    proto::{
        enums::{
            ResetReapplyExcludeType, ResetReapplyType, UpdateAdmittedEventOrigin,
            WorkflowExecutionStatus, WorkflowTaskFailedCause,
        },
        failure::{failure::FailureInfo, Failure, ResetWorkflowFailureInfo},
        history::{history_event::Attributes, *},
    },
    validate,
};

/// Temporal's identity for terminating the run a reset replaces.
pub(crate) const RESETTER_IDENTITY: &str = "history-resetter";

/// What a reset reapplies of what the workflow received after the reset point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reapply {
    pub(crate) signals: bool,
    pub(crate) updates: bool,
}

impl Reapply {
    /// Temporal's reading of a request's deprecated `reset_reapply_type` with its
    /// `reset_reapply_exclude_types`: everything eligible unless excluded; `SIGNAL` alone
    /// excludes updates, `NONE` excludes everything.
    pub(crate) fn from_request(reapply_type: i32, exclude: &[i32]) -> Self {
        let mut reapply = match ResetReapplyType::try_from(reapply_type) {
            Ok(ResetReapplyType::None) => Self {
                signals: false,
                updates: false,
            },
            Ok(ResetReapplyType::Signal) => Self {
                signals: true,
                updates: false,
            },
            _ => Self {
                signals: true,
                updates: true,
            },
        };
        for excluded in exclude {
            match ResetReapplyExcludeType::try_from(*excluded) {
                Ok(ResetReapplyExcludeType::Signal) => reapply.signals = false,
                Ok(ResetReapplyExcludeType::Update) => reapply.updates = false,
                _ => {}
            }
        }
        reapply
    }

    /// The event a reset reapplies for `event` (received after the reset point), if any:
    /// a signal as it was; an update's request as an `UpdateAdmitted` event (an
    /// acceptance whose request an admitted event holds is reapplied with that event).
    pub(crate) fn event_for(&self, event: Attributes) -> Option<Attributes> {
        let admitted = |request| {
            Attributes::WorkflowExecutionUpdateAdmittedEventAttributes(
                WorkflowExecutionUpdateAdmittedEventAttributes {
                    request: Some(request),
                    origin: UpdateAdmittedEventOrigin::Reapply as i32,
                },
            )
        };
        match event {
            Attributes::WorkflowExecutionSignaledEventAttributes(_) if self.signals => Some(event),
            Attributes::WorkflowExecutionUpdateAcceptedEventAttributes(a) if self.updates => {
                a.accepted_request.map(admitted)
            }
            Attributes::WorkflowExecutionUpdateAdmittedEventAttributes(a) if self.updates => {
                a.request.map(admitted)
            }
            _ => None,
        }
    }
}

/// A reset, as the service checked it.
#[derive(Debug, Clone)]
pub(crate) struct Reset {
    pub(crate) reason: String,
    pub(crate) request_id: String,
    /// The first event not kept: the pending workflow task's started event + 1 (or its
    /// scheduled event + 1, when it had not started).
    pub(crate) finish_event_id: i64,
    pub(crate) reapply: Reapply,
}

/// The workflow task pending at the reset point.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResetTask {
    scheduled_event_id: i64,
    started_event_id: Option<i64>,
}

fn out_of_history() -> Status {
    Status::invalid_argument("Workflow task finish ID must be > 1 && <= workflow last event ID.")
}

fn not_at_a_workflow_task(finish_event_id: i64) -> Status {
    Status::invalid_argument(format!(
        "Can only reset workflow to event ID in range [WorkflowTaskScheduled +1, \
         WorkflowTaskStarted + 1]: {finish_event_id}"
    ))
}

impl Run {
    /// The run `run_id` that resets this one at `reset.finish_event_id`, rebuilt from the
    /// events before it (started `now`), and the workflow task pending there. Nothing is
    /// written yet: [`Run::finish_reset`] fails that task and schedules the next.
    ///
    /// # Errors
    ///
    /// `INVALID_ARGUMENT`, with Temporal's words, for a point outside the history or where
    /// no workflow task is pending (the events before it must end with the task's
    /// scheduled or started event).
    pub(crate) fn rebuilt(
        &self,
        now: SystemTime,
        run_id: String,
        reset: &Reset,
    ) -> Result<(Self, ResetTask), Status> {
        let finish = reset.finish_event_id;
        if finish <= 1 || finish > self.events.len() as i64 {
            return Err(out_of_history());
        }
        let events = self.events.prefix((finish - 1) as usize);
        let mut run = Self {
            namespace: self.namespace.clone(),
            workflow_id: self.workflow_id.clone(),
            run_id,
            workflow_type: self.workflow_type.clone(),
            task_queue: self.task_queue.clone(),
            started: self.started.clone(),
            memo: self.started.memo.clone(),
            search_attributes: self.started.search_attributes.clone(),
            request_id: reset.request_id.clone(),
            status: WorkflowExecutionStatus::Running,
            events: Default::default(),
            buffered: EventBuffer::default(),
            wft: None,
            previous_started_event_id: 0,
            sticky: None,
            task_timeout: self.task_timeout,
            start_time: now,
            close_time: None,
            activities: BTreeMap::new(),
            timers: HashMap::new(),
            children: BTreeMap::new(),
            updates: Vec::new(),
            parent: self.parent.clone(),
            new_run_id: String::new(),
            backoff_until: None,
            signal_request_ids: Default::default(),
            in_completion: false,
            needs_task: false,
            reset_run_id: String::new(),
            original_start_time: Some(self.original_start_time.unwrap_or(self.start_time)),
        };
        let mut task = None;
        let mut initiated = HashMap::new();
        for event in events.iter() {
            task = run.replay(now, &event, task, &mut initiated);
        }
        run.events = events;
        match task {
            Some(t) if t.started_event_id.unwrap_or(t.scheduled_event_id) == finish - 1 => {
                Ok((run, t))
            }
            _ => Err(not_at_a_workflow_task(finish)),
        }
    }

    /// Applies one event of the prefix to the rebuilt run's state; answers the workflow
    /// task pending after it.
    fn replay(
        &mut self,
        now: SystemTime,
        event: &HistoryEvent,
        task: Option<ResetTask>,
        initiated: &mut HashMap<i64, StartChildWorkflowExecutionInitiatedEventAttributes>,
    ) -> Option<ResetTask> {
        let id = event.event_id;
        let Some(attributes) = event.attributes.clone() else {
            return task;
        };
        match attributes {
            Attributes::WorkflowTaskScheduledEventAttributes(_) => {
                return Some(ResetTask {
                    scheduled_event_id: id,
                    started_event_id: None,
                })
            }
            Attributes::WorkflowTaskStartedEventAttributes(_) => {
                return task.map(|t| ResetTask {
                    started_event_id: Some(id),
                    ..t
                })
            }
            Attributes::WorkflowTaskCompletedEventAttributes(a) => {
                self.previous_started_event_id = a.started_event_id;
                return None;
            }
            Attributes::WorkflowTaskFailedEventAttributes(_)
            | Attributes::WorkflowTaskTimedOutEventAttributes(_) => return None,
            Attributes::ActivityTaskScheduledEventAttributes(a) => {
                // Rescheduled at the reset, at its first attempt, as on Temporal.
                self.activities.insert(id, Activity::new(a, now));
            }
            Attributes::ActivityTaskCancelRequestedEventAttributes(a) => {
                if let Some(activity) = self.activities.get_mut(&a.scheduled_event_id) {
                    activity.cancel_requested_event_id = Some(id);
                }
            }
            Attributes::ActivityTaskCompletedEventAttributes(a) => {
                self.activities.remove(&a.scheduled_event_id);
            }
            Attributes::ActivityTaskFailedEventAttributes(a) => {
                self.activities.remove(&a.scheduled_event_id);
            }
            Attributes::ActivityTaskTimedOutEventAttributes(a) => {
                self.activities.remove(&a.scheduled_event_id);
            }
            Attributes::ActivityTaskCanceledEventAttributes(a) => {
                self.activities.remove(&a.scheduled_event_id);
            }
            Attributes::TimerStartedEventAttributes(_) => {
                if let Some((timer_id, timer)) = UserTimer::started_by(event) {
                    self.timers.insert(timer_id, timer);
                }
            }
            Attributes::TimerFiredEventAttributes(a) => {
                self.timers.remove(&a.timer_id);
            }
            Attributes::TimerCanceledEventAttributes(a) => {
                self.timers.remove(&a.timer_id);
            }
            Attributes::StartChildWorkflowExecutionInitiatedEventAttributes(a) => {
                initiated.insert(id, a);
            }
            Attributes::ChildWorkflowExecutionStartedEventAttributes(a) => {
                let attrs = initiated.get(&a.initiated_event_id);
                if let (Some(attrs), Some(execution)) = (attrs, a.workflow_execution) {
                    let child = Child::new(attrs, execution, id);
                    self.children.insert(a.initiated_event_id, child);
                }
            }
            Attributes::StartChildWorkflowExecutionFailedEventAttributes(a) => {
                self.children.remove(&a.initiated_event_id);
            }
            Attributes::ChildWorkflowExecutionCompletedEventAttributes(a) => {
                self.children.remove(&a.initiated_event_id);
            }
            Attributes::ChildWorkflowExecutionFailedEventAttributes(a) => {
                self.children.remove(&a.initiated_event_id);
            }
            Attributes::ChildWorkflowExecutionCanceledEventAttributes(a) => {
                self.children.remove(&a.initiated_event_id);
            }
            Attributes::ChildWorkflowExecutionTimedOutEventAttributes(a) => {
                self.children.remove(&a.initiated_event_id);
            }
            Attributes::ChildWorkflowExecutionTerminatedEventAttributes(a) => {
                self.children.remove(&a.initiated_event_id);
            }
            Attributes::UpsertWorkflowSearchAttributesEventAttributes(a) => {
                if let Some(upserted) = &a.search_attributes {
                    let merged = self.search_attributes.get_or_insert_with(Default::default);
                    upsert(&mut merged.indexed_fields, &upserted.indexed_fields);
                }
            }
            Attributes::WorkflowPropertiesModifiedEventAttributes(a) => {
                if let Some(upserted) = &a.upserted_memo {
                    let merged = self.memo.get_or_insert_with(Default::default);
                    upsert(&mut merged.fields, &upserted.fields);
                }
            }
            Attributes::WorkflowExecutionSignaledEventAttributes(a) => {
                self.remember_signal_request(&a.request_id);
            }
            Attributes::WorkflowExecutionUpdateAdmittedEventAttributes(a) => {
                if let Some(request) = a.request {
                    self.updates
                        .push(Update::new(request, UpdateState::InHistory(id)));
                }
            }
            Attributes::WorkflowExecutionUpdateAcceptedEventAttributes(a) => {
                let known = self
                    .updates
                    .iter_mut()
                    .find(|u| u.id == a.protocol_instance_id);
                match (known, a.accepted_request) {
                    (Some(update), _) => {
                        update.state = UpdateState::Accepted(id);
                        update.accepted = true;
                    }
                    (None, Some(request)) => {
                        let mut update = Update::new(request, UpdateState::Accepted(id));
                        update.accepted = true;
                        self.updates.push(update);
                    }
                    (None, None) => {}
                }
            }
            Attributes::WorkflowExecutionUpdateCompletedEventAttributes(a) => {
                let id = a.meta.map(|m| m.update_id).unwrap_or_default();
                if let Some(update) = self.updates.iter_mut().find(|u| u.id == id) {
                    update.state = UpdateState::Completed(Box::new(a.outcome.unwrap_or_default()));
                }
            }
            _ => {}
        }
        task
    }

    /// Writes what a reset adds to the rebuilt run: the pending workflow task failed with
    /// cause `RESET_WORKFLOW` (started first, by the engine, if it had not started), the
    /// `reapplied` events, the outcomes of children that closed since the reset point, and
    /// a new workflow task on the normal queue; its pending activities are queued again.
    pub(crate) fn finish_reset(
        &mut self,
        ctx: &mut Ctx<'_>,
        reset: &Reset,
        task: ResetTask,
        base_run_id: &str,
        reapplied: Vec<Attributes>,
        closed_children: Vec<(i64, ClosedChild)>,
    ) {
        self.in_completion = true;
        let scheduled_event_id = task.scheduled_event_id;
        let started_event_id = match task.started_event_id {
            Some(id) => id,
            None => self.append(
                ctx,
                Attributes::WorkflowTaskStartedEventAttributes(
                    WorkflowTaskStartedEventAttributes {
                        scheduled_event_id,
                        identity: ENGINE_IDENTITY.to_owned(),
                        request_id: reset.request_id.clone(),
                        history_size_bytes: self.events.size() as i64,
                        ..Default::default()
                    },
                ),
            ),
        };
        let mut failure = Failure {
            message: reset.reason.clone(),
            failure_info: Some(FailureInfo::ResetWorkflowFailureInfo(
                ResetWorkflowFailureInfo::default(),
            )),
            ..Default::default()
        };
        validate::limit_failure(&mut failure);
        self.append(
            ctx,
            Attributes::WorkflowTaskFailedEventAttributes(WorkflowTaskFailedEventAttributes {
                scheduled_event_id,
                started_event_id,
                cause: WorkflowTaskFailedCause::ResetWorkflow as i32,
                failure: Some(failure),
                identity: ENGINE_IDENTITY.to_owned(),
                base_run_id: base_run_id.to_owned(),
                new_run_id: self.run_id.clone(),
                ..Default::default()
            }),
        );
        for event in reapplied {
            match event {
                Attributes::WorkflowExecutionSignaledEventAttributes(a) => {
                    let request_id = a.request_id.clone();
                    self.signal(ctx, &request_id, a);
                }
                Attributes::WorkflowExecutionUpdateAdmittedEventAttributes(a) => {
                    self.admit_reapplied_update(ctx, a);
                }
                _ => {}
            }
        }
        for (initiated, child) in closed_children {
            self.child_closed(ctx, initiated, child);
        }
        self.in_completion = false;
        self.needs_task = false;
        self.schedule_workflow_task(ctx);
        let activities: Vec<i64> = self.activities.keys().copied().collect();
        for scheduled_event_id in activities {
            self.queue_first_attempt(ctx, scheduled_event_id, false);
        }
    }
}
