//! The storage boundary: the lock around the state, and every state transition as one
//! [`Store::transaction`], all or nothing.
//!
//! The state lives in memory. With a database file, each transaction's changes are staged
//! for SQLite ([`durable`]) and its answer is released once they are on disk
//! ([`group_commit`]); on start the same state is loaded from the file and rebuilt. After
//! each transaction, whoever waits on what it touched is woken ([`waiters`]).

pub(crate) mod durable;
pub(crate) mod file_lock;
pub(crate) mod group_commit;
pub(crate) mod waiters;

#[cfg(test)]
mod tests;

use std::{
    path::Path,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
};

use tokio::sync::{watch, Notify};

pub(crate) use durable::DbError;
pub(crate) use group_commit::WriteFailure;
pub(crate) use waiters::Subscription;

use crate::{
    clock::Clock,
    run::Config,
    state::{State, Topic},
};

/// The state, its database if durable, and the signals that wake long polls and the
/// timer service.
pub(crate) struct Store {
    state: Mutex<Locked>,
    /// The engine's settings, also in the state: the service reads its limits here
    /// without the lock.
    config: Config,
    /// Bumped by every transaction that progressed (the virtual clock's timer service
    /// watches it).
    changes: watch::Sender<u64>,
    /// Long polls, each woken by changes to what it waits on.
    waiters: waiters::Waiters,
    /// Wakes the timer service when the earliest deadline moved earlier.
    timer_wake: Notify,
    /// The engine is stopping: waiters answer at once.
    closing: AtomicBool,
    /// What the database writer reports (`None` in memory).
    writer: Option<watch::Receiver<group_commit::Written>>,
    /// The simulator crashed this engine: no transaction runs any more.
    #[cfg(feature = "simulation")]
    crashed: AtomicBool,
}

/// A transaction whose transition panicked; it was undone.
pub(crate) struct Failed {
    /// What the panic said.
    pub(crate) message: String,
    payload: Box<dyn std::any::Any + Send>,
}

impl Failed {
    fn new(payload: Box<dyn std::any::Any + Send>) -> Self {
        Self {
            message: panic_message(payload.as_ref()),
            payload,
        }
    }
}

/// The text of a panic's payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// What the store's lock guards.
struct Locked {
    state: State,
    /// `None` in memory, and once the engine stopped.
    db: Option<Durable>,
}

/// The database file and its writer.
struct Durable {
    /// First: dropped (its last batches written) before the file's lock is released.
    writer: group_commit::GroupCommit,
    db: durable::Db,
}

impl Store {
    /// An in-memory store.
    #[cfg(test)]
    pub(crate) fn new(namespaces: &[String], clock: Clock) -> Self {
        Self::open(namespaces, clock, Config::default(), None)
            .expect("an in-memory store always opens")
    }

    /// A store in memory (`db` is `None`) or in the SQLite file `db`, loading what the
    /// file holds.
    pub(crate) fn open(
        namespaces: &[String],
        clock: Clock,
        config: Config,
        db: Option<&Path>,
    ) -> Result<Self, DbError> {
        let mut state = State::new(namespaces, clock, config.clone());
        let db = match db {
            Some(path) => {
                let (mut db, mut conn) = durable::Db::open(path, &mut state)?;
                state.rebuild();
                // What the rebuild did (runs that lost their sticky worker, actions that
                // schedules missed, namespaces the file lacked) is written before anyone
                // is answered.
                let changes = state.finish();
                if let Some(batch) = db.stage(&state, &changes)? {
                    durable::write(&mut conn, [&batch])?;
                }
                Some(Durable {
                    writer: group_commit::GroupCommit::start(conn, path.to_owned()),
                    db,
                })
            }
            None => {
                state.finish();
                None
            }
        };
        let writer = db.as_ref().map(|d| d.writer.progress());
        Ok(Self {
            writer,
            state: Mutex::new(Locked { state, db }),
            config,
            changes: watch::channel(0).0,
            waiters: waiters::Waiters::default(),
            timer_wake: Notify::new(),
            closing: AtomicBool::new(false),
            #[cfg(feature = "simulation")]
            crashed: AtomicBool::new(false),
        })
    }

    /// The engine's limits.
    pub(crate) fn limits(&self) -> &crate::limits::Limits {
        &self.config.limits
    }

