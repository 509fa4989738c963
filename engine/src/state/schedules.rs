//! Schedules' actions: each tick takes the actions due (within the catch-up window) and
//! sets the schedule's next action time, its one deadline; the overlap policy decides
//! what happens while an earlier run is still open (skip, buffer one or all, cancel or
//! terminate the other, allow all). A closing run ([`State::schedule_run_closed`]) starts
//! the next buffered action, feeds its result to the next run, and pauses the schedule on
//! failure when asked to.

use std::{collections::VecDeque, time::SystemTime};

use tonic::Status;

use super::State;
use crate::{
    clock::after,
    errors,
    proto::{
        self,
        common::{Memo, SearchAttributes, WorkflowExecution},
        enums::{ScheduleOverlapPolicy, WorkflowExecutionStatus},
        history::{
            history_event::Attributes, WorkflowExecutionCancelRequestedEventAttributes,
            WorkflowExecutionStartedEventAttributes,
        },
        schedule::{
            BackfillRequest, ScheduleActionResult, ScheduleInfo, ScheduleListEntry,
            ScheduleListInfo, SchedulePatch, ScheduleSpec, TriggerImmediatelyRequest,
        },
    },
    run::StartRun,
    schedules::{
        rfc3339, search_attribute, validate, Backfill, BackfillChunk, Buffered, Key, Schedule,
        MAX_BACKFILL, RECENT_ACTIONS,
    },
};

/// What a client asked to create.
pub(crate) struct NewSchedule {
    pub(crate) namespace: String,
    pub(crate) id: String,
    pub(crate) schedule: proto::schedule::Schedule,
    pub(crate) initial_patch: Option<SchedulePatch>,
    pub(crate) memo: Option<Memo>,
    pub(crate) search_attributes: Option<SearchAttributes>,
}

impl State {
    /// Creates a schedule; answers its conflict token.
    pub(crate) fn create_schedule(&mut self, new: NewSchedule) -> Result<Vec<u8>, Status> {
        if new.id.is_empty() {
            return Err(Status::invalid_argument("schedule id is not set"));
        }
        let key = (new.namespace.clone(), new.id.clone());
        if self.schedules.get(&key).is_some() {
            return Err(Status::already_exists(format!(
                "schedule `{}` already exists",
                new.id
            )));
        }
        let mut schedule = new.schedule;
        validate(&mut schedule)?;
        self.check_schedule_search_attributes(
            &new.namespace,
            &schedule,
            new.search_attributes.as_ref(),
        )?;
        let now = self.now;
        self.schedules.insert(Schedule {
            namespace: new.namespace,
            id: new.id,
            schedule,
            info: ScheduleInfo {
                create_time: Some(proto::timestamp(now)),
                ..Default::default()
            },
            memo: new.memo,
            search_attributes: new.search_attributes,
            conflict_token: 1,
            processed_until: now,
            buffered: VecDeque::new(),
            armed: None,
            last_completion_result: None,
            last_failure: None,
            requests: VecDeque::new(),
            backfills: VecDeque::new(),
        });
        if let Some(patch) = new.initial_patch {
            self.apply_patch(&key, patch);
        }
        self.tick_schedule(&key);
        Ok(1u64.to_be_bytes().to_vec())
    }

    /// Checks the search attributes of a schedule and of the workflows it starts.
    fn check_schedule_search_attributes(
        &self,
        namespace: &str,
        schedule: &proto::schedule::Schedule,
        own: Option<&SearchAttributes>,
    ) -> Result<(), Status> {
        self.check_search_attributes(namespace, own)?;
        let started = schedule
            .action
            .as_ref()
            .and_then(|a| a.action.as_ref())
            .and_then(
                |proto::schedule::schedule_action::Action::StartWorkflow(w)| {
                    w.search_attributes.as_ref()
                },
            );
        self.check_search_attributes(namespace, started)
    }

