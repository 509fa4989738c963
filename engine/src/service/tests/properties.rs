//! Property tests: random list queries, and random sequences of worker answers, client
//! calls and passing time, with field values from the sane to the absurd. Whatever they
//! are, the engine answers each call (a refusal is fine, `INTERNAL` is not: it means a
//! panic was caught) and its state keeps its invariants: contiguous event ids, at most one
//! outcome per scheduled item, references to earlier events of the right kind, at most one
//! close event and nothing after it, and the timer wheel holding exactly the deadlines each
//! run's state implies.
//!
//! A failing case is shrunk by proptest and printed; its seed is kept in
//! `engine/proptest-regressions/` and replayed first by every later run.

use std::{
    collections::{BTreeMap, HashMap},
    path::Path,
    sync::Arc,
    time::Duration,
};

use proptest::prelude::*;
use tonic::{Code, Request, Status};

use super::{hostile::completion, poll};
use crate::{
    clock::Clock,
    proto::{
        self,
        command::{command::Attributes as Cmd, *},
        common::{ActivityType, Payload, Payloads, RetryPolicy, WorkflowExecution, WorkflowType},
        enums::EventType,
        failure::{failure::FailureInfo, Failure},
        history::{history_event::Attributes as Event, HistoryEvent},
        protocol::{message::SequencingId, Message},
        service::*,
        taskqueue::TaskQueue,
        WorkflowService,
    },
    run::Config,
    service::{long_poll::DEADLINE_MARGIN, Service},
    store::Store,
};

/// One thing that happens to the workflow.
#[derive(Debug, Clone)]
enum Step {
    /// A worker takes the workflow task, if there is one, and completes it with these
    /// commands, answering the updates the task delivers so (in turn, the last answer
    /// for the rest).
    Complete(Vec<Cmd>, Vec<UpdateAnswer>),
    /// A worker takes the workflow task and fails it.
    FailTask,
    /// A worker takes an activity task, if there is one, and answers it so.
    Activity(Answer),
    /// A client signals, with one of a few request ids (so some are retries).
    Signal(u8),
    /// A client sends an update, with one of a few ids (so some are retries), waiting
    /// for its acceptance for a moment only.
    Update(u8),
    /// A client asks the workflow to cancel.
    Cancel,
    /// A client terminates it.
    Terminate,
    /// This many seconds pass on the virtual clock; what is due fires.
    Wait(u32),
    /// The engine stops and opens its file again (durable runs only).
    Restart,
}

/// What a worker answers an update it was delivered.
#[derive(Debug, Clone, Copy)]
enum UpdateAnswer {
    /// Accepts it and responds in the same task.
    Complete,
    /// Accepts it; the response may come in a later task or never.
    Accept,
    Reject,
    /// Says nothing of it.
    Ignore,
    /// Responds without accepting it first (a protocol violation).
    RespondOnly,
}

#[derive(Debug, Clone, Copy)]
enum Answer {
    Complete,
    Fail,
    Canceled,
    Heartbeat,
    /// Takes the task and never answers.
    Vanish,
}

/// Durations from unset to absurd.
fn duration() -> impl Strategy<Value = Option<prost_wkt_types::Duration>> {
    prop_oneof![
        3 => Just(None),
        4 => (1i64..600).prop_map(|seconds| Some(prost_wkt_types::Duration { seconds, nanos: 0 })),
        1 => Just(Some(prost_wkt_types::Duration { seconds: 0, nanos: 0 })),
        1 => Just(Some(prost_wkt_types::Duration { seconds: -5, nanos: 0 })),
        1 => Just(Some(prost_wkt_types::Duration { seconds: 1, nanos: 2_000_000_000 })),
        1 => Just(Some(prost_wkt_types::Duration { seconds: i64::MAX, nanos: 0 })),
    ]
}

/// Ids from a small set, so that duplicates and empty ones come up.
fn id() -> impl Strategy<Value = String> {
    prop_oneof![Just(""), Just("a"), Just("b"), Just("c")].prop_map(str::to_owned)
}

fn namespace() -> impl Strategy<Value = String> {
    prop_oneof![4 => Just("default"), 1 => Just("nowhere"), 1 => Just("")].prop_map(str::to_owned)
}

