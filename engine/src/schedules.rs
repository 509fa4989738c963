//! The scheduler: Temporal schedules kept by the engine itself.
//!
//! A schedule starts workflows at the times its [`Spec`] names. Each schedule remembers
//! the nominal times it has dealt with (`processed_until`) and arms one timer for its next
//! action; the timer service fires it, and [`State::fire_schedule`] takes every action due
//! since, within the catch-up window. Overlap policies decide what happens while an
//! earlier run is still open: skip, buffer one or all, cancel or terminate the other, or
//! allow all. A closing run ([`State::schedule_run_closed`]) starts the next buffered
//! action, feeds its result to the next run, and pauses the schedule on failure when
//! asked to. Schedules live in the store like runs and survive restarts.

pub(crate) mod spec;

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};
use tonic::Status;

pub(crate) use spec::{canonicalize, Spec};

use crate::{
    history::StartRun,
    proto::{
        self,
        common::{Memo, Payload, Payloads, SearchAttributes, WorkflowExecution},
        enums::{ScheduleOverlapPolicy, WorkflowExecutionStatus},
        failure::Failure,
        history::{history_event::Attributes, WorkflowExecutionStartedEventAttributes},
        schedule::{
            BackfillRequest, ScheduleActionResult, ScheduleInfo, ScheduleListEntry,
            ScheduleListInfo, SchedulePatch, ScheduleState, TriggerImmediatelyRequest,
        },
        workflow::NewWorkflowExecutionInfo,
    },
    store::{pb, State},
    timers::TimerKind,
};

/// How many recent actions describe reports.
const RECENT_ACTIONS: usize = 10;
/// How many future action times describe and list report.
const FUTURE_ACTIONS: usize = 10;
/// Temporal's default catch-up window: a year.
const DEFAULT_CATCHUP: Duration = Duration::from_secs(365 * 24 * 3600);
/// Patch request ids remembered, so that a retried patch acts once.
const REMEMBERED_REQUESTS: usize = 64;
/// At most this many actions per backfill request.
const MAX_BACKFILL: usize = 100_000;

/// A schedule's key: `(namespace, schedule id)`.
pub(crate) type Key = (String, String);

/// One schedule. Serialized by the durable store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Schedule {
    pub(crate) namespace: String,
    pub(crate) id: String,
    /// The schedule as last created or updated, its spec canonical.
    #[serde(with = "pb::message")]
    pub(crate) schedule: proto::schedule::Schedule,
    /// Counters, running workflows, recent actions, create and update times.
    #[serde(with = "pb::message")]
    pub(crate) info: ScheduleInfo,
    #[serde(with = "pb::option")]
    pub(crate) memo: Option<Memo>,
    #[serde(with = "pb::option")]
    pub(crate) search_attributes: Option<SearchAttributes>,
    pub(crate) conflict_token: u64,
    /// Every nominal time up to this one has been acted on (or missed).
    pub(crate) processed_until: SystemTime,
    /// Actions waiting for the running workflows to close.
    pub(crate) buffered: VecDeque<Buffered>,
    /// The action time the schedule's timer is armed for.
    pub(crate) armed: Option<SystemTime>,
    /// The last completed run's result and the last failed run's failure: given to the
    /// next run, as Temporal does.
    #[serde(with = "pb::option")]
    pub(crate) last_completion_result: Option<Payloads>,
    #[serde(with = "pb::option")]
    pub(crate) last_failure: Option<Failure>,
    /// Request ids of recent patches.
    pub(crate) requests: VecDeque<String>,
}

/// An action waiting for the running workflows to close.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Buffered {
    pub(crate) nominal: SystemTime,
    pub(crate) actual: SystemTime,
}

/// The schedules by key, noting which ones a transaction changed (written at commit;
/// a changed key no longer present is deleted).
#[derive(Debug, Default)]
pub(crate) struct Schedules {
    map: BTreeMap<Key, Schedule>,
    dirty: BTreeSet<Key>,
}

impl Schedules {
    pub(crate) fn get(&self, key: &Key) -> Option<&Schedule> {
        self.map.get(key)
    }

