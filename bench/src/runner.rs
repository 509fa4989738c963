//! The interleaved rounds: every entry (scenario × contestant × server) once per round,
//! in the same order each round, so that slow drifts of a shared machine hit every
//! contestant alike.

use std::collections::{btree_map, BTreeMap, BTreeSet};

use anyhow::Context as _;
use capstan::{testing::unique_task_queue, Client};

use crate::{
    contestants::{Contestant, Launcher, RunningWorker},
    scenarios::Scenario,
    servers::{Server, ServerKind},
    Measurement,
};

/// One cell of the benchmark: a scenario run by a contestant against a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entry {
    /// What is run.
    pub scenario: Scenario,
    /// Whose worker runs it.
    pub contestant: Contestant,
    /// Against which server.
    pub server: ServerKind,
}

/// Every round's measurement of every entry.
#[derive(Clone, Debug, Default)]
pub struct Results {
    /// Measurements by entry, in round order.
    pub rounds: BTreeMap<Entry, Vec<Measurement>>,
}

/// Runs `entries` for `rounds` interleaved rounds, starting the servers and workers they
/// need (`progress` gets one line per measurement).
pub async fn run(
    entries: &[Entry],
    rounds: usize,
    launcher: &Launcher,
    mut progress: impl FnMut(&str),
) -> anyhow::Result<Results> {
    let mut servers: BTreeMap<ServerKind, (Server, Client)> = BTreeMap::new();
    for kind in entries.iter().map(|e| e.server).collect::<BTreeSet<_>>() {
        progress(&format!("starting {kind}"));
        let server = kind
            .start()
            .await
            .with_context(|| format!("could not start the {kind} server"))?;
        let client = Client::connect(server.address()).await?;
        servers.insert(kind, (server, client));
    }
    let mut workers: BTreeMap<(Contestant, ServerKind), RunningWorker> = BTreeMap::new();
    let mut results = Results::default();
    for round in 1..=rounds {
        for entry in entries {
            let (server, client) = &servers[&entry.server];
            let fresh;
            let worker = if entry.scenario.needs_fresh_worker() {
                fresh = start(launcher, entry, server).await?;
                &fresh
            } else {
                let key = (entry.contestant, entry.server);
                match workers.entry(key) {
                    btree_map::Entry::Occupied(worker) => worker.into_mut(),
                    btree_map::Entry::Vacant(slot) => {
                        slot.insert(start(launcher, entry, server).await?)
                    }
                }
            };
            let measurement = match entry.scenario.run(entry.contestant, client, worker).await {
                Ok(m) => m,
                Err(e) => Measurement {
                    values: Vec::new(),
                    stalled: Some(format!("failed: {e:#}")),
                },
            };
            progress(&format!(
                "round {round}/{rounds} {:<40} {:<14} {:<14} {}",
                entry.scenario.to_string(),
                entry.contestant.name(),
                entry.server.name(),
                describe(&measurement)
            ));
            results.rounds.entry(*entry).or_default().push(measurement);
        }
    }
    Ok(results)
}

async fn start(
    launcher: &Launcher,
    entry: &Entry,
    server: &Server,
) -> anyhow::Result<RunningWorker> {
    let tq = unique_task_queue(&format!("bench-{}", entry.contestant));
    launcher
        .start(
            entry.contestant,
            &server.address(),
            &tq,
            entry.scenario.cached_workflows(),
        )
        .await
        .with_context(|| {
            format!(
                "could not start the {} worker on {}",
                entry.contestant, entry.server
            )
        })
}

fn describe(m: &Measurement) -> String {
    let mut text: Vec<String> = m
        .values
        .iter()
        .map(|(metric, value)| format!("{} {value:.2}", metric.label()))
        .collect();
    if let Some(why) = &m.stalled {
        text.push(format!("STALLED: {why}"));
    }
    text.join("  ")
}
