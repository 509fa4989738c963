//! The `capstan-engine` binary prints its address when ready and serves clients there.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
};

#[tokio::test]
async fn the_binary_prints_an_address_clients_connect_to() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_capstan-engine"))
        .args(["--port", "0", "--namespace", "default"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let address = line.trim().to_owned();
    let connected = capstan::Client::connect(address.clone()).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let client = connected.expect("a client connects to the printed address");
    assert_eq!(client.address(), address);
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_capstan-engine"))
        .args(["--port", "0", "--virtual-clock"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let slept = async {
        let client = capstan::Client::connect(line.trim().to_owned())
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
