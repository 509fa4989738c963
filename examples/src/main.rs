//! `capstan-examples tour [--only a,b] [--json] [--server HOST:PORT]` runs the seed's
//! patterns end to end; `capstan-examples worker --server HOST:PORT [--task-queue Q]` runs a
//! worker with every example registered until Ctrl-C; `capstan-examples schema [--out
//! FILE]` writes that worker's JSON Schema manifest (for `capstan stubs`).
//!
//! Without `--server`, the tour runs on the embedded engine, in this process: nothing to
//! install. `--dev-server` starts a real Temporal dev server instead (installed on first use
//! under `target/`). `--ui` keeps the engine, its Temporal Web UI and a worker up after the
//! tour, printing the UI's address, until Ctrl-C.

use std::process::ExitCode;

use capstan::Client;
use capstan_examples::{tour, worker, TASK_QUEUE};

const USAGE: &str = "usage:
  capstan-examples tour [--only NAME[,NAME]] [--json] [--server HOST:PORT | --dev-server | --ui]
  capstan-examples worker --server HOST:PORT [--task-queue QUEUE]
  capstan-examples schema [--out FILE] [--task-queue QUEUE]";

struct Args {
    command: String,
    only: Option<Vec<String>>,
    json: bool,
    server: Option<String>,
    dev_server: bool,
    ui: bool,
    task_queue: String,
    out: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_else(|| "tour".to_owned());
    let mut parsed = Args {
        command,
        only: None,
        json: false,
        server: None,
        dev_server: false,
        ui: false,
        task_queue: TASK_QUEUE.to_owned(),
        out: None,
    };
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("`{flag}` needs a value"));
        match arg.as_str() {
            "--only" => {
                parsed.only = Some(value("--only")?.split(',').map(str::to_owned).collect())
            }
            "--json" => parsed.json = true,
            "--server" => parsed.server = Some(value("--server")?),
            "--dev-server" => parsed.dev_server = true,
            "--ui" => parsed.ui = true,
            "--task-queue" => parsed.task_queue = value("--task-queue")?,
            "--out" => parsed.out = Some(value("--out")?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if parsed.ui && (parsed.server.is_some() || parsed.dev_server) {
        return Err(
            "`--ui` shows the embedded engine's runs in its Web UI; a Temporal server has its own UI"
                .to_owned(),
        );
    }
    if let Some(only) = &parsed.only {
        for name in only {
            tour::find(name).map_err(|unknown| unknown.to_string())?;
        }
    }
    Ok(parsed)
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("error: {message}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<bool> {
    // The backend: a server the user names, a Temporal dev server of our own, or (the
    // default) the embedded engine in this process. Each stops when dropped.
    let mut _dev_server = None;
    let mut _engine = None;
    let address = match (&args.server, args.dev_server) {
        (Some(address), _) => address.clone(),
        (None, true) => {
            eprintln!("starting a Temporal dev server...");
            let server = capstan::testing::DevServer::start().await?;
            let address = server.address();
            _dev_server = Some(server);
            address
        }
        (None, false) => {
            let engine = capstan_engine::Engine::start(capstan_engine::EngineOptions {
                web_ui: args.ui.then(capstan_engine::WebUiOptions::default),
                ..capstan_engine::EngineOptions::default()
            })
            .await?;
            let address = engine.address();
            _engine = Some(engine);
            address
        }
    };
    let client = Client::connect(address).await?;
    let result = match args.command.as_str() {
        "worker" => {
            worker(&client, &args.task_queue).run().await?;
            Ok(true)
        }
        "tour" => {
            let ok = run_tour(&client, &args).await;
            if let Some(ui) = _engine.as_ref().and_then(|e| e.web_ui_address()) {
                show_ui(&client, &args, &ui).await?;
            }
            ok
        }
        "schema" => {
            let manifest = worker(&client, &args.task_queue)
                .manifest()
                .to_json_pretty();
            match &args.out {
                Some(path) => std::fs::write(path, manifest + "\n")?,
                None => println!("{manifest}"),
            }
            Ok(true)
        }
        other => anyhow::bail!("unknown command `{other}`\n{USAGE}"),
    };
    result
}

/// Keeps the engine, its Web UI and a worker up until Ctrl-C, so that the tour's runs can
/// be looked at.
async fn show_ui(client: &Client, args: &Args, ui: &str) -> anyhow::Result<()> {
    let dir = capstan_engine::web_ui_default_dir();
    if !dir.join("index.html").is_file() {
        eprintln!(
            "the Web UI is not built yet: run `{}` (its page says so too)",
            capstan_engine::WEB_UI_BUILD_COMMAND
        );
    }
    println!("the tour's runs are in the Temporal Web UI at http://{ui}/namespaces/default/workflows (Ctrl-C stops)");
    worker(client, &args.task_queue)
        .run_until(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

async fn run_tour(client: &Client, args: &Args) -> anyhow::Result<bool> {
    let run_id = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
    );
    let names: Vec<&str> = match &args.only {
        Some(only) => only.iter().map(String::as_str).collect(),
        None => tour::PATTERNS.iter().map(|p| p.name).collect(),
    };
    let reports = worker(client, &args.task_queue)
        .run_until(async {
            let mut reports = Vec::new();
            for name in names {
                let report = tour::run(client, &args.task_queue, name, &run_id).await;
                if args.json {
                    println!(
                        "{}",
                        serde_json::to_string(&report).expect("a report serializes")
                    );
                } else {
                    let mark = if report.ok { "ok  " } else { "FAIL" };
                    println!(
                        "{mark} {:<20} {:>6} ms  {}",
                        report.pattern, report.ms, report.result
                    );
                }
                reports.push(report);
            }
            reports
        })
        .await?;
    Ok(reports.iter().all(|r| r.ok))
}
