//! Continue-as-New: a long loop carries its state into a fresh run (same workflow id, new
//! history) when the server suggests it, after every handler has finished.

use std::time::Duration;

use capstan::prelude::*;
use serde_json::{json, Value};

use crate::tour::workflow_id;

/// What a run hands to the next one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WorkflowState {
    /// Batches processed so far.
    #[serde(default)]
    pub iteration: u32,
    /// Items processed so far.
    #[serde(default)]
    pub processed_items: u32,
}

/// The workflow's input: `state` is `None` on the first run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct WorkflowInput {
    /// The state carried over from the previous run.
    #[serde(default)]
    pub state: Option<WorkflowState>,
    /// Batches to process in all.
    #[serde(default = "default_max_iterations")]
    pub max_iterations: u32,
    /// Also continue as new after this many batches in one run, whatever the server
    /// suggests: for demos on a server whose history threshold is far away. Not in the
    /// seed; absent from the payload when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iterations_per_run: Option<u32>,
}

fn default_max_iterations() -> u32 {
    1000
}

impl Default for WorkflowInput {
    fn default() -> Self {
        Self {
            state: None,
            max_iterations: default_max_iterations(),
            iterations_per_run: None,
        }
    }
}

/// Processes `max_iterations` batches across as many runs as the history needs, and
/// returns the final state.
#[workflow]
#[derive(Default)]
pub struct LongRunningWorkflow {
    state: WorkflowState,
}

#[workflow]
impl LongRunningWorkflow {
    #[run]
    pub async fn run(
        ctx: WorkflowContext<Self>,
        input: WorkflowInput,
    ) -> WorkflowResult<WorkflowState> {
        // Initialize or restore state.
        let restored = input.state.clone().unwrap_or_default();
        ctx.state_mut(|s| s.state = restored);
        let mut batches_this_run = 0;
        while ctx.state(|s| s.state.iteration) < input.max_iterations {
            Self::process_batch(&ctx).await?;
            ctx.state_mut(|s| s.state.iteration += 1);
            batches_this_run += 1;
            let work_left = ctx.state(|s| s.state.iteration) < input.max_iterations;
            if ctx.is_continue_as_new_suggested()
                || (work_left && input.iterations_per_run == Some(batches_this_run))
            {
                ctx.wait_condition(|_| ctx.all_handlers_finished()).await?;
                return ctx.continue_as_new(WorkflowInput {
                    state: Some(ctx.state(|s| s.state.clone())),
                    ..input
                });
            }
        }
        ctx.logger()
            .info(format!("Completed all {} iterations", input.max_iterations));
        Ok(ctx.state(|s| s.state.clone()))
    }

    async fn process_batch(ctx: &WorkflowContext<Self>) -> WorkflowResult<()> {
        // Simulate work.
        ctx.sleep(Duration::from_millis(100)).await?;
        ctx.state_mut(|s| s.state.processed_items += 10);
        Ok(())
    }
}

/// Registers the pattern's workflow.
pub fn register(worker: Worker) -> Worker {
    worker.register_workflow::<LongRunningWorkflow>()
}

/// The tour's driver: six batches, two a run, end in a later run than the first with the
/// state carried over.
pub async fn tour(client: &Client, task_queue: &str, run_id: &str) -> anyhow::Result<Value> {
    let input = WorkflowInput {
        max_iterations: 6,
        iterations_per_run: Some(2),
        ..WorkflowInput::default()
    };
    let handle = LongRunningWorkflow::start(client, workflow_id("long-running", run_id), input)
        .task_queue(task_queue)
        .await?;
    let state = handle.result().await?;
    let last_run = client
        .workflow_handle(handle.workflow_id())
        .describe()
        .await?;
    anyhow::ensure!(
        state.iteration == 6 && state.processed_items == 60,
        "unexpected final state {state:?}"
    );
    anyhow::ensure!(
        Some(last_run.run_id.as_str()) != handle.run_id(),
        "the workflow should have continued as new"
    );
    Ok(json!({
        "iteration": state.iteration,
        "processed_items": state.processed_items,
        "first_run": handle.run_id(),
        "last_run": last_run.run_id,
    }))
}
