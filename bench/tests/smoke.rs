//! A smoke run of each scenario with tiny N on the embedded engine, Capstan and the
//! official Rust SDK (the real benchmark is `bench/run`).

use capstan_bench::{
    build_cost::{self, App},
    contestants::{Contestant, Launcher},
    runner::{self, Entry},
    scenarios::Scenario,
    servers::ServerKind,
    Metric,
};

#[tokio::test]
async fn every_scenario_runs() {
    let launcher = Launcher::new(env!("CARGO_BIN_EXE_capstan-bench"), None);
    let scenarios = [
        Scenario::OneActivity {
            n: 10,
            concurrency: 5,
        },
        Scenario::Latency { n: 3 },
        Scenario::SignalQuery { rounds: 3 },
        Scenario::Update { rounds: 3 },
        Scenario::FanOut {
            activities: 5,
            children: 2,
        },
        Scenario::Timers { n: 3, millis: 10 },
        Scenario::Replay { events: 40 },
        Scenario::Parked { n: 5 },
        Scenario::Cache { n: 5 },
    ];
    let entries: Vec<Entry> = scenarios
        .into_iter()
        .flat_map(|scenario| {
            [Contestant::Capstan, Contestant::OfficialRust].map(|contestant| Entry {
                scenario,
                contestant,
                server: ServerKind::EngineMemory,
            })
        })
        .collect();
    let results = runner::run(&entries, 1, &launcher, |line| eprintln!("{line}"))
        .await
        .unwrap();
    for (entry, rounds) in &results.rounds {
        assert!(
            rounds[0].stalled.is_none(),
            "{entry:?}: {:?}",
            rounds[0].stalled
        );
    }
    let one = &entries[0];
    assert!(results.median(one, Metric::PerSecond).unwrap().0 > 0.0);
    assert!(!capstan_bench::report::markdown(&results)
        .unwrap()
        .is_empty());
}

/// The build scenario's apps resolve from the workspace's lock and compile (building them
/// from clean, each in a target directory of its own, takes minutes: `bench/run` does; here
/// they are type-checked in one shared target directory).
#[test]
fn both_build_apps_resolve_and_compile() {
    let shared = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("build-apps");
    for contestant in build_cost::CONTESTANTS {
        let app = App::prepare(contestant).unwrap();
        let packages = app.packages().unwrap();
        assert!(
            packages > 50,
            "the {contestant} app has {packages} packages"
        );
        app.check(&shared).unwrap();
    }
}
