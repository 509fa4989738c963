//! A completion's commands and protocol messages, checked before any is applied, as
//! Temporal checks them: a command the engine does not support, or one with attributes
//! Temporal rejects, or an update message out of turn, fails the workflow task with the
//! cause Temporal gives and a message naming the field; none of the completion is applied.
//!
//! The engine's [`Limits`] are checked here too, as Temporal checks them: a command whose
//! payload is over the blob limit terminates the run (with the cause and Temporal's
//! message), and one that would take the run's pending activities, children, signals or
//! cancel requests past their limit fails the task.

use std::collections::{HashMap, HashSet};

use prost::Message as _;

use super::{updates::UpdateState, Namespaces, Run};
use crate::{
    limits::Limits,
    proto::{
        command::{command::Attributes as Cmd, Command},
        common::{Payload, SearchAttributes},
        enums::{CommandType, WorkflowTaskFailedCause as Cause},
        failure::Failure,
        protocol::Message,
        update::{Acceptance, Rejection, Response},
    },
    validate,
};

/// Why a completion cannot be applied: the workflow task fails with this cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejected {
    pub(crate) cause: Cause,
    pub(crate) message: String,
    /// The run is terminated too (a payload over the blob limit).
    pub(crate) terminate: bool,
}

impl Rejected {
    /// What the run is terminated with when [`Rejected::terminate`]: the cause and the
    /// message, as Temporal words it.
    pub(crate) fn reason(&self) -> String {
        format!("{}: {}", self.cause.as_str_name(), self.message)
    }
}

/// A payload over the blob limit: Temporal's `message`, and the run terminated.
fn too_large(
    limits: &Limits,
    cause: Cause,
    message: &str,
    size: usize,
    run: &str,
) -> Result<(), Rejected> {
    let field = "a command's payload";
    validate::blob_size(limits, message, field, size, run).map_err(|_| Rejected {
        cause,
        message: message.to_owned(),
        terminate: true,
    })
}

/// A command that would take the run past a count limit (`what` is Temporal's name for
/// it): the task fails, with Temporal's message.
fn too_many(cause: Cause, what: &str, pending: usize, limit: usize) -> Result<(), Rejected> {
    if pending < limit {
        return Ok(());
    }
    Err(Rejected {
        cause,
        message: format!(
            "the number of {what}, {pending}, has reached the per-workflow limit of {limit}"
        ),
        terminate: false,
    })
}

/// The size of a map of payloads as Temporal counts it: each key's and payload's bytes.
fn map_size(fields: &HashMap<String, Payload>) -> usize {
    fields
        .iter()
        .map(|(key, payload)| key.len() + payload.data.len())
        .sum()
}

/// The name Temporal gives a command's type, for messages.
fn type_name(command: &Command) -> String {
    match CommandType::try_from(command.command_type) {
        Ok(CommandType::Unspecified) | Err(_) => format!("command type {}", command.command_type),
        Ok(t) => t.as_str_name().to_owned(),
    }
}

/// A rejection of command `command` with `cause`.
fn bad(cause: Cause, command: &str, problem: impl std::fmt::Display) -> Rejected {
    Rejected {
        cause,
        message: format!("bad `{command}` command: {problem}"),
        terminate: false,
    }
}

/// Checks a duration field of a command.
fn duration(
    cause: Cause,
    command: &str,
    field: &str,
    d: Option<&prost_wkt_types::Duration>,
) -> Result<Option<std::time::Duration>, Rejected> {
    validate::duration(field, d).map_err(|e| bad(cause, command, e))
}

/// Checks that a required text field is set.
fn required(cause: Cause, command: &str, field: &str, value: &str) -> Result<(), Rejected> {
    if value.is_empty() {
        return Err(bad(cause, command, format!("{field} is not set")));
    }
    Ok(())
}

