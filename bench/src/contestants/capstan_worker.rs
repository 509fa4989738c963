//! The Capstan contestant: the benchmark workflows written with Capstan's macros.
//!
//! Every contestant registers workflows of the same names and behaviour (see
//! [`crate::contestants`]), so the harness drives them all with one client.

use std::{future::IntoFuture, time::Duration};

use capstan::{prelude::*, workflow::try_join_all};

use super::FanOutInput;

/// The no-op activity every scenario runs.
#[activity]
pub async fn noop() -> Result<(), ActivityError> {
    Ok(())
}

/// `OneActivity`: runs one no-op activity.
#[workflow]
#[derive(Default)]
pub struct OneActivity;

#[workflow]
impl OneActivity {
    /// Runs the activity.
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>) -> WorkflowResult<()> {
        ctx.activity(noop, ())
            .start_to_close_timeout(Duration::from_secs(30))
            .await?;
        Ok(())
    }
}

/// `Counter`: idles until `finish`, counting `bump` signals and `bump_and_get` updates.
#[workflow]
#[derive(Default)]
pub struct Counter {
    count: u64,
    finished: bool,
}

#[workflow]
impl Counter {
    /// Waits for `finish`; returns the count.
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>) -> WorkflowResult<u64> {
        ctx.wait_condition(|s| s.finished).await?;
        Ok(ctx.state(|s| s.count))
    }

    /// Adds one.
    #[signal]
    pub fn bump(&mut self) {
        self.count += 1;
    }

    /// Ends the run.
    #[signal]
    pub fn finish(&mut self) {
        self.finished = true;
    }

    /// The count so far.
    #[query]
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Adds one and returns the new count.
    #[update]
    pub fn bump_and_get(&mut self) -> Result<u64, UpdateError> {
        self.count += 1;
        Ok(self.count)
    }
}

/// `Sleeper`: sleeps for the given number of milliseconds (a durable timer).
#[workflow]
#[derive(Default)]
pub struct Sleeper;

#[workflow]
impl Sleeper {
    /// Sleeps.
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>, millis: u64) -> WorkflowResult<()> {
        ctx.sleep(Duration::from_millis(millis)).await?;
        Ok(())
    }
}

/// `Child`: returns at once (the fan-out's children).
#[workflow]
#[derive(Default)]
pub struct Child;

#[workflow]
impl Child {
    /// Returns.
    #[run]
    pub async fn run(_ctx: WorkflowContext<Self>) -> WorkflowResult<()> {
        Ok(())
    }
}

/// `FanOut`: runs `activities` no-op activities at once, then `children` child
/// workflows at once.
#[workflow]
#[derive(Default)]
pub struct FanOut;

#[workflow]
impl FanOut {
    /// Fans out, then in.
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>, input: FanOutInput) -> WorkflowResult<()> {
        let activities = (0..input.activities).map(|_| {
            ctx.activity(noop, ())
                .start_to_close_timeout(Duration::from_secs(60))
                .into_future()
        });
        try_join_all(activities).await?;
        let id = ctx.info().workflow_id.clone();
        let children = (0..input.children).map(|i| {
            ctx.child_workflow::<Child>(())
                .id(format!("{id}-child-{i}"))
                .into_future()
        });
        try_join_all(children).await?;
        Ok(())
    }
}

/// Runs a Capstan worker with every benchmark workflow on `task_queue` until `stop`.
pub async fn run(
    address: &str,
    task_queue: &str,
    max_cached_workflows: usize,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let client = Client::connect(address).await?;
    Worker::new(&client, task_queue)
        .register_workflow::<OneActivity>()
        .register_workflow::<Counter>()
        .register_workflow::<Sleeper>()
        .register_workflow::<Child>()
        .register_workflow::<FanOut>()
        .register_activity(noop)
        .max_cached_workflows(max_cached_workflows)
        .run_until(stop)
        .await?;
    Ok(())
}
