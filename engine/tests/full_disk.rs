//! A database that cannot be written (a full disk, made real with SQLite's
//! `max_page_count`): the health service says `NOT_SERVING`, changes are answered
//! `UNAVAILABLE` at once naming the cause, reads go on, and once the disk allows the
//! engine writes what it kept and serves again, losing nothing it acknowledged.

use std::time::{Duration, Instant};

use capstan::{client::history::EventType, prelude::*};
use support::{counter::Counter, TempDb};
use temporalio_protos::temporal::api::{
    common::v1::{Header, Payload, Payloads, WorkflowExecution},
    taskqueue::v1::TaskQueue,
    workflowservice::v1::{
        PollActivityTaskQueueRequest, PollActivityTaskQueueResponse,
        SignalWorkflowExecutionRequest, SignalWorkflowExecutionResponse,
    },
};
use tonic::{codegen::http::uri::PathAndQuery, transport::Channel, Code, Status};
use tonic_health::pb::{
    health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest,
};

mod support;

const WORKFLOW_SERVICE: &str = "temporal.api.workflowservice.v1.WorkflowService";

/// What the health service says of `service`.
async fn health(channel: &Channel, service: &str) -> ServingStatus {
    HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .status()
}

/// Signals `add(n)` to `workflow_id`, once: no retry, unlike Capstan's client. `padding`
/// bytes of header make the change need new pages in the file.
async fn add(
    channel: &Channel,
    workflow_id: &str,
    n: i64,
    request_id: &str,
    padding: usize,
) -> Result<(), Status> {
    let mut header = Header::default();
    header.fields.insert(
        "padding".to_owned(),
        Payload {
            metadata: [("encoding".to_owned(), b"binary/plain".to_vec())].into(),
            data: vec![7; padding],
            ..Default::default()
        },
    );
    let request = SignalWorkflowExecutionRequest {
        namespace: "default".to_owned(),
        workflow_execution: Some(WorkflowExecution {
            workflow_id: workflow_id.to_owned(),
            run_id: String::new(),
        }),
        signal_name: "add".to_owned(),
        input: Some(Payloads {
            payloads: vec![Payload {
                metadata: [("encoding".to_owned(), b"json/plain".to_vec())].into(),
                data: n.to_string().into_bytes(),
                ..Default::default()
            }],
        }),
        identity: "full-disk-test".to_owned(),
        request_id: request_id.to_owned(),
        header: Some(header),
        ..Default::default()
    };
    call::<_, SignalWorkflowExecutionResponse>(channel, "SignalWorkflowExecution", request)
        .await
        .map(drop)
}

/// Calls `method` of the `WorkflowService` once.
async fn call<Req, Resp>(channel: &Channel, method: &str, request: Req) -> Result<Resp, Status>
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + Sync + 'static,
{
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let path = format!("/temporal.api.workflowservice.v1.WorkflowService/{method}");
    grpc.unary(
        tonic::Request::new(request),
        PathAndQuery::try_from(path).unwrap(),
        tonic_prost::ProstCodec::default(),
    )
    .await
    .map(tonic::Response::into_inner)
}

/// How many `add` signals the workflow's history holds.
async fn signals(client: &Client, workflow_id: &str) -> usize {
    client
        .workflow_handle(workflow_id)
        .history()
        .await
        .unwrap()
        .iter()
        .filter(|e| e.event_type() == EventType::WorkflowExecutionSignaled)
        .count()
}

