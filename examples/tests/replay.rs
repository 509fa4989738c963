//! Replay tests: the histories in `examples/histories/` (captured from real runs with
//! `temporal workflow show --output json`) must replay against the current code, an
//! incompatible change must be caught, and a change behind `ctx.patched` must pass.

use std::{path::PathBuf, time::Duration};

use capstan::{
    prelude::*,
    testing::{
        history_from_json, save_history, unique_task_queue, CapturedHistory, DevServer,
        ReplayError, Replayer,
    },
};
use capstan_examples::{
    patterns::activity_choice::{order_apples, order_bananas, Fruit, ShoppingList},
    worker,
};
use temporalio_common::protos::temporal::api::enums::v1::EventType;

fn histories() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("histories")
}

/// A client of the shared dev server: replay polls nothing, the worker's client only
/// lends its namespace and codecs.
async fn client() -> Client {
    Client::connect(DevServer::shared().await.address())
        .await
        .expect("the client connects")
}

#[tokio::test]
async fn captured_histories_replay_against_the_current_code() {
    let client = client().await;
    let started = std::time::Instant::now();
    let replayed = Replayer::new(&worker(&client, "replay"))
        .replay_dir(histories())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        replayed >= 2,
        "only {replayed} histories in {:?}",
        histories()
    );
    eprintln!("replayed {replayed} histories in {:?}", started.elapsed());
}

/// A copy of `PurchaseFruitsWorkflow`, registered under the same workflow type name, that
/// runs `$change` before ordering.
macro_rules! changed_purchase {
    ($module:ident, |$ctx:ident| { $($change:tt)* }) => {
        // Only replayed: nothing starts these copies through their client functions.
        #[allow(dead_code)]
        mod $module {
            use super::*;

            #[workflow(name = "PurchaseFruitsWorkflow")]
            #[derive(Default)]
            pub(super) struct PurchaseFruitsWorkflow;

            #[workflow]
            impl PurchaseFruitsWorkflow {
                #[run]
                pub(super) async fn run(
                    $ctx: WorkflowContext<Self>,
                    shopping_list: ShoppingList,
                ) -> WorkflowResult<String> {
                    $($change)*
                    order(&$ctx, shopping_list).await
                }
            }
        }
    };
}

// Someone adds a pause before ordering: histories recorded without it no longer replay.
changed_purchase!(with_pause, |ctx| {
    ctx.sleep(Duration::from_secs(1)).await?;
});

// The same change behind a patch: histories recorded before it keep the old path.
changed_purchase!(with_patched_pause, |ctx| {
    if ctx.patched("pause-before-ordering") {
        ctx.sleep(Duration::from_secs(1)).await?;
    }
});

/// The original workflow's body: each item ordered with its fruit's activity.
async fn order<W>(ctx: &WorkflowContext<W>, shopping_list: ShoppingList) -> WorkflowResult<String> {
    let mut ordered = Vec::new();
    for item in shopping_list.items {
        let order = match item.fruit {
            Fruit::Apple => ctx.activity(order_apples, item.amount),
            Fruit::Banana => ctx.activity(order_bananas, item.amount),
            Fruit::Cherry => unreachable!("the captured history orders no cherries"),
        };
        ordered.push(order.start_to_close_timeout(Duration::from_secs(5)).await?);
    }
    Ok(ordered.concat())
}

#[tokio::test]
async fn an_incompatible_change_is_caught() {
    let client = client().await;
    let changed =
        Worker::new(&client, "replay").register_workflow::<with_pause::PurchaseFruitsWorkflow>();
    let started = std::time::Instant::now();
    let error = Replayer::new(&changed)
        .replay_dir(histories())
        .await
        .expect_err("a timer the history does not have must fail the replay");
    eprintln!("caught in {:?}: {error}", started.elapsed());
    match &error {
        ReplayError::Nondeterminism {
            workflow_id,
            workflow_type,
            message,
            ..
        } => {
            assert_eq!(workflow_type, "PurchaseFruitsWorkflow");
            assert!(workflow_id.starts_with("purchase-fruits"), "{error}");
            assert!(message.contains("Timer"), "{error}");
            assert!(message.contains("ActivityTaskScheduled"), "{error}");
            assert!(!message.contains("Failure {"), "{error}");
        }
        other => panic!("expected a nondeterminism error, got {other}"),
    }
}

#[tokio::test]
async fn a_patched_change_replays() {
    let client = client().await;
    let changed = Worker::new(&client, "replay")
        .register_workflow::<with_patched_pause::PurchaseFruitsWorkflow>();
    let started = std::time::Instant::now();
    let histories: Vec<_> = std::fs::read_dir(histories())
        .expect("the histories directory")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| {
            path.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("purchase-fruits"))
        })
        .map(|path| CapturedHistory::from_file(path).expect("the history decodes"))
        .collect();
    assert!(!histories.is_empty());
    Replayer::new(&changed)
        .replay(histories)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("replayed in {:?}", started.elapsed());
}

