//! `suggest_continue_as_new`: once a run's history reaches the engine's threshold, its
//! workflow tasks suggest continuing as new, and a workflow that listens rolls over without
//! losing a signal.

use capstan::{client::WorkflowExecutionStatus, prelude::*};
use capstan_engine::EngineOptions;

mod support;

const SIGNALS: u32 = 30;

/// Counts signals until `SIGNALS`; continues as new, carrying the count, when suggested.
#[workflow]
#[derive(Default)]
pub struct Rolling {
    count: u32,
}

#[workflow]
impl Rolling {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>, carried: u32) -> WorkflowResult<u32> {
        ctx.state_mut(|s| s.count = carried);
        loop {
            let seen = ctx.state(|s| s.count);
            ctx.wait_condition(move |s| s.count > seen).await?;
            let count = ctx.state(|s| s.count);
            if count >= SIGNALS {
                return Ok(count);
            }
            if ctx.is_continue_as_new_suggested() {
                return ctx.continue_as_new(count);
            }
        }
    }

    #[signal]
    pub fn bump(&mut self) {
        self.count += 1;
    }

    #[query]
    pub fn count(&self) -> u32 {
        self.count
    }
}

/// Sends `SIGNALS` bumps to a `Rolling` run on an engine with `threshold`; returns the
/// result and, for each run of the workflow id (oldest first), its status, history length
/// and how many of its workflow tasks suggested continuing as new.
async fn roll(threshold: usize) -> (u32, Vec<(WorkflowExecutionStatus, usize, usize)>) {
    let (engine, client) = support::start(EngineOptions {
        limits: capstan_engine::Limits {
            history_count_suggest_continue_as_new: threshold,
            ..Default::default()
        },
        ..EngineOptions::default()
    })
    .await;
    let result = Worker::new(&client, "rolling")
        .register_workflow::<Rolling>()
        .run_until(async {
            Rolling::start(&client, "rolling", 0)
                .task_queue("rolling")
                .await
                .unwrap();
            // One signal at a time: a continue-as-new that races a new signal is refused
            // (the run must see the signal first), which would only delay the rollover.
            for n in 1..SIGNALS {
                let handle = client.workflow_handle("rolling");
                handle.signal_with("bump", ()).await.unwrap();
                while handle.query_with::<_, u32>("count", ()).await.ok() != Some(n) {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            }
            client
                .workflow_handle("rolling")
                .signal_with("bump", ())
                .await
                .unwrap();
            loop {
                let runs = client
                    .list_workflows("WorkflowId = 'rolling'")
                    .await
                    .unwrap();
                if runs
                    .iter()
                    .any(|r| r.status == WorkflowExecutionStatus::Completed)
                {
                    break client
                        .workflow_handle("rolling")
                        .result_as::<u32>()
                        .await
                        .unwrap();
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
        .await
        .unwrap();
    let mut runs = Vec::new();
    for run in client
        .list_workflows("WorkflowId = 'rolling'")
        .await
        .unwrap()
        .into_iter()
        .rev()
    {
        let history = client
            .workflow_handle("rolling")
            .for_run(&run.run_id)
            .history()
            .await
            .unwrap();
        let suggested = history
            .iter()
            .filter(|e| matches!(&e.attributes, Some(capstan::client::history::Attributes::WorkflowTaskStartedEventAttributes(a)) if a.suggest_continue_as_new))
            .count();
        runs.push((run.status, history.len(), suggested));
    }
    engine.shutdown().await;
    (result, runs)
}

#[tokio::test]
async fn long_histories_suggest_continue_as_new() {
    let (result, runs) = roll(20).await;
    assert_eq!(result, SIGNALS, "no signal lost across the runs");
    assert!(runs.len() >= 3, "the workflow rolled over: {runs:?}");
    let (last, older) = runs.split_last().unwrap();
    assert_eq!(last.0, WorkflowExecutionStatus::Completed);
    for (status, length, suggested) in older {
        assert_eq!(*status, WorkflowExecutionStatus::ContinuedAsNew, "{runs:?}");
        assert!(
            *length >= 20 && *suggested >= 1,
            "continued once suggested: {runs:?}"
        );
    }
    // With the default threshold (4096 events), the same workflow never rolls over.
    let (result, runs) = roll(4096).await;
    assert_eq!(result, SIGNALS);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].2, 0, "never suggested below 4096 events: {runs:?}");
}
