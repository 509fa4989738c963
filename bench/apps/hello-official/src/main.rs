//! `hello-official HOST:PORT`: runs a greeting workflow on a worker of its own.
#![allow(unreachable_pub)]

use std::time::Duration;

use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, Url, WorkflowGetResultOptions,
    WorkflowStartOptions,
};
use temporalio_macros::{activities, workflow, workflow_methods};
use temporalio_sdk::{
    activities::{ActivityContext, ActivityError},
    ActivityOptions, Runtime, Worker, WorkerOptions, WorkflowContext, WorkflowResult,
};

pub struct GreetingActivities;

#[activities]
impl GreetingActivities {
    #[activity]
    pub async fn compose_greeting(
        _ctx: ActivityContext,
        name: String,
    ) -> Result<String, ActivityError> {
        Ok(format!("Hello, {name}!"))
    }
}

#[workflow]
#[derive(Default)]
pub struct GreetingWorkflow;

#[workflow_methods]
impl GreetingWorkflow {
    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>, name: String) -> WorkflowResult<String> {
        let greeting = ctx
            .execute_activity(
                GreetingActivities::compose_greeting,
                name,
                ActivityOptions::start_to_close_timeout(Duration::from_secs(10)),
            )
            .await?;
        Ok(greeting)
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let address = std::env::args().nth(1).unwrap_or("127.0.0.1:7233".into());
    let runtime = Runtime::from_current_tokio(Default::default())?;
    let url = Url::parse(&format!("http://{address}"))?;
    let connection = Connection::connect(ConnectionOptions::new(url).build()).await?;
    let client = Client::new(connection, ClientOptions::new("default").build())?;
    let options = WorkerOptions::new("hello")
        .register_workflow::<GreetingWorkflow>()?
        .register_activities(GreetingActivities)
        .build();
    let mut worker = Worker::new(&runtime, client.clone(), options)?;
    let shutdown = worker.shutdown_handle();
    let greet = async {
        let handle = client
            .start_workflow(
                GreetingWorkflow::run,
                "World".to_string(),
                WorkflowStartOptions::new("hello", "hello-1").build(),
            )
            .await?;
        let greeting = handle.get_result(WorkflowGetResultOptions::default()).await;
        shutdown();
        Ok::<_, Box<dyn std::error::Error>>(greeting?)
    };
    let (ran, greeting) = tokio::join!(worker.run(), greet);
    ran?;
    println!("{}", greeting?);
    Ok(())
}
