//! Mounting with the real `packagefs` binary, and what a [`Listing`] does not
//! show of a mount.
//!
//! * [`PackagefsMount`] runs `packagefs mount SOURCES… MOUNTPOINT` (which
//!   returns once the mount is up) on a fresh temporary mount point, keeps the
//!   daemon's log, and unmounts through a [`MountGuard`] however the test ends;
//! * [`golden_packages`], [`golden_package`] and [`golden_mount_listing`]: the
//!   golden packages, and what a mount of one must list;
//! * [`walk_nodes`]: owner, group and `user.packagefs.package` of every node of
//!   a mounted tree, checking on the way that `readdir` and `lstat` agree;
//! * [`write_package`]: a package made with the format library's writer from a
//!   directory tree, for tests that need packages of their own.
//!
//! The functions panic with a clear message where a test could not go on (a
//! missing fixture, a mount that fails); each says so.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::listing::{read_expected, Listing};
use crate::mount::{is_mounted, MountGuard};
use crate::paths::{bin_path, require_fixtures};

/// The name of the extended attribute packagefs adds to every node, naming
/// the package that provides it.
pub const PACKAGE_XATTR_FULL: &str = "user.packagefs.package";

/// Linux's limit for one extended attribute value.
pub const XATTR_MAX: usize = 65536;

