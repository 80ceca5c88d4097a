//! Shine-through directories (Haiku's name for them): top-level names of a
//! mount, such as `var`, `tmp` or `home`, where the read-only package tree
//! lets writable runtime data show through.
//!
//! The union tree presents each name as a directory (see
//! [`state::plan::Tree::with_shine_through`]); once the FUSE session is
//! serving, [`bind_all`] bind-mounts `ROOT/data/<name>` onto
//! `MOUNTPOINT/<name>`. A data directory that does not exist yet is created
//! with the mode of the packaged directory (1777 for `tmp`, 0700 for `root`,
//! 0755 otherwise when no package has it) and *seeded*: the packaged
//! directory's content (directories, files, symlinks, owners, modes and
//! modification times) is copied into it first, in a temporary directory
//! renamed into place when complete. An existing data directory is never
//! touched.
//!
//! [`unmount_below`] takes every mount below a mount point away, deepest
//! first, as `packagefs unmount` and the daemon's signal handler do before
//! unmounting the FUSE file system itself.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Timespec, Timestamps, CWD};
use rustix::mount::mount_bind;

use crate::kmount;

/// Why shine-through directories could not be set up or taken away.
#[derive(Debug, thiserror::Error)]
pub enum ShineError {
    /// A name that is not one path component.
    #[error("bad shine-through name {0:?}: expected one directory name (no '/', not '.' or '..')")]
    BadName(String),
    /// A name given twice.
    #[error("shine-through name {0:?} given twice")]
    Duplicate(String),
    /// Shine-through needs a package root (for its `data/` directory).
    #[error(
        "--shine-through needs a package root (its data/ holds the directories), not package files"
    )]
    NotARoot,
    /// A file-system operation failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// On what.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A bind mount failed.
    #[error("cannot bind-mount {} onto {}: {source}", from.display(), to.display())]
    Bind {
        /// The data directory.
        from: PathBuf,
        /// The directory in the mount.
        to: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A mount below the mount point could not be unmounted.
    #[error("cannot unmount {}: {source}{}", path.display(),
        if source.raw_os_error() == Some(libc::EBUSY) { " (in use: close what uses it, then unmount again)" } else { "" })]
    Unmount {
        /// The mount that stays.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

fn io_at(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ShineError {
    let path = path.to_path_buf();
    move |source| ShineError::Io { what, path, source }
}

/// Split a shine-through list (`var,tmp` on the command line, `var:tmp` in
/// `-o shine_through=`) at `sep` and check it (see [`check_names`]).
pub fn parse_list(text: &str, sep: char) -> Result<Vec<String>, ShineError> {
    let names: Vec<String> = text
        .split(sep)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    check_names(&names)?;
    Ok(names)
}

/// Check shine-through names: each one path component, not `.` or `..`,
/// without `/` or NUL, none twice.
pub fn check_names(names: &[String]) -> Result<(), ShineError> {
    for (i, n) in names.iter().enumerate() {
        if n.is_empty() || n == "." || n == ".." || n.contains('/') || n.contains('\0') {
            return Err(ShineError::BadName(n.clone()));
        }
        if names.iter().take(i).any(|m| m == n) {
            return Err(ShineError::Duplicate(n.clone()));
        }
    }
    Ok(())
}

/// Bind-mount `root/data/<name>` onto `mountpoint/<name>` for every name,
/// creating (and seeding, see the module comment) the data directories
/// that are missing. The FUSE file system must already be serving at
/// `mountpoint`. On failure every bind made is undone again.
pub fn bind_all(root: &Path, mountpoint: &Path, names: &[String]) -> Result<(), ShineError> {
    let data = root.join("data");
    if !data.is_dir() {
        std::fs::create_dir(&data).map_err(io_at("cannot create", &data))?;
        tracing::info!("created {}", data.display());
    }
    let mut bound: Vec<PathBuf> = Vec::new();
    for name in names {
        let from = data.join(name);
        let to = mountpoint.join(name);
        let result = prepare_data_dir(&from, &to).and_then(|()| {
            mount_bind(&from, &to).map_err(|e| ShineError::Bind {
                from: from.clone(),
                to: to.clone(),
                source: e.into(),
            })
        });
        match result {
            Ok(()) => {
                tracing::info!("{} shines through at {}", from.display(), to.display());
                bound.push(to);
            }
            Err(e) => {
                for b in bound.iter().rev() {
                    if let Err(u) = kmount::detach(b) {
                        tracing::error!("undoing the bind mount on {}: {u}", b.display());
                    }
                }
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Create `data` (seeded from `packaged`) if it does not exist yet.
fn prepare_data_dir(data: &Path, packaged: &Path) -> Result<(), ShineError> {
    match std::fs::symlink_metadata(data) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(ShineError::Io {
                what: "not a directory:",
                path: data.to_path_buf(),
                source: io::Error::from_raw_os_error(libc::ENOTDIR),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_at("cannot look at", data)(e)),
    }
    let parent = data.parent().unwrap_or(Path::new("/"));
    let name = data.file_name().map(|n| n.as_bytes()).unwrap_or(b"dir");
    let temp = parent.join(format!(
        ".{}.seeding-{}",
        String::from_utf8_lossy(name),
        std::process::id()
    ));
    if temp.exists() {
        std::fs::remove_dir_all(&temp).map_err(io_at("cannot remove", &temp))?;
    }
    let files = copy_tree(packaged, &temp).inspect_err(|_| {
        let _ = std::fs::remove_dir_all(&temp);
    })?;
    std::fs::rename(&temp, data).map_err(|e| {
        let _ = std::fs::remove_dir_all(&temp);
        io_at("cannot rename the seeded directory to", data)(e)
    })?;
    tracing::info!(
        "created {} and seeded it with {files} entries of {}",
        data.display(),
        packaged.display()
    );
    Ok(())
}

/// Copy directory `from` to the new directory `to` with everything in it
/// (directories, files, symlinks; owners, modes, modification times);
/// returns the number of entries copied below `from`.
fn copy_tree(from: &Path, to: &Path) -> Result<u64, ShineError> {
    let meta = std::fs::symlink_metadata(from).map_err(io_at("cannot look at", from))?;
    std::fs::create_dir(to).map_err(io_at("cannot create", to))?;
    let mut count = 0u64;
    let entries = std::fs::read_dir(from).map_err(io_at("cannot list", from))?;
    for entry in entries {
        let entry = entry.map_err(io_at("cannot list", from))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let m = std::fs::symlink_metadata(&src).map_err(io_at("cannot look at", &src))?;
        let ft = m.file_type();
        if ft.is_dir() {
            count += copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&src).map_err(io_at("cannot read", &src))?;
            std::os::unix::fs::symlink(&target, &dst).map_err(io_at("cannot create", &dst))?;
            set_meta(&dst, &m, true)?;
        } else {
            std::fs::copy(&src, &dst).map_err(io_at("cannot copy to", &dst))?;
            set_meta(&dst, &m, false)?;
        }
        count += 1;
    }
    set_meta(to, &meta, false)?;
    Ok(count)
}

/// Give `path` the owner, mode (not for a symlink) and modification time of `m`.
fn set_meta(path: &Path, m: &std::fs::Metadata, symlink: bool) -> Result<(), ShineError> {
    std::os::unix::fs::lchown(path, Some(m.uid()), Some(m.gid()))
        .map_err(io_at("cannot set the owner of", path))?;
    if !symlink {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(m.mode() & 0o7777))
            .map_err(io_at("cannot set the mode of", path))?;
    }
    let time = Timespec {
        tv_sec: m.mtime(),
        tv_nsec: m.mtime_nsec() as _,
    };
    let times = Timestamps {
        last_access: time,
        last_modification: time,
    };
    rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| io_at("cannot set the times of", path)(e.into()))
}

/// Unmount every mount below `mountpoint` (canonical; see
/// [`kmount::mounts_below`]); returns them. Stops at the first that cannot be unmounted (busy, say), leaving
/// it and the mounts above it in place.
pub fn unmount_below(mountpoint: &Path) -> Result<Vec<PathBuf>, ShineError> {
    let below = kmount::mounts_below(mountpoint)
        .map_err(io_at("cannot read", kmount::MOUNTINFO.as_ref()))?;
    for p in &below {
        kmount::unmount(p).map_err(|source| ShineError::Unmount {
            path: p.clone(),
            source,
        })?;
        tracing::info!("unmounted {}", p.display());
    }
    Ok(below)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert_eq!(parse_list("var,tmp", ',').unwrap(), vec!["var", "tmp"]);
        assert_eq!(parse_list("var:tmp:run", ':').unwrap().len(), 3);
        assert!(matches!(parse_list("var,var", ','), Err(ShineError::Duplicate(n)) if n == "var"));
        for bad in ["..", ".", "var/lib", "a\0b"] {
            assert!(
                matches!(parse_list(bad, ','), Err(ShineError::BadName(_))),
                "{bad}"
            );
        }
    }
}
