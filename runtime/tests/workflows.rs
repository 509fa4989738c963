//! The runtime against a real Temporal dev server: handlers, codecs, and every kind of bad
//! input a user can cause.
#![cfg(feature = "testing")]

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use capstan::{
    client::history::{Attributes, EventType},
    converter::{Payload, PayloadCodec, PayloadError, ENCODING_KEY},
    prelude::*,
    testing::{unique_task_queue as queue, DevServer},
    ClientError, WorkflowHandle,
};

#[path = "support/counter.rs"]
mod counter;

use counter::Counter;

async fn client() -> Client {
    Client::connect(DevServer::shared().await.address())
        .await
        .expect("the client connects")
}

#[tokio::test]
async fn signals_queries_and_updates_reach_the_workflow() {
    let client = client().await;
    let tq = queue("counter");
    let id = format!("counter-{tq}");
    let result = Worker::new(&client, &tq)
        .register_workflow::<Counter>()
        .run_until(async {
            let handle = Counter::start(&client, &id, 10).task_queue(&tq).await.unwrap();
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
    // The rejected update left no trace in the history.
    let history = client.workflow_handle(&id).history().await.unwrap();
    let accepted = history
        .iter()
        .filter(|e| e.event_type() == EventType::WorkflowExecutionUpdateAccepted)
        .count();
    assert_eq!(
        accepted, 3,
        "set, add_later and the started add_later were accepted; the rejected set was not"
    );
}

/// A codec that reverses bytes and marks the encoding: enough to prove it runs both ways.
struct Reverse;

impl PayloadCodec for Reverse {
    fn encode(&self, payloads: Vec<Payload>) -> Result<Vec<Payload>, PayloadError> {
        Ok(payloads
            .into_iter()
            .map(|mut p| {
                let inner = p.metadata.remove(ENCODING_KEY).unwrap_or_default();
                p.metadata.insert("inner-encoding".into(), inner);
                p.metadata
                    .insert(ENCODING_KEY.into(), b"binary/reversed".to_vec());
                p.data.reverse();
                p
            })
            .collect())
    }

    fn decode(&self, payloads: Vec<Payload>) -> Result<Vec<Payload>, PayloadError> {
        payloads
            .into_iter()
            .map(|mut p| {
                if p.metadata.get(ENCODING_KEY).map(Vec::as_slice) != Some(b"binary/reversed") {
                    return Ok(p);
                }
                let inner = p.metadata.remove("inner-encoding").ok_or_else(|| {
                    PayloadError::Codec("reversed payload without inner encoding".into())
                })?;
                p.metadata.insert(ENCODING_KEY.into(), inner);
                p.data.reverse();
                Ok(p)
            })
            .collect()
    }
}

#[activity]
pub async fn shout(text: String) -> Result<String, ActivityError> {
    Ok(text.to_uppercase())
}

#[workflow]
#[derive(Default)]
pub struct Shouter;

#[workflow]
impl Shouter {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>, text: String) -> WorkflowResult<String> {
        Ok(ctx
            .activity(shout, text)
            .start_to_close_timeout(Duration::from_secs(10))
            .await?)
    }
}

#[tokio::test]
async fn codecs_apply_on_client_and_worker_alike() {
    let client = Client::builder(DevServer::shared().await.address())
        .codec(Reverse)
        .connect()
        .await
        .unwrap();
    let tq = queue("codec");
    let id = format!("shouter-{tq}");
    let result = Worker::new(&client, &tq)
        .register_workflow::<Shouter>()
        .register_activity(shout)
        .run_until(Shouter::execute(&client, &id, "secret words".to_owned()).task_queue(&tq))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result, "SECRET WORDS");
    // What the server stored is the codec's output, everywhere.
    let history = client.workflow_handle(&id).history().await.unwrap();
    let mut stored = Vec::new();
    for event in &history {
        match &event.attributes {
            Some(Attributes::WorkflowExecutionStartedEventAttributes(a)) => {
                stored.extend(a.input.clone().unwrap().payloads)
            }
            Some(Attributes::ActivityTaskScheduledEventAttributes(a)) => {
                stored.extend(a.input.clone().unwrap().payloads)
            }
            Some(Attributes::ActivityTaskCompletedEventAttributes(a)) => {
                stored.extend(a.result.clone().unwrap().payloads)
            }
            Some(Attributes::WorkflowExecutionCompletedEventAttributes(a)) => {
                stored.extend(a.result.clone().unwrap().payloads)
            }
            _ => {}
        }
    }
    assert_eq!(stored.len(), 4);
    for payload in stored {
        assert_eq!(payload.metadata[ENCODING_KEY], b"binary/reversed");
        let text = String::from_utf8_lossy(&payload.data).to_lowercase();
        assert!(!text.contains("secret words"), "plaintext stored: {text}");
    }
}

