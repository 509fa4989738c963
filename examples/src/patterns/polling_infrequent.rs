//! Infrequent Polling: the activity fails while the service is not ready, and the retry
//! policy (backoff coefficient 1.0: a fixed interval) schedules the next poll. A job that
//! failed for good is a non-retryable error and stops the retries at once.

use std::time::Duration;

use capstan::{prelude::*, ClientError};
use serde_json::{json, Value};

use crate::tour::workflow_id;

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

/// Registers the pattern's workflows and activities.
pub fn register(worker: Worker) -> Worker {
    worker
        .register_workflow::<InfrequentPollingWorkflow>()
        .register_workflow::<JobMonitoringWorkflow>()
        .register_activity(poll_service_status)
        .register_activity(check_job_completion)
}

/// The tour's driver: a service ready on the third poll, every 0.5 s, and a job that fails
/// on its second, which stops the retries with the job's `ValueError`.
pub async fn tour(client: &Client, task_queue: &str, run_id: &str) -> anyhow::Result<Value> {
    let every = Some(Duration::from_millis(500));
    let status = InfrequentPollingWorkflow::execute(
        client,
        workflow_id("infrequent-polling", run_id),
        "fake://ready-at/3".to_owned(),
        every,
    )
    .task_queue(task_queue)
    .await?;
    let job = JobMonitoringWorkflow::execute(
        client,
        workflow_id("job-monitoring", run_id),
        "fake-job/fails-at/2".to_owned(),
        every,
    )
    .task_queue(task_queue)
    .await;
    let Err(err @ ClientError::WorkflowFailed { .. }) = job else {
        anyhow::bail!("the failed job should fail the workflow, got {job:?}");
    };
    let root = err.failure().expect("a workflow failure").root_cause();
    anyhow::ensure!(
        status == "ready" && root.error_type() == Some("ValueError"),
        "unexpected {status:?}, {root}"
    );
    Ok(json!({ "service": status, "job": root.message() }))
}
