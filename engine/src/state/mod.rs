//! Everything the engine knows, and the transitions that cross runs: no tokio, no SQLite.
//!
//! | module | owns |
//! |---|---|
//! | `runs` | all runs, and which ones a transaction touched |
//! | `workflows` | starting runs (workflow-id reuse and conflict policy), closing them from outside, what one run's close or completion does to others |
//! | `dispatch` | handing queued workflow tasks, queries and activity tasks to pollers; sticky queues closing |
//! | `fire` | firing due deadlines, and the virtual clock's skips |
//! | `schedules` | the schedules' actions |
//! | `reset` | resetting a workflow: the new run, the run it replaces, what is reapplied |
//! | `rebuild` | the queues and deadlines of a state read from disk |
//! | `damaged` | runs found damaged in the file, set aside and answered `DATA_LOSS` |
//!
//! A transition on one run goes through [`State::with_run`], which hands the run a
//! [`Ctx`] and applies the effects it records. When the transaction ends, [`State::finish`]
//! arms the deadlines of every run and schedule it touched (from `Run::deadlines`, the
//! same function [`rebuild`] uses after a restart) and says what it changed: the rows to
//! write, the topics to wake, and whether anything progressed.

mod damaged;
mod dispatch;
mod fire;
mod rebuild;
mod reset;
mod runs;
mod schedules;
mod workflows;

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::SystemTime,
};

use tonic::Status;

pub(crate) use damaged::{Damaged, DamagedRun};
pub(crate) use runs::Runs;
pub(crate) use schedules::NewSchedule;
pub(crate) use workflows::StartWorkflow;

use crate::{
    clock::Clock,
    errors,
    matching::{Pollers, Queries, Queues, StickyQueues, WorkflowTaskRef},
    proto::common::{SearchAttributes, WorkflowExecution},
    run::{Config, Ctx, Effect, Run},
    schedules::{Key, Schedules},
    search_attributes,
    timers::TimerWheel,
};

/// A namespace the engine serves.
#[derive(Debug, Clone)]
pub(crate) struct Namespace {
    pub(crate) name: String,
    pub(crate) id: String,
    /// Its custom search attributes.
    pub(crate) search_attributes: search_attributes::Custom,
}

/// What a long poll waits on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Topic {
    /// Any change of one run, by run id.
    Run(String),
    /// Tasks added to one task queue (or the queue closed), by `(namespace, name)`.
    Queue(String, String),
}

/// What a finished transaction changed.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    /// The runs it touched (changed, added or removed), to write.
    pub(crate) runs: Vec<String>,
    /// The schedules it changed (or removed), to write.
    pub(crate) schedules: BTreeSet<Key>,
    /// Who waits on what it changed.
    pub(crate) woken: Vec<Topic>,
    /// The namespaces whose custom search attributes it changed, to write.
    pub(crate) search_attributes: BTreeSet<String>,
    /// Something progressed: a virtual clock stands still for another while.
    pub(crate) progress: bool,
    /// The earliest deadline moved earlier: the timer service must look again.
    pub(crate) timers_moved: bool,
}

/// What a transaction changed in the indexes beside runs, schedules and queries, in
/// order, to undo it if the transaction fails.
#[derive(Debug)]
enum Undo {
    /// `current[key]` was this.
    Current((String, String), Option<String>),
    /// A run id was appended to `started`.
    Started,
    /// This run id was removed from `started` at this position.
    Unstarted(usize, String),
    /// This namespace was added.
    Namespace(String),
    /// This namespace's custom search attributes were these.
    SearchAttributes(String, search_attributes::Custom),
}

