//! Test helpers: where the golden fixtures are, reading their
//! `*.expected.jsonl`, and listing an extracted tree in the same shape.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// The golden fixtures directory: `$PACKAGEFS_FIXTURES`, or `shared/fixtures`
/// beside the workspace.
pub fn fixtures() -> PathBuf {
    let dir = std::env::var_os("PACKAGEFS_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"));
    assert!(
        dir.is_dir(),
        "golden fixtures not found at {}; set PACKAGEFS_FIXTURES to the fixtures directory \
         (by default ../shared/fixtures beside the workspace)",
        dir.display()
    );
    dir
}

/// Every golden `*.hpkg`, sorted.
pub fn golden_packages() -> Vec<PathBuf> {
    let root = fixtures();
    let mut out = Vec::new();
    for sub in ["haiku", "haiku-tool"] {
        for e in fs::read_dir(root.join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "hpkg") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A `*.expected.jsonl` as path -> entry.
pub fn expected(pkg: &Path) -> BTreeMap<String, Value> {
    let path = pkg.with_extension("expected.jsonl");
    fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["path"].as_str().unwrap().to_string(), v["entry"].clone())
        })
        .collect()
}

/// List a tree on disk in the shape of `*.expected.jsonl`: type, mode bits
/// (`& 0o7777`, octal), size of files, sha256 of content, symlink target, and
/// `user.*` extended attributes (prefix stripped) with the sha256 of their
/// values. Symlinks are not followed.
pub fn list_tree(root: &Path) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    list_dir(root, "", &mut out);
    out
}

fn list_dir(dir: &Path, prefix: &str, out: &mut BTreeMap<String, Value>) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let path = e.path();
        let rel = format!("{prefix}{}", e.file_name().to_string_lossy());
        let meta = fs::symlink_metadata(&path).unwrap();
        let ft = meta.file_type();
        let (kind, size, sha, link) = if ft.is_symlink() {
            let target = fs::read_link(&path).unwrap();
            ("symlink", 0, Value::Null, json!(target.to_string_lossy()))
        } else if ft.is_dir() {
            ("dir", 0, Value::Null, Value::Null)
        } else {
            let data = fs::read(&path).unwrap();
            ("file", meta.len(), json!(sha256_hex(&data)), Value::Null)
        };
        let mut entry = json!({
            "type": kind,
            "mode": format!("{:o}", meta.permissions().mode() & 0o7777),
            "size": size,
            "sha256": sha,
            "link": link,
        });
        let mut xattrs = Map::new();
        for name in xattr::list(&path).unwrap() {
            let name = name.to_string_lossy().into_owned();
            if let Some(short) = name.strip_prefix("user.") {
                let value = xattr::get(&path, &name).unwrap().unwrap_or_default();
                xattrs.insert(short.to_string(), json!(sha256_hex(&value)));
            }
        }
        if !xattrs.is_empty() {
            entry["xattrs"] = Value::Object(xattrs);
        }
        out.insert(rel.clone(), entry);
        if ft.is_dir() {
            list_dir(&path, &format!("{rel}/"), out);
        }
    }
}
