//! Exceptions: an activity fails, is retried by its policy, and the client sees the whole
//! cause chain (workflow failure → activity failure → application error) with stack traces.

use std::time::Duration;

use capstan::{prelude::*, ClientError};
use serde_json::{json, Value};

use crate::tour::workflow_id;

/// The activity's input.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
pub struct ProcessingInput {
    /// The data.
    pub data: String,
    /// Whether processing fails.
    #[serde(default)]
    pub should_fail: bool,
}

/// Processes data, or fails like the seed's `RuntimeError`.
#[activity]
pub fn process_data(input: ProcessingInput) -> Result<String, ActivityError> {
    if input.should_fail {
        return Err(ApplicationError::new(
            "RuntimeError",
            format!("Processing failed for: {}", input.data),
        )
        .into());
    }
    Ok(format!("Processed: {}", input.data))
}

/// Runs `process_data` with three attempts at most.
#[workflow]
#[derive(Default)]
pub struct DataProcessingWorkflow;

#[workflow]
impl DataProcessingWorkflow {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>, data: String) -> WorkflowResult<String> {
        let input = ProcessingInput {
            data,
            should_fail: true,
        };
        Ok(ctx
            .activity(process_data, input)
            .start_to_close_timeout(Duration::from_secs(10))
            .retry_policy(RetryPolicy {
                initial_interval: Some(Duration::from_millis(100)),
                ..RetryPolicy::maximum_attempts(3)
            })
            .await?)
    }
}

/// Registers the pattern's workflow and activity.
pub fn register(worker: Worker) -> Worker {
    worker
        .register_workflow::<DataProcessingWorkflow>()
        .register_activity(process_data)
}

/// The tour's driver: the workflow fails after the activity's retries, and the client
/// sees the whole cause chain down to the activity's `RuntimeError`.
pub async fn tour(client: &Client, task_queue: &str, run_id: &str) -> anyhow::Result<Value> {
    let outcome = DataProcessingWorkflow::execute(
        client,
        workflow_id("data-processing", run_id),
        "test-data".to_owned(),
    )
    .task_queue(task_queue)
    .await;
    let Err(err @ ClientError::WorkflowFailed { .. }) = outcome else {
        anyhow::bail!("the workflow should fail, got {outcome:?}");
    };
    let failure = err.failure().expect("a workflow failure");
    let chain: Vec<Value> = failure
        .chain()
        .map(|f| json!({ "kind": format!("{:?}", f.kind()), "message": f.message(), "type": f.error_type() }))
        .collect();
    let root = failure.root_cause();
    anyhow::ensure!(
        root.error_type() == Some("RuntimeError"),
        "root cause should be the activity's RuntimeError: {failure}"
    );
    Ok(json!({ "error": err.to_string(), "chain": chain }))
}
