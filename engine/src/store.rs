//! The storage boundary: every state transition is one call of [`Store::transaction`].
//!
//! The state lives in memory. With a database file, the store also stages the runs a
//! transaction touched (see [`Runs`]) for SQLite, and the transaction's answer is released
//! once they are on disk ([`group_commit`]); on start it loads the same [`State`] from the
//! file ([`durable`]).

pub(crate) mod durable;
pub(crate) mod group_commit;
pub(crate) mod waiters;

use std::{
    borrow::Borrow,
    collections::{BTreeMap, HashMap, HashSet},
    hash::Hash,
    path::Path,
    sync::Mutex,
    time::SystemTime,
};

use tokio::sync::{watch, Notify};

use crate::{clock::Clock, history::Run, matching::Queues, timers::TimerKind};

pub(crate) use durable::{pb, DbError};
pub(crate) use waiters::{Subscription, Topic};

/// A namespace the engine serves.
#[derive(Debug, Clone)]
pub(crate) struct Namespace {
    pub(crate) name: String,
    pub(crate) id: String,
}

/// Everything the engine knows. Mutated only inside [`Store::transaction`].
#[derive(Default)]
pub(crate) struct State {
    pub(crate) namespaces: BTreeMap<String, Namespace>,
    /// Runs by run id.
    pub(crate) runs: Runs,
    /// The current (latest) run of each `(namespace, workflow id)`.
    pub(crate) current: HashMap<(String, String), String>,
    /// Run ids in start order, for listing.
    pub(crate) started: Vec<String>,
    /// Schedules by `(namespace, schedule id)`.
    pub(crate) schedules: crate::schedules::Schedules,
    pub(crate) sched: Scheduler,
}

/// The runs by run id, noting which ones a transaction may have changed: every run
/// reached through [`Runs::get_mut`] or [`Runs::insert`] is written at commit (when
/// durable), and whoever waits on it is woken.
#[derive(Default)]
pub(crate) struct Runs {
    map: HashMap<String, Run>,
    /// Touched run ids in first-touch order, and the same as a set.
    dirty: Vec<String>,
    dirty_set: HashSet<String>,
}

impl Runs {
    pub(crate) fn get<Q>(&self, run_id: &Q) -> Option<&Run>
    where
        String: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get(run_id)
    }

    /// The run, noted as touched.
    pub(crate) fn get_mut(&mut self, run_id: &str) -> Option<&mut Run> {
        let run = self.map.get_mut(run_id)?;
        if !self.dirty_set.contains(run_id) {
            self.dirty_set.insert(run_id.to_owned());
            self.dirty.push(run_id.to_owned());
        }
        Some(run)
    }

    pub(crate) fn insert(&mut self, run_id: String, run: Run) {
        if !self.dirty_set.contains(&run_id) {
            self.dirty_set.insert(run_id.clone());
            self.dirty.push(run_id.clone());
        }
        self.map.insert(run_id, run);
    }

    /// Removes a run; a durable store deletes its rows at commit.
    pub(crate) fn remove(&mut self, run_id: &str) -> Option<Run> {
        let run = self.map.remove(run_id)?;
        if !self.dirty_set.contains(run_id) {
            self.dirty_set.insert(run_id.to_owned());
            self.dirty.push(run_id.to_owned());
        }
        Some(run)
    }

    /// Adds a run read from the database (not touched).
    pub(crate) fn load(&mut self, run_id: String, run: Run) {
        self.map.insert(run_id, run);
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &Run> {
        self.map.values()
    }

    /// The runs touched since the last commit, in first-touch order.
    pub(crate) fn dirty(&self) -> &[String] {
        &self.dirty
    }

    /// The runs touched since the last call, in first-touch order.
    fn take_dirty(&mut self) -> Vec<String> {
        self.dirty_set.clear();
        std::mem::take(&mut self.dirty)
    }
}

impl<Q> std::ops::Index<&Q> for Runs
where
    String: Borrow<Q>,
    Q: Hash + Eq + ?Sized,
{
    type Output = Run;

    fn index(&self, run_id: &Q) -> &Run {
        &self.map[run_id]
    }
}

