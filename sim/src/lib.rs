//! Capstan's embedded engine under simulation.
//!
//! A seed makes a [`Plan`]: workflows, each following a script on a
//! simulated worker that speaks the raw worker protocol and misbehaves on purpose (dies
//! holding a task, answers late or twice, fails tasks, heartbeats then vanishes, asks for
//! a sticky queue it never polls), client calls (starts, signals, signal-with-start,
//! updates, queries, cancels, terminations, each sometimes sent twice with the same
//! request id), workflows on a real Capstan worker ([`real_worker`]), schedules and the
//! workflows they start ([`schedules`]), passing time on the engine's manual clock (from a second to days), and
//! faults (a crash at a transaction boundary and a reopen of the file, writes failing as
//! on a failed fsync or a full disk, dropped connections, the clock stepped back by up to
//! an hour). The [`driver`] runs it against
//! a real engine through its gRPC API; the [`checks`] hold it to a model.
//!
//! A failing seed prints the one command that replays it and a trace cut down to the
//! steps that still make it fail.

pub mod checks;
pub mod driver;
pub mod plan;
pub mod proto;
pub mod real_worker;
pub mod rng;
pub mod schedules;
pub mod scripts;

use std::{path::PathBuf, time::Instant};

use checks::Violation;
use driver::{Counts, Driver};
use plan::{Plan, Script, Size};

/// What a seed's run came to.
#[derive(Debug)]
pub struct Outcome {
    pub counts: Counts,
    /// The first violation, if any.
    pub violation: Option<Violation>,
    /// Each step and what came of it.
    pub trace: Vec<String>,
}

/// Runs `plan` on a fresh engine and checks every invariant.
pub async fn run(plan: Plan) -> anyhow::Result<Outcome> {
    run_showing(plan, false).await
}

/// [`run`], with every run's history at the end in the trace when `histories`.
pub async fn run_showing(plan: Plan, histories: bool) -> anyhow::Result<Outcome> {
    let dir = scratch_dir(plan.seed);
    let mut driver = Driver::start(plan, dir).await?;
    let mut result = driver.run().await;
    if result.is_ok() {
        result = check_end(&mut driver).await;
    }
    if histories {
        if let Ok(runs) = driver.known_runs().await {
            for (workflow_id, run_id) in runs {
                driver
                    .trace
                    .push(format!("history of {workflow_id} run {run_id}:"));
                for event in driver
                    .read_history(&workflow_id, &run_id)
                    .await
                    .unwrap_or_default()
                {
                    let detail = match &event.attributes {
                        Some(proto::Event::WorkflowTaskFailedEventAttributes(a)) => format!(
                            " cause {} {}",
                            a.cause,
                            a.failure.as_ref().map_or("", |f| f.message.as_str())
                        ),
                        _ => String::new(),
                    };
                    driver.trace.push(format!(
                        "  {:>3} {} {:?}{detail}",
                        event.event_id,
                        proto::rfc3339(proto::time_of(&event)),
                        proto::event_type(&event)
                    ));
                }
            }
        }
    }
    let outcome = Outcome {
        counts: driver.counts,
        violation: result.err(),
        trace: std::mem::take(&mut driver.trace),
    };
    driver.finish().await;
    Ok(outcome)
}

