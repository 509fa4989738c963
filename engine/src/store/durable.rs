//! The durable half of the store: a SQLite file in WAL mode.
//!
//! The file is the engine's alone: `PRAGMA application_id` is [`APPLICATION_ID`] ("CPST";
//! files of versions 1 and 2, which had none, are stamped when opened), any other SQLite
//! file is refused unchanged, and while an engine has it open it holds its lock
//! ([`FileLock`](super::file_lock::FileLock), on `<file>-lock`).
//!
//! Schema (version 2, `PRAGMA user_version`; a version-1 file gains the `schedules` table):
//!
//! - `namespaces(name PRIMARY KEY, id)`
//! - `runs(run_id PRIMARY KEY, namespace, workflow_id, start_order, status, state)`: `state`
//!   is the run's mutable state (everything but its events) as JSON, protobuf fields in it
//!   hex-encoded protobuf; `start_order` keeps the order runs were started in (listing
//!   order and which run of a workflow id is current).
//! - `events(run_id, event_id, event)`: one row per history event, the protobuf bytes of a
//!   `HistoryEvent`. Events are append-only, so a commit inserts only the new ones.
//! - `schedules(namespace, schedule_id, state)`: each schedule as JSON, like runs.
//!
//! A store transaction that touched runs or schedules stages them, their new events and any
//! new namespace as one [`Batch`] ([`Db::stage`]); the group commit writer writes every
//! batch staged meanwhile in one SQLite transaction ([`write`]), and the store transaction's
//! effects are released once its batch is on disk.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::SystemTime,
};

use prost::Message as _;
use rusqlite::{params, Connection};

use super::file_lock::{self, FileLock};
use crate::{
    event_log::EventLog,
    proto::history::HistoryEvent,
    run::Run,
    state::{Changes, Namespace, State},
};

const SCHEMA_VERSION: i64 = 2;

/// `PRAGMA application_id` of an engine's file: "CPST". Files of schema versions 1 and 2
/// have none (0) and are stamped when opened.
pub(crate) const APPLICATION_ID: i32 = 0x4350_5354;

/// The tables of schema versions 1 and 2, which had no application id.
const LEGACY_TABLES: &[&str] = &["events", "namespaces", "runs", "schedules"];

/// Why the database could not be opened, read or written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DbError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("schedule `{schedule_id}` cannot be decoded: {message}")]
    DecodeSchedule {
        schedule_id: String,
        message: String,
    },
    #[error("run `{run_id}` cannot be decoded: {message}")]
    Decode { run_id: String, message: String },
    #[error("the database has schema version {0}; this engine reads version {SCHEMA_VERSION}")]
    Version(i64),
    #[error(transparent)]
    Lock(#[from] file_lock::LockError),
    #[error("it is not a SQLite database; give `--db` a new path or a Capstan engine database")]
    NotSqlite,
    #[error(
        "it is not a Capstan engine database ({0}); it was left unchanged: give `--db` a new path or a Capstan engine database"
    )]
    NotCapstan(String),
    #[error("cannot read it: {0}")]
    Io(#[from] std::io::Error),
}

/// What of the state the database file holds (or will hold once the batches staged so far
/// are written): what the next [`Db::stage`] must add.
pub(crate) struct Db {
    path: PathBuf,
    /// This engine's claim on the file, for as long as it has it open.
    _lock: FileLock,
    /// Events already stored, by run id.
    stored_events: HashMap<String, usize>,
    next_order: i64,
    stored_namespaces: usize,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish()
    }
}

impl Db {
    /// Opens (creating if needed) the database at `path` and loads what it holds into
    /// `state` (the caller rebuilds queues and deadlines from it). Returns the connection
    /// for the writer.
    pub(crate) fn open(path: &Path, state: &mut State) -> Result<(Self, Connection), DbError> {
        // Taken before anything is read: whoever holds it may be writing.
        let lock = FileLock::acquire(path)?;
        let conn = match open_capstan_file(path) {
            Ok(conn) => conn,
            Err(e) => {
                if matches!(e, DbError::NotSqlite | DbError::NotCapstan(_)) {
                    // Not ours: leave nothing beside it.
                    let _ = std::fs::remove_file(file_lock::lock_path(path));
                    drop(lock);
                }
                return Err(e);
            }
        };
        let mut db = Self {
            path: path.to_owned(),
            _lock: lock,
            stored_events: HashMap::new(),
            next_order: 0,
            stored_namespaces: 0,
        };
        db.load(&conn, state)?;
        Ok((db, conn))
    }