    /// Runs one state transition atomically and returns once what it changed is on disk
    /// (when durable), so that its answer acknowledges only what a crash cannot take back.
    pub(crate) async fn transaction<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let (out, ticket) = self.apply(f);
        ticket.written().await;
        out
    }

    /// [`Store::transaction`], answering a panic of the transition as an error once the
    /// transaction is undone.
    pub(crate) async fn try_transaction<R>(
        &self,
        f: impl FnOnce(&mut State) -> R,
    ) -> Result<R, Failed> {
        let (out, ticket) = self.try_apply(f)?;
        ticket.written().await;
        Ok(out)
    }

    /// Runs one state transition atomically, stages what it changed for the database (if
    /// any), then wakes whoever waits on its effects. The ticket says when everything this
    /// transaction may have seen or written is on disk.
    ///
    /// Waking waiters before the write is safe: they read in transactions of their own,
    /// whose tickets cover this one.
    ///
    /// # Panics
    ///
    /// If the transition panics (a bug): nothing of it stays in memory or reaches the
    /// disk, and the panic goes on to the caller (a request's handler answers `INTERNAL`).
    pub(crate) fn apply<R>(&self, f: impl FnOnce(&mut State) -> R) -> (R, group_commit::Ticket) {
        match self.try_apply(f) {
            Ok(done) => done,
            Err(failed) => std::panic::resume_unwind(failed.payload),
        }
    }

    /// [`Store::apply`], answering a panic of the transition as an error once the
    /// transaction is undone.
    pub(crate) fn try_apply<R>(
        &self,
        f: impl FnOnce(&mut State) -> R,
    ) -> Result<(R, group_commit::Ticket), Failed> {
        #[cfg(feature = "simulation")]
        if self.crashed.load(Ordering::SeqCst) {
            return Err(Failed::new(Box::new("this engine crashed (simulated)")));
        }
        let (out, ticket, changes) = {
            let mut locked = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let Locked { state, db } = &mut *locked;
            state.begin();
            let out = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(state))) {
                Ok(out) => out,
                Err(payload) => {
                    state.roll_back();
                    let failed = Failed::new(payload);
                    tracing::error!(
                        "capstan-engine: a transaction failed and was undone: {}",
                        failed.message
                    );
                    return Err(failed);
                }
            };
            let changes = state.finish();
            if changes.progress {
                state.clock.progress();
            }
            let ticket = match db {
                Some(Durable { writer, db }) => {
                    let own = match db.stage(state, &changes) {
                        Ok(Some(batch)) => {
                            writer.submit(batch);
                            true
                        }
                        Ok(None) => false,
                        Err(e) => {
                            panic!("capstan-engine: cannot stage a change for the database: {e}")
                        }
                    };
                    writer.ticket(own)
                }
                None => group_commit::Ticket::default(),
            };
            (out, ticket, changes)
        };
        self.waiters.wake(changes.woken);
        if changes.progress {
            self.changes.send_modify(|v| *v = v.wrapping_add(1));
        }
        if changes.timers_moved {
            self.timer_wake.notify_one();
        }
        Ok((out, ticket))
    }

    /// A receiver that sees every progress committed after this call.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// A wait on `topic`, woken by every transaction committed after this call that
    /// touches it.
    pub(crate) fn subscribe_to(&self, topic: Topic) -> Subscription<'_> {
        self.waiters.subscribe(topic)
    }

    pub(crate) fn timer_wake(&self) -> &Notify {
        &self.timer_wake
    }

    /// Why the database cannot be written, while it cannot (never in memory).
    pub(crate) fn write_failure(&self) -> Option<Arc<WriteFailure>> {
        self.writer.as_ref()?.borrow().failing.clone()
    }

    /// Returns when the database cannot be written (at once if it cannot now); never in
    /// memory, nor once the engine stopped.
    pub(crate) async fn write_fails(&self) -> Arc<WriteFailure> {
        if let Some(writer) = &self.writer {
            let mut writer = writer.clone();
            let failing = writer
                .wait_for(|w| w.failing.is_some())
                .await
                .ok()
                .and_then(|w| w.failing.clone());
            if let Some(failure) = failing {
                return failure;
            }
        }
        std::future::pending().await
    }

    /// What the database writer reports (`None` in memory): its progress and failures.
    pub(crate) fn writer_reports(&self) -> Option<watch::Receiver<group_commit::Written>> {
        self.writer.clone()
    }

    /// Caps the database file at `pages` pages (`None`: lifts the cap), so that writes
    /// needing more fail as on a full disk. For tests; nothing in memory.
    pub(crate) fn limit_db_pages(&self, pages: Option<u64>) {
        let locked = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(durable) = &locked.db {
            durable.writer.limit_pages(pages);
        }
    }

    /// Makes every database write fail with `cause` until called with `None` (nothing in
    /// memory). For the simulator.
    #[cfg(feature = "simulation")]
    pub(crate) fn fail_writes(&self, cause: Option<String>) {
        let locked = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(durable) = &locked.db {
            durable.writer.fail_writes(cause);
        }
    }

    /// Makes every database write take at least `delay` (zero: as fast as the disk). For
    /// tests.
    #[cfg(all(test, feature = "simulation"))]
    pub(crate) fn slow_writes(&self, delay: std::time::Duration) {
        let locked = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(durable) = &locked.db {
            durable.writer.slow_writes(delay);
        }
    }

    /// The process dies, as far as the database file can tell: nothing more is written
    /// (what was not on disk is lost; none of it was acknowledged), the file is let go,
    /// and the engine is stopping. For the simulator.
    #[cfg(feature = "simulation")]
    pub(crate) fn crash(&self) {
        self.crashed.store(true, Ordering::SeqCst);
        let durable = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .db
            .take();
        if let Some(mut durable) = durable {
            durable.writer.crash();
        }
        self.close();
    }

    /// How many topics long polls wait on. For the simulator's census.
    #[cfg(feature = "simulation")]
    pub(crate) fn waited_topics(&self) -> usize {
        self.waiters.topics()
    }

    /// Whether the engine is stopping.
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// The engine is stopping: every long poll and the timer service wake and answer at
    /// once.
    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.waiters.wake_all();
        self.timer_wake.notify_one();
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Writes what is staged and closes the database (after the engine stopped): what
    /// changes later is not kept.
    pub(crate) fn close_db(&self) {
        let mut locked = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut durable) = locked.db.take() {
            durable.writer.close();
            // Then the file's lock goes, with `durable.db`.
        }
    }
}
