//! The union cache (`state::plan::tree_image`): a merge stored once is taken
//! back exactly, for the same packages and options only; a damaged,
//! truncated or forged image is refused and merged again; a directory that
//! cannot be written leaves the merge working; old images are pruned.

use std::path::{Path, PathBuf};

use hpkg_format::{create_from_tree, Timestamp, TreeBuilder, WriteOptions};
use state::plan::tree::UnionCache;
use state::plan::{self, tree_image, GenerationChoice, MountSpec, MountedPackage, Request, Tree};
use state::{Layer, Root};

/// Write package `name` with `files` (each with content `name`) and
/// directories implied by them.
fn write(dir: &Path, name: &str, files: &[&str]) -> PathBuf {
    let mut tree = TreeBuilder::new();
    for f in files {
        tree.add_file(
            f.as_bytes(),
            0o644,
            Timestamp::from_secs(1_700_000_000),
            name.as_bytes().to_vec(),
        )
        .unwrap();
    }
    let text = format!(
        "name {name}\nversion 1.0-1\narchitecture any\nsummary \"s\"\ndescription \"d\"\n\
         packager p\nvendor v\ncopyrights c\nlicenses MIT\nprovides {{ {name} = 1.0-1 }}\n"
    );
    let info = hpkg_format::info_text::parse(&text).unwrap();
    let out = dir.join(format!("{name}.hpkg"));
    create_from_tree(tree, &info, &out, &WriteOptions::default()).unwrap();
    out
}

/// A root whose packages overlap across layers (shadows), with the
/// packages of its generation opened by the planner.
fn packages(dir: &Path) -> Vec<MountedPackage> {
    let root_dir = dir.join("root");
    let root = Root::init(&root_dir).unwrap();
    let base = write(dir, "base", &["bin/sh", "lib/libc.so", "etc/conf", "var/x"]);
    let extra = write(
        dir,
        "extra",
        &["bin/tool", "lib/libz.so", "share/doc/extra", "tmp"],
    );
    root.add(&[&base, &extra], Layer::System, true, "t")
        .unwrap();
    let over = write(dir, "over", &["bin/sh", "etc/conf/d", "share/doc/over"]);
    root.add(&[&over], Layer::User, true, "t").unwrap();
    let spec = MountSpec::Root {
        root: root_dir,
        layers: Layer::ALL.to_vec(),
    };
    let p = plan::plan(&Request::new(&spec, GenerationChoice::Current), None).unwrap();
    assert_eq!(p.tree.packages().len(), 3);
    p.tree.packages().to_vec()
}

/// Everything a reader of the tree sees: each node's path, kind, package,
/// entry and children, the hidden nodes and the warnings.
fn view(t: &Tree) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..t.len() as u32 {
        let n = t.at(i).unwrap();
        out.push(format!(
            "{} {:?} {:?} {:?} {} {}",
            String::from_utf8_lossy(&n.path()),
            n.kind(),
            n.package().map(|p| p.path().to_path_buf()),
            n.entry_id(),
            n.child_count(),
            t.is_shine_through(i)
        ));
    }
    for s in t.shadowed().chain(t.refused_shadows()) {
        out.push(format!(
            "hidden {} {:?} {:?}",
            String::from_utf8_lossy(&s.path),
            s.hidden.path(),
            s.shown.map(|p| p.path().to_path_buf())
        ));
    }
    out.extend(t.warnings().iter().cloned());
    out
}

const BLOCKED: &[&str] = &["lib/libz.so"];

fn shine() -> Vec<String> {
    vec!["var".to_string(), "tmp".to_string()]
}

fn cached(pkgs: &[MountedPackage], dir: &Path) -> (Tree, UnionCache) {
    Tree::with_union_cache(pkgs.to_vec(), BLOCKED, &shine(), Some(dir), true).unwrap()
}

fn images(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|l| l.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|x| x == tree_image::EXTENSION));
    v.sort();
    v
}

