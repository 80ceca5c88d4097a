//! The union tree and the file-system operations over golden packages,
//! without mounting: lookups by path, shadow records, and reads at every
//! kind of offset compared with the format library's own reads.

use std::path::{Path, PathBuf};

use hpkg_format::{EntryKind, NoCache, Package};
use packagefs::fs::{FsConfig, FsError, Snapshot};
use packagefs::inodes::ROOT_INO;
use packagefs::plan::{SourcePackage, Tree};
use state::Layer;

fn fixture(rel: &str) -> PathBuf {
    let dir = std::env::var_os("PACKAGEFS_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"));
    dir.join(rel)
}

fn source(path: PathBuf, layer: Option<Layer>) -> SourcePackage {
    SourcePackage {
        path,
        layer,
        uid: 0,
        gid: 0,
        strip_setid: layer == Some(Layer::User),
        may_shadow: true,
        recorded: None,
    }
}

fn tree(sources: Vec<SourcePackage>) -> Tree {
    let packages = packagefs::plan::package::open_all(sources)
        .into_iter()
        .map(|r| r.map_err(|(_, e)| e).unwrap())
        .collect();
    Tree::new(packages).unwrap()
}

/// Every node is the parent of each of its children, and the root its own
/// parent; every node but the root is someone's child.
fn assert_parents(tree: &Tree) {
    assert_eq!(tree.root().parent().index(), 0);
    let mut children = 0;
    for index in 0..tree.len() as u32 {
        let node = tree.at(index).unwrap();
        for c in node.children() {
            assert_eq!(c.parent().index(), index, "parent of {:?}", c.path());
            children += 1;
        }
    }
    assert_eq!(children + 1, tree.len());
}

/// Resolve a `/`-separated path with lookups from the root.
fn resolve(fs: &Snapshot, path: &[u8]) -> Result<u64, FsError> {
    let mut ino = ROOT_INO;
    for part in path.split(|&b| b == b'/') {
        ino = fs.lookup(ino, part)?.ino;
    }
    Ok(ino)
}

#[test]
fn every_entry_is_found_by_path_and_children_are_sorted() {
    let pkg = fixture("haiku/ctags_source-5.8-5-source.hpkg");
    let reference = Package::open(&pkg).unwrap();
    let fs = Snapshot::new(tree(vec![source(pkg, None)]), None, &FsConfig::default()).unwrap();
    let toc = reference.toc();
    let mut seen = 0;
    toc.walk(|path, id| {
        if path == b".PackageInfo" {
            assert_eq!(resolve(&fs, path), Err(FsError::NotFound));
            return;
        }
        let ino = resolve(&fs, path).unwrap();
        let node = fs.node(ino).unwrap();
        assert_eq!(node.path(), path);
        assert_eq!(node.kind(), toc.entry(id).kind());
        assert_eq!(node.mode(), toc.entry(id).mode());
        seen += 1;
    });
    assert_eq!(seen + 1, toc.len());
    assert_eq!(
        fs.tree().len(),
        toc.len(),
        "root + every entry but .PackageInfo"
    );
    for ino in 1..=fs.tree().len() as u64 {
        let node = fs.node(ino).unwrap();
        let names: Vec<&[u8]> = node.children().map(|c| c.name()).collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
        for c in node.children() {
            assert_eq!(fs.ino_of(&c.parent()), ino);
        }
    }
    assert_parents(fs.tree());
    assert_eq!(fs.tree().shadowed_count(), 0);
}

