//! Durable file-system steps: temporaries, fsync of files and directories,
//! renames and atomic replacement, each behind a named failpoint (cargo feature
//! `failpoints`) so tests can fail any step of a commit.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{io_at, Error, Result};

/// Evaluate failpoint `$name`: with the `failpoints` feature and the point
/// configured to `return`, fail with an injected I/O error.
macro_rules! failpoint {
    ($name:expr) => {{
        #[cfg(feature = "failpoints")]
        {
            let name: &str = $name;
            fail::fail_point!(name, |_| Err(std::io::Error::other(format!(
                "injected failure at failpoint {name}"
            ))));
        }
        #[cfg(not(feature = "failpoints"))]
        {
            let _ = $name;
        }
    }};
}

/// Marker inside the name of every temporary this crate writes.
pub const TEMP_MARKER: &str = ".tmp-";

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh temporary path beside `target`: `.<name>.tmp-<pid>-<n>`.
pub fn temp_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    target.with_file_name(format!(".{name}{TEMP_MARKER}{}-{n}", std::process::id()))
}

/// Whether a directory entry name is one of this crate's temporaries.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(TEMP_MARKER)
}

/// Create a new file at `path` (which must not exist), mode 0644.
pub fn create_new(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .map_err(io_at(path, "create"))
}

fn step(
    point: &'static str,
    path: &Path,
    op: &'static str,
    f: impl FnOnce() -> io::Result<()>,
) -> Result<()> {
    let run = || -> io::Result<()> {
        failpoint!(point);
        f()
    };
    run().map_err(io_at(path, op))
}

/// fsync a file's data and metadata.
pub fn sync_file(file: &File, path: &Path, point: &'static str) -> Result<()> {
    step(point, path, "fsync", || file.sync_all())
}

/// fsync a directory so the names in it are durable.
pub fn sync_dir(dir: &Path, point: &'static str) -> Result<()> {
    step(point, dir, "fsync directory", || {
        File::open(dir)?.sync_all()
    })
}

/// Remove a file (it must exist).
pub fn remove_file(path: &Path, point: &'static str) -> Result<()> {
    step(point, path, "remove", || fs::remove_file(path))
}

/// Rename `from` to `to` (atomic replacement of `to` on the same file system).
pub fn rename(from: &Path, to: &Path, point: &'static str) -> Result<()> {
    step(point, to, "rename", || fs::rename(from, to))
}

/// Failpoint names of one [`write_atomic`] call.
#[derive(Debug, Clone, Copy)]
pub struct AtomicPoints {
    /// Before the temporary's fsync.
    pub fsync: &'static str,
    /// Before the rename into place.
    pub rename: &'static str,
    /// Before the directory's fsync.
    pub dirsync: &'static str,
}

/// Replace `path` with `bytes` atomically and durably: temporary in the same
/// directory, fsync, rename, fsync of the directory. On failure before the
/// rename, the temporary is removed and `path` is unchanged.
pub fn write_atomic(path: &Path, bytes: &[u8], points: AtomicPoints) -> Result<()> {
    let tmp = temp_path(path);
    let staged = (|| {
        let mut f = create_new(&tmp)?;
        f.write_all(bytes).map_err(io_at(&tmp, "write"))?;
        sync_file(&f, &tmp, points.fsync)?;
        rename(&tmp, path, points.rename)
    })();
    if let Err(e) = staged {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(parent_of(path), points.dirsync)
}

/// The directory holding `path` (`.` for a bare name).
pub fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Read a whole file of at most `limit` bytes.
pub fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let f = File::open(path).map_err(io_at(path, "open"))?;
    let mut out = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut out)
        .map_err(io_at(path, "read"))?;
    Ok(out)
}

/// Remove a file; a file already gone is fine.
pub fn remove_if_exists(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(path, "remove", e)),
    }
}

/// Whether `path` exists (as anything); errors other than not-found are errors.
pub fn exists(path: &Path) -> Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io(path, "stat", e)),
    }
}

/// Names of the entries of `dir` (non-UTF-8 names are returned lossily).
pub fn list_dir(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_at(dir, "read directory"))? {
        let entry = entry.map_err(io_at(dir, "read directory"))?;
        out.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.path(),
        ));
    }
    out.sort();
    Ok(out)
}

/// Remove every temporary of this crate from `dirs`; returns what was removed.
pub fn remove_temps(dirs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for dir in dirs {
        let entries = match list_dir(dir) {
            Ok(e) => e,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        for (name, path) in entries {
            if is_temp_name(&name) && remove_if_exists(&path)? {
                removed.push(path);
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: AtomicPoints = AtomicPoints {
        fsync: "test.fsync",
        rename: "test.rename",
        dirsync: "test.dirsync",
    };

    #[test]
    fn atomic_write_and_temp_cleanup() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        write_atomic(&target, b"one", P).unwrap();
        write_atomic(&target, b"two", P).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"two");
        let tmp = temp_path(&target);
        assert!(is_temp_name(tmp.file_name().unwrap().to_str().unwrap()));
        fs::write(&tmp, b"left over").unwrap();
        let removed = remove_temps(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(removed, vec![tmp]);
        assert_eq!(list_dir(dir.path()).unwrap().len(), 1);
        assert!(!is_temp_name("a.tmp-1.hpkg"));
    }
}
