//! The systemd unit `packagefs/packaging/packagefs@.service`, without
//! systemd: its `ExecStart=` is read from the unit file and run with the
//! substitutions systemd would make (`%f`, `$ROOT`, `$OPTIONS` split at
//! spaces), with `NOTIFY_SOCKET` on a datagram socket the test reads:
//! `READY=1` must come once the mount and its binds are there, and SIGTERM
//! (what `systemctl stop` sends) must unmount everything, say `STOPPING=1`
//! and exit 0. `systemd-analyze verify` checks the unit when it is here.

mod shine_common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use packagefs_tests::{
    bin_path, is_mounted, mounts_below, workspace_root, MountGuard, PackagefsMount,
};
use shine_common::{binds, kill, sorted, wait_exit, Daemon, ShineRoot, STATUS};

fn unit_path() -> PathBuf {
    workspace_root().join("packagefs/packaging/packagefs@.service")
}

/// The words of the unit's `ExecStart=` line.
fn exec_start() -> Vec<String> {
    let unit = std::fs::read_to_string(unit_path()).unwrap();
    let lines: Vec<&str> = unit
        .lines()
        .filter_map(|l| l.trim().strip_prefix("ExecStart="))
        .collect();
    assert_eq!(lines.len(), 1, "expected one ExecStart= line: {lines:?}");
    lines[0].split_whitespace().map(String::from).collect()
}

/// `ExecStart=` as systemd runs it for mount point `mnt` with `ROOT=root`
/// and `OPTIONS=options`; the program is the built `packagefs`.
fn command_line(root: &Path, mnt: &Path, options: &str) -> Vec<String> {
    let words = exec_start();
    let (program, args) = words.split_first().expect("empty ExecStart=");
    assert!(
        program.ends_with("/packagefs"),
        "ExecStart= runs {program}, not packagefs"
    );
    let mut out = vec![bin_path("packagefs").display().to_string()];
    for w in args {
        match w.as_str() {
            "%f" => out.push(mnt.display().to_string()),
            "$ROOT" | "${ROOT}" => out.push(root.display().to_string()),
            "$OPTIONS" => out.extend(options.split_whitespace().map(String::from)),
            other => {
                assert!(
                    !other.contains('%') && !other.contains('$'),
                    "ExecStart= has {other:?}, which this test does not know how to substitute"
                );
                out.push(other.to_string());
            }
        }
    }
    out
}

fn receive(sock: &UnixDatagram, want: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match sock.recv(&mut buf) {
            Ok(n) => {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let found = msg.lines().any(|l| l == want);
                seen.push(msg);
                if found {
                    return seen;
                }
            }
            Err(e) => panic!("no {want} on the notify socket ({e}); got {seen:?}"),
        }
    }
}

#[test]
fn the_units_command_line_notifies_and_stops_cleanly() {
    let s = ShineRoot::new();
    let root = s.root();
    let (dir, mnt, log) = PackagefsMount::mount_dir();
    let socket_path = dir.path().join("notify");
    let sock = UnixDatagram::bind(&socket_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let options = format!(
        "--shine-through var,tmp,home -v --log-file {}",
        log.display()
    );
    let argv = command_line(&root, &mnt, &options);
    assert!(argv.iter().any(|a| a == "--foreground"), "{argv:?}");
    let mut daemon = Daemon(
        Command::new(&argv[0])
            .args(&argv[1..])
            .env("NOTIFY_SOCKET", &socket_path)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let guard = MountGuard::new(&mnt);
    receive(&sock, "READY=1");
    // Ready means mounted, binds included.
    assert!(is_mounted(&mnt).unwrap());
    assert_eq!(binds(&mnt), sorted(&["var", "tmp", "home"]));
    assert_eq!(
        std::fs::read(mnt.join("var/lib/dpkg/status")).unwrap(),
        STATUS
    );

    kill(daemon.0.id(), "TERM");
    let status = wait_exit(&mut daemon.0, 15).expect("the daemon did not exit on SIGTERM");
    assert!(
        status.success(),
        "exit status {status}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    receive(&sock, "STOPPING=1");
    assert!(!is_mounted(&mnt).unwrap());
    assert!(mounts_below(&mnt).unwrap().is_empty());
    drop(guard);
    drop(dir);
}

#[test]
fn systemd_analyze_verifies_the_unit() {
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        println!("note: systemd-analyze is not installed; the unit was not verified");
        return;
    };
    assert!(out.status.success());
    // verify checks that the program exists: point it at the built one.
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(unit_path()).unwrap();
    let program = exec_start().into_iter().next().unwrap();
    let unit = unit.replace(&program, &bin_path("packagefs").display().to_string());
    std::fs::write(dir.path().join("packagefs@.service"), unit).unwrap();
    // `--man=no`: the unit's Documentation= names man pages, which `make
    // install` installs but the test machine need not have.
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .arg(dir.path().join("packagefs@srv-root.service"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed: {stderr}"
    );
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("packagefs@"))
        .collect();
    assert!(
        complaints.is_empty(),
        "systemd-analyze verify: {complaints:?}"
    );
}
