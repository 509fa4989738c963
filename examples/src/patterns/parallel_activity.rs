//! Parallel Activity: run several activities at once and gather their results.

use std::{future::IntoFuture, time::Duration};

use capstan::{prelude::*, workflow::try_join_all};
use serde_json::{json, Value};

use crate::tour::workflow_id;

/// Greets someone.
#[activity]
pub fn say_hello_activity(name: String) -> Result<String, ActivityError> {
    Ok(format!("Hello, {name}!"))
}

/// Greets three users concurrently.
#[workflow]
#[derive(Default)]
pub struct SayHelloWorkflow;

#[workflow]
impl SayHelloWorkflow {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>) -> WorkflowResult<Vec<String>> {
        let greetings = ["user1", "user2", "user3"].map(|name| {
            ctx.activity(say_hello_activity, name.to_owned())
                .start_to_close_timeout(Duration::from_secs(5))
                .into_future()
        });
        let mut results = try_join_all(greetings).await?;
        // Completion order is not deterministic; sort like the seed does.
        results.sort();
        Ok(results)
    }
}

/// Registers the pattern's workflow and activity.
pub fn register(worker: Worker) -> Worker {
    worker
        .register_workflow::<SayHelloWorkflow>()
        .register_activity(say_hello_activity)
}

/// The tour's driver: greets three users at once.
pub async fn tour(client: &Client, task_queue: &str, run_id: &str) -> anyhow::Result<Value> {
    let greetings = SayHelloWorkflow::execute(client, workflow_id("say-hello", run_id))
        .task_queue(task_queue)
        .await?;
    anyhow::ensure!(
        greetings == ["Hello, user1!", "Hello, user2!", "Hello, user3!"],
        "unexpected result {greetings:?}"
    );
    Ok(json!(greetings))
}