    /// The schedule, noted as changed.
    pub(crate) fn get_mut(&mut self, key: &Key) -> Option<&mut Schedule> {
        let schedule = self.map.get_mut(key)?;
        self.dirty.insert(key.clone());
        Some(schedule)
    }

    fn insert(&mut self, schedule: Schedule) {
        let key = (schedule.namespace.clone(), schedule.id.clone());
        self.dirty.insert(key.clone());
        self.map.insert(key, schedule);
    }

    fn remove(&mut self, key: &Key) -> Option<Schedule> {
        self.dirty.insert(key.clone());
        self.map.remove(key)
    }

    /// Adds a schedule read from the database (not changed).
    pub(crate) fn load(&mut self, schedule: Schedule) {
        self.map
            .insert((schedule.namespace.clone(), schedule.id.clone()), schedule);
    }

    pub(crate) fn keys(&self) -> Vec<Key> {
        self.map.keys().cloned().collect()
    }

    /// The keys changed since the last commit.
    pub(crate) fn dirty(&self) -> &BTreeSet<Key> {
        &self.dirty
    }

    pub(crate) fn clear_dirty(&mut self) {
        self.dirty.clear();
    }
}

fn not_found(id: &str) -> Status {
    Status::not_found(format!("schedule `{id}` is not found"))
}

/// `2026-11-24T09:00:00Z`: the suffix of scheduled workflow ids, as Temporal writes it.
fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    chrono::DateTime::<chrono::Utc>::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A search attribute payload as Temporal's SDKs and visibility write it.
fn search_attribute(json: String, kind: &str) -> Payload {
    Payload {
        metadata: [
            ("encoding".to_owned(), b"json/plain".to_vec()),
            ("type".to_owned(), kind.as_bytes().to_vec()),
        ]
        .into(),
        data: json.into_bytes(),
        ..Default::default()
    }
}

/// Checks a schedule sent by a client and brings its spec to canonical form.
fn validate(schedule: &mut proto::schedule::Schedule) -> Result<(), Status> {
    let spec = schedule.spec.get_or_insert_with(Default::default);
    canonicalize(spec)
        .map_err(|e| Status::invalid_argument(format!("invalid schedule spec: {e}")))?;
    let Some(proto::schedule::schedule_action::Action::StartWorkflow(start)) =
        schedule.action.as_ref().and_then(|a| a.action.as_ref())
    else {
        return Err(Status::invalid_argument(
            "a schedule needs an action: start_workflow",
        ));
    };
    if start.workflow_id.is_empty() {
        return Err(Status::invalid_argument(
            "the schedule's start_workflow action has no workflow id",
        ));
    }
    if start
        .workflow_type
        .as_ref()
        .is_none_or(|t| t.name.is_empty())
    {
        return Err(Status::invalid_argument(
            "the schedule's start_workflow action has no workflow type",
        ));
    }
    if start.task_queue.as_ref().is_none_or(|q| q.name.is_empty()) {
        return Err(Status::invalid_argument(
            "the schedule's start_workflow action has no task queue",
        ));
    }
    Ok(())
}

impl Schedule {
    /// The compiled spec; `None` (the schedule takes no action) if a spec stored by
    /// another engine version no longer compiles: bad data in the file never panics.
    fn spec(&self) -> Option<Spec> {
        let spec = self.schedule.spec.clone().unwrap_or_default();
        Spec::compile(&spec)
            .inspect_err(|e| tracing::warn!(schedule = %self.id, "stored spec is invalid: {e}"))
            .ok()
    }

    fn state(&self) -> ScheduleState {
        self.schedule.state.clone().unwrap_or_default()
    }

    fn state_mut(&mut self) -> &mut ScheduleState {
        self.schedule.state.get_or_insert_with(Default::default)
    }

    fn policies(&self) -> proto::schedule::SchedulePolicies {
        self.schedule.policies.unwrap_or_default()
    }

