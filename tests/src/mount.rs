//! FUSE plumbing for tests: is FUSE usable here, is a path mounted, and a guard
//! that unmounts (and reaps the daemon) however a test ends.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::thread;
use std::time::{Duration, Instant};

use packagefs::kmount;

/// How to get FUSE on Debian or Ubuntu, for messages.
const INSTALL_HINT: &str = "install fuse3 (`apt-get install -y fuse3` as root; `make test` run as \
                            root on Debian/Ubuntu installs it)";

/// How often the wait functions look at `/proc/self/mountinfo`.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How long [`MountGuard`]'s drop waits for its daemon to exit after the
/// unmount before killing it.
const DAEMON_EXIT_GRACE: Duration = Duration::from_secs(5);

/// Whether FUSE mounts can be made here: `/dev/fuse` exists and opens for
/// reading and writing, and `fusermount3` is on `PATH`. The error says what is
/// missing and how to get it.
pub fn fuse_available() -> Result<(), String> {
    let dev = Path::new("/dev/fuse");
    if !dev.exists() {
        return Err(
            "/dev/fuse does not exist: load the fuse kernel module (`modprobe fuse`), or give \
             the container the device (`--device /dev/fuse`)"
                .to_owned(),
        );
    }
    if let Err(e) = fs::OpenOptions::new().read(true).write(true).open(dev) {
        return Err(format!(
            "/dev/fuse cannot be opened for reading and writing: {e}"
        ));
    }
    if find_in_path("fusermount3").is_none() {
        return Err(format!("fusermount3 is not on PATH: {INSTALL_HINT}"));
    }
    Ok(())
}

/// The first executable file named `program` in the directories of `$PATH`.
fn find_in_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Whether something is mounted on `mountpoint`, according to
/// `/proc/self/mountinfo` (read by [`kmount::mounted_at`]). Does not touch
/// the mount point itself.
pub fn is_mounted(mountpoint: &Path) -> io::Result<bool> {
    Ok(!kmount::mounted_at(mountpoint)?.is_empty())
}

/// Polls `/proc/self/mountinfo` until `mountpoint` is mounted; a
/// [`io::ErrorKind::TimedOut`] error when it is not after `timeout`.
pub fn wait_for_mount(mountpoint: &Path, timeout: Duration) -> io::Result<()> {
    wait_until(mountpoint, timeout, true, &mut || Ok(()))
}

/// Polls `/proc/self/mountinfo` until `mountpoint` is no longer mounted; a
/// [`io::ErrorKind::TimedOut`] error when it still is after `timeout`.
pub fn wait_for_unmount(mountpoint: &Path, timeout: Duration) -> io::Result<()> {
    wait_until(mountpoint, timeout, false, &mut || Ok(()))
}

/// Polls until the mount state of `mountpoint` is `mounted`, calling `check`
/// between polls (it may end the wait early with an error).
fn wait_until(
    mountpoint: &Path,
    timeout: Duration,
    mounted: bool,
    check: &mut dyn FnMut() -> io::Result<()>,
) -> io::Result<()> {
    let start = Instant::now();
    loop {
        if is_mounted(mountpoint)? == mounted {
            return Ok(());
        }
        check()?;
        if start.elapsed() >= timeout {
            let what = if mounted { "appear in" } else { "leave" };
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{} did not {what} /proc/self/mountinfo within {timeout:?}",
                    mountpoint.display()
                ),
            ));
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// The mount points strictly below `mountpoint` (shine-through binds, say),
/// deepest first, according to `/proc/self/mountinfo`. Does not touch the
/// mount point itself.
pub fn mounts_below(mountpoint: &Path) -> io::Result<Vec<PathBuf>> {
    kmount::mounts_below(&kmount::table_path(mountpoint)?)
}

/// Unmounts everything below `mountpoint` (deepest first, lazily), then
/// `mountpoint` with `fusermount3 -u -z`, falling back to `umount -l`. The
/// error tells how the attempts failed.
fn unmount(mountpoint: &Path) -> Result<(), String> {
    let mut problems = Vec::new();
    match mounts_below(mountpoint) {
        Ok(below) => {
            for p in below {
                if let Err(e) = run("umount", &["-l"], &p) {
                    problems.push(e);
                }
            }
        }
        Err(e) => problems.push(format!("cannot read /proc/self/mountinfo: {e}")),
    }
    if let Err(e) = unmount_one(mountpoint) {
        problems.push(e);
        return Err(problems.join("; "));
    }
    Ok(())
}

/// Unmounts `mountpoint` with `fusermount3 -u -z`, falling back to
/// `umount -l`. The error tells how both attempts failed.
fn unmount_one(mountpoint: &Path) -> Result<(), String> {
    let first = match run("fusermount3", &["-u", "-z"], mountpoint) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    run("umount", &["-l"], mountpoint).map_err(|second| format!("{first}; {second}"))
}