fn retry_policy() -> impl Strategy<Value = Option<RetryPolicy>> {
    prop_oneof![
        2 => Just(None),
        1 => (duration(), duration(), prop_oneof![
            Just(0.0), Just(1.0), Just(2.0), Just(0.5), Just(f64::INFINITY), Just(f64::NAN), Just(1e300)
        ], -1i32..4)
            .prop_map(|(initial, maximum, coefficient, attempts)| Some(RetryPolicy {
                initial_interval: initial,
                maximum_interval: maximum,
                backoff_coefficient: coefficient,
                maximum_attempts: attempts,
                ..Default::default()
            })),
    ]
}

fn payloads() -> impl Strategy<Value = Option<Payloads>> {
    prop_oneof![
        Just(None),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(|data| Some(Payloads {
            payloads: vec![Payload {
                data,
                ..Default::default()
            }],
        })),
    ]
}

// Commands may still name a namespace (deprecated, and what a hostile worker sends).
#[allow(deprecated)]
fn command() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        4 => (id(), prop_oneof![Just("act"), Just("")], duration(), duration(), duration(), retry_policy())
            .prop_map(|(activity_id, name, schedule_to_close, start_to_close, heartbeat, retry)| {
                Cmd::ScheduleActivityTaskCommandAttributes(ScheduleActivityTaskCommandAttributes {
                    activity_id,
                    activity_type: Some(ActivityType { name: name.to_owned() }),
                    task_queue: Some(TaskQueue { name: "q".to_owned(), ..Default::default() }),
                    schedule_to_close_timeout: schedule_to_close,
                    start_to_close_timeout: start_to_close,
                    heartbeat_timeout: heartbeat,
                    retry_policy: retry,
                    ..Default::default()
                })
            }),
        1 => (0i64..40).prop_map(|scheduled_event_id| {
            Cmd::RequestCancelActivityTaskCommandAttributes(RequestCancelActivityTaskCommandAttributes {
                scheduled_event_id,
            })
        }),
        3 => (id(), duration()).prop_map(|(timer_id, start_to_fire_timeout)| {
            Cmd::StartTimerCommandAttributes(StartTimerCommandAttributes { timer_id, start_to_fire_timeout })
        }),
        1 => id().prop_map(|timer_id| Cmd::CancelTimerCommandAttributes(CancelTimerCommandAttributes { timer_id })),
        2 => (id(), namespace(), duration()).prop_map(|(workflow_id, namespace, run_timeout)| {
            Cmd::StartChildWorkflowExecutionCommandAttributes(StartChildWorkflowExecutionCommandAttributes {
                namespace,
                workflow_id: format!("child-{workflow_id}"),
                workflow_type: Some(WorkflowType { name: "Child".to_owned() }),
                task_queue: Some(TaskQueue { name: "q".to_owned(), ..Default::default() }),
                workflow_run_timeout: run_timeout,
                ..Default::default()
            })
        }),
        1 => (id(), namespace()).prop_map(|(workflow_id, namespace)| {
            Cmd::SignalExternalWorkflowExecutionCommandAttributes(SignalExternalWorkflowExecutionCommandAttributes {
                namespace,
                execution: Some(WorkflowExecution { workflow_id: format!("child-{workflow_id}"), run_id: String::new() }),
                signal_name: "poke".to_owned(),
                ..Default::default()
            })
        }),
        1 => (id(), namespace()).prop_map(|(workflow_id, namespace)| {
            Cmd::RequestCancelExternalWorkflowExecutionCommandAttributes(RequestCancelExternalWorkflowExecutionCommandAttributes {
                namespace,
                workflow_id: format!("child-{workflow_id}"),
                ..Default::default()
            })
        }),
        1 => payloads().prop_map(|result| {
            Cmd::CompleteWorkflowExecutionCommandAttributes(CompleteWorkflowExecutionCommandAttributes { result })
        }),
        1 => Just(Cmd::FailWorkflowExecutionCommandAttributes(FailWorkflowExecutionCommandAttributes {
            failure: Some(Failure { message: "boom".to_owned(), ..Default::default() }),
        })),
        1 => Just(Cmd::CancelWorkflowExecutionCommandAttributes(Default::default())),
        1 => duration().prop_map(|workflow_run_timeout| {
            Cmd::ContinueAsNewWorkflowExecutionCommandAttributes(ContinueAsNewWorkflowExecutionCommandAttributes {
                workflow_type: Some(WorkflowType { name: "W".to_owned() }),
                task_queue: Some(TaskQueue { name: "q".to_owned(), ..Default::default() }),
                workflow_run_timeout,
                ..Default::default()
            })
        }),
        1 => (id(), payloads()).prop_map(|(marker_name, details)| {
            Cmd::RecordMarkerCommandAttributes(RecordMarkerCommandAttributes {
                marker_name,
                details: details.map(|d| HashMap::from([("data".to_owned(), d)])).unwrap_or_default(),
                ..Default::default()
            })
        }),
    ]
}

