//! Schedules as data: Temporal schedules kept by the engine itself, their specs, and what
//! one schedule can say of itself (its next times, its policies).
//!
//! A schedule starts workflows at the times its [`Spec`] names. Each schedule remembers
//! the nominal times it has dealt with (`processed_until`) and the time of its next action
//! (`armed`, its one deadline). Taking actions crosses runs, so it lives in the state
//! (`state/schedules.rs`). Schedules live in the store like runs and survive restarts.

pub(crate) mod spec;

use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};
use tonic::Status;

pub(crate) use spec::{canonicalize, Budget, Spec};

use crate::{
    pb,
    proto::{
        self,
        common::{Memo, Payload, Payloads, SearchAttributes},
        enums::ScheduleOverlapPolicy,
        failure::Failure,
        schedule::{ScheduleInfo, ScheduleSpec, ScheduleState},
        workflow::NewWorkflowExecutionInfo,
    },
    validate,
};

/// How many recent actions describe reports.
pub(crate) const RECENT_ACTIONS: usize = 10;
/// How many future action times describe and list report.
pub(crate) const FUTURE_ACTIONS: usize = 10;
/// Temporal's default catch-up window: a year.
const DEFAULT_CATCHUP: Duration = Duration::from_secs(365 * 24 * 3600);
/// Patch request ids remembered, so that a retried patch acts once.
const REMEMBERED_REQUESTS: usize = 64;
/// At most this many actions per backfill request.
pub(crate) const MAX_BACKFILL: usize = 100_000;
/// A backfill takes at most this many actions per transaction, so that other calls get the
/// lock in between.
pub(crate) const BACKFILL_CHUNK: usize = 256;
/// The steps (see [`Budget`]) that finding one chunk of a backfill may spend.
const BACKFILL_CHUNK_STEPS: u64 = 1_000_000;
/// ListScheduleMatchingTimes answers at most this many times, as Temporal does.
pub(crate) const MAX_MATCHING_TIMES: usize = 1000;
/// The steps (see [`Budget`]) that ListScheduleMatchingTimes may spend.
const MATCHING_STEPS: u64 = 2_000_000;

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
    /// Backfills asked for and not finished, in order: kept with the schedule, so that a
    /// restarted engine finishes them.
    #[serde(default)]
    pub(crate) backfills: VecDeque<Backfill>,
}

/// What is left of a backfill: the nominal times in `[from, to]`, at most `left` of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Backfill {
    pub(crate) from: SystemTime,
    pub(crate) to: SystemTime,
    /// As requested (unspecified: the schedule's).
    pub(crate) overlap_policy: i32,
    pub(crate) left: usize,
}

/// A backfill's next chunk, found outside the lock: the nominal times to act at, and what
/// is left of the backfill after them (`None`: it is finished).
#[derive(Debug)]
pub(crate) struct BackfillChunk {
    pub(crate) times: Vec<SystemTime>,
    pub(crate) rest: Option<Backfill>,
}

/// Compiles a stored spec; `None` (the schedule takes no action) if a spec stored by
/// another engine version no longer compiles: bad data in the file never panics.
fn compile(id: &str, spec: Option<&ScheduleSpec>) -> Option<Spec> {
    let spec = spec.cloned().unwrap_or_default();
    Spec::compile(&spec)
        .inspect_err(|e| tracing::warn!(schedule = %id, "stored spec is invalid: {e}"))
        .ok()
}

/// The action times (with jitter) of schedule `id`'s `spec` whose nominal times are in
/// `[start, end]`: at most [`MAX_MATCHING_TIMES`], and the first ones found within a
/// bounded amount of work (a spec that excludes nearly every time it matches answers the
/// times found so far rather than search for minutes).
pub(crate) fn matching_times(
    id: &str,
    spec: Option<&ScheduleSpec>,
    start: SystemTime,
    end: SystemTime,
) -> Vec<SystemTime> {
    let Some(spec) = compile(id, spec) else {
        return Vec::new();
    };
    let mut budget = Budget::new(MATCHING_STEPS);
    let times = spec.times_between(start, end, MAX_MATCHING_TIMES, &mut budget);
    if budget.exhausted() {
        tracing::warn!(
            schedule = %id,
            found = times.len(),
            "listing matching times gave up: the spec matches too rarely in the range"
        );
    }
    times
        .into_iter()
        .map(|nominal| crate::clock::after(nominal, spec.jitter_within(id, nominal, &mut budget)))
        .collect()
}

