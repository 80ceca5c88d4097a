//! Shine-through directories: `packagefs mount ROOT MNT --shine-through
//! var,tmp,...` shows those top-level names as directories and bind-mounts
//! `ROOT/data/<name>` onto them (created and seeded from the packaged tree
//! on first use), so runtime data is writable while the rest stays
//! read-only; the binds survive live changes, and every way of unmounting
//! takes them away.

mod shine_common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use packagefs_tests::{bin_path, is_mounted, mounts_below, wait_for, MountGuard, PackagefsMount};
use shine_common::{binds, foreground, kill, sorted, wait_exit, Daemon, ShineRoot, STATUS};

const ALL: &str = "var,tmp,run,home,root";

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn write_err(p: &Path) -> i32 {
    std::fs::write(p, b"x")
        .err()
        .and_then(|e| e.raw_os_error())
        .unwrap_or(0)
}

#[test]
fn shine_through_directories_are_writable_and_seeded_once() {
    let s = ShineRoot::new();
    let root = s.root();
    assert!(!root.join("data/var").exists());
    let m = PackagefsMount::new(&[&root], &["-v", "--shine-through", ALL]);
    let mnt = m.path();
    assert_eq!(binds(mnt), sorted(&["var", "tmp", "run", "home", "root"]));
    for name in ["var", "tmp", "run", "home", "root"] {
        assert!(mnt.join(name).is_dir(), "/{name} is not a directory");
        assert!(root.join("data").join(name).is_dir(), "data/{name} missing");
    }
    // Modes: the packaged one, else 1777 for tmp, 0700 for root, 0755.
    assert_eq!(mode(&mnt.join("tmp")), 0o1777);
    assert_eq!(mode(&root.join("data/tmp")), 0o1777);
    assert_eq!(mode(&root.join("data/root")), 0o700);
    assert_eq!(mode(&root.join("data/home")), 0o755);
    assert_eq!(mode(&root.join("data/run")), 0o755);
    // Seeded from the package: files, empty directories with their modes,
    // symlinks.
    assert_eq!(
        std::fs::read(root.join("data/var/lib/dpkg/status")).unwrap(),
        STATUS
    );
    assert_eq!(mode(&root.join("data/var/log")), 0o750);
    assert_eq!(
        std::fs::read_link(root.join("data/var/cache/status")).unwrap(),
        Path::new("../lib/dpkg/status")
    );
    assert!(m.log().contains("seeded"), "no seeding logged\n{}", m.log());
    // The package's file /run is hidden by the shine-through directory.
    assert!(
        m.log().contains("base-1.0-1") && m.log().contains("not a directory"),
        "no warning naming the package whose /run is a file\n{}",
        m.log()
    );
    // Writes land in ROOT/data; the rest of the tree stays read-only.
    std::fs::write(mnt.join("var/x"), b"written").unwrap();
    assert_eq!(std::fs::read(root.join("data/var/x")).unwrap(), b"written");
    std::fs::write(mnt.join("tmp/t"), b"t").unwrap();
    assert!(root.join("data/tmp/t").is_file());
    assert_eq!(write_err(&mnt.join("etc/new")), libc::EROFS);
    assert_eq!(write_err(&mnt.join("new")), libc::EROFS);
    assert_eq!(
        std::fs::read(mnt.join("etc/base.conf")).unwrap(),
        b"base=1\n"
    );

    // packagefs unmount takes every bind away, then the mount.
    let dir_of = mnt.to_path_buf();
    m.unmount();
    assert!(mounts_below(&dir_of).unwrap_or_default().is_empty());

    // An existing data directory is never seeded again.
    std::fs::write(root.join("data/var/lib/dpkg/status"), b"changed").unwrap();
    std::fs::remove_dir(root.join("data/var/log")).unwrap();
    let m = PackagefsMount::new(&[&root], &["-v", "--shine-through", "var,tmp"]);
    assert_eq!(
        std::fs::read(m.path().join("var/lib/dpkg/status")).unwrap(),
        b"changed"
    );
    assert!(!m.path().join("var/log").exists());
    assert_eq!(std::fs::read(m.path().join("var/x")).unwrap(), b"written");
    assert!(!m.log().contains("seeded"), "seeded again\n{}", m.log());
    m.unmount();
}

#[test]
fn bad_names_and_sources_are_refused() {
    let s = ShineRoot::new();
    let root = s.root();
    for (arg, want) in [
        ("..", "bad shine-through name"),
        (".", "bad shine-through name"),
        ("var/lib", "bad shine-through name"),
        ("var,tmp,var", "given twice"),
    ] {
        let e = PackagefsMount::try_new(&[&root], &["--shine-through", arg]).unwrap_err();
        assert!(e.contains(want), "--shine-through {arg}: {e}");
    }
    let e = PackagefsMount::try_new(&[&root], &["-o", "shine_through=var:.."]).unwrap_err();
    assert!(e.contains("bad shine-through name"), "{e}");
    let pkg = s.package("alone");
    let e = PackagefsMount::try_new(&[&pkg], &["--shine-through", "var"]).unwrap_err();
    assert!(e.contains("needs a package root"), "{e}");
    assert!(!root.join("data/var").exists());
}

