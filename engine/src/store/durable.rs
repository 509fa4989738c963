//! The durable half of the store: a SQLite file in WAL mode.
//!
//! The file is the engine's alone: `PRAGMA application_id` is [`APPLICATION_ID`] ("CPST";
//! files of versions 1 and 2, which had none, are stamped when opened), any other SQLite
//! file is refused unchanged, and while an engine has it open it holds its lock
//! ([`FileLock`](super::file_lock::FileLock), on `<file>-lock`).
//!
//! Schema (version 5, `PRAGMA user_version`). Opening an older file brings it up to date
//! in one transaction: version 1 gains `schedules`; versions 1 and 2 gain `buffered`, and
//! their runs' states lose their started attributes and buffered events; versions 1 to 3
//! gain the `crc` columns (their rows keep none: unverified); versions 1 to 4 gain
//! `search_attributes`.
//!
//! - `namespaces(name PRIMARY KEY, id)`
//! - `search_attributes(namespace, name, type)`: each namespace's custom search
//!   attributes, `type` an `IndexedValueType` number.
//! - `runs(run_id PRIMARY KEY, namespace, workflow_id, start_order, status, state, crc)`: `state`
//!   is the run's mutable state as JSON, protobuf fields in it hex-encoded protobuf; not in
//!   it are its events, its buffered events (both rows of their own) and its started
//!   attributes (read back from event 1: they hold the input, which may be large, and
//!   never change). `start_order` keeps the order runs were started in (listing order and
//!   which run of a workflow id is current).
//! - `events(run_id, event_id, event, crc)`: one row per history event, the protobuf bytes of a
//!   `HistoryEvent`. Events are append-only, so a commit inserts only the new ones.
//! - `buffered(run_id, seq, event, crc)`: the events that arrived while a workflow task was
//!   started, in order, each the protobuf bytes of a `HistoryEvent` that carries only its
//!   attributes. A commit inserts the new ones, and rewrites a run's rows only when one
//!   left the buffer (the task ended, or a fired timer was canceled).
//! - `schedules(namespace, schedule_id, state)`: each schedule as JSON, like runs.
//!
//! `crc` is the CRC-32 of the row's `state` or `event`: SQLite checks its own structures,
//! not what a row holds, and a payload with a flipped bit still decodes. A run with a row
//! that fails its checksum or does not decode is set aside when the file is opened (see
//! [`Damaged`](crate::state::Damaged)): its rows stay as they are, every other run is served.
//!
//! A store transaction that touched runs or schedules stages them, their new events and any
//! new namespace as one [`Batch`] ([`Db::stage`]); the group commit writer writes every
//! batch staged meanwhile in one SQLite transaction ([`write`]), and the store transaction's
//! effects are released once its batch is on disk. A change to a run so writes its small
//! state and what it appended, whatever its input or its buffer hold.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::SystemTime,
};

use prost::Message as _;
use rusqlite::{params, Connection};

use super::file_lock::{self, FileLock};
use crate::{
    event_log::EventLog,
    pb, proto,
    proto::history::{
        history_event::Attributes, HistoryEvent, WorkflowExecutionStartedEventAttributes,
    },
    run::{Buffered, EventBuffer, Run},
    search_attributes::Type as SearchAttributeType,
    state::{Changes, DamagedRun, Namespace, State},
};

