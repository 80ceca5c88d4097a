//! The fstab form: `mount(8)` runs `mount.fuse3`, which runs `packagefs
//! ROOT MNT -o OPTIONS` (options of mount(8), FUSE and packagefs mixed,
//! `shine_through=` with `:`); `umount MNT` (and `umount -R MNT` with
//! shine-through binds) unmounts. The real `/etc/fstab` is never touched:
//! fstab lines go to a temporary file read with `mount -T`.
//!
//! mount(8) runs its helper without `PATH` (it is dropped), so
//! `mount.fuse3` finds a `fuse.packagefs` program only in `/bin/sh`'s
//! default path (`/usr/local/bin`, `/usr/bin`, ...). The tests therefore
//! run `mount.fuse3` itself with the built binary's directory on `PATH`
//! (exactly what mount(8) runs for `-t fuse.packagefs`), and mount(8) with
//! the `fuse` type and `PROGRAM#SOURCE`, which names the built binary; and
//! mount(8) with `fuse.packagefs` in a private mount namespace whose
//! `/usr/local/bin` is the build directory.

mod shine_common;

use std::path::Path;
use std::process::Command;

use packagefs_tests::{bin_path, is_mounted, mounts_below, MountGuard, PackagefsMount};
use shine_common::{binds, sorted, ShineRoot, STATUS};

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn check_tree(mnt: &Path, shine: &[&str]) {
    assert!(is_mounted(mnt).unwrap(), "{} is not mounted", mnt.display());
    assert_eq!(
        std::fs::read(mnt.join("etc/base.conf")).unwrap(),
        b"base=1\n"
    );
    assert_eq!(
        std::fs::read(mnt.join("var/lib/dpkg/status")).unwrap(),
        STATUS
    );
    assert_eq!(binds(mnt), sorted(shine));
}

fn check_gone(mnt: &Path) {
    assert!(!is_mounted(mnt).unwrap(), "{} still mounted", mnt.display());
    assert!(mounts_below(mnt).unwrap().is_empty(), "mounts left below");
}

#[test]
fn mount_fuse3_finds_packagefs_on_path_and_passes_the_options() {
    let s = ShineRoot::new();
    let (dir, mnt, _) = PackagefsMount::mount_dir();
    let _guard = MountGuard::new(&mnt);
    let bin_dir = bin_path("packagefs").parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // What mount(8) runs for `mount -t fuse.packagefs ROOT MNT -o ...`
    // (mount(8) adds `-t`; mount.fuse3 adds dev,suid as root).
    run(Command::new("mount.fuse3")
        .env("PATH", path)
        .arg(s.root())
        .arg(&mnt)
        .arg("-o")
        .arg("ro,shine_through=var:tmp,noauto,user,_netdev,nofail,x-systemd.automount,defaults,rw,relatime")
        .args(["-t", "fuse.packagefs"]));
    check_tree(&mnt, &["var", "tmp"]);
    std::fs::write(mnt.join("var/x"), b"x").unwrap();
    assert!(s.root().join("data/var/x").is_file());
    run(Command::new("umount").arg("-R").arg(&mnt));
    check_gone(&mnt);
    drop(dir);
}

#[test]
fn mount_8_runs_the_named_program() {
    let s = ShineRoot::new();
    let (dir, mnt, _) = PackagefsMount::mount_dir();
    let _guard = MountGuard::new(&mnt);
    let source = format!("{}#{}", bin_path("packagefs").display(), s.root().display());
    run(Command::new("mount")
        .args(["-t", "fuse"])
        .arg(&source)
        .arg(&mnt)
        .args([
            "-o",
            "ro,nosuid,nodev,allow_other,shine_through=var:tmp:run",
        ]));
    check_tree(&mnt, &["var", "tmp", "run"]);
    run(Command::new("umount").arg("-R").arg(&mnt));
    check_gone(&mnt);
    drop(dir);
}

