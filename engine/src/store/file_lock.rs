//! One engine per database file: a lock on `<file>-lock` (beside SQLite's own `-wal` and
//! `-shm`), held for as long as the engine has the file open.
//!
//! SQLite's own locks only make each transaction atomic: two engines on one file would
//! both load the state, both acknowledge writes, and overwrite each other's runs. The lock
//! is the operating system's (`flock` on Unix), so it vanishes with its process: a lock
//! file left behind by a killed engine blocks nobody. The holder writes who it is into the
//! file, so that a refused engine can say who holds it.

use std::{
    ffi::OsString,
    fs::{File, OpenOptions, TryLockError},
    io::{Read as _, Seek as _, SeekFrom, Write as _},
    path::{Path, PathBuf},
};

/// The lock on a database file, released when dropped.
#[derive(Debug)]
pub(crate) struct FileLock {
    /// Kept open: closing it would release the lock.
    _file: File,
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LockError {
    #[error(
        "another engine has it open ({holder}); stop that engine, or give this one another file (lock file {})",
        path.display()
    )]
    Held { path: PathBuf, holder: String },
    #[error("cannot lock it with {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl FileLock {
    /// Takes the lock of the database at `db`, or says who holds it.
    pub(crate) fn acquire(db: &Path) -> Result<Self, LockError> {
        let path = lock_path(db);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                // The holder may be writing it this instant; what it says is only shown.
                let _ = file.read_to_string(&mut text);
                return Err(LockError::Held {
                    holder: describe_holder(&text),
                    path,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let holder = format!(
            "pid={}\nhost={}\nsince={}\n",
            std::process::id(),
            host_name(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.write_all(holder.as_bytes()).map_err(io)?;
        Ok(Self { _file: file })
    }
}

/// `<db>-lock`.
pub(crate) fn lock_path(db: &Path) -> PathBuf {
    let mut name = OsString::from(db.as_os_str());
    name.push("-lock");
    PathBuf::from(name)
}

/// "pid 123 on host `h`, since …" from what the holder wrote.
fn describe_holder(text: &str) -> String {
    let field = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    match (field("pid"), field("host"), field("since")) {
        (Some(pid), host, since) => {
            let mut s = format!("pid {pid}");
            if let Some(host) = host {
                s.push_str(&format!(" on host `{host}`"));
            }
            if let Some(since) = since {
                s.push_str(&format!(", since {since}"));
            }
            s
        }
        _ => "a process that has not said who it is".to_owned(),
    }
}

/// This machine's name, as well as std can tell it.
fn host_name() -> String {
    let from_file = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_owned())
    };
    from_file("/proc/sys/kernel/hostname")
        .or_else(|| from_file("/etc/hostname"))
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .filter(|s| !s.is_empty() && !s.contains('\n'))
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_is_described_from_what_it_wrote() {
        assert_eq!(
            describe_holder("pid=42\nhost=box\nsince=2030-01-01T00:00:00Z\n"),
            "pid 42 on host `box`, since 2030-01-01T00:00:00Z"
        );
        assert_eq!(describe_holder("pid=42\n"), "pid 42");
        assert_eq!(describe_holder(""), "a process that has not said who it is");
    }
}