#[test]
fn a_stored_union_is_taken_back_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let pkgs = packages(dir.path());
    let cache = dir.path().join("cache");
    let fresh = Tree::with_shine_through(pkgs.clone(), BLOCKED, &shine()).unwrap();
    assert!(fresh.shadowed_count() > 0, "the set-up has shadows");
    assert!(
        !fresh.warnings().is_empty(),
        "the set-up has a warning (tmp)"
    );

    let (first, used) = cached(&pkgs, &cache);
    assert_eq!(
        used,
        UnionCache::Merged {
            rejected: None,
            stored: Some(Ok(()))
        }
    );
    assert_eq!(images(&cache).len(), 1);
    let (second, used) = cached(&pkgs, &cache);
    assert_eq!(used, UnionCache::Hit);
    assert_eq!(view(&first), view(&fresh));
    assert_eq!(view(&second), view(&fresh));
    // Lookups work in the tree taken back.
    let sh = second.root().lookup(b"bin").unwrap().lookup(b"sh").unwrap();
    assert!(sh.package().unwrap().path().ends_with("over.hpkg"));
}

#[test]
fn other_packages_or_options_do_not_take_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let pkgs = packages(dir.path());
    let cache = dir.path().join("cache");
    cached(&pkgs, &cache);
    assert_eq!(cached(&pkgs, &cache).1, UnionCache::Hit);
    let miss = |t: (Tree, UnionCache)| {
        assert!(
            matches!(t.1, UnionCache::Merged { rejected: None, .. }),
            "{:?}",
            t.1
        );
        t.0
    };
    // Another order, fewer packages, other blocked paths, other shine-through.
    let mut reordered = pkgs.clone();
    reordered.swap(0, 1);
    let t = miss(
        Tree::with_union_cache(reordered.clone(), BLOCKED, &shine(), Some(&cache), true).unwrap(),
    );
    assert_eq!(
        view(&t),
        view(&Tree::with_shine_through(reordered, BLOCKED, &shine()).unwrap())
    );
    miss(
        Tree::with_union_cache(pkgs[..2].to_vec(), BLOCKED, &shine(), Some(&cache), true).unwrap(),
    );
    miss(Tree::with_union_cache::<&str>(pkgs.clone(), &[], &shine(), Some(&cache), true).unwrap());
    miss(Tree::with_union_cache(pkgs.clone(), BLOCKED, &[], Some(&cache), true).unwrap());
}

#[test]
fn a_package_file_touched_since_is_merged_again() {
    let dir = tempfile::tempdir().unwrap();
    let pkgs = packages(dir.path());
    let cache = dir.path().join("cache");
    cached(&pkgs, &cache);
    // Rewritten in place with the same bytes and a new time: its stamp
    // changes, so a package opened from it is keyed anew.
    let path = pkgs[0].path().to_path_buf();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let t = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(t)
        .unwrap();
    let reopened = packages_again(&pkgs);
    let (_, used) = cached(&reopened, &cache);
    assert!(
        matches!(used, UnionCache::Merged { rejected: None, .. }),
        "{used:?}"
    );
}

/// The same packages opened again from their files.
fn packages_again(pkgs: &[MountedPackage]) -> Vec<MountedPackage> {
    pkgs.iter()
        .map(|p| MountedPackage::open(p.source().clone()).unwrap())
        .collect()
}

#[test]
fn without_recorded_hashes_or_a_directory_nothing_is_cached() {
    let dir = tempfile::tempdir().unwrap();
    let pkgs = packages(dir.path());
    let cache = dir.path().join("cache");
    let unrecorded: Vec<MountedPackage> = pkgs
        .iter()
        .map(|p| {
            let mut s = p.source().clone();
            s.recorded = None;
            MountedPackage::open(s).unwrap()
        })
        .collect();
    let (_, used) = cached(&unrecorded, &cache);
    assert_eq!(used, UnionCache::Unused);
    let (_, used) = Tree::with_union_cache(pkgs, BLOCKED, &shine(), None, true).unwrap();
    assert_eq!(used, UnionCache::Unused);
    assert!(images(&cache).is_empty());
}