static PANICKED: AtomicBool = AtomicBool::new(false);

#[workflow]
#[derive(Default)]
pub struct PanicsOnce;

#[workflow]
impl PanicsOnce {
    #[run]
    pub async fn run(_ctx: WorkflowContext<Self>) -> WorkflowResult<String> {
        if !PANICKED.swap(true, Ordering::SeqCst) {
            panic!("boom on the first attempt");
        }
        Ok("survived".to_owned())
    }
}

#[tokio::test]
async fn a_panicking_workflow_fails_its_task_and_is_not_lost() {
    let client = client().await;
    let tq = queue("panics");
    let id = format!("panics-{tq}");
    let result = Worker::new(&client, &tq)
        .register_workflow::<PanicsOnce>()
        .run_until(PanicsOnce::execute(&client, &id).task_queue(&tq))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result, "survived");
    let message = first_task_failure(&client, &id).await;
    assert!(message.contains("boom on the first attempt"), "{message}");
}

/// The message of the first workflow task failure in workflow `id`'s history.
async fn first_task_failure(client: &Client, id: &str) -> String {
    let history = client.workflow_handle(id).history().await.unwrap();
    history
        .iter()
        .find_map(|e| match &e.attributes {
            Some(Attributes::WorkflowTaskFailedEventAttributes(a)) => a.failure.clone(),
            _ => None,
        })
        .expect("a workflow task failed")
        .message
}

static SPAWNED: AtomicBool = AtomicBool::new(false);

/// Reaches for tokio where the macro cannot see it (in a helper), on its first attempt.
fn spawn_behind_the_macros_back() {
    tokio::spawn(async {});
}

#[workflow]
#[derive(Default)]
pub struct SpawnsOnce;

#[workflow]
impl SpawnsOnce {
    #[run]
    pub async fn run(_ctx: WorkflowContext<Self>) -> WorkflowResult<String> {
        if !SPAWNED.swap(true, Ordering::SeqCst) {
            spawn_behind_the_macros_back();
        }
        Ok("deterministic again".to_owned())
    }
}

#[tokio::test]
async fn workflow_code_runs_outside_any_tokio_runtime() {
    // A task spawned from workflow code would run outside the replayable executor: the
    // workflow thread runs activations in no runtime's context, so the spawn fails the
    // workflow task at once (and the retry, which does not spawn, completes).
    let client = client().await;
    let tq = queue("spawns");
    let id = format!("spawns-{tq}");
    let result = Worker::new(&client, &tq)
        .register_workflow::<SpawnsOnce>()
        .run_until(SpawnsOnce::execute(&client, &id).task_queue(&tq))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result, "deterministic again");
    let message = first_task_failure(&client, &id).await;
    assert!(
        message.contains("Tokio"),
        "the failure should name the missing runtime: {message}"
    );
}

/// A client-side definition of a workflow no worker here registers.
#[workflow(name = "NobodyRunsThis")]
#[derive(Default)]
pub struct Unregistered;

#[workflow]
impl Unregistered {
    #[run]
    pub async fn run(_ctx: WorkflowContext<Self>) -> WorkflowResult<()> {
        Ok(())
    }
}

