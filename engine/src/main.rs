//! `capstan-engine`: a Temporal-compatible development server in one process.

use std::{net::IpAddr, path::PathBuf};

use capstan_engine::{Engine, EngineOptions, EngineTls, WebUiOptions};

const USAGE: &str =
    "usage: capstan-engine [--ip IP] [--port PORT] [--http-port PORT] [--ui-port PORT] [--ui-ip IP] [--headless]
                      [--ui-codec-endpoint URL] [--namespace NAME]... [--virtual-clock] [--db PATH]
                      [--search-attribute NAME=TYPE]... [--tls-cert PATH --tls-key PATH [--tls-client-ca PATH]] [--api-key KEY]

Serves Temporal's WorkflowService (in memory, or durable with --db) and the Temporal Web UI,
and prints their addresses when ready: the gRPC address first, then `web-ui URL` and
`http-api URL` lines for what it serves. Logs go to stderr, filtered by RUST_LOG (default `info` for the engine).
  --ip IP            address to listen on (default 127.0.0.1)
  --port PORT        port to listen on (default 7233; 0 picks a free one)
  --http-port PORT   serve Temporal's HTTP API (/api/v1/..., JSON) on this port too (0 picks
                     a free one)
  --ui-port PORT     serve the Temporal Web UI on this port (default: --port + 1000; 0 picks
                     a free one); built by `python3 engine/web-ui/build.py`
  --ui-ip IP         address the Web UI listens on (default: --ip)
  --headless         do not serve the Web UI
  --ui-codec-endpoint URL
                     a codec server the Web UI decodes payloads with (e.g. Capstan's
                     CodecServer)
  --namespace NAME   a namespace to create (repeatable; default `default`)
  --virtual-clock    skip time to the next timer whenever nothing else is pending (tests)
  --db PATH          keep the state in this SQLite file (created if missing; resumed if not)
  --search-attribute NAME=TYPE
                     a custom search attribute every namespace has (repeatable; TYPE is
                     Keyword, Text, Int, Double, Bool, Datetime or KeywordList)
  --tls-cert PATH    serve TLS only, with this PEM certificate (chain)
  --tls-key PATH     the PEM private key of `--tls-cert`
  --tls-client-ca PATH
                     require client certificates signed by this PEM CA (mTLS)
  --api-key KEY      require `authorization: Bearer KEY` on every call (Temporal SDKs'
                     api_key option); read from CAPSTAN_ENGINE_API_KEY when not given,
                     which keeps it out of `ps`";

/// The environment variable that holds the API key when `--api-key` is not given.
const API_KEY_VAR: &str = "CAPSTAN_ENGINE_API_KEY";

