//! The simulator in CI: a fixed set of seeds, and every regression case kept in
//! `sim/regressions.txt`. A failure prints the command that replays its seed and a trace
//! cut down to the steps that still fail.

use capstan_sim::{plan::Size, run_seeds, Totals};

/// Runs `seeds` and fails with the simulator's report on the first violation.
async fn hold(seeds: std::ops::Range<u64>) {
    let started = std::time::Instant::now();
    let mut totals = Totals::default();
    let failed = run_seeds(seeds.clone(), Size::default(), &mut totals)
        .await
        .expect("the simulator runs");
    if let Some(report) = failed {
        panic!("{report}");
    }
    eprintln!(
        "seeds {seeds:?}: {} steps, {} faults ({} crashes), {} calls, {} checks in {:.1?}",
        totals.steps,
        totals.faults,
        totals.crashes,
        totals.calls,
        totals.checks,
        started.elapsed()
    );
    assert_eq!(totals.seeds, seeds.end - seeds.start);
    assert!(
        totals.crashes > 0 && totals.faults > totals.crashes,
        "{totals:?}"
    );
}

// Two halves, so that the two run side by side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_0_to_59_hold_every_invariant() {
    hold(0..60).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_60_to_119_hold_every_invariant() {
    hold(60..120).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_regression_case_holds_every_invariant() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/regressions.txt"))
        .expect("sim/regressions.txt");
    let cases = capstan_sim::regression_cases(&text).expect("the regression cases parse");
    assert!(cases.len() >= 7, "{} cases", cases.len());
    for (title, plan) in cases {
        assert!(!plan.steps.is_empty(), "{title}: no steps");
        let outcome = capstan_sim::run(plan.clone())
            .await
            .expect("the simulator runs");
        if let Some(violation) = outcome.violation {
            panic!(
                "{title}\n{violation}\ntrace:\n{}\n{}",
                outcome.trace.join("\n"),
                plan.to_text()
            );
        }
    }
}

/// The checks can fail: a history with a gap in its event ids, one that goes back in
/// time, and a timer that fired early are each caught.
#[test]
fn the_history_checks_catch_what_they_look_for() {
    use capstan_sim::{checks::well_formed, proto::*};
    let at = |s: i64| {
        Some(prost_wkt_types::Timestamp {
            seconds: s,
            nanos: 0,
        })
    };
    let event = |id: i64, t: i64, attributes: Event| HistoryEvent {
        event_id: id,
        event_time: at(t),
        event_type: match &attributes {
            Event::WorkflowExecutionStartedEventAttributes(_) => {
                EventType::WorkflowExecutionStarted
            }
            Event::TimerStartedEventAttributes(_) => EventType::TimerStarted,
            Event::TimerFiredEventAttributes(_) => EventType::TimerFired,
            Event::WorkflowTaskScheduledEventAttributes(_) => EventType::WorkflowTaskScheduled,
            Event::WorkflowTaskStartedEventAttributes(_) => EventType::WorkflowTaskStarted,
            Event::WorkflowExecutionSignaledEventAttributes(_) => {
                EventType::WorkflowExecutionSignaled
            }
            _ => EventType::Unspecified,
        } as i32,
        attributes: Some(attributes),
        ..Default::default()
    };
    let started = || {
        event(
            1,
            100,
            Event::WorkflowExecutionStartedEventAttributes(Default::default()),
        )
    };
    let timer = |t| {
        event(
            2,
            t,
            Event::TimerStartedEventAttributes(
                temporalio_protos::temporal::api::history::v1::TimerStartedEventAttributes {
                    timer_id: "t".into(),
                    start_to_fire_timeout: seconds(10),
                    ..Default::default()
                },
            ),
        )
    };
    let fired = |t| {
        event(
            3,
            t,
            Event::TimerFiredEventAttributes(
                temporalio_protos::temporal::api::history::v1::TimerFiredEventAttributes {
                    timer_id: "t".into(),
                    started_event_id: 2,
                },
            ),
        )
    };
    assert!(well_formed("w", "r", &[started(), timer(100), fired(110)], &[]).is_ok());
    let early = well_formed("w", "r", &[started(), timer(100), fired(105)], &[]).unwrap_err();
    assert!(early.0.contains("before its deadline"), "{early}");
    let back = well_formed("w", "r", &[started(), timer(90)], &[]).unwrap_err();
    assert!(back.0.contains("is earlier than"), "{back}");
    let mut gap = fired(110);
    gap.event_id = 4;
    let gap = well_formed("w", "r", &[started(), timer(100), gap], &[]).unwrap_err();
    assert!(gap.0.contains("is at position"), "{gap}");
    // Nothing but its outcome follows a started workflow task.
    let task = [
        started(),
        event(
            2,
            100,
            Event::WorkflowTaskScheduledEventAttributes(Default::default()),
        ),
        event(
            3,
            100,
            Event::WorkflowTaskStartedEventAttributes(
                temporalio_protos::temporal::api::history::v1::WorkflowTaskStartedEventAttributes {
                    scheduled_event_id: 2,
                    ..Default::default()
                },
            ),
        ),
        event(
            4,
            100,
            Event::WorkflowExecutionSignaledEventAttributes(Default::default()),
        ),
    ];
    assert!(well_formed("w", "r", &task[..3], &[]).is_ok());
    let inside = well_formed("w", "r", &task, &[]).unwrap_err();
    assert!(
        inside
            .0
            .contains("follows the workflow task started at event 3"),
        "{inside}"
    );
    // A task open at the end of what was read may vanish only if it may have been a
    // speculative one (the workflow was sent updates).
    use capstan_sim::checks::keeps_prefix;
    let after = [
        started(),
        event(
            2,
            100,
            Event::WorkflowExecutionSignaledEventAttributes(Default::default()),
        ),
    ];
    assert!(keeps_prefix("w", "r", &task[..3], &after, true).is_ok());
    let lost = keeps_prefix("w", "r", &task[..3], &after, false).unwrap_err();
    assert!(lost.0.contains("event 2 differs"), "{lost}");
    assert!(keeps_prefix("w", "r", &task[..3], &after[..1], false).is_err());
}
