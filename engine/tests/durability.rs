//! The engine on a SQLite file: stopped mid-run and started again on the same file, its
//! workflows resume where they were (pending timers fire, scheduled activities are
//! dispatched, timed-out attempts are retried), nothing is lost or written twice, and
//! closed workflows keep their history, description and result.

use std::{
    future::Future,
    sync::atomic::{AtomicBool, AtomicU32, Ordering},
    time::{Duration, Instant},
};

use capstan::testing::unique_task_queue;
use capstan::{
    client::{
        history::{EventType, HistoryEvent},
        WorkflowExecutionStatus,
    },
    prelude::*,
};
use support::{assert_contiguous, engine_on, TempDb};

mod support;

#[activity]
pub async fn shout(text: String) -> Result<String, ActivityError> {
    Ok(text.to_uppercase())
}

/// Shouts on its own queue, sleeps, then shouts on a second queue.
#[workflow]
#[derive(Default)]
pub struct Napper;

#[workflow]
impl Napper {
    #[run]
    pub async fn run(
        ctx: WorkflowContext<Self>,
        text: String,
        late_queue: String,
    ) -> WorkflowResult<String> {
        let first: String = ctx
            .activity(shout, text)
            .start_to_close_timeout(Duration::from_secs(10))
            .await?;
        ctx.sleep(Duration::from_secs(3)).await?;
        let second: String = ctx
            .activity(shout, format!("{first} and later"))
            .task_queue(late_queue)
            .start_to_close_timeout(Duration::from_secs(10))
            .await?;
        Ok(second)
    }
}

/// Waits until the workflow's history satisfies `done`.
async fn history_until(
    client: &Client,
    id: &str,
    done: impl Fn(&[HistoryEvent]) -> bool,
) -> Vec<HistoryEvent> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let history = client.workflow_handle(id).history().await.unwrap();
        if done(&history) {
            return history;
        }
        assert!(
            Instant::now() < deadline,
            "timed out; history: {history:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn count(history: &[HistoryEvent], t: EventType) -> usize {
    history.iter().filter(|e| e.event_type() == t).count()
}

