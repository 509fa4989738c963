//! Queries: held until a worker answers from the run's state, or the deadline passes.

use tonic::{Request, Status};

use super::{long_poll::poll_deadline, Service};
use crate::{
    errors,
    matching::Token,
    proto::{
        enums::{QueryRejectCondition, QueryResultType, WorkflowExecutionStatus},
        query::QueryRejected,
        service::*,
    },
    store::Store,
    validate,
};

/// Whether a query with reject condition `condition` is refused by a run in `status`
/// (as on Temporal: `NOT_OPEN` refuses a closed run, `NOT_COMPLETED_CLEANLY` one that
/// closed otherwise than completed).
fn rejects(condition: i32, status: WorkflowExecutionStatus) -> bool {
    use WorkflowExecutionStatus as S;
    let open = matches!(status, S::Running | S::Unspecified);
    match QueryRejectCondition::try_from(condition) {
        Ok(QueryRejectCondition::NotOpen) => !open,
        Ok(QueryRejectCondition::NotCompletedCleanly) => !open && status != S::Completed,
        _ => false,
    }
}

impl Service {
    pub(super) async fn query(
        &self,
        request: Request<QueryWorkflowRequest>,
    ) -> Result<QueryWorkflowResponse, Status> {
        let deadline = poll_deadline(&request);
        let r = request.into_inner();
        let query = r.query.ok_or_else(|| errors::missing("query"))?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        let id = uuid::Uuid::new_v4().to_string();
        // From here on, however the call ends (even dropped while its transaction waits
        // for the disk, as a client that hangs up does), the query leaves the engine.
        let forget = Forget {
            store: &self.store,
            id: id.clone(),
        };
        let rejected = self
            .store
            .transaction(|state| {
                let run_id = state.resolve_run_id(&r.namespace, r.execution.as_ref())?;
                let status = state.runs[&run_id].status;
                if rejects(r.query_reject_condition, status) {
                    return Ok(Some(status));
                }
                state.enqueue_query(&run_id, id.clone(), query, reply);
                Ok::<_, Status>(None)
            })
            .await?;
        if let Some(status) = rejected {
            return Ok(QueryWorkflowResponse {
                query_rejected: Some(QueryRejected {
                    status: status as i32,
                }),
                ..Default::default()
            });
        }
        let answer = tokio::time::timeout_at(deadline, answer).await;
        drop(forget);
        match answer {
            Ok(Ok(Ok(result))) => Ok(QueryWorkflowResponse {
                query_result: result,
                ..Default::default()
            }),
            Ok(Ok(Err(message))) => Err(Status::invalid_argument(message)),
            Ok(Err(_)) => Err(errors::stopping()),
            Err(_) => Err(Status::deadline_exceeded(
                "no worker answered the query in time: is a worker polling the workflow's \
                 task queue?",
            )),
        }
    }

    pub(super) async fn query_answered(
        &self,
        request: Request<RespondQueryTaskCompletedRequest>,
    ) -> Result<RespondQueryTaskCompletedResponse, Status> {
        let r = request.into_inner();
        let Token::Query { id, .. } = Token::decode(&r.task_token, &r.namespace)? else {
            return Err(errors::wrong_token("query"));
        };
        let reply = self
            .store
            .transaction(|state| state.queries.take_reply(&id))
            .await
            .ok_or_else(errors::query_not_found)?;
        let answer = if r.completed_type == QueryResultType::Answered as i32 {
            // An answer over the blob limit fails the query, as on Temporal.
            validate::blob_size(
                self.store.limits(),
                validate::BLOB_TOO_LARGE,
                "RespondQueryTaskCompletedRequest.query_result",
                validate::size_of(r.query_result.as_ref()),
                &format!("query `{id}`"),
            )
            .map(|()| r.query_result)
        } else if !r.error_message.is_empty() {
            Err(r.error_message)
        } else {
            Err(r.failure.map(|f| f.message).unwrap_or_default())
        };
        let _ = reply.send(answer);
        Ok(RespondQueryTaskCompletedResponse::default())
    }
}

/// Removes a query from the engine when its call ends, however it ends: answered, timed
/// out, or dropped mid-wait because the client hung up (before, such a query stayed in
/// memory for good). Removing it may leave the engine idle: a virtual clock may move on.
struct Forget<'a> {
    store: &'a Store,
    id: String,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        // Nothing to write: queries live in memory only.
        let _ = self.store.try_apply(|state| state.forget_query(&self.id));
    }
}
