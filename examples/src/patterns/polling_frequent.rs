//! Frequent Polling: one long activity polls a service in a loop, swallowing its transient
//! errors, heartbeating between polls so that a retried attempt resumes its count and a
//! cancellation stops the loop.

use std::time::Duration;

use capstan::prelude::*;
use serde_json::{json, Value};

use crate::tour::workflow_id;

/// Polls `service_url` every `poll_interval` seconds (default 1) until it returns data.
#[activity]
pub async fn poll_external_service(
    ctx: ActivityContext,
    service_url: String,
    poll_interval: Option<f64>,
) -> Result<String, ActivityError> {
    let poll_interval = Duration::from_secs_f64(poll_interval.unwrap_or(1.0));
    // Resume the count of the previous attempt, if there was one.
    let mut calls = match ctx.heartbeat_details::<(u32,)>() {
        Some(details) => details?.0,
        None => 0,
    };
    loop {
        calls += 1;
        match fetch_from_service(&ctx, &service_url, calls) {
            Ok(Some(result)) => return Ok(result),
            Ok(None) => {}
            // Swallow the error: the service may be down for a moment.
            Err(_transient) => {}
        }
        // Heartbeat to prevent the activity's timeout, and to learn of cancellation.
        ctx.heartbeat(calls);
        tokio::select! {
            () = ctx.cancelled() => {
                return Err(capstan::Error::cancelled("Polling activity cancelled"));
            }
            () = tokio::time::sleep(poll_interval) => {}
        }
    }
}

/// A stand-in for the external service, `fake://ready-after/N`: no data or a transient
/// error until its `N`th call, then data. With `/crash-at/K` appended, the first attempt
/// panics on its `K`th call, as a crashing worker would: the attempt fails and is retried.
fn fetch_from_service(
    ctx: &ActivityContext,
    url: &str,
    call: u32,
) -> Result<Option<String>, ActivityError> {
    let number_after = |key: &str| -> Option<u32> {
        let rest = url.split(key).nth(1)?;
        rest.trim_start_matches('/').split('/').next()?.parse().ok()
    };
    let ready_after = number_after("ready-after").unwrap_or(1);
    if ctx.info().attempt == 1 && number_after("crash-at") == Some(call) {
        panic!("the fake service crashed the worker on call {call}");
    }
    match call {
        c if c >= ready_after => Ok(Some(format!(
            "data after {c} calls (attempt {})",
            ctx.info().attempt
        ))),
        c if c % 2 == 0 => Err(ApplicationError::new("ServiceUnavailable", "try later").into()),
        _ => Ok(None),
    }
}

/// Runs `poll_external_service` with a long timeout and a short heartbeat timeout.
#[workflow]
#[derive(Default)]
pub struct FrequentPollingWorkflow;

#[workflow]
impl FrequentPollingWorkflow {
    #[run]
    pub async fn run(
        ctx: WorkflowContext<Self>,
        service_url: String,
        poll_interval: Option<f64>,
    ) -> WorkflowResult<String> {
        Ok(ctx
            .activity(poll_external_service, (service_url, poll_interval))
            .start_to_close_timeout(Duration::from_secs(30 * 60))
            .heartbeat_timeout(Duration::from_secs(10))
            .retry_policy(RetryPolicy {
                initial_interval: Some(Duration::from_millis(200)),
                ..RetryPolicy::default()
            })
            .await?)
    }
}

/// Registers the pattern's workflow and activity.
pub fn register(worker: Worker) -> Worker {
    worker
        .register_workflow::<FrequentPollingWorkflow>()
        .register_activity(poll_external_service)
}

/// The tour's driver: a service that has data on its fourth call, polled every 0.1 s in
/// one attempt.
pub async fn tour(client: &Client, task_queue: &str, run_id: &str) -> anyhow::Result<Value> {
    let data = FrequentPollingWorkflow::execute(
        client,
        workflow_id("frequent-polling", run_id),
        "fake://ready-after/4".to_owned(),
        Some(0.1),
    )
    .task_queue(task_queue)
    .await?;
    anyhow::ensure!(
        data == "data after 4 calls (attempt 1)",
        "unexpected {data:?}"
    );
    Ok(json!(data))
}