/// Task queues, timers and in-flight queries: what the runs hand work to.
pub(crate) struct Scheduler {
    /// The engine's clock; read it through [`Scheduler::now`].
    pub(crate) clock: Clock,
    /// The instant of the current transaction, read from the clock when it began.
    pub(crate) now: SystemTime,
    pub(crate) queues: Queues,
    pub(crate) timers: BTreeMap<(SystemTime, u64), TimerKind>,
    pub(crate) queries: HashMap<String, crate::matching::PendingQuery>,
    /// Sticky queues whose worker shut down: their held polls answer empty.
    pub(crate) closed_sticky: HashSet<String>,
    /// Who polls each sticky queue: a task goes to a sticky queue only while its worker
    /// polls it (or did within [`STICKY_POLLER_GRACE`]).
    pub(crate) sticky_pollers: HashMap<String, StickyPollers>,
    pub(crate) seq: u64,
    /// Something a waiter may be waiting for changed in this transaction.
    pub(crate) changed: bool,
    /// A timer was added in this transaction.
    pub(crate) timers_changed: bool,
    /// The engine is stopping: waiters answer at once.
    pub(crate) closing: bool,
    /// History length from which workflow tasks suggest continue-as-new.
    pub(crate) suggest_continue_as_new_after: usize,
}

impl Default for Scheduler {
    fn default() -> Self {
        Self {
            clock: Clock::Real,
            now: SystemTime::UNIX_EPOCH,
            queues: Queues::default(),
            timers: BTreeMap::new(),
            queries: HashMap::new(),
            closed_sticky: HashSet::new(),
            sticky_pollers: HashMap::new(),
            seq: 0,
            changed: false,
            timers_changed: false,
            closing: false,
            suggest_continue_as_new_after: 4096,
        }
    }
}

/// How long after its last poll a sticky queue's worker still counts as there, as
/// Temporal's matching service (a worker re-polls at once after each answer).
pub(crate) const STICKY_POLLER_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// The polls of one sticky queue.
#[derive(Debug, Default)]
pub(crate) struct StickyPollers {
    /// Polls being held now.
    pub(crate) held: usize,
    /// When the last poll arrived or ended.
    pub(crate) last_seen: Option<SystemTime>,
}

impl Scheduler {
    /// Whether the worker of sticky queue `name` is there to take a task.
    pub(crate) fn sticky_worker_polls(&self, name: &str) -> bool {
        if self.closed_sticky.contains(name) {
            return false;
        }
        self.sticky_pollers.get(name).is_some_and(|p| {
            p.held > 0
                || p.last_seen.is_some_and(|t| {
                    self.now.duration_since(t).unwrap_or_default() <= STICKY_POLLER_GRACE
                })
        })
    }

    /// Notes a poll of sticky queue `name` beginning (`begins`) or ending.
    pub(crate) fn sticky_poll(&mut self, name: &str, begins: bool) {
        let now = self.now;
        let pollers = self.sticky_pollers.entry(name.to_owned()).or_default();
        if begins {
            pollers.held += 1;
        } else {
            pollers.held = pollers.held.saturating_sub(1);
        }
        pollers.last_seen = Some(now);
    }

    /// The engine's time for this transaction: the same for every event it writes.
    pub(crate) fn now(&self) -> SystemTime {
        self.now
    }

    /// A number unique within this engine.
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Arms a timer; the timer service fires it at `at` (stale timers are ignored then).
    pub(crate) fn add_timer(&mut self, at: SystemTime, kind: TimerKind) {
        let seq = self.next_seq();
        self.timers.insert((at, seq), kind);
        self.timers_changed = true;
    }
}

/// The state, its database if durable, and the signals that wake long polls and the
/// timer service.
pub(crate) struct Store {
    state: Mutex<Locked>,
    /// Bumped by every transaction that changed something (the virtual clock's timer
    /// service watches it).
    changes: watch::Sender<u64>,
    /// Long polls, each woken by changes to what it waits on.
    waiters: waiters::Waiters,
    timer_wake: Notify,
}

/// What the store's lock guards.
struct Locked {
    state: State,
    /// `None` in memory, and once the engine stopped.
    db: Option<(durable::Db, group_commit::GroupCommit)>,
}

impl Store {
    /// An in-memory store.
    #[cfg(test)]
    pub(crate) fn new(namespaces: &[String], clock: Clock) -> Self {
        Self::open(namespaces, clock, None).expect("an in-memory store always opens")
    }

