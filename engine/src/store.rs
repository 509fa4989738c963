//! The storage boundary: every state transition is one call of [`Store::transaction`].
//!
//! The state lives in memory for now. The boundary is the transaction: a durable store
//! (SQLite in WAL mode) commits the rows a transaction touched before the transaction's
//! effects (answers, wake-ups) are released, and loads the same [`State`] on start.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Mutex,
    time::SystemTime,
};

use tokio::sync::{watch, Notify};

use crate::{clock::Clock, history::Run, matching::Queues, timers::TimerKind};

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
    pub(crate) runs: HashMap<String, Run>,
    /// The current (latest) run of each `(namespace, workflow id)`.
    pub(crate) current: HashMap<(String, String), String>,
    /// Run ids in start order, for listing.
    pub(crate) started: Vec<String>,
    pub(crate) sched: Scheduler,
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
    pub(crate) seq: u64,
    /// Something a waiter may be waiting for changed in this transaction.
    pub(crate) changed: bool,
    /// A timer was added in this transaction.
    pub(crate) timers_changed: bool,
    /// The engine is stopping: waiters answer at once.
    pub(crate) closing: bool,
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
            seq: 0,
            changed: false,
            timers_changed: false,
            closing: false,
        }
    }
}

impl Scheduler {
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

/// The state and the signals that wake long polls and the timer service.
pub(crate) struct Store {
    state: Mutex<State>,
    changes: watch::Sender<u64>,
    timer_wake: Notify,
}

impl Store {
    pub(crate) fn new(namespaces: &[String], clock: Clock) -> Self {
        let mut state = State::default();
        state.sched.clock = clock;
        for name in namespaces {
            state.namespaces.insert(
                name.clone(),
                Namespace {
                    name: name.clone(),
                    id: uuid::Uuid::new_v4().to_string(),
                },
            );
        }
        Self {
            state: Mutex::new(state),
            changes: watch::channel(0).0,
            timer_wake: Notify::new(),
        }
    }

    /// Runs one state transition atomically, then wakes whoever waits on its effects.
    pub(crate) fn transaction<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let (out, changed, timers) = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.sched.now = state.sched.clock.now();
            let out = f(&mut state);
            let sched = &mut state.sched;
            let flags = (sched.changed, sched.timers_changed);
            if sched.changed {
                sched.clock.progress();
            }
            sched.changed = false;
            sched.timers_changed = false;
            (out, flags.0, flags.1)
        };
        if changed {
            self.changes.send_modify(|v| *v = v.wrapping_add(1));
        }
        if timers {
            self.timer_wake.notify_one();
        }
        out
    }

    /// A receiver that sees every change committed after this call.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub(crate) fn timer_wake(&self) -> &Notify {
        &self.timer_wake
    }
}