    pub(crate) fn describe_schedule(
        &self,
        key: &Key,
    ) -> Result<proto::service::DescribeScheduleResponse, Status> {
        let s = self
            .schedules
            .get(key)
            .ok_or_else(|| errors::schedule_not_found(&key.1))?;
        Ok(proto::service::DescribeScheduleResponse {
            schedule: Some(s.schedule.clone()),
            info: Some(s.describe_info(self.now)),
            memo: s.memo.clone(),
            search_attributes: s.search_attributes.clone(),
            conflict_token: s.conflict_token.to_be_bytes().to_vec(),
        })
    }

    /// Replaces a schedule (if `conflict_token` is empty or current); actions resume from
    /// now under the new spec.
    pub(crate) fn update_schedule(
        &mut self,
        key: &Key,
        mut schedule: proto::schedule::Schedule,
        conflict_token: &[u8],
        memo: Option<Memo>,
        search_attributes: Option<SearchAttributes>,
    ) -> Result<(), Status> {
        validate(&mut schedule)?;
        self.check_schedule_search_attributes(&key.0, &schedule, search_attributes.as_ref())?;
        let now = self.now;
        let s = self
            .schedules
            .get_mut(key)
            .ok_or_else(|| errors::schedule_not_found(&key.1))?;
        if !conflict_token.is_empty() && conflict_token != s.conflict_token.to_be_bytes() {
            return Err(Status::failed_precondition(format!(
                "schedule `{}` changed since it was read (mismatched conflict token): read it \
                 again and retry",
                key.1
            )));
        }
        s.schedule = schedule;
        if memo.is_some() {
            s.memo = memo;
        }
        if search_attributes.is_some() {
            s.search_attributes = search_attributes;
        }
        s.conflict_token += 1;
        s.info.update_time = Some(proto::timestamp(now));
        s.processed_until = s.processed_until.max(now);
        s.armed = None;
        self.tick_schedule(key);
        Ok(())
    }

    /// Pauses, unpauses, triggers or queues backfills (see [`State::take_backfill_chunk`]);
    /// a patch whose request id was seen is a no-op.
    pub(crate) fn patch_schedule(
        &mut self,
        key: &Key,
        patch: SchedulePatch,
        request_id: &str,
    ) -> Result<(), Status> {
        let s = self
            .schedules
            .get_mut(key)
            .ok_or_else(|| errors::schedule_not_found(&key.1))?;
        for backfill in &patch.backfill_request {
            let (Some(start), Some(end)) = (
                proto::system_time(backfill.start_time.as_ref()),
                proto::system_time(backfill.end_time.as_ref()),
            ) else {
                return Err(Status::invalid_argument(
                    "a backfill needs a start time and an end time",
                ));
            };
            if end < start {
                return Err(Status::invalid_argument(
                    "a backfill's end time is before its start time",
                ));
            }
        }
        if s.seen(request_id) {
            return Ok(());
        }
        self.apply_patch(key, patch);
        self.tick_schedule(key);
        Ok(())
    }

    fn apply_patch(&mut self, key: &Key, patch: SchedulePatch) {
        let now = self.now;
        let Some(s) = self.schedules.get_mut(key) else {
            return;
        };
        if !patch.pause.is_empty() {
            let state = s.state_mut();
            state.paused = true;
            state.notes = patch.pause;
            s.armed = None;
        }
        if !patch.unpause.is_empty() {
            let state = s.state_mut();
            state.paused = false;
            state.notes = patch.unpause;
            // Times that passed while paused are not caught up.
            s.processed_until = s.processed_until.max(now);
        }
        s.info.update_time = Some(proto::timestamp(now));
        s.conflict_token += 1;
        if let Some(TriggerImmediatelyRequest {
            overlap_policy,
            scheduled_time,
        }) = patch.trigger_immediately
        {
            let nominal = proto::system_time(scheduled_time.as_ref()).unwrap_or(now);
            self.take_action(key, nominal, now, overlap_policy, true);
        }
        // Backfills are taken later, a chunk per transaction: the patch only notes them.
        for BackfillRequest {
            start_time,
            end_time,
            overlap_policy,
        } in patch.backfill_request
        {
            let (Some(from), Some(to)) = (
                proto::system_time(start_time.as_ref()),
                proto::system_time(end_time.as_ref()),
            ) else {
                continue;
            };
            if let Some(s) = self.schedules.get_mut(key) {
                s.backfills.push_back(Backfill {
                    from,
                    to,
                    overlap_policy,
                    left: MAX_BACKFILL,
                });
            }
        }
    }