    fn load(&mut self, conn: &Connection, state: &mut State) -> Result<(), DbError> {
        let stored: Vec<(String, String)> = {
            let mut stmt = conn.prepare("SELECT name, id FROM namespaces")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        for (name, id) in stored {
            // A namespace keeps the id it was created with.
            state
                .namespaces
                .insert(name.clone(), Namespace { name, id });
        }
        self.stored_namespaces = conn.query_row("SELECT count(*) FROM namespaces", [], |r| {
            r.get::<_, i64>(0)
        })? as usize;

        let mut events: HashMap<String, EventLog> = HashMap::new();
        let mut max_task_id = 0;
        let mut latest_event = SystemTime::UNIX_EPOCH;
        {
            let mut stmt =
                conn.prepare("SELECT run_id, event FROM events ORDER BY run_id, event_id")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let run_id: String = row.get(0)?;
                let bytes: Vec<u8> = row.get(1)?;
                let event =
                    HistoryEvent::decode(bytes.as_slice()).map_err(|e| DbError::Decode {
                        run_id: run_id.clone(),
                        message: e.to_string(),
                    })?;
                let log = events.entry(run_id).or_default();
                if event.event_id != log.len() as i64 + 1 {
                    return Err(DbError::Decode {
                        run_id: row.get(0)?,
                        message: format!(
                            "event {} is stored as event {}",
                            log.len() + 1,
                            event.event_id
                        ),
                    });
                }
                max_task_id = max_task_id.max(event.task_id);
                if let Some(t) = event_time(&event) {
                    latest_event = latest_event.max(t);
                }
                log.push_encoded(&bytes);
            }
        }
        let mut stmt =
            conn.prepare("SELECT run_id, start_order, state FROM runs ORDER BY start_order")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let run_id: String = row.get(0)?;
            let order: i64 = row.get(1)?;
            let json: String = row.get(2)?;
            let mut run: Run = serde_json::from_str(&json).map_err(|e| DbError::Decode {
                run_id: run_id.clone(),
                message: e.to_string(),
            })?;
            run.events = events.remove(&run_id).unwrap_or_default();
            run.restore_timer_deadlines();
            self.next_order = self.next_order.max(order + 1);
            self.stored_events.insert(run_id.clone(), run.events.len());
            state.current.insert(
                (run.namespace.clone(), run.workflow_id.clone()),
                run_id.clone(),
            );
            state.started.push(run_id);
            state.runs.load(run);
        }
        drop(rows);
        drop(stmt);
        let mut stmt = conn.prepare("SELECT schedule_id, state FROM schedules")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let schedule_id: String = row.get(0)?;
            let json: String = row.get(1)?;
            let schedule = serde_json::from_str(&json).map_err(|e| DbError::DecodeSchedule {
                schedule_id,
                message: e.to_string(),
            })?;
            state.schedules.load(schedule);
        }
        drop(rows);
        drop(stmt);
        state.seq = state.seq.max(max_task_id.max(0) as u64);
        // A virtual clock never runs behind the times already written.
        state.clock.skip_to(latest_event);
        state.begin();
        Ok(())
    }

    /// What the store transaction that just ran changed, as rows to write: the runs and
    /// schedules it touched, their new events and any new namespace. `None` when it
    /// changed nothing durable. From here on the rows count as written: they reach the
    /// file in order, through the [`GroupCommit`](super::group_commit::GroupCommit) writer.
    pub(crate) fn stage(
        &mut self,
        state: &State,
        changes: &Changes,
    ) -> Result<Option<Batch>, DbError> {
        let dirty = &changes.runs;
        if dirty.is_empty()
            && changes.schedules.is_empty()
            && state.namespaces.len() == self.stored_namespaces
        {
            return Ok(None);
        }
        let mut batch = Batch::default();
        if state.namespaces.len() != self.stored_namespaces {
            batch.namespaces = state
                .namespaces
                .values()
                .map(|ns| (ns.name.clone(), ns.id.clone()))
                .collect();
            self.stored_namespaces = state.namespaces.len();
        }
        for run_id in dirty {
            let Some(run) = state.runs.get(run_id) else {
                // Deleted.
                if self.stored_events.remove(run_id).is_some() {
                    batch.deleted_runs.push(run_id.clone());
                }
                continue;
            };
            let state_json = serde_json::to_string(run).map_err(|e| DbError::Decode {
                run_id: run_id.clone(),
                message: e.to_string(),
            })?;
            let stored = self.stored_events.insert(run_id.clone(), run.events.len());
            let start_order = if stored.is_none() {
                self.next_order += 1;
                self.next_order - 1
            } else {
                0
            };
            let from = stored.unwrap_or(0).min(run.events.len());
            batch.runs.push(RunRow {
                run_id: run_id.clone(),
                namespace: run.namespace.clone(),
                workflow_id: run.workflow_id.clone(),
                start_order,
                status: run.status as i32,
                state: state_json,
                // A discarded speculative workflow task shortens a history.
                truncate_after: stored
                    .filter(|&n| n > run.events.len())
                    .map(|_| run.events.len() as i64),
                events: (from..run.events.len())
                    .filter_map(|i| Some((i as i64 + 1, run.events.encoded(i)?.to_vec())))
                    .collect(),
            });
        }
        for key in &changes.schedules {
            let state_json =
                match state.schedules.get(key) {
                    Some(schedule) => Some(serde_json::to_string(schedule).map_err(|e| {
                        DbError::DecodeSchedule {
                            schedule_id: key.1.clone(),
                            message: e.to_string(),
                        }
                    })?),
                    None => None,
                };
            batch
                .schedules
                .push((key.0.clone(), key.1.clone(), state_json));
        }
        Ok(Some(batch))
    }
}