    fn overlap(&self, requested: i32) -> ScheduleOverlapPolicy {
        let requested = ScheduleOverlapPolicy::try_from(requested).unwrap_or_default();
        if requested != ScheduleOverlapPolicy::Unspecified {
            return requested;
        }
        match ScheduleOverlapPolicy::try_from(self.policies().overlap_policy).unwrap_or_default() {
            ScheduleOverlapPolicy::Unspecified => ScheduleOverlapPolicy::Skip,
            policy => policy,
        }
    }

    fn catchup_window(&self) -> Duration {
        proto::duration(self.policies().catchup_window.as_ref()).unwrap_or(DEFAULT_CATCHUP)
    }

    fn start_action(&self) -> NewWorkflowExecutionInfo {
        match self
            .schedule
            .action
            .as_ref()
            .and_then(|a| a.action.as_ref())
        {
            Some(proto::schedule::schedule_action::Action::StartWorkflow(start)) => start.clone(),
            None => NewWorkflowExecutionInfo::default(),
        }
    }

    /// The next `n` action times after `after` (with jitter), within the remaining actions.
    fn future_times(&self, after: SystemTime, n: usize) -> Vec<SystemTime> {
        let state = self.state();
        let n = if state.limited_actions {
            n.min(state.remaining_actions.max(0) as usize)
        } else {
            n
        };
        let Some(spec) = self.spec() else {
            return Vec::new();
        };
        let mut times = Vec::new();
        let mut t = after;
        while times.len() < n {
            let Some(nominal) = spec.next_after(t) else {
                break;
            };
            times.push(nominal + spec.jitter(&self.id, nominal));
            t = nominal;
        }
        times
    }

    /// Whether `request_id` was seen before; remembers it.
    fn seen(&mut self, request_id: &str) -> bool {
        if request_id.is_empty() {
            return false;
        }
        if self.requests.iter().any(|r| r == request_id) {
            return true;
        }
        if self.requests.len() == REMEMBERED_REQUESTS {
            self.requests.pop_front();
        }
        self.requests.push_back(request_id.to_owned());
        false
    }

