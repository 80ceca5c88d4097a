//! Running as a daemon: `packagefs mount` returns once the mount is ready
//! while the daemon goes on in the background.
//!
//! The command forks ([`fork_background`]) while it is still a single
//! thread, before it has logged or loaded anything; the child becomes the
//! daemon in a new session, with standard input on `/dev/null`, standard
//! error on the `--log-file` (or `/dev/null`), and standard output on a
//! pipe the parent waits on. Forking rather than starting the program
//! again saves a process start (loading, linking, checking the options a
//! second time) on every mount. Should the process ever have a second
//! thread at that point, it re-executes itself with `--foreground
//! --report-ready` instead ([`spawn_background`]), since a fork copies only
//! the calling thread. Either way the daemon
//! writes `warning: <text>` lines for what the caller must hear, printed on
//! the caller's standard error, then `ok` once the kernel has completed the
//! FUSE handshake, or `error: <reason>` if mounting failed, and points its
//! standard output at `/dev/null`. A daemon that dies without a word is
//! reported with its exit status.
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
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rustix::pipe::{pipe_with, PipeFlags};

use crate::kmount::{self, Mounted};

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
/// arguments without the program name) plus `--foreground --report-ready`,
/// and wait until it reports the mount ready or failed.
pub fn spawn_background(args: &[OsString], log_file: Option<&Path>) -> Result<(), DaemonError> {
    let exe = std::env::current_exe().map_err(io_err("cannot find the packagefs executable"))?;
    let (read_end, write_end) = pipe_with(PipeFlags::CLOEXEC)
        .map_err(|e| io_err("cannot create the readiness pipe")(e.into()))?;

    let mut full: Vec<OsString> = args.to_vec();
    let at = full.iter().position(|a| a == "--").unwrap_or(full.len());
    full.splice(
        at..at,
        [
            OsString::from("--foreground"),
            OsString::from("--report-ready"),
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
        .stdout(Stdio::from(write_end))
        .stderr(stderr);
    // SAFETY: setsid is async-signal-safe and touches no memory of the
    // parent; it detaches the daemon from the caller's terminal and session.
    #[allow(unsafe_code)]
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
    // The command holds our copy of the pipe's write end: close it, so that
    // the read below ends when the daemon's copy is closed.
    drop(cmd);
    await_report(File::from(read_end), || {
        child
            .wait()
            .map(|s| s.to_string())
            .unwrap_or_else(|e| e.to_string())
    })
}

/// Read the daemon's report from `pipe` until it closes: print its
/// warnings on standard error, and return once it said `ok`, or with its
/// error, or with how it ended (`wait`: waits for it and says how) when it
/// said nothing.
fn await_report(mut pipe: File, wait: impl FnOnce() -> String) -> Result<(), DaemonError> {
    let mut report = String::new();
    let read = pipe.read_to_string(&mut report);
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
        let _ = wait();
        return Err(DaemonError::Failed(reason.to_string()));
    }
    let status = wait();
    match read {
        Err(e) => Err(DaemonError::Died(format!(
            "{status}; reading its report: {e}"
        ))),
        Ok(_) => Err(DaemonError::Died(status)),
    }
}

/// Which side of [`fork_background`] returned.
#[derive(Debug)]
pub enum Forked {
    /// The command: the daemon reported (`Ok`: the mount is ready).
    Parent(Result<(), DaemonError>),
    /// The daemon: go on mounting and report on standard output
    /// ([`Readiness::on_stdout`]).
    Daemon,
}

/// Start the daemon in the background and wait until it reports the mount
/// ready or failed. The child of a fork is the daemon: it returns
/// [`Forked::Daemon`] in a new session, with standard input on
/// `/dev/null`, standard output on the readiness pipe and standard error
/// on `log_file` (or `/dev/null`). A process with more than one thread
/// (which a fork would leave in an unknown state) starts the daemon with
/// [`spawn_background`] and `args` instead.
pub fn fork_background(args: &[OsString], log_file: Option<&Path>) -> Result<Forked, DaemonError> {
    if !single_threaded() {
        return Ok(Forked::Parent(spawn_background(args, log_file)));
    }
    let (read_end, write_end) = pipe_with(PipeFlags::CLOEXEC)
        .map_err(|e| io_err("cannot create the readiness pipe")(e.into()))?;
    let stderr = match log_file {
        Some(p) => File::options()
            .create(true)
            .append(true)
            .open(p)
            .map_err(io_err(format!("cannot open log file {}", p.display())))?,
        None => File::options()
            .write(true)
            .open("/dev/null")
            .map_err(io_err("cannot open /dev/null"))?,
    };
    let stdin = File::open("/dev/null").map_err(io_err("cannot open /dev/null"))?;
    // SAFETY: the process has one thread (checked above), so the child is a
    // complete copy of it: no lock is held by a thread that does not exist
    // in the child, and the child may go on running ordinary Rust code.
    #[allow(unsafe_code)]
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io_err("cannot start the packagefs daemon")(
            io::Error::last_os_error(),
        )),
        0 => {
            drop(read_end);
            let detached = rustix::process::setsid()
                .and_then(|_| rustix::stdio::dup2_stdin(&stdin))
                .and_then(|()| rustix::stdio::dup2_stdout(&write_end))
                .and_then(|()| rustix::stdio::dup2_stderr(&stderr));
            if let Err(e) = detached {
                // Nothing to report to but the pipe, if that much works.
                let mut pipe = File::from(write_end);
                let _ = writeln!(pipe, "error: cannot detach the daemon: {e}");
                std::process::exit(1);
            }
            Ok(Forked::Daemon)
        }
        child => {
            drop(write_end);
            let wait = move || {
                let mut status = 0;
                // SAFETY: waitpid only writes the status through the
                // pointer, which is valid for the call.
                #[allow(unsafe_code)]
                let waited = unsafe { libc::waitpid(child, &mut status, 0) };
                if waited == -1 {
                    io::Error::last_os_error().to_string()
                } else {
                    std::process::ExitStatus::from_raw(status).to_string()
                }
            };
            Ok(Forked::Parent(await_report(File::from(read_end), wait)))
        }
    }
}

