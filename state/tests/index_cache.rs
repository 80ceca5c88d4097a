//! The per-package index cache of a root with state: a second plan opens
//! every package from its image and shows exactly the tree of an uncached
//! plan; a package of new content, a touched package file and one changed
//! in place with the same size are indexed again; a damaged image is
//! ignored with a warning and rebuilt; an index directory that cannot be
//! written leaves the plan whole with one warning; `index_cache: false` and
//! package files mounted on their own touch no image; gc removes the images
//! of packages no kept generation references.

use std::fs;
use std::path::{Path, PathBuf};

use hpkg_format::{create_from_tree, Compression, NoCache, Timestamp, TreeBuilder, WriteOptions};
use state::plan::{self, GenerationChoice, MountSpec, Plan, Request};
use state::{Layer, Root};

/// Write package `name` whose files hold `content` (uncompressed, so a
/// byte of a file's data can be changed in place).
fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let t = Timestamp::from_secs(1_700_000_000);
    let mut tree = TreeBuilder::new();
    tree.add_dir(format!("data/{name}").as_bytes(), 0o755, t)
        .unwrap();
    for i in 0..5 {
        tree.add_file(
            format!("data/{name}/f{i}").as_bytes(),
            0o644,
            t,
            format!("{content} {i}\n").into_bytes(),
        )
        .unwrap();
    }
    tree.add_file(b"shared/common", 0o600, t, content.as_bytes().to_vec())
        .unwrap();
    tree.add_symlink(format!("data/{name}/link").as_bytes(), 0o777, t, b"f0")
        .unwrap();
    let text = format!(
        "name {name}\nversion 1.0-1\narchitecture any\nsummary \"s\"\ndescription \"d\"\n\
         packager p\nvendor v\ncopyrights c\nlicenses MIT\nprovides {{ {name} = 1.0-1 }}\n"
    );
    let info = hpkg_format::info_text::parse(&text).unwrap();
    let out = dir.join(format!("{name}.hpkg"));
    let options = WriteOptions {
        compression: Compression::None,
        ..WriteOptions::default()
    };
    create_from_tree(tree, &info, &out, &options).unwrap();
    out
}

struct Fixture {
    _dir: tempfile::TempDir,
    incoming: PathBuf,
    root_dir: PathBuf,
    root: Root,
}

/// A root with state holding packages alpha, beta (system) and gamma (user).
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let incoming = dir.path().join("incoming");
    fs::create_dir(&incoming).unwrap();
    let root_dir = dir.path().join("root");
    let root = Root::init(&root_dir).unwrap();
    let a = write(&incoming, "alpha", "a");
    let b = write(&incoming, "beta", "b");
    root.add(&[&a, &b], Layer::System, true, "t").unwrap();
    let c = write(&incoming, "gamma", "c");
    root.add(&[&c], Layer::User, true, "t").unwrap();
    Fixture {
        _dir: dir,
        incoming,
        root_dir,
        root,
    }
}

impl Fixture {
    fn spec(&self) -> MountSpec {
        MountSpec::Root {
            root: self.root_dir.clone(),
            layers: Layer::ALL.to_vec(),
        }
    }

    /// A plan, with its index images written (as a mount does once ready).
    fn plan(&self, index_cache: bool) -> Plan {
        let mut p = self.plan_only(index_cache);
        p.write_index_images();
        p
    }

    /// A plan whose index images are left waiting.
    fn plan_only(&self, index_cache: bool) -> Plan {
        let spec = self.spec();
        let request = Request {
            index_cache,
            ..Request::new(&spec, GenerationChoice::Current)
        };
        plan::plan(&request, None).unwrap()
    }

    fn index_dir(&self) -> PathBuf {
        self.root.layout().index_dir()
    }

    /// The package index images (not the union images beside them).
    fn images(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = match fs::read_dir(self.index_dir()) {
            Ok(d) => d.map(|e| e.unwrap().path()).collect(),
            Err(_) => Vec::new(),
        };
        out.retain(|p| p.extension().is_some_and(|e| e == "idx"));
        out.sort();
        out
    }

    fn package_file(&self, name: &str) -> PathBuf {
        let layer = if name == "gamma" {
            Layer::User
        } else {
            Layer::System
        };
        self.root
            .layout()
            .package_file(layer, &format!("{name}.hpkg"))
    }

