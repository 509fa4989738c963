//! Tests of the test harness itself: the dev server and the Python SDK venv.
#![cfg(feature = "testing")]

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use capstan::testing::{DevServer, Python, Script, PYDANTIC_VERSION, TEMPORALIO_VERSION};

fn accepts(address: &str) -> bool {
    let socket: SocketAddr = address.parse().expect("an IP address and port");
    TcpStream::connect_timeout(&socket, Duration::from_secs(1)).is_ok()
}

#[tokio::test]
async fn dev_server_serves_the_cli_and_stops_on_drop() {
    let started = Instant::now();
    let server = DevServer::start().await.expect("dev server starts");
    eprintln!(
        "dev server ready at {} in {:?} (log: {})",
        server.address(),
        started.elapsed(),
        server.log_path().display()
    );
    let address = server.address();
    assert!(address.starts_with("127.0.0.1:"), "{address}");
    assert_eq!(server.namespace(), "default");
    assert!(accepts(&address));

    let out = server
        .cli_command(["workflow", "list"])
        .output()
        .expect("the temporal CLI runs");
    assert!(
        out.status.success(),
        "`temporal workflow list` failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let stopping = Instant::now();
    drop(server);
    eprintln!("dev server stopped in {:?}", stopping.elapsed());
    assert!(
        !accepts(&address),
        "{address} still accepts connections after drop"
    );
}

#[tokio::test]
async fn shared_dev_server_is_started_once() {
    let first = DevServer::shared().await;
    let second = DevServer::shared().await;
    assert!(std::ptr::eq(first, second));
    assert_eq!(first.address(), second.address());
    assert!(accepts(&first.address()));
}

const DESCRIBE_NAMESPACE: &str = r#"
import asyncio
import sys

import pydantic
import temporalio
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client


async def main(address: str, namespace: str) -> None:
    client = await Client.connect(address, namespace=namespace)
    info = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=namespace)
    )
    print(f"temporalio={temporalio.__version__}")
    print(f"pydantic={pydantic.VERSION}")
    print(f"namespace={info.namespace_info.name}")
    print(f"state={info.namespace_info.state}")


asyncio.run(main(sys.argv[1], sys.argv[2]))
"#;

#[tokio::test]
async fn python_sdk_connects_to_the_dev_server() {
    let started = Instant::now();
    let python = Python::ensure().await.expect("python venv is ready");
    eprintln!(
        "python venv {} ready in {:?}",
        python.venv_dir().display(),
        started.elapsed()
    );
    let server = DevServer::shared().await;

    let out = python
        .run_script(
            Script::source(DESCRIBE_NAMESPACE),
            [server.address(), server.namespace().to_owned()],
        )
        .await
        .expect("the script runs");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines.contains(&format!("temporalio={TEMPORALIO_VERSION}").as_str()),
        "{}",
        out.stdout
    );
    assert!(
        lines.contains(&format!("pydantic={PYDANTIC_VERSION}").as_str()),
        "{}",
        out.stdout
    );
    assert!(lines.contains(&"namespace=default"), "{}", out.stdout);
    // NAMESPACE_STATE_REGISTERED
    assert!(lines.contains(&"state=1"), "{}", out.stdout);
}

#[tokio::test]
async fn python_script_failures_carry_both_outputs() {
    let python = Python::ensure().await.expect("python venv is ready");
    let err = python
        .run_script(
            Script::source("import sys\nprint('to stdout')\nsys.exit('to stderr')"),
            Vec::<String>::new(),
        )
        .await
        .expect_err("the script fails");
    let message = err.to_string();
    assert!(message.contains("to stdout"), "{message}");
    assert!(message.contains("to stderr"), "{message}");
}

#[tokio::test]
async fn python_script_timeout_kills_it() {
    let python = Python::ensure()
        .await
        .expect("python venv is ready")
        .with_timeout(Duration::from_secs(2));
    let started = Instant::now();
    let err = python
        .run_script(
            Script::source("import time\nprint('started', flush=True)\ntime.sleep(60)"),
            Vec::<String>::new(),
        )
        .await
        .expect_err("the script times out");
    assert!(started.elapsed() < Duration::from_secs(30));
    let message = err.to_string();
    assert!(message.contains("did not finish within"), "{message}");
    assert!(message.contains("started"), "{message}");
}

#[tokio::test]
async fn python_runs_script_files_as_main() {
    let python = Python::ensure().await.expect("python venv is ready");
    let dir = std::env::temp_dir().join(format!("capstan-python-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("helper.py"), "GREETING = 'hello'\n").expect("write helper");
    let script = dir.join("main.py");
    std::fs::write(
        &script,
        "import sys\nfrom helper import GREETING\nif __name__ == '__main__':\n    \
         print(GREETING, *sys.argv[1:])\n    sys.exit(int(sys.argv[2]))\n",
    )
    .expect("write script");

    let out = python
        .run_script(&script, ["world", "0"])
        .await
        .expect("the script runs");
    assert_eq!(out.stdout.trim(), "hello world 0");

    let err = python
        .run_script(&script, ["world", "3"])
        .await
        .expect_err("exit code 3 is a failure");
    let message = err.to_string();
    assert!(message.contains("exit status: 3"), "{message}");
    assert!(message.contains("hello world 3"), "{message}");
    let _ = std::fs::remove_dir_all(&dir);
}
