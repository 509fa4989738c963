//! Updates: admitted to the run, then held until the stage the caller waits for.

use tonic::{Request, Status};

use super::{
    long_poll::{poll_deadline, Answer},
    Service,
};
use crate::{
    errors,
    proto::{
        common::WorkflowExecution,
        enums::UpdateWorkflowExecutionLifecycleStage as Stage,
        service::*,
        update::{self, Outcome, UpdateRef, WaitPolicy},
    },
    state::{State, Topic},
};

/// The stage a caller waits for (accepted unless it says otherwise).
fn wanted_stage(policy: Option<WaitPolicy>) -> Stage {
    policy
        .map(|p| p.lifecycle_stage())
        .filter(|s| *s != Stage::Unspecified)
        .unwrap_or(Stage::Accepted)
}

/// An update request, checked: what to admit, and the stage its caller waits for.
pub(super) struct CheckedUpdate {
    update: update::Request,
    id: String,
    workflow_id: String,
    stage: Stage,
}

/// Admits a checked update to run `run_id`, in the caller's transaction (an update with a
/// known id is the same update); a closed run takes none.
pub(super) fn admit(
    state: &mut State,
    run_id: &str,
    checked: &CheckedUpdate,
) -> Result<(), Status> {
    let run = &state.runs[run_id];
    if run.has_update(&checked.id) {
        return Ok(());
    }
    if !run.is_open() {
        return Err(errors::already_completed(&run.workflow_id));
    }
    state
        .with_run(run_id, |run, ctx| {
            run.admit_update(ctx, checked.update.clone())
        })
        .unwrap_or(Ok(()))
}

impl Service {
    /// Waits until update `update_id` of run `run_id` reaches `stage` (or the deadline:
    /// then it is admitted).
    async fn update_reached(
        &self,
        deadline: tokio::time::Instant,
        run_id: &str,
        update_id: &str,
        stage: Stage,
    ) -> Result<(i32, Option<Outcome>), Status> {
        let reached = self
            .wait_for(
                deadline,
                Topic::Run(run_id.to_owned()),
                Answer::Written,
                |state| {
                    Ok(state
                        .runs
                        .get(run_id)
                        .map(|run| run.update_stage(update_id, stage))
                        .transpose()?
                        .flatten())
                },
            )
            .await?;
        let (stage, outcome) = reached.unwrap_or((Stage::Admitted, None));
        Ok((stage as i32, outcome))
    }

    pub(super) async fn update(
        &self,
        request: Request<UpdateWorkflowExecutionRequest>,
    ) -> Result<UpdateWorkflowExecutionResponse, Status> {
        let deadline = poll_deadline(&request);
        let r = request.into_inner();
        let checked = self.check_update(&r)?;
        let run_id = self
            .store
            .transaction(|state| {
                let run_id = state.resolve_run_id(&r.namespace, r.workflow_execution.as_ref())?;
                let run = &state.runs[&run_id];
                if !r.first_execution_run_id.is_empty()
                    && r.first_execution_run_id != run.started.first_execution_run_id
                {
                    return Err(errors::first_run_mismatch(
                        &run.workflow_id,
                        &r.first_execution_run_id,
                    ));
                }
                admit(state, &run_id, &checked)?;
                Ok(run_id)
            })
            .await?;
        self.update_response(deadline, checked, run_id).await
    }

    /// Checks an update request: what to admit, and the stage its caller waits for.
    pub(super) fn check_update(
        &self,
        r: &UpdateWorkflowExecutionRequest,
    ) -> Result<CheckedUpdate, Status> {
        let update = r
            .request
            .clone()
            .ok_or_else(|| errors::missing("update request"))?;
        let id = update
            .meta
            .as_ref()
            .map(|m| m.update_id.clone())
            .filter(|id| !id.is_empty())
            .ok_or_else(|| errors::missing("update id"))?;
        let workflow_id = r
            .workflow_execution
            .as_ref()
            .map_or("", |e| &e.workflow_id)
            .to_owned();
        self.check_payloads(
            "UpdateWorkflowExecutionRequest.request.input.args",
            update.input.as_ref().and_then(|i| i.args.as_ref()),
            &format!("workflow `{workflow_id}`"),
        )?;
        let stage = wanted_stage(r.wait_policy);
        if stage == Stage::Admitted {
            return Err(errors::update_admitted_wait());
        }
        Ok(CheckedUpdate {
            update,
            id,
            workflow_id,
            stage,
        })
    }

    /// Waits until the update admitted to run `run_id` reaches its caller's stage (or
    /// the deadline), and answers where it is.
    pub(super) async fn update_response(
        &self,
        deadline: tokio::time::Instant,
        checked: CheckedUpdate,
        run_id: String,
    ) -> Result<UpdateWorkflowExecutionResponse, Status> {
        let (stage, outcome) = self
            .update_reached(deadline, &run_id, &checked.id, checked.stage)
            .await?;
        Ok(UpdateWorkflowExecutionResponse {
            update_ref: Some(UpdateRef {
                workflow_execution: Some(WorkflowExecution {
                    workflow_id: checked.workflow_id,
                    run_id,
                }),
                update_id: checked.id,
            }),
            outcome,
            stage,
            ..Default::default()
        })
    }

    pub(super) async fn poll_update(
        &self,
        request: Request<PollWorkflowExecutionUpdateRequest>,
    ) -> Result<PollWorkflowExecutionUpdateResponse, Status> {
        let deadline = poll_deadline(&request);
        let r = request.into_inner();
        let update_ref = r.update_ref.ok_or_else(|| errors::missing("update ref"))?;
        let stage = wanted_stage(r.wait_policy);
        let run_id = self
            .store
            .transaction(|state| {
                let run_id =
                    state.resolve_run_id(&r.namespace, update_ref.workflow_execution.as_ref())?;
                if !state.runs[&run_id].has_update(&update_ref.update_id) {
                    return Err(errors::update_not_found(&update_ref.update_id));
                }
                Ok(run_id)
            })
            .await?;
        let (stage, outcome) = self
            .update_reached(deadline, &run_id, &update_ref.update_id, stage)
            .await?;
        Ok(PollWorkflowExecutionUpdateResponse {
            outcome,
            stage,
            update_ref: Some(update_ref),
        })
    }
}