/// Opens the file at `path` if it is an engine's (of this schema version or an older one)
/// or new, and brings its schema up to date; refuses, before changing anything, any other
/// file.
fn open_capstan_file(path: &Path) -> Result<Connection, DbError> {
    check_sqlite_header(path)?;
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let version = identify(&conn)?;
    if version > SCHEMA_VERSION {
        return Err(DbError::Version(version));
    }
    // WAL: readers never block the writer and a commit is one append to the log.
    // synchronous=FULL: a commit is on disk (fsync of the log) before it returns, so an
    // acknowledged change survives an OS crash or power loss too. The fsync costs
    // milliseconds; the group commit writer spreads it over every transaction that
    // arrived meanwhile.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    conn.execute_batch(&format!(
        "BEGIN;
         CREATE TABLE IF NOT EXISTS namespaces (
             name TEXT PRIMARY KEY,
             id TEXT NOT NULL
         );
         CREATE TABLE IF NOT EXISTS runs (
             run_id TEXT PRIMARY KEY,
             namespace TEXT NOT NULL,
             workflow_id TEXT NOT NULL,
             start_order INTEGER NOT NULL,
             status INTEGER NOT NULL,
             state TEXT NOT NULL
         );
         CREATE INDEX IF NOT EXISTS runs_by_workflow ON runs (namespace, workflow_id);
         CREATE TABLE IF NOT EXISTS events (
             run_id TEXT NOT NULL,
             event_id INTEGER NOT NULL,
             event BLOB NOT NULL,
             PRIMARY KEY (run_id, event_id)
         ) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS schedules (
             namespace TEXT NOT NULL,
             schedule_id TEXT NOT NULL,
             state TEXT NOT NULL,
             PRIMARY KEY (namespace, schedule_id)
         ) WITHOUT ROWID;
         PRAGMA user_version = {SCHEMA_VERSION};
         PRAGMA application_id = {APPLICATION_ID};
         COMMIT;"
    ))?;
    Ok(conn)
}

/// A file SQLite would open is empty or starts with SQLite's header; anything else is
/// refused before SQLite sees it.
fn check_sqlite_header(path: &Path) -> Result<(), DbError> {
    use std::io::Read as _;
    let Ok(file) = std::fs::File::open(path) else {
        // Missing: SQLite creates it (or says why it cannot).
        return Ok(());
    };
    let mut header = Vec::with_capacity(16);
    file.take(16).read_to_end(&mut header)?;
    if header.is_empty() || header == b"SQLite format 3\0" {
        Ok(())
    } else {
        Err(DbError::NotSqlite)
    }
}

