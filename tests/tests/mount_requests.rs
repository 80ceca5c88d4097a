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

/// A walk that stats every entry of a directory too large for one listing
/// reply asks for no LOOKUP (every listing request carries attributes), and
/// opening and reading files again and again asks for no OPEN, RELEASE or
/// READ once the kernel holds their pages (`FUSE_NO_OPEN_SUPPORT`, kept
/// page cache).
#[test]
fn a_cold_walk_asks_no_lookups_and_reopened_files_no_opens() {
    let src = tempfile::tempdir().unwrap();
    let big = src.path().join("usr/share/big");
    std::fs::create_dir_all(&big).unwrap();
    // About 140 bytes of reply per entry: 1,000 entries take several.
    for i in 0..1000 {
        std::fs::write(
            big.join(format!(
                "a-rather-long-file-name-so-that-the-listing-spans-replies-{i:04}"
            )),
            format!("file {i}\n"),
        )
        .unwrap();
    }
    let pkg = src.path().join("big.hpkg");
    let tree = src.path().join("tree");
    std::fs::rename(src.path().join("usr"), {
        std::fs::create_dir_all(&tree).unwrap();
        tree.join("usr")
    })
    .unwrap();
    packagefs_tests::write_package(&tree, "big", &pkg, hpkg_format::Compression::Zstd);
    let m = PackagefsMount::new(&[&pkg], &[]);
    let before = requests(&m);
    // Down from the root by listings only: their entries come with
    // attributes, so the path needs no lookups either.
    for dir in ["", "usr", "usr/share"] {
        assert!(std::fs::read_dir(m.path().join(dir)).unwrap().count() > 0);
    }
    let mut sizes = 0u64;
    for e in std::fs::read_dir(m.path().join("usr/share/big")).unwrap() {
        sizes += std::fs::symlink_metadata(e.unwrap().path()).unwrap().len();
    }
    assert_eq!(
        sizes,
        (0..1000)
            .map(|i| format!("file {i}\n").len() as u64)
            .sum::<u64>()
    );
    let walked = requests(&m);
    assert_eq!(
        count(&walked, "lookup"),
        count(&before, "lookup"),
        "{walked}"
    );
    assert!(
        count(&walked, "readdirplus") >= 3,
        "several replies: {walked}"
    );
    assert_eq!(count(&walked, "readdir"), 0, "{walked}");

    let file = m
        .path()
        .join("usr/share/big/a-rather-long-file-name-so-that-the-listing-spans-replies-0007");
    assert_eq!(std::fs::read(&file).unwrap(), b"file 7\n");
    let first = requests(&m);
    for _ in 0..20 {
        assert_eq!(std::fs::read(&file).unwrap(), b"file 7\n");
    }
    let again = requests(&m);
    // The first open may be asked (answered ENOSYS once for good); none after.
    assert!(count(&first, "open") <= 1, "{first}");
    for kind in ["open", "release", "read", "lookup"] {
        assert_eq!(
            count(&again, kind),
            count(&first, kind),
            "{kind}: {first} -> {again}"
        );
    }
}