    /// The image of the package file `name`.
    fn image_of(&self, name: &str) -> PathBuf {
        let (_, hash) = state::digest::hash_file(&self.package_file(name)).unwrap();
        self.root.layout().index_file(&hash)
    }
}

/// Everything a mount shows of a tree: each path with its kind, mode,
/// owner, size, time, link target, providing package and file content.
fn listing(p: &Plan) -> Vec<String> {
    let tree = &p.tree;
    let mut out = Vec::new();
    for i in 0..tree.len() as u32 {
        let n = tree.at(i).unwrap();
        let content = match (n.package(), n.toc_entry()) {
            (Some(m), Some((toc, id))) => {
                let data = m.package().data_to_vec(toc.data(id), &NoCache).unwrap();
                String::from_utf8_lossy(&data).into_owned()
            }
            _ => String::new(),
        };
        out.push(format!(
            "/{} {:?} {:o} {:?} {} {:?} {:?} {:?} {} {content:?}",
            String::from_utf8_lossy(&n.path()),
            n.kind(),
            n.mode(),
            n.owner(),
            n.size(),
            n.mtime(),
            String::from_utf8_lossy(n.symlink_target()),
            n.attrs().len(),
            n.package().map_or("-", |m| m.label()),
        ));
    }
    out.sort();
    out
}

#[test]
fn a_second_plan_opens_every_package_from_its_image() {
    let f = fixture();
    let uncached = f.plan(false);
    assert!(!uncached.index.is_used());
    assert!(f.images().is_empty(), "{:?}", f.images());

    let first = f.plan(true);
    assert_eq!(
        (first.index.hits, first.index.missing, first.index.written),
        (0, 3, 3)
    );
    assert_eq!(f.images().len(), 3, "{:?}", f.images());
    assert!(
        first.index.warnings.is_empty(),
        "{:?}",
        first.index.warnings
    );
    assert!(first.index.is_used());

    let second = f.plan(true);
    assert_eq!((second.index.hits, second.index.written), (3, 0));
    assert!(second.index.is_used());
    assert!(second.index.warnings.is_empty());
    let expected = listing(&uncached);
    assert!(expected.len() > 20, "{expected:?}");
    assert_eq!(listing(&first), expected);
    assert_eq!(listing(&second), expected);
    // An image is named by its package's blake3.
    assert!(f.image_of("alpha").is_file());
}

#[test]
fn a_plan_writes_no_image_until_asked() {
    let f = fixture();
    let mut p = f.plan_only(true);
    assert_eq!(
        (p.index.missing, p.index.pending, p.index.written),
        (3, 3, 0),
        "{:?}",
        p.index
    );
    assert_eq!(p.index_writes.len(), 3);
    assert!(!p.index_writes.is_empty());
    assert!(f.images().is_empty(), "{:?}", f.images());
    // Written from the packages in memory: the next plan opens them all
    // from their images.
    p.write_index_images();
    assert_eq!(
        (p.index.pending, p.index.written, p.index.write_failures),
        (0, 3, 0)
    );
    assert!(p.index_writes.is_empty());
    assert_eq!(f.images().len(), 3);
    let again = f.plan_only(true);
    assert_eq!((again.index.hits, again.index.pending), (3, 0));
    assert_eq!(listing(&again), listing(&f.plan(false)));
}

#[test]
fn package_files_on_their_own_touch_no_image() {
    let f = fixture();
    let spec = MountSpec::Files(vec![f.package_file("alpha")]);
    let p = plan::plan(&Request::new(&spec, GenerationChoice::Current), None).unwrap();
    assert!(!p.index.is_used());
    assert!(f.images().is_empty());
}

#[test]
fn a_package_of_new_content_is_indexed_again() {
    let f = fixture();
    f.plan(true);
    let before = listing(&f.plan(true));
    f.root.remove(&["alpha"], true, "t").unwrap();
    let newer = write(&f.incoming, "alpha", "A2");
    f.root.add(&[&newer], Layer::System, true, "t").unwrap();
    let p = f.plan(true);
    assert_eq!((p.index.hits, p.index.missing, p.index.written), (2, 1, 1));
    let now = listing(&p);
    assert_ne!(now, before);
    assert_eq!(now, listing(&f.plan(false)));
    assert!(now.iter().any(|l| l.contains("\"A2 0\\n\"")), "{now:#?}");
    // The old image stays until gc; the new one is used next time.
    assert_eq!(f.images().len(), 4);
    assert_eq!(f.plan(true).index.hits, 3);
}

