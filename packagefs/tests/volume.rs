//! Node identity and lifetimes across swaps, without FUSE: which paths keep
//! their inode number ([`packagefs::inodes::carry`]), what the kernel is
//! told to forget, and how a [`Volume`] keeps the nodes the kernel still
//! references (orphans) and lets them go when it forgets them.

use std::path::{Path, PathBuf};

use hpkg_format::{create_from_tree, Timestamp, TreeBuilder, WriteOptions};
use packagefs::fs::{FsConfig, FsError, Snapshot};
use packagefs::inodes::{carry, Numbering, ROOT_INO};
use packagefs::plan::{MountedPackage, SourcePackage, Tree};
use packagefs::volume::{self, Notify, Volume};
use state::Layer;

/// Write package `name` holding `files` (each `dir/.../file`, content the
/// package name) and open it in the system layer.
fn package(dir: &Path, name: &str, files: &[&str]) -> MountedPackage {
    let mut tree = TreeBuilder::new();
    let time = Timestamp::from_secs(1_700_000_000);
    for f in files {
        tree.add_file(f.as_bytes(), 0o644, time, name.as_bytes().to_vec())
            .unwrap();
    }
    let text = format!(
        "name {name}\nversion 1.0-1\narchitecture any\nsummary \"s\"\ndescription \"d\"\n\
         packager p\nvendor v\ncopyrights c\nlicenses MIT\nprovides {{ {name} = 1.0-1 }}\n"
    );
    let info = hpkg_format::info_text::parse(&text).unwrap();
    let out: PathBuf = dir.join(format!("{name}.hpkg"));
    create_from_tree(tree, &info, &out, &WriteOptions::default()).unwrap();
    MountedPackage::open(SourcePackage {
        path: out,
        layer: Some(Layer::System),
        uid: 0,
        gid: 0,
        strip_setid: false,
        may_shadow: true,
        recorded: None,
    })
    .unwrap()
}

/// The inode of `path` in `fs`, by lookups from the root.
fn ino(fs: &Snapshot, path: &str) -> Result<u64, FsError> {
    let mut ino = ROOT_INO;
    for part in path.split('/') {
        ino = fs.lookup(ino, part.as_bytes())?.ino;
    }
    Ok(ino)
}

#[test]
fn paths_that_stay_keep_their_numbers_and_updates_get_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let base = package(dir.path(), "base", &["d/x", "d/y", "e/f"]);
    let extra = package(dir.path(), "extra", &["d/z"]);
    let update = package(dir.path(), "update", &["d/x", "d/y"]);
    let first = Tree::new(vec![base.clone()]).unwrap();
    let first_numbers = Numbering::first(&first);
    let fs1 = Snapshot::new(first, None, &FsConfig::default()).unwrap();
    let (d, x, y, e) = (
        ino(&fs1, "d").unwrap(),
        ino(&fs1, "d/x").unwrap(),
        ino(&fs1, "d/y").unwrap(),
        ino(&fs1, "e").unwrap(),
    );
    // The first tree numbers node i as i + 1 (the root 1, then `d`).
    assert_eq!(d, 2);
    assert_eq!(first_numbers.ino(1), 2);
    assert_eq!(first_numbers.index(d), Some(1));
    let len = fs1.tree().len() as u64;
    assert_eq!(first_numbers.index(len), Some(len as u32 - 1));
    assert_eq!(first_numbers.index(len + 1), None, "past the last node");
    assert_eq!(first_numbers.index(0), None);

    // A package added: everything stays, the new path gets a new number,
    // and only the directory that gained an entry is told.
    let second = Tree::new(vec![base.clone(), extra.clone()]).unwrap();
    let carried = carry(fs1.tree(), fs1.numbering(), &second);
    let fs2 = fs1.successor(second, carried.numbering, None);
    assert_eq!(ino(&fs2, "d").unwrap(), d);
    assert_eq!(ino(&fs2, "d/x").unwrap(), x);
    assert_eq!(ino(&fs2, "d/y").unwrap(), y);
    assert_eq!(ino(&fs2, "e").unwrap(), e);
    let z = ino(&fs2, "d/z").unwrap();
    assert!(
        z > fs1.tree().len() as u64,
        "a new path reuses a number: {z}"
    );
    assert_eq!(carried.invalidations.entries, vec![(d, b"z".to_vec())]);
    assert!(carried.invalidations.inodes.contains(&d));
    assert!(!carried.invalidations.inodes.contains(&e));
    assert!(!carried.invalidations.inodes.contains(&x));

    // base replaced by an update of its files, extra removed: the
    // directory keeps its number, the updated files get new ones, e and z
    // are gone.
    let third = Tree::new(vec![update]).unwrap();
    let carried = carry(fs2.tree(), fs2.numbering(), &third);
    let fs3 = fs2.successor(third, carried.numbering, None);
    assert_eq!(ino(&fs3, "d").unwrap(), d);
    let (x3, y3) = (ino(&fs3, "d/x").unwrap(), ino(&fs3, "d/y").unwrap());
    assert!(x3 != x && y3 != y && x3 != z && y3 != z && x3 != y3);
    assert_eq!(ino(&fs3, "e"), Err(FsError::NotFound));
    assert_eq!(fs3.getattr(e), Err(FsError::Stale));
    let mut entries = carried.invalidations.entries.clone();
    entries.sort();
    assert_eq!(
        entries,
        vec![
            (ROOT_INO, b"e".to_vec()),
            (d, b"x".to_vec()),
            (d, b"y".to_vec()),
            (d, b"z".to_vec()),
        ]
    );
    // What is gone has no successor; what stays does.
    let gone: Vec<u32> = carried
        .old_to_new
        .iter()
        .enumerate()
        .filter(|(_, &n)| n == packagefs::inodes::GONE)
        .map(|(o, _)| o as u32)
        .collect();
    assert_eq!(gone.len(), 5, "x, y, z, e and e/f of the old tree");
}