    /// The schedule's first unfinished backfill and the spec it follows, from which the
    /// backfill's next chunk is found outside the lock; `None` when it has none.
    pub(crate) fn pending_backfill(&self, key: &Key) -> Option<(Option<ScheduleSpec>, Backfill)> {
        let s = self.schedules.get(key)?;
        let backfill = s.backfills.front()?.clone();
        Some((s.schedule.spec.clone(), backfill))
    }

    /// The schedules with unfinished backfills (a restarted engine finishes them).
    pub(crate) fn schedules_with_backfills(&self) -> Vec<Key> {
        self.schedules
            .keys()
            .into_iter()
            .filter(|key| {
                self.schedules
                    .get(key)
                    .is_some_and(|s| !s.backfills.is_empty())
            })
            .collect()
    }

    /// Takes the actions of `chunk`, found from `read` (see [`State::pending_backfill`]),
    /// in order, and leaves the rest of the backfill first in line; does nothing and
    /// answers `false` if the schedule's first backfill or its spec changed since.
    pub(crate) fn take_backfill_chunk(
        &mut self,
        key: &Key,
        read: &(Option<ScheduleSpec>, Backfill),
        chunk: BackfillChunk,
    ) -> bool {
        let now = self.now;
        let Some(s) = self.schedules.get(key) else {
            return false;
        };
        if s.backfills.front() != Some(&read.1) || s.schedule.spec != read.0 {
            return false;
        }
        let Some(s) = self.schedules.get_mut(key) else {
            return false;
        };
        s.backfills.pop_front();
        if let Some(rest) = chunk.rest {
            s.backfills.push_front(rest);
        }
        for nominal in chunk.times {
            self.take_action(key, nominal, now, read.1.overlap_policy, true);
        }
        true
    }

    pub(crate) fn delete_schedule(&mut self, key: &Key) -> Result<(), Status> {
        self.schedules
            .remove(key)
            .map(|_| ())
            .ok_or_else(|| errors::schedule_not_found(&key.1))
    }

    /// One page of the namespace's schedules, by id, after `after`.
    pub(crate) fn list_schedules(
        &self,
        namespace: &str,
        after: &str,
        page_size: usize,
    ) -> (Vec<ScheduleListEntry>, Option<String>) {
        let now = self.now;
        let mut entries = Vec::new();
        let mut last = None;
        for s in self.schedules.page(namespace, after) {
            if entries.len() == page_size {
                return (entries, last);
            }
            let state = s.state();
            let info = s.describe_info(now);
            entries.push(ScheduleListEntry {
                schedule_id: s.id.clone(),
                memo: s.memo.clone(),
                search_attributes: s.search_attributes.clone(),
                info: Some(ScheduleListInfo {
                    spec: s.schedule.spec.clone(),
                    workflow_type: s.start_action().workflow_type,
                    notes: state.notes,
                    paused: state.paused,
                    recent_actions: info.recent_actions,
                    future_action_times: info.future_action_times,
                    ..Default::default()
                }),
            });
            last = Some(s.id.clone());
        }
        (entries, None)
    }

    /// The schedule's spec (the matching times are found outside the lock).
    pub(crate) fn schedule_spec(&self, key: &Key) -> Result<Option<ScheduleSpec>, Status> {
        let s = self
            .schedules
            .get(key)
            .ok_or_else(|| errors::schedule_not_found(&key.1))?;
        Ok(s.schedule.spec.clone())
    }