/// Waits (at most 10 s) for the health service to say `status` of both names.
async fn until_health(channel: &Channel, status: ServingStatus) -> Duration {
    let began = Instant::now();
    loop {
        if health(channel, "").await == status && health(channel, WORKFLOW_SERVICE).await == status
        {
            return began.elapsed();
        }
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "health never became {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_full_disk_is_reported_refused_and_weathered_without_losing_anything() {
    let db = TempDb::new("full-disk");
    let (engine, client) = support::engine_on(db.path()).await;
    let channel = Channel::from_shared(format!("http://{}", engine.socket_addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let tq = capstan::testing::unique_task_queue("full-disk");
    // `served` has a worker (it answers queries); `idle` has none, so that nothing but
    // the test's own calls writes to it.
    let (served, idle) = ("full-disk-served", "full-disk-idle");
    Worker::new(&client, &tq)
        .register_workflow::<Counter>()
        .run_until(async {
            let handle = Counter::start(&client, served, 1)
                .task_queue(&tq)
                .await
                .unwrap();
            Counter::start(&client, idle, 0)
                .task_queue("nobody-polls-this")
                .await
                .unwrap();
            assert_eq!(handle.value().await.unwrap(), 1);
            assert_eq!(health(&channel, "").await, ServingStatus::Serving);
            assert_eq!(
                health(&channel, WORKFLOW_SERVICE).await,
                ServingStatus::Serving
            );

            // The disk fills under a change: its caller learns at once, and why.
            engine.test_limit_db_pages(Some(1));
            let sent = Instant::now();
            let kept = add(&channel, idle, 10, "kept-1", 256 * 1024)
                .await
                .unwrap_err();
            let answered_in = sent.elapsed();
            assert_eq!(kept.code(), Code::Unavailable, "{kept:?}");
            assert!(
                kept.message().contains("database or disk is full")
                    && kept.message().contains(&db.path().display().to_string())
                    && kept.message().contains("kept in memory"),
                "{}",
                kept.message()
            );
            assert!(answered_in < Duration::from_secs(2), "{answered_in:?}");
            let not_serving_in = until_health(&channel, ServingStatus::NotServing).await;

            // A new change is refused before it changes anything.
            let sent = Instant::now();
            let refused = add(&channel, served, 5, "refused-1", 0).await.unwrap_err();
            let refused_in = sent.elapsed();
            assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
            assert!(
                refused.message().contains("database or disk is full")
                    && refused.message().contains("changed nothing"),
                "{}",
                refused.message()
            );
            // An activity task taken now could not be acknowledged: the poll is refused.
            let poll = call::<_, PollActivityTaskQueueResponse>(
                &channel,
                "PollActivityTaskQueue",
                PollActivityTaskQueueRequest {
                    namespace: "default".to_owned(),
                    task_queue: Some(TaskQueue {
                        name: tq.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
            assert_eq!(poll.code(), Code::Unavailable, "{poll:?}");
            // Reads and queries go on, from memory.
            let read_began = Instant::now();
            assert_eq!(
                handle.value().await.unwrap(),
                1,
                "the refused signal did nothing"
            );
            assert_eq!(signals(&client, served).await, 0);
            assert_eq!(
                signals(&client, idle).await,
                1,
                "the kept signal is in memory"
            );
            let reads_took = read_began.elapsed();
            eprintln!(
                "UNAVAILABLE for a change in flight after {answered_in:?}, NOT_SERVING after \
                 a further {not_serving_in:?}, a refused change in {refused_in:?}, a query \
                 and two history reads in {reads_took:?}"
            );

            // Room again: the kept change is written, and the engine serves again.
            let restored = Instant::now();
            engine.test_limit_db_pages(None);
            let serving_in = until_health(&channel, ServingStatus::Serving).await;
            eprintln!(
                "SERVING {serving_in:?} after the disk had room again ({:?})",
                restored.elapsed()
            );
            // Retried with their request ids: the kept one applies once, the refused one
            // now.
            add(&channel, idle, 10, "kept-1", 256 * 1024).await.unwrap();
            add(&channel, served, 5, "refused-1", 0).await.unwrap();
            assert_eq!(
                signals(&client, idle).await,
                1,
                "the kept signal applied once"
            );
            assert_eq!(handle.value().await.unwrap(), 6);
        })
        .await
        .unwrap();
    engine.shutdown().await;

    // Everything acknowledged is in the file.
    let (engine, client) = support::engine_on(db.path()).await;
    assert_eq!(signals(&client, idle).await, 1);
    assert_eq!(signals(&client, served).await, 1);
    engine.shutdown().await;
}
