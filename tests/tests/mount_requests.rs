//! The mount counts the FUSE requests it answers, by kind: the root's
//! hidden attribute `user.packagefs.requests` tells them at any time (no
//! listing shows it), so a benchmark can explain a walk in round trips.

use packagefs_tests::{golden_package, PackagefsMount};

/// The count of `kind` in a `total N: kind N, ...` line (0 when absent).
fn count(line: &str, kind: &str) -> u64 {
    let Some((_, kinds)) = line.split_once(": ") else {
        return 0;
    };
    kinds
        .split(", ")
        .filter_map(|p| p.split_once(' '))
        .find(|(k, _)| *k == kind)
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0)
}

fn requests(m: &PackagefsMount) -> String {
    let v = xattr::get(m.path(), "user.packagefs.requests")
        .unwrap()
        .expect("the root has no user.packagefs.requests");
    String::from_utf8(v).unwrap()
}

#[test]
fn a_walk_is_counted_by_kind() {
    let m = PackagefsMount::new(&[&golden_package("nested-zstd")], &[]);
    let before = requests(&m);
    assert!(before.starts_with("total "), "{before}");
    let mut seen = 0;
    let mut stack = vec![m.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            seen += 1;
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let _ = std::fs::symlink_metadata(e.path()).unwrap();
            }
        }
    }
    assert!(seen > 3);
    let after = requests(&m);
    let total = |l: &str| -> u64 {
        l.trim_start_matches("total ")
            .split(':')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(total(&after) > total(&before), "{before} -> {after}");
    // Listing the tree asked for directory entries; each getxattr of the
    // counts is one more.
    assert!(
        count(&after, "readdirplus") + count(&after, "readdir") > 0,
        "{after}"
    );
    assert_eq!(
        count(&after, "getxattr"),
        count(&before, "getxattr") + 1,
        "{after}"
    );
    // Hidden: the root lists no attributes.
    assert!(xattr::list(m.path()).unwrap().next().is_none());
}