fn parse(args: Vec<String>, env_api_key: Option<String>) -> Result<EngineOptions, String> {
    let mut options = EngineOptions {
        port: 7233,
        ..EngineOptions::default()
    };
    let mut namespaces = Vec::new();
    let (mut cert, mut key, mut client_ca) = (None, None, None);
    let mut ui = WebUiOptions::default();
    let (mut ui_port, mut headless) = (None::<u16>, false);
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
            "--http-port" => {
                let v = value("--http-port")?;
                options.http_port = Some(
                    v.parse()
                        .map_err(|e| format!("bad `--http-port {v}`: {e}"))?,
                );
            }
            "--ui-port" => {
                let v = value("--ui-port")?;
                ui_port = Some(v.parse().map_err(|e| format!("bad `--ui-port {v}`: {e}"))?);
            }
            "--ui-ip" => {
                let v = value("--ui-ip")?;
                ui.ip = Some(
                    v.parse::<IpAddr>()
                        .map_err(|e| format!("bad `--ui-ip {v}`: {e}"))?,
                );
            }
            "--ui-codec-endpoint" => ui.codec_endpoint = Some(value("--ui-codec-endpoint")?),
            "--headless" => headless = true,
            "--namespace" => namespaces.push(value("--namespace")?),
            "--virtual-clock" => options.virtual_clock = true,
            "--db" => options.db = Some(PathBuf::from(value("--db")?)),
            "--search-attribute" => {
                let v = value("--search-attribute")?;
                let (name, kind) = v.split_once('=').ok_or_else(|| {
                    format!("bad `--search-attribute {v}`: write it NAME=TYPE, e.g. Color=Keyword")
                })?;
                options
                    .search_attributes
                    .push((name.to_owned(), kind.to_owned()));
            }
            "--tls-cert" => cert = Some(PathBuf::from(value("--tls-cert")?)),
            "--tls-key" => key = Some(PathBuf::from(value("--tls-key")?)),
            "--tls-client-ca" => client_ca = Some(PathBuf::from(value("--tls-client-ca")?)),
            "--api-key" => options.api_key = Some(value("--api-key")?),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    if !namespaces.is_empty() {
        options.namespaces = namespaces;
    }
    if options.api_key.is_none() {
        options.api_key = env_api_key.filter(|k| !k.is_empty());
    }
    if options
        .api_key
        .as_ref()
        .is_some_and(|k| k.trim().is_empty())
    {
        return Err(format!("`--api-key` must not be blank\n\n{USAGE}"));
    }
    options.tls = match (cert, key) {
        (Some(cert), Some(key)) => {
            Some(EngineTls::from_files(cert, key, client_ca).map_err(|e| e.to_string())?)
        }
        (None, None) if client_ca.is_none() => None,
        (None, None) => {
            return Err(format!(
                "`--tls-client-ca` needs `--tls-cert` and `--tls-key`\n\n{USAGE}"
            ))
        }
        _ => {
            return Err(format!(
                "`--tls-cert` and `--tls-key` go together\n\n{USAGE}"
            ))
        }
    };
    // The Web UI is served over plain HTTP only: with TLS, only when asked for.
    if !headless && (options.tls.is_none() || ui_port.is_some()) {
        // As `temporal server start-dev`: the gRPC port + 1000, unless that port is free-picked.
        ui.port = match ui_port {
            Some(port) => port,
            None if options.port == 0 => 0,
            None => options.port.checked_add(1000).ok_or_else(|| {
                format!("`--port {}` leaves no port 1000 above for the Web UI: give `--ui-port` or `--headless`", options.port)
            })?,
        };
        options.web_ui = Some(ui);
    }
    Ok(options)
}

#[tokio::main]
async fn main() {
    init_logging();
    let env_api_key = std::env::var(API_KEY_VAR).ok();
    let options = match parse(std::env::args().skip(1).collect(), env_api_key) {
        Ok(o) => o,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let stop = stop_requested();
    let engine = match Engine::start(options).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("capstan-engine: {e}");
            std::process::exit(1);
        }
    };
    // One write: a reader that takes the first line and closes the pipe loses nothing
    // the engine would later fail to print.
    let mut ready = format!("{}\n", engine.address());
    if let Some(ui) = engine.web_ui_address() {
        ready.push_str(&format!("web-ui http://{ui}\n"));
    }
    if let Some(http) = engine.http_address() {
        ready.push_str(&format!("http-api http://{http}\n"));
    }
    print!("{ready}");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    stop.await;
    engine.shutdown().await;
}

/// Logs to stderr, filtered by `RUST_LOG` (default: the engine's `info`, others' `warn`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,capstan_engine=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours for a terminal, plain text for a file or a journal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Listens for SIGINT (Ctrl-C) and SIGTERM (what service managers and containers send)
/// from now on, and answers a future that completes at either: either way the engine stops
/// gracefully, answering its held polls and writing what it acknowledged. Registered before
/// the engine prints its address, so that a stop sent as soon as it is ready is not missed
/// (the default action would end the process at once).
fn stop_requested() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let signals = signal(SignalKind::interrupt()).and_then(|interrupt| {
            signal(SignalKind::terminate()).map(|terminate| (interrupt, terminate))
        });
        async move {
            match signals {
                Ok((mut interrupt, mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