/// Every golden `.hpkg` (the ones under `haiku/` and `haiku-tool/` of the
/// fixtures), sorted by path.
///
/// # Panics
///
/// When the fixtures are missing or cannot be read.
pub fn golden_packages() -> Vec<PathBuf> {
    let fixtures = require_fixtures();
    let mut out = Vec::new();
    for sub in ["haiku", "haiku-tool"] {
        let dir = fixtures.join(sub);
        let entries =
            fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
        for entry in entries {
            let path = entry
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
                .path();
            if path.extension().is_some_and(|e| e == "hpkg") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The golden package whose file stem is `stem` (`"nested-zstd"`).
///
/// # Panics
///
/// When there is no such package.
pub fn golden_package(stem: &str) -> PathBuf {
    golden_packages()
        .into_iter()
        .find(|p| p.file_stem().is_some_and(|s| s == stem))
        .unwrap_or_else(|| {
            panic!(
                "no golden package {stem} in {}",
                require_fixtures().display()
            )
        })
}

/// What a mount of the golden package `pkg` alone must list: its
/// `*.expected.jsonl` without the top-level `.PackageInfo` (the mount hides
/// it), and without the `packagefs.package` attribute (compare with a listing
/// made with `skip_package_xattr`).
///
/// # Panics
///
/// When the golden listing cannot be read.
pub fn golden_mount_listing(pkg: &Path) -> Listing {
    let path = pkg.with_extension("expected.jsonl");
    let mut listing = read_expected(&path).unwrap_or_else(|e| panic!("{e}"));
    listing.remove(".PackageInfo");
    listing
}

/// `<name>-<version>` of a package, as `user.packagefs.package` begins.
///
/// # Panics
///
/// When the package cannot be opened.
pub fn package_label(pkg: &Path) -> String {
    let p = hpkg_format::Package::open(pkg).unwrap_or_else(|e| panic!("{e}"));
    format!("{}-{}", p.info().name, p.info().version)
}

/// A minimal valid `.PackageInfo` text for a package called `name`, version
/// `1.0-1`, architecture `any`.
pub fn package_info_text(name: &str) -> String {
    format!(
        "name {name}\nversion 1.0-1\narchitecture any\nsummary \"test package {name}\"\n\
         description \"made by the packagefs tests\"\npackager \"tests <tests@example.com>\"\n\
         vendor tests\ncopyrights \"none\"\nlicenses MIT\nprovides {{ {name} = 1.0-1 }}\n"
    )
}

/// Writes the tree under `dir` as the package `out`, called `name` (see
/// [`package_info_text`]), with `compression` at the writer's default level.
/// Returns the label `user.packagefs.package` starts with: `name-1.0-1`.
///
/// # Panics
///
/// When the package cannot be written.
pub fn write_package(
    dir: &Path,
    name: &str,
    out: &Path,
    compression: hpkg_format::Compression,
) -> String {
    let info = hpkg_format::info_text::parse(&package_info_text(name))
        .unwrap_or_else(|e| panic!("package info for {name}: {e}"));
    let options = hpkg_format::WriteOptions {
        compression,
        ..hpkg_format::WriteOptions::default()
    };
    let mut warnings = Vec::new();
    hpkg_format::create_from_dir(dir, &info, out, &options, &mut |w| {
        warnings.push(w.to_owned())
    })
    .unwrap_or_else(|e| panic!("writing {} from {}: {e}", out.display(), dir.display()));
    assert!(
        warnings.is_empty(),
        "writing {}: unexpected warnings {warnings:?}",
        out.display()
    );
    format!("{name}-1.0-1")
}

/// A `packagefs` mount on a temporary mount point, unmounted when dropped.
///
/// The mount point is `<tempdir>/m` and the daemon logs to
/// `<tempdir>/daemon.log`. Dropping unmounts with the [`MountGuard`] (lazily,
/// with `fusermount3`), before the temporary directory goes.
#[derive(Debug)]
pub struct PackagefsMount {
    // Declared first so that it drops first: the mount goes before the
    // directory holding the mount point.
    guard: MountGuard,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl PackagefsMount {
    /// Mounts `sources` with `packagefs mount SOURCES… MOUNTPOINT --log-file
    /// LOG ARGS…`.
    ///
    /// # Panics
    ///
    /// When the mount fails, with the daemon's message.
    pub fn new(sources: &[&Path], args: &[&str]) -> PackagefsMount {
        Self::try_new(sources, args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`PackagefsMount::new`], returning the command's failure message
    /// instead of panicking.
    ///
    /// # Panics
    ///
    /// When the temporary directory cannot be made, or when `packagefs mount`
    /// succeeds but the mount point is not mounted.
    pub fn try_new(sources: &[&Path], args: &[&str]) -> Result<PackagefsMount, String> {
        let (dir, mountpoint, log) = Self::mount_dir();
        let output = Command::new(bin_path("packagefs"))
            .arg("mount")
            .args(sources)
            .arg(&mountpoint)
            .arg("--log-file")
            .arg(&log)
            .args(args)
            .output()
            .map_err(|e| format!("cannot run packagefs: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "packagefs mount failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let mount = Self::adopt(dir, log);
        assert!(
            mount.is_mounted(),
            "packagefs mount returned before the mount was there"
        );
        Ok(mount)
    }

    /// A fresh temporary directory with an empty mount point `m` in it:
    /// (directory, mount point, log file path), for mounts made by other
    /// means and then [adopted](PackagefsMount::adopt).
    ///
    /// # Panics
    ///
    /// When the directory cannot be made.
    pub fn mount_dir() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::Builder::new()
            .prefix("pfs-mnt")
            .tempdir()
            .unwrap_or_else(|e| panic!("cannot make a temporary directory: {e}"));
        let mountpoint = dir.path().join("m");
        fs::create_dir(&mountpoint)
            .unwrap_or_else(|e| panic!("cannot make {}: {e}", mountpoint.display()));
        let log = dir.path().join("daemon.log");
        (dir, mountpoint, log)
    }

    /// Takes over the mount at `<dir>/m`, made by other means, logging to
    /// `log`.
    pub fn adopt(dir: tempfile::TempDir, log: PathBuf) -> PackagefsMount {
        PackagefsMount {
            guard: MountGuard::new(dir.path().join("m")),
            log,
            dir,
        }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.guard.mountpoint()
    }

    /// The directory holding the mount point and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The daemon's log so far (empty if there is none).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The daemon's log once a line of it satisfies `line` (polled every
    /// 20 ms), for what the daemon does after the mount is ready.
    ///
    /// # Panics
    ///
    /// When no line does within 30 seconds, with `what` and the log.
    pub fn log_when(&self, what: &str, line: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let log = self.log();
            if log.lines().any(&line) {
                return log;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no log line of {what} within 30 s:\n{log}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Whether the mount point is in the mount table.
    ///
    /// # Panics
    ///
    /// When `/proc/self/mountinfo` cannot be read.
    pub fn is_mounted(&self) -> bool {
        is_mounted(self.path()).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Unmounts now with `packagefs unmount`, checking that it succeeds and
    /// that the mount is gone.
    ///
    /// # Panics
    ///
    /// When the unmount fails.
    pub fn unmount(self) {
        let output = Command::new(bin_path("packagefs"))
            .arg("unmount")
            .arg(self.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run packagefs: {e}"));
        assert!(
            output.status.success(),
            "packagefs unmount failed ({}): {}\nlog:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
        assert!(!self.is_mounted(), "still mounted after packagefs unmount");
        let PackagefsMount { guard, .. } = self;
        guard
            .unmount()
            .unwrap_or_else(|e| panic!("after packagefs unmount: {e}"));
    }
}

/// What a [`Listing`] leaves out of a node of a mounted tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeMeta {
    /// The node's owner.
    pub uid: u32,
    /// The node's group.
    pub gid: u32,
    /// Its `user.packagefs.package` attribute, if it has one.
    pub package: Option<String>,
}

/// Owner, group and package attribute of every node under `root` (not
/// listed itself), by path relative to `root`, `/`-separated.
///
/// On the way it checks what a listing does not: that the type `readdir`
/// gives is the type `lstat` gives, that a symlink's `lstat` size is the
/// length of its target, and that every extended attribute is in the `user.`
/// namespace with a value Linux can hold (at most [`XATTR_MAX`] bytes).
///
/// # Panics
///
/// When the tree cannot be read, a name or attribute value is not UTF-8, or
/// one of those checks fails.
pub fn walk_nodes(root: &Path) -> BTreeMap<String, NodeMeta> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries =
            fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
            let path = entry.path();
            let relative = path
                .strip_prefix(root)
                .ok()
                .and_then(Path::to_str)
                .unwrap_or_else(|| panic!("{}: not a UTF-8 path under the root", path.display()))
                .to_owned();
            let meta = fs::symlink_metadata(&path)
                .unwrap_or_else(|e| panic!("cannot lstat {}: {e}", path.display()));
            let readdir_type = entry
                .file_type()
                .unwrap_or_else(|e| panic!("{relative}: no readdir type: {e}"));
            assert_eq!(
                readdir_type,
                meta.file_type(),
                "{relative}: readdir type differs from lstat"
            );
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&path)
                    .unwrap_or_else(|e| panic!("cannot readlink {}: {e}", path.display()));
                assert_eq!(
                    meta.len(),
                    target.as_os_str().len() as u64,
                    "{relative}: symlink size is not its target's length"
                );
            }
            if meta.is_dir() {
                stack.push(path.clone());
            }
            let names = xattr::list(&path).unwrap_or_else(|e| panic!("{relative}: listxattr: {e}"));
            for name in names {
                assert!(
                    name.as_encoded_bytes().starts_with(b"user."),
                    "{relative}: attribute {name:?} outside the user. namespace"
                );
                let value = xattr::get(&path, &name)
                    .unwrap_or_else(|e| panic!("{relative}: getxattr {name:?}: {e}"))
                    .unwrap_or_else(|| panic!("{relative}: listed attribute {name:?} is missing"));
                assert!(
                    value.len() <= XATTR_MAX,
                    "{relative}: attribute {name:?} has {} bytes",
                    value.len()
                );
            }
            let package = xattr::get(&path, PACKAGE_XATTR_FULL)
                .unwrap_or_else(|e| panic!("{relative}: getxattr: {e}"))
                .map(|v| {
                    String::from_utf8(v)
                        .unwrap_or_else(|e| panic!("{relative}: package attribute: {e}"))
                });
            out.insert(
                relative,
                NodeMeta {
                    uid: meta.uid(),
                    gid: meta.gid(),
                    package,
                },
            );
        }
    }
    out
}
