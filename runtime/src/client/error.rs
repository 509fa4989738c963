//! What can go wrong talking to Temporal.

use crate::{converter::PayloadError, failure::Failure};

/// An error from a client call. Each message names the address or workflow involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server could not be reached.
    #[error("could not connect to Temporal at {address}: {message} (is the server running, and is the address right?)")]
    Connect {
        /// The address tried.
        address: String,
        /// What failed.
        message: String,
    },
    /// The client was configured wrongly (missing file, bad certificate, no task queue).
    #[error("client configuration: {0}")]
    Config(String),
    /// A call failed at the server.
    #[error("{operation} for workflow `{workflow_id}` failed: {code:?}: {message}")]
    Rpc {
        /// The call.
        operation: &'static str,
        /// The workflow (empty for calls about none).
        workflow_id: String,
        /// The gRPC status code.
        code: tonic::Code,
        /// The server's message.
        message: String,
    },
    /// A workflow with this id is already running.
    #[error("workflow `{workflow_id}` is already started (run `{run_id}`): choose another id, or an id conflict policy")]
    AlreadyStarted {
        /// The workflow id.
        workflow_id: String,
        /// The running run.
        run_id: String,
    },
    /// No such workflow.
    #[error("workflow `{workflow_id}` not found: {message}")]
    NotFound {
        /// The workflow id.
        workflow_id: String,
        /// The server's message.
        message: String,
    },
    /// The workflow closed without a result.
    #[error("workflow `{workflow_id}` {how}: {failure}")]
    WorkflowFailed {
        /// The workflow id.
        workflow_id: String,
        /// failed, was cancelled, terminated or timed out.
        how: &'static str,
        /// The failure with its cause chain.
        failure: Failure,
    },
    /// An update was rejected by its validator, or its handler failed.
    #[error("update `{update}` of workflow `{workflow_id}` failed: {failure}")]
    UpdateFailed {
        /// The update name.
        update: String,
        /// The workflow id.
        workflow_id: String,
        /// Why.
        failure: Failure,
    },
    /// A query failed in the workflow (unknown query, bad arguments, a handler error).
    #[error("query `{query}` of workflow `{workflow_id}` failed: {message}")]
    QueryFailed {
        /// The query name.
        query: String,
        /// The workflow id.
        workflow_id: String,
        /// Why.
        message: String,
    },
    /// A payload could not be encoded or decoded.
    #[error(transparent)]
    Payload(#[from] PayloadError),
}

impl ClientError {
    pub(crate) fn rpc(operation: &'static str, workflow_id: &str, status: tonic::Status) -> Self {
        match status.code() {
            tonic::Code::NotFound => Self::NotFound {
                workflow_id: workflow_id.to_owned(),
                message: status.message().to_owned(),
            },
            code => Self::Rpc {
                operation,
                workflow_id: workflow_id.to_owned(),
                code,
                message: status.message().to_owned(),
            },
        }
    }

    /// The failure behind a failed workflow or update, with its cause chain.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Self::WorkflowFailed { failure, .. } | Self::UpdateFailed { failure, .. } => {
                Some(failure)
            }
            _ => None,
        }
    }
}

/// `google.rpc.Status`: how a gRPC status carries typed details (`Any`s).
#[derive(Clone, PartialEq, prost::Message)]
pub(super) struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub(super) code: i32,
    #[prost(string, tag = "2")]
    pub(super) message: String,
    #[prost(message, repeated, tag = "3")]
    pub(super) details: Vec<prost_wkt_types::Any>,
}

impl RpcStatus {
    /// The typed details of a status's `details` bytes (none if they are not a status).
    pub(super) fn decode_details(details: &[u8]) -> Vec<prost_wkt_types::Any> {
        <Self as prost::Message>::decode(details)
            .map(|s| s.details)
            .unwrap_or_default()
    }
}
