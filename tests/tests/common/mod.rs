//! Helpers shared by the `mount_*` tests until the shared harness in
//! `packagefs_tests` lands: locating the fixtures and the `packagefs`
//! binary, a mount guard that always unmounts, and listings of a mounted
//! tree in the format of the golden `*.expected.jsonl` files.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Linux's limit for one extended attribute value.
pub const XATTR_MAX: usize = 65536;

/// The golden fixtures directory.
pub fn fixtures() -> PathBuf {
    let dir = std::env::var_os("PACKAGEFS_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"));
    assert!(
        dir.is_dir(),
        "golden fixtures not found at {}; set PACKAGEFS_FIXTURES",
        dir.display()
    );
    dir
}

/// Every golden `.hpkg`, sorted.
pub fn golden_packages() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in ["haiku", "haiku-tool"] {
        for e in std::fs::read_dir(fixtures().join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|e| e == "hpkg") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A golden package by file stem (`nested-zstd`).
pub fn golden(stem: &str) -> PathBuf {
    golden_packages()
        .into_iter()
        .find(|p| p.file_stem().is_some_and(|s| s == stem))
        .unwrap_or_else(|| panic!("no golden package {stem}"))
}

/// The `packagefs` binary: `$PACKAGEFS_BIN`, or `packagefs` next to the
/// directory holding this test executable (`target/<profile>/`).
pub fn bin() -> PathBuf {
    if let Some(p) = std::env::var_os("PACKAGEFS_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let p = profile_dir.join("packagefs");
    assert!(
        p.is_file(),
        "{} not found: build it first (cargo build -p packagefs) or set PACKAGEFS_BIN",
        p.display()
    );
    p
}

/// A mounted packagefs, unmounted on drop (also when a test fails).
pub struct Mount {
    dir: tempfile::TempDir,
    log: PathBuf,
    mounted: bool,
}

impl Mount {
    /// Mount `sources` with `packagefs mount SOURCES... MOUNTPOINT ARGS...`.
    pub fn new(sources: &[&Path], args: &[&str]) -> Mount {
        Self::try_new(sources, args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Mount::new`], returning the command's failure message.
    pub fn try_new(sources: &[&Path], args: &[&str]) -> Result<Mount, String> {
        let dir = tempfile::Builder::new()
            .prefix("pfs-mnt")
            .tempdir()
            .unwrap();
        let log = dir.path().join("daemon.log");
        let mnt = dir.path().join("m");
        std::fs::create_dir(&mnt).unwrap();
        let out = Command::new(bin())
            .arg("mount")
            .args(sources)
            .arg(&mnt)
            .arg("--log-file")
            .arg(&log)
            .args(args)
            .output()
            .unwrap();
        if !out.status.success() {
            return Err(format!(
                "packagefs mount failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let m = Mount {
            dir,
            log,
            mounted: true,
        };
        assert!(m.is_mounted(), "mount returned before the mount was there");
        Ok(m)
    }

    /// Take over a mount made at `<dir>/m` by other means.
    pub fn adopt(dir: tempfile::TempDir, log: PathBuf) -> Mount {
        Mount {
            dir,
            log,
            mounted: true,
        }
    }

    /// The mount point.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("m")
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the mount point is in the mount table.
    pub fn is_mounted(&self) -> bool {
        is_mounted(&self.path())
    }

    /// Unmount now (with `packagefs unmount`), checking it worked.
    pub fn unmount(mut self) {
        let out = Command::new(bin())
            .arg("unmount")
            .arg(self.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "unmount failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!self.is_mounted());
        self.mounted = false;
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let p = self.path();
        if !self.mounted || !is_mounted(&p) {
            return;
        }
        let ok = Command::new(bin())
            .arg("unmount")
            .arg(&p)
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok || is_mounted(&p) {
            let _ = Command::new("umount").arg("-l").arg(&p).output();
        }
    }
}

/// Whether `path` is a mount point (per /proc/self/mountinfo).
pub fn is_mounted(path: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let want = path.as_os_str().as_bytes();
    info.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .is_some_and(|m| unescape_mountinfo(m) == want)
    })
}

fn unescape_mountinfo(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Hex sha256.
pub fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A golden listing: path -> entry. The top-level `.PackageInfo` is left
/// out: the mount hides it.
pub fn expected(pkg: &Path) -> BTreeMap<String, Value> {
    let path = pkg.with_extension("expected.jsonl");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["path"].as_str().unwrap().to_string(), v["entry"].clone())
        })
        .filter(|(p, _)| p != ".PackageInfo")
        .collect()
}

/// One node seen through the mount.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The listing entry (as in `*.expected.jsonl`).
    pub entry: Value,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// `user.packagefs.package`, if any.
    pub package: Option<String>,
}

/// Walk a mounted tree with ordinary `std::fs` calls and xattrs.
pub fn walk(root: &Path) -> BTreeMap<String, Seen> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_str().unwrap().to_string();
            let (entry, seen_package) = describe(&p);
            let md = std::fs::symlink_metadata(&p).unwrap();
            assert_eq!(
                e.file_type().unwrap(),
                md.file_type(),
                "{rel}: readdir type differs from lstat"
            );
            if md.is_dir() {
                stack.push(p.clone());
            }
            out.insert(
                rel,
                Seen {
                    entry,
                    uid: md.uid(),
                    gid: md.gid(),
                    package: seen_package,
                },
            );
        }
    }
    out
}

/// The listing entry of one path, and its `user.packagefs.package`.
pub fn describe(p: &Path) -> (Value, Option<String>) {
    let md = std::fs::symlink_metadata(p).unwrap();
    let ft = md.file_type();
    let mut xattrs = serde_json::Map::new();
    let mut package = None;
    for name in xattr::list(p).unwrap() {
        let value = xattr::get(p, &name).unwrap().unwrap();
        let name = name.to_str().unwrap().to_string();
        if name == "user.packagefs.package" {
            package = Some(String::from_utf8(value).unwrap());
            continue;
        }
        let short = name.strip_prefix("user.").expect("only user.* attributes");
        assert!(value.len() <= XATTR_MAX);
        xattrs.insert(short.to_string(), json!(sha256(&value)));
    }
    let (kind, size, sha, link) = if ft.is_dir() {
        ("dir", 0, Value::Null, Value::Null)
    } else if ft.is_symlink() {
        let target = std::fs::read_link(p).unwrap();
        assert_eq!(md.len(), target.as_os_str().len() as u64, "symlink size");
        ("symlink", 0, Value::Null, json!(target.to_str().unwrap()))
    } else {
        assert!(ft.is_file());
        let data = std::fs::read(p).unwrap();
        assert_eq!(data.len() as u64, md.len(), "{}: size", p.display());
        ("file", md.len(), json!(sha256(&data)), Value::Null)
    };
    let mut entry = json!({
        "type": kind,
        "mode": format!("{:o}", md.permissions().mode() & 0o7777),
        "size": size,
        "sha256": sha,
        "link": link,
    });
    if !xattrs.is_empty() {
        entry["xattrs"] = Value::Object(xattrs);
    }
    (entry, package)
}

/// Compare listings entry by entry, naming the first differences.
pub fn assert_same_listing(
    what: &str,
    got: &BTreeMap<String, Value>,
    want: &BTreeMap<String, Value>,
) {
    let mut diffs = Vec::new();
    for (path, w) in want {
        match got.get(path) {
            None => diffs.push(format!("missing {path}")),
            Some(g) if g != w => diffs.push(format!("{path}: got {g}, want {w}")),
            Some(_) => {}
        }
    }
    for path in got.keys().filter(|k| !want.contains_key(*k)) {
        diffs.push(format!("unexpected {path}"));
    }
    assert!(
        diffs.is_empty(),
        "{what}: {} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

/// `<name>-<version>` of a package, read with the format library.
pub fn package_label(pkg: &Path) -> String {
    let p = hpkg_format::Package::open(pkg).unwrap();
    format!("{}-{}", p.info().name, p.info().version)
}
