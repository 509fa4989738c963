//! The invariants: what the engine acknowledged, the model of how each workflow must end,
//! and the rules every history keeps.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    fmt,
    time::{Duration, SystemTime},
};

use crate::{
    plan::{Plan, Script},
    proto::{self, Event, EventType, HistoryEvent},
    scripts,
};

/// An invariant that did not hold.
#[derive(Debug, Clone)]
pub struct Violation(pub String);

impl Violation {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a client was told of an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateSeen {
    Completed(u64),
    Rejected,
}

/// What the engine acknowledged of one workflow id.
#[derive(Debug, Default, Clone)]
pub struct WorkflowSeen {
    /// The run the first acknowledged start created.
    pub first_run: Option<String>,
    /// Runs that began a chain (a start or signal-with-start after the last one closed).
    pub chains: Vec<String>,
    /// Signals acknowledged, by payload (one payload per request id).
    pub signals: BTreeSet<String>,
    /// Signals whose call failed: they may or may not have arrived.
    pub maybe_signals: BTreeSet<String>,
    /// Update outcomes told, by run and update number.
    pub updates: BTreeMap<(String, u8), UpdateSeen>,
    /// Runs a cancel request was acknowledged for.
    pub canceled: BTreeSet<String>,
    /// Runs a termination was acknowledged for.
    pub terminated: BTreeSet<String>,
    /// A termination whose call failed: it may have happened.
    pub maybe_terminated: bool,
}

/// What the engine acknowledged, for the checks at the end.
#[derive(Debug, Default)]
pub struct Observed {
    pub workflows: Vec<WorkflowSeen>,
    /// Of the workflows that are schedules, by the same index.
    pub schedules: Vec<crate::schedules::ScheduleSeen>,
}

impl Observed {
    pub fn new(plan: &Plan) -> Self {
        Self {
            workflows: vec![WorkflowSeen::default(); plan.workflows.len()],
            schedules: vec![Default::default(); plan.workflows.len()],
        }
    }

    pub fn started(&mut self, w: usize, run_id: &str) -> Result<(), Violation> {
        let seen = &mut self.workflows[w];
        seen.first_run.get_or_insert_with(|| run_id.to_owned());
        if !seen.chains.iter().any(|r| r == run_id) {
            seen.chains.push(run_id.to_owned());
        }
        Ok(())
    }

    pub fn signal(&mut self, w: usize, payload: &str) {
        self.workflows[w].signals.insert(payload.to_owned());
    }

    pub fn maybe_signal(&mut self, w: usize, payload: &str) {
        self.workflows[w].maybe_signals.insert(payload.to_owned());
    }

