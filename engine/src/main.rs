//! `capstan-engine`: a Temporal-compatible development server in one process.

use std::net::IpAddr;

use capstan_engine::{Engine, EngineOptions};

const USAGE: &str =
    "usage: capstan-engine [--ip IP] [--port PORT] [--namespace NAME]... [--virtual-clock]

Serves Temporal's WorkflowService (in memory) and prints its address when ready.
  --ip IP            address to listen on (default 127.0.0.1)
  --port PORT        port to listen on (default 7233; 0 picks a free one)
  --namespace NAME   a namespace to create (repeatable; default `default`)
  --virtual-clock    skip time to the next timer whenever nothing else is pending (tests)";

fn parse(args: Vec<String>) -> Result<EngineOptions, String> {
    let mut options = EngineOptions {
        port: 7233,
        ..EngineOptions::default()
    };
    let mut namespaces = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("`{name}` needs a value\n\n{USAGE}"))
        };
        match arg.as_str() {
            "--ip" => {
                let v = value("--ip")?;
                options.ip = v
                    .parse::<IpAddr>()
                    .map_err(|e| format!("bad `--ip {v}`: {e}"))?;
            }
            "--port" => {
                let v = value("--port")?;
                options.port = v.parse().map_err(|e| format!("bad `--port {v}`: {e}"))?;
            }
            "--namespace" => namespaces.push(value("--namespace")?),
            "--virtual-clock" => options.virtual_clock = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    if !namespaces.is_empty() {
        options.namespaces = namespaces;
    }
    Ok(options)
}

#[tokio::main]
async fn main() {
    let options = match parse(std::env::args().skip(1).collect()) {
        Ok(o) => o,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let engine = match Engine::start(options).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("capstan-engine: {e}");
            std::process::exit(1);
        }
    };
    println!("{}", engine.address());
    let _ = tokio::signal::ctrl_c().await;
    engine.shutdown().await;
}
