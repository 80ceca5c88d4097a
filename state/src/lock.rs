//! The root's exclusive lock: `flock(LOCK_EX)` on `system/state/lock`, held for
//! the whole of a transaction. Waiting blocks by default; a timeout or a
//! single try can be chosen with [`LockWait`].
//!
//! `flock` locks belong to an open file description, so every acquisition opens
//! the lock file anew: two transactions in one process (two threads, or two
//! [`crate::Root`]s) exclude each other exactly as two processes do. The kernel
//! drops the lock when the holder dies, so a crashed transaction never leaves
//! the root locked.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{flock, FlockOperation};

use crate::error::{Error, Result};

/// How to wait for the lock when another transaction holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LockWait {
    /// Wait as long as it takes (the default).
    #[default]
    Block,
    /// Give up with [`Error::LockTimeout`] after this long
    /// (`Duration::ZERO`: a single try).
    Timeout(Duration),
}

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
    path: PathBuf,
}

impl LockGuard {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// How often a timed wait retries.
const POLL: Duration = Duration::from_millis(5);

/// Take the exclusive lock on `path` (created if missing).
pub fn acquire(path: &Path, wait: LockWait) -> Result<LockGuard> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(path)
        .map_err(|e| Error::io(path, "open lock file", e))?;
    let start = Instant::now();
    loop {
        let op = match wait {
            LockWait::Block => FlockOperation::LockExclusive,
            LockWait::Timeout(_) => FlockOperation::NonBlockingLockExclusive,
        };
        match flock(&file, op) {
            Ok(()) => {
                return Ok(LockGuard {
                    _file: file,
                    path: path.to_path_buf(),
                })
            }
            Err(e) if e == rustix::io::Errno::INTR => continue,
            Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                if let LockWait::Timeout(limit) = wait {
                    let waited = start.elapsed();
                    if waited >= limit {
                        return Err(Error::LockTimeout {
                            path: path.to_path_buf(),
                            waited,
                        });
                    }
                    std::thread::sleep(POLL.min(limit - waited));
                }
            }
            Err(e) => return Err(Error::io(path, "flock", io::Error::from(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_times_out_then_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let held = acquire(&path, LockWait::Block).unwrap();
        let e = acquire(&path, LockWait::Timeout(Duration::from_millis(30))).unwrap_err();
        assert!(matches!(e, Error::LockTimeout { .. }), "{e}");
        let e = acquire(&path, LockWait::Timeout(Duration::ZERO)).unwrap_err();
        assert!(matches!(e, Error::LockTimeout { .. }), "{e}");
        drop(held);
        acquire(&path, LockWait::Timeout(Duration::from_millis(30))).unwrap();
    }

    #[test]
    fn blocking_waits_for_release() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let held = acquire(&path, LockWait::Block).unwrap();
        let released = Arc::new(AtomicBool::new(false));
        let (p2, r2) = (path.clone(), released.clone());
        let t = std::thread::spawn(move || {
            let _g = acquire(&p2, LockWait::Block).unwrap();
            r2.load(Ordering::SeqCst)
        });
        std::thread::sleep(Duration::from_millis(50));
        released.store(true, Ordering::SeqCst);
        drop(held);
        // The waiter got the lock only after the release.
        assert!(t.join().unwrap());
    }
}
