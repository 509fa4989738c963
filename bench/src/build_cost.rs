//! Scenario 8, what building costs: the same hello-world app (a greeting workflow, its
//! activity, a worker and a client; `bench/apps/`) written for Capstan and for the
//! official Rust SDK, built from clean with `cargo build` (the dev profile a user starts
//! with) in a target directory of its own, then rebuilt after an edit to the workflow.
//!
//! Each app is copied under `target/bench-build/` with the workspace's `Cargo.lock`, so
//! both resolve to the versions the workspace builds, and its sources are fetched before
//! anything is timed (the timed builds run `--offline`).

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};

use crate::contestants::Contestant;

/// What building one app cost.
#[derive(Clone, Debug)]
pub struct BuildCost {
    /// Whose app.
    pub contestant: Contestant,
    /// Packages in its dependency graph (the app included), for this machine's platform.
    pub packages: usize,
    /// `cargo build` from an empty target directory.
    pub clean: Duration,
    /// `cargo build` again after the workflow's activity timeout is edited.
    pub rebuild: Duration,
}

/// The contestants with an app, in the order they are built (Capstan first: a second
/// build may find more of the registry's sources in the page cache).
pub const CONTESTANTS: [Contestant; 2] = [Contestant::Capstan, Contestant::OfficialRust];

/// The edit made to each app's workflow before the rebuild (each app has it once).
const EDIT: (&str, &str) = ("from_secs(10)", "from_secs(20)");

/// The app written for `contestant`, copied afresh to its build folder.
#[derive(Debug)]
pub struct App {
    contestant: Contestant,
    dir: PathBuf,
}

impl App {
    /// Copies `contestant`'s app from `bench/apps/` to `target/bench-build/` (replacing an
    /// earlier copy and its build) and fetches the sources of its dependencies.
    pub fn prepare(contestant: Contestant) -> anyhow::Result<App> {
        let name = match contestant {
            Contestant::Capstan => "hello-capstan",
            Contestant::OfficialRust => "hello-official",
            Contestant::Python => bail!("the build scenario compares the two Rust SDKs"),
        };
        let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        let source = root.join("bench/apps").join(name);
        let dir = root.join("target/bench-build").join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("could not remove {}", dir.display()))?;
        }
        std::fs::create_dir_all(dir.join("src"))?;
        for file in ["Cargo.toml", "src/main.rs"] {
            std::fs::copy(source.join(file), dir.join(file))
                .with_context(|| format!("could not copy {}", source.join(file).display()))?;
        }
        std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"))
            .context("could not copy the workspace's Cargo.lock")?;
        let app = App { contestant, dir };
        app.cargo(&["fetch"], Online::Yes)?;
        Ok(app)
    }

    /// Packages in the app's dependency graph on this machine's platform (the app
    /// included), as `cargo metadata` resolves it.
    pub fn packages(&self) -> anyhow::Result<usize> {
        let host = host_triple()?;
        let output = self.cargo(
            &[
                "metadata",
                "--format-version",
                "1",
                "--filter-platform",
                &host,
            ],
            Online::No,
        )?;
        let metadata: serde_json::Value = serde_json::from_slice(&output)
            .context("`cargo metadata` printed something other than JSON")?;
        metadata["resolve"]["nodes"]
            .as_array()
            .map(Vec::len)
            .context("`cargo metadata` printed no resolve graph")
    }

    /// Builds from clean, edits the workflow and builds again.
    pub fn measure(&self) -> anyhow::Result<BuildCost> {
        let packages = self.packages()?;
        let started = Instant::now();
        self.cargo(&["build"], Online::No)?;
        let clean = started.elapsed();
        let main = self.dir.join("src/main.rs");
        let text = std::fs::read_to_string(&main)?;
        if text.matches(EDIT.0).count() != 1 {
            bail!(
                "{} should contain `{}` once, in its workflow",
                main.display(),
                EDIT.0
            );
        }
        std::fs::write(&main, text.replace(EDIT.0, EDIT.1))?;
        let started = Instant::now();
        self.cargo(&["build"], Online::No)?;
        Ok(BuildCost {
            contestant: self.contestant,
            packages,
            clean,
            rebuild: started.elapsed(),
        })
    }

    /// Type-checks the app (`cargo check`) with `target_dir` as its target directory,
    /// which other apps may share: a quick proof that it still compiles.
    pub fn check(&self, target_dir: &Path) -> anyhow::Result<()> {
        self.cargo_in(&["check"], Online::No, target_dir)?;
        Ok(())
    }

    /// Runs `cargo ARGS` in the app's folder with its own target directory and a user's
    /// default settings; returns its standard output.
    fn cargo(&self, args: &[&str], online: Online) -> anyhow::Result<Vec<u8>> {
        self.cargo_in(args, online, &self.dir.join("target"))
    }

    fn cargo_in(
        &self,
        args: &[&str],
        online: Online,
        target_dir: &Path,
    ) -> anyhow::Result<Vec<u8>> {
        let mut command = Command::new(std::env::var_os("CARGO").unwrap_or("cargo".into()));
        command.args(args);
        if online == Online::No {
            command.arg("--offline");
        }
        let output = command
            .current_dir(&self.dir)
            .env("CARGO_TARGET_DIR", target_dir)
            // What a user's `cargo build` does: incremental on for the app, no extra flags.
            .env_remove("CARGO_INCREMENTAL")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_BUILD_RUSTFLAGS")
            .output()
            .context("could not run cargo")?;
        if !output.status.success() {
            bail!(
                "`cargo {}` failed for the {} app in {}:\n{}",
                args.join(" "),
                self.contestant,
                self.dir.display(),
                errors(&String::from_utf8_lossy(&output.stderr))
            );
        }
        Ok(output.stdout)
    }
}

/// The end of cargo's output without its progress lines (`Compiling …`): the errors.
fn errors(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| {
            let word = line.split_whitespace().next().unwrap_or_default();
            !matches!(
                word,
                "Compiling" | "Checking" | "Downloading" | "Downloaded" | "Locking" | "Adding"
            )
        })
        .collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Whether cargo may use the network (only to fetch, before anything is timed).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Online {
    Yes,
    No,
}

/// This machine's target triple (`rustc -vV`'s `host:`).
fn host_triple() -> anyhow::Result<String> {
    let output = Command::new(std::env::var_os("RUSTC").unwrap_or("rustc".into()))
        .arg("-vV")
        .output()
        .context("could not run rustc")?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .context("`rustc -vV` named no host")
}
