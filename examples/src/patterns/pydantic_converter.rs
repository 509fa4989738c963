//! Typed data converter (the seed's "Pydantic Converter"): payloads are typed Rust values,
//! validated when they are read. A non-positive `user_id` or a malformed IPv4 address is
//! rejected with a message naming the field.

use std::{net::Ipv4Addr, num::NonZeroU64, time::Duration};

use capstan::prelude::*;
use serde_json::{json, Value};

use crate::tour::workflow_id;

/// A user, validated on deserialization like the seed's Pydantic model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UserData {
    /// Positive: `0` and negative numbers are rejected.
    pub user_id: NonZeroU64,
    /// Serialized as the dotted string Python's `IPv4Address` uses.
    pub ip_address: Ipv4Addr,
}

/// Processes users and returns how many.
#[activity]
pub fn process_users(users: Vec<UserData>) -> Result<usize, ActivityError> {
    Ok(users.len())
}

/// Processes users with typed, validated payloads.
#[workflow]
#[derive(Default)]
pub struct PydanticWorkflow;

#[workflow]
impl PydanticWorkflow {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>, users: Vec<UserData>) -> WorkflowResult<usize> {
        Ok(ctx
            .activity(process_users, users)
            .start_to_close_timeout(Duration::from_secs(60))
            .await?)
    }
}

/// Registers the pattern's workflow and activity.
pub fn register(worker: Worker) -> Worker {
    worker
        .register_workflow::<PydanticWorkflow>()
        .register_activity(process_users)
}

/// The tour's driver: two valid users are processed, and a `user_id` of 0 is rejected
/// when it is read.
pub async fn tour(client: &Client, task_queue: &str, run_id: &str) -> anyhow::Result<Value> {
    let users: Vec<UserData> = serde_json::from_value(json!([
        { "user_id": 1, "ip_address": "192.168.1.1" },
        { "user_id": 2, "ip_address": "10.0.0.1" }
    ]))?;
    let count = PydanticWorkflow::execute(client, workflow_id("pydantic", run_id), users)
        .task_queue(task_queue)
        .await?;
    anyhow::ensure!(count == 2, "unexpected count {count}");
    let rejected = serde_json::from_value::<Vec<UserData>>(
        json!([{ "user_id": 0, "ip_address": "10.0.0.1" }]),
    )
    .map(|_| "accepted".to_owned())
    .unwrap_or_else(|e| e.to_string());
    Ok(json!({ "processed": count, "invalid_user_id": rejected }))
}
