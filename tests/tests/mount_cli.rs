//! The `packagefs` command line: foreground mounts that unmount on SIGTERM,
//! and failures that exit non-zero with a one-line reason.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use packagefs::kmount::mounted_at;
use packagefs_tests::{bin_path, golden_package, is_mounted, PackagefsMount};

/// Run packagefs with `args`, expecting failure; returns its stderr.
fn fails(args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(bin_path("packagefs"))
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{args:?} succeeded");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.starts_with("packagefs: ") && err.trim_end().lines().count() == 1,
        "one-line reason expected: {err:?}"
    );
    err
}

#[test]
fn a_foreground_mount_unmounts_on_sigterm() {
    let (dir, mnt, log) = PackagefsMount::mount_dir();
    let mut child = Command::new(bin_path("packagefs"))
        .arg("mount")
        .arg(golden_package("nested-zstd"))
        .arg(&mnt)
        .arg("--foreground")
        .arg("--log-file")
        .arg(&log)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    // Guard the mount while the test runs.
    let guard = PackagefsMount::adopt(dir, log);
    let start = Instant::now();
    while !is_mounted(&mnt).unwrap() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the foreground daemon exited: {}",
            guard.log()
        );
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no mount after 20 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(mnt.join("data/sizes/size_7.bin").is_file());
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}: {}", guard.log());
    assert!(!is_mounted(&mnt).unwrap(), "SIGTERM unmounts");
    drop(guard);
}

#[test]
fn failures_exit_non_zero_with_a_one_line_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("m");
    std::fs::create_dir(&mnt).unwrap();
    let missing = dir.path().join("missing.hpkg");
    let pkg = golden_package("nested-zstd");

    let err = fails(&["mount".as_ref(), missing.as_os_str(), mnt.as_os_str()]);
    assert!(err.contains("missing.hpkg"), "{err}");

    let err = fails(&[
        "mount".as_ref(),
        pkg.as_os_str(),
        dir.path().join("nowhere").as_os_str(),
    ]);
    assert!(err.contains("nowhere"), "{err}");

    let err = fails(&[
        "mount".as_ref(),
        pkg.as_os_str(),
        mnt.as_os_str(),
        "-o".as_ref(),
        "frobnicate".as_ref(),
    ]);
    assert!(err.contains("frobnicate"), "{err}");

    let err = fails(&[
        "mount".as_ref(),
        dir.path().as_os_str(),
        mnt.as_os_str(),
        "--layers".as_ref(),
        "usr".as_ref(),
    ]);
    assert!(err.contains("usr"), "{err}");

    let err = fails(&["unmount".as_ref(), mnt.as_os_str()]);
    assert!(err.contains(&mnt.display().to_string()), "{err}");
    assert!(!is_mounted(&mnt).unwrap());
}

/// A second `packagefs mount` on a mount point that serves packagefs is
/// refused with a one-line error naming it, before a daemon starts: in
/// both forms, and the first mount stays, alone and serving.
#[test]
fn a_second_mount_on_a_packagefs_is_refused() {
    let pkg = golden_package("nested-zstd");
    let mount = PackagefsMount::new(&[&pkg], &[]);
    let mnt = mount.path().to_path_buf();
    let named = std::fs::canonicalize(mount.dir()).unwrap().join("m");
    let stacked = || mounted_at(&mnt).unwrap().len();
    assert_eq!(stacked(), 1);

    let subcommand = ["mount".as_ref(), pkg.as_os_str(), mnt.as_os_str()];
    let fstab = [
        pkg.as_os_str(),
        mnt.as_os_str(),
        "-o".as_ref(),
        "ro".as_ref(),
    ];
    for args in [&subcommand[..], &fstab[..]] {
        let err = fails(args);
        assert!(
            err.contains(&format!(
                "{}: a packagefs is already mounted",
                named.display()
            )),
            "{err}"
        );
        assert_eq!(stacked(), 1, "{args:?} stacked a second mount");
    }
    assert!(mnt.join("data/sizes/size_7.bin").is_file());
    mount.unmount();
}
