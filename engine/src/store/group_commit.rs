//! Group commit: one writer thread owns the SQLite connection and writes, in one SQLite
//! transaction (one fsync), every batch staged while the previous write was on disk.
//!
//! Store transactions stage their batch under the state lock, in order, and take a
//! [`Ticket`] for it; a transaction's answer is released once the writer reports its batch,
//! and so every batch before it, written. Under load, many transactions share one fsync;
//! alone, a transaction costs one.
//!
//! A write that fails (a full disk) is retried until it succeeds; meanwhile the writer
//! reports a [`WriteFailure`], so that the store can refuse new changes and the health
//! service can say it does not serve.

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering},
        mpsc, Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant, SystemTime},
};

use rusqlite::Connection;
use tokio::sync::watch;

use super::durable::{write, Batch};

/// The writer thread and the sequence numbers of what was staged and what is on disk.
pub(crate) struct GroupCommit {
    batches: Option<mpsc::Sender<(u64, Batch)>>,
    /// The sequence number of the last batch staged.
    staged: u64,
    /// What the writer has written so far.
    written: watch::Receiver<Written>,
    /// How tests and the simulator make writes fail or stop.
    hooks: Arc<Hooks>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("staged", &self.staged)
            .field("written", &*self.written.borrow())
            .finish()
    }
}

impl GroupCommit {
    /// Starts the writer thread on `conn` (the database at `path`, for messages).
    pub(crate) fn start(conn: Connection, path: PathBuf) -> Self {
        let (batches, inbox) = mpsc::channel();
        let (report, written) = watch::channel(Written::default());
        let hooks = Arc::new(Hooks::default());
        let writer_hooks = hooks.clone();
        let thread = std::thread::Builder::new()
            .name("capstan-engine-writer".into())
            .spawn(move || writer(conn, &path, inbox, report, &writer_hooks))
            .expect("the writer thread starts");
        Self {
            batches: Some(batches),
            staged: 0,
            written,
            hooks,
            thread: Some(thread),
        }
    }

    /// Where the writer reports its progress and failures.
    pub(crate) fn progress(&self) -> watch::Receiver<Written> {
        self.written.clone()
    }

    /// Caps the file at `pages` pages from the writer's next write (`None`: lifts the
    /// cap): SQLite then answers a write that needs more "database or disk is full", as on
    /// a full disk. For tests.
    pub(crate) fn limit_pages(&self, pages: Option<u64>) {
        // SQLite's own ceiling; a cap below the file's size is raised to its size.
        const NO_LIMIT: u64 = 0xFFFF_FFFE;
        let pages = pages.unwrap_or(NO_LIMIT).clamp(1, NO_LIMIT);
        self.hooks.page_limit.store(pages, Ordering::SeqCst);
    }

    #[cfg(feature = "simulation")]
    /// Makes every write fail with `cause` until called with `None`, as an fsync that
    /// fails would; the writer keeps its batches and retries, as for a full disk. For the
    /// simulator.
    pub(crate) fn fail_writes(&self, cause: Option<String>) {
        *self
            .hooks
            .fail_with
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = cause;
    }

    #[cfg(all(test, feature = "simulation"))]
    /// Makes every write take at least `delay` (zero: as fast as the disk), as a slow or
    /// busy disk would. For tests.
    pub(crate) fn slow_writes(&self, delay: Duration) {
        *self.hooks.delay.lock().unwrap_or_else(|e| e.into_inner()) = delay;
    }

    #[cfg(feature = "simulation")]
    /// The process dies, as far as the file can tell: the writer stops before its next
    /// write, and what it has not written is lost (none of it was acknowledged). For the
    /// simulator, which then opens the file again.
    pub(crate) fn crash(&mut self) {
        self.hooks.crashed.store(true, Ordering::SeqCst);
        self.close();
    }

    /// Hands `batch` to the writer; called under the state lock, so batches reach the file
    /// in the order their transactions ran.
    pub(crate) fn submit(&mut self, batch: Batch) {
        let Some(batches) = &self.batches else {
            return;
        };
        self.staged += 1;
        if batches.send((self.staged, batch)).is_err() {
            // The writer is gone (it only stops on close): nothing will be acknowledged.
            self.batches = None;
        }
    }

