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
