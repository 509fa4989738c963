//! Long-running Entity: a customer reward account lives as one workflow. Updates change it
//! (with a validator), a query reads it, an update closes it, and continue-as-new keeps
//! its history short while carrying points and level over.

use std::time::{Duration, SystemTime};

use capstan::prelude::*;
use serde_json::{json, Value};

use crate::tour::workflow_id;

/// The account's level, from its points.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum CustomerRewardLevel {
    /// Under 500 points.
    #[default]
    Basic,
    /// 500 to 999 points.
    Gold,
    /// 1000 points and more.
    Platinum,
}

impl CustomerRewardLevel {
    /// The level `points` earn.
    pub fn for_points(points: i64) -> Self {
        match points {
            500..=999 => Self::Gold,
            1000.. => Self::Platinum,
            _ => Self::Basic,
        }
    }
}

/// Starts an account, or continues one in a new run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CustomerRewardAccountInput {
    /// The customer.
    pub user_id: String,
    /// Points carried over.
    #[serde(default)]
    pub starting_points: i64,
    /// Level carried over.
    #[serde(default)]
    pub starting_level: CustomerRewardLevel,
}

/// The account as callers see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CustomerRewardAccountStatus {
    /// The level.
    pub level: CustomerRewardLevel,
    /// The points, never negative.
    pub points: i64,
    /// Whether the account is open.
    pub is_active: bool,
}

/// The `add_points` argument. `points` is an integer: `1.5` or `"ten"` is rejected
/// before the update is accepted, the seed's "Points must be an integer.".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AddPointInput {
    /// Points to add; negative to take some away.
    pub points: i64,
}

/// What `get_user` returns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UserInfo {
    /// The user id.
    pub id: String,
}

/// Looks the user up in an external system (here: echoes the id).
#[activity]
pub async fn get_user(user_id: String) -> Result<UserInfo, ActivityError> {
    Ok(UserInfo { id: user_id })
}

/// Long-running entity workflow for managing customer reward accounts.
#[workflow]
pub struct CustomerRewardAccount {
    level: CustomerRewardLevel,
    points: i64,
    is_active: bool,
    user_id: Option<String>,
    create_time: Option<SystemTime>,
    cancel_time: Option<SystemTime>,
    update_count: u32,
}

impl Default for CustomerRewardAccount {
    fn default() -> Self {
        Self {
            level: CustomerRewardLevel::Basic,
            points: 0,
            is_active: true,
            user_id: None,
            create_time: None,
            cancel_time: None,
            update_count: 0,
        }
    }
}

#[workflow]
impl CustomerRewardAccount {
    /// Initializes the entity and enters its long-running loop.
    #[run]
    pub async fn run(
        ctx: WorkflowContext<Self>,
        inp: CustomerRewardAccountInput,
    ) -> WorkflowResult<CustomerRewardAccountStatus> {
        ctx.logger()
            .info(format!("Creating reward account for {}", inp.user_id));
        ctx.state_mut(|s| {
            s.create_time = Some(ctx.now());
            s.points = inp.starting_points;
            s.level = inp.starting_level;
        });
        // Initialize the entity with external data.
        let user = ctx
            .activity(get_user, inp.user_id)
            .start_to_close_timeout(Duration::from_secs(1))
            .await?;
        ctx.state_mut(|s| s.user_id = Some(user.id));

        // Wait for the entity's termination or the history's threshold.
        ctx.wait_condition(|s| !s.is_active || ctx.is_continue_as_new_suggested())
            .await?;
        // Let running handlers finish before the run ends.
        ctx.wait_condition(|_| ctx.all_handlers_finished()).await?;
        if !ctx.state(|s| s.is_active) {
            ctx.logger().info(format!(
                "Terminating reward account for {}",
                ctx.state(|s| s.user_id.clone().unwrap_or_default())
            ));
            return Ok(ctx.state(Self::status));
        }
        ctx.state(|s| {
            ctx.continue_as_new(CustomerRewardAccountInput {
                user_id: s.user_id.clone().unwrap_or_default(),
                starting_points: s.points,
                starting_level: s.level,
            })
        })
    }