const SCHEMA_VERSION: i64 = 5;

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
    /// Buffered events already stored, by run id: the buffer's epoch and how many.
    stored_buffered: HashMap<String, (u64, usize)>,
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
            stored_buffered: HashMap::new(),
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
            state.namespaces.insert(
                name.clone(),
                Namespace {
                    name,
                    id,
                    search_attributes: Default::default(),
                },
            );
        }
        self.stored_namespaces = conn.query_row("SELECT count(*) FROM namespaces", [], |r| {
            r.get::<_, i64>(0)
        })? as usize;
        {
            let mut stmt = conn.prepare("SELECT namespace, name, type FROM search_attributes")?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i32>(2)?,
                ))
            })?;
            for row in rows {
                let (namespace, name, kind) = row?;
                let Ok(kind) = SearchAttributeType::try_from(kind) else {
                    // Not the engine's: left in the file, not served.
                    tracing::warn!(
                        "search attribute `{name}` of namespace `{namespace}` has type {kind}, \
                         which is none of the engine's: it is not registered"
                    );
                    continue;
                };
                if let Some(ns) = state.namespaces.get_mut(&namespace) {
                    ns.search_attributes.restore(name, kind);
                }
            }
        }

        // What is damaged, by run id: those runs are set aside, not loaded.
        let mut damage: HashMap<String, String> = HashMap::new();
        let mut events: HashMap<String, EventLog> = HashMap::new();
        let mut max_task_id = 0;
        let mut latest_event = SystemTime::UNIX_EPOCH;
        {
            let mut stmt = conn.prepare(
                "SELECT run_id, event_id, event, crc FROM events ORDER BY run_id, event_id",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let run_id: String = row.get(0)?;
                if damage.contains_key(&run_id) {
                    continue;
                }
                let event_id: i64 = row.get(1)?;
                let bytes: Vec<u8> = row.get(2)?;
                let log = events.entry(run_id.clone()).or_default();
                let event = verify(&bytes, row.get(3)?)
                    .and_then(|()| HistoryEvent::decode(bytes.as_slice()).map_err(|e| e.to_string()))
                    .map_err(|e| format!("event {event_id} {e}"))
                    .and_then(|event| {
                        if event.event_id == event_id && event_id == log.len() as i64 + 1 {
                            Ok(event)
                        } else {
                            Err(format!(
                                "event {} is missing (found event {event_id}, which says it is event {})",
                                log.len() + 1,
                                event.event_id
                            ))
                        }
                    });
                match event {
                    Ok(event) => {
                        max_task_id = max_task_id.max(event.task_id);
                        if let Some(t) = event_time(&event) {
                            latest_event = latest_event.max(t);
                        }
                        log.push_encoded(&bytes);
                    }
                    Err(what) => {
                        events.remove(&run_id);
                        damage.insert(run_id, what);
                    }
                }
            }
        }
        let mut buffered: HashMap<String, Vec<Buffered>> = HashMap::new();
        {
            let mut stmt =
                conn.prepare("SELECT run_id, seq, event, crc FROM buffered ORDER BY run_id, seq")?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let run_id: String = row.get(0)?;
                if damage.contains_key(&run_id) {
                    continue;
                }
                let seq: i64 = row.get(1)?;
                let bytes: Vec<u8> = row.get(2)?;
                let attrs = verify(&bytes, row.get(3)?)
                    .and_then(|()| {
                        HistoryEvent::decode(bytes.as_slice()).map_err(|e| e.to_string())
                    })
                    .and_then(|e| match e.attributes {
                        Some(attrs) => Ok(Buffered {
                            at: proto::system_time(e.event_time.as_ref()),
                            attrs,
                        }),
                        None => Err("has no attributes".to_owned()),
                    })
                    .map_err(|e| format!("buffered event {seq} {e}"));
                match attrs {
                    Ok(attrs) => buffered.entry(run_id).or_default().push(attrs),
                    Err(what) => {
                        buffered.remove(&run_id);
                        damage.insert(run_id, what);
                    }
                }
            }
        }
        let mut stmt = conn.prepare(
            "SELECT run_id, namespace, workflow_id, start_order, state, crc FROM runs
             ORDER BY start_order",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let run_id: String = row.get(0)?;
            let key: (String, String) = (row.get(1)?, row.get(2)?);
            let order: i64 = row.get(3)?;
            let json: String = row.get(4)?;
            self.next_order = self.next_order.max(order + 1);
            let run = match damage.remove(&run_id) {
                Some(what) => Err(what),
                None => verify(json.as_bytes(), row.get(5)?)
                    .and_then(|()| serde_json::from_str::<Run>(&json).map_err(|e| e.to_string()))
                    .map_err(|e| format!("its state {e}")),
            };
            let run = run.and_then(|mut run| {
                run.events = events.remove(&run_id).unwrap_or_default();
                run.started = match run.events.get(0).and_then(|e| e.attributes) {
                    Some(Attributes::WorkflowExecutionStartedEventAttributes(a)) => Arc::new(a),
                    _ => return Err("its first event is not a started event".to_owned()),
                };
                Ok(run)
            });
            let mut run = match run {
                Ok(run) => run,
                Err(what) => {
                    tracing::error!(
                        "capstan-engine: {}: workflow `{}` run `{run_id}` is damaged ({what}); it is set aside, its rows left unchanged, and every other run is served",
                        self.path.display(),
                        key.1
                    );
                    // It may be its workflow id's latest run: no older one stands in for it.
                    state.current.remove(&key);
                    state.damaged.insert(DamagedRun {
                        run_id,
                        namespace: key.0,
                        workflow_id: key.1,
                        what,
                    });
                    continue;
                }
            };
            run.buffered = EventBuffer::from_entries(buffered.remove(&run_id).unwrap_or_default());
            self.stored_buffered
                .insert(run_id.clone(), (run.buffered.epoch(), run.buffered.len()));
            run.restore_timer_deadlines();
            self.stored_events.insert(run_id.clone(), run.events.len());
            state.damaged.superseded(&key);
            state.current.insert(key, run_id.clone());
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
            && changes.search_attributes.is_empty()
            && state.namespaces.len() == self.stored_namespaces
        {
            return Ok(None);
        }
        let mut batch = Batch::default();
        for namespace in &changes.search_attributes {
            let custom = state
                .namespaces
                .get(namespace)
                .map(|ns| {
                    ns.search_attributes
                        .iter()
                        .map(|(name, kind)| (name.to_owned(), kind as i32))
                        .collect()
                })
                .unwrap_or_default();
            batch.search_attributes.push((namespace.clone(), custom));
        }
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
                self.stored_buffered.remove(run_id);
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
            // Buffered events: the new ones, unless some went (then all, anew).
            let buffer = &run.buffered;
            let (epoch, kept) = self
                .stored_buffered
                .insert(run_id.clone(), (buffer.epoch(), buffer.len()))
                .unwrap_or((buffer.epoch(), 0));
            let rewrite_buffered = epoch != buffer.epoch() || kept > buffer.len();
            let first_new = if rewrite_buffered { 0 } else { kept };
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
                rewrite_buffered,
                buffered: buffer
                    .entries()
                    .enumerate()
                    .skip(first_new)
                    .map(|(seq, entry)| (seq as i64, encode_buffered(entry)))
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
    let mut conn = Connection::open(path)?;
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
    let tx = conn.transaction()?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS namespaces (
             name TEXT PRIMARY KEY,
             id TEXT NOT NULL
         );
         CREATE TABLE IF NOT EXISTS runs (
             run_id TEXT PRIMARY KEY,
             namespace TEXT NOT NULL,
             workflow_id TEXT NOT NULL,
             start_order INTEGER NOT NULL,
             status INTEGER NOT NULL,
             state TEXT NOT NULL,
             crc INTEGER
         );
         CREATE INDEX IF NOT EXISTS runs_by_workflow ON runs (namespace, workflow_id);
         CREATE TABLE IF NOT EXISTS events (
             run_id TEXT NOT NULL,
             event_id INTEGER NOT NULL,
             event BLOB NOT NULL,
             crc INTEGER,
             PRIMARY KEY (run_id, event_id)
         ) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS schedules (
             namespace TEXT NOT NULL,
             schedule_id TEXT NOT NULL,
             state TEXT NOT NULL,
             PRIMARY KEY (namespace, schedule_id)
         ) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS search_attributes (
             namespace TEXT NOT NULL,
             name TEXT NOT NULL,
             type INTEGER NOT NULL,
             PRIMARY KEY (namespace, name)
         ) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS buffered (
             run_id TEXT NOT NULL,
             seq INTEGER NOT NULL,
             event BLOB NOT NULL,
             crc INTEGER,
             PRIMARY KEY (run_id, seq)
         ) WITHOUT ROWID;",
    )?;
    if (1..3).contains(&version) {
        move_run_parts_out(&tx)?;
    }
    if (1..4).contains(&version) {
        for table in ["runs", "events", "buffered"] {
            add_checksum_column(&tx, table)?;
        }
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    tx.commit()?;
    Ok(conn)
}

