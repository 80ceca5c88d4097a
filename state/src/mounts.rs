//! Mount registrations: a mount tells the root which generation it serves, so
//! that `gc` spares it.
//!
//! A mount registers itself as a file `system/state/mounts/<pid>-<n>.mount`
//! that it holds locked (`flock(LOCK_EX)`) for as long as it serves:
//!
//! ```text
//! packagefs mount
//! generation 7
//! pid 4242
//! mountpoint /mnt/root
//! ```
//!
//! (the mount point is the rest of the last line, bytes as given.) The lock,
//! not the file, is what makes a registration live: the kernel drops it when
//! the process dies, so the file of a crashed daemon is recognised (the lock
//! can be taken) and removed by the next [`Root::live_mounts`].
//!
//! Races, and why they are harmless:
//!
//! * A registration is written to a temporary, locked, and only then renamed
//!   to its final name (never replacing a file), so a reader never sees an
//!   unlocked or half-written registration under a final name. A temporary
//!   that a reader finds unlocked (a registration that died before its
//!   rename, or one a microsecond from its `flock`) is removed; the
//!   registration in progress then fails its rename and starts again.
//! * [`Root::register_mount`] and [`MountRegistration::update`] take the
//!   root's transaction lock while they check that the generation is kept and
//!   create the file; `gc` reads the registrations under that same lock. So
//!   either gc sees the registration, or the registration sees gc's result
//!   ([`Error::NoSuchGeneration`]).
//! * [`MountRegistration::update`] registers the new generation before it
//!   removes the old file: at every instant a lock is held, and a reader sees
//!   the old generation, the new one, or both (which only keeps more).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{flock, FlockOperation};
use serde::Serialize;

use crate::error::{io_at, Error, Result};
use crate::fsutil::{create_new, is_temp_name, list_dir, remove_if_exists, temp_path};
use crate::layout::Layout;
use crate::lock::{self, LockWait};
use crate::root::Root;
use crate::store::rename_noreplace;

/// The extension of a registration file.
pub const MOUNT_EXTENSION: &str = ".mount";

/// First line of every registration file.
const MAGIC: &str = "packagefs mount";

/// Largest registration file read (a mount point is at most `PATH_MAX`).
const MAX_REGISTRATION: u64 = 8192;

/// How often a registration retries when readers keep taking its temporary.
const REGISTER_ATTEMPTS: usize = 100;

static NEXT_NAME: AtomicU64 = AtomicU64::new(0);

/// A live mount of the root, as its registration file says.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct LiveMount {
    /// The generation it serves.
    pub generation: u64,
    /// Where it is mounted.
    pub mountpoint: PathBuf,
    /// The process that registered it.
    pub pid: u32,
}

impl LiveMount {
    fn encode(&self) -> Vec<u8> {
        let mut out = format!(
            "{MAGIC}\ngeneration {}\npid {}\nmountpoint ",
            self.generation, self.pid
        )
        .into_bytes();
        out.extend_from_slice(self.mountpoint.as_os_str().as_bytes());
        out.push(b'\n');
        out
    }

    fn parse(path: &Path, bytes: &[u8]) -> Result<LiveMount> {
        let corrupt = |line: usize, message: &str| Error::Corrupt {
            path: path.to_path_buf(),
            line,
            message: message.to_string(),
        };
        let body = bytes
            .strip_suffix(b"\n")
            .ok_or_else(|| corrupt(0, "incomplete registration (no final newline)"))?;
        let mut lines = body.splitn(4, |b| *b == b'\n');
        let mut field = |line: usize, key: &str| {
            lines
                .next()
                .and_then(|l| l.strip_prefix(key.as_bytes()))
                .ok_or_else(|| corrupt(line, &format!("expected {key:?}")))
        };
        if !field(1, MAGIC)?.is_empty() {
            return Err(corrupt(1, &format!("expected {MAGIC:?}")));
        }
        let number = |line: usize, text: &[u8], what: &str| {
            std::str::from_utf8(text)
                .ok()
                .and_then(|t| t.parse::<u64>().ok())
                .ok_or_else(|| corrupt(line, &format!("bad {what}")))
        };
        let generation = number(2, field(2, "generation ")?, "generation number")?;
        let pid = number(3, field(3, "pid ")?, "process id")?;
        let pid = u32::try_from(pid).map_err(|_| corrupt(3, "bad process id"))?;
        let mountpoint = field(4, "mountpoint ")?;
        if mountpoint.is_empty() {
            return Err(corrupt(4, "empty mount point"));
        }
        Ok(LiveMount {
            generation,
            mountpoint: PathBuf::from(std::ffi::OsStr::from_bytes(mountpoint)),
            pid,
        })
    }
}

