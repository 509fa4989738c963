//! Turning results into medians, ratios against the targets, a Markdown report
//! and an SVG chart.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt::Write as _,
    path::Path,
};

use plotters::prelude::*;

use crate::{
    build_cost::BuildCost,
    contestants::Contestant::{self, Capstan, OfficialRust, Python},
    median,
    runner::{Entry, Results},
    scenarios::Scenario,
    servers::ServerKind::{self, DevServerDefault, DevServerTuned, EngineFile, EngineMemory},
    Metric,
};

impl Results {
    /// The median of `metric` over the rounds of `entry` that did not stall, with the
    /// number of rounds that did.
    pub fn median(&self, entry: &Entry, metric: Metric) -> Option<(f64, usize)> {
        let rounds = self.rounds.get(entry)?;
        let values: Vec<f64> = rounds
            .iter()
            .filter(|m| m.stalled.is_none())
            .filter_map(|m| m.get(metric))
            .collect();
        let stalled = rounds.iter().filter(|m| m.stalled.is_some()).count();
        (!values.is_empty()).then(|| (median(values), stalled))
    }

    /// The better of the dev servers (tuned, default) for `contestant` on `metric`.
    pub fn best_dev(
        &self,
        scenario: Scenario,
        contestant: Contestant,
        metric: Metric,
    ) -> Option<(f64, ServerKind)> {
        [DevServerTuned, DevServerDefault]
            .into_iter()
            .filter_map(|server| {
                let entry = Entry {
                    scenario,
                    contestant,
                    server,
                };
                self.median(&entry, metric).map(|(v, _)| (v, server))
            })
            .reduce(|a, b| match metric.higher_is_better() == (a.0 >= b.0) {
                true => a,
                false => b,
            })
    }

