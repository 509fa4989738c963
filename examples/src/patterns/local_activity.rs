//! Local Activity: short activities run in the worker, recorded as markers.

use std::time::Duration;

use capstan::prelude::*;
use serde_json::{json, Value};

use crate::tour::workflow_id;

/// The greeting's parts.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ProcessingInput {
    /// The greeting word.
    pub greeting: String,
    /// Who to greet.
    pub name: String,
}

/// Fast local activity for simple string processing.
#[activity]
pub fn compose_greeting(input: ProcessingInput) -> Result<String, ActivityError> {
    Ok(format!("{}, {}!", input.greeting, input.name))
}

/// Quick validation that runs locally.
#[activity]
pub fn validate_input(data: String) -> Result<bool, ActivityError> {
    Ok(!data.trim().is_empty())
}

/// Chains two local activities.
#[workflow]
#[derive(Default)]
pub struct LocalActivityWorkflow;

#[workflow]
impl LocalActivityWorkflow {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>, name: String) -> WorkflowResult<String> {
        let input = ProcessingInput {
            greeting: "Hello".into(),
            name,
        };
        let result = ctx
            .local_activity(compose_greeting, input)
            .start_to_close_timeout(Duration::from_secs(10))
            .await?;
        let is_valid = ctx
            .local_activity(validate_input, result.clone())
            .start_to_close_timeout(Duration::from_secs(5))
            .await?;
        Ok(if is_valid {
            result
        } else {
            "Invalid result".to_owned()
        })
    }
}

/// Registers the pattern's workflow and its local activities.
pub fn register(worker: Worker) -> Worker {
    worker
        .register_workflow::<LocalActivityWorkflow>()
        .register_activity(compose_greeting)
        .register_activity(validate_input)
}

/// The tour's driver: a greeting composed and validated by local activities.
pub async fn tour(client: &Client, task_queue: &str, run_id: &str) -> anyhow::Result<Value> {
    let text = LocalActivityWorkflow::execute(
        client,
        workflow_id("local-activity", run_id),
        "World".to_owned(),
    )
    .task_queue(task_queue)
    .await?;
    anyhow::ensure!(text == "Hello, World!", "unexpected result {text:?}");
    Ok(json!(text))
}
