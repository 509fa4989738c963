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

/// The binary started with `args` and `env` (`RUST_LOG` unset), with its stderr captured:
/// the child, the address it printed, and what it logs until it stops.
fn spawn_logging(
    args: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Child, String, std::thread::JoinHandle<String>) {
    use std::io::{BufRead as _, Read as _};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_capstan-engine"))
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("CAPSTAN_ENGINE_API_KEY")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut stderr = child.stderr.take().unwrap();
    let logged = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(!line.trim().is_empty(), "the engine printed no address");
    (child, line.trim().to_owned(), logged)
}

/// Stops the binary as a service manager does, and answers what it logged.
fn stop_logging(mut child: std::process::Child, logged: std::thread::JoinHandle<String>) -> String {
    #[cfg(unix)]
    {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
    }
    #[cfg(not(unix))]
    {
        let _ = child.kill();
    }
    child.wait().unwrap();
    logged.join().unwrap()
}

#[test]
fn the_binary_logs_where_it_serves_and_when_it_stops_to_stderr() {
    let (child, address, logged) = spawn_logging(&["--port", "0", "--headless"], &[]);
    let logged = stop_logging(child, logged);
    assert!(
        logged.contains(&format!(
            "serving Temporal's WorkflowService at {address} (in memory)"
        )),
        "{logged}"
    );
    assert!(logged.contains(" INFO "), "{logged}");
    #[cfg(unix)]
    assert!(
        logged.contains(&format!("stopped serving at {address}")),
        "{logged}"
    );
    assert!(!logged.contains("WARN"), "{logged}");
}

#[test]
fn a_bind_beyond_loopback_without_tls_or_key_is_warned_about() {
    let (child, _, logged) = spawn_logging(&["--ip", "0.0.0.0", "--port", "0", "--headless"], &[]);
    let logged = stop_logging(child, logged);
    let warning = logged
        .lines()
        .find(|l| l.contains(" WARN "))
        .unwrap_or_else(|| panic!("no warning: {logged}"));
    assert!(
        warning.contains("with neither TLS nor an API key") && warning.contains("--api-key"),
        "{warning}"
    );

    // An API key (here from the environment, out of `ps`'s sight) answers the warning.
    let (child, _, logged) = spawn_logging(
        &["--ip", "0.0.0.0", "--port", "0", "--headless"],
        &[("CAPSTAN_ENGINE_API_KEY", "binary-test-key")],
    );
    let logged = stop_logging(child, logged);
    assert!(logged.contains("API key required"), "{logged}");
    assert!(!logged.contains("WARN"), "{logged}");
    assert!(
        !logged.contains("binary-test-key"),
        "the key is logged: {logged}"
    );
}

#[test]
fn a_search_attribute_flag_is_checked_before_the_engine_serves() {
    for (flag, expected) in [
        ("Color", "write it NAME=TYPE, e.g. Color=Keyword"),
        (
            "Color=Colour",
            "cannot add the search attribute Color: `Colour` is not a search attribute type",
        ),
        (
            "WorkflowId=Keyword",
            "Search attribute WorkflowId is reserved by system.",
        ),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_capstan-engine"))
            .args(["--port", "0", "--search-attribute", flag])
            .output()
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{flag}: it served");
        assert!(stderr.contains(expected), "{flag}: {stderr}");
    }
}

#[tokio::test]
async fn a_search_attribute_flag_registers_it_in_every_namespace() {
    let (mut child, address) = support::spawn_binary([
        "--port",
        "0",
        "--search-attribute",
        "Color=keyword",
        "--search-attribute",
        "Size=Int",
    ]);
    let client = capstan::Client::connect(address).await.unwrap();
    let listed = client.list_workflows("Color = 'red' OR Size > 3").await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(listed.expect("both are search attributes").is_empty());
}

/// The lines the binary prints when ready, read until `count` are in.
fn ready_lines(child: &mut std::process::Child, count: usize) -> Vec<String> {
    use std::io::BufRead as _;
    let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
    (0..count)
        .map(|_| {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            line.trim().to_owned()
        })
        .collect()
}

#[test]
fn the_binary_serves_the_web_ui_and_the_http_api_where_it_says() {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_capstan-engine"))
        .args(["--port", "0", "--http-port", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let lines = ready_lines(&mut child, 3);
    let ui = lines[1]
        .strip_prefix("web-ui http://")
        .expect("the UI's line");
    let api = lines[2]
        .strip_prefix("http-api http://")
        .expect("the API's line");
    let get = |address: &str, path: &str| {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(address).expect("it listens");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    };
    let settings = get(ui, "/api/v1/settings");
    assert!(
        settings.starts_with("HTTP/1.1 200") && settings.contains("\"Version\""),
        "{settings}"
    );
    let namespace = get(api, "/api/v1/namespaces/default");
    assert!(namespace.contains("\"name\":\"default\""), "{namespace}");
    child.kill().unwrap();
    child.wait().unwrap();

    // Headless: the gRPC address alone.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_capstan-engine"))
        .args(["--port", "0", "--headless", "--ui-port", "nope"])
        .output()
        .expect("the binary runs");
    assert!(String::from_utf8_lossy(&output.stderr).contains("bad `--ui-port nope`"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_capstan-engine"))
        .args(["--port", "0", "--headless"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut stdout = child.stdout.take().unwrap();
    let mut printed = [0u8; 256];
    let n = std::io::Read::read(&mut stdout, &mut printed).unwrap();
    let printed = String::from_utf8_lossy(&printed[..n]).into_owned();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(printed.lines().count(), 1, "{printed}");
}
