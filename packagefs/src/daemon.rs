//! Running as a daemon: `packagefs mount` returns once the mount is ready
//! while the daemon goes on in the background.
//!
//! The command re-executes itself with `--foreground --ready-fd N` in a new
//! session (never forking a process that has threads), with its standard
//! streams on `/dev/null` (standard error on the `--log-file`, if any), and
//! waits on a pipe: the daemon writes `warning: <text>` lines for what the
//! caller must hear (packages left out of the mount, a fallback to an older
//! generation), printed on the caller's standard error, then `ok` once the
//! kernel has completed the FUSE handshake, or `error: <reason>` if mounting
//! failed. A daemon that dies without a word is reported with its exit
//! status.
//!
//! Readiness is reported once the FUSE session is serving *and* the
//! shine-through directories are bound ([`serve`] runs the set-up on its own
//! thread while the session answers the kernel's lookups), both on the pipe
//! and to systemd (`READY=1` on `$NOTIFY_SOCKET`, for `Type=notify`).
//!
//! In the foreground, SIGINT, SIGTERM and SIGHUP unmount the file system
//! (the mounts below it first, then the FUSE mount; `STOPPING=1` to
//! systemd), after which the daemon exits 0. If a mount below it is busy,
//! the daemon says which and goes on serving, so that nothing is left
//! mounted over a dead FUSE file system; another signal tries again.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use fuser::{Filesystem, Session, SessionUnmounter};

/// Why the daemon could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The daemon reported a failure.
    #[error("{0}")]
    Failed(String),
    /// The daemon exited before reporting.
    #[error("the daemon exited before the mount was ready ({0})")]
    Died(String),
    /// Unmounting failed.
    #[error("cannot unmount {}: {reason}", path.display())]
    Unmount {
        /// The mount point.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> DaemonError {
    let what = what.into();
    move |source| DaemonError::Io { what, source }
}

/// Start this program again in the background with `args` (the original
/// arguments without the program name) plus `--foreground --ready-fd N`,
/// and wait until it reports the mount ready or failed.
pub fn spawn_background(args: &[OsString], log_file: Option<&Path>) -> Result<(), DaemonError> {
    let exe = std::env::current_exe().map_err(io_err("cannot find the packagefs executable"))?;
    let (read_end, write_end) = pipe().map_err(io_err("cannot create the readiness pipe"))?;
    clear_cloexec(&write_end).map_err(io_err("cannot pass the readiness pipe"))?;

    let mut full: Vec<OsString> = args.to_vec();
    let at = full.iter().position(|a| a == "--").unwrap_or(full.len());
    full.splice(
        at..at,
        [
            OsString::from("--foreground"),
            OsString::from("--ready-fd"),
            OsString::from(write_end.as_raw_fd().to_string()),
        ],
    );
    let stderr = match log_file {
        Some(p) => Stdio::from(
            File::options()
                .create(true)
                .append(true)
                .open(p)
                .map_err(io_err(format!("cannot open log file {}", p.display())))?,
        ),
        None => Stdio::null(),
    };
    let mut cmd = Command::new(exe);
    cmd.args(&full)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    // SAFETY: setsid is async-signal-safe and touches no memory of the
    // parent; it detaches the daemon from the caller's terminal and session.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(io_err("cannot start the packagefs daemon"))?;
    drop(write_end);

    let mut report = String::new();
    let read = File::from(read_end).read_to_string(&mut report);
    let mut message = "";
    for line in report.lines() {
        match line.strip_prefix("warning: ") {
            Some(w) => eprintln!("packagefs: {w}"),
            None => message = line.trim(),
        }
    }
    if message == "ok" {
        return Ok(());
    }
    if let Some(reason) = message.strip_prefix("error: ") {
        let _ = child.wait();
        return Err(DaemonError::Failed(reason.to_string()));
    }
    let status = child
        .wait()
        .map(|s| s.to_string())
        .unwrap_or_else(|e| e.to_string());
    match read {
        Err(e) => Err(DaemonError::Died(format!(
            "{status}; reading its report: {e}"
        ))),
        Ok(_) => Err(DaemonError::Died(status)),
    }
}

/// The daemon's end of the readiness pipe.
#[derive(Debug)]
pub struct Readiness {
    pipe: Option<File>,
}

impl Readiness {
    /// No one is waiting (foreground run started by hand).
    pub fn none() -> Readiness {
        Readiness { pipe: None }
    }

    /// Take over descriptor `fd` passed by the parent with `--ready-fd`.
    pub fn from_fd(fd: RawFd) -> Result<Readiness, DaemonError> {
        // SAFETY: F_GETFD only inspects the descriptor table entry.
        if fd < 3 || unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            return Err(DaemonError::Failed(format!(
                "--ready-fd {fd} is not an open descriptor"
            )));
        }
        // SAFETY: the descriptor is open (checked above) and was created by
        // our parent for this process alone; nothing else in this process
        // owns it.
        let file = unsafe { File::from(OwnedFd::from_raw_fd(fd)) };
        set_cloexec(&file);
        Ok(Readiness { pipe: Some(file) })
    }

    /// Report the mount ready (to the parent and to systemd).
    pub fn ready(&mut self) {
        if let Some(mut p) = self.pipe.take() {
            let _ = p.write_all(b"ok\n");
        }
        notify_systemd(&[sd_notify::NotifyState::Ready]);
    }

    /// Say `text` (one line) to whoever started the mount: on the parent's
    /// standard error through the pipe, else on our own (a foreground run).
    pub fn warn(&mut self, text: &str) {
        let line = text.replace('\n', " ");
        match self.pipe.as_mut() {
            Some(p) => {
                let _ = p.write_all(format!("warning: {line}\n").as_bytes());
            }
            None => eprintln!("packagefs: {line}"),
        }
    }

    /// Report a failure (one line).
    pub fn failed(&mut self, reason: &str) {
        if let Some(mut p) = self.pipe.take() {
            let line = reason.replace('\n', " ");
            let _ = p.write_all(format!("error: {line}\n").as_bytes());
        }
    }
}