/// A held registration (see the module documentation): while it lives, `gc`
/// keeps its generation. Dropping it removes the file and releases the lock.
///
/// The lock belongs to the open file, which forked children inherit: a
/// daemon that forks into the background keeps its registration, but the
/// recorded pid is then the parent's; register (or [`update`](Self::update))
/// in the process that serves.
#[derive(Debug)]
pub struct MountRegistration {
    _file: File,
    path: PathBuf,
    mount: LiveMount,
    layout: Layout,
    lock_wait: LockWait,
}

impl MountRegistration {
    /// What this registration says.
    pub fn mount(&self) -> &LiveMount {
        &self.mount
    }

    /// The registration file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The mount now serves `generation` (which must be kept, else
    /// [`Error::NoSuchGeneration`] and the registration is unchanged). The new
    /// registration is in place before the old one goes, so `gc` never sees
    /// the mount unregistered.
    pub fn update(&mut self, generation: u64) -> Result<()> {
        if generation == self.mount.generation {
            return Ok(());
        }
        let root = Root::open(self.layout.root())?.with_lock_wait(self.lock_wait);
        let new = root.register_mount(generation, &self.mount.mountpoint)?;
        // The old one is dropped here: its file removed, its lock released.
        *self = new;
        Ok(())
    }
}

impl Drop for MountRegistration {
    fn drop(&mut self) {
        // Removed while still locked, so no reader takes it for stale and
        // removes a file of the same name (names are never reused anyway).
        let _ = remove_if_exists(&self.path);
    }
}

/// Try to take the exclusive lock of `file` without waiting: `true` when
/// taken (nobody holds it), `false` when another open file holds it.
fn try_lock(file: &File, path: &Path) -> Result<bool> {
    loop {
        match flock(file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => return Ok(true),
            Err(e) if e == rustix::io::Errno::INTR => continue,
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => return Ok(false),
            Err(e) => return Err(Error::io(path, "lock", e.into())),
        }
    }
}

/// Remove `path` if it still is the file `file` is open on.
fn remove_stale(path: &Path, file: &File) -> Result<()> {
    let open = file.metadata().map_err(io_at(path, "stat"))?;
    match fs::symlink_metadata(path) {
        Ok(m) if m.dev() == open.dev() && m.ino() == open.ino() => {
            remove_if_exists(path)?;
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, "stat", e)),
    }
}

