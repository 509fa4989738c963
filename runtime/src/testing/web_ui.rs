//! The Temporal Web UI as the engine serves it, and a real browser to look at it: the UI
//! built by `engine/web-ui/build.py` (on first use), and headless Chromium (Debian's
//! `chromium`, which `.ci/run` installs).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use super::{base_python, blocking, run_captured, tools_dir, Result, TestingError};

/// The built UI (`<tools dir>/web-ui`), building it first if its sources changed since
/// (a no-op otherwise; safe from many tests at once).
pub async fn web_ui() -> Result<PathBuf> {
    blocking(web_ui_blocking).await
}

/// [`web_ui`] for synchronous code.
pub fn web_ui_blocking() -> Result<PathBuf> {
    static BUILD: Mutex<()> = Mutex::new(());
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let tools = tools_dir()?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/web-ui/build.py");
    let mut build = Command::new(base_python());
    build.arg(&script).env("CAPSTAN_TOOLS_DIR", &tools);
    run_captured(&mut build, None, Duration::from_secs(900))
        .and_then(|c| c.check())
        .map_err(|e| TestingError::Install {
            what: "the Temporal Web UI".to_owned(),
            dir: tools.join("web-ui"),
            detail: e.to_string(),
            hint: "`python3 engine/web-ui/build.py` installs Node.js from PyPI and the UI's \
                   packages from the npm registry, which must both be reachable",
        })?;
    Ok(tools.join("web-ui"))
}

/// Headless Chromium.
#[derive(Debug, Clone)]
pub struct Chromium {
    binary: PathBuf,
}

impl Chromium {
    /// Chromium from `PATH` (`chromium` or `chromium-browser`), or `$CAPSTAN_CHROMIUM`.
    pub fn find() -> Result<Chromium> {
        let candidates: Vec<PathBuf> = std::env::var_os("CAPSTAN_CHROMIUM")
            .filter(|c| !c.is_empty())
            .map(PathBuf::from)
            .into_iter()
            .chain(std::env::var_os("PATH").iter().flat_map(|paths| {
                std::env::split_paths(paths)
                    .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
                    .collect::<Vec<_>>()
            }))
            .collect();
        candidates
            .into_iter()
            .find(|c| c.is_file())
            .map(|binary| Chromium { binary })
            .ok_or_else(|| TestingError::Install {
                what: "Chromium".to_owned(),
                dir: PathBuf::from("/usr/bin"),
                detail: "no `chromium` on PATH".to_owned(),
                hint: "install Debian's chromium (`apt-get install -y chromium`, as .ci/run \
                       does), or point CAPSTAN_CHROMIUM at a Chromium binary",
            })
    }

    /// The Chromium executable, for a DevTools client (`chromiumoxide`, say) to launch.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    fn command(&self, profile: &Path, wait: Duration) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1400,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        // The page's own time: it settles within it unless a request stays open (a long
        // poll of a running run's history), which the process's own timeout then ends.
        .arg(format!("--virtual-time-budget={}", wait.as_millis()));
        cmd
    }

    /// The page at `url` as the browser rendered it once `wait` of the page's time passed
    /// (pages that keep a request open, a running run's, do not settle: see [`Chromium`]).
    pub async fn dom(&self, url: &str, wait: Duration) -> Result<String> {
        let profile = profile_dir()?;
        let mut cmd = self.command(&profile, wait);
        cmd.arg("--dump-dom").arg(url);
        let dom = blocking(move || {
            run_captured(&mut cmd, None, wait + Duration::from_secs(60)).and_then(|c| c.check())
        })
        .await
        .map(|c| c.stdout);
        let _ = std::fs::remove_dir_all(&profile);
        dom
    }

    /// Saves a PNG of the page at `url` `wait` after loading it.
    pub async fn screenshot(&self, url: &str, wait: Duration, png: &Path) -> Result<()> {
        let profile = profile_dir()?;
        let mut cmd = self.command(&profile, wait);
        cmd.arg(format!("--screenshot={}", png.display())).arg(url);
        let shot = blocking(move || {
            run_captured(&mut cmd, None, wait + Duration::from_secs(60)).and_then(|c| c.check())
        })
        .await
        .map(|_| ());
        let _ = std::fs::remove_dir_all(&profile);
        shot
    }
}

/// A fresh browser profile, so that browsers run at once share nothing.
fn profile_dir() -> Result<PathBuf> {
    let dir = tools_dir()?.join("chromium-profiles").join(format!(
        "{}-{}",
        std::process::id(),
        super::unique_suffix()
    ));
    std::fs::create_dir_all(&dir)
        .map_err(|e| TestingError::io(format!("could not create {}", dir.display()), e))?;
    Ok(dir)
}