#[test]
fn the_higher_layer_hides_files_and_merges_directories() {
    let (low, high) = (
        fixture("haiku-tool/nested-zstd.hpkg"),
        fixture("haiku-tool/nested-zlib.hpkg"),
    );
    let t = tree(vec![
        source(low.clone(), Some(Layer::System)),
        source(high, Some(Layer::User)),
    ]);
    let reference = Package::open(&low).unwrap();
    let toc = reference.toc();
    let mut hidden = Vec::new();
    toc.walk(|path, id| {
        if toc.entry(id).kind() != EntryKind::Directory && path != b".PackageInfo" {
            hidden.push(path.to_vec());
        }
    });
    hidden.sort();
    let mut shadowed: Vec<Vec<u8>> = t.shadowed().map(|s| s.path).collect();
    shadowed.sort();
    assert_eq!(shadowed, hidden);
    for s in t.shadowed() {
        assert!(s.hidden.label().ends_with("(system)"));
        assert!(s.shown.unwrap().label().ends_with("(user)"));
    }
    // Files and symlinks come from the user layer, merged directories keep
    // the system layer's metadata; the tree is no bigger than one package's.
    assert_eq!(t.len(), toc.len());
    for index in 1..t.len() as u32 {
        let node = t.at(index).unwrap();
        let want = match node.kind() {
            EntryKind::Directory => "(system)",
            _ => "(user)",
        };
        assert!(node.package().unwrap().label().ends_with(want));
    }
    assert_parents(&t);
    let m = t.memory();
    assert_eq!(m.entries, 2 * toc.len());
    assert_eq!(m.nodes, toc.len());
    assert!(m.bytes_per_entry() > 48.0);
}

#[test]
fn parents_are_found_in_a_union_of_many_packages() {
    // Different trees interleave their directories in breadth-first order;
    // each node's path, rebuilt through its parents, must lead back to it.
    let t = tree(
        [
            "haiku-tool/nested-zstd.hpkg",
            "haiku/tipster-1.1.1-1-x86_64.hpkg",
            "haiku/ctags_source-5.8-5-source.hpkg",
            "haiku-tool/bigfile-zstd.hpkg",
            "haiku/artificial-1.0.0-any.hpkg",
            "haiku-tool/metadata-zstd.hpkg",
        ]
        .into_iter()
        .map(|p| source(fixture(p), None))
        .collect(),
    );
    assert_parents(&t);
    let fs = Snapshot::new(t, None, &FsConfig::default()).unwrap();
    for ino in 2..=fs.tree().len() as u64 {
        let path = fs.node(ino).unwrap().path();
        assert_eq!(
            resolve(&fs, &path),
            Ok(ino),
            "{:?}",
            String::from_utf8_lossy(&path)
        );
    }
}

#[test]
fn reads_at_any_offset_match_the_format_library() {
    for (rel, cache) in [
        ("haiku-tool/bigfile-zstd.hpkg", 256 << 20),
        ("haiku-tool/nested-zlib.hpkg", 0),
        ("haiku-tool/nested-none.hpkg", 1 << 20),
    ] {
        let pkg = fixture(rel);
        let reference = Package::open(&pkg).unwrap();
        let toc = reference.toc();
        let config = FsConfig {
            cache_size: cache,
            prefetch_threads: 1,
        };
        let fs = Snapshot::new(tree(vec![source(pkg, None)]), None, &config).unwrap();
        toc.walk(|path, id| {
            if toc.entry(id).kind() != EntryKind::File || path == b".PackageInfo" {
                return;
            }
            let ino = resolve(&fs, path).unwrap();
            let len = toc.entry(id).size();
            let mut whole = vec![0u8; len as usize];
            reference.read_file(id, 0, &mut whole, &NoCache).unwrap();
            for (offset, size) in [
                (0u64, 1u32),
                (0, 4096),
                (1, 65536),
                (65535, 2),
                (65536, 131072),
                (70000, 100_000),
                (len.saturating_sub(3), 10),
                (len, 10),
                (len + 5, 10),
                (0, 1 << 20),
            ] {
                let got = fs.read(ino, offset, size).unwrap();
                let start = offset.min(len) as usize;
                let end = (offset.saturating_add(u64::from(size))).min(len) as usize;
                assert!(
                    got == whole[start..end.max(start)],
                    "{rel}: {}: read {size} at {offset}",
                    String::from_utf8_lossy(path)
                );
            }
        });
    }
}

