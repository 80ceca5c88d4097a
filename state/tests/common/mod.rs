//! Helpers shared by the integration tests: golden fixtures, scratch roots and
//! an independent consistency check of a root (written against the on-disk
//! format, not through the code under test where avoidable).
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use state::{Digest, Generation, Layer, Layout, Root};

/// The golden fixtures directory (`PACKAGEFS_FIXTURES`, else `../shared/fixtures`
/// beside the checkout).
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

/// Golden packages without requirements, each with distinct content.
pub const PLAIN: [&str; 4] = [
    "haiku/artificial-1.0.0-any.hpkg",
    "haiku-tool/minimal-zstd.hpkg",
    "haiku-tool/minimal-buildpkg.hpkg",
    "haiku/ctags_source-5.8-5-source.hpkg",
];

/// A scratch root and a directory of incoming package files.
pub struct Scratch {
    pub dir: tempfile::TempDir,
    pub root: Root,
}

impl Scratch {
    /// A fresh initialised root.
    pub fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("in")).unwrap();
        let root = Root::init(dir.path().join("root")).unwrap();
        Scratch { dir, root }
    }

    /// Copy fixture `rel` to `in/<name>` and return that path.
    pub fn incoming(&self, rel: &str, name: &str) -> PathBuf {
        let dst = self.dir.path().join("in").join(name);
        fs::copy(fixtures().join(rel), &dst).unwrap();
        dst
    }

    pub fn layout(&self) -> &Layout {
        self.root.layout()
    }
}

/// blake3 of a file.
pub fn file_hash(path: &Path) -> Digest {
    Digest::of_bytes(&fs::read(path).unwrap())
}

/// Parse a list file directly.
pub fn read_gen(path: &Path) -> Generation {
    Generation::parse(&fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every generation file as (number, generation); panics on a corrupt one.
pub fn generation_files(layout: &Layout) -> Vec<(u64, Generation)> {
    let mut out: Vec<(u64, Generation)> = fs::read_dir(layout.generations_dir())
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            let n: u64 = name.strip_suffix(".list")?.parse().ok()?;
            Some((n, read_gen(&e.path())))
        })
        .collect();
    out.sort_by_key(|(n, _)| *n);
    out
}

/// Whether a package's content is reachable (store by hash, or packages path).
pub fn reachable(layout: &Layout, p: &state::ActivePackage) -> bool {
    [
        layout.store_file(&p.hash),
        layout.package_file(p.layer, &p.file_name),
    ]
    .iter()
    .any(|path| {
        path.is_file() && fs::metadata(path).unwrap().len() == p.size && file_hash(path) == p.hash
    })
}

/// Names of the files in `layer`'s packages directory that are not hidden.
pub fn visible_files(layout: &Layout, layer: Layer) -> BTreeSet<String> {
    fs::read_dir(layout.packages_dir(layer))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with('.'))
        .collect()
}

/// Every leftover temporary or journal under the state and packages dirs.
pub fn leftovers(layout: &Layout) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in layout.temp_dirs() {
        for e in fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            if e.file_name().to_string_lossy().contains(".tmp-") {
                out.push(e.path());
            }
        }
    }
    if layout.journal().exists() {
        out.push(layout.journal());
    }
    out
}

/// The state a committed root must be in, checked against the disk:
/// `active.list` parses and equals its generation file; no generation file
/// above it; the packages directories hold exactly the current packages with
/// their content; every kept generation's packages are reachable.
/// With `clean`, no temporaries or journal may be left either.
pub fn assert_consistent(layout: &Layout, clean: bool) -> Generation {
    let current = read_gen(&layout.active_list());
    let gens = generation_files(layout);
    for (n, g) in &gens {
        assert_eq!(*n, g.number);
        assert!(
            !clean || *n <= current.number,
            "uncommitted generation file {n} left"
        );
    }
    let own = gens
        .iter()
        .find(|(n, _)| *n == current.number)
        .map(|(_, g)| g.clone())
        .expect("current generation file");
    assert_eq!(own.packages, current.packages);
    for layer in Layer::ALL {
        let want: BTreeSet<String> = current
            .packages
            .iter()
            .filter(|p| p.layer == layer)
            .map(|p| p.file_name.clone())
            .collect();
        assert_eq!(
            visible_files(layout, layer),
            want,
            "{layer} packages directory"
        );
    }
    for p in &current.packages {
        let path = layout.package_file(p.layer, &p.file_name);
        assert_eq!(file_hash(&path), p.hash, "{}", path.display());
        assert_eq!(fs::metadata(&path).unwrap().len(), p.size);
    }
    for (n, g) in &gens {
        if *n > current.number {
            continue;
        }
        for p in &g.packages {
            assert!(
                reachable(layout, p),
                "generation {n}: {} unreachable",
                p.display_name()
            );
        }
    }
    if clean {
        assert_eq!(leftovers(layout), Vec::<PathBuf>::new());
    }
    current
}
