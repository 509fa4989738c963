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
        .register_workflow::<schedule::ScheduledWorkflow>()
        .register_activity(pydantic_converter::process_users)
        .register_workflow::<cancellation::CancellationWorkflow>()
        .register_activity(cancellation::never_complete_activity)
        .register_activity(cancellation::cleanup_activity)
        .register_workflow::<continue_as_new::LongRunningWorkflow>()
        .register_workflow::<long_running_entity::CustomerRewardAccount>()
        .register_activity(long_running_entity::get_user)
        .register_workflow::<concurrent_timers::MaintenanceWorkflow>()
        .register_activity(concurrent_timers::send_notification)
        .register_workflow::<polling_frequent::FrequentPollingWorkflow>()
        .register_activity(polling_frequent::poll_external_service)
        .register_workflow::<polling_infrequent::InfrequentPollingWorkflow>()
        .register_workflow::<polling_infrequent::JobMonitoringWorkflow>()
        .register_activity(polling_infrequent::poll_service_status)
        .register_activity(polling_infrequent::check_job_completion)
}