#[test]
fn operations_refuse_what_they_must() {
    let pkg = fixture("haiku-tool/nested-zstd.hpkg");
    let fs = Snapshot::new(tree(vec![source(pkg, None)]), None, &FsConfig::default()).unwrap();
    let file = resolve(&fs, b"data/sizes/size_7.bin").unwrap();
    let dir = resolve(&fs, b"data").unwrap();
    let link = resolve(&fs, b"links/rel_to_dir").unwrap();
    assert_eq!(fs.open(file, libc::O_WRONLY), Err(FsError::ReadOnly));
    assert_eq!(fs.open(file, libc::O_RDWR), Err(FsError::ReadOnly));
    assert_eq!(
        fs.open(file, libc::O_RDONLY | libc::O_TRUNC),
        Err(FsError::ReadOnly)
    );
    assert_eq!(fs.open(file, libc::O_RDONLY), Ok(()));
    assert_eq!(fs.read(dir, 0, 10), Err(FsError::IsDir));
    assert_eq!(fs.readlink(file), Err(FsError::Invalid));
    assert_eq!(fs.readlink(link).unwrap(), b"../bin");
    assert_eq!(fs.lookup(file, b"x"), Err(FsError::NotDir));
    assert_eq!(fs.getattr(0), Err(FsError::Stale));
    assert_eq!(fs.getattr(u64::MAX), Err(FsError::Stale));
    assert!(fs.readdir(file, 0).is_err());
    // readdir: ".", "..", then children, resumable from any offset.
    let all: Vec<Vec<u8>> = fs
        .readdir(dir, 0)
        .unwrap()
        .map(|e| e.name.to_vec())
        .collect();
    assert_eq!(&all[..2], &[b".".to_vec(), b"..".to_vec()]);
    let tail: Vec<Vec<u8>> = fs
        .readdir(dir, 3)
        .unwrap()
        .map(|e| e.name.to_vec())
        .collect();
    assert_eq!(&all[3..], &tail[..]);
    assert_eq!(fs.readdir(dir, 1000).unwrap().count(), 0);
}

/// The top-level `.DEBIAN` of an imported Debian package is hidden like
/// `.PackageInfo`; the same name deeper down is an ordinary entry.
#[test]
fn top_level_debian_control_directory_is_hidden() {
    use hpkg_format::{create_from_tree, Timestamp, TreeBuilder};
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("p.hpkg");
    let ts = Timestamp::from_secs(1);
    let mut t = TreeBuilder::new();
    t.add_file(b".DEBIAN/control", 0o644, ts, b"Package: p\n".to_vec())
        .unwrap();
    t.add_file(b".DEBIAN/postinst", 0o755, ts, b"#!/bin/sh\n".to_vec())
        .unwrap();
    t.add_file(b".PackageInfo", 0o644, ts, b"name p\n".to_vec())
        .unwrap();
    t.add_file(b"usr/.DEBIAN/x", 0o644, ts, b"x".to_vec())
        .unwrap();
    let info = Package::open(fixture("haiku-tool/minimal-zstd.hpkg"))
        .unwrap()
        .info()
        .clone();
    create_from_tree(t, &info, &out, &Default::default()).unwrap();
    let fs = Snapshot::new(tree(vec![source(out, None)]), None, &FsConfig::default()).unwrap();
    assert_eq!(resolve(&fs, b".DEBIAN"), Err(FsError::NotFound));
    assert_eq!(resolve(&fs, b".PackageInfo"), Err(FsError::NotFound));
    assert!(resolve(&fs, b"usr/.DEBIAN/x").is_ok());
    let names: Vec<Vec<u8>> = fs
        .readdir(ROOT_INO, 0)
        .unwrap()
        .map(|e| e.name.to_vec())
        .collect();
    assert!(names.iter().any(|n| n == b"usr"), "{names:?}");
    assert!(!names.iter().any(|n| n == b".DEBIAN"), "{names:?}");
}