/// An edit of an image's bytes.
type Damage = Box<dyn Fn(&mut Vec<u8>)>;

/// Re-seal `image` after an edit: the CRC-32 over everything past the
/// 48-byte header, at bytes 12..16.
fn reseal(image: &mut [u8]) {
    let crc = crc32fast::hash(&image[48..]);
    image[12..16].copy_from_slice(&crc.to_le_bytes());
}

/// Header count `i` of `image` (0 nodes, 1 shadows, 2 refused, 3 shine).
fn count(image: &[u8], i: usize) -> usize {
    u32::from_le_bytes(image[16 + i * 4..20 + i * 4].try_into().unwrap()) as usize
}

/// Overwrite a little-endian u32 at byte `at` of `image`.
fn set_word(image: &mut [u8], at: usize, value: u32) {
    image[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

/// Overwrite little-endian u32 number `word` of node `node` of `image`.
fn set_node_word(image: &mut [u8], node: usize, word: usize, value: u32) {
    let at = 48 + 32 + node * 16 + word * 4;
    image[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

#[test]
fn damaged_truncated_or_forged_images_are_refused_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let pkgs = packages(dir.path());
    let cache = dir.path().join("cache");
    let (fresh, _) = cached(&pkgs, &cache);
    let image = images(&cache).pop().unwrap();
    let good = std::fs::read(&image).unwrap();
    let node_count = fresh.len();
    let last = node_count - 1;
    let cases: Vec<(&str, Damage)> = vec![
        ("checksum", Box::new(|b: &mut Vec<u8>| b[100] ^= 0x40)),
        (
            "truncated",
            Box::new(|b: &mut Vec<u8>| b.truncate(b.len() - 7)),
        ),
        ("truncated", Box::new(|b: &mut Vec<u8>| b.truncate(20))),
        ("not a union image", Box::new(|b: &mut Vec<u8>| b[0] = b'x')),
        (
            "package or entry out of range",
            Box::new(move |b: &mut Vec<u8>| {
                set_node_word(b, last, 1, 1_000_000);
                reseal(b)
            }),
        ),
        (
            "package or entry out of range",
            Box::new(move |b: &mut Vec<u8>| {
                set_node_word(b, last, 0, 77);
                reseal(b)
            }),
        ),
        (
            "node 0 is not the root",
            Box::new(|b: &mut Vec<u8>| {
                set_node_word(b, 0, 0, 0);
                reseal(b)
            }),
        ),
        (
            // Node 1 claims the root's children: a cycle through `..`.
            "not contiguous",
            Box::new(|b: &mut Vec<u8>| {
                set_node_word(b, 1, 2, 1);
                reseal(b)
            }),
        ),
        (
            "children",
            Box::new(move |b: &mut Vec<u8>| {
                let count =
                    u32::from_le_bytes(b[48 + 32 + last * 16 + 12..][..4].try_into().unwrap());
                set_node_word(b, last, 3, count + 1);
                reseal(b)
            }),
        ),
    ];
    let tmp = fresh.root().lookup(b"tmp").unwrap().index() as usize;
    let cases2: Vec<(&str, Damage)> = vec![
        (
            "a second root",
            Box::new(|b: &mut Vec<u8>| {
                set_node_word(b, 1, 0, u32::MAX);
                reseal(b)
            }),
        ),
        (
            "shine-through name out of range",
            Box::new(move |b: &mut Vec<u8>| {
                set_node_word(b, tmp, 1, 2);
                reseal(b)
            }),
        ),
        (
            "hidden node out of range",
            Box::new(|b: &mut Vec<u8>| {
                let at = 48 + 32 + count(b, 0) * 16;
                set_word(b, at, 1_000_000);
                reseal(b)
            }),
        ),
        (
            "hidden node out of range",
            Box::new(|b: &mut Vec<u8>| {
                let at = 48 + 32 + count(b, 0) * 16 + 4;
                set_word(b, at, 77);
                reseal(b)
            }),
        ),
        (
            "shine-through nodes out of range",
            Box::new(|b: &mut Vec<u8>| {
                let at = 48 + 32 + count(b, 0) * 16 + (count(b, 1) + count(b, 2)) * 12;
                set_word(b, at, 1_000_000);
                reseal(b)
            }),
        ),
    ];
    for (what, damage) in cases.into_iter().chain(cases2) {
        let mut bytes = good.clone();
        damage(&mut bytes);
        std::fs::write(&image, &bytes).unwrap();
        let (tree, used) = cached(&pkgs, &cache);
        match &used {
            UnionCache::Merged {
                rejected: Some(why),
                stored: Some(Ok(())),
            } => assert!(why.contains(what), "{what}: {why}"),
            other => panic!("{what}: {other:?}"),
        }
        assert_eq!(view(&tree), view(&fresh), "{what}");
        // Replaced by a good image.
        assert_eq!(std::fs::read(&image).unwrap(), good, "{what}");
        assert_eq!(cached(&pkgs, &cache).1, UnionCache::Hit);
    }
}

#[test]
fn a_directory_that_cannot_be_written_leaves_the_merge_working() {
    let dir = tempfile::tempdir().unwrap();
    let pkgs = packages(dir.path());
    // A file where the directory should be.
    let cache = dir.path().join("not-a-dir");
    std::fs::write(&cache, b"").unwrap();
    let (tree, used) = cached(&pkgs, &cache);
    assert!(
        matches!(&used, UnionCache::Merged { stored: Some(Err(e)), .. } if e.contains("not-a-dir")),
        "{used:?}"
    );
    let fresh = Tree::with_shine_through(pkgs, BLOCKED, &shine()).unwrap();
    assert_eq!(view(&tree), view(&fresh));
}

#[test]
fn only_the_newest_images_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let pkgs = packages(dir.path());
    let cache = dir.path().join("cache");
    let mut written = Vec::new();
    for i in 0..tree_image::KEPT_IMAGES + 3 {
        let blocked = [format!("nothing/{i}")];
        Tree::with_union_cache(pkgs.clone(), &blocked, &shine(), Some(&cache), true).unwrap();
        written.push(images(&cache));
        // Distinct modification times, newest last.
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(images(&cache).len(), tree_image::KEPT_IMAGES);
    // The newest is always kept.
    let newest = Tree::with_union_cache(
        pkgs.clone(),
        &[format!("nothing/{}", tree_image::KEPT_IMAGES + 2)],
        &shine(),
        Some(&cache),
        true,
    )
    .unwrap();
    assert_eq!(newest.1, UnionCache::Hit);
    let oldest = Tree::with_union_cache(
        pkgs,
        &["nothing/0".to_string()],
        &shine(),
        Some(&cache),
        true,
    )
    .unwrap();
    assert!(matches!(
        oldest.1,
        UnionCache::Merged { rejected: None, .. }
    ));
}

#[test]
fn a_read_only_cache_is_read_but_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let pkgs = packages(dir.path());
    let cache = dir.path().join("cache");
    let (tree, used) =
        Tree::with_union_cache(pkgs.clone(), BLOCKED, &shine(), Some(&cache), false).unwrap();
    assert_eq!(
        used,
        UnionCache::Merged {
            rejected: None,
            stored: None
        }
    );
    assert!(images(&cache).is_empty());
    assert_eq!(
        view(&tree),
        view(&Tree::with_shine_through(pkgs.clone(), BLOCKED, &shine()).unwrap())
    );
    // An image written by a writable mount is taken by a read-only one.
    cached(&pkgs, &cache);
    let (_, used) = Tree::with_union_cache(pkgs, BLOCKED, &shine(), Some(&cache), false).unwrap();
    assert_eq!(used, UnionCache::Hit);
}
