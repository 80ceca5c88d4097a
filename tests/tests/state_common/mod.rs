//! Helpers of the tests that mount package roots with state: small packages
//! built on the spot (each with one file `data/<name>.txt` holding a line
//! that names it), a root made with `state::Root`, and the files of a tree.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hpkg_format::writer::{create_from_dir, WriteOptions};

/// The content of `data/<name>.txt` in package `name`.
pub fn content(name: &str) -> Vec<u8> {
    format!("this is {name}, a test package\n")
        .repeat(50)
        .into_bytes()
}

/// Build package `name` at version 1.0-1 into `out`, requiring `requires`
/// (resolvable names), with the file `data/<name>.txt`.
pub fn build_package(name: &str, requires: &[&str], out: &Path) {
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir(src.path().join("data")).unwrap();
    std::fs::write(src.path().join(format!("data/{name}.txt")), content(name)).unwrap();
    let mut text = format!(
        "name {name}\nsummary \"s\"\ndescription \"d\"\nvendor v\npackager p\n\
         architecture any\nversion 1.0-1\ncopyrights c\nlicenses MIT\nprovides {{ {name} = 1.0 }}\n"
    );
    if !requires.is_empty() {
        text.push_str(&format!("requires {{ {} }}\n", requires.join("; ")));
    }
    let info = hpkg_format::info_text::parse(&text).unwrap();
    create_from_dir(
        src.path(),
        &info,
        out,
        &WriteOptions::default(),
        &mut |_| {},
    )
    .unwrap();
}

/// A scratch directory with a package root (`root/`) and built packages
/// waiting outside it (`in/<name>-1.0-1-any.hpkg`).
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    /// An empty scratch directory.
    pub fn new() -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix("pfs-state")
            .tempdir()
            .unwrap();
        std::fs::create_dir(dir.path().join("in")).unwrap();
        Scratch { dir }
    }

    /// The package root.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// A package root with state whose system layer holds the packages
    /// `names` (built here, in that order); its path and its `state::Root`.
    pub fn root_with(&self, names: &[&str]) -> (PathBuf, state::Root) {
        let root_dir = self.root();
        std::fs::create_dir_all(root_dir.join("system/packages")).unwrap();
        for name in names {
            std::fs::copy(
                self.package(name, &[]),
                root_dir.join(format!("system/packages/{name}-1.0-1-any.hpkg")),
            )
            .unwrap();
        }
        let root = state::Root::init(&root_dir).unwrap();
        (root_dir, root)
    }

    /// Build package `name` outside the root and return its path.
    pub fn package(&self, name: &str, requires: &[&str]) -> PathBuf {
        let p = self
            .dir
            .path()
            .join("in")
            .join(format!("{name}-1.0-1-any.hpkg"));
        build_package(name, requires, &p);
        p
    }
}

/// Every regular file below `root`: relative path -> content.
pub fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(p);
            } else if t.is_file() {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// The files a tree of the packages `names` must have.
pub fn expected(names: &[&str]) -> BTreeMap<String, Vec<u8>> {
    names
        .iter()
        .map(|n| (format!("data/{n}.txt"), content(n)))
        .collect()
}
