//! `capstan-sim`: runs the engine under simulation.
//!
//! ```text
//! capstan-sim seeds 0-99               # these seeds; the first failure is cut down and printed
//! capstan-sim replay --seed 42         # one seed, its whole trace printed
//! capstan-sim replay --seed 42 --keep 0-3,7   # only these steps of it
//! capstan-sim replay --seed 42 --keep 0-3,7 --print-case   # as sim/regressions.txt keeps it
//! capstan-sim cases sim/regressions.txt   # the cases a file keeps (as a failure prints them)
//! capstan-sim soak --minutes 60        # fresh seeds until the time is up, then a report
//! capstan-sim soak --minutes 60 --simulated-only   # no workflow on a real Capstan worker
//! ```

use std::time::{Duration, Instant};

use capstan_sim::{plan::Plan, plan::Size, Totals};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(command(&args)) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("capstan-sim: {e:#}");
            eprintln!("usage: capstan-sim seeds A-B | replay --seed S [--keep I-J,K] [--histories] | cases FILE [--histories] | soak --minutes M [--first-seed S]  (each takes --simulated-only)");
            std::process::ExitCode::from(2)
        }
    }
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

async fn command(args: &[String]) -> anyhow::Result<bool> {
    let size = Size {
        real_worker: !args.iter().any(|a| a == "--simulated-only"),
        ..Size::default()
    };
    match args.first().map(String::as_str) {
        Some("seeds") => {
            let seeds = capstan_sim::parse_ranges(args.get(1).map_or("0-9", String::as_str))?;
            let started = Instant::now();
            let mut totals = Totals::default();
            let failed =
                capstan_sim::run_seeds(seeds.iter().map(|&s| s as u64), size, &mut totals).await?;
            report(&totals, started.elapsed());
            Ok(print_failure(failed))
        }
        Some("replay") => {
            let seed: u64 = flag(args, "--seed")
                .ok_or_else(|| anyhow::anyhow!("replay needs --seed"))?
                .parse()?;
            let mut plan = Plan::generate(seed, size);
            if let Some(keep) = flag(args, "--keep") {
                plan = plan.keeping(&capstan_sim::parse_ranges(keep)?);
            }
            println!(
                "seed {seed}: {}",
                plan.workflows
                    .iter()
                    .enumerate()
                    .map(|(w, s)| format!("w{w} {s:?}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            if args.iter().any(|a| a == "--print-case") {
                println!("{}", plan.to_text());
                return Ok(true);
            }
            show(plan, args).await
        }
        Some("cases") => {
            let file = args
                .get(1)
                .ok_or_else(|| anyhow::anyhow!("cases needs a file"))?;
            let text = std::fs::read_to_string(file)
                .map_err(|e| anyhow::anyhow!("cannot read {file}: {e}"))?;
            let cases = capstan_sim::regression_cases(&text).map_err(|e| anyhow::anyhow!(e))?;
            for (title, plan) in cases {
                println!("{title}");
                if !show(plan, args).await? {
                    return Ok(false);
                }
            }
            Ok(true)
        }
        Some("soak") => {
            let minutes: u64 = flag(args, "--minutes").unwrap_or("60").parse()?;
            let first: u64 = match flag(args, "--first-seed") {
                Some(s) => s.parse()?,
                None => {
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)?
                        .as_secs()
                        * 1000
                }
            };
            println!("soak: fresh seeds from {first} for {minutes} min");
            let until = Instant::now() + Duration::from_secs(minutes * 60);
            let started = Instant::now();
            let mut totals = Totals::default();
            let mut seed = first;
            let mut last_report = Instant::now();
            while Instant::now() < until {
                let failed = capstan_sim::run_seeds([seed], size, &mut totals).await?;
                if failed.is_some() {
                    report(&totals, started.elapsed());
                    return Ok(print_failure(failed));
                }
                seed += 1;
                if last_report.elapsed() > Duration::from_secs(60) {
                    last_report = Instant::now();
                    report(&totals, started.elapsed());
                }
            }
            report(&totals, started.elapsed());
            println!("soak: every invariant held for seeds {first}-{}", seed - 1);
            Ok(true)
        }
        _ => anyhow::bail!("unknown command"),
    }
}

/// Runs `plan` and prints its trace (with every history at the end, with `--histories`)
/// and what came of it; answers whether every invariant held.
async fn show(plan: Plan, args: &[String]) -> anyhow::Result<bool> {
    let outcome = capstan_sim::run_showing(plan, args.iter().any(|a| a == "--histories")).await?;
    println!("{}", outcome.trace.join("\n"));
    println!("{:?}", outcome.counts);
    match outcome.violation {
        Some(v) => {
            println!("VIOLATION: {v}");
            Ok(false)
        }
        None => {
            println!("every invariant held");
            Ok(true)
        }
    }
}

fn report(totals: &Totals, took: Duration) {
    let per_hour = totals.seeds as f64 * 3600.0 / took.as_secs_f64().max(0.001);
    println!(
        "{} seeds in {took:.0?} ({per_hour:.0} seeds/hour): {} steps, {} faults injected ({} crashes), {} calls, {} invariant checks",
        totals.seeds, totals.steps, totals.faults, totals.crashes, totals.calls, totals.checks
    );
}

fn print_failure(failed: Option<String>) -> bool {
    match failed {
        Some(report) => {
            println!("{report}");
            false
        }
        None => true,
    }
}
