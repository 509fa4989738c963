//! Group commit: one writer thread owns the SQLite connection and writes, in one SQLite
//! transaction (one fsync), every batch staged while the previous write was on disk.
//!
//! Store transactions stage their batch under the state lock, in order, and take a
//! [`Ticket`] for it; a transaction's answer is released once the writer reports its batch,
//! and so every batch before it, written. Under load, many transactions share one fsync;
//! alone, a transaction costs one.

use std::{
    path::PathBuf,
    sync::mpsc,
    thread::JoinHandle,
    time::{Duration, Instant},
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
        let thread = std::thread::Builder::new()
            .name("capstan-engine-writer".into())
            .spawn(move || writer(conn, &path, inbox, report))
            .expect("the writer thread starts");
        Self {
            batches: Some(batches),
            staged: 0,
            written,
            thread: Some(thread),
        }
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
    pub(crate) fn ticket(&self) -> Ticket {
        Ticket {
            wait: (self.staged > self.written.borrow().seq)
                .then(|| (self.staged, self.written.clone())),
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
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Written {
    /// The sequence number of the last batch on disk.
    pub(crate) seq: u64,
    /// SQLite transactions committed so far (each one fsync).
    pub(crate) commits: u64,
}

/// The promise that a transaction's batch will be written.
#[derive(Debug, Default)]
pub(crate) struct Ticket {
    /// The sequence number to wait for, and where the writer reports; `None` when there is
    /// nothing to wait for (in memory, or all written).
    wait: Option<(u64, watch::Receiver<Written>)>,
}

impl Ticket {
    /// Returns once the batch is on disk.
    ///
    /// # Panics
    ///
    /// If the engine was closed before the batch was written: its effects must not be
    /// acknowledged.
    pub(crate) async fn written(self) {
        let Some((seq, mut written)) = self.wait else {
            return;
        };
        if written.wait_for(|w| w.seq >= seq).await.is_err() {
            panic!("capstan-engine: the database writer stopped before this change was written");
        }
    }
}

/// The writer's loop: takes every batch waiting, writes them in one transaction, reports
/// the last one written. A failed write (a full disk, a file that vanished) is retried
/// until it succeeds or the engine closes: nothing is acknowledged that is not on disk.
fn writer(
    mut conn: Connection,
    path: &std::path::Path,
    inbox: mpsc::Receiver<(u64, Batch)>,
    report: watch::Sender<Written>,
) {
    let mut pending: Vec<(u64, Batch)> = Vec::new();
    let mut open = true;
    while open {
        match inbox.recv() {
            Ok(first) => pending.push(first),
            Err(_) => return,
        }
        open = take_waiting(&inbox, &mut pending);
        let mut failing_since: Option<Instant> = None;
        while let Err(e) = write(&mut conn, pending.iter().map(|(_, b)| b)) {
            let since = *failing_since.get_or_insert_with(Instant::now);
            if !open {
                tracing::error!(
                    "capstan-engine: cannot write {} ({e}); the engine closed with {} change(s) unwritten and unacknowledged",
                    path.display(),
                    pending.len()
                );
                return;
            }
            tracing::error!(
                "capstan-engine: cannot write {} ({e}); retrying, {} change(s) wait for it since {:.0?}",
                path.display(),
                pending.len(),
                since.elapsed()
            );
            std::thread::sleep(Duration::from_millis(500));
            // What arrives meanwhile joins the same transaction.
            open = take_waiting(&inbox, &mut pending);
        }
        let seq = pending.last().map_or(0, |(seq, _)| *seq);
        pending.clear();
        report.send_modify(|w| {
            w.seq = seq;
            w.commits += 1;
        });
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
        writer.ticket().written().await;
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