impl Root {
    /// Register a mount serving kept generation `generation` at `mountpoint`
    /// (give it absolute): until the returned registration is dropped (or
    /// the process dies), [`Root::gc`] keeps that generation and every
    /// package file it needs.
    ///
    /// Takes the root's lock briefly (waiting as [`Root::with_lock_wait`]
    /// says). A generation that is not kept is [`Error::NoSuchGeneration`].
    pub fn register_mount(&self, generation: u64, mountpoint: &Path) -> Result<MountRegistration> {
        let dir = self.layout.mounts_dir();
        fs::create_dir_all(&dir).map_err(io_at(&dir, "create directory"))?;
        let _guard = lock::acquire(&self.layout.lock_file(), self.lock_wait)?;
        self.generation(generation)?;
        let mount = LiveMount {
            generation,
            mountpoint: mountpoint.to_path_buf(),
            pid: std::process::id(),
        };
        let mut last = None;
        for _ in 0..REGISTER_ATTEMPTS {
            let n = NEXT_NAME.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!("{}-{n}{MOUNT_EXTENSION}", mount.pid));
            let tmp = temp_path(&path);
            let mut file = create_new(&tmp)?;
            let written = flock(&file, FlockOperation::LockExclusive)
                .map_err(|e| Error::io(&tmp, "lock", e.into()))
                .and_then(|()| {
                    file.write_all(&mount.encode())
                        .map_err(io_at(&tmp, "write"))
                })
                .and_then(|()| rename_noreplace(&tmp, &path, "mount.rename"));
            match written {
                Ok(()) => {
                    return Ok(MountRegistration {
                        _file: file,
                        path,
                        mount,
                        layout: self.layout.clone(),
                        lock_wait: self.lock_wait,
                    })
                }
                // A reader found the temporary unlocked and removed it: again.
                Err(e) if e.is_not_found() => last = Some(e),
                // Taken by a name left by an earlier process of our pid: next name.
                Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::AlreadyExists => {
                    let _ = remove_if_exists(&tmp);
                }
                Err(e) => {
                    let _ = remove_if_exists(&tmp);
                    return Err(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| {
            Error::io(
                &dir,
                "register mount",
                io::Error::other("no free registration name"),
            )
        }))
    }

    /// Every live mount of this root (registrations whose lock is held),
    /// ordered by generation. Files whose lock nobody holds (left by a
    /// process that died) are removed on the way. Takes no root lock.
    ///
    /// A live registration that cannot be read is an error
    /// ([`Error::Corrupt`]): `gc` would rather stop than guess.
    pub fn live_mounts(&self) -> Result<Vec<LiveMount>> {
        let dir = self.layout.mounts_dir();
        let entries = match list_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.is_not_found() => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for (name, path) in entries {
            let temp = is_temp_name(&name);
            if !temp && !name.ends_with(MOUNT_EXTENSION) {
                continue;
            }
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(&path, "open", e)),
            };
            if try_lock(&file, &path)? {
                remove_stale(&path, &file)?;
                continue;
            }
            if temp {
                continue; // a registration in progress
            }
            let mut bytes = Vec::new();
            (&file)
                .take(MAX_REGISTRATION)
                .read_to_end(&mut bytes)
                .map_err(io_at(&path, "read"))?;
            out.push(LiveMount::parse(&path, &bytes)?);
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_parse_round_trip() {
        let m = LiveMount {
            generation: 12,
            mountpoint: PathBuf::from("/mnt/with space/\u{e9}"),
            pid: 77,
        };
        let bytes = m.encode();
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            "packagefs mount\ngeneration 12\npid 77\nmountpoint /mnt/with space/\u{e9}\n"
        );
        assert_eq!(LiveMount::parse(Path::new("f"), &bytes).unwrap(), m);
    }

    #[test]
    fn parse_names_the_bad_line() {
        let line_of = |text: &str| match LiveMount::parse(Path::new("f"), text.as_bytes()) {
            Err(Error::Corrupt { line, .. }) => line,
            other => panic!("{text:?}: {other:?}"),
        };
        assert_eq!(
            line_of("packagefs mount\ngeneration 1\npid 2\nmountpoint /m"),
            0
        );
        assert_eq!(
            line_of("packagefs mounts\ngeneration 1\npid 2\nmountpoint /m\n"),
            1
        );
        assert_eq!(
            line_of("packagefs mount\ngeneration x\npid 2\nmountpoint /m\n"),
            2
        );
        assert_eq!(
            line_of("packagefs mount\ngeneration 1\npid 99999999999\nmountpoint /m\n"),
            3
        );
        assert_eq!(
            line_of("packagefs mount\ngeneration 1\npid 2\nmountpoint \n"),
            4
        );
        assert_eq!(line_of("packagefs mount\ngeneration 1\npid 2\n"), 4);
    }
}