/// The checks once every workflow closed: each chain of runs ends as the model says,
/// every history is well formed, acknowledged signals and updates are there, children
/// end as their parent close policy says, and the engine's memory is back to baseline.
async fn check_end(driver: &mut Driver) -> Result<(), Violation> {
    let mut checks = 0;
    for w in 0..driver.plan.workflows.len() {
        let script = driver.plan.workflows[w];
        if let Script::Schedule { .. } = script {
            checks += driver.check_schedule(w).await?;
            continue;
        }
        let seen = driver.observed.workflows[w].clone();
        let workflow_id = driver.workflow_id(w);
        // Every run the engine lists, besides those acknowledged: a start answered
        // UNAVAILABLE may have started one once the disk took it.
        let mut heads = seen.chains.clone();
        let listed = driver.listed_runs(w).await?;
        checks += 1;
        for run_id in &seen.chains {
            if !listed.contains(run_id) {
                return Err(Violation::new(format!(
                    "w{w}: run {run_id} was acknowledged, yet the engine does not list it"
                )));
            }
        }
        heads.extend(
            listed
                .into_iter()
                .rev()
                .filter(|r| !seen.chains.contains(r)),
        );
        let mut chains = Vec::new();
        for first in &heads {
            chains.push(driver.chain(&workflow_id, first).await?);
        }
        // A run learned of later (the current run, told by a describe) may be a
        // continuation of a chain already known: only whole chains are checked.
        let continuations: std::collections::BTreeSet<String> = chains
            .iter()
            .flat_map(|c| c.iter().skip(1).map(|(run_id, _)| run_id.clone()))
            .collect();
        chains.retain(|c| !continuations.contains(&c[0].0));
        let mut all_runs = Vec::new();
        if let (Script::Errand { .. }, Some(worker)) = (script, &driver.real_worker) {
            let histories = chains
                .iter()
                .flatten()
                .map(|(_, events)| (workflow_id.clone(), events.clone()))
                .collect();
            checks += worker.replay(histories).await? as u64;
        }
        for chain in chains {
            for (run_id, events) in &chain {
                checks += checks::well_formed(&workflow_id, run_id, events, &driver.reopened)?;
            }
            checks += checks::chain_ends_as_modelled(w, script, &seen, &chain)?;
            if let Script::Child { policy, .. } = script {
                checks += child_ends_by_policy(driver, w, policy, &chain).await?;
            }
            all_runs.extend(chain);
        }
        checks += checks::signals_arrived(w, &seen, &all_runs)?;
        checks += checks::updates_agree(w, &seen, &all_runs)?;
    }
    // The real worker's held polls wait on topics: it stops first, and the engine lets
    // go of its polls when their connection closes.
    if let Some(worker) = driver.real_worker.take() {
        if let Some(failure) = worker.stop().await {
            return Err(Violation::new(format!(
                "the real Capstan worker: {failure}"
            )));
        }
    }
    checks += 1;
    let baseline = |census: capstan_engine::simulation::Census| {
        capstan_engine::simulation::Census {
            // Sticky queues are forgotten after a grace period.
            sticky_queues: 0,
            ..census
        } == Default::default()
    };
    let waited = Instant::now();
    let mut census = driver.engine().census();
    while !baseline(census) && waited.elapsed() < std::time::Duration::from_secs(3) {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        census = driver.engine().census();
    }
    if !baseline(census) {
        return Err(Violation::new(format!(
            "every workflow closed, yet the engine still holds {census:?}"
        )));
    }
    driver.counts.checks += checks;
    Ok(())
}

/// A `Child` workflow's child ends as its parent close policy says once the parent
/// closed: terminated (1) or cancelled (3) unless it completed first; completed when
/// abandoned (2).
async fn child_ends_by_policy(
    driver: &mut Driver,
    w: usize,
    policy: i32,
    chain: &[(String, Vec<proto::HistoryEvent>)],
) -> Result<u64, Violation> {
    use proto::{Event, EventType};
    let (_, parent) = chain.last().expect("a chain has a run");
    let Some(child) = parent.iter().find_map(|e| match &e.attributes {
        Some(Event::ChildWorkflowExecutionStartedEventAttributes(a)) => {
            a.workflow_execution.clone()
        }
        _ => None,
    }) else {
        return Ok(0);
    };
    let parent_closed = parent.last().map(proto::time_of);
    let events = driver
        .read_history(&child.workflow_id, &child.run_id)
        .await?;
    checks::well_formed(&child.workflow_id, &child.run_id, &events, &driver.reopened)?;
    let last = events.last().expect("a history has a start event");
    let close = proto::event_type(last);
    let completed_first = close == EventType::WorkflowExecutionCompleted
        && Some(proto::time_of(last)) <= parent_closed;
    let fine = match policy {
        1 => close == EventType::WorkflowExecutionTerminated || completed_first,
        3 => close == EventType::WorkflowExecutionCanceled || completed_first,
        _ => close == EventType::WorkflowExecutionCompleted,
    };
    if !fine {
        return Err(Violation::new(format!(
            "w{w}'s child {} (parent close policy {policy}) ended {close:?}",
            child.workflow_id
        )));
    }
    Ok(2)
}

/// A directory of its own for one run of `seed`.
fn scratch_dir(seed: u64) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    std::env::temp_dir().join(format!(
        "capstan-sim-{}-{seed}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ))
}

/// A failing seed, cut down: the steps (indices into the seed's plan) that still fail,
/// and the violation they give.
#[derive(Debug)]
pub struct Minimized {
    pub keep: Vec<usize>,
    pub violation: Violation,
    pub trace: Vec<String>,
    pub runs: usize,
}

/// Cuts `plan`'s steps down to fewer that still give a violation (delta debugging:
/// drops chunks, then single steps), within `budget` runs.
pub async fn minimize(plan: &Plan, first: Violation, budget: usize) -> anyhow::Result<Minimized> {
    let mut keep: Vec<usize> = (0..plan.steps.len()).collect();
    let mut best = (first, Vec::new());
    let mut runs = 0;
    let mut chunk = keep.len() / 2;
    while chunk >= 1 && runs < budget {
        let mut start = 0;
        let mut cut_any = false;
        while start < keep.len() && runs < budget {
            let end = (start + chunk).min(keep.len());
            let trial: Vec<usize> = keep[..start].iter().chain(&keep[end..]).copied().collect();
            runs += 1;
            let outcome = run(plan.keeping(&trial)).await?;
            if let Some(violation) = outcome.violation {
                keep = trial;
                best = (violation, outcome.trace);
                cut_any = true;
            } else {
                start = end;
            }
        }
        if !cut_any {
            chunk /= 2;
        }
    }
    Ok(Minimized {
        keep,
        violation: best.0,
        trace: best.1,
        runs,
    })
}

/// `0-3,7,9-12` for the indices given.
pub fn ranges(indices: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let mut j = i;
        while j + 1 < indices.len() && indices[j + 1] == indices[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            indices[i].to_string()
        } else {
            format!("{}-{}", indices[i], indices[j])
        });
        i = j + 1;
    }
    out.join(",")
}

