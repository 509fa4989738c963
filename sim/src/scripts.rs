//! What the simulated worker's workflows and activities do: commands decided from the
//! script and the history alone (as deterministic workflow code would), and each activity
//! attempt's answer decided from its input and attempt number.

use serde::{Deserialize, Serialize};

use crate::{
    plan::Script,
    proto::{self, command as cmd, update, Cmd, Command, Event, HistoryEvent, Message},
};

/// What one activity of an `Activities` script is told.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ActivityInput {
    pub index: u8,
    pub fail_first: u8,
    pub heartbeat: bool,
}

/// How an activity attempt ends, by its script.
pub fn activity_result(input: ActivityInput, attempt: i32) -> Result<String, String> {
    if attempt <= i32::from(input.fail_first) {
        Err(format!(
            "attempt {attempt} of activity {} fails",
            input.index
        ))
    } else {
        Ok(format!("r{}", input.index))
    }
}

/// The result a completed workflow of `script` must have (signals: see
/// [`signals_result`]).
pub fn expected_result(script: Script) -> Option<String> {
    Some(match script {
        Script::Activities { count, .. } => format!(
            "acts:{}",
            (0..count)
                .map(|i| format!("r{i}"))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Script::Timer { seconds } => format!("timer:{seconds}"),
        Script::Signals { .. } | Script::Errand { .. } | Script::Schedule { .. } => return None,
        Script::Updates { .. } => "updates".to_owned(),
        Script::Child { .. } => "parent".to_owned(),
        Script::ContinueAsNew { .. } => "can:done".to_owned(),
    })
}

/// A signals workflow's result: its first `wanted` signals' payloads.
pub fn signals_result(signals: &[String]) -> String {
    format!("signals:{}", signals.join(","))
}

/// The answer to every query: how many signals the run has seen.
pub fn query_answer(events: &[HistoryEvent]) -> String {
    format!("signals:{}", signals(events).len())
}

/// The payloads of the signals in `events`, in order.
pub fn signals(events: &[HistoryEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(Event::WorkflowExecutionSignaledEventAttributes(a)) => {
                proto::decode::<String>(a.input.as_ref())
            }
            _ => None,
        })
        .collect()
}

/// What the worker answers a workflow task: commands and update answers.
#[derive(Debug, Default)]
pub struct Decision {
    pub commands: Vec<Command>,
    pub messages: Vec<Message>,
}

