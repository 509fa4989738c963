//! The errors the engine answers, one named constructor each, so that one mistake has one
//! wording (and, where Temporal's clients decode one, its failure detail) everywhere.

use std::{path::Path, time::SystemTime};

use prost::Message as _;
use tonic::{Code, Status};

use crate::proto::{self, errordetails};

/// `google.rpc.Status`, to carry a typed detail the way Temporal's clients decode it.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_wkt_types::Any>,
}

/// The typed details a status carries (none if it carries none, or garbage).
pub(crate) fn details_of(status: &Status) -> Vec<prost_wkt_types::Any> {
    RpcStatus::decode(status.details())
        .map(|s| s.details)
        .unwrap_or_default()
}

/// A status with one typed detail (`type_name` is its full protobuf name).
pub(crate) fn with_detail<M: prost::Message>(
    code: Code,
    message: String,
    type_name: &str,
    detail: &M,
) -> Status {
    let status = RpcStatus {
        code: code as i32,
        message: message.clone(),
        details: vec![proto::pack(type_name, detail)],
    };
    Status::with_details(code, message, status.encode_to_vec().into())
}

/// The namespace is not one the engine serves.
pub(crate) fn namespace_not_found(namespace: &str) -> Status {
    with_detail(
        Code::NotFound,
        format!("Namespace {namespace} is not found."),
        "temporal.api.errordetails.v1.NamespaceNotFoundFailure",
        &errordetails::NamespaceNotFoundFailure {
            namespace: namespace.to_owned(),
        },
    )
}

/// No run `run_id` of workflow `workflow_id` (no run id: no run of it at all), in
/// Temporal's words.
pub(crate) fn workflow_not_found(workflow_id: &str, run_id: &str) -> Status {
    if run_id.is_empty() {
        not_found(format!("workflow not found for ID: {workflow_id}"))
    } else {
        not_found(format!(
            "workflow execution not found for workflow ID \"{workflow_id}\" and run ID \"{run_id}\""
        ))
    }
}

/// The run of `workflow_id` does not descend from the first run `first_run_id` a request
/// names.
pub(crate) fn first_run_mismatch(workflow_id: &str, first_run_id: &str) -> Status {
    not_found(format!(
        "workflow execution not found: no run of `{workflow_id}` descends from the first run \
         `{first_run_id}`"
    ))
}

/// `NOT_FOUND` with the `NotFoundFailure` detail Temporal's clients look for.
pub(crate) fn not_found(message: impl Into<String>) -> Status {
    with_detail(
        Code::NotFound,
        message.into(),
        "temporal.api.errordetails.v1.NotFoundFailure",
        &errordetails::NotFoundFailure::default(),
    )
}

/// The workflow closed before it accepted the update (Temporal's words).
pub(crate) fn update_aborted() -> Status {
    not_found("workflow update was aborted by closing workflow")
}

/// Waiting for an update only to be admitted: Temporal refuses it (with these words).
pub(crate) fn update_admitted_wait() -> Status {
    with_detail(
        Code::PermissionDenied,
        "UpdateWorkflowExecution issued asynchronously and waiting on update admitted is not \
         supported."
            .to_owned(),
        "temporal.api.errordetails.v1.PermissionDeniedFailure",
        &errordetails::PermissionDeniedFailure::default(),
    )
}

/// The run's stored rows were found damaged when the engine opened its file.
pub(crate) fn run_damaged(workflow_id: &str, run_id: &str, what: &str) -> Status {
    Status::data_loss(format!(
        "workflow `{workflow_id}` run `{run_id}` cannot be served: its stored rows are damaged \
         ({what}); the engine set it aside when it opened its database file, left its rows \
         there unchanged, and serves every other workflow"
    ))
}

/// A task token names a run that no longer exists.
pub(crate) fn run_gone(run_id: &str) -> Status {
    not_found(format!("workflow run `{run_id}` not found: it was deleted"))
}

/// The run is closed: it takes no more signals, cancels or terminations.
pub(crate) fn already_completed(workflow_id: &str) -> Status {
    not_found(format!(
        "workflow execution already completed: `{workflow_id}`"
    ))
}

/// `AlreadyExists` with the `WorkflowExecutionAlreadyStartedFailure` detail clients decode.
pub(crate) fn already_started(workflow_id: &str, run_id: &str, request_id: &str) -> Status {
    with_detail(
        Code::AlreadyExists,
        // Temporal's words.
        format!(
            "Workflow execution is already running. WorkflowId: {workflow_id}, RunId: {run_id}."
        ),
        "temporal.api.errordetails.v1.WorkflowExecutionAlreadyStartedFailure",
        &errordetails::WorkflowExecutionAlreadyStartedFailure {
            start_request_id: request_id.to_owned(),
            run_id: run_id.to_owned(),
            ..Default::default()
        },
    )
}

/// A required request field is empty.
pub(crate) fn missing(field: &str) -> Status {
    Status::invalid_argument(format!("{field} is not set"))
}

