//! Helpers of the tests that mount a package root with shine-through
//! directories: a root whose base package has a Debian-like `/var`
//! skeleton, the mounts below a mount point, and a foreground daemon.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use packagefs_tests::{bin_path, mounts_below, write_package};

/// The content of `/var/lib/dpkg/status` in the base package.
pub const STATUS: &[u8] = b"Package: base\nStatus: install ok installed\n";

/// A scratch directory holding a package root (`root/`) and packages
/// built outside it (`in/`).
pub struct ShineRoot {
    pub dir: tempfile::TempDir,
}

impl ShineRoot {
    /// A root with state whose system layer holds the package `base`:
    /// `/var/lib/dpkg/status`, an empty `/var/log` (mode 0750), `/var/cache`
    /// with a symlink, `/etc/base.conf`, and `/run` as a *file* (which the
    /// shine-through directory must hide).
    pub fn new() -> ShineRoot {
        let dir = tempfile::Builder::new()
            .prefix("pfs-shine")
            .tempdir()
            .unwrap();
        std::fs::create_dir(dir.path().join("in")).unwrap();
        let s = ShineRoot { dir };
        let tree = s.dir.path().join("base-tree");
        std::fs::create_dir_all(tree.join("var/lib/dpkg")).unwrap();
        std::fs::create_dir_all(tree.join("var/log")).unwrap();
        std::fs::create_dir_all(tree.join("var/cache")).unwrap();
        std::fs::create_dir_all(tree.join("etc")).unwrap();
        std::fs::write(tree.join("var/lib/dpkg/status"), STATUS).unwrap();
        std::os::unix::fs::symlink("../lib/dpkg/status", tree.join("var/cache/status")).unwrap();
        std::fs::write(tree.join("etc/base.conf"), b"base=1\n").unwrap();
        std::fs::write(tree.join("run"), b"not a directory\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tree.join("var/log"), std::fs::Permissions::from_mode(0o750))
            .unwrap();
        let pkg = s.root().join("system/packages/base-1.0-1-any.hpkg");
        std::fs::create_dir_all(pkg.parent().unwrap()).unwrap();
        write_package(&tree, "base", &pkg, hpkg_format::Compression::Zstd);
        state::Root::init(s.root()).unwrap();
        s
    }

    /// The package root.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// A package `name` outside the root with the one file `/data/<name>.txt`.
    pub fn package(&self, name: &str) -> PathBuf {
        let tree = self.dir.path().join(format!("{name}-tree"));
        std::fs::create_dir_all(tree.join("data")).unwrap();
        std::fs::write(tree.join(format!("data/{name}.txt")), name.as_bytes()).unwrap();
        let out = self
            .dir
            .path()
            .join("in")
            .join(format!("{name}-1.0-1-any.hpkg"));
        write_package(&tree, name, &out, hpkg_format::Compression::Zstd);
        out
    }
}

/// The mount points below `mountpoint`, as sorted strings relative to it.
pub fn binds(mountpoint: &Path) -> Vec<String> {
    let mut v: Vec<String> = mounts_below(mountpoint)
        .unwrap()
        .iter()
        .map(|p| {
            p.strip_prefix(
                std::fs::canonicalize(mountpoint.parent().unwrap())
                    .unwrap()
                    .join(mountpoint.file_name().unwrap()),
            )
            .unwrap()
            .to_string_lossy()
            .into_owned()
        })
        .collect();
    v.sort();
    v
}

/// `names` sorted, as [`binds`] returns them.
pub fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Start `packagefs mount ROOT MNT --foreground ARGS` with its log in `log`.
pub fn foreground(root: &Path, mountpoint: &Path, log: &Path, args: &[&str]) -> Child {
    Command::new(bin_path("packagefs"))
        .arg("mount")
        .arg(root)
        .arg(mountpoint)
        .arg("--foreground")
        .arg("--log-file")
        .arg(log)
        .args(args)
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

/// Send `signal` to process `pid`.
pub fn kill(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{signal} {pid} failed");
}

/// Wait up to `secs` seconds for `child` to exit; its status.
pub fn wait_exit(child: &mut Child, secs: u64) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A daemon process killed (and reaped) when dropped if it still runs.
/// Declare it before the [`packagefs_tests::MountGuard`] of its mount, so
/// that the mount goes first.
pub struct Daemon(pub Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
