//! Parallel Activity: run several activities at once and gather their results.

use std::{future::IntoFuture, time::Duration};

use capstan::{prelude::*, workflow::try_join_all};

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