    /// The schedule's timer fired at `at`.
    pub(crate) fn fire_schedule(&mut self, key: &Key, at: SystemTime) {
        let Some(s) = self.schedules.get_mut(key) else {
            return;
        };
        if s.armed != Some(at) {
            return;
        }
        s.armed = None;
        self.tick_schedule(key);
    }

    /// Takes every action due by now (missing those older than the catch-up window) and
    /// arms the timer for the next one.
    pub(super) fn tick_schedule(&mut self, key: &Key) {
        let now = self.now;
        // Actions do not change the spec: compile it once.
        let Some(spec) = self.schedules.get(key).and_then(Schedule::spec) else {
            return;
        };
        loop {
            let Some(s) = self.schedules.get_mut(key) else {
                return;
            };
            let state = s.state();
            if state.paused || (state.limited_actions && state.remaining_actions <= 0) {
                s.armed = None;
                return;
            }
            let Some(nominal) = spec.next_after(s.processed_until) else {
                s.armed = None;
                return;
            };
            let actual = after(nominal, spec.jitter(&s.id, nominal));
            if actual > now {
                s.armed = Some(actual);
                return;
            }
            s.processed_until = nominal;
            if now.duration_since(actual).unwrap_or_default() > s.catchup_window() {
                s.info.missed_catchup_window += 1;
                continue;
            }
            self.take_action(key, nominal, actual, 0, false);
        }
    }

    /// Drops running workflows that closed (or were continued into runs that closed).
    fn refresh_running(&mut self, key: &Key) {
        let Some(s) = self.schedules.get(key) else {
            return;
        };
        let open: Vec<WorkflowExecution> = s
            .info
            .running_workflows
            .iter()
            .filter(|w| {
                self.current
                    .get(&(key.0.clone(), w.workflow_id.clone()))
                    .and_then(|run_id| self.runs.get(run_id))
                    .is_some_and(|run| run.is_open())
            })
            .cloned()
            .collect();
        if open.len() != s.info.running_workflows.len() {
            if let Some(s) = self.schedules.get_mut(key) {
                s.info.running_workflows = open;
            }
        }
    }

    /// One action at `nominal`, under the overlap policy (`requested`, else the
    /// schedule's).
    fn take_action(
        &mut self,
        key: &Key,
        nominal: SystemTime,
        actual: SystemTime,
        requested: i32,
        manual: bool,
    ) {
        self.start_buffered(key);
        let Some(s) = self.schedules.get(key) else {
            return;
        };
        let overlap = s.overlap(requested);
        // ALLOW_ALL starts whatever runs, so it need not look up which of the running
        // workflows still run: a look-up per running workflow per action made a long
        // backfill quadratic.
        if overlap == ScheduleOverlapPolicy::AllowAll {
            self.start_scheduled(key, nominal, actual, manual);
            return;
        }
        self.refresh_running(key);
        let Some(s) = self.schedules.get_mut(key) else {
            return;
        };
        if s.info.running_workflows.is_empty() {
            self.start_scheduled(key, nominal, actual, manual);
            return;
        }
        let buffered = Buffered { nominal, actual };
        match overlap {
            ScheduleOverlapPolicy::BufferOne => {
                if s.buffered.is_empty() {
                    s.buffered.push_back(buffered);
                } else {
                    s.info.buffer_dropped += 1;
                }
            }
            ScheduleOverlapPolicy::BufferAll => s.buffered.push_back(buffered),
            ScheduleOverlapPolicy::CancelOther => {
                // The newest action starts once the others finish cancelling.
                s.buffered.clear();
                s.buffered.push_back(buffered);
                for w in s.info.running_workflows.clone() {
                    self.cancel_scheduled(&key.0, &w.workflow_id);
                }
            }
            ScheduleOverlapPolicy::TerminateOther => {
                for w in s.info.running_workflows.clone() {
                    if let Some(run_id) = self
                        .current
                        .get(&(key.0.clone(), w.workflow_id.clone()))
                        .cloned()
                    {
                        self.terminate(
                            &run_id,
                            "terminated by its schedule (overlap policy TerminateOther)",
                            "capstan-engine scheduler",
                        );
                    }
                }
                self.refresh_running(key);
                self.start_scheduled(key, nominal, actual, manual);
            }
            _ => s.info.overlap_skipped += 1,
        }
    }