#[test]
fn a_touched_package_file_is_indexed_again_and_right() {
    let f = fixture();
    f.plan(true);
    let expected = listing(&f.plan(false));
    let file = fs::File::options()
        .write(true)
        .open(f.package_file("beta"))
        .unwrap();
    file.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(5))
        .unwrap();
    drop(file);
    let p = f.plan(true);
    assert_eq!((p.index.hits, p.index.stale, p.index.written), (2, 1, 1));
    assert_eq!(listing(&p), expected);
    assert_eq!(f.plan(true).index.hits, 3);
}

#[test]
fn a_package_changed_in_place_with_its_size_and_mtime_is_indexed_again() {
    let f = fixture();
    f.plan(true);
    let path = f.package_file("beta");
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    let mut bytes = fs::read(&path).unwrap();
    // The uncompressed heap holds the file contents: "b 0\n" becomes "B 0\n".
    let at = bytes
        .windows(4)
        .position(|w| w == b"b 0\n")
        .expect("uncompressed content");
    bytes[at] = b'B';
    // A rename would change the inode: rewrite the same file instead, then
    // put its modification time back. Only its change time moves (after a
    // pause longer than the kernel's clock tick).
    std::thread::sleep(std::time::Duration::from_millis(50));
    fs::write(&path, &bytes).unwrap();
    let file = fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(mtime).unwrap();
    drop(file);
    let p = f.plan(true);
    assert_eq!((p.index.hits, p.index.stale), (2, 1));
    let now = listing(&p);
    assert!(now.iter().any(|l| l.contains("\"B 0\\n\"")), "{now:#?}");
    assert_eq!(now, listing(&f.plan(false)));
}

#[test]
fn a_package_file_of_another_size_than_recorded_is_parsed_and_its_image_left_alone() {
    let f = fixture();
    f.plan(true);
    let images = f.images();
    let image = f.image_of("beta");
    let before = fs::read(&image).unwrap();
    // Replaced behind the state's back by a package of other content and
    // size: the generation still records the old size and hash.
    let other = write(&f.incoming, "beta", "a longer content");
    fs::copy(&other, f.package_file("beta")).unwrap();
    let p = f.plan(true);
    assert_eq!(
        (
            p.index.hits,
            p.index.missing,
            p.index.stale,
            p.index.written
        ),
        (2, 0, 0, 0),
        "{:?}",
        p.index
    );
    let now = listing(&p);
    assert!(
        now.iter().any(|l| l.contains("\"a longer content 0\\n\"")),
        "{now:#?}"
    );
    assert_eq!(f.images(), images);
    assert_eq!(fs::read(&image).unwrap(), before);
}

#[test]
fn an_image_that_cannot_be_opened_is_damaged_and_replaced() {
    let f = fixture();
    f.plan(true);
    let expected = listing(&f.plan(false));
    let image = f.image_of("gamma");
    // A symbolic link to itself: opening it fails (ELOOP), even as root.
    fs::remove_file(&image).unwrap();
    std::os::unix::fs::symlink(image.file_name().unwrap(), &image).unwrap();
    let p = f.plan(true);
    assert_eq!((p.index.hits, p.index.damaged, p.index.written), (2, 1, 1));
    assert_eq!(p.index.warnings.len(), 1, "{:?}", p.index.warnings);
    assert_eq!(listing(&p), expected);
    assert!(fs::symlink_metadata(&image).unwrap().is_file());
    assert_eq!(f.plan(true).index.hits, 3);
}

