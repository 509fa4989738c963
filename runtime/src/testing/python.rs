//! A Python virtualenv with the Temporal Python SDK, for interoperability tests.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{
    base_python, blocking, install_atomically, run_captured, sanitize_pip_env, tools_dir, Result,
    TestingError, PYDANTIC_VERSION, TEMPORALIO_VERSION,
};

/// Records what a complete venv holds; a venv without it (or with other pins) is rebuilt.
const MARKER: &str = "capstan-pins.txt";
const DEFAULT_SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);
const INSTALL_TIMEOUT: Duration = Duration::from_secs(900);

/// A virtualenv at `<tools dir>/python-venv` with `temporalio` ([`TEMPORALIO_VERSION`])
/// and `pydantic` ([`PYDANTIC_VERSION`]), created on first use.
///
/// ```no_run
/// # async fn demo() -> Result<(), capstan::testing::TestingError> {
/// use capstan::testing::{Python, Script};
/// let python = Python::ensure().await?;
/// let out = python
///     .run_script(Script::source("import sys; print(sys.argv[1])"), ["hello"])
///     .await?;
/// assert_eq!(out.stdout.trim(), "hello");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Python {
    venv: PathBuf,
    interpreter: PathBuf,
    timeout: Duration,
}

/// A Python script: a file, or source text (fed to the interpreter on stdin, so it
/// shows up as `<script>` in tracebacks and cannot read stdin itself).
#[derive(Debug, Clone)]
pub enum Script {
    /// A script file.
    File(PathBuf),
    /// Python source text.
    Source(String),
}

impl Script {
    /// Source text to run.
    pub fn source(text: impl Into<String>) -> Script {
        Script::Source(text.into())
    }

    /// A script file to run.
    pub fn file(path: impl Into<PathBuf>) -> Script {
        Script::File(path.into())
    }
}

impl From<&Path> for Script {
    fn from(path: &Path) -> Script {
        Script::File(path.to_path_buf())
    }
}

impl From<PathBuf> for Script {
    fn from(path: PathBuf) -> Script {
        Script::File(path)
    }
}

impl From<&PathBuf> for Script {
    fn from(path: &PathBuf) -> Script {
        Script::File(path.clone())
    }
}

/// What a successful script printed.
#[derive(Debug, Clone)]
pub struct ScriptOutput {
    /// The exit status (always a success: failures are errors).
    pub status: ExitStatus,
    /// Standard output, decoded lossily as UTF-8.
    pub stdout: String,
    /// Standard error, decoded lossily as UTF-8.
    pub stderr: String,
}

impl Python {
    /// Returns the venv, creating it and installing the pinned packages on first use.
    ///
    /// Idempotent and safe to call from many tests and processes at once: the venv is
    /// built in a temporary directory and renamed into place when complete.
    pub async fn ensure() -> Result<Python> {
        blocking(Self::ensure_blocking).await
    }

    /// [`ensure`](Self::ensure) for synchronous code; blocks the calling thread.
    pub fn ensure_blocking() -> Result<Python> {
        static INSTALL: Mutex<()> = Mutex::new(());
        let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());

        let venv = tools_dir()?.join("python-venv");
        let pins = pins();
        let is_complete = |dir: &Path| {
            interpreter_in(dir).is_file()
                && fs::read_to_string(dir.join(MARKER)).is_ok_and(|m| m == pins)
        };
        let started = Instant::now();
        let mut built = false;
        install_atomically(&venv, is_complete, |tmp| {
            built = true;
            build_venv(tmp, &venv, &pins)
        })?;
        if built {
            tracing::info!(
                "created the Python venv {} in {:?}",
                venv.display(),
                started.elapsed()
            );
        }
        Ok(Python {
            interpreter: interpreter_in(&venv),
            venv,
            timeout: DEFAULT_SCRIPT_TIMEOUT,
        })
    }

    /// The same venv with another time limit for scripts (default 120 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Python {
        self.timeout = timeout;
        self
    }

    /// The venv's directory.
    pub fn venv_dir(&self) -> &Path {
        &self.venv
    }

    /// The venv's interpreter.
    pub fn interpreter(&self) -> &Path {
        &self.interpreter
    }

    /// A command running the venv's interpreter, with `PYTHONHOME` and `PYTHONPATH`
    /// removed and output unbuffered; for what [`run_script`](Self::run_script) does not
    /// cover.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.interpreter);
        cmd.env_remove("PYTHONHOME")
            .env_remove("PYTHONPATH")
            .env("PYTHONUNBUFFERED", "1");
        cmd
    }

    /// Runs `script` with `args` in the venv and returns its output.
    ///
    /// Fails if the script exits unsuccessfully or runs past the time limit; the error
    /// carries its stdout and stderr. The script runs as `__main__` with `sys.argv` as
    /// usual, but the interpreter leaves with `os._exit` after it, to dodge a
    /// known crash of temporalio at interpreter exit:
    /// `atexit` handlers do not run.
    pub async fn run_script<I, S>(&self, script: impl Into<Script>, args: I) -> Result<ScriptOutput>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let this = self.clone();
        let script = script.into();
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        blocking(move || this.run_script_blocking(script, args)).await
    }

    /// [`run_script`](Self::run_script) for synchronous code; blocks the calling thread.
    pub fn run_script_blocking<I, S>(
        &self,
        script: impl Into<Script>,
        args: I,
    ) -> Result<ScriptOutput>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command();
        cmd.arg("-c").arg(RUNNER);
        let stdin = match script.into() {
            Script::File(path) => {
                cmd.arg(path);
                None
            }
            Script::Source(text) => {
                cmd.arg("-");
                Some(text.into_bytes())
            }
        };
        cmd.args(args);
        let out = run_captured(&mut cmd, stdin, self.timeout)?.check()?;
        Ok(ScriptOutput {
            status: out.status,
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }
}

