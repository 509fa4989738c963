//! Child Workflow: a parent runs a child to completion, or starts it and keeps a handle.

use capstan::{prelude::*, workflow::ParentClosePolicy};
use serde_json::{json, Value};

use crate::tour::workflow_id;

/// The child's input.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ComposeGreetingInput {
    /// The greeting word.
    pub greeting: String,
    /// Who to greet.
    pub name: String,
}

/// Child workflow that composes a greeting message.
#[workflow]
#[derive(Default)]
pub struct ComposeGreetingWorkflow;

#[workflow]
impl ComposeGreetingWorkflow {
    #[run]
    pub async fn run(
        _ctx: WorkflowContext<Self>,
        input: ComposeGreetingInput,
    ) -> WorkflowResult<String> {
        Ok(format!("{}, {}!", input.greeting, input.name))
    }
}

/// Parent workflow that executes a child and waits for it.
#[workflow]
#[derive(Default)]
pub struct GreetingWorkflow;

#[workflow]
impl GreetingWorkflow {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>, name: String) -> WorkflowResult<String> {
        let input = ComposeGreetingInput {
            greeting: "Hello".into(),
            name,
        };
        let child_id = format!("{}-child", ctx.info().workflow_id);
        Ok(ctx
            .child_workflow::<ComposeGreetingWorkflow>(input)
            .id(child_id)
            .parent_close_policy(ParentClosePolicy::Abandon)
            .await?)
    }
}

/// Parent workflow that starts a child, gets its handle, then waits for its result.
#[workflow]
#[derive(Default)]
pub struct AdvancedParentWorkflow;

#[workflow]
impl AdvancedParentWorkflow {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>, name: String) -> WorkflowResult<String> {
        let input = ComposeGreetingInput {
            greeting: "Hi".into(),
            name,
        };
        let child_id = format!("{}-child", ctx.info().workflow_id);
        let handle = ctx
            .child_workflow::<ComposeGreetingWorkflow>(input)
            .id(child_id)
            .start()
            .await?;
        ctx.logger()
            .info(format!("Started child: {}", handle.workflow_id()));
        Ok(handle.result().await?)
    }
}

/// Registers the pattern's parents and child.
pub fn register(worker: Worker) -> Worker {
    worker
        .register_workflow::<GreetingWorkflow>()
        .register_workflow::<AdvancedParentWorkflow>()
        .register_workflow::<ComposeGreetingWorkflow>()
}

/// The tour's driver: one parent executes its child, the other starts it with a handle.
pub async fn tour(client: &Client, task_queue: &str, run_id: &str) -> anyhow::Result<Value> {
    let executed =
        GreetingWorkflow::execute(client, workflow_id("greeting", run_id), "World".to_owned())
            .task_queue(task_queue)
            .await?;
    let started = AdvancedParentWorkflow::execute(
        client,
        workflow_id("advanced-parent", run_id),
        "World".to_owned(),
    )
    .task_queue(task_queue)
    .await?;
    anyhow::ensure!(
        executed == "Hello, World!" && started == "Hi, World!",
        "unexpected results {executed:?}, {started:?}"
    );
    Ok(json!({ "execute_child_workflow": executed, "start_child_workflow": started }))
}
