//! Interceptors: code that runs around every activity or workflow a worker executes, to
//! measure, log or decorate it.
//!
//! An interceptor receives the context and `next`, the rest of the chain; it must call
//! `next` once and return what it returns (or an error of its own).

use crate::{
    activity::ActivityContext,
    converter::Payload,
    definition::{BoxFuture, LocalBoxFuture},
    failure::Error,
    metrics::MetricMeter,
    workflow::WorkflowInfo,
};

/// The rest of an activity's chain: the inner interceptors and the activity itself.
pub type NextActivity = BoxFuture<Result<Payload, Error>>;

/// The rest of a workflow's chain: the inner interceptors and the run function.
pub type NextWorkflow = LocalBoxFuture<Result<Payload, Error>>;

/// Runs around every activity attempt on a worker.
pub trait ActivityInterceptor: Send + Sync + 'static {
    /// Wraps one attempt; call `next.await` for the activity's result.
    fn execute_activity(&self, ctx: ActivityContext, next: NextActivity) -> NextActivity;
}

/// Runs around every workflow run on a worker, on the workflow's thread: it must be
/// deterministic, like workflow code. Its meter records nothing while the run replays.
pub trait WorkflowInterceptor: Send + Sync + 'static {
    /// Wraps one run; call `next.await` for the run's result.
    fn execute_workflow(
        &self,
        info: WorkflowInfo,
        metrics: MetricMeter,
        next: NextWorkflow,
    ) -> NextWorkflow;
}
