//! Exceptions: an activity fails, is retried by its policy, and the client sees the whole
//! cause chain (workflow failure → activity failure → application error) with stack traces.

use std::time::Duration;

use capstan::prelude::*;

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
