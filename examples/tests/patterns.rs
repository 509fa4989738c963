//! Every pattern of the tour, end to end against a real Temporal dev server, with
//! assertions on results and histories.

use capstan::{
    client::history::Attributes,
    prelude::*,
    testing::{unique_task_queue, DevServer},
    ClientError,
};
use capstan_examples::{patterns::*, tour, worker};

/// A client of the shared dev server and a fresh task queue, so tests run in parallel.
async fn setup() -> (Client, String) {
    let server = DevServer::shared().await;
    let client = Client::connect(server.address())
        .await
        .expect("the client connects");
    (client, unique_task_queue("patterns"))
}

async fn tour_pattern(name: &str) -> tour::Report {
    let (client, queue) = setup().await;
    worker(&client, &queue)
        .run_until(tour::run(&client, &queue, name, &queue))
        .await
        .expect("the worker runs")
}

#[tokio::test]
async fn activity_choice() {
    let report = tour_pattern("activity-choice").await;
    assert!(report.ok, "{report:?}");
}

#[tokio::test]
async fn parallel_activity() {
    let report = tour_pattern("parallel-activity").await;
    assert!(report.ok, "{report:?}");
}

#[tokio::test]
async fn child_workflow() {
    let report = tour_pattern("child-workflow").await;
    assert!(report.ok, "{report:?}");
}

#[tokio::test]
async fn local_activity() {
    let report = tour_pattern("local-activity").await;
    assert!(report.ok, "{report:?}");
}

#[tokio::test]
async fn pydantic_converter() {
    let report = tour_pattern("pydantic-converter").await;
    assert!(report.ok, "{report:?}");
    assert!(
        report.result["invalid_user_id"]
            .as_str()
            .unwrap()
            .contains("nonzero"),
        "{report:?}"
    );
}

#[tokio::test]
async fn exceptions_retry_three_times_and_keep_the_cause_chain() {
    let (client, queue) = setup().await;
    let id = format!("exceptions-{queue}");
    let outcome = worker(&client, &queue)
        .run_until(async {
            exceptions::DataProcessingWorkflow::execute(&client, &id, "test-data".to_owned())
                .task_queue(&queue)
                .await
        })
        .await
        .expect("the worker runs");
    let err = outcome.expect_err("the workflow fails");
    let failure = err.failure().expect("a workflow failure");
    let kinds: Vec<_> = failure.chain().map(|f| f.kind()).collect();
    assert_eq!(
        kinds,
        [
            capstan::FailureKind::Activity,
            capstan::FailureKind::Application
        ],
        "{failure:?}"
    );
    let root = failure.root_cause();
    assert_eq!(root.error_type(), Some("RuntimeError"));
    assert_eq!(root.message(), "Processing failed for: test-data");
    assert!(
        root.stack_trace().contains("process_data"),
        "the activity's stack trace travels with the failure: {}",
        root.stack_trace()
    );
    // The activity ran three times: the last attempt number is in the history.
    let history = client.workflow_handle(id.clone()).history().await.unwrap();
    let started: Vec<i32> = history
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(Attributes::ActivityTaskStartedEventAttributes(a)) => Some(a.attempt),
            _ => None,
        })
        .collect();
    assert_eq!(
        started,
        [3],
        "the started event of the last attempt records attempt 3"
    );
}

/// A client-side stand-in for `PydanticWorkflow` that sends untyped JSON, as a program in
/// another language could.
#[workflow(name = "PydanticWorkflow")]
#[derive(Default)]
struct UntypedPydanticWorkflow;

#[workflow]
impl UntypedPydanticWorkflow {
    #[run]
    async fn run(_ctx: WorkflowContext<Self>, _users: serde_json::Value) -> WorkflowResult<usize> {
        Ok(0)
    }
}

#[tokio::test]
async fn a_bad_payload_fails_the_workflow_with_the_field_named() {
    let (client, queue) = setup().await;
    let id = format!("bad-input-{queue}");
    let bad = serde_json::json!([{ "user_id": 0, "ip_address": "10.0.0.1" }]);
    let outcome = worker(&client, &queue)
        .run_until(async {
            UntypedPydanticWorkflow::execute(&client, &id, bad)
                .task_queue(&queue)
                .await
        })
        .await
        .expect("the worker runs");
    let Err(err @ ClientError::WorkflowFailed { .. }) = outcome else {
        panic!("the workflow should fail, got {outcome:?}");
    };
    let message = err.to_string();
    assert!(message.contains("[0].user_id"), "{message}");
    assert!(message.contains("PydanticWorkflow"), "{message}");
}