#[tokio::test]
async fn an_unknown_workflow_type_fails_the_task_and_waits_for_a_worker_that_has_it() {
    let client = client().await;
    let tq = queue("unknown-type");
    let id = format!("unknown-{tq}");
    let handle = Unregistered::start(&client, &id)
        .task_queue(&tq)
        .await
        .unwrap();
    Worker::new(&client, &tq)
        .register_workflow::<Counter>()
        .run_until(async {
            for _ in 0..100 {
                let history = handle.history().await.unwrap();
                if history
                    .iter()
                    .any(|e| e.event_type() == EventType::WorkflowTaskFailed)
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("no workflow task failure recorded");
        })
        .await
        .unwrap();
    let history = handle.history().await.unwrap();
    let message = history
        .iter()
        .find_map(|e| match &e.attributes {
            Some(Attributes::WorkflowTaskFailedEventAttributes(a)) => {
                a.failure.clone().map(|f| f.message)
            }
            _ => None,
        })
        .unwrap();
    assert!(
        message.contains("`NobodyRunsThis` is not registered"),
        "{message}"
    );
    assert!(
        message.contains("Counter"),
        "the message lists what is registered: {message}"
    );
    assert_eq!(
        handle.describe().await.unwrap().status,
        capstan::client::WorkflowExecutionStatus::Running
    );
    // A worker that has the type picks the workflow up: nothing was lost.
    let result = Worker::new(&client, &tq)
        .register_workflow::<Unregistered>()
        .run_until(handle.result())
        .await
        .unwrap();
    result.unwrap();
}

#[tokio::test]
async fn a_server_that_is_down_is_named_in_the_error() {
    let err = Client::connect("127.0.0.1:1").await.unwrap_err();
    let message = err.to_string();
    assert!(message.contains("127.0.0.1:1"), "{message}");
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
}

#[tokio::test]
async fn signal_with_start_and_start_by_name() {
    let client = client().await;
    let tq = queue("by-name");
    let (first, second) = (format!("sws-{tq}"), format!("by-name-{tq}"));
    let (signalled, by_name) = Worker::new(&client, &tq)
        .register_workflow::<Counter>()
        .run_until(async {
            // Signal-with-start starts the workflow and delivers the signal with it.
            let handle = Counter::start(&client, &first, 1)
                .task_queue(&tq)
                .signal_with_start("add", (41,))
                .await
                .unwrap();
            handle.finish().await.unwrap();
            let signalled = handle.result().await.unwrap();
            // By name, as a program that does not have the Rust type would.
            let untyped = client
                .start_workflow_by_name("Counter", &second, (5,))
                .task_queue(&tq)
                .await
                .unwrap();
            untyped.signal_with("add", (2,)).await.unwrap();
            untyped.signal_with("finish", ()).await.unwrap();
            (signalled, untyped.result_as::<i64>().await.unwrap())
        })
        .await
        .unwrap();
    assert_eq!(signalled, 42);
    assert_eq!(by_name, 7);
}

#[tokio::test]
async fn runs_replay_from_history_when_the_cache_holds_nothing() {
    let client = client().await;
    let tq = queue("replay");
    let id = format!("replay-{tq}");
    // With no cache, every workflow task replays the run from its first event: the
    // executor must take the same path and issue the same commands each time.
    let result = Worker::new(&client, &tq)
        .register_workflow::<Counter>()
        .max_cached_workflows(0)
        .run_until(async {
            let handle = Counter::start(&client, &id, 1)
                .task_queue(&tq)
                .await
                .unwrap();
            for n in 1..=5 {
                handle.add(n).await.unwrap();
                assert_eq!(handle.add_later(0).await.unwrap(), 1 + n * (n + 1) / 2);
            }
            handle.finish().await.unwrap();
            handle.result().await.unwrap()
        })
        .await
        .unwrap();
    assert_eq!(result, 16);
    let history = client.workflow_handle(&id).history().await.unwrap();
    assert!(
        !history
            .iter()
            .any(|e| e.event_type() == EventType::WorkflowTaskFailed),
        "no replay diverged"
    );
}

/// Starts a `Counter` child and drives it with typed signals.
#[workflow]
#[derive(Default)]
pub struct CounterParent;

#[workflow]
impl CounterParent {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>, start: i64) -> WorkflowResult<i64> {
        let child_id = format!("{}-child", ctx.info().workflow_id);
        let child = ctx
            .child_workflow::<Counter>(start)
            .id(&child_id)
            .start()
            .await?;
        let counter = ctx.external_workflow_of::<Counter>(child_id, None);
        counter.add(10).await?;
        counter.finish().await?;
        Ok(child.result().await?)
    }
}

