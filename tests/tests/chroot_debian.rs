//! Debian software run from a packagefs root under `chroot`.
//!
//! * `busybox_from_an_imported_deb_runs_under_chroot` (always): `apt-get
//!   download busybox-static`, `pkgctl import-deb` it, `pkgctl add` it to a
//!   fresh root, mount the root with shine-through directories and run
//!   commands of the packaged busybox under `chroot`: their output, a write
//!   that lands in `ROOT/data/tmp`, and a write to the packaged tree that
//!   the read-only mount refuses.
//! * `debian_minbase_root_runs_python` (opt-in, slow: set
//!   `PACKAGEFS_DEBIAN_ROOT=1`): `bench/debian-root.sh` with `CHECK_ONLY=1`:
//!   debootstrap, import every .deb with `--merge-usr`, add them all
//!   without `--force`, mount with shine-through, run python3 and bash from
//!   the chroot and check `/usr/bin` against debootstrap's tree.

use std::path::Path;
use std::process::Command;

use packagefs_tests::{bin_path, debs, mounts_below, workspace_root, PackagefsMount};

/// Run `cmd`, panic with its output unless it succeeds; return stdout.
fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pkgctl() -> Command {
    Command::new(bin_path("pkgctl"))
}

/// `chroot MNT /bin/busybox ARGS...`.
fn busybox(mnt: &Path, args: &[&str]) -> std::process::Output {
    Command::new("chroot")
        .arg(mnt)
        .arg("/bin/busybox")
        .args(args)
        .output()
        .expect("cannot run chroot")
}

#[test]
fn busybox_from_an_imported_deb_runs_under_chroot() {
    let deb = debs::require(&["busybox-static"]).remove(0);
    let scratch = tempfile::Builder::new()
        .prefix("pfs-chroot")
        .tempdir()
        .unwrap();
    let out = scratch.path().join("hpkg");
    std::fs::create_dir(&out).unwrap();
    run(pkgctl().arg("import-deb").arg(&deb).arg("-o").arg(&out));
    let hpkgs: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "hpkg"))
        .collect();
    assert_eq!(hpkgs.len(), 1, "one .hpkg from one .deb: {hpkgs:?}");

    let root = scratch.path().join("root");
    run(pkgctl().arg("init").arg(&root));
    run(pkgctl()
        .arg("-R")
        .arg(&root)
        .args(["add", "--layer", "system"])
        .arg(&hpkgs[0]));
    let listed = run(pkgctl().arg("-R").arg(&root).arg("list"));
    assert!(listed.contains("busybox_static"), "pkgctl list:\n{listed}");

    let m = PackagefsMount::new(&[&root], &["--shine-through", "tmp,var"]);
    let mnt = m.path().to_path_buf();
    let mnt = mnt.as_path();
    let binds = mounts_below(mnt).unwrap();
    for name in ["tmp", "var"] {
        assert!(
            binds.iter().any(|b| b == &mnt.join(name)),
            "{name} is not bind-mounted: {binds:?}"
        );
    }

    // The packaged program runs, its applets work, and it sees the tree.
    let got = busybox(mnt, &["sh", "-c", "echo $((6 * 7)); busybox ls /bin"]);
    assert!(
        got.status.success(),
        "busybox sh failed: {}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&got.stdout), "42\nbusybox\n");

    // Its version string names the Debian version the package was imported from.
    let info = run(pkgctl().arg("info").arg("--json").arg(&hpkgs[0]));
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    let deb_version = run(Command::new("dpkg-deb").arg("-f").arg(&deb).arg("Version"));
    assert_eq!(
        info["debian"]["version"].as_str(),
        Some(deb_version.trim()),
        "pkgctl info --json: {info}"
    );
    let upstream = deb_version
        .trim()
        .split_once(':')
        .map_or(deb_version.trim(), |(_, v)| v)
        .split('-')
        .next()
        .unwrap()
        .to_string();
    let banner = busybox(mnt, &["--help"]);
    let banner = String::from_utf8_lossy(&banner.stdout).into_owned()
        + &String::from_utf8_lossy(&banner.stderr);
    assert!(
        banner.contains(&format!("BusyBox v{upstream}")),
        "busybox --help does not name v{upstream}:\n{banner}"
    );

    // Runtime data is writable through the shine-through directory...
    let wrote = busybox(
        mnt,
        &[
            "sh",
            "-c",
            "echo from-chroot > /tmp/probe && busybox cat /tmp/probe",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&wrote.stdout), "from-chroot\n");
    assert_eq!(
        std::fs::read_to_string(root.join("data/tmp/probe")).unwrap(),
        "from-chroot\n"
    );
    // ...while the packaged tree is not.
    let refused = busybox(mnt, &["touch", "/bin/intruder"]);
    assert!(!refused.status.success(), "a write to /bin succeeded");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("Read-only file system"),
        "unexpected error: {}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(!root.join("data/bin").exists());

    m.unmount();
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mnt = mnt.to_string_lossy();
    let left: Vec<&str> = table.lines().filter(|l| l.contains(&*mnt)).collect();
    assert!(left.is_empty(), "mounts left after unmount: {left:?}");
}

#[test]
fn debian_minbase_root_runs_python() {
    if std::env::var_os("PACKAGEFS_DEBIAN_ROOT").is_none() {
        eprintln!(
            "skipped: set PACKAGEFS_DEBIAN_ROOT=1 to debootstrap bookworm, import it and run \
             python3 from a packagefs root (several minutes, needs the Debian archive)"
        );
        return;
    }
    let work = tempfile::Builder::new()
        .prefix("pfs-debian-root")
        .tempdir_in("/var/tmp")
        .unwrap();
    let mut cmd = Command::new("bash");
    cmd.arg(workspace_root().join("bench/debian-root.sh"))
        .arg(work.path())
        .env("CHECK_ONLY", "1")
        .current_dir(workspace_root());
    if let Ok(corpus) = std::env::var("CORPUS") {
        cmd.env("CORPUS", corpus);
    }
    let out = run(&mut cmd);
    assert!(
        out.contains("python3 printed 42"),
        "debian-root.sh said:\n{out}"
    );
}