/// Everything the engine knows. Mutated only inside a store transaction.
pub(crate) struct State {
    pub(crate) namespaces: BTreeMap<String, Namespace>,
    pub(crate) runs: Runs,
    /// The current (latest) run of each `(namespace, workflow id)`.
    pub(crate) current: HashMap<(String, String), String>,
    /// Run ids in start order, for listing.
    pub(crate) started: Vec<String>,
    /// Runs found damaged when the file was opened: not loaded, answered `DATA_LOSS`.
    pub(crate) damaged: Damaged,
    pub(crate) schedules: Schedules,
    pub(crate) queues: Queues,
    pub(crate) queries: Queries,
    pub(crate) sticky: StickyQueues,
    /// Who polled each task queue lately (memory only).
    pub(crate) pollers: Pollers,
    pub(crate) wheel: TimerWheel,
    pub(crate) clock: Clock,
    /// The instant of the current transaction, read from the clock when it began.
    pub(crate) now: SystemTime,
    /// The last task id given to an event.
    pub(crate) seq: u64,
    pub(crate) config: Config,
    /// Runs and schedules whose deadline fired: armed anew even if untouched.
    fired_runs: Vec<String>,
    fired_schedules: Vec<Key>,
    /// The current transaction's changes to the indexes, to undo if it fails.
    undo: Vec<Undo>,
    /// The namespaces whose custom search attributes the transaction changed.
    search_attributes_changed: BTreeSet<String>,
    /// Open runs whose history is past the warning limits, logged once.
    history_warned: BTreeSet<String>,
    /// Firing a deadline of this run panics (a fault tests inject).
    #[cfg(test)]
    pub(crate) fail_firing: Option<String>,
}

impl State {
    /// An empty state serving `namespaces`, on `clock`.
    pub(crate) fn new(namespaces: &[String], clock: Clock, config: Config) -> Self {
        let now = clock.now();
        Self {
            namespaces: namespaces
                .iter()
                .map(|name| {
                    let namespace = Namespace {
                        name: name.clone(),
                        id: uuid::Uuid::new_v4().to_string(),
                        search_attributes: Default::default(),
                    };
                    (name.clone(), namespace)
                })
                .collect(),
            runs: Runs::default(),
            current: HashMap::new(),
            started: Vec::new(),
            damaged: Damaged::default(),
            schedules: Schedules::default(),
            queues: Queues::default(),
            queries: Queries::default(),
            sticky: StickyQueues::default(),
            pollers: Pollers::default(),
            wheel: TimerWheel::default(),
            clock,
            now,
            seq: 0,
            config,
            fired_runs: Vec::new(),
            fired_schedules: Vec::new(),
            undo: Vec::new(),
            search_attributes_changed: BTreeSet::new(),
            history_warned: BTreeSet::new(),
            #[cfg(test)]
            fail_firing: None,
        }
    }

    /// A transaction begins: it happens at the clock's reading now, or at the instant of
    /// the one before if the clock reads earlier (a wall clock stepped back by NTP, or a
    /// machine restored from a snapshot). Time holds still until the clock catches up, so
    /// a history's times never go back and no timeout measures a negative span.
    pub(crate) fn begin(&mut self) {
        self.read_clock();
    }

    /// Moves `now` to the clock's reading, unless that is earlier (see [`State::begin`]).
    pub(crate) fn read_clock(&mut self) {
        self.now = self.clock.now().max(self.now);
    }

    /// Checks that the engine serves `namespace`.
    pub(crate) fn check_namespace(&self, namespace: &str) -> Result<(), Status> {
        if self.namespaces.contains_key(namespace) {
            Ok(())
        } else {
            Err(errors::namespace_not_found(namespace))
        }
    }

