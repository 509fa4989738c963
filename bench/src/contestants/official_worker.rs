//! The official Rust SDK contestant (`temporalio-sdk`): the same workflows as
//! [`super::capstan_worker`], written the way the SDK's own examples write them.
// The SDK's macros generate public helper items of their own.
#![allow(unreachable_pub, missing_docs)]

use std::time::Duration;

use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, Url};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    activities::{ActivityContext, ActivityError},
    workflows::join_all,
    ActivityOptions, ChildWorkflowOptions, Runtime, SyncWorkflowContext, Worker, WorkerOptions,
    WorkflowContext, WorkflowContextView, WorkflowResult,
};

use super::FanOutInput;

pub struct Activities;

#[activities]
impl Activities {
    #[activity(name = "noop")]
    pub async fn noop(_ctx: ActivityContext) -> Result<(), ActivityError> {
        Ok(())
    }
}

fn activity_options() -> ActivityOptions {
    ActivityOptions::start_to_close_timeout(Duration::from_secs(60))
}

#[workflow]
#[derive(Default)]
pub struct OneActivity;

#[workflow_methods]
impl OneActivity {
    #[run(name = "OneActivity")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        ctx.execute_activity(Activities::noop, (), activity_options())
            .await?;
        Ok(())
    }
}

#[workflow]
#[derive(Default)]
pub struct Counter {
    count: u64,
    finished: bool,
}

#[workflow_methods]
impl Counter {
    #[run(name = "Counter")]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<u64> {
        ctx.wait_condition(|s| s.finished).await?;
        Ok(ctx.state(|s| s.count))
    }

    #[signal]
    pub fn bump(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {
        self.count += 1;
    }

    #[signal]
    pub fn finish(&mut self, _ctx: &mut SyncWorkflowContext<Self>) {
        self.finished = true;
    }

    #[query]
    pub fn count(&self, _ctx: &WorkflowContextView) -> u64 {
        self.count
    }

    #[update]
    pub fn bump_and_get(&mut self, _ctx: &mut SyncWorkflowContext<Self>) -> u64 {
        self.count += 1;
        self.count
    }
}

#[workflow]
#[derive(Default)]
pub struct Sleeper;

#[workflow_methods]
impl Sleeper {
    #[run(name = "Sleeper")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, millis: u64) -> WorkflowResult<()> {
        ctx.timer(Duration::from_millis(millis)).await;
        Ok(())
    }
}

#[workflow]
#[derive(Default)]
pub struct Child;

#[workflow_methods]
impl Child {
    #[run(name = "Child")]
    pub async fn run(_ctx: &mut WorkflowContext<Self>) -> WorkflowResult<()> {
        Ok(())
    }
}

#[workflow]
#[derive(Default)]
pub struct FanOut;

#[workflow_methods]
impl FanOut {
    #[run(name = "FanOut")]
    pub async fn run(ctx: &mut WorkflowContext<Self>, input: FanOutInput) -> WorkflowResult<()> {
        let activities = (0..input.activities)
            .map(|_| ctx.execute_activity(Activities::noop, (), activity_options()));
        for result in join_all(activities).await {
            result?;
        }
        let id = ctx.workflow_id().to_owned();
        let starts = (0..input.children).map(|i| {
            ctx.start_child_workflow(
                Child::run,
                (),
                ChildWorkflowOptions::workflow_id(format!("{id}-child-{i}")),
            )
        });
        let mut children = Vec::new();
        for started in join_all(starts).await {
            children.push(started?);
        }
        for result in join_all(children.into_iter().map(|c| c.result())).await {
            result?;
        }
        Ok(())
    }
}

/// Runs an official-SDK worker with every benchmark workflow on `task_queue` until `stop`.
pub async fn run(
    address: &str,
    task_queue: &str,
    max_cached_workflows: usize,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let runtime = Runtime::from_current_tokio(Default::default())?;
    let target = Url::parse(&format!("http://{address}"))?;
    let connection = Connection::connect(ConnectionOptions::new(target).build()).await?;
    let client = Client::new(connection, ClientOptions::new("default").build())?;
    let options = WorkerOptions::new(task_queue)
        .register_workflow::<OneActivity>()?
        .register_workflow::<Counter>()?
        .register_workflow::<Sleeper>()?
        .register_workflow::<Child>()?
        .register_workflow::<FanOut>()?
        .register_activities(Activities)
        .max_cached_workflows(max_cached_workflows)
        .build();
    let mut worker = Worker::new(&runtime, client, options)?;
    let shutdown = worker.shutdown_handle();
    tokio::spawn(async move {
        stop.await;
        shutdown();
    });
    worker.run().await?;
    Ok(())
}
