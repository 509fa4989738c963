//! Activity task polls, heartbeats, and a worker's answers (completed, failed, cancelled),
//! each by task token or by workflow and activity id.

use tonic::{Request, Status};

use super::{
    long_poll::{poll_deadline, Answer},
    Service,
};
use crate::{
    errors,
    matching::{PollerKind, Token},
    proto::{
        common::{Payloads, WorkflowExecution},
        failure::failure::FailureInfo,
        service::*,
    },
    run::{Ctx, HeartbeatAnswer, Run},
    state::{State, Topic},
    validate,
};

/// The activity attempt a worker answers for: named by its task token, or (the `ById`
/// methods) by its workflow and activity id, meaning the current attempt.
enum ActivityTarget {
    Token {
        run_id: String,
        scheduled: i64,
        attempt: i32,
    },
    ById {
        namespace: String,
        execution: WorkflowExecution,
        activity_id: String,
    },
}

impl ActivityTarget {
    fn token(token: &[u8], namespace: &str) -> Result<Self, Status> {
        match Token::decode(token, namespace)? {
            Token::Activity {
                run,
                scheduled,
                attempt,
                ..
            } => Ok(Self::Token {
                run_id: run,
                scheduled,
                attempt,
            }),
            _ => Err(errors::wrong_token("activity")),
        }
    }

    fn by_id(namespace: String, workflow_id: String, run_id: String, activity_id: String) -> Self {
        Self::ById {
            namespace,
            execution: WorkflowExecution {
                workflow_id,
                run_id,
            },
            activity_id,
        }
    }

    /// The run, for the log.
    fn describe(&self) -> String {
        match self {
            Self::Token { run_id, .. } => format!("run `{run_id}`"),
            Self::ById { execution, .. } => format!("workflow `{}`", execution.workflow_id),
        }
    }

    /// `(run id, scheduled event id, attempt)` of a running attempt.
    fn resolve(self, state: &State) -> Result<(String, i64, i32), Status> {
        let (run_id, scheduled, attempt) = match self {
            Self::Token {
                run_id,
                scheduled,
                attempt,
            } => (run_id, scheduled, attempt),
            Self::ById {
                namespace,
                execution,
                activity_id,
            } => {
                if execution.workflow_id.is_empty() || activity_id.is_empty() {
                    return Err(Status::invalid_argument(
                        "the workflow id and the activity id are both required",
                    ));
                }
                let run_id = state.resolve_run_id(&namespace, Some(&execution))?;
                let (scheduled, attempt) = state.runs[&run_id].activity_by_id(&activity_id)?;
                (run_id, scheduled, attempt)
            }
        };
        let run = state
            .runs
            .get(&run_id)
            .ok_or_else(|| errors::run_gone(&run_id))?;
        run.check_started_activity(scheduled, attempt)?;
        Ok((run_id, scheduled, attempt))
    }
}

