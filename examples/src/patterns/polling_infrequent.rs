//! Infrequent Polling: the activity fails while the service is not ready, and the retry
//! policy (backoff coefficient 1.0: a fixed interval) schedules the next poll. A job that
//! failed for good is a non-retryable error and stops the retries at once.

use std::time::Duration;

use capstan::prelude::*;

/// A short-lived activity that checks the service's status.
#[activity]
pub async fn poll_service_status(
    ctx: ActivityContext,
    service_url: String,
) -> Result<String, ActivityError> {
    match fetch_service_status(&service_url, ctx.info().attempt) {
        // Fail the activity to trigger a retry.
        None => Err(ApplicationError::new("RuntimeError", "Service not ready").into()),
        Some(status) => Ok(status),
    }
}

/// Checks whether a long-running job has completed.
#[activity]
pub async fn check_job_completion(
    ctx: ActivityContext,
    job_id: String,
) -> Result<bool, ActivityError> {
    match get_job_status(&job_id, ctx.info().attempt) {
        state @ ("pending" | "running") => {
            Err(ApplicationError::new("RuntimeError", format!("Job not complete: {state}")).into())
        }
        "failed" => Err(
            ApplicationError::new("ValueError", format!("Job {job_id} failed"))
                .non_retryable()
                .into(),
        ),
        _ => Ok(true),
    }
}

/// Polls the service every `poll_interval` (default 60 s) until it is ready.
#[workflow]
#[derive(Default)]
pub struct InfrequentPollingWorkflow;

#[workflow]
impl InfrequentPollingWorkflow {
    #[run]
    pub async fn run(
        ctx: WorkflowContext<Self>,
        service_url: String,
        poll_interval: Option<Duration>,
    ) -> WorkflowResult<String> {
        let every = poll_interval.unwrap_or(Duration::from_secs(60));
        Ok(ctx
            .activity(poll_service_status, service_url)
            .start_to_close_timeout(Duration::from_secs(5)) // Short timeout
            .retry_policy(RetryPolicy {
                backoff_coefficient: 1.0, // No exponential backoff
                initial_interval: Some(every),
                maximum_interval: Some(every), // Keep consistent
                maximum_attempts: 100,         // Limit total attempts
                ..RetryPolicy::default()
            })
            .await?)
    }
}

/// Checks a job every `poll_interval` (default 5 minutes), 48 times at most.
#[workflow]
#[derive(Default)]
pub struct JobMonitoringWorkflow;

#[workflow]
impl JobMonitoringWorkflow {
    #[run]
    pub async fn run(
        ctx: WorkflowContext<Self>,
        job_id: String,
        poll_interval: Option<Duration>,
    ) -> WorkflowResult<bool> {
        let every = poll_interval.unwrap_or(Duration::from_secs(5 * 60));
        Ok(ctx
            .activity(check_job_completion, job_id)
            .start_to_close_timeout(Duration::from_secs(10))
            .retry_policy(RetryPolicy {
                backoff_coefficient: 1.0,
                initial_interval: Some(every),
                maximum_interval: Some(every),
                maximum_attempts: 48, // 4 hours at most (48 × 5 minutes)
                ..RetryPolicy::default()
            })
            .await?)
    }
}

/// A stand-in for the service, `fake://ready-at/N`: not ready before its `N`th poll.
fn fetch_service_status(url: &str, poll: u32) -> Option<String> {
    (poll >= number_after(url, "ready-at").unwrap_or(1)).then(|| "ready".to_owned())
}

/// A stand-in for the job system: `fake-job/completes-at/N` is pending on the first poll,
/// running until its `N`th and completed from then on; `fake-job/fails-at/N` has failed
/// from its `N`th poll on.
fn get_job_status(job_id: &str, poll: u32) -> &'static str {
    if number_after(job_id, "fails-at").is_some_and(|n| poll >= n) {
        return "failed";
    }
    match number_after(job_id, "completes-at") {
        Some(n) if poll >= n => "completed",
        _ if poll == 1 => "pending",
        Some(_) => "running",
        None => "completed",
    }
}

/// `…/key/N/…` → `N`.
fn number_after(text: &str, key: &str) -> Option<u32> {
    let rest = text.split(key).nth(1)?;
    rest.trim_start_matches('/').split('/').next()?.parse().ok()
}
