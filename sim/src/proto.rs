//! The Temporal API types the simulator speaks, and helpers to build them.

pub use temporalio_protos::temporal::api::{
    command::v1::{self as command, command::Attributes as Cmd, Command},
    common::v1::{ActivityType, Payload, Payloads, RetryPolicy, WorkflowExecution, WorkflowType},
    enums::v1::{
        CommandType, EventType, QueryResultType, ScheduleOverlapPolicy, TaskQueueKind,
        UpdateWorkflowExecutionLifecycleStage, WorkflowExecutionStatus,
    },
    failure::v1::{failure::FailureInfo, ApplicationFailureInfo, Failure},
    history::v1::{history_event::Attributes as Event, History, HistoryEvent},
    protocol::v1::{message::SequencingId, Message},
    query::v1::{WorkflowQuery, WorkflowQueryResult},
    schedule::v1 as schedule,
    taskqueue::v1::{StickyExecutionAttributes, TaskQueue},
    update::v1 as update,
    workflow::v1::NewWorkflowExecutionInfo,
    workflowservice::v1::{self as service, workflow_service_client::WorkflowServiceClient},
};

/// The simulator's namespace.
pub const NAMESPACE: &str = "default";
/// The workflow type every simulated workflow has.
pub const WORKFLOW_TYPE: &str = "sim";

/// A JSON payload of `value`.
pub fn json(value: &impl serde::Serialize) -> Payload {
    Payload {
        metadata: [("encoding".to_owned(), b"json/plain".to_vec())].into(),
        data: serde_json::to_vec(value).expect("simulator values serialize"),
        ..Default::default()
    }
}

/// One JSON payload.
pub fn payloads(value: &impl serde::Serialize) -> Option<Payloads> {
    Some(Payloads {
        payloads: vec![json(value)],
    })
}

/// The first payload of `payloads` as `T`, if it is one.
pub fn decode<T: serde::de::DeserializeOwned>(payloads: Option<&Payloads>) -> Option<T> {
    serde_json::from_slice(&payloads?.payloads.first()?.data).ok()
}

pub fn seconds(s: u64) -> Option<prost_wkt_types::Duration> {
    Some(prost_wkt_types::Duration {
        seconds: s as i64,
        nanos: 0,
    })
}

pub fn task_queue(name: &str) -> Option<TaskQueue> {
    Some(TaskQueue {
        name: name.to_owned(),
        kind: TaskQueueKind::Normal as i32,
        ..Default::default()
    })
}

pub fn execution(workflow_id: &str, run_id: &str) -> Option<WorkflowExecution> {
    Some(WorkflowExecution {
        workflow_id: workflow_id.to_owned(),
        run_id: run_id.to_owned(),
    })
}

/// An application failure saying `message`.
pub fn failure(message: &str, kind: &str) -> Failure {
    Failure {
        message: message.to_owned(),
        failure_info: Some(FailureInfo::ApplicationFailureInfo(
            ApplicationFailureInfo {
                r#type: kind.to_owned(),
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

/// A command of the given attributes, its type filled in.
pub fn command(attributes: Cmd) -> Command {
    let kind = match &attributes {
        Cmd::ScheduleActivityTaskCommandAttributes(_) => CommandType::ScheduleActivityTask,
        Cmd::StartTimerCommandAttributes(_) => CommandType::StartTimer,
        Cmd::CompleteWorkflowExecutionCommandAttributes(_) => {
            CommandType::CompleteWorkflowExecution
        }
        Cmd::FailWorkflowExecutionCommandAttributes(_) => CommandType::FailWorkflowExecution,
        Cmd::CancelWorkflowExecutionCommandAttributes(_) => CommandType::CancelWorkflowExecution,
        Cmd::ContinueAsNewWorkflowExecutionCommandAttributes(_) => {
            CommandType::ContinueAsNewWorkflowExecution
        }
        Cmd::StartChildWorkflowExecutionCommandAttributes(_) => {
            CommandType::StartChildWorkflowExecution
        }
        _ => CommandType::Unspecified,
    };
    Command {
        command_type: kind as i32,
        attributes: Some(attributes),
        ..Default::default()
    }
}

/// `message` packed as a protobuf `Any` of `type_name`.
pub fn pack(type_name: &str, message: &impl prost::Message) -> prost_wkt_types::Any {
    prost_wkt_types::Any {
        type_url: format!("type.googleapis.com/{type_name}"),
        value: message.encode_to_vec(),
    }
}

/// The time of an event.
pub fn time_of(event: &HistoryEvent) -> std::time::SystemTime {
    event
        .event_time
        .as_ref()
        .map_or(std::time::UNIX_EPOCH, |t| {
            std::time::UNIX_EPOCH
                + std::time::Duration::new(t.seconds.max(0) as u64, t.nanos.max(0) as u32)
        })
}

pub fn event_type(event: &HistoryEvent) -> EventType {
    EventType::try_from(event.event_type).unwrap_or(EventType::Unspecified)
}

/// `t` as seconds since the seed's start, for messages (`+12.5s`).
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let start = crate::driver::start_time();
    match t.duration_since(start) {
        Ok(d) => format!("start+{:.3}s", d.as_secs_f64()),
        Err(e) => format!("start-{:.3}s", e.duration().as_secs_f64()),
    }
}
