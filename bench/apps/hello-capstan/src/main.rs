//! `hello-capstan HOST:PORT`: runs a greeting workflow on a worker of its own.

use std::time::Duration;

use capstan::prelude::*;

#[activity]
pub async fn compose_greeting(name: String) -> Result<String, ActivityError> {
    Ok(format!("Hello, {name}!"))
}

#[workflow]
#[derive(Default)]
pub struct GreetingWorkflow;

#[workflow]
impl GreetingWorkflow {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>, name: String) -> WorkflowResult<String> {
        let greeting = ctx
            .activity(compose_greeting, name)
            .start_to_close_timeout(Duration::from_secs(10))
            .await?;
        Ok(greeting)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let address = std::env::args().nth(1).unwrap_or("127.0.0.1:7233".into());
    let client = Client::connect(&address).await?;
    let worker = Worker::new(&client, "hello")
        .register_workflow::<GreetingWorkflow>()
        .register_activity(compose_greeting);
    let greeting = worker
        .run_until(GreetingWorkflow::execute(&client, "hello-1", "World".into()).task_queue("hello"))
        .await??;
    println!("{greeting}");
    Ok(())
}