/// The schema version of an engine's file (0: a new, empty file), or why the file is
/// someone else's.
fn identify(conn: &Connection) -> Result<i64, DbError> {
    let application_id: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if application_id == APPLICATION_ID {
        return Ok(version);
    }
    if application_id != 0 {
        return Err(DbError::NotCapstan(format!(
            "its application id is {application_id:#010x}, not the engine's {APPLICATION_ID:#010x}"
        )));
    }
    let tables: Vec<String> = {
        let mut stmt = conn.prepare(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
             ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    if tables.is_empty() && version == 0 {
        return Ok(0);
    }
    let legacy = (1..=2).contains(&version)
        && ["runs", "events"]
            .iter()
            .all(|t| tables.iter().any(|n| n == t))
        && tables.iter().all(|t| LEGACY_TABLES.contains(&t.as_str()));
    if legacy {
        return Ok(version);
    }
    let foreign: Vec<&String> = tables
        .iter()
        .filter(|t| !LEGACY_TABLES.contains(&t.as_str()))
        .collect();
    Err(DbError::NotCapstan(match foreign.as_slice() {
        [] => format!("it has no application id and schema version {version}"),
        [..] => {
            let mut names = foreign
                .iter()
                .take(5)
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(", ");
            if foreign.len() > 5 {
                names.push_str(&format!(" and {} more", foreign.len() - 5));
            }
            format!("it holds tables of its own: {names}")
        }
    }))
}

/// The rows one store transaction changed (see [`Db::stage`]).
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// Every namespace, `(name, id)`, when one was added.
    namespaces: Vec<(String, String)>,
    runs: Vec<RunRow>,
    deleted_runs: Vec<String>,
    /// `(namespace, schedule id, state)`; no state: the schedule was deleted.
    schedules: Vec<(String, String, Option<String>)>,
}

#[cfg(test)]
impl Batch {
    /// A batch adding one namespace.
    pub(crate) fn namespace(name: &str, id: &str) -> Self {
        Self {
            namespaces: vec![(name.to_owned(), id.to_owned())],
            ..Self::default()
        }
    }
}

/// A run's row and its new events.
#[derive(Debug)]
struct RunRow {
    run_id: String,
    namespace: String,
    workflow_id: String,
    /// Meaningful for a new run only (an update keeps the stored order).
    start_order: i64,
    status: i32,
    state: String,
    /// Events after this id are deleted first.
    truncate_after: Option<i64>,
    events: Vec<(i64, Vec<u8>)>,
}

/// Writes `batches`, in order, in one SQLite transaction: one commit (and, with
/// `synchronous=FULL`, one fsync) for all of them.
pub(crate) fn write<'a>(
    conn: &mut Connection,
    batches: impl IntoIterator<Item = &'a Batch>,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut namespace =
            tx.prepare_cached("INSERT OR IGNORE INTO namespaces (name, id) VALUES (?1, ?2)")?;
        let mut upsert_run = tx.prepare_cached(
            "INSERT INTO runs (run_id, namespace, workflow_id, start_order, status, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (run_id) DO UPDATE SET status = excluded.status, state = excluded.state",
        )?;
        let mut insert_event = tx.prepare_cached(
            "INSERT OR REPLACE INTO events (run_id, event_id, event) VALUES (?1, ?2, ?3)",
        )?;
        let mut drop_events =
            tx.prepare_cached("DELETE FROM events WHERE run_id = ?1 AND event_id > ?2")?;
        let mut upsert_schedule = tx.prepare_cached(
            "INSERT OR REPLACE INTO schedules (namespace, schedule_id, state) VALUES (?1, ?2, ?3)",
        )?;
        let mut delete_run = tx.prepare_cached("DELETE FROM runs WHERE run_id = ?1")?;
        let mut delete_events = tx.prepare_cached("DELETE FROM events WHERE run_id = ?1")?;
        let mut delete_schedule =
            tx.prepare_cached("DELETE FROM schedules WHERE namespace = ?1 AND schedule_id = ?2")?;
        for batch in batches {
            for (name, id) in &batch.namespaces {
                namespace.execute(params![name, id])?;
            }
            for run in &batch.runs {
                upsert_run.execute(params![
                    run.run_id,
                    run.namespace,
                    run.workflow_id,
                    run.start_order,
                    run.status,
                    run.state
                ])?;
                if let Some(last) = run.truncate_after {
                    drop_events.execute(params![run.run_id, last])?;
                }
                for (event_id, event) in &run.events {
                    insert_event.execute(params![run.run_id, event_id, event])?;
                }
            }
            for run_id in &batch.deleted_runs {
                delete_run.execute(params![run_id])?;
                delete_events.execute(params![run_id])?;
            }
            for (namespace, schedule_id, state) in &batch.schedules {
                match state {
                    Some(json) => upsert_schedule.execute(params![namespace, schedule_id, json])?,
                    None => delete_schedule.execute(params![namespace, schedule_id])?,
                };
            }
        }
    }
    tx.commit()
}

fn event_time(e: &HistoryEvent) -> Option<SystemTime> {
    let t = e.event_time.as_ref()?;
    let secs = u64::try_from(t.seconds).ok()?;
    Some(SystemTime::UNIX_EPOCH + std::time::Duration::new(secs, t.nanos.max(0) as u32))
}