/// Decides a task of the run whose history is `events`, delivering `updates`.
pub fn decide(
    script: Script,
    events: &[HistoryEvent],
    updates: &[Message],
    workflow_id: &str,
    task_queue: &str,
) -> Decision {
    let mut decision = Decision::default();
    let accepted = answer_updates(script, events, updates, &mut decision.messages);
    let cancel_requested = events.iter().any(|e| {
        matches!(
            e.attributes,
            Some(Event::WorkflowExecutionCancelRequestedEventAttributes(_))
        )
    });
    if cancel_requested {
        decision.commands.push(proto::command(
            Cmd::CancelWorkflowExecutionCommandAttributes(Default::default()),
        ));
        return decision;
    }
    let close = |result: String| {
        proto::command(Cmd::CompleteWorkflowExecutionCommandAttributes(
            cmd::CompleteWorkflowExecutionCommandAttributes {
                result: proto::payloads(&result),
            },
        ))
    };
    let fail = |message: String| {
        proto::command(Cmd::FailWorkflowExecutionCommandAttributes(
            cmd::FailWorkflowExecutionCommandAttributes {
                failure: Some(proto::failure(&message, "SimWorkflowFailure")),
            },
        ))
    };
    let found = |f: fn(&Event) -> bool| {
        events
            .iter()
            .filter(|e| e.attributes.as_ref().is_some_and(f))
            .count()
    };
    match script {
        Script::Activities {
            count,
            fail_first,
            max_attempts,
            heartbeat,
        } => {
            let scheduled = found(|e| matches!(e, Event::ActivityTaskScheduledEventAttributes(_)));
            let completed: Vec<String> = events
                .iter()
                .filter_map(|e| match &e.attributes {
                    Some(Event::ActivityTaskCompletedEventAttributes(a)) => {
                        proto::decode::<String>(a.result.as_ref())
                    }
                    _ => None,
                })
                .collect();
            let failed = found(|e| {
                matches!(
                    e,
                    Event::ActivityTaskFailedEventAttributes(_)
                        | Event::ActivityTaskTimedOutEventAttributes(_)
                        | Event::ActivityTaskCanceledEventAttributes(_)
                )
            });
            if failed > 0 {
                decision
                    .commands
                    .push(fail(format!("activity {} failed", scheduled - 1)));
            } else if completed.len() == usize::from(count) {
                decision
                    .commands
                    .push(close(format!("acts:{}", completed.join(","))));
            } else if scheduled == completed.len() {
                let input = ActivityInput {
                    index: scheduled as u8,
                    fail_first,
                    heartbeat,
                };
                decision
                    .commands
                    .push(proto::command(Cmd::ScheduleActivityTaskCommandAttributes(
                        cmd::ScheduleActivityTaskCommandAttributes {
                            activity_id: format!("a{scheduled}"),
                            activity_type: Some(proto::ActivityType {
                                name: "sim-activity".to_owned(),
                            }),
                            task_queue: proto::task_queue(task_queue),
                            input: proto::payloads(&input),
                            start_to_close_timeout: proto::seconds(20),
                            heartbeat_timeout: if heartbeat { proto::seconds(5) } else { None },
                            retry_policy: Some(proto::RetryPolicy {
                                initial_interval: proto::seconds(1),
                                backoff_coefficient: 2.0,
                                maximum_interval: proto::seconds(10),
                                maximum_attempts: i32::from(max_attempts),
                                ..Default::default()
                            }),
                            ..Default::default()
                        },
                    )));
            }
        }
        Script::Timer { seconds } => {
            if found(|e| matches!(e, Event::TimerFiredEventAttributes(_))) > 0 {
                decision.commands.push(close(format!("timer:{seconds}")));
            } else if found(|e| matches!(e, Event::TimerStartedEventAttributes(_))) == 0 {
                decision
                    .commands
                    .push(proto::command(Cmd::StartTimerCommandAttributes(
                        cmd::StartTimerCommandAttributes {
                            timer_id: "t".to_owned(),
                            start_to_fire_timeout: proto::seconds(u64::from(seconds)),
                        },
                    )));
            }
        }
        Script::Signals { wanted } => {
            let signals = signals(events);
            if signals.len() >= usize::from(wanted) {
                decision
                    .commands
                    .push(close(signals_result(&signals[..usize::from(wanted)])));
            }
        }
        Script::Updates { wanted } => {
            let before =
                found(|e| matches!(e, Event::WorkflowExecutionUpdateAcceptedEventAttributes(_)));
            if before + accepted >= usize::from(wanted) {
                decision.commands.push(close("updates".to_owned()));
            }
        }
        Script::Child {
            policy,
            child_seconds,
        } => {
            if found(|e| matches!(e, Event::ChildWorkflowExecutionStartedEventAttributes(_))) > 0 {
                decision.commands.push(close("parent".to_owned()));
            } else if found(|e| {
                matches!(
                    e,
                    Event::StartChildWorkflowExecutionFailedEventAttributes(_)
                )
            }) > 0
            {
                decision
                    .commands
                    .push(fail("the child did not start".to_owned()));
            } else if found(|e| {
                matches!(
                    e,
                    Event::StartChildWorkflowExecutionInitiatedEventAttributes(_)
                )
            }) == 0
            {
                decision.commands.push(proto::command(
                    Cmd::StartChildWorkflowExecutionCommandAttributes(
                        cmd::StartChildWorkflowExecutionCommandAttributes {
                            workflow_id: child_id(workflow_id),
                            workflow_type: Some(proto::WorkflowType {
                                name: proto::WORKFLOW_TYPE.to_owned(),
                            }),
                            task_queue: proto::task_queue(task_queue),
                            input: proto::payloads(&Script::Timer {
                                seconds: child_seconds,
                            }),
                            parent_close_policy: policy,
                            ..Default::default()
                        },
                    ),
                ));
            }
        }
        Script::Errand { .. } => {
            unreachable!(
                "errands run on the real worker's queue, which the simulated worker does not poll"
            )
        }
        Script::Schedule { .. } => {
            unreachable!("a schedule is no workflow: what it starts runs `schedules::ACTION`")
        }
        Script::ContinueAsNew { remaining } => {
            decision.commands.push(if remaining == 0 {
                close("can:done".to_owned())
            } else {
                proto::command(Cmd::ContinueAsNewWorkflowExecutionCommandAttributes(
                    cmd::ContinueAsNewWorkflowExecutionCommandAttributes {
                        workflow_type: Some(proto::WorkflowType {
                            name: proto::WORKFLOW_TYPE.to_owned(),
                        }),
                        task_queue: proto::task_queue(task_queue),
                        input: proto::payloads(&Script::ContinueAsNew {
                            remaining: remaining - 1,
                        }),
                        ..Default::default()
                    },
                ))
            });
        }
    }
    decision
}

