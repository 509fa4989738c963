//! The `capstan-engine` binary prints its address when ready and serves clients there.

mod support;

#[tokio::test]
async fn the_binary_prints_an_address_clients_connect_to() {
    let (mut child, address) = support::spawn_binary(["--port", "0", "--namespace", "default"]);
    let connected = capstan::Client::connect(address.clone()).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let client = connected.expect("a client connects to the printed address");
    assert_eq!(client.address(), address);
}

#[cfg(unix)]
#[tokio::test]
async fn sigterm_stops_the_binary_gracefully() {
    use std::os::unix::process::ExitStatusExt as _;
    let db = support::TempDb::new("sigterm");
    let db_path = db.path().to_str().unwrap().to_owned();
    let (mut child, address) =
        support::spawn_binary(["--port", "0", "--namespace", "default", "--db", &db_path]);
    // A connected client does not hold the engine up.
    let _client = capstan::Client::connect(address).await.unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        None,
        "the process was not killed by the signal"
    );
    assert!(status.success(), "{status:?}");
    // The file was let go: another engine opens it.
    let (engine, _) = support::engine_on(db.path()).await;
    engine.shutdown().await;
}

/// Sleeps a year.
#[capstan::workflow]
#[derive(Default)]
pub struct YearLongNap;

#[capstan::workflow]
impl YearLongNap {
    #[run]
    pub async fn run(ctx: capstan::WorkflowContext<Self>) -> capstan::WorkflowResult<()> {
        ctx.sleep(std::time::Duration::from_secs(365 * 24 * 3600))
            .await?;
        Ok(())
    }
}

#[tokio::test]
async fn the_binary_runs_on_a_virtual_clock_with_the_flag() {
    let (mut child, address) = support::spawn_binary(["--port", "0", "--virtual-clock"]);
    let slept = async {
        let client = capstan::Client::connect(address)
            .await
            .expect("a client connects");
        capstan::Worker::new(&client, "binary-virtual-clock")
            .register_workflow::<YearLongNap>()
            .run_until(async {
                YearLongNap::start(&client, "year-long-nap")
                    .task_queue("binary-virtual-clock")
                    .await?
                    .result()
                    .await
            })
            .await
            .expect("the worker runs")
    };
    let slept = tokio::time::timeout(std::time::Duration::from_secs(30), slept).await;
    child.kill().unwrap();
    child.wait().unwrap();
    slept
        .expect("a year passes in well under 30 seconds")
        .expect("the workflow completes");
}
