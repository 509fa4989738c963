//! Typed data converter (the seed's "Pydantic Converter"): payloads are typed Rust values,
//! validated when they are read. A non-positive `user_id` or a malformed IPv4 address is
//! rejected with a message naming the field.

use std::{net::Ipv4Addr, num::NonZeroU64, time::Duration};

use capstan::prelude::*;

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