#[tokio::test]
async fn workflows_signal_other_workflows_with_typed_calls() {
    let client = client().await;
    let tq = queue("typed-signals");
    let result = Worker::new(&client, &tq)
        .register_workflow::<Counter>()
        .register_workflow::<CounterParent>()
        .run_until(CounterParent::execute(&client, format!("parent-{tq}"), 5).task_queue(&tq))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result, 15);
}

/// Takes the patched path, waits to be terminated.
#[workflow]
#[derive(Default)]
pub struct Patched {
    new_path: bool,
}

#[workflow]
impl Patched {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>) -> WorkflowResult<()> {
        let new_path = ctx.patched("use-new-path");
        ctx.state_mut(|s| s.new_path = new_path);
        ctx.upsert_memo([("path".to_owned(), if new_path { "new" } else { "old" })])?;
        ctx.wait_condition(|_| false).await?;
        Ok(())
    }

    #[query]
    pub fn new_path(&self) -> bool {
        self.new_path
    }
}

#[tokio::test]
async fn patches_describe_list_and_terminate() {
    let client = client().await;
    let tq = queue("patched");
    let id = format!("patched-{tq}");
    let handle = Worker::new(&client, &tq)
        .register_workflow::<Patched>()
        .run_until(async {
            let handle = Patched::start(&client, &id).task_queue(&tq).await.unwrap();
            assert!(
                handle.new_path().await.unwrap(),
                "new executions take the patched path"
            );
            handle
        })
        .await
        .unwrap();
    let described = handle.describe().await.unwrap();
    assert_eq!(described.workflow_type, "Patched");
    assert_eq!(
        described.status,
        capstan::client::WorkflowExecutionStatus::Running
    );
    // Visibility may lag the start by a moment.
    let mut listed = Vec::new();
    for _ in 0..50 {
        listed = client
            .list_workflows(&format!("WorkflowId = '{id}'"))
            .await
            .unwrap();
        if !listed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].workflow_type, "Patched");
    handle.terminate("test over").await.unwrap();
    let err = handle.result().await.unwrap_err();
    assert!(err.to_string().contains("terminated"), "{err}");
    let history = handle.history().await.unwrap();
    let marker = history.iter().find_map(|e| match &e.attributes {
        Some(Attributes::MarkerRecordedEventAttributes(a)) => Some(a.marker_name.clone()),
        _ => None,
    });
    assert_eq!(
        marker.as_deref(),
        Some("core_patch"),
        "the patch is recorded as a marker"
    );
    assert!(history
        .iter()
        .any(|e| e.event_type() == EventType::WorkflowPropertiesModified));
}

/// A shared resource, as a connection pool would be.
pub struct Greeter {
    greeting: String,
}

#[activity]
pub async fn greet_with_resource(
    ctx: ActivityContext,
    name: String,
) -> Result<String, ActivityError> {
    let greeter = ctx.resource::<Greeter>()?;
    Ok(format!("{}, {name}!", greeter.greeting))
}

#[workflow]
#[derive(Default)]
pub struct GreetWithResource;

#[workflow]
impl GreetWithResource {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>, name: String) -> WorkflowResult<String> {
        Ok(ctx
            .activity(greet_with_resource, name)
            .start_to_close_timeout(Duration::from_secs(5))
            .retry_policy(RetryPolicy::maximum_attempts(1))
            .await?)
    }
}