    /// The run `execution` names in `namespace`: by run id, or the workflow id's current
    /// run when the run id is empty.
    pub(crate) fn resolve_run_id(
        &self,
        namespace: &str,
        execution: Option<&WorkflowExecution>,
    ) -> Result<String, Status> {
        self.check_namespace(namespace)?;
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
                _ => Err(match self.damaged.run(&execution.run_id) {
                    Some(damaged) if damaged.namespace == namespace => damaged.status(),
                    _ => errors::workflow_not_found(&execution.workflow_id, &execution.run_id),
                }),
            };
        }
        self.current
            .get(&(namespace.to_owned(), execution.workflow_id.clone()))
            .cloned()
            .ok_or_else(
                || match self.damaged.latest(namespace, &execution.workflow_id) {
                    Some(damaged) => damaged.status(),
                    None => errors::workflow_not_found(&execution.workflow_id, ""),
                },
            )
    }

    /// Like [`State::resolve_run_id`], for a call that needs the run open.
    pub(crate) fn resolve_open_run_id(
        &self,
        namespace: &str,
        execution: Option<&WorkflowExecution>,
    ) -> Result<String, Status> {
        let run_id = self.resolve_run_id(namespace, execution)?;
        let run = &self.runs[&run_id];
        if !run.is_open() {
            return Err(errors::already_completed(&run.workflow_id));
        }
        Ok(run_id)
    }

    /// Runs one transition of run `run_id` (touching it) and applies the effects it
    /// records; `None` if there is no such run.
    pub(crate) fn with_run<R>(
        &mut self,
        run_id: &str,
        f: impl FnOnce(&mut Run, &mut Ctx<'_>) -> R,
    ) -> Option<R> {
        let (out, effects) = self.with_run_effects(run_id, f)?;
        self.apply_effects(run_id, effects);
        Some(out)
    }

    /// Like [`State::with_run`], but hands back the recorded effects unapplied.
    fn with_run_effects<R>(
        &mut self,
        run_id: &str,
        f: impl FnOnce(&mut Run, &mut Ctx<'_>) -> R,
    ) -> Option<(R, Vec<Effect>)> {
        let Self {
            runs,
            sticky,
            config,
            seq,
            now,
            namespaces,
            ..
        } = self;
        let run = runs.get_mut(run_id)?;
        let lookup = |namespace: &str| namespaces.get(namespace).map(|n| &n.search_attributes);
        let mut ctx = Ctx::new(*now, config, sticky, seq).with_namespaces(&lookup);
        let out = f(run, &mut ctx);
        Some((out, ctx.effects))
    }

    /// Queues the tasks a transition of run `run_id` asked for.
    fn apply_effects(&mut self, run_id: &str, effects: Vec<Effect>) {
        let Some(namespace) = self.runs.get(run_id).map(|r| r.namespace.clone()) else {
            return;
        };
        for effect in effects {
            match effect {
                Effect::WorkflowTask { queue } => self.queues.push_workflow(
                    &namespace,
                    &queue,
                    WorkflowTaskRef::Run(run_id.to_owned()),
                ),
                Effect::ActivityTask { queue, task, .. } => {
                    self.queues.push_activity(&namespace, &queue, task)
                }
            }
        }
    }

    /// Makes `run_id` the current run of `key` (`None`: it has none).
    fn set_current(&mut self, key: (String, String), run_id: Option<String>) {
        let before = match run_id {
            Some(run_id) => self.current.insert(key.clone(), run_id),
            None => self.current.remove(&key),
        };
        self.undo.push(Undo::Current(key, before));
    }

    /// Lists `run_id` as started last.
    fn push_started(&mut self, run_id: String) {
        self.started.push(run_id);
        self.undo.push(Undo::Started);
    }

    /// Takes `run_id` off the list of started runs.
    fn remove_started(&mut self, run_id: &str) {
        if let Some(at) = self.started.iter().position(|id| id == run_id) {
            let id = self.started.remove(at);
            self.undo.push(Undo::Unstarted(at, id));
        }
    }

    /// Adds a namespace; false if it exists.
    pub(crate) fn register_namespace(&mut self, name: &str) -> bool {
        if self.namespaces.contains_key(name) {
            return false;
        }
        self.undo.push(Undo::Namespace(name.to_owned()));
        self.namespaces.insert(
            name.to_owned(),
            Namespace {
                name: name.to_owned(),
                id: uuid::Uuid::new_v4().to_string(),
                search_attributes: Default::default(),
            },
        );
        true
    }

    /// Changes the custom search attributes of `namespace` as `change` does to them
    /// (`INVALID_ARGUMENT` with its message when it refuses).
    pub(crate) fn change_search_attributes(
        &mut self,
        namespace: &str,
        change: impl FnOnce(&mut search_attributes::Custom) -> Result<(), String>,
    ) -> Result<(), Status> {
        let ns = self
            .namespaces
            .get_mut(namespace)
            .ok_or_else(|| errors::namespace_not_found(namespace))?;
        let mut changed = ns.search_attributes.clone();
        change(&mut changed).map_err(Status::invalid_argument)?;
        if changed != ns.search_attributes {
            let before = std::mem::replace(&mut ns.search_attributes, changed);
            self.undo
                .push(Undo::SearchAttributes(namespace.to_owned(), before));
            self.search_attributes_changed.insert(namespace.to_owned());
        }
        Ok(())
    }

    /// The custom search attributes of `namespace` (`NOT_FOUND` if it is not served).
    pub(crate) fn search_attributes(
        &self,
        namespace: &str,
    ) -> Result<&search_attributes::Custom, Status> {
        self.namespaces
            .get(namespace)
            .map(|ns| &ns.search_attributes)
            .ok_or_else(|| errors::namespace_not_found(namespace))
    }

    /// Checks the search attributes a request sets in `namespace` (see
    /// [`search_attributes::Custom::check`]).
    pub(crate) fn check_search_attributes(
        &self,
        namespace: &str,
        attributes: Option<&SearchAttributes>,
    ) -> Result<(), Status> {
        self.search_attributes(namespace)?
            .check(namespace, attributes)
            .map_err(Status::invalid_argument)
    }

    /// Arms the deadlines of every run and schedule touched so far, or whose deadline
    /// fired; whether the earliest deadline moved earlier.
    fn sync_deadlines(&mut self) -> bool {
        let mut moved = false;
        let mut runs = std::mem::take(&mut self.fired_runs);
        runs.extend(self.runs.touched().iter().cloned());
        runs.sort_unstable();
        runs.dedup();
        for run_id in &runs {
            let deadlines = self
                .runs
                .get(run_id)
                .map(Run::deadlines)
                .unwrap_or_default();
            moved |= self.wheel.set_run(run_id, deadlines);
        }
        let mut schedules = std::mem::take(&mut self.fired_schedules);
        schedules.extend(self.schedules.dirty().iter().cloned());
        for (namespace, id) in schedules {
            let at = self
                .schedules
                .get(&(namespace.clone(), id.clone()))
                .and_then(|s| s.armed);
            moved |= self.wheel.set_schedule(&namespace, &id, at);
        }
        moved
    }

    /// The transaction failed: everything it changed is put back as it was (runs,
    /// schedules, the indexes, queries added; the tasks it took from queues are queued
    /// again), and nothing of it is written or woken.
    pub(crate) fn roll_back(&mut self) {
        for undo in std::mem::take(&mut self.undo).into_iter().rev() {
            match undo {
                Undo::Current(key, Some(run_id)) => {
                    self.current.insert(key, run_id);
                }
                Undo::Current(key, None) => {
                    self.current.remove(&key);
                }
                Undo::Started => {
                    self.started.pop();
                }
                Undo::Unstarted(at, run_id) => self.started.insert(at, run_id),
                Undo::Namespace(name) => {
                    self.namespaces.remove(&name);
                }
                Undo::SearchAttributes(name, before) => {
                    if let Some(ns) = self.namespaces.get_mut(&name) {
                        ns.search_attributes = before;
                    }
                }
            }
        }
        self.search_attributes_changed.clear();
        let runs = self.runs.roll_back();
        let schedules = self.schedules.roll_back();
        self.queries.roll_back();
        self.queues.take_woken();
        // Queue entries are only references: whatever the restored runs wait for is queued
        // again (an entry no longer live is skipped when polled).
        for run_id in &runs {
            self.requeue(run_id);
        }
        self.fired_runs.extend(runs);
        self.fired_schedules.extend(schedules);
        self.sync_deadlines();
    }

    /// The transaction is over: arms the deadlines of what it touched and says what it
    /// changed.
    pub(crate) fn finish(&mut self) -> Changes {
        self.enforce_history_limits();
        self.undo.clear();
        let timers_moved = self.sync_deadlines();
        let runs = self.runs.take_touched();
        let schedules = self.schedules.take_dirty();
        let woken = self.woken_topics(&runs);
        let queries_changed = self.queries.take_changed();
        let search_attributes = std::mem::take(&mut self.search_attributes_changed);
        Changes {
            search_attributes,
            progress: !runs.is_empty()
                || !woken.is_empty()
                || !schedules.is_empty()
                || queries_changed,
            runs,
            schedules,
            woken,
            timers_moved,
        }
    }

    /// What a transaction woke: the runs it touched, the queues it gave tasks to, and the
    /// queues holding a query of a touched run (a query waits until its run is ready).
    fn woken_topics(&mut self, runs: &[String]) -> Vec<Topic> {
        let mut topics: Vec<Topic> = Vec::with_capacity(runs.len() + 1);
        if !self.queries.is_empty() {
            for run_id in runs {
                let Some(run) = self.runs.get(run_id) else {
                    continue;
                };
                if self.queries.any_of_run(run_id) {
                    topics.push(Topic::Queue(run.namespace.clone(), run.task_queue.clone()));
                    if let Some(sticky) = run.sticky_queue_name() {
                        topics.push(Topic::Queue(run.namespace.clone(), sticky.to_owned()));
                    }
                }
            }
        }
        topics.extend(runs.iter().cloned().map(Topic::Run));
        topics.extend(
            self.queues
                .take_woken()
                .into_iter()
                .map(|(namespace, name)| Topic::Queue(namespace, name)),
        );
        topics
    }
}

#[cfg(test)]
pub(crate) mod tests;
