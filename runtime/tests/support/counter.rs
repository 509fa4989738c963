//! `Counter`, the test workflow driven by every kind of handler. One definition for the
//! runtime's tests (on a Temporal dev server) and the engine's (on the embedded engine):
//! `runtime/tests/workflows.rs` and `engine/tests/support/mod.rs` include this file with
//! `#[path]`, so both backends run the same workflow.

use std::time::Duration;

use capstan::prelude::*;

/// A counter driven by every kind of handler.
#[workflow]
#[derive(Default)]
pub(crate) struct Counter {
    value: i64,
    done: bool,
}

#[workflow]
impl Counter {
    #[run]
    pub(crate) async fn run(ctx: WorkflowContext<Self>, start: i64) -> WorkflowResult<i64> {
        // Runs before any handler: the run function goes up to its first `.await` before
        // the signals and updates that came with the start are handled.
        ctx.state_mut(|s| s.value = start);
        ctx.wait_condition(|s| s.done).await?;
        Ok(ctx.state(|s| s.value))
    }

    #[signal]
    pub(crate) fn add(&mut self, n: i64) {
        self.value += n;
    }

    #[signal]
    pub(crate) fn finish(&mut self) {
        self.done = true;
    }

    #[query]
    pub(crate) fn value(&self) -> i64 {
        self.value
    }

    #[update(validator = check_set)]
    pub(crate) fn set(&mut self, value: i64) -> Result<i64, UpdateError> {
        let old = self.value;
        self.value = value;
        Ok(old)
    }

    pub(crate) fn check_set(&self, value: &i64) -> Result<(), UpdateError> {
        if *value < 0 {
            return Err(
                ApplicationError::new("ValueError", "the counter cannot go below zero").into(),
            );
        }
        Ok(())
    }

    #[update]
    pub(crate) async fn add_later(ctx: WorkflowContext<Self>, n: i64) -> Result<i64, UpdateError> {
        ctx.sleep(Duration::from_millis(50)).await?;
        Ok(ctx.state_mut(|s| {
            s.value += n;
            s.value
        }))
    }
}
