//! A completion's commands and protocol messages, checked before any is applied, as
//! Temporal checks them: a command the engine does not support, or one with attributes
//! Temporal rejects, or an update message out of turn, fails the workflow task with the
//! cause Temporal gives and a message naming the field; none of the completion is applied.

use std::collections::HashSet;

use prost::Message as _;

use super::{updates::UpdateState, Run};
use crate::{
    proto::{
        command::{command::Attributes as Cmd, Command},
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
                "bad protocol message `{}` for update `{}`: {problem}",
                message.id, message.protocol_instance_id
            ),
        };
        let mut turns: std::collections::HashMap<&str, Turn> = std::collections::HashMap::new();
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
                UpdateState::Admitted | UpdateState::Delivered(_) => Turn::Open,
                UpdateState::Accepted(_) => Turn::Accepted,
                UpdateState::Completed(_) => Turn::Completed,
            });
            let Some(body) = &message.body else {
                return Err(bad(message, "it has no body".to_owned()));
            };
            let type_name = body.type_url.rsplit('/').next().unwrap_or_default();
            let bytes = body.value.as_slice();
            let (decoded, from, to) = match type_name {
                "temporal.api.update.v1.Acceptance" => (
                    Acceptance::decode(bytes).map(drop),
                    Turn::Open,
                    Turn::Accepted,
                ),
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

    /// Checks every command before any is applied; `namespace_exists` says whether a
    /// namespace a command names is served.
    pub(crate) fn check_commands(
        &self,
        commands: &[Command],
        namespace_exists: impl Fn(&str) -> bool,
    ) -> Result<(), Rejected> {
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
            if namespace.is_empty() || namespace_exists(namespace) {
                Ok(())
            } else {
                Err(bad(
                    cause,
                    name,
                    format!("namespace `{namespace}` is not found"),
                ))
            }
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
                }
                Some(Cmd::SignalExternalWorkflowExecutionCommandAttributes(a)) => {
                    let cause = Cause::BadSignalWorkflowExecutionAttributes;
                    let workflow_id = a.execution.as_ref().map_or("", |e| e.workflow_id.as_str());
                    required(cause, name, "execution.workflow_id", workflow_id)?;
                    required(cause, name, "signal_name", &a.signal_name)?;
                    namespace(cause, name, &a.namespace)?;
                }
                Some(Cmd::RequestCancelExternalWorkflowExecutionCommandAttributes(a)) => {
                    let cause = Cause::BadRequestCancelExternalWorkflowExecutionAttributes;
                    required(cause, name, "workflow_id", &a.workflow_id)?;
                    namespace(cause, name, &a.namespace)?;
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
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}
