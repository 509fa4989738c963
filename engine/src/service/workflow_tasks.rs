//! Workflow task polls (normal and sticky queues) and a worker's answers: completed,
//! failed, and the worker shutting down.

use std::sync::Arc;

use tonic::{Request, Status};

use super::{
    long_poll::{poll_deadline, Answer},
    Service,
};
use crate::{
    errors,
    matching::{PollerKind, Token},
    proto::{enums::TaskQueueKind, service::*},
    state::Topic,
    store::Store,
    validate,
};

/// The run and scheduled event id a workflow task token names.
fn workflow_token(token: &[u8], namespace: &str) -> Result<(String, i64), Status> {
    match Token::decode(token, namespace)? {
        Token::Workflow { run, scheduled, .. } => Ok((run, scheduled)),
        _ => Err(errors::wrong_token("workflow")),
    }
}

/// Whether a workflow task poll's answer may leave before it is on disk: an empty one, or
/// a query without history (to the worker that has the run cached).
fn from_memory(task: &Option<PollWorkflowTaskQueueResponse>) -> bool {
    task.as_ref().is_none_or(|task| {
        task.query.is_some() && task.history.as_ref().is_none_or(|h| h.events.is_empty())
    })
}

impl Service {
    pub(super) async fn poll_workflow_task(
        &self,
        request: Request<PollWorkflowTaskQueueRequest>,
    ) -> Result<PollWorkflowTaskQueueResponse, Status> {
        let deadline = poll_deadline(&request);
        let r = request.into_inner();
        let queue = r.task_queue.clone().unwrap_or_default();
        self.store
            .transaction(|state| {
                state.check_namespace(&r.namespace)?;
                let now = state.now;
                state.pollers.record(
                    &r.namespace,
                    &queue.name,
                    PollerKind::Workflow,
                    &r.identity,
                    now,
                );
                Ok::<_, Status>(())
            })
            .await?;
        let sticky = queue.kind == TaskQueueKind::Sticky as i32;
        let _poller = sticky.then(|| StickyPoll::begin(&self.store, &queue.name));
        let topic = Topic::Queue(r.namespace.clone(), queue.name.clone());
        let task = self
            .wait_for(deadline, topic, Answer::Staged { from_memory }, |state| {
                // A sticky queue whose worker shut down answers its held polls empty.
                if sticky && state.sticky.is_closed(&queue.name) {
                    return Ok(Some(None));
                }
                Ok(state
                    .dispatch_workflow_task(&r.namespace, &queue.name, &r.identity)
                    .map(Some))
            })
            .await?
            .flatten();
        Ok(task.unwrap_or_default())
    }

    pub(super) async fn workflow_task_completed(
        &self,
        request: Request<RespondWorkflowTaskCompletedRequest>,
    ) -> Result<RespondWorkflowTaskCompletedResponse, Status> {
        let r = request.into_inner();
        let (run_id, scheduled) = workflow_token(&r.task_token, &r.namespace)?;
        self.store
            .transaction(|state| state.complete_workflow_task(&run_id, scheduled, r))
            .await
    }

    pub(super) async fn workflow_task_failed(
        &self,
        request: Request<RespondWorkflowTaskFailedRequest>,
    ) -> Result<RespondWorkflowTaskFailedResponse, Status> {
        let mut r = request.into_inner();
        let (run_id, scheduled) = workflow_token(&r.task_token, &r.namespace)?;
        r.failure = r.failure.map(|failure| {
            validate::limit_failure_size(
                self.store.limits(),
                failure,
                true,
                "RespondWorkflowTaskFailedRequest.failure",
                &format!("run `{run_id}`"),
            )
        });
        validate::limit_optional_failure(&mut r.failure);
        self.store
            .transaction(|state| {
                let run = state
                    .runs
                    .get(&run_id)
                    .ok_or_else(|| errors::run_gone(&run_id))?;
                run.started_task(scheduled)?;
                state
                    .with_run(&run_id, |run, ctx| {
                        run.fail_workflow_task(ctx, r, scheduled)
                    })
                    .unwrap_or_else(|| Err(errors::run_gone(&run_id)))
            })
            .await?;
        Ok(RespondWorkflowTaskFailedResponse::default())
    }

    pub(super) async fn shutdown_worker(
        &self,
        request: Request<ShutdownWorkerRequest>,
    ) -> Result<ShutdownWorkerResponse, Status> {
        let r = request.into_inner();
        if !r.sticky_task_queue.is_empty() {
            self.store
                .transaction(|state| state.close_sticky_queue(&r.namespace, &r.sticky_task_queue))
                .await;
        }
        Ok(ShutdownWorkerResponse::default())
    }
}

/// A sticky poll in progress: counted from its start until it is answered or dropped (a
/// client that goes away drops it), so that tasks go to a sticky queue only while its
/// worker polls it.
struct StickyPoll {
    store: Arc<Store>,
    queue: String,
}

impl StickyPoll {
    fn begin(store: &Arc<Store>, queue: &str) -> Self {
        // Only matching's bookkeeping changes: nothing to write.
        let _ = store.apply(|state| {
            let now = state.now;
            state.sticky.poll(queue, true, now)
        });
        Self {
            store: store.clone(),
            queue: queue.to_owned(),
        }
    }
}

impl Drop for StickyPoll {
    fn drop(&mut self) {
        // A destructor must not panic: it may run while a panic unwinds (a poll whose
        // engine stopped under it), and a second panic aborts the process.
        let _ = self.store.try_apply(|state| {
            let now = state.now;
            state.sticky.poll(&self.queue, false, now)
        });
    }
}
