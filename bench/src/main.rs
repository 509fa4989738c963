//! `capstan-bench [--rounds R] [--n N] [--latency-n N] [--contestants …] [--servers …]
//! [--only KIND,…] [--no-python] [--no-build] [--write]`: every scenario for every contestant (Capstan, the official
//! Rust SDK, the Python SDK) on every server (engine in memory and on a file, dev server tuned and default), interleaved for
//! several rounds; prints medians and ratios against the targets, and with `--write`
//! writes `BENCHMARKS.md` and `bench/chart.svg`. Then, once each, the build scenario: the
//! Capstan and official-SDK hello-world apps built from clean (`--no-build` skips it). Build with `--release` (`bench/run` does).
//!
//! `capstan-bench worker CONTESTANT ADDRESS TASK_QUEUE MAX_CACHED` runs one Rust
//! contestant's worker until stdin closes (the harness starts these).

use std::time::Instant;

use anyhow::Context as _;
use capstan::testing::Python;
use capstan_bench::{
    build_cost::{self, App},
    contestants::{
        worker_main, Contestant,
        Contestant::{Capstan, OfficialRust, Python as Py},
        Launcher,
    },
    report,
    runner::{self, Entry},
    scenarios::Scenario,
    servers::ServerKind::{self, DevServerDefault, DevServerTuned, EngineFile, EngineMemory},
};

const USAGE: &str = "usage: capstan-bench [--rounds R] [--n N] [--latency-n N] \
                     [--contestants capstan,official-rust,python] \
                     [--servers engine-memory,engine-file,dev-tuned,dev-default] \
                     [--only one-activity,latency,signal-query,update,fan-out,timers,replay,\
                     parked,cache,build] [--no-python] [--no-build] [--parked N] [--write]";

/// The build scenario's name for `--only` (it runs after the rounds, once).
const BUILD: &str = "build";

struct Args {
    rounds: usize,
    n: usize,
    latency_n: usize,
    contestants: Vec<Contestant>,
    servers: Vec<ServerKind>,
    /// The scenario kinds to run (`--only`; all by default).
    only: Vec<String>,
    /// Workflows parked on the engine to read its memory per workflow (0: not run).
    parked: usize,
    /// Whether to run the build scenario.
    build: bool,
    write: bool,
}

fn args(mut it: impl Iterator<Item = String>) -> anyhow::Result<Args> {
    let mut parsed = Args {
        rounds: 3,
        n: 500,
        latency_n: 100,
        contestants: Contestant::ALL.to_vec(),
        servers: ServerKind::ALL.to_vec(),
        only: Scenario::KINDS
            .iter()
            .chain(&[BUILD])
            .map(|k| k.to_string())
            .collect(),
        parked: 0,
        build: true,
        write: false,
    };
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .with_context(|| format!("`{arg}` needs a value; {USAGE}"))
        };
        let number = |text: String| -> anyhow::Result<usize> {
            text.parse()
                .with_context(|| format!("`{arg}` needs a number, not `{text}`; {USAGE}"))
        };
        match arg.as_str() {
            "--rounds" => parsed.rounds = number(value()?)?,
            "--n" => parsed.n = number(value()?)?,
            "--latency-n" => parsed.latency_n = number(value()?)?,
            "--contestants" => {
                parsed.contestants = value()?
                    .split(',')
                    .map(Contestant::from_name)
                    .collect::<anyhow::Result<_>>()?
            }
            "--servers" => {
                parsed.servers = value()?
                    .split(',')
                    .map(ServerKind::from_name)
                    .collect::<anyhow::Result<_>>()?
            }
            "--only" => {
                parsed.only = value()?.split(',').map(str::to_owned).collect();
                if let Some(unknown) = parsed
                    .only
                    .iter()
                    .find(|k| !Scenario::KINDS.contains(&k.as_str()) && *k != BUILD)
                {
                    anyhow::bail!("`--only`: no scenario `{unknown}`; {USAGE}");
                }
            }
            "--parked" => parsed.parked = number(value()?)?,
            "--no-python" => parsed.contestants.retain(|&c| c != Py),
            "--no-build" => parsed.build = false,
            "--write" => parsed.write = true,
            _ => anyhow::bail!("unknown argument `{arg}`; {USAGE}"),
        }
    }
    Ok(parsed)
}