/// A task token that is not JSON of a known shape.
pub(crate) fn malformed_token() -> Status {
    not_found("unknown or malformed task token")
}

/// A task token handed out in namespace `token` used in a request naming `request`.
pub(crate) fn token_namespace_mismatch(token: &str, request: &str) -> Status {
    Status::invalid_argument(format!(
        "Operation requested with a token from a different namespace: the token is from \
         namespace `{token}`, the request names `{request}`"
    ))
}

/// A task token of the wrong kind for the call (`kind`: workflow, activity or query).
pub(crate) fn wrong_token(kind: &str) -> Status {
    Status::invalid_argument(format!("not a {kind} task token"))
}

/// No started workflow task matches the token.
pub(crate) fn workflow_task_not_found(workflow_id: &str, run_id: &str, scheduled: i64) -> Status {
    not_found(format!(
        "workflow task not found: workflow `{workflow_id}` run `{run_id}` has no started task \
         scheduled at event {scheduled}"
    ))
}

/// No running attempt of the activity matches the token.
pub(crate) fn activity_task_not_found(workflow_id: &str, scheduled: i64, attempt: i32) -> Status {
    not_found(format!(
        "activity task not found: workflow `{workflow_id}` has no running attempt {attempt} of \
         the activity scheduled at event {scheduled}"
    ))
}

/// The workflow has no pending activity with this id, in Temporal's words.
pub(crate) fn activity_not_found(activity_id: &str) -> Status {
    not_found(format!(
        "cannot find pending activity with ActivityID {activity_id}, check workflow \
         execution history for more details"
    ))
}

/// A worker says it cancelled an activity that no one asked to cancel, refused in
/// Temporal's words.
pub(crate) fn activity_not_cancel_requested() -> Status {
    Status::invalid_argument(
        "unable to mark activity as canceled without activity being request canceled first",
    )
}

/// The run has no update with this id.
pub(crate) fn update_not_found(update_id: &str) -> Status {
    not_found(format!("update `{update_id}` not found"))
}

/// The run has as many updates in flight as it may have (Temporal's wording).
pub(crate) fn too_many_updates_in_flight(limit: usize) -> Status {
    Status::resource_exhausted(format!(
        "limit on number of concurrent in-flight updates has been reached ({limit})"
    ))
}

/// The run has received as many updates as it may (Temporal's wording).
pub(crate) fn too_many_updates(limit: usize) -> Status {
    Status::failed_precondition(format!(
        "limit on number of total updates has been reached ({limit})"
    ))
}

/// A query answer for a query no longer waiting.
pub(crate) fn query_not_found() -> Status {
    not_found("query not found: it may have timed out")
}

/// No schedule with this id.
pub(crate) fn schedule_not_found(schedule_id: &str) -> Status {
    not_found(format!("schedule `{schedule_id}` is not found"))
}

/// The database cannot be written, and this call, which would change it, was refused
/// before it changed anything.
pub(crate) fn refused_unwritable(path: &Path, cause: &str, since: SystemTime) -> Status {
    let failing = since.elapsed().unwrap_or_default().as_secs();
    Status::unavailable(format!(
        "cannot write the database {}: {cause} (for {failing} s); this call changed nothing — \
         retry when the disk allows",
        path.display(),
    ))
}

/// The database stopped being writable while this call's change waited to be written.
pub(crate) fn unwritten(path: &Path, cause: &str) -> Status {
    Status::unavailable(format!(
        "cannot write the database {}: {cause}; the change is kept in memory and will be \
         written when the disk allows — retry (with the same request id it applies once)",
        path.display(),
    ))
}

/// A call without an API key to an engine that requires one.
pub(crate) fn missing_api_key() -> Status {
    Status::unauthenticated(
        "this engine requires an API key: send the metadata `authorization: Bearer <key>` \
         (the api_key option of Temporal's SDKs and of Capstan's client)",
    )
}

/// A call whose API key is not the engine's (the key sent is never repeated).
pub(crate) fn wrong_api_key() -> Status {
    Status::unauthenticated(
        "the API key sent in `authorization: Bearer <key>` is not the one this engine was \
         started with",
    )
}

/// The engine is shutting down.
pub(crate) fn stopping() -> Status {
    Status::unavailable("the engine is stopping")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detail_decodes_as_temporals_clients_decode_it() {
        let status = namespace_not_found("nope");
        assert_eq!(status.code(), Code::NotFound);
        let decoded = RpcStatus::decode(status.details()).unwrap();
        assert_eq!(decoded.message, "Namespace nope is not found.");
        assert!(decoded.details[0]
            .type_url
            .ends_with("temporal.api.errordetails.v1.NamespaceNotFoundFailure"));
        let detail =
            errordetails::NamespaceNotFoundFailure::decode(decoded.details[0].value.as_slice())
                .unwrap();
        assert_eq!(detail.namespace, "nope");
    }
}