    fn describe_info(&self, now: SystemTime) -> ScheduleInfo {
        let mut info = self.info.clone();
        info.buffer_size = self.buffered.len() as i64;
        info.future_action_times = self
            .future_times(self.processed_until.max(now), FUTURE_ACTIONS)
            .into_iter()
            .map(proto::timestamp)
            .collect();
        info
    }
}

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
        let now = self.sched.now();
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
        });
        if let Some(patch) = new.initial_patch {
            self.apply_patch(&key, patch);
        }
        self.tick_schedule(&key);
        Ok(1u64.to_be_bytes().to_vec())
    }

    pub(crate) fn describe_schedule(
        &self,
        key: &Key,
    ) -> Result<proto::service::DescribeScheduleResponse, Status> {
        let s = self.schedules.get(key).ok_or_else(|| not_found(&key.1))?;
        Ok(proto::service::DescribeScheduleResponse {
            schedule: Some(s.schedule.clone()),
            info: Some(s.describe_info(self.sched.now())),
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
        let now = self.sched.now();
        let s = self
            .schedules
            .get_mut(key)
            .ok_or_else(|| not_found(&key.1))?;
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

    /// Pauses, unpauses, triggers or backfills; a patch whose request id was seen is a no-op.
    pub(crate) fn patch_schedule(
        &mut self,
        key: &Key,
        patch: SchedulePatch,
        request_id: &str,
    ) -> Result<(), Status> {
        let s = self
            .schedules
            .get_mut(key)
            .ok_or_else(|| not_found(&key.1))?;
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
        let now = self.sched.now();
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
        for BackfillRequest {
            start_time,
            end_time,
            overlap_policy,
        } in patch.backfill_request
        {
            let (Some(start), Some(end)) = (
                proto::system_time(start_time.as_ref()),
                proto::system_time(end_time.as_ref()),
            ) else {
                continue;
            };
            let Some(spec) = self.schedules.get(key).and_then(Schedule::spec) else {
                return;
            };
            for nominal in spec.times_between(start, end, MAX_BACKFILL) {
                self.take_action(key, nominal, now, overlap_policy, true);
            }
        }
    }

    pub(crate) fn delete_schedule(&mut self, key: &Key) -> Result<(), Status> {
        self.schedules
            .remove(key)
            .map(|_| ())
            .ok_or_else(|| not_found(&key.1))
    }

    /// One page of the namespace's schedules, by id, after `after`.
    pub(crate) fn list_schedules(
        &self,
        namespace: &str,
        after: &str,
        page_size: usize,
    ) -> (Vec<ScheduleListEntry>, Option<String>) {
        let now = self.sched.now();
        let mut entries = Vec::new();
        let mut last = None;
        let all = self
            .schedules
            .map
            .range((namespace.to_owned(), after.to_owned())..)
            .filter(|((ns, id), _)| ns == namespace && id.as_str() > after);
        for (_, s) in all {
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

    /// The action times in `[start, end]`.
    pub(crate) fn schedule_matching_times(
        &self,
        key: &Key,
        start: SystemTime,
        end: SystemTime,
    ) -> Result<Vec<SystemTime>, Status> {
        let s = self.schedules.get(key).ok_or_else(|| not_found(&key.1))?;
        let Some(spec) = s.spec() else {
            return Ok(Vec::new());
        };
        Ok(spec
            .times_between(start, end, MAX_BACKFILL)
            .into_iter()
            .map(|nominal| nominal + spec.jitter(&s.id, nominal))
            .collect())
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

    /// Whether the schedule's timer armed for `at` still matters.
    pub(crate) fn schedule_timer_is_live(&self, key: &Key, at: SystemTime) -> bool {
        self.schedules.get(key).is_some_and(|s| s.armed == Some(at))
    }

    /// Arms every schedule's timer (after loading them from the database).
    pub(crate) fn arm_schedules(&mut self) {
        for key in self.schedules.keys() {
            if let Some(s) = self.schedules.get_mut(&key) {
                s.armed = None;
            }
            self.tick_schedule(&key);
        }
    }

    /// Takes every action due by now (missing those older than the catch-up window) and
    /// arms the timer for the next one.
    fn tick_schedule(&mut self, key: &Key) {
        let now = self.sched.now();
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
            let actual = nominal + spec.jitter(&s.id, nominal);
            if actual > now {
                if s.armed != Some(actual) {
                    s.armed = Some(actual);
                    let schedule_id = s.id.clone();
                    self.sched.add_timer(
                        actual,
                        TimerKind::Schedule {
                            namespace: key.0.clone(),
                            schedule_id,
                        },
                    );
                }
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
        let Some(s) = self.schedules.get_mut(key) else {
            return;
        };
        let overlap = s.overlap(requested);
        let running = s.info.running_workflows.clone();
        if running.is_empty() || overlap == ScheduleOverlapPolicy::AllowAll {
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
                for w in &running {
                    self.cancel_scheduled(&key.0, &w.workflow_id);
                }
            }
            ScheduleOverlapPolicy::TerminateOther => {
                for w in &running {
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
        let (runs, sched) = (&mut self.runs, &mut self.sched);
        if let Some(run) = runs.get_mut(&run_id) {
            if run.is_open() && !run.cancel_requested() {
                run.request_cancel(
                    sched,
                    proto::history::WorkflowExecutionCancelRequestedEventAttributes {
                        cause: "cancelled by its schedule (overlap policy CancelOther)".to_owned(),
                        identity: "capstan-engine scheduler".to_owned(),
                        ..Default::default()
                    },
                );
            }
        }
    }

    /// Starts the first buffered action if nothing runs any more.
    fn start_buffered(&mut self, key: &Key) {
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
        let now = self.sched.now();
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
            ..Default::default()
        };
        let run_id = self.start_run(StartRun {
            namespace: key.0.clone(),
            workflow_id: workflow_id.clone(),
            request_id: uuid::Uuid::new_v4().to_string(),
            attrs,
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
        let close = run.events.last().and_then(|e| e.attributes);
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
