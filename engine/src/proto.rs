//! The generated `WorkflowService` and `OperatorService` server traits, aliases of the Temporal message types,
//! and conversions between protobuf and std times.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[allow(
    missing_docs,
    unreachable_pub,
    unused_qualifications,
    clippy::all,
    clippy::pedantic
)]
mod generated {
    pub(crate) mod workflow {
        tonic::include_proto!("temporal.api.workflowservice.v1");
    }
    pub(crate) mod operator {
        tonic::include_proto!("temporal.api.operatorservice.v1");
    }
}

include!(concat!(env!("OUT_DIR"), "/methods.rs"));

pub(crate) use generated::{
    operator::operator_service_server::{OperatorService, OperatorServiceServer},
    workflow::workflow_service_server::{WorkflowService, WorkflowServiceServer},
};
pub(crate) use temporalio_protos::temporal::api::{
    activity::v1 as activity, command::v1 as command, common::v1 as common, enums::v1 as enums,
    errordetails::v1 as errordetails, failure::v1 as failure, history::v1 as history,
    namespace::v1 as namespace, operatorservice::v1 as operator, protocol::v1 as protocol,
    query::v1 as query, schedule::v1 as schedule, sdk::v1 as sdk, taskqueue::v1 as taskqueue,
    update::v1 as update, workflow::v1 as workflow, workflowservice::v1 as service,
};

/// A protobuf timestamp of a system time.
pub(crate) fn timestamp(t: SystemTime) -> prost_wkt_types::Timestamp {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    prost_wkt_types::Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// The system time of an optional protobuf timestamp; `None` when absent or before 1970.
pub(crate) fn system_time(t: Option<&prost_wkt_types::Timestamp>) -> Option<SystemTime> {
    let t = t?;
    UNIX_EPOCH.checked_add(Duration::new(
        u64::try_from(t.seconds).ok()?,
        t.nanos.clamp(0, 999_999_999) as u32,
    ))
}

/// The longest duration a protobuf `Duration` may hold: 10,000 years.
pub(crate) const MAX_DURATION_SECONDS: i64 = 315_576_000_000;

/// A std duration of an optional protobuf duration; `None` when absent, zero or negative.
/// Values beyond what a protobuf duration may hold (10,000 years) count as that: the
/// requests' checks refuse them (`validate`), and nothing stored can make this panic.
pub(crate) fn duration(d: Option<&prost_wkt_types::Duration>) -> Option<Duration> {
    let d = d?;
    if d.seconds < 0 || (d.seconds == 0 && d.nanos <= 0) {
        return None;
    }
    let seconds = d.seconds.min(MAX_DURATION_SECONDS) as u64;
    Some(Duration::new(seconds, d.nanos.clamp(0, 999_999_999) as u32))
}

/// A protobuf duration of a std duration.
pub(crate) fn proto_duration(d: Duration) -> prost_wkt_types::Duration {
    prost_wkt_types::Duration {
        seconds: d.as_secs().min(MAX_DURATION_SECONDS as u64) as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// Packs a message into an `Any` with Temporal's type URL convention.
pub(crate) fn pack<M: prost::Message>(type_name: &str, message: &M) -> prost_wkt_types::Any {
    prost_wkt_types::Any {
        type_url: format!("type.googleapis.com/{type_name}"),
        value: message.encode_to_vec(),
    }
}
