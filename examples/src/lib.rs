//! The seed's workflow patterns written with Capstan, and the pattern tour that runs them
//! end to end.

pub mod patterns;
pub mod tour;

use capstan::{Client, Worker};
use patterns::*;

/// The task queue the examples use by default.
pub const TASK_QUEUE: &str = "capstan-examples";

/// A worker with every example workflow and activity registered.
pub fn worker(client: &Client, task_queue: &str) -> Worker {
    Worker::new(client, task_queue)
        .register_workflow::<activity_choice::PurchaseFruitsWorkflow>()
        .register_activity(activity_choice::order_apples)
        .register_activity(activity_choice::order_bananas)
        .register_workflow::<parallel_activity::SayHelloWorkflow>()
        .register_activity(parallel_activity::say_hello_activity)
        .register_workflow::<child_workflow::GreetingWorkflow>()
        .register_workflow::<child_workflow::AdvancedParentWorkflow>()
        .register_workflow::<child_workflow::ComposeGreetingWorkflow>()
        .register_workflow::<exceptions::DataProcessingWorkflow>()
        .register_activity(exceptions::process_data)
        .register_workflow::<local_activity::LocalActivityWorkflow>()
        .register_activity(local_activity::compose_greeting)
        .register_activity(local_activity::validate_input)
        .register_workflow::<pydantic_converter::PydanticWorkflow>()
        .register_activity(pydantic_converter::process_users)
}