impl Service {
    /// Runs `f` on the running activity attempt `target` names, in one transaction.
    async fn on_activity<R>(
        &self,
        target: ActivityTarget,
        f: impl FnOnce(&mut Run, &mut Ctx<'_>, i64) -> R,
    ) -> Result<R, Status> {
        self.store
            .transaction(|state| {
                let (run_id, scheduled, _) = target.resolve(state)?;
                state
                    .with_run(&run_id, |run, ctx| f(run, ctx, scheduled))
                    .ok_or_else(|| errors::run_gone(&run_id))
            })
            .await
    }

    /// Whether a blob an activity worker sent in `field` is over the blob limit (logged
    /// over the warning limit).
    fn too_large(&self, target: &ActivityTarget, field: &str, blob: Option<&Payloads>) -> bool {
        self.check_payloads(field, blob, &target.describe())
            .is_err()
    }

    /// Fails the attempt with a non-retryable server failure saying `message`, as
    /// Temporal does for an answer over the blob limit.
    async fn fail_for_size(
        &self,
        target: ActivityTarget,
        message: &str,
        identity: String,
    ) -> Result<(), Status> {
        let failure = validate::server_failure(message, true);
        self.on_activity(target, |run, ctx, s| {
            run.fail_activity(ctx, s, failure, None, identity)
        })
        .await
    }

    /// Records a heartbeat; details over the blob limit fail the attempt instead, and the
    /// worker is told to cancel it.
    async fn heartbeat_within_limits(
        &self,
        target: ActivityTarget,
        request: &str,
        details: Option<Payloads>,
        identity: String,
    ) -> Result<HeartbeatAnswer, Status> {
        if self.too_large(&target, &format!("{request}.details"), details.as_ref()) {
            self.fail_for_size(target, validate::HEARTBEAT_TOO_LARGE, identity)
                .await?;
            return Ok(HeartbeatAnswer {
                cancel_requested: true,
                ..Default::default()
            });
        }
        self.on_activity(target, |run, ctx, s| run.record_heartbeat(ctx, s, details))
            .await
    }

    /// Completes the attempt; a result over the blob limit fails it instead.
    async fn complete_within_limits(
        &self,
        target: ActivityTarget,
        request: &str,
        result: Option<Payloads>,
        identity: String,
    ) -> Result<(), Status> {
        if self.too_large(&target, &format!("{request}.result"), result.as_ref()) {
            return self
                .fail_for_size(target, validate::RESULT_TOO_LARGE, identity)
                .await;
        }
        self.on_activity(target, |run, ctx, s| {
            run.complete_activity(ctx, s, result, identity)
        })
        .await
    }

    /// Cancels the attempt; details over the blob limit fail it instead.
    async fn cancel_within_limits(
        &self,
        target: ActivityTarget,
        request: &str,
        details: Option<Payloads>,
        identity: String,
    ) -> Result<(), Status> {
        if self.too_large(&target, &format!("{request}.details"), details.as_ref()) {
            return self
                .fail_for_size(target, validate::CANCEL_DETAILS_TOO_LARGE, identity)
                .await;
        }
        self.on_activity(target, |run, ctx, s| {
            run.worker_cancels_activity(ctx, s, details, identity)
        })
        .await?
    }

    pub(super) async fn poll_activity_task(
        &self,
        request: Request<PollActivityTaskQueueRequest>,
    ) -> Result<PollActivityTaskQueueResponse, Status> {
        let deadline = poll_deadline(&request);
        let r = request.into_inner();
        let queue = r.task_queue.clone().unwrap_or_default().name;
        self.store
            .transaction(|state| {
                state.check_namespace(&r.namespace)?;
                let now = state.now;
                state
                    .pollers
                    .record(&r.namespace, &queue, PollerKind::Activity, &r.identity, now);
                Ok::<_, Status>(())
            })
            .await?;
        let topic = Topic::Queue(r.namespace.clone(), queue.clone());
        let task = self
            .wait_for(deadline, topic, Answer::Written, |state| {
                Ok(state.dispatch_activity_task(&r.namespace, &queue, &r.identity))
            })
            .await?;
        Ok(task.unwrap_or_default())
    }

    pub(super) async fn heartbeat(
        &self,
        request: Request<RecordActivityTaskHeartbeatRequest>,
    ) -> Result<RecordActivityTaskHeartbeatResponse, Status> {
        let r = request.into_inner();
        let target = ActivityTarget::token(&r.task_token, &r.namespace)?;
        let answer = self
            .heartbeat_within_limits(
                target,
                "RecordActivityTaskHeartbeatRequest",
                r.details,
                r.identity,
            )
            .await?;
        Ok(RecordActivityTaskHeartbeatResponse {
            cancel_requested: answer.cancel_requested,
            activity_paused: answer.paused,
            activity_reset: answer.reset,
        })
    }

    pub(super) async fn heartbeat_by_id(
        &self,
        request: Request<RecordActivityTaskHeartbeatByIdRequest>,
    ) -> Result<RecordActivityTaskHeartbeatByIdResponse, Status> {
        let r = request.into_inner();
        let target = ActivityTarget::by_id(r.namespace, r.workflow_id, r.run_id, r.activity_id);
        let answer = self
            .heartbeat_within_limits(
                target,
                "RecordActivityTaskHeartbeatByIdRequest",
                r.details,
                r.identity,
            )
            .await?;
        Ok(RecordActivityTaskHeartbeatByIdResponse {
            cancel_requested: answer.cancel_requested,
            activity_paused: answer.paused,
            activity_reset: answer.reset,
        })
    }

    pub(super) async fn activity_completed(
        &self,
        request: Request<RespondActivityTaskCompletedRequest>,
    ) -> Result<RespondActivityTaskCompletedResponse, Status> {
        let r = request.into_inner();
        let target = ActivityTarget::token(&r.task_token, &r.namespace)?;
        self.complete_within_limits(
            target,
            "RespondActivityTaskCompletedRequest",
            r.result,
            r.identity,
        )
        .await?;
        Ok(RespondActivityTaskCompletedResponse::default())
    }

    pub(super) async fn activity_completed_by_id(
        &self,
        request: Request<RespondActivityTaskCompletedByIdRequest>,
    ) -> Result<RespondActivityTaskCompletedByIdResponse, Status> {
        let r = request.into_inner();
        let target = ActivityTarget::by_id(r.namespace, r.workflow_id, r.run_id, r.activity_id);
        self.complete_within_limits(
            target,
            "RespondActivityTaskCompletedByIdRequest",
            r.result,
            r.identity,
        )
        .await?;
        Ok(RespondActivityTaskCompletedByIdResponse::default())
    }

    pub(super) async fn activity_failed(
        &self,
        request: Request<RespondActivityTaskFailedRequest>,
    ) -> Result<RespondActivityTaskFailedResponse, Status> {
        let r = request.into_inner();
        // As on Temporal (which asks it only of this method, not of the ById one).
        if r.failure.as_ref().is_some_and(|f| {
            !matches!(f.failure_info, Some(FailureInfo::ApplicationFailureInfo(_)))
        }) {
            return Err(Status::invalid_argument(
                "Failure must have ApplicationFailureInfo.",
            ));
        }
        let target = ActivityTarget::token(&r.task_token, &r.namespace)?;
        let mut failure = validate::limit_failure_size(
            self.store.limits(),
            r.failure.unwrap_or_default(),
            false,
            "RespondActivityTaskFailedRequest.failure",
            &target.describe(),
        );
        validate::limit_failure(&mut failure);
        self.on_activity(target, |run, ctx, s| {
            run.fail_activity(ctx, s, failure, r.last_heartbeat_details, r.identity)
        })
        .await?;
        Ok(RespondActivityTaskFailedResponse::default())
    }

    pub(super) async fn activity_failed_by_id(
        &self,
        request: Request<RespondActivityTaskFailedByIdRequest>,
    ) -> Result<RespondActivityTaskFailedByIdResponse, Status> {
        let r = request.into_inner();
        let target = ActivityTarget::by_id(r.namespace, r.workflow_id, r.run_id, r.activity_id);
        let mut failure = validate::limit_failure_size(
            self.store.limits(),
            r.failure.unwrap_or_default(),
            false,
            "RespondActivityTaskFailedByIdRequest.failure",
            &target.describe(),
        );
        validate::limit_failure(&mut failure);
        self.on_activity(target, |run, ctx, s| {
            run.fail_activity(ctx, s, failure, r.last_heartbeat_details, r.identity)
        })
        .await?;
        Ok(RespondActivityTaskFailedByIdResponse::default())
    }

    pub(super) async fn activity_canceled(
        &self,
        request: Request<RespondActivityTaskCanceledRequest>,
    ) -> Result<RespondActivityTaskCanceledResponse, Status> {
        let r = request.into_inner();
        let target = ActivityTarget::token(&r.task_token, &r.namespace)?;
        self.cancel_within_limits(
            target,
            "RespondActivityTaskCanceledRequest",
            r.details,
            r.identity,
        )
        .await?;
        Ok(RespondActivityTaskCanceledResponse::default())
    }

    pub(super) async fn activity_canceled_by_id(
        &self,
        request: Request<RespondActivityTaskCanceledByIdRequest>,
    ) -> Result<RespondActivityTaskCanceledByIdResponse, Status> {
        let r = request.into_inner();
        let target = ActivityTarget::by_id(r.namespace, r.workflow_id, r.run_id, r.activity_id);
        self.cancel_within_limits(
            target,
            "RespondActivityTaskCanceledByIdRequest",
            r.details,
            r.identity,
        )
        .await?;
        Ok(RespondActivityTaskCanceledByIdResponse::default())
    }
}