/// Runs `program args… path`; the error holds the command, its status and
/// stderr.
fn run(program: &str, args: &[&str], path: &Path) -> Result<(), String> {
    let command = format!("{program} {} {}", args.join(" "), path.display());
    match Command::new(program).args(args).arg(path).output() {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => Err(format!(
            "`{command}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(e) => Err(format!("`{command}` could not run: {e}")),
    }
}

/// Unmounts a mount point when dropped, and reaps the daemon serving it if
/// the guard owns one.
///
/// Dropping the guard (at the end of a test, or while a panic unwinds) lazily
/// unmounts the mounts below the mount point, then the mount point if it is
/// still mounted, with `fusermount3 -u -z`
/// or else `umount -l`, then waits up to 5 s for the daemon to exit and kills
/// it if it has not. Failures are reported on stderr, since a drop cannot
/// return them; use [`MountGuard::unmount`] to see them as a result.
///
/// Declare the guard *after* the temporary directory holding the mount point,
/// so that it drops first: a temporary directory removed while still mounted
/// would have its removal reach into the mount.
#[derive(Debug)]
pub struct MountGuard {
    mountpoint: PathBuf,
    daemon: Option<Child>,
}

impl MountGuard {
    /// A guard for a mount made by someone else (a daemonizing `packagefs
    /// mount`, say).
    pub fn new(mountpoint: impl Into<PathBuf>) -> Self {
        MountGuard {
            mountpoint: mountpoint.into(),
            daemon: None,
        }
    }

    /// A guard that also owns the process serving the mount (a `packagefs
    /// mount --foreground` child), reaped after the unmount.
    pub fn with_daemon(mountpoint: impl Into<PathBuf>, daemon: Child) -> Self {
        MountGuard {
            mountpoint: mountpoint.into(),
            daemon: Some(daemon),
        }
    }

    /// The guarded mount point.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Waits until the mount point is mounted, like [`wait_for_mount`], but
    /// fails at once, with its exit status, if the owned daemon exits first.
    pub fn wait_mounted(&mut self, timeout: Duration) -> io::Result<()> {
        let daemon = &mut self.daemon;
        wait_until(&self.mountpoint, timeout, true, &mut || {
            if let Some(child) = daemon.as_mut() {
                if let Some(status) = child.try_wait()? {
                    return Err(io::Error::other(format!(
                        "the daemon exited ({status}) before the mount appeared"
                    )));
                }
            }
            Ok(())
        })
    }

    /// Unmounts now (if mounted) and reaps the daemon, returning what went
    /// wrong instead of printing it. A daemon that had to be killed, or that
    /// exited unsuccessfully, is an error.
    pub fn unmount(mut self) -> Result<(), String> {
        self.release()
    }

    /// The work of both [`MountGuard::unmount`] and drop; leaves the guard
    /// empty so that it runs only once.
    fn release(&mut self) -> Result<(), String> {
        let mut problems = Vec::new();
        match is_mounted(&self.mountpoint) {
            Ok(false) => {}
            Ok(true) => {
                if let Err(e) = unmount(&self.mountpoint) {
                    problems.push(e);
                }
            }
            Err(e) => {
                problems.push(format!(
                    "cannot tell whether {} is mounted: {e}",
                    self.mountpoint.display()
                ));
                if let Err(e) = unmount(&self.mountpoint) {
                    problems.push(e);
                }
            }
        }
        if let Some(child) = self.daemon.take() {
            if let Err(e) = reap(child) {
                problems.push(e);
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{}: {}",
                self.mountpoint.display(),
                problems.join("; ")
            ))
        }
    }
}

/// Waits for a daemon to exit after its unmount, killing it after
/// [`DAEMON_EXIT_GRACE`].
fn reap(mut child: Child) -> Result<(), String> {
    let pid = child.id();
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("daemon {pid} exited with {status}")),
            Ok(None) if start.elapsed() < DAEMON_EXIT_GRACE => thread::sleep(POLL_INTERVAL),
            Ok(None) => {
                let killed = child.kill();
                let waited = child.wait();
                return Err(format!(
                    "daemon {pid} still ran {DAEMON_EXIT_GRACE:?} after the unmount; killed it \
                     ({killed:?}, {waited:?})"
                ));
            }
            Err(e) => return Err(format!("cannot wait for daemon {pid}: {e}")),
        }
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        if let Err(e) = self.release() {
            eprintln!("MountGuard: {e}");
        }
    }
}

/// Poll `cond` every 50 ms for up to `secs` seconds; whether it came true.
pub fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
