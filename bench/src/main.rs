//! `capstan-bench [--rounds R] [--n N] [--latency-n N] [--no-python] [--write]`: every
//! scenario for every contestant (Capstan, the official Rust SDK, the Python SDK) on every
//! server (engine in memory and on a file, dev server tuned and default), interleaved for
//! several rounds; prints medians and ratios against the targets, and with `--write`
//! writes `BENCHMARKS.md` and `bench/chart.svg`. Build with `--release` (`bench/run` does).
//!
//! `capstan-bench worker CONTESTANT ADDRESS TASK_QUEUE MAX_CACHED` runs one Rust
//! contestant's worker until stdin closes (the harness starts these).

use std::time::Instant;

use anyhow::Context as _;
use capstan::testing::Python;
use capstan_bench::{
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

const USAGE: &str =
    "usage: capstan-bench [--rounds R] [--n N] [--latency-n N] [--no-python] [--write]";

struct Args {
    rounds: usize,
    n: usize,
    latency_n: usize,
    python: bool,
    write: bool,
}

fn args(mut it: impl Iterator<Item = String>) -> anyhow::Result<Args> {
    let mut parsed = Args {
        rounds: 3,
        n: 500,
        latency_n: 100,
        python: true,
        write: false,
    };
    while let Some(arg) = it.next() {
        let mut number = |flag: &str| -> anyhow::Result<usize> {
            it.next()
                .with_context(|| format!("`{flag}` needs a number; {USAGE}"))?
                .parse()
                .with_context(|| format!("`{flag}` needs a number; {USAGE}"))
        };
        match arg.as_str() {
            "--rounds" => parsed.rounds = number("--rounds")?,
            "--n" => parsed.n = number("--n")?,
            "--latency-n" => parsed.latency_n = number("--latency-n")?,
            "--no-python" => parsed.python = false,
            "--write" => parsed.write = true,
            other => anyhow::bail!("unknown argument `{other}`; {USAGE}"),
        }
    }
    Ok(parsed)
}

/// Every scenario × contestant × server of a full run.
fn plan(args: &Args) -> Vec<Entry> {
    let mut entries = Vec::new();
    let mut add = |scenario: Scenario, cells: &[(Contestant, &[ServerKind])]| {
        for &(contestant, servers) in cells {
            if contestant == Py && !args.python {
                continue;
            }
            for &server in servers {
                entries.push(Entry {
                    scenario,
                    contestant,
                    server,
                });
            }
        }
    };
    let everyone: &[(Contestant, &[ServerKind])] = &[
        (
            Capstan,
            &[EngineMemory, EngineFile, DevServerTuned, DevServerDefault],
        ),
        (
            OfficialRust,
            &[EngineMemory, DevServerTuned, DevServerDefault],
        ),
        (Py, &[EngineMemory, DevServerTuned]),
    ];
    let rust_on_fast: &[(Contestant, &[ServerKind])] = &[
        (Capstan, &[EngineMemory, EngineFile, DevServerTuned]),
        (OfficialRust, &[DevServerTuned]),
    ];
    add(
        Scenario::OneActivity {
            n: args.n,
            concurrency: 100,
        },
        everyone,
    );
    add(Scenario::Latency { n: args.latency_n }, everyone);
    add(Scenario::SignalQuery { rounds: 200 }, rust_on_fast);
    add(Scenario::Update { rounds: 200 }, rust_on_fast);
    add(
        Scenario::FanOut {
            activities: 1000,
            children: 100,
        },
        rust_on_fast,
    );
    add(
        Scenario::Timers {
            n: 1000,
            millis: 1000,
        },
        rust_on_fast,
    );
    for n in [100, 2000] {
        add(
            Scenario::OneActivity {
                n,
                concurrency: 100,
            },
            rust_on_fast,
        );
    }
    let rust_in_process: &[(Contestant, &[ServerKind])] =
        &[(Capstan, &[EngineMemory]), (OfficialRust, &[EngineMemory])];
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
    let python = if args.python {
        Some(Python::ensure().await?)
    } else {
        None
    };
    let launcher = Launcher::new(std::env::current_exe()?, python);
    let entries = plan(&args);
    let started = Instant::now();
    let results = runner::run(&entries, args.rounds, &launcher, |line| eprintln!("{line}")).await?;
    let tables = report::markdown(&results)?;
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