/// A step; with `restarts`, the engine may also stop and open its file again.
fn step(restarts: bool) -> impl Strategy<Value = Step> {
    prop_oneof![
        u32::from(restarts) * 2 => Just(Step::Restart),
        6 => (
            proptest::collection::vec(command(), 0..4),
            proptest::collection::vec(update_answer(), 0..3),
        )
            .prop_map(|(commands, answers)| Step::Complete(commands, answers)),
        2 => (0u8..3).prop_map(Step::Update),
        1 => Just(Step::FailTask),
        4 => prop_oneof![
            Just(Answer::Complete), Just(Answer::Fail), Just(Answer::Canceled),
            Just(Answer::Heartbeat), Just(Answer::Vanish)
        ].prop_map(Step::Activity),
        2 => (0u8..3).prop_map(Step::Signal),
        1 => Just(Step::Cancel),
        1 => Just(Step::Terminate),
        3 => prop_oneof![Just(1u32), Just(10), Just(61), Just(3_600), Just(86_400 * 30)].prop_map(Step::Wait),
    ]
}

/// A refusal is an answer; `INTERNAL` (a caught panic) or `UNKNOWN` is not.
fn answered<T>(call: &str, result: Result<tonic::Response<T>, Status>) -> Option<T> {
    match result {
        Ok(response) => Some(response.into_inner()),
        Err(status) => {
            assert!(
                !matches!(status.code(), Code::Internal | Code::Unknown),
                "{call} was not answered: {status:?}"
            );
            None
        }
    }
}

/// What a short poll costs: the engine answers `DEADLINE_MARGIN` before the deadline.
const SHORT: Duration = Duration::from_millis(1);

async fn take_activity(svc: &Service) -> Option<Vec<u8>> {
    let mut request = Request::new(PollActivityTaskQueueRequest {
        namespace: "default".to_owned(),
        task_queue: Some(TaskQueue {
            name: "q".to_owned(),
            ..Default::default()
        }),
        identity: "property".to_owned(),
        ..Default::default()
    });
    request.set_timeout(SHORT + DEADLINE_MARGIN);
    let task = answered(
        "PollActivityTaskQueue",
        svc.poll_activity_task_queue(request).await,
    )?;
    (!task.task_token.is_empty()).then_some(task.task_token)
}

fn update_answer() -> impl Strategy<Value = UpdateAnswer> {
    prop_oneof![
        3 => Just(UpdateAnswer::Complete),
        2 => Just(UpdateAnswer::Accept),
        2 => Just(UpdateAnswer::Reject),
        1 => Just(UpdateAnswer::Ignore),
        1 => Just(UpdateAnswer::RespondOnly),
    ]
}

/// A workflow task taken from the queue, if there was one.
async fn take_workflow_task(svc: &Service) -> Option<PollWorkflowTaskQueueResponse> {
    let task = answered(
        "PollWorkflowTaskQueue",
        svc.poll_workflow_task_queue(poll("q", false, SHORT)).await,
    )?;
    (!task.task_token.is_empty()).then_some(task)
}

