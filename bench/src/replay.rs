//! The replay scenario: one captured `Counter` history (a run of signals) replayed by
//! Capstan's [`Replayer`] and by the official SDK's `WorkflowReplayer`, in this process.

use std::{
    collections::BTreeMap,
    sync::{Mutex, OnceLock},
    time::Instant,
};

use anyhow::Context as _;
use capstan::{
    testing::{unique_task_queue, CapturedHistory, Replayer},
    Client, Worker,
};
use temporalio_common::protos::temporal::api::history::v1::History;
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};

use crate::{
    contestants::{capstan_worker, official_worker, Contestant},
    Measurement, Metric,
};

/// A history of about `events` events: a `Counter` run on `task_queue` that took enough
/// signals, captured once per process and shared by every contestant (so that all replay
/// the very same events).
pub async fn history(client: &Client, task_queue: &str, events: usize) -> anyhow::Result<History> {
    static CAPTURED: OnceLock<Mutex<BTreeMap<usize, History>>> = OnceLock::new();
    let captured = CAPTURED.get_or_init(Default::default);
    if let Some(history) = captured.lock().expect("not poisoned").get(&events) {
        return Ok(history.clone());
    }
    let handle = client
        .start_workflow_by_name("Counter", unique_task_queue("replay"), ())
        .task_queue(task_queue)
        .await?;
    // Each signal, sent once the last was handled, adds its own workflow task: the
    // signal event and the task's scheduled, started and completed events.
    for _ in 0..events.saturating_sub(8) / 4 {
        handle.signal_with("bump", ()).await?;
        handle.query_with::<_, u64>("count", ()).await?;
    }
    handle.signal_with("finish", ()).await?;
    handle.result_as::<u64>().await?;
    let history = History {
        events: handle.history().await?,
    };
    captured
        .lock()
        .expect("not poisoned")
        .insert(events, history.clone());
    Ok(history)
}

/// Replays `history` with `contestant`'s replayer; returns events per second (wall time
/// of a CPU-bound replay on an otherwise idle process).
pub async fn replay(
    contestant: Contestant,
    client: &Client,
    history: History,
) -> anyhow::Result<Measurement> {
    let events = history.events.len();
    let started = Instant::now();
    match contestant {
        Contestant::Capstan => {
            let worker =
                Worker::new(client, "bench-replay").register_workflow::<capstan_worker::Counter>();
            Replayer::new(&worker)
                .replay(vec![CapturedHistory {
                    workflow_id: "bench-replay".to_owned(),
                    source: format!("a Counter history of {events} events"),
                    history,
                }])
                .await?;
        }
        Contestant::OfficialRust => {
            let options = WorkflowReplayerOptions::new()
                .register_workflow::<official_worker::Counter>()?
                .build();
            WorkflowReplayer::new(options)?
                .replay_workflow(history.into())
                .await
                .context("the official SDK could not replay the history")?;
        }
        Contestant::Python => anyhow::bail!("the replay scenario has no Python contestant"),
    }
    let elapsed = started.elapsed();
    let mut m = Measurement::default();
    m.push(Metric::PerSecond, events as f64 / elapsed.as_secs_f64());
    m.push(Metric::TotalMs, elapsed.as_secs_f64() * 1e3);
    Ok(m)
}