    /// A store in memory (`db` is `None`) or in the SQLite file `db`, loading what the
    /// file holds.
    pub(crate) fn open(
        namespaces: &[String],
        clock: Clock,
        db: Option<&Path>,
    ) -> Result<Self, DbError> {
        let mut state = State::default();
        state.sched.clock = clock;
        state.sched.now = state.sched.clock.now();
        for name in namespaces {
            state.namespaces.insert(
                name.clone(),
                Namespace {
                    name: name.clone(),
                    id: uuid::Uuid::new_v4().to_string(),
                },
            );
        }
        let db = match db {
            Some(path) => {
                let (db, conn) = durable::Db::open(path, &mut state)?;
                Some((db, group_commit::GroupCommit::start(conn, path.to_owned())))
            }
            None => None,
        };
        state.runs.take_dirty();
        state.sched.queues.take_woken();
        state.sched.changed = false;
        state.sched.timers_changed = false;
        Ok(Self {
            state: Mutex::new(Locked { state, db }),
            changes: watch::channel(0).0,
            waiters: waiters::Waiters::default(),
            timer_wake: Notify::new(),
        })
    }

    /// Runs one state transition atomically and returns once what it changed is on disk
    /// (when durable), so that its answer acknowledges only what a crash cannot take back.
    pub(crate) async fn transaction<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let (out, ticket) = self.apply(f);
        ticket.written().await;
        out
    }

    /// Runs one state transition atomically, stages what it changed for the database (if
    /// any), then wakes whoever waits on its effects. The ticket says when everything this
    /// transaction may have seen or written is on disk.
    ///
    /// Waking waiters before the write is safe: they read in transactions of their own,
    /// whose tickets cover this one.
    pub(crate) fn apply<R>(&self, f: impl FnOnce(&mut State) -> R) -> (R, group_commit::Ticket) {
        let (out, ticket, changed, timers, woken) = {
            let mut locked = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let Locked { state, db } = &mut *locked;
            state.sched.now = state.sched.clock.now();
            let out = f(state);
            let ticket = match db {
                Some((db, writer)) => {
                    match db.stage(state) {
                        Ok(Some(batch)) => writer.submit(batch),
                        Ok(None) => {}
                        Err(e) => {
                            panic!("capstan-engine: cannot stage a change for the database: {e}")
                        }
                    }
                    writer.ticket()
                }
                None => group_commit::Ticket::default(),
            };
            let woken = woken_topics(state);
            state.schedules.clear_dirty();
            let sched = &mut state.sched;
            let flags = (sched.changed, sched.timers_changed);
            if sched.changed {
                sched.clock.progress();
            }
            sched.changed = false;
            sched.timers_changed = false;
            (out, ticket, flags.0, flags.1, woken)
        };
        self.waiters.wake(woken);
        if changed {
            self.changes.send_modify(|v| *v = v.wrapping_add(1));
        }
        if timers {
            self.timer_wake.notify_one();
        }
        (out, ticket)
    }

    /// A receiver that sees every change committed after this call.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// A wait on `topic`, woken by every transaction committed after this call that
    /// touches it.
    pub(crate) fn subscribe_to(&self, topic: Topic) -> Subscription<'_> {
        self.waiters.subscribe(topic)
    }

    /// Wakes every long poll (the engine is stopping: they answer at once).
    pub(crate) fn wake_all(&self) {
        self.waiters.wake_all();
    }

    pub(crate) fn timer_wake(&self) -> &Notify {
        &self.timer_wake
    }

    /// Writes what is staged and closes the database (after the engine stopped): what
    /// changes later is not kept.
    pub(crate) fn close_db(&self) {
        let mut locked = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, mut writer)) = locked.db.take() {
            writer.close();
        }
        locked.state.runs.take_dirty();
        locked.state.schedules.clear_dirty();
    }
}

/// What a transaction woke: the runs it touched, the queues it gave tasks to, and the
/// queues holding a query of a touched run (a query waits until its run is ready).
fn woken_topics(state: &mut State) -> Vec<Topic> {
    let runs = state.runs.take_dirty();
    let mut topics: Vec<Topic> = Vec::with_capacity(runs.len() + 1);
    if !state.sched.queries.is_empty() {
        for run_id in &runs {
            let queried = state.sched.queries.values().any(|q| &q.run_id == run_id);
            if let Some(run) = state.runs.get(run_id).filter(|_| queried) {
                topics.push(Topic::Queue(run.namespace.clone(), run.task_queue.clone()));
                if let Some(sticky) = &run.sticky {
                    topics.push(Topic::Queue(run.namespace.clone(), sticky.name.clone()));
                }
            }
        }
    }
    topics.extend(runs.into_iter().map(Topic::Run));
    topics.extend(
        state
            .sched
            .queues
            .take_woken()
            .into_iter()
            .map(|(namespace, name)| Topic::Queue(namespace, name)),
    );
    topics
}
