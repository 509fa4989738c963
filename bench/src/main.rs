//! `capstan-bench [--n N] [--latency-n N] [--rounds R] [--write]`: the same Capstan worker
//! on the embedded engine (in memory) and on a Temporal dev server (tuned for speed:
//! `history.transferProcessorMaxPollRPS=1000`), interleaved for several rounds; prints the
//! medians and the engine/dev-server ratios, and with `--write` writes `BENCHMARKS.md`.
//! Build with `--release` for meaningful numbers.

use std::{collections::BTreeMap, fmt::Write as _};

use capstan::testing::DevServer;
use capstan_bench::{latency, median, one_activity};
use capstan_engine::{Engine, EngineOptions};

struct Args {
    n: usize,
    latency_n: usize,
    rounds: usize,
    write: bool,
}

fn args() -> anyhow::Result<Args> {
    let mut parsed = Args {
        n: 1000,
        latency_n: 200,
        rounds: 3,
        write: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = |flag: &str| -> anyhow::Result<usize> {
            it.next()
                .ok_or_else(|| anyhow::anyhow!("`{flag}` needs a number"))?
                .parse()
                .map_err(|e| anyhow::anyhow!("`{flag}`: {e}"))
        };
        match arg.as_str() {
            "--n" => parsed.n = number("--n")?,
            "--latency-n" => parsed.latency_n = number("--latency-n")?,
            "--rounds" => parsed.rounds = number("--rounds")?,
            "--write" => parsed.write = true,
            other => anyhow::bail!("unknown argument `{other}`; usage: capstan-bench [--n N] [--latency-n N] [--rounds R] [--write]"),
        }
    }
    Ok(parsed)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let engine = Engine::start(EngineOptions::default()).await?;
    let dev_server = DevServer::start().await?;
    let servers = [
        ("engine (memory)", engine.address()),
        ("dev server (tuned)", dev_server.address()),
    ];
    let mut throughput: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut p50: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut p99: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for round in 1..=args.rounds {
        for (name, address) in &servers {
            let t = one_activity(address, args.n, 100).await?;
            let l = latency(address, args.latency_n).await?;
            let (wps, m50, m99) = (t.per_second.unwrap(), l.p50.unwrap(), l.p99.unwrap());
            eprintln!(
                "round {round} {name:<20} {wps:>8.1} wf/s   p50 {m50:>8.2?}   p99 {m99:>8.2?}"
            );
            throughput.entry(name).or_default().push(wps);
            p50.entry(name).or_default().push(m50.as_secs_f64() * 1e3);
            p99.entry(name).or_default().push(m99.as_secs_f64() * 1e3);
        }
    }
    let (engine_name, dev_name) = (servers[0].0, servers[1].0);
    let med = |m: &BTreeMap<&str, Vec<f64>>, k: &str| median(m[k].clone());
    let mut report = String::new();
    writeln!(
        report,
        "| server | one-activity wf/s (N={}) | p50 ms | p99 ms |",
        args.n
    )?;
    writeln!(report, "|---|---|---|---|")?;
    for (name, _) in &servers {
        writeln!(
            report,
            "| {name} | {:.1} | {:.2} | {:.2} |",
            med(&throughput, name),
            med(&p50, name),
            med(&p99, name)
        )?;
    }
    writeln!(
        report,
        "\nEngine / dev server: throughput {:.2}x (target ≥ 3x), p50 {:.2}x (target ≤ 0.3x); medians of {} interleaved rounds.",
        med(&throughput, engine_name) / med(&throughput, dev_name),
        med(&p50, engine_name) / med(&p50, dev_name),
        args.rounds
    )?;
    println!("{report}");
    if args.write {
        let text = format!(
            "# Benchmarks\n\nThe same Capstan worker against the embedded engine (in memory) and the Temporal \
             dev server (tuned: `history.transferProcessorMaxPollRPS=1000`), interleaved, on this project's \
             2-core machine. Regenerate with `cargo run --release -p capstan-bench -- --write`.\n\n{report}"
        );
        std::fs::write("BENCHMARKS.md", text)?;
    }
    Ok(())
}
