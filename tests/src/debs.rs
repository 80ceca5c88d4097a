//! Real Debian packages for tests, fetched with `apt-get download` into a
//! cache under the cargo target directory (`<target>/debs/`) and reused from
//! there. Concurrent test binaries are serialised by an `flock` on
//! `<target>/debs/.lock`.
//!
//! The machine needs Debian's apt with its package lists (`apt-get update`)
//! and access to the archive; when `apt-get download` fails, [`require`]
//! stops the test with a message saying what to run.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

use rustix::fs::{flock, FlockOperation};

/// Why packages could not be had.
#[derive(Debug, thiserror::Error)]
pub enum DebsError {
    /// The cache directory or its lock could not be used.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// `apt-get download` failed or did not produce the file.
    #[error("apt-get download {names} failed in {}: {reason}; run `apt-get update` (as root, with access to the Debian archive) or put the .debs in that directory", dir.display())]
    Download {
        /// The packages asked for.
        names: String,
        /// The cache directory.
        dir: PathBuf,
        /// What apt-get said.
        reason: String,
    },
}

/// The cargo target directory: `$CARGO_TARGET_DIR`, else the one the test
/// executable was built in (`<target>/<profile>/deps/exe`), else
/// `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| crate::workspace_root().join("target"))
}

/// The cache directory of downloaded packages.
pub fn cache_dir() -> PathBuf {
    target_dir().join("debs")
}

/// The cached `.deb` of package `name` (`name_<version>_<arch>.deb`), if any.
fn cached(dir: &Path, name: &str) -> Option<PathBuf> {
    let prefix = format!("{name}_");
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
        })
        .collect();
    found.sort();
    found.pop()
}

/// The `.deb` files of the binary packages `names` (for the machine's
/// architecture), downloading the missing ones.
pub fn fetch(names: &[&str]) -> Result<Vec<PathBuf>, DebsError> {
    let dir = cache_dir();
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DebsError::Io { path, source }
    };
    fs::create_dir_all(&dir).map_err(io(&dir))?;
    let lock_path = dir.join(".lock");
    let lock: File = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    flock(&lock, FlockOperation::LockExclusive).map_err(|e| DebsError::Io {
        path: lock_path.clone(),
        source: e.into(),
    })?;
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| cached(&dir, n).is_none())
        .collect();
    if !missing.is_empty() {
        let out = Command::new("apt-get")
            .arg("download")
            .args(&missing)
            .current_dir(&dir)
            .output()
            .map_err(|e| DebsError::Download {
                names: missing.join(" "),
                dir: dir.clone(),
                reason: format!("cannot run apt-get: {e}"),
            })?;
        if !out.status.success() {
            return Err(DebsError::Download {
                names: missing.join(" "),
                dir: dir.clone(),
                reason: String::from_utf8_lossy(&out.stderr)
                    .trim()
                    .replace('\n', "; "),
            });
        }
    }
    names
        .iter()
        .map(|n| {
            cached(&dir, n).ok_or_else(|| DebsError::Download {
                names: (*n).to_string(),
                dir: dir.clone(),
                reason: "no .deb appeared".into(),
            })
        })
        .collect()
    // The lock is released when `lock` is dropped.
}

/// [`fetch`], stopping the test with the reason when it fails.
///
/// # Panics
///
/// When the packages cannot be had, with a message saying what to run.
pub fn require(names: &[&str]) -> Vec<PathBuf> {
    fetch(names).unwrap_or_else(|e| panic!("{e}"))
}