    /// A ticket for everything staged so far: what the caller's transaction may have read
    /// or written.
    ///
    /// `own`: whether the caller's transaction staged a batch of its own. A ticket without
    /// one (a read) stops waiting when the writer fails: the read is answered from memory.
    pub(crate) fn ticket(&self, own: bool) -> Ticket {
        Ticket {
            wait: (self.staged > self.written.borrow().seq)
                .then(|| (self.staged, own, self.written.clone())),
        }
    }

    /// Writes what is staged and stops the writer.
    pub(crate) fn close(&mut self) {
        self.batches = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        self.close();
    }
}

/// The writer's progress.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Written {
    /// The sequence number of the last batch on disk.
    pub(crate) seq: u64,
    /// SQLite transactions committed so far (each one fsync).
    pub(crate) commits: u64,
    /// Why the writer cannot write, while it cannot.
    pub(crate) failing: Option<Arc<WriteFailure>>,
}

/// The writer cannot write: it keeps what it was given and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WriteFailure {
    /// The database file.
    pub(crate) path: PathBuf,
    /// What SQLite answered, e.g. `database or disk is full`.
    pub(crate) cause: String,
    /// When the first write of this spell failed.
    pub(crate) since: SystemTime,
}

/// The promise that a transaction's batch will be written.
#[derive(Debug, Default)]
pub(crate) struct Ticket {
    /// The sequence number to wait for, whether the transaction staged a batch of its
    /// own, and where the writer reports; `None` when there is nothing to wait for (in
    /// memory, or all written).
    wait: Option<(u64, bool, watch::Receiver<Written>)>,
}

impl Ticket {
    /// Returns once the batch is on disk; a ticket without a batch of its own returns as
    /// well when the writer cannot write (what it read is answered from memory).
    ///
    /// # Panics
    ///
    /// If the engine was closed before the batch was written: its effects must not be
    /// acknowledged.
    pub(crate) async fn written(self) {
        let Some((seq, own, mut written)) = self.wait else {
            return;
        };
        let done = |w: &Written| w.seq >= seq || (!own && w.failing.is_some());
        if written.wait_for(done).await.is_err() {
            panic!("capstan-engine: the database writer stopped before this change was written");
        }
    }

    /// Returns once everything the transaction read or wrote is on disk, even while the
    /// writer cannot write (then it waits until it can).
    ///
    /// # Panics
    ///
    /// As [`Ticket::written`].
    pub(crate) async fn written_strictly(self) {
        let Some((seq, _, written)) = self.wait else {
            return;
        };
        Ticket {
            wait: Some((seq, true, written)),
        }
        .written()
        .await;
    }
}

/// How tests and the simulator make the writer's writes fail or stop.
#[derive(Debug, Default)]
struct Hooks {
    /// A `max_page_count` for the writer's connection to take before its next write (0:
    /// none); how tests make SQLite find the disk full.
    page_limit: AtomicU64,
    /// While set, every write fails with this cause.
    fail_with: std::sync::Mutex<Option<String>>,
    /// How long each write takes at least.
    delay: std::sync::Mutex<Duration>,
    /// The writer stops before its next write, writing nothing more.
    crashed: std::sync::atomic::AtomicBool,
}

impl Hooks {
    /// Writes `pending` unless a hook says this write fails.
    fn write<'a>(
        &self,
        conn: &mut Connection,
        pending: impl Iterator<Item = &'a Batch>,
    ) -> Result<(), String> {
        apply_page_limit(conn, &self.page_limit);
        let delay = *self.delay.lock().unwrap_or_else(|e| e.into_inner());
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        if let Some(cause) = &*self.fail_with.lock().unwrap_or_else(|e| e.into_inner()) {
            return Err(cause.clone());
        }
        write(conn, pending).map_err(|e| e.to_string())
    }

    fn crashed(&self) -> bool {
        self.crashed.load(Ordering::SeqCst)
    }
}