#[tokio::test]
async fn a_history_that_starts_no_workflow_is_refused() {
    let client = client().await;
    let error = Replayer::new(&worker(&client, "replay"))
        .replay(vec![CapturedHistory {
            workflow_id: "empty".to_owned(),
            source: "empty.json".to_owned(),
            history: history_from_json(r#"{"events": []}"#).expect("an empty history decodes"),
        }])
        .await
        .expect_err("core cannot replay a history without its start");
    assert!(matches!(error, ReplayError::History { .. }), "{error}");
}

/// An event between a workflow task's start and its outcome (what an engine that did not
/// buffer it would write) is refused with the history named, not handed to core, whose
/// poller panics on it.
#[tokio::test]
async fn a_history_with_an_event_inside_a_workflow_task_is_refused() {
    let client = client().await;
    let mut history = CapturedHistory::from_file(histories().join("say-hello-1.json"))
        .expect("the history decodes");
    let completed = history
        .history
        .events
        .iter()
        .position(|e| e.event_type() == EventType::WorkflowTaskCompleted)
        .expect("a completed workflow task");
    history.history.events.remove(completed);
    history.source = "say-hello-1 without its first WorkflowTaskCompleted".to_owned();
    let error = Replayer::new(&worker(&client, "replay"))
        .replay(vec![history])
        .await
        .expect_err("a malformed history must be refused");
    let message = error.to_string();
    assert!(matches!(error, ReplayError::History { .. }), "{message}");
    assert!(
        message.contains("without its first WorkflowTaskCompleted")
            && message.contains("is not a well-formed history"),
        "{message}"
    );
}

/// A run terminated after its only workflow task timed out (its worker gone) replays:
/// the workflow starts, and no command is checked against the history.
#[tokio::test]
async fn a_history_terminated_after_its_only_task_timed_out_replays() {
    use temporalio_common::protos::temporal::api::history::v1::{
        history_event::Attributes, HistoryEvent, WorkflowExecutionTerminatedEventAttributes,
    };
    let client = client().await;
    let mut history = CapturedHistory::from_file(histories().join("say-hello-1.json"))
        .expect("the history decodes");
    let events = &mut history.history.events;
    let started = events
        .iter()
        .position(|e| e.event_type() == EventType::WorkflowTaskStarted)
        .expect("a started workflow task");
    events.truncate(started + 1);
    events.push(HistoryEvent {
        event_id: started as i64 + 2,
        event_time: events.last().and_then(|e| e.event_time),
        event_type: EventType::WorkflowTaskTimedOut as i32,
        attributes: Some(Attributes::WorkflowTaskTimedOutEventAttributes(
            temporalio_common::protos::temporal::api::history::v1::WorkflowTaskTimedOutEventAttributes {
                scheduled_event_id: started as i64,
                started_event_id: started as i64 + 1,
                ..Default::default()
            },
        )),
        ..Default::default()
    });
    events.push(HistoryEvent {
        event_id: started as i64 + 3,
        event_time: events.last().and_then(|e| e.event_time),
        event_type: EventType::WorkflowExecutionTerminated as i32,
        attributes: Some(Attributes::WorkflowExecutionTerminatedEventAttributes(
            WorkflowExecutionTerminatedEventAttributes {
                reason: "its worker is gone".to_owned(),
                ..Default::default()
            },
        )),
        ..Default::default()
    });
    history.source = "say-hello-1 terminated after its first task timed out".to_owned();
    Replayer::new(&worker(&client, "replay"))
        .replay(vec![history])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn histories_saved_by_save_history_replay() {
    let client = client().await;
    let queue = unique_task_queue("save-history");
    let id = format!("say-hello-{queue}");
    worker(&client, &queue)
        .run_until(
            capstan_examples::patterns::parallel_activity::SayHelloWorkflow::execute(&client, &id)
                .task_queue(&queue),
        )
        .await
        .expect("the worker runs")
        .expect("the greetings run");
    let dir = std::env::temp_dir().join(&queue);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    save_history(&client, &id, dir.join(format!("{id}.json")))
        .await
        .expect("the history is saved");
    let replayed = Replayer::new(&worker(&client, &queue))
        .replay_dir(&dir)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(replayed, 1);
    std::fs::remove_dir_all(dir).expect("the temporary directory is removed");
}

/// Captures the histories in `examples/histories/`: runs the workflows on the dev server
/// and saves each history with `temporal workflow show --output json`. Run it by hand
/// (`cargo test -p capstan-examples --test replay -- --ignored capture`) after changing
/// the workflows on purpose, and commit the files.
#[tokio::test]
#[ignore = "rewrites examples/histories/"]
async fn capture_histories() {
    use capstan_examples::patterns::{activity_choice, parallel_activity};
    let server = DevServer::shared().await;
    let client = client().await;
    let queue = unique_task_queue("capture");
    let ids = ["purchase-fruits-1", "say-hello-1"];
    worker(&client, &queue)
        .run_until(async {
            let list = ShoppingList::three_apples_and_five_bananas();
            activity_choice::PurchaseFruitsWorkflow::execute(&client, ids[0], list)
                .task_queue(&queue)
                .await
                .expect("the purchase runs");
            parallel_activity::SayHelloWorkflow::execute(&client, ids[1])
                .task_queue(&queue)
                .await
                .expect("the greetings run");
        })
        .await
        .expect("the worker runs");
    std::fs::create_dir_all(histories()).expect("the histories directory");
    for id in ids {
        let output = server
            .cli_command(["workflow", "show", "--workflow-id", id, "--output", "json"])
            .output()
            .expect("the temporal CLI runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::write(histories().join(format!("{id}.json")), &output.stdout)
            .expect("the history is written");
    }
}

#[tokio::test]
async fn a_history_of_an_unregistered_type_fails() {
    let client = client().await;
    // Registers `PurchaseFruitsWorkflow` only: `say-hello-1` has no workflow to replay.
    let partial = Worker::new(&client, "replay")
        .register_workflow::<capstan_examples::patterns::activity_choice::PurchaseFruitsWorkflow>(
    );
    let error = Replayer::new(&partial)
        .replay_dir(histories())
        .await
        .expect_err("a workflow type the worker does not know must fail the replay");
    assert!(
        matches!(&error, ReplayError::Failed { workflow_id, .. } if workflow_id == "say-hello-1"),
        "{error}"
    );
}