#[test]
fn the_volume_keeps_what_the_kernel_holds_and_forgets_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let base = package(dir.path(), "base", &["d/x"]);
    let extra = package(dir.path(), "extra", &["d/z", "g/h"]);
    let fs = Snapshot::new(
        Tree::new(vec![base.clone(), extra.clone()]).unwrap(),
        Some(1),
        &FsConfig::default(),
    )
    .unwrap();
    let volume = Volume::new(fs);
    let (d, x, z, g, h) = {
        let fs = volume.read();
        let inos = (
            ino(&fs, "d").unwrap(),
            ino(&fs, "d/x").unwrap(),
            ino(&fs, "d/z").unwrap(),
            ino(&fs, "g").unwrap(),
            ino(&fs, "g/h").unwrap(),
        );
        // The kernel looked up d twice, x, z and g once; h never.
        for i in [inos.0, inos.0, inos.1, inos.2, inos.3] {
            fs.count_lookup(i);
        }
        inos
    };
    // extra goes: z and g are held by the kernel, h is not.
    let inv = volume.swap(Tree::new(vec![base.clone()]).unwrap(), Some(2));
    assert!(inv.entries.contains(&(d, b"z".to_vec())));
    assert!(inv.entries.contains(&(ROOT_INO, b"g".to_vec())));
    {
        let fs = volume.read();
        assert_eq!(fs.generation(), Some(2));
        assert_eq!(ino(&fs, "d").unwrap(), d);
        assert_eq!(ino(&fs, "d/x").unwrap(), x);
        assert_eq!(fs.getattr(z), Err(FsError::Stale));
    }
    assert_eq!(volume.stats().orphans, 2);
    let za = volume.orphan_attr(z).expect("z is held");
    assert_eq!(za.ino, z);
    assert_eq!(za.size, b"extra".len() as u64);
    assert!(volume.orphan_attr(g).is_some());
    // The orphaned file reads on from its package (an open file); the
    // orphaned directory and a node never held have no content.
    assert_eq!(volume.stats().orphan_files, 1);
    assert_eq!(
        volume.read_orphan(&volume.current(), z, 0, 100).unwrap(),
        b"extra"
    );
    assert_eq!(
        volume.read_orphan(&volume.current(), z, 2, 2).unwrap(),
        b"tr"
    );
    assert_eq!(
        volume.read_orphan(&volume.current(), g, 0, 100),
        Err(FsError::Stale)
    );
    assert_eq!(
        volume.read_orphan(&volume.current(), h, 0, 100),
        Err(FsError::Stale)
    );
    assert!(volume.orphan_attr(h).is_none(), "h was never looked up");
    assert!(volume.is_orphan(z) && volume.is_orphan(g));
    assert!(!volume.is_orphan(x) && !volume.is_orphan(h));
    // Counts moved with the nodes that stay: d needs two forgets.
    let fs = volume.current();
    volume.forget(&fs, d, 1);
    assert_eq!(fs.lookups_of(fs.node(d).unwrap().index()), 1);
    volume.forget(&fs, z, 1);
    assert!(volume.orphan_attr(z).is_none(), "z forgotten");
    assert!(volume.orphan_attr(g).is_some());
    volume.forget(&fs, g, 1);
    assert_eq!(volume.stats().orphans, 0);

    // A file the kernel holds (open) whose package goes reads on from that
    // package until the kernel forgets it.
    volume.swap(Tree::new(vec![extra]).unwrap(), Some(3));
    let fs = volume.current();
    assert_eq!(fs.getattr(x), Err(FsError::Stale));
    assert_eq!(fs.read(x, 0, 100), Err(FsError::Stale));
    assert_eq!(volume.read_orphan(&fs, x, 0, 100).unwrap(), b"base");
    assert_eq!(volume.stats().orphan_files, 1);
    volume.forget(&fs, x, 1);
    assert_eq!(volume.read_orphan(&fs, x, 0, 100), Err(FsError::Stale));
    assert_eq!(volume.stats().orphans, 0);
}

