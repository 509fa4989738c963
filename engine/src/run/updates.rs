//! The update protocol: an update is admitted, delivered with a workflow task, accepted
//! or rejected by the workflow, then completed; a workflow that closes first fails it.

use prost::Message as _;
use serde::{Deserialize, Serialize};
use tonic::Status;

use super::{Ctx, Run};
use crate::{
    errors, pb,
    proto::{
        self,
        enums::UpdateWorkflowExecutionLifecycleStage as Stage,
        failure::{failure::FailureInfo, ApplicationFailureInfo, Failure},
        history::{history_event::Attributes, *},
        protocol::{message::SequencingId, Message},
        update::{self, outcome, Outcome},
    },
    validate,
};

/// Where an update is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum UpdateState {
    /// Received, not yet given to a worker.
    Admitted,
    /// Admitted by an `UpdateAdmitted` event at this id (reapplied by a reset): workers
    /// read it from the history, not from a message.
    InHistory(i64),
    /// Given to a worker in the workflow task scheduled at this event.
    Delivered(i64),
    /// Accepted by the workflow at this event.
    Accepted(i64),
    /// Completed or rejected.
    Completed(#[serde(with = "pb::message")] Box<Outcome>),
    /// The workflow closed before it accepted the update: its callers are told so.
    Aborted,
}

/// An update sent to the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Update {
    pub(crate) id: String,
    #[serde(with = "pb::message")]
    pub(crate) request: update::Request,
    pub(crate) state: UpdateState,
    /// The workflow accepted it: it counts toward the run's total even once completed
    /// (a rejected update does not, as on Temporal).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) accepted: bool,
}

impl Update {
    /// Update `request` (its id from its meta), at `state`.
    pub(super) fn new(request: update::Request, state: UpdateState) -> Self {
        Self {
            id: request
                .meta
                .as_ref()
                .map(|m| m.update_id.clone())
                .unwrap_or_default(),
            request,
            state,
            accepted: false,
        }
    }

    /// Whether it waits for a worker to see it.
    pub(super) fn waits_for_worker(&self) -> bool {
        matches!(
            self.state,
            UpdateState::Admitted | UpdateState::InHistory(_) | UpdateState::Delivered(_)
        )
    }
}

/// Temporal's words for an accepted update whose workflow closed first.
const ACCEPTED_UPDATE_COMPLETED_WORKFLOW: &str =
    "Workflow Update failed because the Workflow completed before the Update completed.";

/// A failed outcome with `message`.
fn failed(message: &str) -> Box<Outcome> {
    Box::new(Outcome {
        value: Some(outcome::Value::Failure(Failure {
            message: message.to_owned(),
            ..Default::default()
        })),
    })
}

impl Run {
    /// Admits an update (an update with the same id is the same update), and schedules a
    /// workflow task to deliver it: a speculative one if the run was idle. A new update
    /// beyond the run's limits is refused, with Temporal's statuses: `RESOURCE_EXHAUSTED`
    /// past [`Limits::in_flight_updates`](crate::limits::Limits::in_flight_updates),
    /// `FAILED_PRECONDITION` past [`Limits::total_updates`](crate::limits::Limits::total_updates).
    pub(crate) fn admit_update(
        &mut self,
        ctx: &mut Ctx<'_>,
        request: update::Request,
    ) -> Result<(), Status> {
        let update = Update::new(request, UpdateState::Admitted);
        if self.has_update(&update.id) {
            return Ok(());
        }
        let limits = &ctx.config.limits;
        let in_flight = self
            .updates
            .iter()
            .filter(|u| !matches!(u.state, UpdateState::Completed(_)))
            .count();
        if in_flight >= limits.in_flight_updates {
            return Err(errors::too_many_updates_in_flight(limits.in_flight_updates));
        }
        // In flight, or accepted (and perhaps completed since).
        let counted = self
            .updates
            .iter()
            .filter(|u| u.accepted || !matches!(u.state, UpdateState::Completed(_)))
            .count();
        if counted >= limits.total_updates {
            return Err(errors::too_many_updates(limits.total_updates));
        }
        self.updates.push(update);
        let idle = self.wft.is_none() && self.buffered.is_empty();
        self.schedule_workflow_task(ctx);
        if idle {
            if let Some(task) = &mut self.wft {
                task.speculative = true;
            }
        }
        Ok(())
    }