/// The next chunk of `backfill` under schedule `id`'s `spec`: at most [`BACKFILL_CHUNK`]
/// times, found within a bounded amount of work. A spec that needs more than that for
/// one chunk ends the backfill there (with a warning) rather than search for minutes.
pub(crate) fn backfill_chunk(
    id: &str,
    spec: Option<&ScheduleSpec>,
    backfill: &Backfill,
) -> BackfillChunk {
    let Some(spec) = compile(id, spec) else {
        return BackfillChunk {
            times: Vec::new(),
            rest: None,
        };
    };
    let limit = backfill.left.min(BACKFILL_CHUNK);
    let mut budget = Budget::new(BACKFILL_CHUNK_STEPS);
    let times = spec.times_between(backfill.from, backfill.to, limit, &mut budget);
    if budget.exhausted() {
        tracing::warn!(
            schedule = %id,
            "a backfill stops early: its spec matches too rarely to find its times"
        );
        return BackfillChunk { times, rest: None };
    }
    let rest = match times.last() {
        Some(last) if times.len() == limit && backfill.left > limit => Some(Backfill {
            from: *last + Duration::from_nanos(1),
            left: backfill.left - limit,
            ..backfill.clone()
        }),
        _ => None,
    };
    BackfillChunk { times, rest }
}
/// An action waiting for the running workflows to close.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Buffered {
    pub(crate) nominal: SystemTime,
    pub(crate) actual: SystemTime,
}

/// The schedules by key, noting which ones a transaction changed (written at commit;
/// a changed key no longer present is deleted), and how they were before it, to put them
/// back if it fails.
#[derive(Debug, Default)]
pub(crate) struct Schedules {
    map: BTreeMap<Key, Schedule>,
    dirty: BTreeSet<Key>,
    images: Vec<(Key, Option<Schedule>)>,
}

impl Schedules {
    pub(crate) fn get(&self, key: &Key) -> Option<&Schedule> {
        self.map.get(key)
    }

    /// Notes the first change of `key` in this transaction, keeping its image.
    fn touch(&mut self, key: &Key) {
        if self.dirty.insert(key.clone()) {
            self.images.push((key.clone(), self.map.get(key).cloned()));
        }
    }

    /// The schedule, noted as changed.
    pub(crate) fn get_mut(&mut self, key: &Key) -> Option<&mut Schedule> {
        if !self.map.contains_key(key) {
            return None;
        }
        self.touch(key);
        self.map.get_mut(key)
    }

    pub(crate) fn insert(&mut self, schedule: Schedule) {
        let key = (schedule.namespace.clone(), schedule.id.clone());
        self.touch(&key);
        self.map.insert(key, schedule);
    }

    pub(crate) fn remove(&mut self, key: &Key) -> Option<Schedule> {
        self.touch(key);
        self.map.remove(key)
    }

    /// Puts every schedule the transaction changed back as it was; answers their keys.
    pub(crate) fn roll_back(&mut self) -> BTreeSet<Key> {
        for (key, image) in std::mem::take(&mut self.images).into_iter().rev() {
            match image {
                Some(schedule) => self.map.insert(key, schedule),
                None => self.map.remove(&key),
            };
        }
        std::mem::take(&mut self.dirty)
    }

    /// Adds a schedule read from the database (not changed).
    pub(crate) fn load(&mut self, schedule: Schedule) {
        self.map
            .insert((schedule.namespace.clone(), schedule.id.clone()), schedule);
    }

    pub(crate) fn keys(&self) -> Vec<Key> {
        self.map.keys().cloned().collect()
    }

    /// The keys changed so far.
    pub(crate) fn dirty(&self) -> &BTreeSet<Key> {
        &self.dirty
    }

    /// The keys changed since the last call; the transaction is kept (their images are
    /// let go).
    pub(crate) fn take_dirty(&mut self) -> BTreeSet<Key> {
        self.images.clear();
        std::mem::take(&mut self.dirty)
    }