/// Runs a script (a path, or `-` for source on stdin) as `__main__`, then leaves with
/// `os._exit` once stdout and stderr are flushed.
///
/// Skipping interpreter finalization works around temporalio's known crash at exit
/// (sdk-python issue 300: "Fatal Python error: PyGILState_Release: thread state ... must
/// be current when releasing", SIGABRT after the script's work is done), which the SDK's
/// Rust threads cause now and then in short-lived client scripts. As a consequence,
/// `atexit` handlers do not run and non-daemon threads are not joined.
const RUNNER: &str = r#"
import os, runpy, sys, traceback
target = sys.argv[1]
sys.argv = sys.argv[1:]
code = 0
try:
    if target == "-":
        sys.argv[0] = "<script>"
        source = sys.stdin.read()
        main = {"__name__": "__main__", "__file__": "<script>", "__builtins__": __builtins__}
        exec(compile(source, "<script>", "exec"), main)
    else:
        sys.path[0] = os.path.dirname(os.path.abspath(target))
        runpy.run_path(target, run_name="__main__")
except SystemExit as exit:
    if exit.code is None:
        code = 0
    elif isinstance(exit.code, int):
        code = exit.code
    else:
        print(exit.code, file=sys.stderr)
        code = 1
except BaseException:
    traceback.print_exc()
    code = 1
try:
    sys.stdout.flush()
    sys.stderr.flush()
finally:
    os._exit(code)
"#;

fn pins() -> String {
    format!("temporalio=={TEMPORALIO_VERSION}\npydantic=={PYDANTIC_VERSION}\n")
}

fn interpreter_in(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

fn build_venv(tmp: &Path, final_dir: &Path, pins: &str) -> Result<()> {
    const HINT: &str = "the first use creates the venv with `python3 -m venv` (Debian: apt-get \
                        install python3-venv) and installs the packages from PyPI, which must be \
                        reachable (pip honours PIP_INDEX_URL and proxy variables); set \
                        CAPSTAN_PYTHON to use another base interpreter";
    let install_error = |what: &str, detail: String| TestingError::Install {
        what: what.to_owned(),
        dir: final_dir.to_path_buf(),
        detail,
        hint: HINT,
    };

    let python = base_python();
    let mut venv = Command::new(&python);
    venv.args(["-m", "venv"]).arg(tmp);
    sanitize_pip_env(&mut venv);
    match run_captured(&mut venv, None, Duration::from_secs(300)) {
        Ok(out) => {
            out.check()
                .map_err(|e| install_error("a Python venv", e.to_string()))?;
        }
        Err(TestingError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(TestingError::PythonNotFound {
                python: python.to_string_lossy().into_owned(),
                source,
            });
        }
        Err(e) => return Err(install_error("a Python venv", e.to_string())),
    }

    let what = format!("temporalio {TEMPORALIO_VERSION} and pydantic {PYDANTIC_VERSION}");
    let interpreter = interpreter_in(tmp);
    let mut pip = Command::new(&interpreter);
    pip.args(["-m", "pip", "install", "--no-input"])
        .args(pins.lines());
    sanitize_pip_env(&mut pip);
    run_captured(&mut pip, None, INSTALL_TIMEOUT)
        .and_then(|c| c.check())
        .map_err(|e| install_error(&what, e.to_string()))?;

    let mut check = Command::new(&interpreter);
    check.args(["-c", "import temporalio.client, pydantic"]);
    sanitize_pip_env(&mut check);
    run_captured(&mut check, None, Duration::from_secs(120))
        .and_then(|c| c.check())
        .map_err(|e| install_error(&what, format!("the packages do not import: {e}")))?;

    fs::write(tmp.join(MARKER), pins)
        .map_err(|e| TestingError::io(format!("could not write into {}", tmp.display()), e))
}