    /// An update reapplied by a reset: its `UpdateAdmitted` event written (unless the run
    /// knows the update), which workers read as the update's request.
    pub(super) fn admit_reapplied_update(
        &mut self,
        ctx: &mut Ctx<'_>,
        attrs: WorkflowExecutionUpdateAdmittedEventAttributes,
    ) {
        let Some(request) = attrs.request.clone() else {
            return;
        };
        let update = Update::new(request, UpdateState::Admitted);
        if self.has_update(&update.id) {
            return;
        }
        self.add_new_event(
            ctx,
            Attributes::WorkflowExecutionUpdateAdmittedEventAttributes(attrs),
        );
        let event_id = self.events.len() as i64;
        self.updates.push(Update {
            state: UpdateState::InHistory(event_id),
            ..update
        });
    }

    /// Whether update `id` is known to the run.
    pub(crate) fn has_update(&self, id: &str) -> bool {
        self.updates.iter().any(|u| u.id == id)
    }

    /// Where update `id` is, if it has reached `wanted` (or completed): its stage and,
    /// once completed, its outcome.
    ///
    /// # Errors
    ///
    /// `NOT_FOUND` for an update the workflow closed before accepting, as on Temporal.
    pub(crate) fn update_stage(
        &self,
        id: &str,
        wanted: Stage,
    ) -> Result<Option<(Stage, Option<Outcome>)>, Status> {
        let Some(update) = self.updates.iter().find(|u| u.id == id) else {
            return Ok(None);
        };
        Ok(match &update.state {
            UpdateState::Aborted => return Err(errors::update_aborted()),
            UpdateState::Completed(outcome) => Some((Stage::Completed, Some((**outcome).clone()))),
            UpdateState::Accepted(_) if wanted <= Stage::Accepted => Some((Stage::Accepted, None)),
            _ if wanted <= Stage::Admitted => Some((Stage::Admitted, None)),
            _ => None,
        })
    }

    pub(super) fn has_admitted_updates(&self) -> bool {
        self.updates
            .iter()
            .any(|u| u.state == UpdateState::Admitted)
    }

    /// Hands the admitted updates to the task scheduled at `scheduled`, as its messages.
    pub(super) fn deliver_updates(&mut self, scheduled: i64) -> Vec<Message> {
        let mut messages = Vec::new();
        for update in &mut self.updates {
            if update.state == UpdateState::Admitted {
                update.state = UpdateState::Delivered(scheduled);
                messages.push(Message {
                    id: format!("{}/request", update.id),
                    protocol_instance_id: update.id.clone(),
                    body: Some(proto::pack(
                        "temporal.api.update.v1.Request",
                        &update.request,
                    )),
                    sequencing_id: Some(SequencingId::EventId(scheduled)),
                });
            }
        }
        messages
    }

    /// The task that carried updates ended without an answer: they wait for the next.
    pub(super) fn undeliver_updates(&mut self) {
        for update in &mut self.updates {
            if matches!(update.state, UpdateState::Delivered(_)) {
                update.state = UpdateState::Admitted;
            }
        }
    }

    /// Updates given to the task scheduled at `scheduled` that the worker did not answer
    /// are rejected.
    pub(super) fn reject_unanswered_updates(&mut self, scheduled: i64) {
        for update in &mut self.updates {
            if update.state == UpdateState::Delivered(scheduled) {
                update.state =
                    UpdateState::Completed(failed("the workflow did not process the update"));
            }
        }
    }