#[test]
fn a_failed_bind_undoes_everything() {
    let s = ShineRoot::new();
    let root = s.root();
    std::fs::create_dir_all(root.join("data")).unwrap();
    std::fs::write(root.join("data/run"), b"a file where a directory belongs").unwrap();
    let (dir, mnt, log) = PackagefsMount::mount_dir();
    let out = Command::new(bin_path("packagefs"))
        .arg("mount")
        .arg(&root)
        .arg(&mnt)
        .args(["--log-file"])
        .arg(&log)
        .args(["--shine-through", "var,run"])
        .output()
        .unwrap();
    let _guard = MountGuard::new(&mnt);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the mount succeeded");
    assert!(
        err.contains("data/run"),
        "the reason does not name data/run: {err}"
    );
    assert!(!is_mounted(&mnt).unwrap(), "FUSE left mounted");
    assert!(mounts_below(&mnt).unwrap().is_empty(), "binds left");
    drop(dir);
}

#[test]
fn shine_through_with_an_older_generation() {
    let s = ShineRoot::new();
    let root = s.root();
    let add = Command::new(bin_path("pkgctl"))
        .arg("-R")
        .arg(&root)
        .arg("add")
        .arg(s.package("extra"))
        .output()
        .unwrap();
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    let current = PackagefsMount::new(&[&root], &["-o", "shine_through=var:tmp"]);
    std::fs::write(current.path().join("var/shared"), b"one data dir").unwrap();
    assert!(current.path().join("data/extra.txt").is_file());
    let old = PackagefsMount::new(
        &[&root],
        &["--generation", "previous", "--shine-through", "var,tmp"],
    );
    assert!(!old.path().join("data/extra.txt").exists());
    assert_eq!(binds(old.path()), sorted(&["var", "tmp"]));
    assert_eq!(
        std::fs::read(old.path().join("var/shared")).unwrap(),
        b"one data dir"
    );
    old.unmount();
    current.unmount();
}

#[test]
fn live_changes_keep_the_binds() {
    let s = ShineRoot::new();
    let root = s.root();
    // Entries expire after a second, so the kernel revalidates them.
    let m = PackagefsMount::new(
        &[&root],
        &["-v", "-o", "entry_ttl=1", "--shine-through", ALL],
    );
    let mnt = m.path();
    let var_ino = std::fs::metadata(mnt.join("var")).unwrap().ino();
    let add = Command::new(bin_path("pkgctl"))
        .arg("-R")
        .arg(&root)
        .arg("add")
        .arg(s.package("late"))
        .output()
        .unwrap();
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    assert!(
        wait_for(10, || mnt.join("data/late.txt").is_file()),
        "the package did not appear\n{}",
        m.log()
    );
    let check = |when: &str| {
        assert_eq!(
            binds(mnt),
            sorted(&["var", "tmp", "run", "home", "root"]),
            "binds lost {when}\n{}",
            m.log()
        );
        std::fs::write(mnt.join("var/x"), when.as_bytes()).unwrap();
        assert_eq!(
            std::fs::read(root.join("data/var/x")).unwrap(),
            when.as_bytes()
        );
        assert_eq!(std::fs::metadata(mnt.join("var")).unwrap().ino(), var_ino);
    };
    check("after the swap");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    check("after the entry TTL");
    assert!(mnt.join("data/late.txt").is_file());
    assert!(m.log().contains("activated late-1.0-1"), "{}", m.log());
    m.unmount();
}

#[test]
fn a_busy_bind_is_reported_and_nothing_is_left_half_unmounted() {
    let s = ShineRoot::new();
    let root = s.root();
    let m = PackagefsMount::new(&[&root], &["--shine-through", "var,tmp"]);
    let mut busy = Command::new("sleep")
        .arg("60")
        .current_dir(m.path().join("var"))
        .spawn()
        .unwrap();
    let out = Command::new(bin_path("packagefs"))
        .arg("unmount")
        .arg(m.path())
        .output()
        .unwrap();
    let _ = busy.kill();
    let _ = busy.wait();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "unmount succeeded under a busy bind");
    assert!(err.contains("/var") && err.contains("busy"), "{err}");
    assert!(m.is_mounted(), "FUSE unmounted under a live bind");
    assert!(binds(m.path()).contains(&"var".to_string()));
    m.unmount();
}

#[test]
fn sigterm_to_a_foreground_daemon_unmounts_everything() {
    let s = ShineRoot::new();
    let root = s.root();
    let (dir, mnt, log) = PackagefsMount::mount_dir();
    let mut daemon = Daemon(foreground(&root, &mnt, &log, &["--shine-through", ALL]));
    let guard = MountGuard::new(&mnt);
    assert!(
        wait_for(20, || binds(&mnt).len() == 5),
        "binds did not appear: {:?}\n{}",
        binds(&mnt),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    kill(daemon.0.id(), "TERM");
    let status = wait_exit(&mut daemon.0, 10).expect("the daemon did not exit");
    assert!(status.success(), "daemon exited with {status}");
    assert!(!is_mounted(&mnt).unwrap());
    assert!(mounts_below(&mnt).unwrap().is_empty());
    drop(guard);
    drop(dir);
}

#[test]
fn umount_recursive_works_too() {
    let s = ShineRoot::new();
    let root = s.root();
    let (dir, mnt, log) = PackagefsMount::mount_dir();
    let mut daemon = Daemon(foreground(
        &root,
        &mnt,
        &log,
        &["--shine-through", "var,tmp"],
    ));
    let guard = MountGuard::new(&mnt);
    assert!(
        wait_for(20, || binds(&mnt).len() == 2),
        "binds did not appear"
    );
    let out = Command::new("umount").arg("-R").arg(&mnt).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = wait_exit(&mut daemon.0, 10).expect("the daemon did not exit");
    assert!(status.success(), "daemon exited with {status}");
    assert!(!is_mounted(&mnt).unwrap());
    drop(guard);
    drop(dir);
}
