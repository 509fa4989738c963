//! `kill -9` of the engine process in the middle of hundreds of workflows, then a restart on
//! the same file: nothing acknowledged is lost, and every workflow completes exactly once.

use std::{
    path::Path,
    process::Child,
    time::{Duration, Instant},
};

use capstan::{
    client::{history::EventType, WorkflowExecutionStatus},
    prelude::*,
};
use support::TempDb;

mod support;

const WORKFLOWS: usize = 200;

#[activity]
pub async fn double(n: u64) -> Result<u64, ActivityError> {
    Ok(n * 2)
}

/// Doubles twice, with a short timer in between.
#[workflow]
#[derive(Default)]
pub struct DoubleTwice;

#[workflow]
impl DoubleTwice {
    #[run]
    pub async fn run(ctx: WorkflowContext<Self>, n: u64) -> WorkflowResult<u64> {
        let once: u64 = ctx
            .activity(double, n)
            .start_to_close_timeout(Duration::from_secs(5))
            .await?;
        ctx.sleep(Duration::from_millis(200)).await?;
        Ok(ctx
            .activity(double, once)
            .start_to_close_timeout(Duration::from_secs(5))
            .await?)
    }
}

/// Starts the engine binary on `port` with the database `db`; returns once it serves.
fn spawn_engine(db: &Path, port: u16) -> (Child, String) {
    support::spawn_binary([
        "--port".as_ref(),
        port.to_string().as_ref(),
        "--db".as_ref(),
        db.as_os_str(),
    ])
}

async fn completed(client: &Client) -> usize {
    client
        .list_workflows("ExecutionStatus = 'Completed'")
        .await
        .map(|runs| runs.len())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_killed_engine_restarts_on_its_file_and_every_workflow_completes_once() {
    let db = TempDb::new("crash");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (mut engine, address) = spawn_engine(db.path(), port);
    let client = Client::connect(&address).await.unwrap();
    for n in 0..WORKFLOWS {
        DoubleTwice::start(&client, format!("crash-{n}"), n as u64)
            .task_queue("crash")
            .await
            .expect("an acknowledged start");
    }
    let killed_after = Worker::new(&client, "crash")
        .register_workflow::<DoubleTwice>()
        .register_activity(double)
        .run_until(async {
            // Kill the engine mid-run: some workflows done, most in flight.
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut done = 0;
            while done < WORKFLOWS / 4 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
                done = completed(&client).await;
            }
            engine.kill().expect("kill -9");
            engine.wait().unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
            let (restarted, _) = spawn_engine(db.path(), port);
            let deadline = Instant::now() + Duration::from_secs(90);
            while completed(&client).await < WORKFLOWS && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (done, restarted)
        })
        .await
        .expect("the worker rides out the restart");
    let (done_before, mut restarted) = killed_after;
    assert!(done_before < WORKFLOWS, "the kill came before the end");
    eprintln!("killed with {done_before} of {WORKFLOWS} workflows completed");
    let runs = client.list_workflows("").await.unwrap();
    assert_eq!(runs.len(), WORKFLOWS, "no workflow lost or duplicated");
    for run in &runs {
        assert_eq!(run.status, WorkflowExecutionStatus::Completed, "{run:?}");
    }
    for n in 0..WORKFLOWS {
        let id = format!("crash-{n}");
        let result: u64 = client.workflow_handle(&id).result_as().await.unwrap();
        assert_eq!(result, n as u64 * 4, "{id}");
        let history = client.workflow_handle(&id).history().await.unwrap();
        let count = |t| history.iter().filter(|e| e.event_type() == t).count();
        assert_eq!(count(EventType::WorkflowExecutionCompleted), 1, "{id}");
        assert_eq!(count(EventType::ActivityTaskCompleted), 2, "{id}");
        assert_eq!(count(EventType::TimerFired), 1, "{id}");
        support::assert_contiguous(&history, &id);
    }
    restarted.kill().unwrap();
    restarted.wait().unwrap();
}