/// The protocol messages answering the update requests `delivered` so.
fn update_messages(delivered: &[Message], answers: &[UpdateAnswer]) -> Vec<Message> {
    use proto::update::{outcome, Acceptance, Meta, Outcome, Rejection, Response};
    let mut messages = Vec::new();
    for (n, request) in delivered.iter().enumerate() {
        let answer = answers
            .get(n)
            .or(answers.last())
            .copied()
            .unwrap_or(UpdateAnswer::Ignore);
        let id = &request.protocol_instance_id;
        let message = |kind: &str, body| Message {
            id: format!("{id}/{kind}"),
            protocol_instance_id: id.clone(),
            body: Some(body),
            ..Default::default()
        };
        let accept = || {
            message(
                "accept",
                proto::pack(
                    "temporal.api.update.v1.Acceptance",
                    &Acceptance {
                        accepted_request_message_id: request.id.clone(),
                        accepted_request_sequencing_event_id: sequencing_event_id(request),
                        ..Default::default()
                    },
                ),
            )
        };
        let respond = || {
            message(
                "respond",
                proto::pack(
                    "temporal.api.update.v1.Response",
                    &Response {
                        meta: Some(Meta {
                            update_id: id.clone(),
                            identity: "property".to_owned(),
                        }),
                        outcome: Some(Outcome {
                            value: Some(outcome::Value::Success(Payloads::default())),
                        }),
                    },
                ),
            )
        };
        match answer {
            UpdateAnswer::Complete => messages.extend([accept(), respond()]),
            UpdateAnswer::Accept => messages.push(accept()),
            UpdateAnswer::RespondOnly => messages.push(respond()),
            UpdateAnswer::Reject => messages.push(message(
                "reject",
                proto::pack(
                    "temporal.api.update.v1.Rejection",
                    &Rejection {
                        rejected_request_message_id: request.id.clone(),
                        failure: Some(Failure {
                            message: "rejected".to_owned(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                ),
            )),
            UpdateAnswer::Ignore => {}
        }
    }
    messages
}

fn execution() -> Option<WorkflowExecution> {
    Some(WorkflowExecution {
        workflow_id: "wf".to_owned(),
        run_id: String::new(),
    })
}

async fn apply(svc: &Service, step: Step) {
    match step {
        Step::Complete(commands, answers) => {
            if let Some(task) = take_workflow_task(svc).await {
                let mut request = completion(task.task_token, commands);
                request.get_mut().messages = update_messages(&task.messages, &answers);
                answered(
                    "RespondWorkflowTaskCompleted",
                    svc.respond_workflow_task_completed(request).await,
                );
            }
        }
        Step::FailTask => {
            if let Some(PollWorkflowTaskQueueResponse { task_token, .. }) =
                take_workflow_task(svc).await
            {
                let request = RespondWorkflowTaskFailedRequest {
                    namespace: "default".to_owned(),
                    task_token,
                    ..Default::default()
                };
                answered(
                    "RespondWorkflowTaskFailed",
                    svc.respond_workflow_task_failed(Request::new(request))
                        .await,
                );
            }
        }
        Step::Activity(answer) => {
            let Some(task_token) = take_activity(svc).await else {
                return;
            };
            let namespace = "default".to_owned();
            match answer {
                Answer::Complete => {
                    let request = RespondActivityTaskCompletedRequest {
                        namespace,
                        task_token,
                        ..Default::default()
                    };
                    answered(
                        "RespondActivityTaskCompleted",
                        svc.respond_activity_task_completed(Request::new(request))
                            .await,
                    );
                }
                Answer::Fail => {
                    let request = RespondActivityTaskFailedRequest {
                        namespace,
                        task_token,
                        failure: Some(Failure {
                            message: "no".to_owned(),
                            failure_info: Some(FailureInfo::ApplicationFailureInfo(
                                Default::default(),
                            )),
                            ..Default::default()
                        }),
                        ..Default::default()
                    };
                    answered(
                        "RespondActivityTaskFailed",
                        svc.respond_activity_task_failed(Request::new(request))
                            .await,
                    );
                }
                Answer::Canceled => {
                    let request = RespondActivityTaskCanceledRequest {
                        namespace,
                        task_token,
                        ..Default::default()
                    };
                    answered(
                        "RespondActivityTaskCanceled",
                        svc.respond_activity_task_canceled(Request::new(request))
                            .await,
                    );
                }
                Answer::Heartbeat => {
                    let request = RecordActivityTaskHeartbeatRequest {
                        namespace,
                        task_token,
                        ..Default::default()
                    };
                    answered(
                        "RecordActivityTaskHeartbeat",
                        svc.record_activity_task_heartbeat(Request::new(request))
                            .await,
                    );
                }
                Answer::Vanish => {}
            }
        }
        Step::Signal(n) => {
            let request = SignalWorkflowExecutionRequest {
                namespace: "default".to_owned(),
                workflow_execution: execution(),
                signal_name: "poke".to_owned(),
                request_id: format!("signal-{n}"),
                ..Default::default()
            };
            answered(
                "SignalWorkflowExecution",
                svc.signal_workflow_execution(Request::new(request)).await,
            );
        }
        Step::Update(n) => {
            let mut request = Request::new(UpdateWorkflowExecutionRequest {
                namespace: "default".to_owned(),
                workflow_execution: execution(),
                request: Some(proto::update::Request {
                    meta: Some(proto::update::Meta {
                        update_id: format!("update-{n}"),
                        identity: "property".to_owned(),
                    }),
                    input: Some(proto::update::Input {
                        name: "change".to_owned(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            });
            request.set_timeout(SHORT + DEADLINE_MARGIN);
            answered(
                "UpdateWorkflowExecution",
                svc.update_workflow_execution(request).await,
            );
        }
        Step::Cancel => {
            let request = RequestCancelWorkflowExecutionRequest {
                namespace: "default".to_owned(),
                workflow_execution: execution(),
                ..Default::default()
            };
            answered(
                "RequestCancelWorkflowExecution",
                svc.request_cancel_workflow_execution(Request::new(request))
                    .await,
            );
        }
        Step::Terminate => {
            let request = TerminateWorkflowExecutionRequest {
                namespace: "default".to_owned(),
                workflow_execution: execution(),
                reason: "property".to_owned(),
                ..Default::default()
            };
            answered(
                "TerminateWorkflowExecution",
                svc.terminate_workflow_execution(Request::new(request))
                    .await,
            );
        }
        Step::Wait(seconds) => {
            let fired = svc
                .store
                .try_transaction(|state| {
                    let to = crate::clock::after(state.now, Duration::from_secs(seconds.into()));
                    state.clock.skip_to(to);
                    state.now = state.clock.now();
                    while state.fire_next_due() {}
                })
                .await;
            if let Err(failed) = fired {
                panic!("firing deadlines failed: {}", failed.message);
            }
        }
        Step::Restart => unreachable!("the runner restarts the engine"),
    }
}

/// What `event` says became of an earlier event: `(its id, what it must be, which kind of
/// outcome)`. Outcomes of one kind may come once per earlier event.
fn reference(event: &HistoryEvent) -> Option<(i64, EventType, &'static str)> {
    use EventType as T;
    Some(match event.attributes.as_ref()? {
        Event::WorkflowTaskStartedEventAttributes(a) => {
            (a.scheduled_event_id, T::WorkflowTaskScheduled, "start")
        }
        Event::WorkflowTaskCompletedEventAttributes(a) => {
            (a.scheduled_event_id, T::WorkflowTaskScheduled, "outcome")
        }
        Event::WorkflowTaskFailedEventAttributes(a) => {
            (a.scheduled_event_id, T::WorkflowTaskScheduled, "outcome")
        }
        Event::WorkflowTaskTimedOutEventAttributes(a) => {
            (a.scheduled_event_id, T::WorkflowTaskScheduled, "outcome")
        }
        Event::ActivityTaskStartedEventAttributes(a) => {
            (a.scheduled_event_id, T::ActivityTaskScheduled, "start")
        }
        Event::ActivityTaskCompletedEventAttributes(a) => {
            (a.scheduled_event_id, T::ActivityTaskScheduled, "outcome")
        }
        Event::ActivityTaskFailedEventAttributes(a) => {
            (a.scheduled_event_id, T::ActivityTaskScheduled, "outcome")
        }
        Event::ActivityTaskTimedOutEventAttributes(a) => {
            (a.scheduled_event_id, T::ActivityTaskScheduled, "outcome")
        }
        Event::ActivityTaskCanceledEventAttributes(a) => {
            (a.scheduled_event_id, T::ActivityTaskScheduled, "outcome")
        }
        Event::ActivityTaskCancelRequestedEventAttributes(a) => {
            (a.scheduled_event_id, T::ActivityTaskScheduled, "cancel")
        }
        Event::TimerFiredEventAttributes(a) => (a.started_event_id, T::TimerStarted, "outcome"),
        Event::WorkflowExecutionUpdateCompletedEventAttributes(a) => (
            a.accepted_event_id,
            T::WorkflowExecutionUpdateAccepted,
            "outcome",
        ),
        Event::TimerCanceledEventAttributes(a) => (a.started_event_id, T::TimerStarted, "outcome"),
        Event::ChildWorkflowExecutionStartedEventAttributes(a) => (
            a.initiated_event_id,
            T::StartChildWorkflowExecutionInitiated,
            "start",
        ),
        Event::StartChildWorkflowExecutionFailedEventAttributes(a) => (
            a.initiated_event_id,
            T::StartChildWorkflowExecutionInitiated,
            "start",
        ),
        Event::ChildWorkflowExecutionCompletedEventAttributes(a) => (
            a.initiated_event_id,
            T::StartChildWorkflowExecutionInitiated,
            "outcome",
        ),
        Event::ChildWorkflowExecutionFailedEventAttributes(a) => (
            a.initiated_event_id,
            T::StartChildWorkflowExecutionInitiated,
            "outcome",
        ),
        Event::ChildWorkflowExecutionCanceledEventAttributes(a) => (
            a.initiated_event_id,
            T::StartChildWorkflowExecutionInitiated,
            "outcome",
        ),
        Event::ChildWorkflowExecutionTimedOutEventAttributes(a) => (
            a.initiated_event_id,
            T::StartChildWorkflowExecutionInitiated,
            "outcome",
        ),
        Event::ChildWorkflowExecutionTerminatedEventAttributes(a) => (
            a.initiated_event_id,
            T::StartChildWorkflowExecutionInitiated,
            "outcome",
        ),
        Event::ExternalWorkflowExecutionSignaledEventAttributes(a) => (
            a.initiated_event_id,
            T::SignalExternalWorkflowExecutionInitiated,
            "outcome",
        ),
        Event::SignalExternalWorkflowExecutionFailedEventAttributes(a) => (
            a.initiated_event_id,
            T::SignalExternalWorkflowExecutionInitiated,
            "outcome",
        ),
        Event::ExternalWorkflowExecutionCancelRequestedEventAttributes(a) => (
            a.initiated_event_id,
            T::RequestCancelExternalWorkflowExecutionInitiated,
            "outcome",
        ),
        Event::RequestCancelExternalWorkflowExecutionFailedEventAttributes(a) => (
            a.initiated_event_id,
            T::RequestCancelExternalWorkflowExecutionInitiated,
            "outcome",
        ),
        _ => return None,
    })
}

fn is_close(t: EventType) -> bool {
    use EventType as T;
    matches!(
        t,
        T::WorkflowExecutionCompleted
            | T::WorkflowExecutionFailed
            | T::WorkflowExecutionTimedOut
            | T::WorkflowExecutionCanceled
            | T::WorkflowExecutionTerminated
            | T::WorkflowExecutionContinuedAsNew
    )
}

/// The invariants of one run's history; `Err` says which is broken.
fn check_history(events: &[HistoryEvent]) -> Result<(), String> {
    let mut seen = HashMap::new();
    let mut accepted = HashMap::new();
    for (i, event) in events.iter().enumerate() {
        let id = i as i64 + 1;
        if let Some(Event::WorkflowExecutionUpdateAcceptedEventAttributes(a)) = &event.attributes {
            if let Some(first) = accepted.insert(a.protocol_instance_id.clone(), id) {
                return Err(format!(
                    "update `{}` is accepted twice: events {first} and {id}",
                    a.protocol_instance_id
                ));
            }
        }
        if event.event_id != id {
            return Err(format!("event {id} has id {}", event.event_id));
        }
        if i == 0 && event.event_type() != EventType::WorkflowExecutionStarted {
            return Err(format!("event 1 is {:?}", event.event_type()));
        }
        if is_close(event.event_type()) && i + 1 != events.len() {
            return Err(format!(
                "{:?} (event {id}) is followed by {:?}",
                event.event_type(),
                events[i + 1].event_type()
            ));
        }
        if let Some((earlier, kind, outcome)) = reference(event) {
            let target = usize::try_from(earlier - 1)
                .ok()
                .and_then(|at| events.get(at))
                .filter(|_| earlier < id);
            match target {
                Some(e) if e.event_type() == kind => {}
                _ => {
                    return Err(format!(
                        "{:?} (event {id}) refers to event {earlier}, not an earlier {kind:?}",
                        event.event_type()
                    ))
                }
            }
            if let Some(first) = seen.insert((earlier, outcome), id) {
                return Err(format!(
                    "event {earlier} has two {outcome}s: events {first} and {id}"
                ));
            }
        }
    }
    Ok(())
}

/// Every run's history keeps its invariants, and the timer wheel holds exactly the
/// deadlines each run's state implies.
fn check_state(svc: &Service) -> Result<(), String> {
    svc.store
        .apply(|state| {
            for run in state.runs.values() {
                check_history(&run.events.to_vec())
                    .map_err(|e| format!("run of `{}`: {e}", run.workflow_id))?;
                let mut armed = state.wheel.of_run(&run.run_id);
                let mut implied = run.deadlines();
                armed.sort();
                implied.sort();
                if armed != implied {
                    return Err(format!(
                        "run of `{}`: armed {armed:?}, its state implies {implied:?}",
                        run.workflow_id
                    ));
                }
            }
            Ok(())
        })
        .0
}

/// An engine on the virtual clock, in memory or on the file `db`.
fn engine(db: Option<&Path>) -> Service {
    let store = Store::open(
        &["default".to_owned()],
        Clock::new_virtual(),
        Config::default(),
        db,
    )
    .expect("the store opens");
    Service {
        store: Arc::new(store),
    }
}

/// Every run's history, by run id.
fn histories(svc: &Service) -> BTreeMap<String, Vec<HistoryEvent>> {
    svc.store
        .apply(|state| {
            state
                .runs
                .values()
                .map(|run| (run.run_id.clone(), run.events.to_vec()))
                .collect()
        })
        .0
}

/// Stops the engine and opens its file again, its virtual clock where it was: every
/// history it acknowledged is there, whole (opening may add to it: a task whose worker
/// went with the engine, say).
fn restart(svc: Service, db: &Path) -> Result<Service, String> {
    let before = histories(&svc);
    let now = svc.store.apply(|state| state.now).0;
    svc.store.close();
    svc.store.close_db();
    drop(svc);
    let svc = engine(Some(db));
    svc.store.apply(|state| {
        state.clock.skip_to(now);
        state.now = state.clock.now();
    });
    let after = histories(&svc);
    for (run_id, events) in before {
        match after.get(&run_id) {
            Some(kept) if kept.starts_with(&events) => {}
            Some(kept) => {
                return Err(format!(
                    "run `{run_id}` had {} events, {} after the restart, not the same",
                    events.len(),
                    kept.len()
                ))
            }
            None => return Err(format!("run `{run_id}` is gone after the restart")),
        }
    }
    Ok(svc)
}

/// Runs `steps` on a fresh engine (on the file `db`, if given), checking the invariants
/// after each.
async fn run_steps(steps: Vec<Step>, db: Option<&Path>) -> Result<(), String> {
    let mut svc = engine(db);
    let start = StartWorkflowExecutionRequest {
        namespace: "default".to_owned(),
        workflow_id: "wf".to_owned(),
        workflow_type: Some(WorkflowType {
            name: "W".to_owned(),
        }),
        task_queue: Some(TaskQueue {
            name: "q".to_owned(),
            ..Default::default()
        }),
        ..Default::default()
    };
    svc.start_workflow_execution(Request::new(start))
        .await
        .map_err(|e| e.to_string())?;
    for (n, step) in steps.into_iter().enumerate() {
        let what = format!("{step:?}");
        match (step, db) {
            (Step::Restart, Some(db)) => svc = restart(svc, db)?,
            (Step::Restart, None) => {}
            (step, _) => apply(&svc, step).await,
        }
        check_state(&svc).map_err(|e| format!("after step {n} ({what}): {e}"))?;
    }
    svc.store.close();
    svc.store.close_db();
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 96,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_sequence_of_answers_calls_and_time_keeps_the_invariants(
        steps in proptest::collection::vec(step(false), 1..40)
    ) {
        let outcome = runtime().block_on(run_steps(steps, None));
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        ..ProptestConfig::default()
    })]

    /// On a file, with restarts among the steps: nothing acknowledged is lost.
    #[test]
    fn any_sequence_with_restarts_keeps_every_acknowledged_event(
        steps in proptest::collection::vec(step(true), 1..30)
    ) {
        let db = super::hostile::TempDb::new("properties");
        let outcome = runtime().block_on(run_steps(steps, Some(db.path())));
        prop_assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 96,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_list_query_is_answered(query in list_query()) {
        let svc = super::service();
        let outcome: Result<(), String> = runtime().block_on(async {
            super::start(&svc, "listed").await;
            for count in [false, true] {
                let result = if count {
                    svc.count_workflow_executions(Request::new(CountWorkflowExecutionsRequest {
                        namespace: "default".to_owned(),
                        query: query.clone(),
                    }))
                    .await
                    .map(|_| ())
                } else {
                    svc.list_workflow_executions(Request::new(ListWorkflowExecutionsRequest {
                        namespace: "default".to_owned(),
                        query: query.clone(),
                        ..Default::default()
                    }))
                    .await
                    .map(|_| ())
                };
                if let Err(status) = result {
                    if status.code() != Code::InvalidArgument {
                        return Err(format!("{status:?}"));
                    }
                }
            }
            Ok(())
        });
        prop_assert!(outcome.is_ok(), "{query:?}: {}", outcome.unwrap_err());
    }
}

/// Queries made of the list language's words, mostly not well formed, and arbitrary text.
fn list_query() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        Just("WorkflowId"),
        Just("WorkflowType"),
        Just("ExecutionStatus"),
        Just("StartTime"),
        Just("CloseTime"),
        Just("RunId"),
        Just("TaskQueue"),
        Just("HistoryLength"),
        Just("CustomKeywordField"),
        Just("="),
        Just("!="),
        Just("<"),
        Just(">="),
        Just("AND"),
        Just("OR"),
        Just("NOT"),
        Just("IN"),
        Just("BETWEEN"),
        Just("STARTS_WITH"),
        Just("IS"),
        Just("NULL"),
        Just("("),
        Just(")"),
        Just(","),
        Just("'listed'"),
        Just("'Running'"),
        Just("'2026-01-01T00:00:00Z'"),
        Just("\"x\""),
        Just("42"),
        Just("-1e999"),
        Just("'"),
        Just("ORDER BY"),
        Just("GROUP BY"),
        Just("`"),
    ];
    prop_oneof![
        4 => proptest::collection::vec(word, 0..40).prop_map(|words| words.join(" ")),
        1 => ".{0,80}",
        1 => (1usize..200).prop_map(|n| format!("{}WorkflowId = 'listed'{}", "(".repeat(n), ")".repeat(n / 2))),
    ]
}

/// The checks themselves catch what they are meant to.
#[test]
fn the_history_check_finds_two_outcomes_and_events_after_the_close() {
    use proto::history::*;
    let event = |id: i64, attributes: Event| HistoryEvent {
        event_id: id,
        event_type: crate::event_log::event_type(&attributes) as i32,
        attributes: Some(attributes),
        ..Default::default()
    };
    let started = event(
        1,
        Event::WorkflowExecutionStartedEventAttributes(Default::default()),
    );
    let timer = event(2, Event::TimerStartedEventAttributes(Default::default()));
    let fired = |id| {
        event(
            id,
            Event::TimerFiredEventAttributes(TimerFiredEventAttributes {
                started_event_id: 2,
                ..Default::default()
            }),
        )
    };
    let done = |id| {
        event(
            id,
            Event::WorkflowExecutionCompletedEventAttributes(Default::default()),
        )
    };
    assert!(check_history(&[started.clone(), timer.clone(), fired(3), done(4)]).is_ok());
    let twice = check_history(&[started.clone(), timer.clone(), fired(3), fired(4)]);
    assert!(twice.unwrap_err().contains("two outcomes"));
    let late_timer = event(3, Event::TimerStartedEventAttributes(Default::default()));
    let after = check_history(&[started.clone(), done(2), late_timer]);
    assert!(after.unwrap_err().contains("is followed by"));
    let gap = check_history(&[started, fired(3)]);
    assert!(gap.unwrap_err().contains("has id"));
}

/// The event id an update request was delivered at, which its acceptance names.
fn sequencing_event_id(request: &Message) -> i64 {
    match request.sequencing_id {
        Some(SequencingId::EventId(id)) => id,
        _ => 0,
    }
}