/// Shortens what a worker sent that the engine keeps: failures nested too deep.
pub(crate) fn limit_failures(commands: &mut [Command]) {
    let limit = |failure: &mut Option<Failure>| validate::limit_optional_failure(failure);
    for command in commands {
        match &mut command.attributes {
            Some(Cmd::FailWorkflowExecutionCommandAttributes(a)) => limit(&mut a.failure),
            Some(Cmd::ContinueAsNewWorkflowExecutionCommandAttributes(a)) => limit(&mut a.failure),
            Some(Cmd::RecordMarkerCommandAttributes(a)) => limit(&mut a.failure),
            _ => {}
        }
    }
}

/// Where an update stands as a completion's messages are checked in turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    /// Admitted or delivered: it may be accepted or rejected.
    Open,
    Accepted,
    Completed,
}

impl Run {
    /// Checks a completion's protocol messages in order, as the updates they answer would
    /// move: each names an update the run has, decodes as an acceptance, rejection or
    /// response, and comes in turn (a response only to an accepted update, nothing after
    /// its completion).
    pub(crate) fn check_messages(&self, messages: &[Message]) -> Result<(), Rejected> {
        let bad = |message: &Message, problem: String| Rejected {
            cause: Cause::BadUpdateWorkflowExecutionMessage,
            message: format!(
                "BadUpdateWorkflowExecutionMessage: bad protocol message `{}` for update `{}`: \
                 {problem}",
                message.id, message.protocol_instance_id
            ),
            terminate: false,
        };
        let mut turns: HashMap<&str, Turn> = HashMap::new();
        for message in messages {
            let id = message.protocol_instance_id.as_str();
            let Some(update) = self.updates.iter().find(|u| u.id == id) else {
                return Err(bad(
                    message,
                    "the update was not found on the engine (it may have been rejected or \
                     completed already)"
                        .to_owned(),
                ));
            };
            let turn = turns.entry(id).or_insert(match update.state {
                UpdateState::Admitted | UpdateState::InHistory(_) | UpdateState::Delivered(_) => {
                    Turn::Open
                }
                UpdateState::Accepted(_) => Turn::Accepted,
                UpdateState::Completed(_) | UpdateState::Aborted => Turn::Completed,
            });
            let Some(body) = &message.body else {
                return Err(bad(message, "it has no body".to_owned()));
            };
            let type_name = body.type_url.rsplit('/').next().unwrap_or_default();
            let bytes = body.value.as_slice();
            let (decoded, from, to) = match type_name {
                "temporal.api.update.v1.Acceptance" => {
                    let acceptance = Acceptance::decode(bytes);
                    if acceptance
                        .as_ref()
                        .is_ok_and(|a| a.accepted_request_sequencing_event_id == 0)
                    {
                        // Temporal's words (the whole message, as it answers it).
                        return Err(Rejected {
                            message: "BadUpdateWorkflowExecutionMessage: invalid \
                                      *update.Acceptance: accepted_request_sequencing_event_id \
                                      is not set"
                                .to_owned(),
                            ..bad(message, String::new())
                        });
                    }
                    (acceptance.map(drop), Turn::Open, Turn::Accepted)
                }
                "temporal.api.update.v1.Rejection" => (
                    Rejection::decode(bytes).map(drop),
                    Turn::Open,
                    Turn::Completed,
                ),
                "temporal.api.update.v1.Response" => (
                    Response::decode(bytes).map(drop),
                    Turn::Accepted,
                    Turn::Completed,
                ),
                other => return Err(bad(message, format!("unsupported message type `{other}`"))),
            };
            decoded.map_err(|e| bad(message, format!("its body does not decode: {e}")))?;
            if *turn != from {
                let short = type_name.rsplit('.').next().unwrap_or_default();
                return Err(bad(
                    message,
                    format!(
                        "invalid state transition: {short} for an update that is {}",
                        match turn {
                            Turn::Open => "not accepted",
                            Turn::Accepted => "accepted already",
                            Turn::Completed => "completed already",
                        }
                    ),
                ));
            }
            *turn = to;
        }
        Ok(())
    }