#[tokio::test]
async fn activities_read_the_workers_resources() {
    let client = client().await;
    let tq = queue("resources");
    let greeting = Worker::new(&client, &tq)
        .resource(Greeter {
            greeting: "Ahoy".to_owned(),
        })
        .register_workflow::<GreetWithResource>()
        .register_activity(greet_with_resource)
        .run_until(
            GreetWithResource::execute(&client, format!("res-{tq}"), "crew".to_owned())
                .task_queue(&tq),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(greeting, "Ahoy, crew!");
    // Without the resource, the activity fails with a message that says how to fix it.
    let tq = queue("no-resources");
    let err = Worker::new(&client, &tq)
        .register_workflow::<GreetWithResource>()
        .register_activity(greet_with_resource)
        .run_until(
            GreetWithResource::execute(&client, format!("res-{tq}"), "crew".to_owned())
                .task_queue(&tq),
        )
        .await
        .unwrap()
        .unwrap_err();
    let root = err.failure().unwrap().root_cause();
    assert_eq!(root.error_type(), Some("MissingResource"));
    assert!(
        root.message().contains("Worker::resource"),
        "{}",
        root.message()
    );
}

/// Sleeps a second, then waits for a signal (or, told to, sleeps an hour).
#[workflow]
#[derive(Default)]
pub struct SleepsThenWaits {
    go: bool,
}

#[workflow]
impl SleepsThenWaits {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>, sleep_again: bool) -> WorkflowResult<String> {
        ctx.sleep(Duration::from_secs(1)).await?;
        if sleep_again {
            ctx.sleep(Duration::from_secs(3600)).await?;
        } else {
            ctx.wait_condition(|s| s.go).await?;
        }
        Ok("completed".to_owned())
    }

    #[signal]
    pub fn go(&mut self) {
        self.go = true;
    }
}

/// Runs a worker until `handle`'s history has an event of type `until`.
async fn work_until(
    client: &Client,
    tq: &str,
    handle: &WorkflowHandle<SleepsThenWaits>,
    until: EventType,
) {
    Worker::new(client, tq)
        .register_workflow::<SleepsThenWaits>()
        .run_until(wait_for_event(handle, until))
        .await
        .unwrap();
}

async fn wait_for_event(handle: &WorkflowHandle<SleepsThenWaits>, until: EventType) {
    for _ in 0..300 {
        let history = handle.history().await.unwrap();
        if history.iter().any(|e| e.event_type() == until) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {until:?} within 30 s");
}

#[tokio::test]
async fn a_cancel_request_that_arrives_with_the_awaited_outcome_is_not_lost() {
    // The timer fires while no worker runs; then the signal the next wait needs and the
    // cancel request arrive. The next workflow task brings all three at once: the sleep's
    // outcome is replaced by the cancellation (the workflow never saw it), so the run ends
    // cancelled instead of reaching its wait, finding the signal there and completing.
    let client = client().await;
    for sleep_again in [false, true] {
        let tq = queue("cancel-between-waits");
        let id = format!("cancel-between-waits-{tq}");
        let handle = SleepsThenWaits::start(&client, &id, sleep_again)
            .task_queue(&tq)
            .await
            .unwrap();
        work_until(&client, &tq, &handle, EventType::TimerStarted).await;
        wait_for_event(&handle, EventType::TimerFired).await;
        handle.go().await.unwrap();
        handle.cancel().await.unwrap();
        let outcome = Worker::new(&client, &tq)
            .register_workflow::<SleepsThenWaits>()
            .run_until(handle.result())
            .await
            .unwrap();
        assert!(
            matches!(
                &outcome,
                Err(ClientError::WorkflowFailed {
                    how: "was cancelled",
                    ..
                })
            ),
            "sleep_again={sleep_again}: {outcome:?}"
        );
        let history = handle.history().await.unwrap();
        let timers = history
            .iter()
            .filter(|e| e.event_type() == EventType::TimerStarted)
            .count();
        assert_eq!(timers, 1, "no wait starts after the request: {history:?}");
    }
}