/// Version 3: a run's state no longer holds its started attributes (they are event 1's;
/// its memo and search attributes, which the workflow may have changed since, stay) nor
/// its buffered events (rows of `buffered`).
fn move_run_parts_out(tx: &rusqlite::Transaction<'_>) -> Result<(), DbError> {
    let rows: Vec<(String, String)> = {
        let mut stmt = tx.prepare("SELECT run_id, state FROM runs")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut update = tx.prepare("UPDATE runs SET state = ?2 WHERE run_id = ?1")?;
    let mut insert_buffered =
        tx.prepare("INSERT OR REPLACE INTO buffered (run_id, seq, event) VALUES (?1, ?2, ?3)")?;
    for (run_id, json) in rows {
        let decode = |message: String| DbError::Decode {
            run_id: run_id.clone(),
            message,
        };
        let mut state: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&json).map_err(|e| decode(e.to_string()))?;
        if let Some(started) = state.remove("started") {
            let hex = started
                .as_str()
                .ok_or_else(|| decode("`started` is not a string".into()))?;
            let started = pb::unhex(hex)
                .and_then(|bytes| {
                    WorkflowExecutionStartedEventAttributes::decode(bytes.as_slice())
                        .map_err(|e| e.to_string())
                })
                .map_err(decode)?;
            let field = |m: Option<Vec<u8>>| {
                m.map_or(serde_json::Value::Null, |bytes| pb::hex(&bytes).into())
            };
            state.insert(
                "memo".to_owned(),
                field(started.memo.map(|m| m.encode_to_vec())),
            );
            state.insert(
                "search_attributes".to_owned(),
                field(started.search_attributes.map(|m| m.encode_to_vec())),
            );
        }
        if let Some(buffered) = state.remove("buffered") {
            let entries = buffered
                .as_array()
                .ok_or_else(|| decode("`buffered` is not a list".into()))?;
            for (seq, entry) in entries.iter().enumerate() {
                // Each is already a `HistoryEvent` that carries only its attributes.
                let bytes = entry
                    .as_str()
                    .ok_or_else(|| "a buffered event is not a string".to_owned())
                    .and_then(pb::unhex)
                    .map_err(decode)?;
                insert_buffered.execute(params![run_id, seq as i64, bytes])?;
            }
        }
        let json = serde_json::to_string(&state).map_err(|e| decode(e.to_string()))?;
        update.execute(params![run_id, json])?;
    }
    Ok(())
}