    /// The entity's current state.
    #[query]
    pub fn query_reward_status(&self) -> CustomerRewardAccountStatus {
        self.status()
    }

    /// Adds bonus points without waiting for an answer (a signal cannot be rejected, so a
    /// closed account ignores it); the total never goes below 0.
    #[signal]
    pub fn award_bonus(&mut self, inp: AddPointInput) {
        if self.is_active {
            self.points = self.points.saturating_add(inp.points).max(0);
            self.level = CustomerRewardLevel::for_points(self.points);
        }
    }

    /// Closes the account: the update `cancel` (the client's `cancel_account`, since
    /// `cancel` on a handle cancels the workflow).
    #[update(name = "cancel")]
    pub async fn cancel_account(
        ctx: WorkflowContext<Self>,
    ) -> Result<CustomerRewardAccountStatus, UpdateError> {
        Self::initialized(&ctx).await?;
        Ok(ctx.state_mut(|s| {
            s.is_active = false;
            s.cancel_time = Some(ctx.now());
            s.status()
        }))
    }

    /// Adds (or takes away) points; the total never goes below 0.
    #[update(validator = validate_add_point)]
    pub async fn add_points(
        ctx: WorkflowContext<Self>,
        inp: AddPointInput,
    ) -> Result<CustomerRewardAccountStatus, UpdateError> {
        Self::initialized(&ctx).await?;
        Ok(ctx.state_mut(|s| {
            s.update_count += 1;
            s.points = s.points.saturating_add(inp.points).max(0);
            s.level = CustomerRewardLevel::for_points(s.points);
            s.status()
        }))
    }

    /// Handlers may run before `run` has read its input (an update sent right after the
    /// start arrives with it): they wait for the account to be set up.
    async fn initialized(ctx: &WorkflowContext<Self>) -> Result<(), Failure> {
        ctx.wait_condition(|s| s.user_id.is_some()).await
    }

    /// Runs before an update is accepted; a rejection leaves no trace in the history.
    /// (That `points` is an integer is checked when the argument is read.)
    pub fn validate_add_point(&self, _inp: &AddPointInput) -> Result<(), UpdateError> {
        if !self.is_active {
            return Err(ApplicationError::new("ValueError", "The account is closed.").into());
        }
        Ok(())
    }

    fn status(&self) -> CustomerRewardAccountStatus {
        CustomerRewardAccountStatus {
            level: self.level,
            points: self.points,
            is_active: self.is_active,
        }
    }
}

/// Registers the pattern's workflow and activity.
pub fn register(worker: Worker) -> Worker {
    worker
        .register_workflow::<CustomerRewardAccount>()
        .register_activity(get_user)
}

/// The tour's driver: points added by updates move the level, a fractional amount is
/// rejected, a query reads the account and the `cancel` update closes it.
pub async fn tour(client: &Client, task_queue: &str, run_id: &str) -> anyhow::Result<Value> {
    let input = CustomerRewardAccountInput {
        user_id: "user-1".to_owned(),
        ..Default::default()
    };
    let account =
        CustomerRewardAccount::start(client, workflow_id("reward-account", run_id), input)
            .task_queue(task_queue)
            .await?;
    let mut levels = Vec::new();
    for points in [300, 300, 500, -5000, 120] {
        let status = account.add_points(AddPointInput { points }).await?;
        levels.push(json!([points, status.points, status.level]));
    }
    let rejected = account
        .update_with::<_, CustomerRewardAccountStatus>("add_points", (json!({ "points": 1.5 }),))
        .await
        .map(|_| "accepted".to_owned())
        .unwrap_or_else(|e| e.to_string());
    let queried = account.query_reward_status().await?;
    let closed = account.cancel_account().await?;
    let result = account.result().await?;
    anyhow::ensure!(
        queried.points == 120 && !closed.is_active && result == closed,
        "unexpected statuses {queried:?}, {closed:?}, {result:?}"
    );
    Ok(json!({ "add_points": levels, "rejected": rejected, "result": result }))
}