    /// The run closed: updates not completed fail, as on Temporal. One the workflow accepted
    /// fails with a non-retryable `AcceptedUpdateCompletedWorkflow` application error; one
    /// it had not accepted is aborted (its callers get `NOT_FOUND`).
    pub(super) fn fail_pending_updates(&mut self) {
        for update in &mut self.updates {
            update.state = match update.state {
                UpdateState::Completed(_) => continue,
                UpdateState::Accepted(_) => UpdateState::Completed(Box::new(Outcome {
                    value: Some(outcome::Value::Failure(Failure {
                        message: ACCEPTED_UPDATE_COMPLETED_WORKFLOW.to_owned(),
                        failure_info: Some(FailureInfo::ApplicationFailureInfo(
                            ApplicationFailureInfo {
                                r#type: "AcceptedUpdateCompletedWorkflow".to_owned(),
                                non_retryable: true,
                                ..Default::default()
                            },
                        )),
                        ..Default::default()
                    })),
                })),
                UpdateState::Aborted
                | UpdateState::Admitted
                | UpdateState::InHistory(_)
                | UpdateState::Delivered(_) => UpdateState::Aborted,
            };
        }
    }

    /// A protocol message from the worker: an update's acceptance, rejection or response.
    pub(super) fn apply_message(&mut self, ctx: &mut Ctx<'_>, message: &Message) {
        let Some(body) = &message.body else { return };
        if !self.is_open() {
            return;
        }
        let type_name = body.type_url.rsplit('/').next().unwrap_or_default();
        let id = message.protocol_instance_id.clone();
        let Some(index) = self.updates.iter().position(|u| u.id == id) else {
            return;
        };
        let bytes = body.value.as_slice();
        match type_name {
            "temporal.api.update.v1.Acceptance" => {
                let Ok(acceptance) = update::Acceptance::decode(bytes) else {
                    return;
                };
                // A request the history holds is not written again, as on Temporal.
                let request = match self.updates[index].state {
                    UpdateState::InHistory(_) => None,
                    _ => Some(
                        acceptance
                            .accepted_request
                            .unwrap_or_else(|| self.updates[index].request.clone()),
                    ),
                };
                let event_id = self.append(
                    ctx,
                    Attributes::WorkflowExecutionUpdateAcceptedEventAttributes(
                        WorkflowExecutionUpdateAcceptedEventAttributes {
                            protocol_instance_id: id,
                            accepted_request_message_id: acceptance.accepted_request_message_id,
                            accepted_request_sequencing_event_id: acceptance
                                .accepted_request_sequencing_event_id,
                            accepted_request: request,
                        },
                    ),
                );
                self.updates[index].state = UpdateState::Accepted(event_id);
                self.updates[index].accepted = true;
            }
            "temporal.api.update.v1.Rejection" => {
                let Ok(mut rejection) = update::Rejection::decode(bytes) else {
                    return;
                };
                validate::limit_optional_failure(&mut rejection.failure);
                self.updates[index].state = UpdateState::Completed(Box::new(Outcome {
                    value: Some(outcome::Value::Failure(
                        rejection.failure.unwrap_or_default(),
                    )),
                }));
            }
            "temporal.api.update.v1.Response" => {
                let Ok(response) = update::Response::decode(bytes) else {
                    return;
                };
                let accepted_event_id = match self.updates[index].state {
                    UpdateState::Accepted(e) => e,
                    _ => 0,
                };
                let mut outcome = response.outcome.unwrap_or_default();
                if let Some(outcome::Value::Failure(failure)) = &mut outcome.value {
                    validate::limit_failure(failure);
                }
                self.append(
                    ctx,
                    Attributes::WorkflowExecutionUpdateCompletedEventAttributes(
                        WorkflowExecutionUpdateCompletedEventAttributes {
                            meta: response.meta,
                            accepted_event_id,
                            outcome: Some(outcome.clone()),
                        },
                    ),
                );
                self.updates[index].state = UpdateState::Completed(Box::new(outcome));
            }
            _ => {}
        }
    }
}