    fn cancel_scheduled(&mut self, namespace: &str, workflow_id: &str) {
        let Some(run_id) = self
            .current
            .get(&(namespace.to_owned(), workflow_id.to_owned()))
            .cloned()
        else {
            return;
        };
        self.request_cancel(
            &run_id,
            WorkflowExecutionCancelRequestedEventAttributes {
                cause: "cancelled by its schedule (overlap policy CancelOther)".to_owned(),
                identity: "capstan-engine scheduler".to_owned(),
                ..Default::default()
            },
        );
    }

    /// Starts the first buffered action if nothing runs any more.
    fn start_buffered(&mut self, key: &Key) {
        if self
            .schedules
            .get(key)
            .is_none_or(|s| s.buffered.is_empty())
        {
            return;
        }
        self.refresh_running(key);
        let Some(s) = self.schedules.get_mut(key) else {
            return;
        };
        if !s.info.running_workflows.is_empty() {
            return;
        }
        if let Some(Buffered { nominal, actual }) = s.buffered.pop_front() {
            self.start_scheduled(key, nominal, actual, false);
        }
    }

    /// Starts the schedule's workflow for the nominal time `nominal`.
    fn start_scheduled(
        &mut self,
        key: &Key,
        nominal: SystemTime,
        actual: SystemTime,
        manual: bool,
    ) {
        let now = self.now;
        let Some(s) = self.schedules.get(key) else {
            return;
        };
        let action = s.start_action();
        let workflow_id = if s.policies().keep_original_workflow_id {
            action.workflow_id.clone()
        } else {
            format!("{}-{}", action.workflow_id, rfc3339(nominal))
        };
        if let Some(run_id) = self.current.get(&(key.0.clone(), workflow_id.clone())) {
            if self.runs.get(run_id).is_some_and(|r| r.is_open()) {
                tracing::warn!(
                    schedule = %key.1,
                    workflow_id,
                    "a scheduled workflow with this id is still running; the action is skipped"
                );
                if let Some(s) = self.schedules.get_mut(key) {
                    s.info.overlap_skipped += 1;
                }
                return;
            }
        }
        let mut search_attributes = action.search_attributes.clone().unwrap_or_default();
        search_attributes.indexed_fields.insert(
            "TemporalScheduledById".to_owned(),
            search_attribute(serde_json::to_string(&key.1).unwrap_or_default(), "Keyword"),
        );
        search_attributes.indexed_fields.insert(
            "TemporalScheduledStartTime".to_owned(),
            search_attribute(format!("\"{}\"", rfc3339(nominal)), "Datetime"),
        );
        let attrs = WorkflowExecutionStartedEventAttributes {
            workflow_type: action.workflow_type.clone(),
            task_queue: action.task_queue.clone(),
            input: action.input.clone(),
            workflow_execution_timeout: action.workflow_execution_timeout,
            workflow_run_timeout: action.workflow_run_timeout,
            workflow_task_timeout: action.workflow_task_timeout,
            retry_policy: action.retry_policy.clone(),
            memo: action.memo.clone(),
            search_attributes: Some(search_attributes),
            header: action.header.clone(),
            last_completion_result: s.last_completion_result.clone(),
            continued_failure: s.last_failure.clone(),
            identity: "capstan-engine scheduler".to_owned(),
            priority: action.priority.clone(),
            ..Default::default()
        };
        let run_id = self.start_run(StartRun {
            namespace: key.0.clone(),
            workflow_id: workflow_id.clone(),
            request_id: uuid::Uuid::new_v4().to_string(),
            attrs,
            user_metadata: action.user_metadata.clone(),
            parent: None,
        });
        let Some(s) = self.schedules.get_mut(key) else {
            return;
        };
        s.info.action_count += 1;
        let state = s.state_mut();
        if state.limited_actions && !manual {
            state.remaining_actions -= 1;
        }
        let execution = WorkflowExecution {
            workflow_id,
            run_id,
        };
        s.info.running_workflows.push(execution.clone());
        s.info.recent_actions.push(ScheduleActionResult {
            schedule_time: Some(proto::timestamp(actual)),
            actual_time: Some(proto::timestamp(now)),
            start_workflow_result: Some(execution),
            start_workflow_status: WorkflowExecutionStatus::Running as i32,
        });
        let excess = s.info.recent_actions.len().saturating_sub(RECENT_ACTIONS);
        s.info.recent_actions.drain(..excess);
    }

