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
    // Signals, as fast as they are accepted: each adds its event, and the workflow tasks
    // that handle them add three each (fewer when signals arrive during a task).
    'signals: loop {
        for _ in 0..100 {
            handle.signal_with("bump", ()).await?;
        }
        if handle.history().await?.len() + 4 >= events {
            break 'signals;
        }
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

/// Replays `history` with `contestant`'s replayer, as many times as it takes to replay
/// [`REPLAYED_EVENTS`]; returns events per second (wall time of a CPU-bound replay on an
/// otherwise idle process) and the time of one replay.
pub async fn replay(
    contestant: Contestant,
    client: &Client,
    history: History,
) -> anyhow::Result<Measurement> {
    let events = history.events.len();
    let times = REPLAYED_EVENTS.div_ceil(events.max(1));
    let started = Instant::now();
    for _ in 0..times {
        replay_once(contestant, client, history.clone()).await?;
    }
    let elapsed = started.elapsed();
    let mut m = Measurement::default();
    m.push(
        Metric::PerSecond,
        (events * times) as f64 / elapsed.as_secs_f64(),
    );
    m.push(Metric::TotalMs, elapsed.as_secs_f64() * 1e3 / times as f64);
    Ok(m)
}

/// How many events one replay measurement replays (a short history is replayed again
/// and again, so that every measurement takes long enough to time).
pub const REPLAYED_EVENTS: usize = 20_000;

async fn replay_once(
    contestant: Contestant,
    client: &Client,
    history: History,
) -> anyhow::Result<()> {
    match contestant {
        Contestant::Capstan => {
            let worker =
                Worker::new(client, "bench-replay").register_workflow::<capstan_worker::Counter>();
            Replayer::new(&worker)
                .replay(vec![CapturedHistory {
                    workflow_id: "bench-replay".to_owned(),
                    source: format!("a Counter history of {} events", history.events.len()),
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
    Ok(())
}
