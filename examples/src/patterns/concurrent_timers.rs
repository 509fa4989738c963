//! Concurrent Timers: three recurring timers (oil change, inspection, coolant) race; the
//! one that fires sends its notification and is re-armed.

use std::time::Duration;

use capstan::{
    client::history::{Attributes, HistoryEvent},
    prelude::*,
    workflow::{select, Either},
};
use serde_json::{json, Value};

use crate::tour::workflow_id;

const MONTH: Duration = Duration::from_secs(365 * 24 * 3600 / 12);

/// How often each maintenance is due. The seed's periods are the default; tests and the
/// tour pass seconds instead, since a real server's clock cannot be sped up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct MaintenanceSchedule {
    /// Every 3 months.
    pub oil_change: Duration,
    /// Yearly.
    pub inspection: Duration,
    /// Every 2 years.
    pub coolant: Duration,
}

impl Default for MaintenanceSchedule {
    fn default() -> Self {
        Self {
            oil_change: MONTH * 3,
            inspection: MONTH * 12,
            coolant: MONTH * 24,
        }
    }
}

impl MaintenanceSchedule {
    fn every(&self, due: Maintenance) -> Duration {
        match due {
            Maintenance::OilChange => self.oil_change,
            Maintenance::Inspection => self.inspection,
            Maintenance::Coolant => self.coolant,
        }
    }
}

/// The maintenance events, in timer order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Maintenance {
    /// Every 3 months.
    OilChange,
    /// Yearly.
    Inspection,
    /// Every 2 years.
    Coolant,
}

impl Maintenance {
    /// All of them, in timer order.
    pub const ALL: [Self; 3] = [Self::OilChange, Self::Inspection, Self::Coolant];

    /// The notification sent when it is due.
    pub fn message(self) -> &'static str {
        match self {
            Self::OilChange => "Your car needs an oil change",
            Self::Inspection => "Your car needs an annual inspection",
            Self::Coolant => "Your car needs a coolant system service",
        }
    }
}

/// Notifies the user (by email, Slack, push, …).
#[activity]
pub async fn send_notification(user_email: String, message: String) -> Result<(), ActivityError> {
    // Replace this stub with your actual notification logic.
    let _ = (user_email, message);
    Ok(())
}

/// Sends maintenance reminders forever, on three independent schedules.
#[workflow]
#[derive(Default)]
pub struct MaintenanceWorkflow;

#[workflow]
impl MaintenanceWorkflow {
    /// `schedule` is optional so that callers of the seed's one-argument signature get
    /// its periods.
    #[run]
    pub async fn run(
        ctx: WorkflowContext<Self>,
        user_email: String,
        schedule: Option<MaintenanceSchedule>,
    ) -> WorkflowResult<()> {
        let schedule = schedule.unwrap_or_default();
        // Create concurrent timers for the different maintenance events.
        let mut timers = Maintenance::ALL.map(|due| ctx.sleep(schedule.every(due)));
        loop {
            // Wait for whichever timer fires first (the leftmost when several have);
            // the others are ready on the next turn.
            let [oil_change, inspection, coolant] = &mut timers;
            let (due, fired) = match select(select(oil_change, inspection), coolant).await {
                Either::Left((Either::Left((fired, _)), _)) => (Maintenance::OilChange, fired),
                Either::Left((Either::Right((fired, _)), _)) => (Maintenance::Inspection, fired),
                Either::Right((fired, _)) => (Maintenance::Coolant, fired),
            };
            fired?;
            ctx.logger().info(format!("Time for {due:?}"));
            let message = due.message().to_owned();
            ctx.activity(send_notification, (user_email.clone(), message))
                .start_to_close_timeout(Duration::from_secs(30))
                .await?;
            // Reset the timer for the next one.
            timers[due as usize] = ctx.sleep(schedule.every(due));
        }
    }
}

/// The messages `send_notification` was scheduled with, in order.
pub fn notifications(history: &[HistoryEvent]) -> Vec<String> {
    history
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(Attributes::ActivityTaskScheduledEventAttributes(a)) => {
                let message = a.input.as_ref()?.payloads.get(1)?;
                capstan::converter::from_payload(message).ok()
            }
            _ => None,
        })
        .collect()
}

/// Registers the pattern's workflow and activity.
pub fn register(worker: Worker) -> Worker {
    worker
        .register_workflow::<MaintenanceWorkflow>()
        .register_activity(send_notification)
}

/// The tour's driver: with the periods scaled to 1 s, 2.5 s and 4 s, the first three
/// reminders are two oil changes, then the inspection.
pub async fn tour(client: &Client, task_queue: &str, run_id: &str) -> anyhow::Result<Value> {
    let schedule = MaintenanceSchedule {
        oil_change: Duration::from_millis(1000),
        inspection: Duration::from_millis(2500),
        coolant: Duration::from_millis(4000),
    };
    let handle = MaintenanceWorkflow::start(
        client,
        workflow_id("maintenance", run_id),
        "driver@example.com".to_owned(),
        Some(schedule),
    )
    .task_queue(task_queue)
    .await?;
    let sent = loop {
        let sent = notifications(&handle.history().await?);
        if sent.len() >= 3 {
            break sent;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    handle.cancel().await?;
    let expected = [
        Maintenance::OilChange,
        Maintenance::OilChange,
        Maintenance::Inspection,
    ]
    .map(Maintenance::message);
    anyhow::ensure!(sent[..3] == expected, "unexpected notifications {sent:?}");
    Ok(json!(sent))
}
