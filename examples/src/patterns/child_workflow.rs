//! Child Workflow: a parent runs a child to completion, or starts it and keeps a handle.

use capstan::{prelude::*, workflow::ParentClosePolicy};

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