/// Version 4: `crc` on `table`, unless it has one (`buffered`, created by this very
/// upgrade from version 1 or 2, has).
fn add_checksum_column(tx: &rusqlite::Transaction<'_>, table: &str) -> Result<(), DbError> {
    let has: bool = tx.query_row(
        &format!("SELECT count(*) > 0 FROM pragma_table_info('{table}') WHERE name = 'crc'"),
        [],
        |r| r.get(0),
    )?;
    if !has {
        tx.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN crc INTEGER"))?;
    }
    Ok(())
}

/// A buffered event's row: the protobuf bytes of a `HistoryEvent` that carries only its
/// attributes and its time (encoded field by field, so its payloads are not copied).
fn encode_buffered(entry: &Buffered) -> Vec<u8> {
    let time = entry.at.map(proto::timestamp);
    let mut bytes = Vec::with_capacity(
        entry.attrs.encoded_len() + time.as_ref().map_or(0, |t| t.encoded_len() + 2),
    );
    entry.attrs.encode(&mut bytes);
    if let Some(time) = &time {
        // `HistoryEvent.event_time`.
        prost::encoding::message::encode(2, time, &mut bytes);
    }
    bytes
}

/// The checksum a row keeps of `bytes`.
fn checksum(bytes: &[u8]) -> i64 {
    i64::from(crc32fast::hash(bytes))
}

