//! Workflow code: the context, durable operations, and the deterministic executor that runs
//! them on core's activations.

mod context;
pub(crate) mod executor;
mod ops;
pub(crate) mod run_state;

use std::time::{Duration, SystemTime};

pub use context::{Condition, WorkflowContext, WorkflowLogger};
pub use futures::future::{
    join, join3, join_all, select, select_all, try_join, try_join_all, Either,
};
pub use ops::{
    ActivityCall, ActivityCancellation, ChildWorkflowCall, ChildWorkflowHandle,
    ExternalWorkflowHandle, LocalActivityCall, ParentClosePolicy, Timer,
};

use temporalio_common::protos::{
    coresdk::workflow_commands::ContinueAsNewWorkflowExecution,
    temporal::api::failure::v1::{
        failure::FailureInfo, CanceledFailureInfo, Failure as ProtoFailure,
    },
};

use crate::{
    converter::{Args, PayloadError},
    definition::WorkflowType,
    failure::FAILURE_SOURCE,
    options::RetryPolicy,
};

/// The identity and attributes of a workflow run.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct WorkflowInfo {
    /// The workflow id.
    pub workflow_id: String,
    /// This run's id.
    pub run_id: String,
    /// The workflow type name.
    pub workflow_type: String,
    /// The task queue the run is polled from.
    pub task_queue: String,
    /// The namespace.
    pub namespace: String,
    /// The attempt of this run (1 unless the workflow has a retry policy).
    pub attempt: u32,
    /// The run this one continued from, if any.
    pub continued_from_run_id: Option<String>,
    /// The first run of the chain.
    pub first_execution_run_id: String,
    /// The parent workflow (id, run id), for child workflows.
    pub parent: Option<(String, String)>,
    /// When the run started.
    pub start_time: Option<SystemTime>,
    /// The run's timeout, if set.
    pub run_timeout: Option<Duration>,
    /// The execution's timeout, if set.
    pub execution_timeout: Option<Duration>,
}

/// A request to continue as new: built by
/// [`WorkflowContext::continue_as_new`] or by hand for a different workflow type, task
/// queue or timeouts.
#[derive(Clone, Debug)]
pub struct ContinueAsNew {
    pub(crate) command: ContinueAsNewWorkflowExecution,
    pub(crate) encode_error: Option<String>,
}

impl ContinueAsNew {
    /// Continue as workflow `W` with `args` (the run function's argument tuple).
    pub fn new<W: WorkflowType>(args: impl Args) -> Self {
        let (arguments, encode_error) = match args.to_payloads() {
            Ok(p) => (p, None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        Self {
            command: ContinueAsNewWorkflowExecution {
                workflow_type: W::NAME.to_owned(),
                arguments,
                ..Default::default()
            },
            encode_error,
        }
    }

    /// The new run's task queue (default: this run's).
    pub fn task_queue(mut self, task_queue: impl Into<String>) -> Self {
        self.command.task_queue = task_queue.into();
        self
    }

    /// The new run's timeout.
    pub fn run_timeout(mut self, timeout: Duration) -> Self {
        self.command.workflow_run_timeout = timeout.try_into().ok();
        self
    }

    /// The new run's retry policy.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.command.retry_policy = Some(policy.into_proto());
        self
    }

    pub(crate) fn workflow_type(&self) -> &str {
        &self.command.workflow_type
    }

    pub(crate) fn into_command(self) -> Result<ContinueAsNewWorkflowExecution, PayloadError> {
        match self.encode_error {
            Some(e) => Err(PayloadError::Codec(format!(
                "continue-as-new arguments: {e}"
            ))),
            None => Ok(self.command),
        }
    }
}

/// A cancellation failure created on the workflow side.
pub(crate) fn cancelled_failure(message: &str) -> ProtoFailure {
    ProtoFailure {
        message: message.to_owned(),
        source: FAILURE_SOURCE.to_owned(),
        failure_info: Some(FailureInfo::CanceledFailureInfo(
            CanceledFailureInfo::default(),
        )),
        ..Default::default()
    }
}