/// Whether this process has exactly one thread (`/proc/self/task`); when
/// it cannot tell, it says no.
fn single_threaded() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|tasks| tasks.count() == 1)
}

/// The daemon's end of the readiness pipe: its standard output, when the
/// parent waits on it (`--report-ready`).
#[derive(Debug)]
pub struct Readiness {
    report: bool,
}

impl Readiness {
    /// No one is waiting (foreground run started by hand or by systemd).
    pub fn none() -> Readiness {
        Readiness { report: false }
    }

    /// The parent waits for the report on our standard output.
    pub fn on_stdout() -> Readiness {
        Readiness { report: true }
    }

    /// Report the mount ready (to the parent and to systemd).
    pub fn ready(&mut self) {
        self.report("ok");
        notify_systemd(&[sd_notify::NotifyState::Ready]);
    }

    /// Say `text` (one line) to whoever started the mount: on the parent's
    /// standard error through the pipe, else on our own (a foreground run).
    pub fn warn(&mut self, text: &str) {
        let line = text.replace('\n', " ");
        if self.report {
            let mut out = io::stdout().lock();
            let _ = writeln!(out, "warning: {line}").and_then(|()| out.flush());
        } else {
            eprintln!("packagefs: {line}");
        }
    }

    /// Report a failure (one line).
    pub fn failed(&mut self, reason: &str) {
        self.report(&format!("error: {}", reason.replace('\n', " ")));
    }

    /// Write `line` to the parent, once, then close the pipe (standard
    /// output becomes `/dev/null`), so that the parent's read ends.
    fn report(&mut self, line: &str) {
        if !std::mem::take(&mut self.report) {
            return;
        }
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        let closed = File::options()
            .write(true)
            .open("/dev/null")
            .and_then(|null| rustix::stdio::dup2_stdout(null).map_err(io::Error::from));
        if let Err(e) = closed {
            tracing::warn!("cannot close the readiness pipe: {e}");
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
pub fn serve(
    mut session: impl Mounted,
    mountpoint: &Path,
    setup: impl FnOnce() -> Result<(), String> + Send + 'static,
) -> Result<(), DaemonError> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut unmounter = session.unmounter(mountpoint);
    let mut setup_unmounter = session.unmounter(mountpoint);
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
                match unmounter() {
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
                if let Err(u) = setup_unmounter() {
                    tracing::error!("unmounting {}: {u}", at.display());
                }
                *failed
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
            }
        })
        .map_err(io_err("cannot start the set-up thread"))?;
    let result = session.serve().map_err(io_err("serving the file system"));
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

/// Unmount everything below `mountpoint` (the shine-through binds, deepest
/// first), then `mountpoint` itself ([`kmount::unmount_fuse`]). A busy
/// mount below stops it with the FUSE mount left in place.
pub fn unmount(mountpoint: &Path) -> Result<(), DaemonError> {
    let canonical = std::fs::canonicalize(mountpoint)
        .or_else(|_| std::path::absolute(mountpoint))
        .unwrap_or_else(|_| mountpoint.to_path_buf());
    crate::shine::unmount_below(&canonical).map_err(|e| DaemonError::Unmount {
        path: mountpoint.to_path_buf(),
        reason: e.to_string(),
    })?;
    kmount::unmount_fuse(mountpoint).map_err(|e| DaemonError::Unmount {
        path: mountpoint.to_path_buf(),
        reason: e.to_string(),
    })
}
