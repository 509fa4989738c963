//! What the engine's integration tests share: an engine with a client, database files of
//! their own, the engine binary, history checks, and the test workflows more than one
//! file runs. Each test file has `mod support;`. Unique task queues come from
//! `capstan::testing::unique_task_queue`.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::{
    ffi::OsStr,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::SystemTime,
};

use capstan::{client::history::HistoryEvent, Client};
use capstan_engine::{Engine, EngineOptions};

// The runtime's tests run the same `Counter` on the dev server.
#[path = "../../../runtime/tests/support/counter.rs"]
pub(crate) mod counter;

/// An engine started with `options`, and a client connected to it.
pub(crate) async fn start(options: EngineOptions) -> (Engine, Client) {
    let engine = Engine::start(options).await.expect("the engine starts");
    let client = Client::connect(engine.address())
        .await
        .expect("the client connects");
    (engine, client)
}

/// An engine with the default options (in memory, real time), and a client of it.
pub(crate) async fn engine() -> (Engine, Client) {
    start(EngineOptions::default()).await
}

/// An engine on the virtual clock, and a client of it.
pub(crate) async fn virtual_clock_engine() -> (Engine, Client) {
    start(EngineOptions {
        virtual_clock: true,
        ..EngineOptions::default()
    })
    .await
}

/// An engine on the database file `db`, and a client of it.
pub(crate) async fn engine_on(db: &Path) -> (Engine, Client) {
    start(EngineOptions {
        db: Some(db.to_owned()),
        ..EngineOptions::default()
    })
    .await
}

/// A fresh database path under the temp dir, removed with its WAL files when dropped.
pub(crate) struct TempDb(PathBuf);

impl TempDb {
    /// `capstan-engine-test-<pid>-<name>-<n>.db`, with nothing there yet.
    pub(crate) fn new(name: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "capstan-engine-test-{}-{name}-{}.db",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let db = Self(path);
        db.remove();
        db
    }

    /// The database file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    fn remove(&self) {
        for suffix in ["", "-wal", "-shm", "-lock"] {
            let mut p = self.0.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Starts the `capstan-engine` binary with `args`; returns it and the address it prints
/// once it serves.
pub(crate) fn spawn_binary<I, S>(args: I) -> (Child, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut child = Command::new(env!("CARGO_BIN_EXE_capstan-engine"))
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(!line.trim().is_empty(), "the engine printed no address");
    (child, line.trim().to_owned())
}

/// When the event happened.
pub(crate) fn event_time(event: &HistoryEvent) -> SystemTime {
    SystemTime::try_from(event.event_time.expect("events have times")).expect("a valid time")
}

/// Asserts that the event ids run 1, 2, 3, … with no gap; `what` names the history.
pub(crate) fn assert_contiguous(history: &[HistoryEvent], what: &str) {
    for (i, e) in history.iter().enumerate() {
        assert_eq!(
            e.event_id,
            i as i64 + 1,
            "{what}: event ids are contiguous: {history:#?}"
        );
    }
}