/// Runs `until` with a worker for the workflow queue and, if given, one for the late
/// activity queue.
async fn with_workers<F: Future>(
    client: &Client,
    queue: &str,
    late_queue: Option<&str>,
    until: F,
) -> F::Output {
    let workflows = Worker::new(client, queue)
        .register_workflow::<Napper>()
        .register_activity(shout);
    match late_queue {
        Some(late) => {
            let late = Worker::new(client, late).register_activity(shout);
            workflows
                .run_until(late.run_until(until))
                .await
                .expect("the worker runs")
                .expect("the worker runs")
        }
        None => workflows.run_until(until).await.expect("the worker runs"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_resumes_across_restarts_with_nothing_lost_or_repeated() {
    let db = TempDb::new("napper");
    let queue = unique_task_queue("napper");
    let late_queue = format!("{queue}-late");
    let id = format!("napper-{queue}");

    // 1. Started, first activity done, stopped while its 3-second timer is pending.
    let (engine, client) = engine_on(db.path()).await;
    let started_at = Instant::now();
    with_workers(&client, &queue, None, async {
        Napper::start(&client, &id, "hello".to_owned(), late_queue.clone())
            .task_queue(&queue)
            .await
            .unwrap();
        history_until(&client, &id, |h| count(h, EventType::TimerStarted) == 1).await
    })
    .await;
    engine.shutdown().await;

    // 2. A new engine on the file fires the timer; the workflow schedules the second
    // activity on a queue no one polls yet, and the engine stops again.
    let (engine, client) = engine_on(db.path()).await;
    let history = with_workers(&client, &queue, None, async {
        history_until(&client, &id, |h| {
            count(h, EventType::ActivityTaskScheduled) == 2
        })
        .await
    })
    .await;
    assert!(
        started_at.elapsed() >= Duration::from_secs(3),
        "the timer fired at its deadline, not before"
    );
    assert_eq!(count(&history, EventType::TimerFired), 1);
    engine.shutdown().await;

    // 3. A third engine dispatches the scheduled activity to the late queue's worker.
    let (engine, client) = engine_on(db.path()).await;
    let handle = client.workflow_handle(&id);
    let result: String = with_workers(&client, &queue, Some(&late_queue), async {
        handle.result_as::<String>().await
    })
    .await
    .expect("the workflow completes");
    assert_eq!(result, "HELLO AND LATER");
    let history = client.workflow_handle(&id).history().await.unwrap();
    assert_contiguous(&history, &id);
    for (t, n) in [
        (EventType::WorkflowExecutionStarted, 1),
        (EventType::ActivityTaskScheduled, 2),
        (EventType::ActivityTaskStarted, 2),
        (EventType::ActivityTaskCompleted, 2),
        (EventType::TimerStarted, 1),
        (EventType::TimerFired, 1),
        (EventType::WorkflowExecutionCompleted, 1),
    ] {
        assert_eq!(count(&history, t), n, "{t:?} in {history:#?}");
    }
    assert_eq!(
        count(&history, EventType::WorkflowTaskScheduled),
        count(&history, EventType::WorkflowTaskCompleted),
        "every workflow task completed once: {history:#?}"
    );
    let task_ids: std::collections::HashSet<i64> = history.iter().map(|e| e.task_id).collect();
    assert_eq!(
        task_ids.len(),
        history.len(),
        "task ids stay unique across restarts"
    );
    engine.shutdown().await;

    // 4. The closed workflow survives a restart: history, description and result.
    let (engine, client) = engine_on(db.path()).await;
    let handle = client.workflow_handle(&id);
    let again = handle.history().await.unwrap();
    assert_eq!(again, history);
    let description = handle.describe().await.unwrap();
    assert_eq!(description.status, WorkflowExecutionStatus::Completed);
    assert_eq!(description.history_length, history.len() as i64);
    assert!(description.close_time.is_some());
    assert_eq!(
        handle.result_as::<String>().await.unwrap(),
        "HELLO AND LATER"
    );
    engine.shutdown().await;
}

static HANG: AtomicBool = AtomicBool::new(true);
static ATTEMPTS: AtomicU32 = AtomicU32::new(0);

/// Hangs on its first attempts while `HANG` is set.
#[activity]
pub async fn slow_echo(text: String) -> Result<String, ActivityError> {
    ATTEMPTS.fetch_add(1, Ordering::SeqCst);
    if HANG.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    Ok(text)
}

#[workflow]
#[derive(Default)]
pub struct Patient;

#[workflow]
impl Patient {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>, text: String) -> WorkflowResult<String> {
        Ok(ctx
            .activity(slow_echo, text)
            .start_to_close_timeout(Duration::from_secs(2))
            .retry_policy(RetryPolicy::fixed_interval(Duration::from_millis(100)))
            .await?)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_started_when_the_engine_stopped_is_retried_after_its_timeout() {
    let db = TempDb::new("patient");
    let queue = unique_task_queue("patient");
    let id = format!("patient-{queue}");

    // The engine stops while a worker holds the activity's first attempt.
    let (engine, client) = engine_on(db.path()).await;
    let worker = Worker::new(&client, &queue)
        .register_workflow::<Patient>()
        .register_activity(slow_echo);
    let _ = tokio::time::timeout(
        Duration::from_secs(20),
        worker.run_until(async {
            Patient::start(&client, &id, "patience".to_owned())
                .task_queue(&queue)
                .await
                .unwrap();
            while ATTEMPTS.load(Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            drop(engine);
        }),
    )
    .await;

    // On the new engine the attempt times out (start-to-close, 2 s after it started) and
    // the retry reaches the new worker.
    HANG.store(false, Ordering::SeqCst);
    let (engine, client) = engine_on(db.path()).await;
    let result = Worker::new(&client, &queue)
        .register_workflow::<Patient>()
        .register_activity(slow_echo)
        .run_until(client.workflow_handle(&id).result_as::<String>())
        .await
        .expect("the worker runs")
        .expect("the workflow completes");
    assert_eq!(result, "patience");
    let history = client.workflow_handle(&id).history().await.unwrap();
    assert_contiguous(&history, &id);
    assert_eq!(count(&history, EventType::ActivityTaskScheduled), 1);
    assert_eq!(count(&history, EventType::ActivityTaskCompleted), 1);
    let started = history
        .iter()
        .find_map(|e| match &e.attributes {
            Some(capstan::client::history::Attributes::ActivityTaskStartedEventAttributes(a)) => {
                Some(a.attempt)
            }
            _ => None,
        })
        .expect("a started event");
    assert!(started >= 2, "the completed attempt is a retry: {started}");
    assert_eq!(count(&history, EventType::WorkflowExecutionCompleted), 1);
    engine.shutdown().await;
}

#[test]
fn a_second_engine_on_one_file_is_refused_and_told_who_holds_it() {
    let db = TempDb::new("owned");
    let path = db.path().to_str().unwrap();
    let (mut first, _) = support::spawn_binary(["--port", "0", "--db", path]);
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_capstan-engine"))
        .args(["--port", "0", "--db", path])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1), "{second:?}");
    let message = String::from_utf8_lossy(&second.stderr);
    assert!(
        message.contains(&format!("cannot use the database {path}:"))
            && message.contains(&format!("pid {}", first.id())),
        "{message}"
    );
    // Killed, the first engine's lock goes with it; its lock file stays and blocks nobody.
    first.kill().unwrap();
    first.wait().unwrap();
    let (mut third, _) = support::spawn_binary(["--port", "0", "--db", path]);
    third.kill().unwrap();
    third.wait().unwrap();
}

/// Flips one byte of `needle` in event 1 of `workflow_id`'s run, as a failing disk might,
/// and answers the damaged row.
fn damage_the_input(path: &std::path::Path, workflow_id: &str, needle: &[u8]) -> Vec<u8> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let run_id: String = conn
        .query_row(
            "SELECT run_id FROM runs WHERE workflow_id = ?1",
            [workflow_id],
            |r| r.get(0),
        )
        .unwrap();
    let mut event: Vec<u8> = conn
        .query_row(
            "SELECT event FROM events WHERE run_id = ?1 AND event_id = 1",
            [&run_id],
            |r| r.get(0),
        )
        .unwrap();
    let at = event
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the input is in event 1");
    event[at] ^= 0x01;
    conn.execute(
        "UPDATE events SET event = ?2 WHERE run_id = ?1 AND event_id = 1",
        rusqlite::params![run_id, event],
    )
    .unwrap();
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_row_sets_its_run_aside_and_every_other_run_is_served() {
    let db = TempDb::new("damaged");
    let queue = unique_task_queue("damaged");
    let (damaged, whole) = (format!("damaged-{queue}"), format!("whole-{queue}"));
    let (engine, client) = engine_on(db.path()).await;
    for id in [&damaged, &whole] {
        Napper::start(&client, id, "precious".to_owned(), queue.clone())
            .task_queue(&queue)
            .await
            .unwrap();
    }
    engine.shutdown().await;
    let written = damage_the_input(db.path(), &damaged, b"precious");

    let (engine, client) = engine_on(db.path()).await;
    // The damaged run is not served as if nothing happened, whichever way it is named.
    let refused = client
        .workflow_handle(&damaged)
        .history()
        .await
        .unwrap_err();
    let message = refused.to_string();
    assert!(
        message.contains("DataLoss") && message.contains("event 1 fails its checksum"),
        "{message}"
    );
    let refused = client
        .workflow_handle(&damaged)
        .describe()
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("DataLoss"), "{refused}");
    let restart = Napper::start(&client, &damaged, "again".to_owned(), queue.clone())
        .task_queue(&queue)
        .await
        .unwrap_err();
    assert!(restart.to_string().contains("DataLoss"), "{restart}");
    // The other run is served, input intact.
    let history = client.workflow_handle(&whole).history().await.unwrap();
    assert_contiguous(&history, &whole);
    assert_eq!(
        client
            .workflow_handle(&whole)
            .describe()
            .await
            .unwrap()
            .status,
        WorkflowExecutionStatus::Running
    );
    engine.shutdown().await;

    // The damaged row is left as it was, for whoever looks into it.
    let conn = rusqlite::Connection::open(db.path()).unwrap();
    let still: Vec<u8> = conn
        .query_row(
            "SELECT event FROM events JOIN runs USING (run_id)
             WHERE workflow_id = ?1 AND event_id = 1",
            [&damaged],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(still, written);
}