    fn value(
        &self,
        scenario: Scenario,
        contestant: Contestant,
        server: Side,
        metric: Metric,
    ) -> Option<(f64, String)> {
        match server {
            Side::BestDev => self
                .best_dev(scenario, contestant, metric)
                .map(|(v, s)| (v, format!("{contestant} on {s}"))),
            Side::On(server) => {
                let entry = Entry {
                    scenario,
                    contestant,
                    server,
                };
                self.median(&entry, metric)
                    .map(|(v, _)| (v, format!("{contestant} on {server}")))
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Side {
    BestDev,
    On(ServerKind),
}

/// One of the comparisons: `ours / theirs` should reach `throughput` (at least,
/// one-activity workflows per second) and `p50` (at most, start-to-result latency).
struct Comparison {
    what: &'static str,
    ours: (Contestant, Side),
    theirs: (Contestant, Side),
    throughput: f64,
    p50: f64,
}

const CAPSTAN_DEV: (Contestant, Side) = (Capstan, Side::BestDev);
const CAPSTAN_MEMORY: (Contestant, Side) = (Capstan, Side::On(EngineMemory));
const CAPSTAN_FILE: (Contestant, Side) = (Capstan, Side::On(EngineFile));
const OFFICIAL_DEV: (Contestant, Side) = (OfficialRust, Side::BestDev);
const PYTHON_DEV: (Contestant, Side) = (Python, Side::BestDev);

/// The targets of the issue (`NAN`: none for that metric).
#[rustfmt::skip]
const COMPARISONS: [Comparison; 5] = [
    Comparison { what: "Capstan vs official Rust SDK, dev server", ours: CAPSTAN_DEV, theirs: OFFICIAL_DEV, throughput: 1.2, p50: 1.0 },
    Comparison { what: "Capstan vs Python SDK, dev server", ours: CAPSTAN_DEV, theirs: PYTHON_DEV, throughput: 5.0, p50: f64::NAN },
    Comparison { what: "Capstan on engine vs official Rust SDK on dev server", ours: CAPSTAN_MEMORY, theirs: OFFICIAL_DEV, throughput: 10.0, p50: 0.1 },
    Comparison { what: "Engine (memory) vs dev server, Capstan worker", ours: CAPSTAN_MEMORY, theirs: CAPSTAN_DEV, throughput: 3.0, p50: 0.3 },
    Comparison { what: "Engine durable vs in memory (within 2x)", ours: CAPSTAN_FILE, theirs: CAPSTAN_MEMORY, throughput: 0.5, p50: 2.0 },
];

/// Which scenario a target's metric is read from: the one-activity (throughput) or latency
/// (p50) scenario that the most contestants and servers ran (the scaling runs of other
/// sizes have fewer).
fn scenario_for(metric: Metric, results: &Results) -> Option<Scenario> {
    let mut runs: BTreeMap<Scenario, usize> = BTreeMap::new();
    for entry in results.rounds.keys() {
        let wanted = match metric {
            Metric::PerSecond => matches!(entry.scenario, Scenario::OneActivity { .. }),
            Metric::P50Ms => matches!(entry.scenario, Scenario::Latency { .. }),
            _ => false,
        };
        if wanted {
            *runs.entry(entry.scenario).or_default() += 1;
        }
    }
    runs.into_iter().max_by_key(|&(_, n)| n).map(|(s, _)| s)
}

/// Markdown: one table of medians per scenario, then every target with its ratio.
pub fn markdown(results: &Results) -> anyhow::Result<String> {
    let mut out = String::new();
    let scenarios: BTreeSet<Scenario> = results.rounds.keys().map(|e| e.scenario).collect();
    for &scenario in &scenarios {
        let entries: Vec<&Entry> = results
            .rounds
            .keys()
            .filter(|e| e.scenario == scenario)
            .collect();
        let metrics: BTreeSet<Metric> = entries
            .iter()
            .flat_map(|e| {
                results.rounds[*e]
                    .iter()
                    .flat_map(|m| m.values.iter().map(|v| v.0))
            })
            .collect();
        writeln!(out, "### {scenario}\n")?;
        write!(out, "| contestant | server |")?;
        for metric in &metrics {
            write!(out, " {} |", metric.label())?;
        }
        writeln!(out, " rounds |")?;
        writeln!(out, "|---|---|{}---|", "---|".repeat(metrics.len()))?;
        for entry in entries {
            write!(out, "| {} | {} |", entry.contestant, entry.server)?;
            for &metric in &metrics {
                match results.median(entry, metric) {
                    Some((v, _)) => write!(out, " {} |", number(v))?,
                    None => write!(out, " — |")?,
                }
            }
            let rounds = &results.rounds[entry];
            let stalled: Vec<&str> = rounds.iter().filter_map(|m| m.stalled.as_deref()).collect();
            if stalled.is_empty() {
                writeln!(out, " {} |", rounds.len())?;
            } else {
                writeln!(
                    out,
                    " {} ({} left out: {}) |",
                    rounds.len(),
                    stalled.len(),
                    stalled.join("; ").replace('|', "/")
                )?;
            }
        }
        writeln!(out)?;
    }
    writeln!(out, "### Targets\n")?;
    writeln!(
        out,
        "\"dev server\" is the better of `dev-tuned` and `dev-default` for that contestant.\n"
    )?;
    writeln!(out, "| target | ours | theirs | ratio | target | met |")?;
    writeln!(out, "|---|---|---|---|---|---|")?;
    for comparison in &COMPARISONS {
        for (metric, bound) in [
            (Metric::PerSecond, comparison.throughput),
            (Metric::P50Ms, comparison.p50),
        ] {
            if bound.is_nan() {
                continue;
            }
            let Some(scenario) = scenario_for(metric, results) else {
                continue;
            };
            let what = format!("{}: {}", comparison.what, metric.label());
            let (sign, direction) = if metric.higher_is_better() {
                ("≥", 1.0)
            } else {
                ("≤", -1.0)
            };
            let ours = results.value(scenario, comparison.ours.0, comparison.ours.1, metric);
            let theirs = results.value(scenario, comparison.theirs.0, comparison.theirs.1, metric);
            let (Some((a, a_who)), Some((b, b_who))) = (ours, theirs) else {
                writeln!(
                    out,
                    "| {what} | — | — | not measured | {sign} {bound}x | — |"
                )?;
                continue;
            };
            let ratio = a / b;
            let met = (ratio - bound) * direction >= 0.0;
            writeln!(
                out,
                "| {what} | {a_who}: {} | {b_who}: {} | {} | {sign} {bound}x | {} |",
                number(a),
                number(b),
                ratio_text(ratio),
                if met { "yes" } else { "**no**" }
            )?;
        }
    }
    for &scenario in &scenarios {
        match scenario {
            Scenario::Replay { .. } => {
                versus_official(&mut out, results, scenario, Metric::PerSecond, 2.0)?
            }
            Scenario::Cache { .. } => {
                versus_official(&mut out, results, scenario, Metric::KibPerWorkflow, 1.0)?
            }
            _ => {}
        }
    }
    writeln!(out)?;
    Ok(out)
}

/// A ratio with enough digits that one just past its bound does not print as the bound
/// (0.1004x is not ≤ 0.1x).
fn ratio_text(ratio: f64) -> String {
    if ratio < 1.0 {
        format!("{ratio:.3}x")
    } else {
        format!("{ratio:.2}x")
    }
}

/// A target row for `scenario`: Capstan against the official Rust SDK, both on the
/// in-memory engine, `metric` at least (or at most) `bound` times theirs.
fn versus_official(
    out: &mut String,
    results: &Results,
    scenario: Scenario,
    metric: Metric,
    bound: f64,
) -> std::fmt::Result {
    let median = |contestant| {
        let entry = Entry {
            scenario,
            contestant,
            server: EngineMemory,
        };
        results.median(&entry, metric).map(|(v, _)| v)
    };
    let (Some(ours), Some(theirs)) = (median(Capstan), median(OfficialRust)) else {
        return Ok(());
    };
    let ratio = ours / theirs;
    let (sign, met) = if metric.higher_is_better() {
        ("≥", ratio >= bound)
    } else {
        ("≤", ratio <= bound)
    };
    writeln!(
        out,
        "| {scenario} vs official Rust SDK: {} | {} | {} | {} | {sign} {bound}x | {} |",
        metric.label(),
        number(ours),
        number(theirs),
        ratio_text(ratio),
        if met { "yes" } else { "**no**" }
    )
}

/// Markdown: the build scenario's table, Capstan's app against the official SDK's.
pub fn build_costs(costs: &[(Contestant, anyhow::Result<BuildCost>)]) -> anyhow::Result<String> {
    let mut out = String::new();
    writeln!(
        out,
        "### build: hello-world app (`bench/apps/`), `cargo build` from clean, 1 round\n"
    )?;
    writeln!(
        out,
        "| contestant | packages | clean build s | rebuild after a workflow edit s |"
    )?;
    writeln!(out, "|---|---|---|---|")?;
    for (contestant, cost) in costs {
        match cost {
            Ok(c) => writeln!(
                out,
                "| {contestant} | {} | {} | {} |",
                c.packages,
                number(c.clean.as_secs_f64()),
                number(c.rebuild.as_secs_f64())
            )?,
            Err(e) => {
                let why = format!("{e:#}").replace('|', "/").replace('\n', " ");
                writeln!(out, "| {contestant} | failed: {why} | — | — |")?
            }
        }
    }
    let measured = |who| {
        costs.iter().find_map(|(c, cost)| match cost {
            Ok(cost) if *c == who => Some(cost),
            _ => None,
        })
    };
    if let (Some(ours), Some(theirs)) = (measured(Capstan), measured(OfficialRust)) {
        writeln!(
            out,
            "\nCapstan / official Rust SDK: packages {:.2}x, clean build {:.2}x, rebuild {:.2}x \
             (no target).",
            ours.packages as f64 / theirs.packages as f64,
            ours.clean.as_secs_f64() / theirs.clean.as_secs_f64(),
            ours.rebuild.as_secs_f64() / theirs.rebuild.as_secs_f64()
        )?;
    }
    writeln!(out)?;
    Ok(out)
}

fn number(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Writes an SVG chart to `path`: one-activity throughput and start-to-result p50 of every
/// contestant on every server (bars, labelled with their values).
pub fn chart(results: &Results, path: &Path) -> anyhow::Result<()> {
    let panels: Vec<(String, Vec<(String, f64)>)> = [Metric::PerSecond, Metric::P50Ms]
        .into_iter()
        .filter_map(|metric| {
            let scenario = scenario_for(metric, results)?;
            let bars = results
                .rounds
                .keys()
                .filter(|e| e.scenario == scenario)
                .filter_map(|e| {
                    let (v, _) = results.median(e, metric)?;
                    Some((format!("{} on {}", e.contestant, e.server), v))
                })
                .collect();
            let title = match metric {
                Metric::PerSecond => format!("{scenario}: workflows/s (higher is better)"),
                _ => format!("{scenario}: p50 start-to-result, ms (lower is better)"),
            };
            Some((title, bars))
        })
        .collect();
    const ROW: u32 = 24;
    let height: u32 = panels
        .iter()
        .map(|(_, bars)| 50 + ROW * bars.len() as u32)
        .sum::<u32>()
        + 20;
    let root = SVGBackend::new(path, (900, height.max(100))).into_drawing_area();
    root.fill(&WHITE)?;
    let mut y = 10i32;
    let colors = [
        RGBColor(0x1f, 0x77, 0xb4),
        RGBColor(0xff, 0x7f, 0x0e),
        RGBColor(0x2c, 0xa0, 0x2c),
    ];
    for (title, bars) in &panels {
        root.draw(&Text::new(
            title.as_str(),
            (10, y),
            ("sans-serif", 18).into_font(),
        ))?;
        y += 32;
        let max = bars.iter().map(|b| b.1).fold(f64::MIN_POSITIVE, f64::max);
        for (label, value) in bars {
            let color = colors[Contestant::ALL
                .iter()
                .position(|c| label.starts_with(c.name()))
                .unwrap_or(0)];
            root.draw(&Text::new(
                label.as_str(),
                (10, y + 4),
                ("sans-serif", 14).into_font(),
            ))?;
            let width = (500.0 * value / max).max(1.0) as i32;
            root.draw(&Rectangle::new(
                [(260, y), (260 + width, y + ROW as i32 - 6)],
                color.filled(),
            ))?;
            root.draw(&Text::new(
                number(*value),
                (266 + width, y + 4),
                ("sans-serif", 14).into_font(),
            ))?;
            y += ROW as i32;
        }
        y += 18;
    }
    root.present()?;
    Ok(())
}
