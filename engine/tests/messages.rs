//! Signals, queries and updates on the embedded engine, and the client-facing RPCs
//! (start conflicts, describe, list, terminate).

use capstan::{
    client::history::{Attributes, EventType},
    prelude::*,
    ClientError,
};
use support::{counter::Counter, TempDb};
use temporalio_protos::temporal::api::enums::v1::TaskQueueKind;

mod support;

#[tokio::test]
async fn signals_queries_and_updates_reach_the_workflow() {
    let (engine, client) = support::engine().await;
    let tq = "counter";
    let id = "counter-1";
    let result = Worker::new(&client, tq)
        .register_workflow::<Counter>()
        .run_until(async {
            let handle = Counter::start(&client, id, 10).task_queue(tq).await.unwrap();
            handle.add(5).await.unwrap();
            assert_eq!(handle.value().await.unwrap(), 15);
            assert_eq!(handle.set(100).await.unwrap(), 15);
            let rejected = handle.set(-1).await.unwrap_err();
            assert!(
                matches!(&rejected, ClientError::UpdateFailed { failure, .. } if failure.error_type() == Some("ValueError")),
                "{rejected}"
            );
            assert_eq!(handle.add_later(7).await.unwrap(), 107);
            let pending = handle.start_add_later(1).await.unwrap();
            assert_eq!(pending.result().await.unwrap(), 108);
            handle.finish().await.unwrap();
            handle.result().await.unwrap()
        })
        .await
        .unwrap();
    assert_eq!(result, 108);
    let history = client.workflow_handle(id).history().await.unwrap();
    let accepted = history
        .iter()
        .filter(|e| e.event_type() == EventType::WorkflowExecutionUpdateAccepted)
        .count();
    assert_eq!(accepted, 3, "the rejected update left no trace");
    let signals = history
        .iter()
        .filter(|e| e.event_type() == EventType::WorkflowExecutionSignaled)
        .count();
    assert_eq!(signals, 2);
    // After the first task, the worker that has the run cached gets its tasks on its own
    // queue, with only the new events, and no task ever times out waiting there.
    let scheduled: Vec<_> = history
        .iter()
        .filter_map(|e| match &e.attributes {
            Some(Attributes::WorkflowTaskScheduledEventAttributes(a)) => a.task_queue.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(scheduled[0].kind(), TaskQueueKind::Normal);
    assert!(
        scheduled[1..]
            .iter()
            .all(|q| q.kind() == TaskQueueKind::Sticky && q.normal_name == tq),
        "{scheduled:#?}"
    );
    assert!(!history
        .iter()
        .any(|e| e.event_type() == EventType::WorkflowTaskTimedOut));
    engine.shutdown().await;
}

#[tokio::test]
async fn a_second_start_with_the_same_id_conflicts() {
    let (engine, client) = support::engine().await;
    let first = client
        .start_workflow_by_name("Counter", "dup", (1i64,))
        .task_queue("nobody")
        .await
        .unwrap();
    let second = client
        .start_workflow_by_name("Counter", "dup", (1i64,))
        .task_queue("nobody")
        .await;
    match second {
        Err(ClientError::AlreadyStarted { run_id, .. }) => {
            assert_eq!(Some(run_id.as_str()), first.run_id())
        }
        other => panic!("expected AlreadyStarted, got {other:?}"),
    }
    let description = first.describe().await.unwrap();
    assert_eq!(description.workflow_type, "Counter");
    let listed = client
        .list_workflows("WorkflowType = 'Counter'")
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    first.terminate("done").await.unwrap();
    let outcome = first.result_as::<i64>().await;
    assert!(
        matches!(
            outcome,
            Err(ClientError::WorkflowFailed {
                how: "was terminated",
                ..
            })
        ),
        "{outcome:?}"
    );
    engine.shutdown().await;
}

/// A rejected update leaves no workflow task in history (Temporal's speculative task): the
/// worker is told to reset, later events reuse the ids, and the durable file agrees after
/// a restart.
#[tokio::test]
async fn a_rejected_update_leaves_no_workflow_task_in_history() {
    let db = TempDb::new("speculative");
    let (engine, client) = support::engine_on(db.path()).await;
    let (tq, id) = ("speculative", "counter-speculative");
    let before = Worker::new(&client, tq)
        .register_workflow::<Counter>()
        .run_until(async {
            let handle = Counter::start(&client, id, 10)
                .task_queue(tq)
                .await
                .unwrap();
            // A query waits for the first workflow task to be done.
            assert_eq!(handle.value().await.unwrap(), 10);
            let before = client.workflow_handle(id).history().await.unwrap();
            let rejected = handle.set(-1).await.unwrap_err();
            assert!(
                matches!(rejected, ClientError::UpdateFailed { .. }),
                "{rejected}"
            );
            let after = client.workflow_handle(id).history().await.unwrap();
            assert_eq!(
                after.len(),
                before.len(),
                "the rejected update's task is gone"
            );
            // The worker carries on from the reset point.
            handle.add(5).await.unwrap();
            assert_eq!(handle.value().await.unwrap(), 15);
            assert_eq!(handle.set(20).await.unwrap(), 15);
            before.len()
        })
        .await
        .unwrap();
    engine.shutdown().await;

    let (engine, client) = support::engine_on(db.path()).await;
    let result = Worker::new(&client, tq)
        .register_workflow::<Counter>()
        .run_until(async {
            let handle = client.workflow_handle(id);
            handle.signal_with("finish", ()).await.unwrap();
            handle.result_as::<i64>().await.unwrap()
        })
        .await
        .unwrap();
    assert_eq!(result, 20);
    let history = client.workflow_handle(id).history().await.unwrap();
    support::assert_contiguous(&history, "after the restart");
    let types: Vec<EventType> = history.iter().map(|e| e.event_type()).collect();
    assert_eq!(
        types[before],
        EventType::WorkflowExecutionSignaled,
        "the next event took the discarded task's ids: {types:?}"
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == EventType::WorkflowExecutionUpdateAccepted)
            .count(),
        1
    );
    engine.shutdown().await;
}