/// The writer's loop: takes every batch waiting, writes them in one transaction, reports
/// the last one written. A failed write (a full disk, a file that vanished) is reported and
/// retried until it succeeds or the engine closes: nothing is acknowledged that is not on
/// disk.
fn writer(
    mut conn: Connection,
    path: &std::path::Path,
    inbox: mpsc::Receiver<(u64, Batch)>,
    report: watch::Sender<Written>,
    hooks: &Hooks,
) {
    let mut pending: Vec<(u64, Batch)> = Vec::new();
    let mut open = true;
    while open {
        match inbox.recv() {
            Ok(first) => pending.push(first),
            Err(_) => return,
        }
        if hooks.crashed() {
            return;
        }
        open = take_waiting(&inbox, &mut pending);
        let mut failing_since: Option<Instant> = None;
        let mut logged = Instant::now();
        loop {
            if hooks.crashed() {
                return;
            }
            let Err(cause) = hooks.write(&mut conn, pending.iter().map(|(_, b)| b)) else {
                break;
            };
            if failing_since.is_none() {
                failing_since = Some(Instant::now());
                logged = Instant::now();
                tracing::error!(
                    "cannot write the database {} ({cause}); {} change(s) are kept in memory \
                     and retried every {RETRY:?}; changes are refused until they are written",
                    path.display(),
                    pending.len(),
                );
            } else if logged.elapsed() >= LOG_EVERY {
                logged = Instant::now();
                tracing::error!(
                    "still cannot write the database {} ({cause}) after {:.0?}; {} change(s) wait",
                    path.display(),
                    failing_since.map_or(Duration::ZERO, |t| t.elapsed()),
                    pending.len(),
                );
            }
            report.send_if_modified(|w| {
                let same = w.failing.as_ref().is_some_and(|f| f.cause == cause);
                if !same {
                    w.failing = Some(Arc::new(WriteFailure {
                        path: path.to_owned(),
                        cause,
                        since: SystemTime::now(),
                    }));
                }
                !same
            });
            if !open {
                tracing::error!(
                    "the engine closed with {} change(s) not written to {} (none of them was acknowledged)",
                    pending.len(),
                    path.display(),
                );
                return;
            }
            std::thread::sleep(RETRY);
            // What arrives meanwhile joins the same transaction.
            open = take_waiting(&inbox, &mut pending);
        }
        if let Some(since) = failing_since {
            tracing::warn!(
                "the database {} is written again after {:.1?}; {} change(s) that waited are on disk",
                path.display(),
                since.elapsed(),
                pending.len(),
            );
        }
        let seq = pending.last().map_or(0, |(seq, _)| *seq);
        pending.clear();
        report.send_modify(|w| {
            w.seq = seq;
            w.commits += 1;
            w.failing = None;
        });
    }
}

/// How often a failed write is retried.
const RETRY: Duration = Duration::from_millis(500);
/// How often a write that keeps failing is logged again.
const LOG_EVERY: Duration = Duration::from_secs(30);

/// Gives the connection the page cap a test asked for, if it asked since the last write.
fn apply_page_limit(conn: &Connection, page_limit: &AtomicU64) {
    let pages = page_limit.swap(0, Ordering::SeqCst);
    if pages != 0 {
        let set =
            conn.pragma_update_and_check(None, "max_page_count", pages, |r| r.get::<_, i64>(0));
        if let Err(e) = set {
            tracing::error!("cannot set the database's max_page_count: {e}");
        }
    }
}

/// Moves the batches already sent into `pending`; false once the store closed the channel.
fn take_waiting(inbox: &mpsc::Receiver<(u64, Batch)>, pending: &mut Vec<(u64, Batch)>) -> bool {
    loop {
        match inbox.try_recv() {
            Ok(batch) => pending.push(batch),
            Err(mpsc::TryRecvError::Empty) => return true,
            Err(mpsc::TryRecvError::Disconnected) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{clock::Clock, run::Config, state::State, store::durable::Db};

    #[tokio::test]
    async fn batches_staged_together_share_one_commit_and_all_reach_the_file() {
        let dir = std::env::temp_dir().join(format!("capstan-group-commit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("engine.db");
        let _ = std::fs::remove_file(&path);
        let mut state = State::new(&[], Clock::Real, Config::default());
        let (_, conn) = Db::open(&path, &mut state).unwrap();
        let mut writer = GroupCommit::start(conn, path.clone());
        for i in 0..200 {
            writer.submit(Batch::namespace(&format!("ns-{i}"), &format!("id-{i}")));
        }
        writer.ticket(true).written().await;
        let commits = writer.written.borrow().commits;
        // The first batch may be written alone; the rest arrive while it is on its way.
        assert!(
            (1..=20).contains(&commits),
            "200 batches took {commits} commits"
        );
        writer.close();
        let rows: i64 = Connection::open(&path)
            .unwrap()
            .query_row("SELECT count(*) FROM namespaces", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 200);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
