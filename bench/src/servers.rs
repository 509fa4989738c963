//! The servers the contestants run against: the Temporal dev server (tuned and with its
//! defaults) and the embedded engine (in memory and on a SQLite file).

use std::{
    fmt,
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child as Process, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};
use capstan::testing::{temporal_cli, DevServer};
use capstan_engine::{Engine, EngineOptions};

/// A kind of server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServerKind {
    /// The embedded engine, state in memory.
    EngineMemory,
    /// The embedded engine, state in a SQLite file (every transition committed).
    EngineFile,
    /// `temporal server start-dev` tuned for throughput: `history.transferProcessorMaxPollRPS=1000`,
    /// one matching partition per task queue.
    DevServerTuned,
    /// `temporal server start-dev` with its default dynamic config.
    DevServerDefault,
}

/// The dynamic config that lifts the dev server's dispatch limits (see the issue).
pub const DEV_SERVER_TUNING: [&str; 3] = [
    "history.transferProcessorMaxPollRPS=1000",
    "matching.numTaskqueueReadPartitions=1",
    "matching.numTaskqueueWritePartitions=1",
];

impl ServerKind {
    /// Every kind.
    pub const ALL: [ServerKind; 4] = [
        Self::EngineMemory,
        Self::EngineFile,
        Self::DevServerTuned,
        Self::DevServerDefault,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::EngineMemory => "engine-memory",
            Self::EngineFile => "engine-file",
            Self::DevServerTuned => "dev-tuned",
            Self::DevServerDefault => "dev-default",
        }
    }

    /// The kind called `name`.
    pub fn from_name(name: &str) -> anyhow::Result<ServerKind> {
        Self::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .with_context(|| {
                format!(
                    "unknown server `{name}`; expected engine-memory, engine-file, dev-tuned or dev-default"
                )
            })
    }

    /// Whether this is a Temporal dev server.
    pub fn is_dev_server(self) -> bool {
        matches!(self, Self::DevServerTuned | Self::DevServerDefault)
    }

    /// Starts a server of this kind on loopback.
    pub async fn start(self) -> anyhow::Result<Server> {
        let running = match self {
            Self::EngineMemory => {
                Running::Engine(Engine::start(EngineOptions::default()).await?, None)
            }
            Self::EngineFile => {
                let dir = ScratchDir::new()?;
                let options = EngineOptions {
                    db: Some(dir.0.join("engine.db")),
                    ..EngineOptions::default()
                };
                Running::Engine(Engine::start(options).await?, Some(dir))
            }
            Self::DevServerTuned => {
                // `DevServer` sets `transferProcessorMaxPollRPS=1000` itself.
                let args = DEV_SERVER_TUNING[1..]
                    .iter()
                    .flat_map(|value| ["--dynamic-config-value".to_owned(), (*value).to_owned()])
                    .collect();
                Running::Tuned(DevServer::start_with_args(args).await?)
            }
            Self::DevServerDefault => {
                // `DevServer` always tunes the server, so this one is started here.
                tokio::task::spawn_blocking(DefaultDevServer::start)
                    .await??
                    .into()
            }
        };
        Ok(Server {
            kind: self,
            running,
        })
    }
}

impl fmt::Display for ServerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A running server; dropping it stops it.
#[derive(Debug)]
pub struct Server {
    kind: ServerKind,
    running: Running,
}

#[derive(Debug)]
enum Running {
    /// The engine, and the directory of its database (removed after it stops).
    Engine(Engine, #[allow(dead_code)] Option<ScratchDir>),
    Tuned(DevServer),
    Default(DefaultDevServer),
}

impl From<DefaultDevServer> for Running {
    fn from(server: DefaultDevServer) -> Self {
        Running::Default(server)
    }
}

impl Server {
    /// Its kind.
    pub fn kind(&self) -> ServerKind {
        self.kind
    }

    /// Its gRPC address, `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        match &self.running {
            Running::Engine(engine, _) => engine.address(),
            Running::Tuned(server) => server.address(),
            Running::Default(server) => server.address.clone(),
        }
    }
}

/// `temporal server start-dev` without dynamic config.
#[derive(Debug)]
struct DefaultDevServer {
    address: String,
    process: Process,
}

impl DefaultDevServer {
    fn start() -> anyhow::Result<DefaultDevServer> {
        let cli = temporal_cli()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let address = format!("127.0.0.1:{port}");
        let log = log_file(&format!("dev-server-default-{port}.log"))?;
        let process = Command::new(&cli)
            .args(["server", "start-dev", "--ip", "127.0.0.1", "--headless"])
            .args(["--port", &port.to_string(), "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log)?)
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("could not start {}", cli.display()))?;
        let mut server = DefaultDevServer { address, process };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = server.process.try_wait()? {
                bail!(
                    "the default dev server exited ({status}); see {}",
                    log.display()
                );
            }
            let ready = TcpStream::connect(&server.address).is_ok()
                && Command::new(&cli)
                    .args([
                        "operator",
                        "namespace",
                        "describe",
                        "--namespace",
                        "default",
                    ])
                    .args(["--address", &server.address])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
            if ready {
                return Ok(server);
            }
            if Instant::now() > deadline {
                bail!(
                    "the default dev server was not ready within 60 s; see {}",
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for DefaultDevServer {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn log_file(name: &str) -> anyhow::Result<PathBuf> {
    let dir = capstan::testing::tools_dir()?.join("logs");
    std::fs::create_dir_all(&dir)?;
    Ok(dir.join(name))
}

/// A directory for the durable engine's database, removed on drop. Under the target
/// directory rather than the system's temporary directory, which may be a RAM disk.
#[derive(Debug)]
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> anyhow::Result<ScratchDir> {
        let dir = capstan::testing::target_dir()?
            .join("bench-engine")
            .join(format!("{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
        Ok(ScratchDir(dir))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