/// Tell systemd (if it started us with `$NOTIFY_SOCKET`) about `state`.
fn notify_systemd(state: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(false, state) {
        tracing::warn!("cannot notify systemd: {e}");
    }
}

/// Serve `session` (mounted at `mountpoint`) until the file system is
/// unmounted. Once it is serving, `setup` runs on its own thread (the
/// shine-through binds, then the readiness report); if it fails, the mounts
/// below `mountpoint` and the file system are unmounted and its error
/// returned. SIGINT, SIGTERM and SIGHUP unmount everything below
/// `mountpoint`, then the file system (see the module comment).
pub fn serve<FS: Filesystem>(
    mut session: Session<FS>,
    mountpoint: &Path,
    setup: impl FnOnce() -> Result<(), String> + Send + 'static,
) -> Result<(), DaemonError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut unmounter = session.unmount_callable();
    let mut setup_unmounter = session.unmount_callable();
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(io_err("cannot install signal handlers"))?;
    let handle = signals.handle();
    let at = mountpoint.to_path_buf();
    let watcher = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                tracing::info!("signal {sig}: unmounting");
                notify_systemd(&[sd_notify::NotifyState::Stopping]);
                if let Err(e) = crate::shine::unmount_below(&at) {
                    tracing::error!("{e}; {} stays mounted", at.display());
                    continue;
                }
                match unmount_own(&at, &mut unmounter) {
                    Ok(()) => break,
                    Err(e) => tracing::error!("unmount failed: {e}"),
                }
            }
        })
        .map_err(io_err("cannot start the signal thread"))?;
    let failure: std::sync::Arc<std::sync::Mutex<Option<String>>> = Default::default();
    let failed = failure.clone();
    let at = mountpoint.to_path_buf();
    let setter = std::thread::Builder::new()
        .name("setup".into())
        .spawn(move || {
            if let Err(e) = setup() {
                tracing::error!("{e}; unmounting");
                if let Err(u) = crate::shine::unmount_below(&at) {
                    tracing::error!("{u}");
                }
                if let Err(u) = unmount_own(&at, &mut setup_unmounter) {
                    tracing::error!("unmounting {}: {u}", at.display());
                }
                *failed
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
            }
        })
        .map_err(io_err("cannot start the set-up thread"))?;
    let result = session.run().map_err(io_err("serving the file system"));
    handle.close();
    let _ = watcher.join();
    let _ = setter.join();
    let failure = failure
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    match failure {
        Some(e) => Err(DaemonError::Failed(e)),
        None => result,
    }
}

/// Unmount the file system this daemon serves at `mountpoint`: with
/// `umount(2)` when we mounted it ourselves (as root, see [`crate::kmount`]),
/// else through fuser's mount (`fusermount3 -u`).
fn unmount_own(mountpoint: &Path, fuser_mount: &mut SessionUnmounter) -> io::Result<()> {
    if crate::kmount::can_mount() {
        crate::kmount::unmount(mountpoint)
    } else {
        fuser_mount.unmount()
    }
}

/// Unmount everything below `mountpoint` (the shine-through binds, deepest
/// first), then `mountpoint` itself with `fusermount3 -u` (`fusermount -u`
/// for old installations), falling back to `umount(2)` when that is missing
/// or fails and we may unmount ourselves. A busy mount below stops it with
/// the FUSE mount left in place.
pub fn unmount(mountpoint: &Path) -> Result<(), DaemonError> {
    let canonical = std::fs::canonicalize(mountpoint)
        .or_else(|_| std::path::absolute(mountpoint))
        .unwrap_or_else(|_| mountpoint.to_path_buf());
    crate::shine::unmount_below(&canonical).map_err(|e| DaemonError::Unmount {
        path: mountpoint.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut reasons = Vec::new();
    for tool in ["fusermount3", "fusermount"] {
        match Command::new(tool)
            .arg("-u")
            .arg("--")
            .arg(mountpoint)
            .stdin(Stdio::null())
            .output()
        {
            Ok(out) if out.status.success() => return Ok(()),
            Ok(out) => {
                reasons.push(format!(
                    "{tool}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => reasons.push(format!("{tool}: {e}")),
        }
    }
    let c = std::ffi::CString::new(mountpoint.as_os_str().as_encoded_bytes()).map_err(|_| {
        DaemonError::Unmount {
            path: mountpoint.to_path_buf(),
            reason: "the path contains a NUL byte".into(),
        }
    })?;
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    if unsafe { libc::umount2(c.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    reasons.push(format!("umount: {}", io::Error::last_os_error()));
    Err(DaemonError::Unmount {
        path: mountpoint.to_path_buf(),
        reason: reasons.join("; "),
    })
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded, so both descriptors are open and ours alone.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn clear_cloexec(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: F_SETFD on a descriptor we own changes only its flags. The
    // process has no other threads yet, so no other fork can inherit it.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, 0) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn set_cloexec(file: &File) {
    // SAFETY: F_SETFD on a descriptor we own changes only its flags.
    unsafe {
        libc::fcntl(file.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
    }
}