    /// One page of the namespace's schedules, by id, after `after`.
    pub(crate) fn page(&self, namespace: &str, after: &str) -> impl Iterator<Item = &Schedule> {
        let namespace = namespace.to_owned();
        let after = after.to_owned();
        self.map
            .range((namespace.clone(), after.clone())..)
            .filter(move |((ns, id), _)| *ns == namespace && *id > after)
            .map(|(_, s)| s)
    }
}

/// `2026-11-24T09:00:00Z`: the suffix of scheduled workflow ids, as Temporal writes it.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
    chrono::DateTime::<chrono::Utc>::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A search attribute payload as Temporal's SDKs and visibility write it.
pub(crate) fn search_attribute(json: String, kind: &str) -> Payload {
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
pub(crate) fn validate(schedule: &mut proto::schedule::Schedule) -> Result<(), Status> {
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
    let spec = schedule.spec.as_ref();
    let policies = schedule.policies.as_ref();
    let mut durations = vec![
        ("spec.jitter", spec.and_then(|s| s.jitter.as_ref())),
        (
            "policies.catchup_window",
            policies.and_then(|p| p.catchup_window.as_ref()),
        ),
        (
            "action.start_workflow.workflow_execution_timeout",
            start.workflow_execution_timeout.as_ref(),
        ),
        (
            "action.start_workflow.workflow_run_timeout",
            start.workflow_run_timeout.as_ref(),
        ),
        (
            "action.start_workflow.workflow_task_timeout",
            start.workflow_task_timeout.as_ref(),
        ),
    ];
    for interval in spec.map(|s| s.interval.as_slice()).unwrap_or_default() {
        durations.push(("spec.interval.interval", interval.interval.as_ref()));
        durations.push(("spec.interval.phase", interval.phase.as_ref()));
    }
    for (field, d) in durations {
        validate::duration(field, d).map_err(Status::invalid_argument)?;
    }
    validate::retry_policy(
        "action.start_workflow.retry_policy",
        start.retry_policy.as_ref(),
    )
    .map_err(Status::invalid_argument)?;
    Ok(())
}

impl Schedule {
    /// The compiled spec; `None` (the schedule takes no action) if a spec stored by
    /// another engine version no longer compiles: bad data in the file never panics.
    pub(crate) fn spec(&self) -> Option<Spec> {
        compile(&self.id, self.schedule.spec.as_ref())
    }

    /// Pauses the schedule with `notes` (it takes no action until unpaused).
    pub(crate) fn pause(&mut self, notes: String) {
        let state = self.state_mut();
        state.paused = true;
        state.notes = notes;
        self.armed = None;
    }

    pub(crate) fn state(&self) -> ScheduleState {
        self.schedule.state.clone().unwrap_or_default()
    }

    pub(crate) fn state_mut(&mut self) -> &mut ScheduleState {
        self.schedule.state.get_or_insert_with(Default::default)
    }

    pub(crate) fn policies(&self) -> proto::schedule::SchedulePolicies {
        self.schedule.policies.unwrap_or_default()
    }

    pub(crate) fn overlap(&self, requested: i32) -> ScheduleOverlapPolicy {
        let requested = ScheduleOverlapPolicy::try_from(requested).unwrap_or_default();
        if requested != ScheduleOverlapPolicy::Unspecified {
            return requested;
        }
        match ScheduleOverlapPolicy::try_from(self.policies().overlap_policy).unwrap_or_default() {
            ScheduleOverlapPolicy::Unspecified => ScheduleOverlapPolicy::Skip,
            policy => policy,
        }
    }

    pub(crate) fn catchup_window(&self) -> Duration {
        proto::duration(self.policies().catchup_window.as_ref()).unwrap_or(DEFAULT_CATCHUP)
    }

    pub(crate) fn start_action(&self) -> NewWorkflowExecutionInfo {
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
    pub(crate) fn future_times(&self, after: SystemTime, n: usize) -> Vec<SystemTime> {
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
            times.push(crate::clock::after(nominal, spec.jitter(&self.id, nominal)));
            t = nominal;
        }
        times
    }

    /// Whether `request_id` was seen before; remembers it.
    pub(crate) fn seen(&mut self, request_id: &str) -> bool {
        !crate::recent_requests::remember(&mut self.requests, request_id, REMEMBERED_REQUESTS)
    }

    pub(crate) fn describe_info(&self, now: SystemTime) -> ScheduleInfo {
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