    /// A run closed: if a schedule started it, note its outcome, pause on failure if asked
    /// to, and start the next buffered action.
    pub(crate) fn schedule_run_closed(&mut self, run_id: &str) {
        let Some(run) = self.runs.get(run_id) else {
            return;
        };
        // A run continued by another (continue-as-new, retry) is not the action's end.
        if run.status == WorkflowExecutionStatus::ContinuedAsNew || !run.new_run_id.is_empty() {
            return;
        }
        // A scheduled workflow names its schedule in a search attribute, which its
        // continuations keep: no scan of the schedules.
        let Some(schedule_id) = run
            .started
            .search_attributes
            .as_ref()
            .and_then(|s| s.indexed_fields.get("TemporalScheduledById"))
            .and_then(|p| serde_json::from_slice::<String>(&p.data).ok())
        else {
            return;
        };
        let namespace = run.namespace.clone();
        let workflow_id = run.workflow_id.clone();
        let status = run.status;
        let close = run.last_event();
        let key = (namespace, schedule_id);
        let running = self.schedules.get(&key).is_some_and(|s| {
            s.info
                .running_workflows
                .iter()
                .any(|w| w.workflow_id == workflow_id)
        });
        if !running {
            return;
        }
        let Some(s) = self.schedules.get_mut(&key) else {
            return;
        };
        // The closed run's own entry goes here; others that closed unnoticed are dropped
        // when an overlap policy needs to know what runs.
        s.info
            .running_workflows
            .retain(|w| w.workflow_id != workflow_id);
        for action in &mut s.info.recent_actions {
            if action
                .start_workflow_result
                .as_ref()
                .is_some_and(|w| w.workflow_id == workflow_id)
            {
                action.start_workflow_status = status as i32;
            }
        }
        match close {
            Some(Attributes::WorkflowExecutionCompletedEventAttributes(done)) => {
                s.last_completion_result = done.result;
                s.last_failure = None;
            }
            Some(Attributes::WorkflowExecutionFailedEventAttributes(failed)) => {
                let message = failed
                    .failure
                    .as_ref()
                    .map(|f| f.message.clone())
                    .unwrap_or_default();
                s.last_failure = failed.failure;
                if s.policies().pause_on_failure {
                    let state = s.state_mut();
                    state.paused = true;
                    state.notes = format!("paused: workflow `{workflow_id}` failed: {message}");
                }
            }
            Some(Attributes::WorkflowExecutionTimedOutEventAttributes(_))
                if s.policies().pause_on_failure =>
            {
                let state = s.state_mut();
                state.paused = true;
                state.notes = format!("paused: workflow `{workflow_id}` timed out");
            }
            _ => {}
        }
        self.start_buffered(&key);
        self.tick_schedule(&key);
    }
}