#[test]
fn fstab_lines_mount_with_mount_dash_t_and_unmount_with_umount() {
    let s = ShineRoot::new();
    let (dir, plain, _) = PackagefsMount::mount_dir();
    let shining = dir.path().join("s");
    std::fs::create_dir(&shining).unwrap();
    let _g1 = MountGuard::new(&plain);
    let _g2 = MountGuard::new(&shining);
    let source = format!("{}#{}", bin_path("packagefs").display(), s.root().display());
    let fstab = dir.path().join("fstab");
    std::fs::write(
        &fstab,
        format!(
            "# packagefs, as in /etc/fstab\n\
             {source} {} fuse ro,nosuid,nodev,noauto,nofail,x-systemd.requires-mounts-for=/ 0 0\n\
             {source} {} fuse ro,allow_other,shine_through=var:tmp,nofail,_netdev 0 0\n",
            plain.display(),
            shining.display()
        ),
    )
    .unwrap();
    run(Command::new("mount").arg("-T").arg(&fstab).arg(&plain));
    check_tree(&plain, &[]);
    run(Command::new("umount").arg(&plain));
    check_gone(&plain);

    run(Command::new("mount").arg("-T").arg(&fstab).arg(&shining));
    check_tree(&shining, &["var", "tmp"]);
    // A plain umount cannot take a mount with mounts on it away...
    let busy = Command::new("umount").arg(&shining).output().unwrap();
    assert!(!busy.status.success(), "umount without -R succeeded");
    check_tree(&shining, &["var", "tmp"]);
    // ...umount -R can.
    run(Command::new("umount").arg("-R").arg(&shining));
    check_gone(&shining);
    drop(dir);
}

/// `mount -t fuse.packagefs` and a `fuse.packagefs` fstab line through
/// mount(8) for real, with `packagefs` where mount.fuse3's shell finds it:
/// in a private mount namespace (`unshare -m`) whose `/usr/local/bin` is the
/// build directory, so the machine's own stays untouched. The script
/// unmounts recursively on any exit, which also ends the namespace.
#[test]
fn fuse_packagefs_type_through_mount_8_in_a_private_namespace() {
    let s = ShineRoot::new();
    let (dir, mnt, _) = PackagefsMount::mount_dir();
    let _guard = MountGuard::new(&mnt);
    let bin_dir = bin_path("packagefs").parent().unwrap().to_path_buf();
    let root = s.root();
    let fstab = dir.path().join("fstab");
    std::fs::write(
        &fstab,
        format!(
            "{} {} fuse.packagefs ro,shine_through=var:tmp,nofail,noauto,x-systemd.automount 0 0\n",
            root.display(),
            mnt.display()
        ),
    )
    .unwrap();
    let script = r#"set -e
trap 'umount -R -l "$MNT" 2>/dev/null || true' EXIT
mount --bind "$BIN" /usr/local/bin
mount -t fuse.packagefs "$ROOT" "$MNT" -o ro,shine_through=var:tmp,noauto,_netdev
test "$(cat "$MNT/etc/base.conf")" = base=1
findmnt -n -o TARGET "$MNT/var"
echo one > "$MNT/var/from-type"
umount -R "$MNT"
mount -T "$FSTAB" "$MNT"
findmnt -n -o TARGET "$MNT/tmp"
echo two > "$MNT/var/from-fstab"
umount -R "$MNT"
echo done"#;
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script])
        .env("BIN", &bin_dir)
        .env("ROOT", &root)
        .env("MNT", &mnt)
        .env("FSTAB", &fstab)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("done"),
        "script failed ({}): {stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("{}/var", mnt.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{}/tmp", mnt.display())),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(root.join("data/var/from-type")).unwrap(),
        b"one\n"
    );
    assert_eq!(
        std::fs::read(root.join("data/var/from-fstab")).unwrap(),
        b"two\n"
    );
    drop(dir);
}