/// The indices `0-3,7` names.
pub fn parse_ranges(text: &str) -> anyhow::Result<Vec<usize>> {
    let mut out = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.trim().parse::<usize>()?..=b.trim().parse::<usize>()?),
            None => out.push(part.trim().parse()?),
        }
    }
    Ok(out)
}

/// Runs the seeds in `seeds`, each of size `size`; on the first failure, cuts it down
/// and answers the report to print.
pub async fn run_seeds(
    seeds: impl IntoIterator<Item = u64>,
    size: Size,
    totals: &mut Totals,
) -> anyhow::Result<Option<String>> {
    for seed in seeds {
        let plan = Plan::generate(seed, size);
        let started = Instant::now();
        let outcome = run(plan.clone()).await?;
        let took = started.elapsed();
        totals.add(&outcome.counts);
        if let Some(violation) = outcome.violation {
            let cut = minimize(&plan, violation.clone(), 60).await?;
            return Ok(Some(failure_report(&plan, &violation, &cut, took)));
        }
    }
    Ok(None)
}

/// What is printed for a failing seed: the violation, the command that replays it, and
/// the cut-down trace.
pub fn failure_report(
    plan: &Plan,
    violation: &Violation,
    cut: &Minimized,
    took: std::time::Duration,
) -> String {
    format!(
        "seed {seed} fails after {took:.1?}: {violation}\n\
         replay it:   cargo run -p capstan-sim -- replay --seed {seed}\n\
         cut down ({n} of {all} steps, {runs} runs): cargo run -p capstan-sim -- replay --seed {seed} --keep {keep}\n\
         it then fails with: {cut_violation}\n\
         workflows: {workflows}\n\
         trace:\n{trace}\n\
         as a regression case (sim/regressions.txt):\n# seed {seed}: <what it found>\n{case}",
        seed = plan.seed,
        n = cut.keep.len(),
        all = plan.steps.len(),
        runs = cut.runs,
        keep = ranges(&cut.keep),
        cut_violation = cut.violation,
        workflows = plan
            .workflows
            .iter()
            .enumerate()
            .map(|(w, s)| format!("w{w} {s:?}"))
            .collect::<Vec<_>>()
            .join("; "),
        trace = cut.trace.join("\n"),
        case = plan.keeping(&cut.keep).to_text(),
    )
}

/// The regression cases in `text` (as `sim/regressions.txt` keeps them): a `# seed N:
/// what it found` line, then the plan's `workflows:` and `steps:` lines.
pub fn regression_cases(text: &str) -> Result<Vec<(String, Plan)>, String> {
    let mut cases = Vec::new();
    let mut title: Option<String> = None;
    let mut body = String::new();
    let mut flush = |title: &mut Option<String>, body: &mut String| -> Result<(), String> {
        if let Some(t) = title.take() {
            let seed = t
                .trim_start_matches("# seed ")
                .split(':')
                .next()
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0);
            cases.push((
                t.clone(),
                Plan::parse(seed, body).map_err(|e| format!("{t}: {e}"))?,
            ));
        }
        body.clear();
        Ok(())
    };
    for line in text.lines() {
        if line.starts_with("# seed ") {
            flush(&mut title, &mut body)?;
            title = Some(line.to_owned());
        } else if !line.trim().is_empty() && !line.starts_with('#') {
            body.push_str(line);
            body.push('\n');
        }
    }
    flush(&mut title, &mut body)?;
    Ok(cases)
}

/// Sums over seeds.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub seeds: u64,
    pub steps: u64,
    pub faults: u64,
    pub crashes: u64,
    pub calls: u64,
    pub checks: u64,
}

impl Totals {
    fn add(&mut self, counts: &Counts) {
        self.seeds += 1;
        self.steps += counts.steps;
        self.faults += counts.faults;
        self.crashes += counts.crashes;
        self.calls += counts.calls;
        self.checks += counts.checks;
    }
}
