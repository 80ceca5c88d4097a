//! The reader against Haiku-built golden packages: every listing must equal its
//! `*.expected.jsonl` exactly (type, mode, size, sha256, link, xattrs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hpkg_format::{EntryKind, NoCache, Package};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Linux's limit for one extended attribute; listings leave larger ones out.
const XATTR_MAX: u64 = 65536;

fn fixtures() -> PathBuf {
    let dir = std::env::var_os("PACKAGEFS_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"));
    assert!(
        dir.is_dir(),
        "golden fixtures not found at {}; set PACKAGEFS_FIXTURES (CI has ../shared beside the checkout)",
        dir.display()
    );
    dir
}

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn listing(pkg: &Package) -> BTreeMap<String, Value> {
    let toc = pkg.toc();
    let mut out = BTreeMap::new();
    toc.walk(|path, id| {
        let e = toc.entry(id);
        let mut xattrs = serde_json::Map::new();
        for a in toc.attrs(id) {
            // Linux has no user.* attributes on symlinks, nor any over 64 KiB.
            if a.size() > XATTR_MAX || e.kind() == EntryKind::Symlink {
                continue;
            }
            let data = pkg.data_to_vec(toc.attr_data(a), &NoCache).unwrap();
            xattrs.insert(
                String::from_utf8_lossy(toc.attr_name(a)).into_owned(),
                json!(hex(&data)),
            );
        }
        let (sha, link) = match e.kind() {
            EntryKind::File => (
                json!(hex(&pkg.data_to_vec(toc.data(id), &NoCache).unwrap())),
                Value::Null,
            ),
            EntryKind::Symlink => (
                Value::Null,
                json!(String::from_utf8_lossy(toc.symlink_target(id))),
            ),
            EntryKind::Directory => (Value::Null, Value::Null),
        };
        let mut entry = json!({
            "type": e.kind().name(),
            "mode": format!("{:o}", e.mode()),
            "size": if e.kind() == EntryKind::File { e.size() } else { 0 },
            "sha256": sha,
            "link": link,
        });
        if !xattrs.is_empty() {
            entry["xattrs"] = Value::Object(xattrs);
        }
        out.insert(String::from_utf8_lossy(path).into_owned(), entry);
    });
    out
}

fn expected(path: &Path) -> BTreeMap<String, Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["path"].as_str().unwrap().to_string(), v["entry"].clone())
        })
        .collect()
}

#[test]
fn every_golden_package_lists_exactly() {
    let root = fixtures();
    let mut checked = 0;
    for sub in ["haiku", "haiku-tool"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for pkg_path in files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "hpkg"))
        {
            let pkg = Package::open(pkg_path).unwrap_or_else(|e| panic!("{e}"));
            let want = expected(&pkg_path.with_extension("expected.jsonl"));
            let got = listing(&pkg);
            for (path, w) in &want {
                assert_eq!(got.get(path), Some(w), "{}: {path}", pkg_path.display());
            }
            let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
            assert!(
                extra.is_empty(),
                "{}: unexpected entries {extra:?}",
                pkg_path.display()
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 11, "expected 11 golden packages");
}