/// Contestants, each with the servers it runs against.
type Cells<'a> = &'a [(Contestant, &'a [ServerKind])];

/// Every scenario × contestant × server of a full run.
fn plan(args: &Args) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut add = |scenario: Scenario, cells: Cells<'_>| {
        if !args.only.iter().any(|kind| kind == scenario.kind()) {
            return;
        }
        for &(contestant, servers) in cells {
            if !args.contestants.contains(&contestant) {
                continue;
            }
            for &server in servers.iter().filter(|s| args.servers.contains(s)) {
                entries.push(Entry {
                    scenario,
                    contestant,
                    server,
                });
            }
        }
    };
    let everyone: Cells<'_> = &[
        (
            Capstan,
            &[EngineMemory, EngineFile, DevServerTuned, DevServerDefault],
        ),
        (
            OfficialRust,
            &[EngineMemory, EngineFile, DevServerTuned, DevServerDefault],
        ),
        (Py, &[EngineMemory, DevServerTuned]),
    ];
    let rust_on_fast: Cells<'_> = &[
        (Capstan, &[EngineMemory, EngineFile, DevServerTuned]),
        (OfficialRust, &[DevServerTuned]),
    ];
    // Python too, where a round takes seconds (not its 1,000 timers: minutes a round).
    let messages: Cells<'_> = &[
        (Capstan, &[EngineMemory, EngineFile, DevServerTuned]),
        (OfficialRust, &[DevServerTuned]),
        (Py, &[EngineMemory, DevServerTuned]),
    ];
    add(
        Scenario::OneActivity {
            n: args.n,
            concurrency: 100,
        },
        everyone,
    );
    add(Scenario::Latency { n: args.latency_n }, everyone);
    add(Scenario::SignalQuery { rounds: 200 }, messages);
    add(Scenario::Update { rounds: 200 }, messages);
    add(
        Scenario::FanOut {
            activities: 1000,
            children: 100,
        },
        messages,
    );
    add(
        Scenario::Timers {
            n: 1000,
            millis: 1000,
        },
        rust_on_fast,
    );
    // Scaling of one-activity and timers: the main N, and these (N=2000 and 10,000 on the
    // engines only: on the dev server it takes minutes a round, and the one command should
    // stay under 20 minutes).
    let engines: Cells<'_> = &[(Capstan, &[EngineMemory, EngineFile])];
    let scaling: [(usize, Cells<'_>); 3] =
        [(100, rust_on_fast), (2000, engines), (10_000, engines)];
    for (n, cells) in scaling {
        add(
            Scenario::OneActivity {
                n,
                concurrency: 100,
            },
            cells,
        );
    }
    for n in [100, 2000, 10_000] {
        add(
            Scenario::Timers { n, millis: 1000 },
            &[(Capstan, &[EngineMemory])],
        );
    }
    if args.parked > 0 {
        // Reads this process's memory: meant for a run of its own (`--parked N --servers
        // engine-memory --contestants capstan`), not part of the default plan.
        add(
            Scenario::Parked { n: args.parked },
            &[(Capstan, &[EngineMemory])],
        );
    }
    let rust_in_process: Cells<'_> = &[(Capstan, &[EngineMemory]), (OfficialRust, &[EngineMemory])];
    for events in [100, 1000, 10_000] {
        add(Scenario::Replay { events }, rust_in_process);
    }
    add(
        Scenario::Cache { n: 2000 },
        &[
            (Capstan, &[EngineMemory]),
            (OfficialRust, &[EngineMemory]),
            (Py, &[EngineMemory]),
        ],
    );
    entries
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut argv = std::env::args().skip(1).peekable();
    if matches!(argv.peek().map(String::as_str), Some("--help" | "-h")) {
        println!("{USAGE}");
        return Ok(());
    }
    if argv.peek().map(String::as_str) == Some("worker") {
        let rest: Vec<String> = argv.skip(1).collect();
        let [contestant, address, task_queue, max_cached] = &rest[..] else {
            anyhow::bail!("usage: capstan-bench worker CONTESTANT ADDRESS TASK_QUEUE MAX_CACHED");
        };
        let max_cached = max_cached.parse().context("MAX_CACHED must be a number")?;
        return worker_main(
            Contestant::from_name(contestant)?,
            address,
            task_queue,
            max_cached,
        )
        .await;
    }
    let args = args(argv)?;
    let python = if args.contestants.contains(&Py) {
        Some(Python::ensure().await?)
    } else {
        None
    };
    let launcher = Launcher::new(std::env::current_exe()?, python);
    let entries = plan(&args);
    let started = Instant::now();
    let results = runner::run(&entries, args.rounds, &launcher, |line| eprintln!("{line}")).await?;
    let mut tables = report::markdown(&results)?;
    if args.build && args.only.iter().any(|k| k == BUILD) {
        let mut costs = Vec::new();
        for contestant in build_cost::CONTESTANTS {
            if !args.contestants.contains(&contestant) {
                continue;
            }
            eprintln!("building the {contestant} hello-world app from clean");
            let cost = App::prepare(contestant).and_then(|app| app.measure());
            eprintln!("{cost:?}");
            costs.push((contestant, cost));
        }
        tables.push_str(&report::build_costs(&costs)?);
    }
    println!("{tables}");
    eprintln!("total {:.0?}", started.elapsed());
    if args.write {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        report::chart(&results, format!("{root}/bench/chart.svg").as_ref())?;
        let notes = std::fs::read_to_string(format!("{root}/bench/NOTES.md")).unwrap_or_default();
        let text = format!(
            "# Benchmarks\n\n\
             Generated by `bench/run` (`cargo run --release -p capstan-bench -- --write`) on this \
             project's 2-core machine: {} interleaved rounds, one-activity N={}, latency N={}, \
             total {:.0?}. Each figure is the median over the rounds that did not stall; ratios \
             divide medians. Chart: [bench/chart.svg](bench/chart.svg).\n\n{tables}\n{notes}",
            args.rounds,
            args.n,
            args.latency_n,
            started.elapsed()
        );
        std::fs::write(format!("{root}/BENCHMARKS.md"), text)?;
    }
    Ok(())
}