#[test]
fn a_damaged_image_is_ignored_with_a_warning_and_rebuilt() {
    let f = fixture();
    f.plan(true);
    let expected = listing(&f.plan(false));
    let image = f.image_of("alpha");
    let good = fs::read(&image).unwrap();
    let damages: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", good[..good.len() / 2].to_vec()),
        ("empty", Vec::new()),
        ("flipped", {
            let mut b = good.clone();
            let last = b.len() - 1;
            b[last] ^= 0x40;
            b
        }),
        ("garbage", vec![0xa5; good.len()]),
    ];
    for (what, bytes) in damages {
        fs::write(&image, &bytes).unwrap();
        let p = f.plan(true);
        assert_eq!(
            (p.index.hits, p.index.damaged, p.index.written),
            (2, 1, 1),
            "{what}"
        );
        assert_eq!(p.index.warnings.len(), 1, "{what}: {:?}", p.index.warnings);
        let w = &p.index.warnings[0];
        assert!(
            w.contains(&image.display().to_string()) && w.contains("rebuilt"),
            "{what}: {w}"
        );
        assert_eq!(listing(&p), expected, "{what}");
        assert_eq!(fs::read(&image).unwrap(), good, "{what}: rewritten");
    }
    assert_eq!(f.plan(true).index.hits, 3);
}

#[test]
fn an_unwritable_index_directory_leaves_the_plan_whole_with_one_warning() {
    let f = fixture();
    let expected = listing(&f.plan(false));
    // A file where the directory should be: every write fails (even as
    // root, which permissions would not stop).
    fs::write(f.index_dir(), b"not a directory").unwrap();
    let p = f.plan(true);
    assert_eq!(
        (p.index.missing, p.index.written, p.index.write_failures),
        (3, 0, 3),
        "{:?}",
        p.index
    );
    assert_eq!(p.index.warnings.len(), 1, "{:?}", p.index.warnings);
    assert!(
        p.index.warnings[0].contains("not written"),
        "{:?}",
        p.index.warnings
    );
    assert_eq!(listing(&p), expected);
    assert!(p.refused.is_empty());
}

#[test]
fn gc_removes_the_images_no_kept_generation_references() {
    let f = fixture();
    f.plan(true);
    let old_alpha = f.image_of("alpha");
    // Generation with a new alpha; its image too.
    f.root.remove(&["alpha"], true, "t").unwrap();
    let newer = write(&f.incoming, "alpha", "A2");
    f.root.add(&[&newer], Layer::System, true, "t").unwrap();
    f.plan(true);
    let new_alpha = f.image_of("alpha");
    assert_ne!(old_alpha, new_alpha);
    assert_eq!(f.images().len(), 4);
    // A file gc does not know stays, with a warning.
    let stray = f.index_dir().join("notes.txt");
    fs::write(&stray, b"x").unwrap();

    // Keeping every generation keeps every image.
    let report = f.root.gc(100).unwrap();
    assert!(report.removed_index_files.is_empty());
    assert!(old_alpha.is_file());

    // Keeping only the current one: the old alpha's image goes.
    let report = f.root.gc(1).unwrap();
    assert_eq!(report.removed_index_files.len(), 1, "{report:?}");
    assert!(!old_alpha.exists());
    assert!(new_alpha.is_file());
    assert!(stray.is_file());
    assert!(
        report.warnings.iter().any(|w| w.contains("notes.txt")),
        "{:?}",
        report.warnings
    );
    assert_eq!(f.images().len(), 3);
    assert_eq!(f.plan(true).index.hits, 3);
}

#[test]
fn an_older_generation_reads_images_but_writes_none() {
    let f = fixture();
    let spec = f.spec();
    let previous = || plan::plan(&Request::new(&spec, GenerationChoice::Previous), None).unwrap();
    // Generation 2 of 3: alpha and beta.
    let mut p = previous();
    assert_eq!((p.index.missing, p.index.pending), (2, 0), "{:?}", p.index);
    assert!(p.index_writes.is_empty());
    p.write_index_images();
    assert_eq!((p.index.written, p.index.write_failures), (0, 0));
    assert!(f.images().is_empty(), "{:?}", f.images());
    f.plan(true);
    assert_eq!(f.images().len(), 3);
    let p = previous();
    assert_eq!((p.index.hits, p.index.missing), (2, 0));
    let uncached = Request {
        index_cache: false,
        ..Request::new(&spec, GenerationChoice::Previous)
    };
    assert_eq!(listing(&p), listing(&plan::plan(&uncached, None).unwrap()));
}
