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