    /// Checks every command and message before any is applied, against `limits` too;
    /// `namespaces` says which namespaces a command may name, and checks the search
    /// attributes it sets.
    pub(crate) fn check_commands(
        &self,
        commands: &[Command],
        messages: &[Message],
        namespaces: Namespaces<'_>,
        limits: &Limits,
    ) -> Result<(), Rejected> {
        let run = format!("workflow `{}` run `{}`", self.workflow_id, self.run_id);
        let size =
            |cause, message: &str, size: usize| too_large(limits, cause, message, size, &run);
        // What this completion adds to what is pending (external signals and cancel
        // requests are delivered in the transaction that asks for them).
        let (mut new_children, mut new_signals, mut new_cancels) = (0, 0, 0);
        // A timer that fired while the task ran can still be cancelled (its buffered fired
        // event is dropped), as on Temporal.
        let mut timers: HashSet<&str> = self.timers.keys().map(String::as_str).collect();
        timers.extend(self.buffered_fired_timers());
        let mut activities: HashSet<&str> = self
            .activities
            .values()
            .map(|a| a.attrs.activity_id.as_str())
            .collect();
        let namespace = |cause, name: &str, namespace: &str| {
            if namespace.is_empty() || namespaces.exists(namespace) {
                Ok(())
            } else {
                Err(bad(
                    cause,
                    name,
                    format!("Namespace {namespace} is not found."),
                ))
            }
        };
        let search_attributes =
            |name: &str, namespace: &str, attributes: Option<&SearchAttributes>| {
                namespaces
                    .check_search_attributes(namespace, attributes)
                    .map_err(|problem| bad(Cause::BadSearchAttributes, name, problem))
            };
        for command in commands {
            let name = type_name(command);
            let name = name.as_str();
            match &command.attributes {
                None => {
                    return Err(bad(
                        Cause::Unspecified,
                        name,
                        "it has no attributes: the engine does not know what it asks for",
                    ))
                }
                Some(Cmd::ScheduleNexusOperationCommandAttributes(_))
                | Some(Cmd::RequestCancelNexusOperationCommandAttributes(_)) => {
                    return Err(Rejected {
                        cause: Cause::FeatureDisabled,
                        message: format!(
                            "unsupported command `{name}`: the embedded engine does not run \
                             Nexus operations"
                        ),
                        terminate: false,
                    })
                }
                Some(Cmd::ScheduleActivityTaskCommandAttributes(a)) => {
                    let cause = Cause::BadScheduleActivityAttributes;
                    required(cause, name, "activity_id", &a.activity_id)?;
                    let activity_type = a.activity_type.as_ref().map_or("", |t| t.name.as_str());
                    required(cause, name, "activity_type", activity_type)?;
                    let s2c = duration(
                        cause,
                        name,
                        "schedule_to_close_timeout",
                        a.schedule_to_close_timeout.as_ref(),
                    )?;
                    duration(
                        cause,
                        name,
                        "schedule_to_start_timeout",
                        a.schedule_to_start_timeout.as_ref(),
                    )?;
                    let stc = duration(
                        cause,
                        name,
                        "start_to_close_timeout",
                        a.start_to_close_timeout.as_ref(),
                    )?;
                    duration(
                        cause,
                        name,
                        "heartbeat_timeout",
                        a.heartbeat_timeout.as_ref(),
                    )?;
                    if s2c.is_none() && stc.is_none() {
                        return Err(bad(
                            cause,
                            name,
                            "set schedule_to_close_timeout or start_to_close_timeout",
                        ));
                    }
                    validate::retry_policy("retry_policy", a.retry_policy.as_ref())
                        .map_err(|e| bad(cause, name, e))?;
                    size(
                        cause,
                        "ScheduleActivityTaskCommandAttributes.Input exceeds size limit.",
                        validate::size_of(a.input.as_ref()),
                    )?;
                    // Every activity id in the set is pending, or scheduled by this task.
                    too_many(
                        Cause::PendingActivitiesLimitExceeded,
                        "pending activities",
                        activities.len(),
                        limits.pending_activities,
                    )?;
                    if !activities.insert(&a.activity_id) {
                        return Err(bad(
                            Cause::ScheduleActivityDuplicateId,
                            name,
                            format!("activity id `{}` is already in use", a.activity_id),
                        ));
                    }
                }
                Some(Cmd::RequestCancelActivityTaskCommandAttributes(a)) => {
                    // An activity scheduled by this completion has an event id past the
                    // current history; one before it must be pending.
                    let known = self.activities.contains_key(&a.scheduled_event_id)
                        || a.scheduled_event_id >= self.next_event_id()
                        || self.has_buffered_activity_outcome(a.scheduled_event_id);
                    if a.scheduled_event_id <= 0 || !known {
                        return Err(bad(
                            Cause::BadRequestCancelActivityAttributes,
                            name,
                            format!(
                                "no pending activity was scheduled at event {}",
                                a.scheduled_event_id
                            ),
                        ));
                    }
                }
                Some(Cmd::StartTimerCommandAttributes(a)) => {
                    let cause = Cause::BadStartTimerAttributes;
                    required(cause, name, "timer_id", &a.timer_id)?;
                    let fire_in = duration(
                        cause,
                        name,
                        "start_to_fire_timeout",
                        a.start_to_fire_timeout.as_ref(),
                    )?;
                    if fire_in.is_none() {
                        return Err(bad(cause, name, "start_to_fire_timeout must be positive"));
                    }
                    if !timers.insert(&a.timer_id) {
                        return Err(bad(
                            Cause::StartTimerDuplicateId,
                            name,
                            format!("timer id `{}` is already in use", a.timer_id),
                        ));
                    }
                }
                Some(Cmd::CancelTimerCommandAttributes(a)) => {
                    if !timers.remove(a.timer_id.as_str()) {
                        return Err(bad(
                            Cause::BadCancelTimerAttributes,
                            name,
                            format!("no timer `{}` is pending", a.timer_id),
                        ));
                    }
                }
                Some(Cmd::StartChildWorkflowExecutionCommandAttributes(a)) => {
                    let cause = Cause::BadStartChildExecutionAttributes;
                    required(cause, name, "workflow_id", &a.workflow_id)?;
                    let workflow_type = a.workflow_type.as_ref().map_or("", |t| t.name.as_str());
                    required(cause, name, "workflow_type", workflow_type)?;
                    namespace(cause, name, &a.namespace)?;
                    let child_namespace = match a.namespace.as_str() {
                        "" => self.namespace.as_str(),
                        other => other,
                    };
                    search_attributes(name, child_namespace, a.search_attributes.as_ref())?;
                    for (field, d) in [
                        ("workflow_execution_timeout", &a.workflow_execution_timeout),
                        ("workflow_run_timeout", &a.workflow_run_timeout),
                        ("workflow_task_timeout", &a.workflow_task_timeout),
                    ] {
                        duration(cause, name, field, d.as_ref())?;
                    }
                    validate::retry_policy("retry_policy", a.retry_policy.as_ref())
                        .map_err(|e| bad(cause, name, e))?;
                    if !a.cron_schedule.is_empty() {
                        crate::schedules::spec::cron_spec(&a.cron_schedule)
                            .map_err(|e| bad(cause, name, format!("cron_schedule: {e}")))?;
                    }
                    size(
                        cause,
                        "StartChildWorkflowExecutionCommandAttributes. Input exceeds size limit.",
                        validate::size_of(a.input.as_ref()),
                    )?;
                    size(
                        cause,
                        "StartChildWorkflowExecutionCommandAttributes.Memo exceeds size limit.",
                        validate::size_of(a.memo.as_ref()),
                    )?;
                    too_many(
                        Cause::PendingChildWorkflowsLimitExceeded,
                        "pending child workflow executions",
                        self.children.len() + new_children,
                        limits.pending_children,
                    )?;
                    new_children += 1;
                }
                Some(Cmd::SignalExternalWorkflowExecutionCommandAttributes(a)) => {
                    let cause = Cause::BadSignalWorkflowExecutionAttributes;
                    let workflow_id = a.execution.as_ref().map_or("", |e| e.workflow_id.as_str());
                    required(cause, name, "execution.workflow_id", workflow_id)?;
                    required(cause, name, "signal_name", &a.signal_name)?;
                    namespace(cause, name, &a.namespace)?;
                    too_many(
                        Cause::PendingSignalsLimitExceeded,
                        "pending signals to external workflows",
                        new_signals,
                        limits.pending_signals,
                    )?;
                    new_signals += 1;
                    size(
                        cause,
                        "SignalExternalWorkflowExecutionCommandAttributes.Input exceeds size limit.",
                        validate::size_of(a.input.as_ref()),
                    )?;
                }
                Some(Cmd::RequestCancelExternalWorkflowExecutionCommandAttributes(a)) => {
                    let cause = Cause::BadRequestCancelExternalWorkflowExecutionAttributes;
                    required(cause, name, "workflow_id", &a.workflow_id)?;
                    namespace(cause, name, &a.namespace)?;
                    too_many(
                        Cause::PendingRequestCancelLimitExceeded,
                        "pending requests to cancel external workflows",
                        new_cancels,
                        limits.pending_cancels,
                    )?;
                    new_cancels += 1;
                }
                Some(Cmd::ContinueAsNewWorkflowExecutionCommandAttributes(a)) => {
                    let cause = Cause::BadContinueAsNewAttributes;
                    for (field, d) in [
                        ("workflow_run_timeout", &a.workflow_run_timeout),
                        ("workflow_task_timeout", &a.workflow_task_timeout),
                        ("backoff_start_interval", &a.backoff_start_interval),
                    ] {
                        duration(cause, name, field, d.as_ref())?;
                    }
                    validate::retry_policy("retry_policy", a.retry_policy.as_ref())
                        .map_err(|e| bad(cause, name, e))?;
                    search_attributes(name, &self.namespace, a.search_attributes.as_ref())?;
                    size(
                        cause,
                        "ContinueAsNewWorkflowExecutionCommandAttributes. Input exceeds size limit.",
                        validate::size_of(a.input.as_ref()),
                    )?;
                    size(
                        cause,
                        "ContinueAsNewWorkflowExecutionCommandAttributes. Memo exceeds size limit.",
                        validate::size_of(a.memo.as_ref()),
                    )?;
                }
                Some(Cmd::CompleteWorkflowExecutionCommandAttributes(a)) => size(
                    Cause::BadCompleteWorkflowExecutionAttributes,
                    "CompleteWorkflowExecutionCommandAttributes.Result exceeds size limit.",
                    validate::size_of(a.result.as_ref()),
                )?,
                Some(Cmd::FailWorkflowExecutionCommandAttributes(a)) => size(
                    Cause::BadFailWorkflowExecutionAttributes,
                    "FailWorkflowExecutionCommandAttributes.Failure exceeds size limit.",
                    validate::size_of(a.failure.as_ref()),
                )?,
                Some(Cmd::RecordMarkerCommandAttributes(a)) => size(
                    Cause::BadRecordMarkerAttributes,
                    "RecordMarkerCommandAttributes.Details exceeds size limit.",
                    a.details
                        .iter()
                        .map(|(key, payloads)| key.len() + payloads.encoded_len())
                        .sum(),
                )?,
                Some(Cmd::UpsertWorkflowSearchAttributesCommandAttributes(a)) => {
                    search_attributes(name, &self.namespace, a.search_attributes.as_ref())?;
                    size(
                        Cause::BadSearchAttributes,
                        "UpsertWorkflowSearchAttributesCommandAttributes exceeds size limit.",
                        a.search_attributes
                            .as_ref()
                            .map_or(0, |s| map_size(&s.indexed_fields)),
                    )?
                }
                Some(Cmd::ModifyWorkflowPropertiesCommandAttributes(a)) => size(
                    Cause::BadModifyWorkflowPropertiesAttributes,
                    "ModifyWorkflowPropertiesCommandAttributes exceeds size limit.",
                    a.upserted_memo.as_ref().map_or(0, |m| map_size(&m.fields)),
                )?,
                Some(_) => {}
            }
        }
        for message in messages {
            let type_name = message
                .body
                .as_ref()
                .map_or("", |b| b.type_url.rsplit('/').next().unwrap_or_default());
            size(
                Cause::BadUpdateWorkflowExecutionMessage,
                &format!("Message type {type_name} exceeds size limit."),
                validate::size_of(message.body.as_ref()),
            )?;
        }
        Ok(())
    }
}
