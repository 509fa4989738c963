//! The contestants: workers of three SDKs running the same benchmark workflows.
//!
//! Each worker runs in a process of its own (the bench binary's `worker` subcommand for
//! the two Rust SDKs, `python/worker.py` for Python), so that no contestant shares a
//! runtime or an allocator with the harness, and its resident memory can be read from
//! `/proc`. Every worker registers workflows of the same names (`OneActivity`, `Counter`,
//! `Sleeper`, `Child`, `FanOut`) and the activity `noop`; the harness starts them all with
//! the same Capstan client, so the client side is identical for every contestant.

pub mod capstan_worker;
pub mod official_worker;

use std::{
    fmt,
    io::Read as _,
    path::{Path, PathBuf},
    process::{Child as Process, ChildStdin, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};
use capstan::{prelude::*, testing::Python};
use serde::de::IgnoredAny;

/// The `FanOut` workflow's input.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, JsonSchema)]
pub struct FanOutInput {
    /// No-op activities run at once.
    pub activities: u32,
    /// Child workflows run at once, after the activities.
    pub children: u32,
}

/// Which SDK runs the worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Contestant {
    /// Capstan (this project).
    Capstan,
    /// The official Temporal Rust SDK, `temporalio-sdk`.
    OfficialRust,
    /// The Temporal Python SDK, `temporalio`.
    Python,
}

impl Contestant {
    /// Every contestant.
    pub const ALL: [Contestant; 3] = [Self::Capstan, Self::OfficialRust, Self::Python];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Capstan => "capstan",
            Self::OfficialRust => "official-rust",
            Self::Python => "python",
        }
    }

    /// The contestant called `name`.
    pub fn from_name(name: &str) -> anyhow::Result<Contestant> {
        Self::ALL
            .into_iter()
            .find(|c| c.name() == name)
            .with_context(|| {
                format!("unknown contestant `{name}`; expected capstan, official-rust or python")
            })
    }
}

impl fmt::Display for Contestant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The body of the bench binary's `worker` subcommand: runs a Rust contestant's worker
/// until stdin closes.
pub async fn worker_main(
    contestant: Contestant,
    address: &str,
    task_queue: &str,
    max_cached_workflows: usize,
) -> anyhow::Result<()> {
    let stop = async {
        let _ = tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await;
    };
    match contestant {
        Contestant::Capstan => {
            capstan_worker::run(address, task_queue, max_cached_workflows, stop).await
        }
        Contestant::OfficialRust => {
            official_worker::run(address, task_queue, max_cached_workflows, stop).await
        }
        Contestant::Python => bail!("the Python worker is `bench/python/worker.py`"),
    }
}

/// Starts worker processes.
#[derive(Clone, Debug)]
pub struct Launcher {
    bench_exe: PathBuf,
    python: Option<Python>,
}

/// How long a new worker may take to run its first workflow.
const WARM_UP_TIMEOUT: Duration = Duration::from_secs(120);

impl Launcher {
    /// A launcher running the Rust workers with `bench_exe` (the `capstan-bench` binary)
    /// and the Python worker in `python`'s venv (`None`: no Python contestant).
    pub fn new(bench_exe: impl Into<PathBuf>, python: Option<Python>) -> Launcher {
        Launcher {
            bench_exe: bench_exe.into(),
            python,
        }
    }

    /// Starts `contestant`'s worker on `task_queue` of the server at `address`; returns
    /// once it has run a first workflow (so that no measurement includes its start-up).
    pub async fn start(
        &self,
        contestant: Contestant,
        address: &str,
        task_queue: &str,
        max_cached_workflows: usize,
    ) -> anyhow::Result<RunningWorker> {
        let mut command = match contestant {
            Contestant::Python => {
                let python = self.python.as_ref().context(
                    "the Python contestant needs the Python venv (run without `--no-python`)",
                )?;
                let mut command = python.command();
                command.arg(python_worker_script());
                command
            }
            rust => {
                let mut command = Command::new(&self.bench_exe);
                command.args(["worker", rust.name()]);
                command
            }
        };
        command
            .arg(address)
            .arg(task_queue)
            .arg(max_cached_workflows.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null());
        let mut process = command
            .spawn()
            .with_context(|| format!("could not start the {contestant} worker ({command:?})"))?;
        let stdin = process.stdin.take();
        let mut worker = RunningWorker {
            contestant,
            task_queue: task_queue.to_owned(),
            process,
            stdin,
        };
        worker.warm_up(address).await?;
        Ok(worker)
    }
}

/// The Python contestant's script.
pub fn python_worker_script() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/python/worker.py"))
}

/// The resident memory (`VmRSS`) of process `pid`, in bytes.
pub fn resident_bytes(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status =
        std::fs::read_to_string(&path).with_context(|| format!("could not read {path}"))?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS line in {path}"))?;
    Ok(kib * 1024)
}

/// The CPU time (user and system) process `pid` has used so far.
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("could not read {path}"))?;
    // Fields after the command name (which may hold spaces, in parentheses): state is the
    // first, utime the 12th and stime the 13th, in clock ticks.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .with_context(|| format!("{path} has no CPU time field {i}"))
    };
    let ticks = ticks(11)? + ticks(12)?;
    // The kernel reports USER_HZ ticks, 100 a second on Linux.
    Ok(Duration::from_millis(ticks * 10))
}

/// A worker process; dropping it stops the worker.
#[derive(Debug)]
pub struct RunningWorker {
    contestant: Contestant,
    task_queue: String,
    process: Process,
    /// Closing it tells the worker to shut down.
    stdin: Option<ChildStdin>,
}

impl RunningWorker {
    /// The task queue the worker polls.
    pub fn task_queue(&self) -> &str {
        &self.task_queue
    }

    /// The worker process's resident memory (`VmRSS`), in bytes.
    pub fn resident_bytes(&self) -> anyhow::Result<u64> {
        resident_bytes(self.process.id())
    }

    /// The CPU time the worker process has used so far.
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        cpu_time(self.process.id())
    }

    async fn warm_up(&mut self, address: &str) -> anyhow::Result<()> {
        let client = Client::connect(address).await?;
        let id = capstan::testing::unique_task_queue("bench-warm-up");
        let handle = client
            .start_workflow_by_name("OneActivity", id, ())
            .task_queue(&self.task_queue)
            .await?;
        let started = Instant::now();
        let mut result = std::pin::pin!(handle.result_as::<IgnoredAny>());
        loop {
            tokio::select! {
                outcome = &mut result => {
                    outcome.with_context(|| format!("the {} worker's first workflow failed", self.contestant))?;
                    return Ok(());
                }
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            if let Some(status) = self.process.try_wait()? {
                bail!(
                    "the {} worker exited before running a workflow ({status}); its errors are above",
                    self.contestant
                );
            }
            if started.elapsed() > WARM_UP_TIMEOUT {
                bail!(
                    "the {} worker ran no workflow within {WARM_UP_TIMEOUT:?}",
                    self.contestant
                );
            }
        }
    }
}

impl Drop for RunningWorker {
    fn drop(&mut self) {
        // A graceful shutdown can wait out the server's long polls: give it a moment,
        // then kill it (nothing is measured any more).
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.process.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