    /// An update's outcome as a client was told it; the same update of the same run must
    /// be told the same every time.
    pub fn update(
        &mut self,
        w: usize,
        k: u8,
        run_id: &str,
        seen: UpdateSeen,
    ) -> Result<(), Violation> {
        let key = (run_id.to_owned(), k);
        match self.workflows[w].updates.get(&key) {
            Some(before) if *before != seen => Err(Violation::new(format!(
                "update u{k} of w{w} run {run_id} was told {before:?}, then {seen:?}"
            ))),
            _ => {
                self.workflows[w].updates.insert(key, seen);
                Ok(())
            }
        }
    }
}

/// A run's history after a restart still holds every event read before it.
///
/// With `speculative` (the workflow was sent updates), a workflow task open at the end of
/// `before` may be gone: a task scheduled only to deliver updates leaves no events when
/// its worker rejects them all, and a reader may have seen it in between (as on Temporal,
/// whose history reads show such a task's events).
pub fn keeps_prefix(
    workflow_id: &str,
    run_id: &str,
    before: &[HistoryEvent],
    after: &[HistoryEvent],
    speculative: bool,
) -> Result<(), Violation> {
    let before = if speculative {
        without_open_workflow_task(before)
    } else {
        before
    };
    if after.len() < before.len() || after[..before.len()] != *before {
        let (lost, was, is) = before
            .iter()
            .zip(after.iter().map(Some).chain(std::iter::repeat(None)))
            .find(|(b, a)| Some(*b) != *a)
            .map_or((0, String::new(), String::new()), |(b, a)| {
                (
                    b.event_id,
                    format!("{:?} {:?}", proto::event_type(b), b.attributes),
                    a.map_or("gone".to_owned(), |a| {
                        format!("{:?} {:?}", proto::event_type(a), a.attributes)
                    }),
                )
            });
        return Err(Violation::new(format!(
            "{workflow_id} run {run_id}: after a restart its history ({} events) no longer \
             holds what was read before ({} events); event {lost} differs or is gone: \
             it was {was}; it is {is}",
            after.len(),
            before.len()
        )));
    }
    Ok(())
}

/// `events` without the workflow task open at its end (its scheduled event, and its
/// started event if it started), if one is.
fn without_open_workflow_task(events: &[HistoryEvent]) -> &[HistoryEvent] {
    use EventType as T;
    let types: Vec<EventType> = events.iter().rev().take(2).map(proto::event_type).collect();
    match types.as_slice() {
        [T::WorkflowTaskStarted, T::WorkflowTaskScheduled, ..] => &events[..events.len() - 2],
        [T::WorkflowTaskScheduled, ..] => &events[..events.len() - 1],
        _ => events,
    }
}

/// The rules every history keeps: contiguous ids from a start event, times that never
/// go back (but for buffered events: see `Times`), at most one close event and nothing
/// after it, every reference to an earlier event of the right kind, at most one start and
/// one outcome per scheduled item, each update accepted once, and every timer fired
/// exactly at its deadline. Answers how many checks it made.
pub fn well_formed(
    workflow_id: &str,
    run_id: &str,
    events: &[HistoryEvent],
    reopened: &[SystemTime],
) -> Result<u64, Violation> {
    let fail = |what: String| {
        Err(Violation::new(format!(
            "{workflow_id} run {run_id}: {what}"
        )))
    };
    let mut checks = 0;
    let Some(first) = events.first() else {
        return fail("its history is empty".to_owned());
    };
    if proto::event_type(first) != EventType::WorkflowExecutionStarted {
        return fail(format!("its first event is {:?}", proto::event_type(first)));
    }
    let by_id: HashMap<i64, &HistoryEvent> = events.iter().map(|e| (e.event_id, e)).collect();
    let mut started_of: HashMap<i64, i64> = HashMap::new();
    let mut outcome_of: HashMap<i64, i64> = HashMap::new();
    let mut accepted_updates = BTreeSet::new();
    let mut times = Times::default();
    for (i, event) in events.iter().enumerate() {
        checks += 1;
        if event.event_id != i as i64 + 1 {
            return fail(format!("event {} is at position {}", event.event_id, i + 1));
        }
        if let Err(what) = times.check(event) {
            return fail(what);
        }
        if is_close(event) && i + 1 != events.len() {
            return fail(format!(
                "event {} closes the run, yet {} event(s) follow it",
                event.event_id,
                events.len() - i - 1
            ));
        }
        if proto::event_type(event) == EventType::WorkflowTaskStarted {
            checks += 1;
            if let Some(next) = events.get(i + 1) {
                if !ends_a_started_workflow_task(next) {
                    return fail(format!(
                        "event {} ({:?}) follows the workflow task started at event {}: \
                         what happens while a task runs waits for it to end",
                        next.event_id,
                        proto::event_type(next),
                        event.event_id
                    ));
                }
            }
        }
        if let Some((id, kind, role)) = event.attributes.as_ref().and_then(reference) {
            checks += 1;
            match by_id.get(&id) {
                Some(e) if e.event_id < event.event_id && proto::event_type(e) == kind => {}
                _ => {
                    return fail(format!(
                        "event {} ({:?}) names event {id}, which is not an earlier {kind:?}",
                        event.event_id,
                        proto::event_type(event)
                    ))
                }
            }
            let seen = match role {
                Role::Start => &mut started_of,
                Role::Outcome => &mut outcome_of,
            };
            if let Some(other) = seen.insert(id, event.event_id) {
                return fail(format!(
                    "events {other} and {} are both the {role:?} of event {id}",
                    event.event_id
                ));
            }
        }
        match &event.attributes {
            Some(Event::TimerFiredEventAttributes(a)) => {
                checks += 1;
                if let Err(what) = on_time(by_id[&a.started_event_id], event, reopened) {
                    return fail(what);
                }
            }
            Some(Event::WorkflowExecutionUpdateAcceptedEventAttributes(a)) => {
                let id = a.protocol_instance_id.clone();
                if !accepted_updates.insert(id.clone()) {
                    return fail(format!("update {id} is accepted twice"));
                }
            }
            _ => {}
        }
    }
    Ok(checks)
}

/// Whether an event starts or ends the item it names.
#[derive(Debug, Clone, Copy)]
enum Role {
    Start,
    Outcome,
}

/// The earlier event an event names, that event's kind, and whether this one is its
/// start or its outcome (each item has at most one of each).
fn reference(attributes: &Event) -> Option<(i64, EventType, Role)> {
    use EventType as T;
    use Role::{Outcome, Start};
    let (wft, activity, child) = (
        T::WorkflowTaskScheduled,
        T::ActivityTaskScheduled,
        T::StartChildWorkflowExecutionInitiated,
    );
    Some(match attributes {
        Event::WorkflowTaskStartedEventAttributes(a) => (a.scheduled_event_id, wft, Start),
        Event::WorkflowTaskCompletedEventAttributes(a) => (a.scheduled_event_id, wft, Outcome),
        Event::WorkflowTaskFailedEventAttributes(a) => (a.scheduled_event_id, wft, Outcome),
        Event::WorkflowTaskTimedOutEventAttributes(a) => (a.scheduled_event_id, wft, Outcome),
        Event::ActivityTaskStartedEventAttributes(a) => (a.scheduled_event_id, activity, Start),
        Event::ActivityTaskCompletedEventAttributes(a) => (a.scheduled_event_id, activity, Outcome),
        Event::ActivityTaskFailedEventAttributes(a) => (a.scheduled_event_id, activity, Outcome),
        Event::ActivityTaskTimedOutEventAttributes(a) => (a.scheduled_event_id, activity, Outcome),
        Event::ActivityTaskCanceledEventAttributes(a) => (a.scheduled_event_id, activity, Outcome),
        Event::TimerFiredEventAttributes(a) => (a.started_event_id, T::TimerStarted, Outcome),
        Event::TimerCanceledEventAttributes(a) => (a.started_event_id, T::TimerStarted, Outcome),
        Event::ChildWorkflowExecutionStartedEventAttributes(a) => {
            (a.initiated_event_id, child, Start)
        }
        Event::StartChildWorkflowExecutionFailedEventAttributes(a) => {
            (a.initiated_event_id, child, Outcome)
        }
        Event::ChildWorkflowExecutionCompletedEventAttributes(a) => {
            (a.initiated_event_id, child, Outcome)
        }
        Event::ChildWorkflowExecutionFailedEventAttributes(a) => {
            (a.initiated_event_id, child, Outcome)
        }
        Event::ChildWorkflowExecutionCanceledEventAttributes(a) => {
            (a.initiated_event_id, child, Outcome)
        }
        Event::ChildWorkflowExecutionTerminatedEventAttributes(a) => {
            (a.initiated_event_id, child, Outcome)
        }
        Event::ChildWorkflowExecutionTimedOutEventAttributes(a) => {
            (a.initiated_event_id, child, Outcome)
        }
        Event::WorkflowExecutionUpdateCompletedEventAttributes(a) => (
            a.accepted_event_id,
            T::WorkflowExecutionUpdateAccepted,
            Outcome,
        ),
        _ => return None,
    })
}

/// A timer fires exactly at its deadline on the engine's clock: never early, and (since
/// the simulator's clock stops at every deadline) never late, unless the firing was lost
/// with a crash (it was not on disk yet): then it fires the moment the engine reopens. A
/// timer that fired while a workflow task ran keeps its time although written later.
fn on_time(
    started: &HistoryEvent,
    fired: &HistoryEvent,
    reopened: &[SystemTime],
) -> Result<(), String> {
    let Some(Event::TimerStartedEventAttributes(a)) = &started.attributes else {
        return Ok(());
    };
    let timeout = a
        .start_to_fire_timeout
        .as_ref()
        .map_or(Duration::ZERO, |d| {
            Duration::new(d.seconds.max(0) as u64, d.nanos.max(0) as u32)
        });
    let deadline = proto::time_of(started) + timeout;
    let at = proto::time_of(fired);
    if at != deadline && !(at > deadline && reopened.contains(&at)) {
        return Err(format!(
            "timer {} fired at {}, {} its deadline {}",
            a.timer_id,
            proto::rfc3339(at),
            if at < deadline { "before" } else { "after" },
            proto::rfc3339(deadline),
        ));
    }
    Ok(())
}

/// Times in a history never go back, but for the events that came in while a workflow
/// task ran: written once it ended, after its own events, they keep the time they
/// happened (as on Temporal), which lies between the task's start and its end.
#[derive(Default)]
struct Times {
    /// The latest time so far.
    latest: Option<SystemTime>,
    /// When the last workflow task started, while the events after its end may be
    /// buffered ones (until the next task is scheduled or started).
    buffered_since: Option<SystemTime>,
    last_task_started: Option<SystemTime>,
}

impl Times {
    fn check(&mut self, event: &HistoryEvent) -> Result<(), String> {
        use EventType as T;
        let at = proto::time_of(event);
        let kind = proto::event_type(event);
        if let Some(latest) = self.latest.filter(|&latest| at < latest) {
            let floor = self.buffered_since.filter(|&since| at >= since);
            if floor.is_none() {
                return Err(format!(
                    "event {} ({kind:?}, {}) is earlier than an event before it ({}){}",
                    event.event_id,
                    proto::rfc3339(at),
                    proto::rfc3339(latest),
                    match self.buffered_since {
                        Some(since) => format!(
                            " and than the start of the workflow task it waited for ({})",
                            proto::rfc3339(since)
                        ),
                        None => String::new(),
                    }
                ));
            }
        }
        self.latest = self.latest.max(Some(at));
        match kind {
            T::WorkflowTaskStarted => self.last_task_started = Some(at),
            T::WorkflowTaskCompleted | T::WorkflowTaskFailed | T::WorkflowTaskTimedOut => {
                self.buffered_since = self.last_task_started;
            }
            T::WorkflowTaskScheduled => self.buffered_since = None,
            _ => {}
        }
        Ok(())
    }
}

pub fn is_close(event: &HistoryEvent) -> bool {
    use EventType as T;
    matches!(
        proto::event_type(event),
        T::WorkflowExecutionCompleted
            | T::WorkflowExecutionFailed
            | T::WorkflowExecutionTimedOut
            | T::WorkflowExecutionCanceled
            | T::WorkflowExecutionTerminated
            | T::WorkflowExecutionContinuedAsNew
    )
}

/// Whether `event` may directly follow a `WorkflowTaskStarted`: the task's own outcome,
/// or the run closed under it by a terminate or its timeout (what sdk-core's replay
/// accepts, and what Temporal writes).
fn ends_a_started_workflow_task(event: &HistoryEvent) -> bool {
    use EventType as T;
    matches!(
        proto::event_type(event),
        T::WorkflowTaskCompleted
            | T::WorkflowTaskFailed
            | T::WorkflowTaskTimedOut
            | T::WorkflowExecutionTerminated
            | T::WorkflowExecutionTimedOut
    )
}

/// How one chain of runs of workflow `w` must end, given what was acknowledged.
pub fn chain_ends_as_modelled(
    w: usize,
    script: Script,
    seen: &WorkflowSeen,
    chain: &[(String, Vec<HistoryEvent>)],
) -> Result<u64, Violation> {
    let name = format!("w{w} ({script:?})");
    let mut checks = 0;
    for (i, (run_id, events)) in chain.iter().enumerate() {
        let last = events.last().map(proto::event_type);
        checks += 1;
        if i + 1 < chain.len() && last != Some(EventType::WorkflowExecutionContinuedAsNew) {
            return Err(Violation::new(format!(
                "{name}: run {run_id} is followed by another run yet ended {last:?}"
            )));
        }
    }
    for (run_id, events) in chain {
        checks += 1;
        let close = events.last().map(proto::event_type);
        if seen.terminated.contains(run_id) && close != Some(EventType::WorkflowExecutionTerminated)
        {
            return Err(Violation::new(format!(
                "{name}: a termination of run {run_id} was acknowledged, yet it ended {close:?}"
            )));
        }
        let recorded = events
            .iter()
            .any(|e| proto::event_type(e) == EventType::WorkflowExecutionCancelRequested);
        if seen.canceled.contains(run_id) && !recorded {
            return Err(Violation::new(format!(
                "{name}: a cancel request for run {run_id} was acknowledged, yet its history \
                 does not record it (it ended {close:?})"
            )));
        }
    }
    let (run_id, events) = chain.last().expect("a chain has a run");
    let close = events
        .last()
        .map(proto::event_type)
        .unwrap_or(EventType::Unspecified);
    let cancel_requested = events
        .iter()
        .any(|e| proto::event_type(e) == EventType::WorkflowExecutionCancelRequested);
    checks += 1;
    let expected = if close == EventType::WorkflowExecutionTerminated {
        if seen.terminated.contains(run_id) || seen.maybe_terminated {
            return Ok(checks);
        }
        return Err(Violation::new(format!(
            "{name}: run {run_id} was terminated, yet no one asked"
        )));
    } else if cancel_requested {
        EventType::WorkflowExecutionCanceled
    } else {
        match script {
            Script::Activities { max_attempts, .. } if max_attempts > 0 => {
                EventType::WorkflowExecutionFailed
            }
            _ => EventType::WorkflowExecutionCompleted,
        }
    };
    if close != expected {
        return Err(Violation::new(format!(
            "{name}: run {run_id} ended {close:?}; the model says {expected:?}"
        )));
    }
    if close == EventType::WorkflowExecutionCompleted {
        checks += 1;
        let result: Option<String> = match &events.last().and_then(|e| e.attributes.as_ref()) {
            Some(Event::WorkflowExecutionCompletedEventAttributes(a)) => {
                proto::decode(a.result.as_ref())
            }
            _ => None,
        };
        let wanted = match script {
            Script::Errand { .. } => Some(crate::real_worker::expected_result(w, events)),
            Script::Signals { wanted } => {
                let signals = scripts::signals(events);
                Some(scripts::signals_result(
                    &signals[..signals.len().min(usize::from(wanted))],
                ))
            }
            other => scripts::expected_result(other),
        };
        if result != wanted {
            return Err(Violation::new(format!(
                "{name}: run {run_id} completed with {result:?}; the model says {wanted:?}"
            )));
        }
        if let Script::ContinueAsNew { remaining } = script {
            if chain.len() != usize::from(remaining) + 1 {
                return Err(Violation::new(format!(
                    "{name}: completed after {} run(s); the model says {}",
                    chain.len(),
                    remaining + 1
                )));
            }
        }
    }
    Ok(checks)
}

/// Every acknowledged signal arrived in some run of the workflow; no run received one
/// request twice.
pub fn signals_arrived(
    w: usize,
    seen: &WorkflowSeen,
    runs: &[(String, Vec<HistoryEvent>)],
) -> Result<u64, Violation> {
    let mut arrived = BTreeSet::new();
    for (run_id, events) in runs {
        let mut in_run = BTreeSet::new();
        for signal in scripts::signals(events) {
            if !in_run.insert(signal.clone()) {
                return Err(Violation::new(format!(
                    "w{w} run {run_id} received signal {signal} twice (one request id)"
                )));
            }
            arrived.insert(signal);
        }
    }
    for signal in &seen.signals {
        if !arrived.contains(signal) {
            return Err(Violation::new(format!(
                "w{w}: signal {signal} was acknowledged but no run received it"
            )));
        }
    }
    Ok(seen.signals.len() as u64 + 1)
}

/// What clients were told of updates agrees with the histories: a completed update was
/// accepted and answered twice its number, a rejected one never accepted.
pub fn updates_agree(
    w: usize,
    seen: &WorkflowSeen,
    runs: &[(String, Vec<HistoryEvent>)],
) -> Result<u64, Violation> {
    for ((run_id, k), told) in &seen.updates {
        let Some((_, events)) = runs.iter().find(|(r, _)| r == run_id) else {
            return Err(Violation::new(format!(
                "w{w}: update u{k} was answered by run {run_id}, which is not one of its runs"
            )));
        };
        let id = format!("u{k}");
        let accepted = events.iter().any(|e| {
            matches!(&e.attributes, Some(Event::WorkflowExecutionUpdateAcceptedEventAttributes(a)) if a.protocol_instance_id == id)
        });
        let completed: Option<u64> = events.iter().find_map(|e| match &e.attributes {
            Some(Event::WorkflowExecutionUpdateCompletedEventAttributes(a))
                if a.meta.as_ref().is_some_and(|m| m.update_id == id) =>
            {
                match a.outcome.as_ref().and_then(|o| o.value.as_ref()) {
                    Some(proto::update::outcome::Value::Success(p)) => proto::decode(Some(p)),
                    _ => None,
                }
            }
            _ => None,
        });
        let agrees = match told {
            UpdateSeen::Completed(v) => {
                accepted && completed == Some(*v) && *v == u64::from(*k) * 2
            }
            // Rejected, or accepted and never answered: the run closed first.
            UpdateSeen::Rejected => !accepted || completed.is_none(),
        };
        if !agrees {
            return Err(Violation::new(format!(
                "w{w} run {run_id}: update u{k} was told {told:?}, but the history has accepted={accepted}, completed with {completed:?}"
            )));
        }
    }
    Ok(seen.updates.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks a history of (type, second) pairs; answers the first complaint.
    fn times(events: &[(EventType, i64)]) -> Result<(), String> {
        let mut times = Times::default();
        for (i, &(kind, second)) in events.iter().enumerate() {
            times.check(&HistoryEvent {
                event_id: i as i64 + 1,
                event_type: kind as i32,
                event_time: Some(prost_wkt_types::Timestamp {
                    seconds: second,
                    nanos: 0,
                }),
                ..Default::default()
            })?;
        }
        Ok(())
    }

    #[test]
    fn only_events_that_waited_for_a_task_may_go_back_to_its_start() {
        use EventType as T;
        let task = [
            (T::WorkflowExecutionStarted, 0),
            (T::WorkflowTaskScheduled, 0),
            (T::WorkflowTaskStarted, 5),
            (T::WorkflowTaskCompleted, 8),
        ];
        let with = |rest: &[(EventType, i64)]| times(&[&task[..], rest].concat());
        with(&[
            (T::WorkflowExecutionSignaled, 6),
            (T::WorkflowTaskScheduled, 8),
        ])
        .unwrap();
        with(&[(T::WorkflowExecutionSignaled, 5)]).unwrap();
        let before_the_task = with(&[(T::WorkflowExecutionSignaled, 4)]).unwrap_err();
        assert!(
            before_the_task.contains("start of the workflow task"),
            "{before_the_task}"
        );
        with(&[
            (T::WorkflowTaskScheduled, 8),
            (T::WorkflowExecutionSignaled, 7),
        ])
        .expect_err("nothing waited once the next task is scheduled");
        times(&[
            (T::WorkflowExecutionStarted, 3),
            (T::WorkflowTaskScheduled, 2),
        ])
        .expect_err("no task ran");
    }
}
