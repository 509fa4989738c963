//! Continue-as-New: a long loop carries its state into a fresh run (same workflow id, new
//! history) when the server suggests it, after every handler has finished.

use std::time::Duration;

use capstan::prelude::*;

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