/// Checks `bytes` against the checksum stored beside them (none: a row written before
/// version 4, unverified).
fn verify(bytes: &[u8], stored: Option<i64>) -> Result<(), String> {
    match stored {
        Some(crc) if crc != checksum(bytes) => Err("fails its checksum".to_owned()),
        _ => Ok(()),
    }
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
    /// Namespaces whose custom search attributes changed, with all of them now.
    search_attributes: Vec<(String, Vec<(String, i32)>)>,
    runs: Vec<RunRow>,
    deleted_runs: Vec<String>,
    /// `(namespace, schedule id, state)`; no state: the schedule was deleted.
    schedules: Vec<(String, String, Option<String>)>,
}

#[cfg(test)]
impl Batch {
    /// How many bytes of rows the batch writes (keys aside).
    pub(crate) fn bytes(&self) -> usize {
        let runs: usize = self
            .runs
            .iter()
            .map(|r| {
                r.state.len()
                    + r.events.iter().map(|(_, e)| e.len()).sum::<usize>()
                    + r.buffered.iter().map(|(_, e)| e.len()).sum::<usize>()
            })
            .sum();
        let schedules: usize = self
            .schedules
            .iter()
            .map(|(_, _, s)| s.as_ref().map_or(0, String::len))
            .sum();
        runs + schedules
    }

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
    /// The run's buffered events are deleted first.
    rewrite_buffered: bool,
    /// New buffered events: `(seq, encoded)`.
    buffered: Vec<(i64, Vec<u8>)>,
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
            "INSERT INTO runs (run_id, namespace, workflow_id, start_order, status, state, crc)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (run_id) DO UPDATE
             SET status = excluded.status, state = excluded.state, crc = excluded.crc",
        )?;
        let mut insert_event = tx.prepare_cached(
            "INSERT OR REPLACE INTO events (run_id, event_id, event, crc) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let mut drop_events =
            tx.prepare_cached("DELETE FROM events WHERE run_id = ?1 AND event_id > ?2")?;
        let mut upsert_schedule = tx.prepare_cached(
            "INSERT OR REPLACE INTO schedules (namespace, schedule_id, state) VALUES (?1, ?2, ?3)",
        )?;
        let mut insert_buffered = tx.prepare_cached(
            "INSERT OR REPLACE INTO buffered (run_id, seq, event, crc) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let mut delete_buffered = tx.prepare_cached("DELETE FROM buffered WHERE run_id = ?1")?;
        let mut delete_run = tx.prepare_cached("DELETE FROM runs WHERE run_id = ?1")?;
        let mut delete_events = tx.prepare_cached("DELETE FROM events WHERE run_id = ?1")?;
        let mut delete_schedule =
            tx.prepare_cached("DELETE FROM schedules WHERE namespace = ?1 AND schedule_id = ?2")?;
        let mut clear_search_attributes =
            tx.prepare_cached("DELETE FROM search_attributes WHERE namespace = ?1")?;
        let mut insert_search_attribute = tx.prepare_cached(
            "INSERT INTO search_attributes (namespace, name, type) VALUES (?1, ?2, ?3)",
        )?;
        for batch in batches {
            for (name, id) in &batch.namespaces {
                namespace.execute(params![name, id])?;
            }
            for (namespace, custom) in &batch.search_attributes {
                clear_search_attributes.execute(params![namespace])?;
                for (name, kind) in custom {
                    insert_search_attribute.execute(params![namespace, name, kind])?;
                }
            }
            for run in &batch.runs {
                upsert_run.execute(params![
                    run.run_id,
                    run.namespace,
                    run.workflow_id,
                    run.start_order,
                    run.status,
                    run.state,
                    checksum(run.state.as_bytes())
                ])?;
                if let Some(last) = run.truncate_after {
                    drop_events.execute(params![run.run_id, last])?;
                }
                for (event_id, event) in &run.events {
                    insert_event.execute(params![run.run_id, event_id, event, checksum(event)])?;
                }
                if run.rewrite_buffered {
                    delete_buffered.execute(params![run.run_id])?;
                }
                for (seq, event) in &run.buffered {
                    insert_buffered.execute(params![run.run_id, seq, event, checksum(event)])?;
                }
            }
            for run_id in &batch.deleted_runs {
                delete_run.execute(params![run_id])?;
                delete_events.execute(params![run_id])?;
                delete_buffered.execute(params![run_id])?;
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