/// What the kernel was told.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<String>>);

impl Notify for Recorder {
    fn inval_inode(&self, ino: u64) -> std::io::Result<()> {
        self.0.lock().unwrap().push(format!("inode {ino}"));
        Ok(())
    }

    fn inval_entry(&self, parent: u64, name: &[u8]) -> std::io::Result<()> {
        self.0
            .lock()
            .unwrap()
            .push(format!("entry {parent} {}", String::from_utf8_lossy(name)));
        Ok(())
    }
}

#[test]
fn a_kept_shine_through_directory_is_not_invalidated_and_the_rest_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let base = package(dir.path(), "base", &["d/x"]);
    let extra = package(dir.path(), "extra", &["d/z"]);
    let shine = vec!["var".to_string()];
    let tree =
        |p: Vec<MountedPackage>| Tree::with_shine_through(p, &[] as &[&str], &shine).unwrap();
    let volume =
        Volume::new(Snapshot::new(tree(vec![base.clone()]), None, &FsConfig::default()).unwrap());
    let (var, d) = {
        let fs = volume.read();
        (ino(&fs, "var").unwrap(), ino(&fs, "d").unwrap())
    };
    let inv = volume.swap(tree(vec![base, extra]), None);
    assert_eq!(ino(&volume.current(), "var").unwrap(), var);
    assert!(
        !inv.inodes.contains(&var),
        "the synthetic shine-through directory did not change: {inv:?}"
    );
    let recorder = Recorder::default();
    volume::send(&recorder, &inv);
    let told = recorder.0.into_inner().unwrap();
    assert!(told.contains(&format!("entry {d} z")), "{told:?}");
    assert!(told.contains(&format!("inode {d}")), "{told:?}");
    assert_eq!(told.len(), inv.entries.len() + inv.inodes.len());
}

#[test]
fn a_kept_read_buffer_gives_exactly_the_bytes_read() {
    let dir = tempfile::tempdir().unwrap();
    let long = package(dir.path(), "longername", &["a"]);
    let short = package(dir.path(), "s", &["b"]);
    let fs = Snapshot::new(
        Tree::new(vec![long, short]).unwrap(),
        None,
        &FsConfig::default(),
    )
    .unwrap();
    let (a, b) = (ino(&fs, "a").unwrap(), ino(&fs, "b").unwrap());
    // A buffer holding older bytes: only the first `n` are the read's.
    let mut buf = vec![0xaa; 64];
    assert_eq!(fs.read_into(a, 0, 100, &mut buf), Ok(10));
    assert_eq!(&buf[..10], b"longername");
    assert_eq!(fs.read_into(b, 0, 100, &mut buf), Ok(1));
    assert_eq!(&buf[..1], b"s");
    assert_eq!(fs.read_into(a, 6, 100, &mut buf), Ok(4));
    assert_eq!(&buf[..4], b"name");
    assert_eq!(fs.read_into(a, 10, 100, &mut buf), Ok(0));
    assert_eq!(buf.len(), 64, "the buffer is neither shrunk nor cleared");
    // A buffer too small grows to the read.
    let mut small = Vec::new();
    assert_eq!(fs.read_into(a, 2, 5, &mut small), Ok(5));
    assert_eq!(small, b"ngern");
    assert_eq!(fs.read(a, 0, 4).unwrap(), b"long");
}