/// The workflow id of the child a `Child` workflow starts.
pub fn child_id(parent: &str) -> String {
    format!("{parent}-child")
}

/// The number an update carries, read from its request.
pub fn update_number(request: &update::Request) -> Option<u64> {
    proto::decode(request.input.as_ref()?.args.as_ref())
}

/// Answers the updates delivered: an `Updates` script accepts even numbers (answering
/// twice the number) and rejects odd ones; other scripts reject them all. Returns how
/// many it accepted.
fn answer_updates(
    script: Script,
    _events: &[HistoryEvent],
    delivered: &[Message],
    messages: &mut Vec<Message>,
) -> usize {
    let mut accepted = 0;
    for message in delivered {
        let Some(request) = message
            .body
            .as_ref()
            .and_then(|body| <update::Request as prost::Message>::decode(&body.value[..]).ok())
        else {
            continue;
        };
        let id = &message.protocol_instance_id;
        let reply = |kind: &str, body: prost_wkt_types::Any| Message {
            id: format!("{id}/{kind}"),
            protocol_instance_id: id.clone(),
            body: Some(body),
            ..Default::default()
        };
        let number = update_number(&request);
        let accept = matches!(script, Script::Updates { .. }) && number.is_some_and(|n| n % 2 == 0);
        if accept {
            accepted += 1;
            messages.push(reply(
                "accept",
                proto::pack(
                    "temporal.api.update.v1.Acceptance",
                    &update::Acceptance {
                        accepted_request_message_id: message.id.clone(),
                        accepted_request_sequencing_event_id: match message.sequencing_id {
                            Some(proto::SequencingId::EventId(id)) => id,
                            _ => 0,
                        },
                        accepted_request: Some(request.clone()),
                    },
                ),
            ));
            let answer = number.unwrap_or_default() * 2;
            messages.push(reply(
                "respond",
                proto::pack(
                    "temporal.api.update.v1.Response",
                    &update::Response {
                        meta: request.meta.clone(),
                        outcome: Some(update::Outcome {
                            value: Some(update::outcome::Value::Success(
                                proto::payloads(&answer).unwrap_or_default(),
                            )),
                        }),
                    },
                ),
            ));
        } else {
            messages.push(reply(
                "reject",
                proto::pack(
                    "temporal.api.update.v1.Rejection",
                    &update::Rejection {
                        rejected_request_message_id: message.id.clone(),
                        rejected_request_sequencing_event_id: 0,
                        rejected_request: Some(request.clone()),
                        failure: Some(proto::failure("odd updates are rejected", "SimRejection")),
                    },
                ),
            ));
        }
    }
    accepted
}
