//! [`Root`]: an opened package root. Reading (`current`, `generations`,
//! `resolve_path`, `blocked_entries`, `package_info`) needs no lock; every
//! change is a transaction (see [`crate::txn`]) implemented in the modules
//! named for it (`ops`, `gc`, `sync`).

use std::collections::HashMap;
use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hpkg_format::{Package, PackageInfo};

use crate::active_list::{ActivePackage, Generation};
use crate::digest::{hash_reader, Digest};
use crate::error::{io_at, Error, Result};
use crate::fsutil::{exists, list_dir, read_limited};
use crate::generation::{self, GenerationList, Loaded};
use crate::layout::{file_name_problem, Layer, Layout};
use crate::lock::LockWait;

/// Top-level entries `init` accepts in an existing directory.
const ROOT_ENTRIES: [&str; 5] = ["system", "common", "user", "data", "lost+found"];

/// Largest `blocked-entries` file read.
const MAX_BLOCKED_ENTRIES: u64 = 4 << 20;

/// Identity and version of a file, for the hash cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// An opened package root.
///
/// `Root` is `Send + Sync`; transactions of any number of `Root`s, threads
/// and processes on one directory are serialized by its lock.
#[derive(Debug)]
pub struct Root {
    pub(crate) layout: Layout,
    pub(crate) lock_wait: LockWait,
    infos: Mutex<HashMap<Digest, Arc<PackageInfo>>>,
    hashes: Mutex<HashMap<PathBuf, (Stamp, Digest)>>,
}

impl Root {
    /// Open an initialised root (one with `system/state/`). Nothing is read
    /// or locked yet.
    pub fn open(path: impl AsRef<Path>) -> Result<Root> {
        let layout = Layout::new(path.as_ref());
        if !layout.state_dir().is_dir() {
            return Err(Error::NotARoot {
                path: path.as_ref().to_path_buf(),
            });
        }
        Ok(Root::with_layout(layout))
    }

    fn with_layout(layout: Layout) -> Root {
        Root {
            layout,
            lock_wait: LockWait::Block,
            infos: Mutex::new(HashMap::new()),
            hashes: Mutex::new(HashMap::new()),
        }
    }

    /// Create a package root at `path`, or return the existing one.
    ///
    /// * A missing directory is created; an existing one may only hold the
    ///   root's own entries (`system`, `common`, `user`, `data`, and
    ///   `lost+found`), else [`Error::NotEmpty`].
    /// * Idempotent: on an initialised root (one with `active.list` or a
    ///   generation file) it only creates missing directories and commits nothing.
    /// * Otherwise it commits generation 1 (reason `init`), holding every
    ///   `*.hpkg` already in the three packages directories (layer order, then
    ///   file-name order). A file there that is not a valid package makes init
    ///   fail with [`Error::InvalidPackage`] and commit nothing. Hidden files
    ///   and names without `.hpkg` are ignored. Dependencies are not checked
    ///   (`pkgctl status` reports them).
    pub fn init(path: impl AsRef<Path>) -> Result<Root> {
        let path = path.as_ref();
        let layout = Layout::new(path);
        if exists(path)? {
            if !path.is_dir() {
                return Err(Error::NotEmpty {
                    path: path.to_path_buf(),
                    entry: "(it is not a directory)".into(),
                });
            }
            if !is_initialised(&layout)? {
                if let Some((name, _)) = list_dir(path)?
                    .into_iter()
                    .find(|(name, _)| !ROOT_ENTRIES.contains(&name.as_str()))
                {
                    return Err(Error::NotEmpty {
                        path: path.to_path_buf(),
                        entry: name,
                    });
                }
            }
        }
        for dir in layout.directories() {
            fs::create_dir_all(&dir).map_err(io_at(&dir, "create directory"))?;
        }
        for dir in [
            crate::fsutil::parent_of(path),
            path,
            &layout.root().join("system"),
            &layout.state_dir(),
        ] {
            crate::fsutil::sync_dir(dir, "init.dirsync")?;
        }
        let root = Root::with_layout(layout);
        crate::txn::init_first_generation(&root)?;
        Ok(root)
    }

    /// The same root with another way to wait for the lock.
    pub fn with_lock_wait(mut self, wait: LockWait) -> Root {
        self.lock_wait = wait;
        self
    }

    /// The root's paths.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        self.layout.root()
    }

    /// The generation in force: `active.list`, or, when it is corrupt or
    /// missing, the newest valid `generations/<N>.list` with a loud warning in
    /// [`Loaded::warnings`]. Reads without the lock (lists are replaced by
    /// atomic rename, so a reader sees the old or the new list, whole).
    pub fn current(&self) -> Result<Loaded> {
        generation::load_current(&self.layout)
    }

    /// Every valid kept generation, oldest first, with warnings for corrupt
    /// generation files. The current generation is included even if its
    /// generation file is missing.
    pub fn generations(&self) -> Result<GenerationList> {
        let loaded = self.current()?;
        let mut warnings = loaded.warnings;
        let mut generations = Vec::new();
        for (n, parsed) in generation::scan(&self.layout)? {
            match parsed {
                Ok(g) if n <= loaded.generation.number => generations.push(g),
                // Above the current one: left by an interrupted commit.
                Ok(_) => {}
                Err(e) => warnings.push(format!("WARNING: {e}")),
            }
        }
        if !generations
            .iter()
            .any(|g| g.number == loaded.generation.number)
        {
            generations.push(loaded.generation.clone());
        }
        Ok(GenerationList {
            current: loaded.generation.number,
            generations,
            warnings,
        })
    }

    /// Generation `n` (from its generation file, or the current one).
    pub fn generation(&self, n: u64) -> Result<Generation> {
        let loaded = self.current()?;
        if loaded.generation.number == n {
            return Ok(loaded.generation);
        }
        if n > loaded.generation.number {
            return Err(Error::NoSuchGeneration(n));
        }
        match generation::read_list(&self.layout.generation_file(n)) {
            Err(e) if e.is_not_found() => Err(Error::NoSuchGeneration(n)),
            other => other,
        }
    }

    /// Where the file of `package` is: `store/<blake3>.hpkg` when the store
    /// holds that content, else `<layer>/packages/<file name>`. (The store
    /// only holds content by its hash, so it is always the right content;
    /// the packages file is the one a current package normally uses.)
    pub fn resolve_path(&self, package: &ActivePackage) -> PathBuf {
        let stored = self.layout.store_file(&package.hash);
        if stored.is_file() {
            stored
        } else {
            self.layout.package_file(package.layer, &package.file_name)
        }
    }

    /// Paths to hide from the mounted tree: the lines of
    /// `system/state/blocked-entries`, trimmed, without empty lines and `#`
    /// comments. A missing file means none.
    pub fn blocked_entries(&self) -> Result<Vec<String>> {
        let path = self.layout.blocked_entries();
        let bytes = match read_limited(&path, MAX_BLOCKED_ENTRIES) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let text = String::from_utf8(bytes).map_err(|_| Error::Corrupt {
            path: path.clone(),
            line: 0,
            message: "not UTF-8".into(),
        })?;
        Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect())
    }

    /// The metadata of an active package, read from [`Root::resolve_path`]
    /// and cached by content hash for the life of this `Root`.
    pub fn package_info(&self, package: &ActivePackage) -> Result<Arc<PackageInfo>> {
        if let Some(info) = self.cached_info(&package.hash) {
            return Ok(info);
        }
        let path = self.resolve_path(package);
        let pkg = Package::open(&path).map_err(|source| Error::InvalidPackage { path, source })?;
        Ok(self.remember_info(package.hash, pkg.info().clone()))
    }

    pub(crate) fn cached_info(&self, hash: &Digest) -> Option<Arc<PackageInfo>> {
        self.infos.lock().ok()?.get(hash).cloned()
    }

    pub(crate) fn remember_info(&self, hash: Digest, info: PackageInfo) -> Arc<PackageInfo> {
        let info = Arc::new(info);
        if let Ok(mut map) = self.infos.lock() {
            map.insert(hash, info.clone());
        }
        info
    }

    /// Size and hash of the file at `path`, cached by its identity (device,
    /// inode, size, mtime, ctime) for the life of this `Root`.
    pub fn hash_file(&self, path: &Path) -> Result<(u64, Digest)> {
        let file = File::open(path).map_err(io_at(path, "open"))?;
        let before = Stamp::of(&file.metadata().map_err(io_at(path, "stat"))?);
        if let Some((stamp, hash)) = self.hashes.lock().ok().and_then(|m| m.get(path).copied()) {
            if stamp == before {
                return Ok((before.size, hash));
            }
        }
        let (size, hash) = hash_reader(&file).map_err(io_at(path, "read"))?;
        let after = Stamp::of(&file.metadata().map_err(io_at(path, "stat"))?);
        if after == before && size == before.size {
            if let Ok(mut map) = self.hashes.lock() {
                map.insert(path.to_path_buf(), (before, hash));
            }
        }
        Ok((size, hash))
    }

    /// The package files present in `layer`'s directory: regular files with
    /// acceptable names (see [`crate::layout::file_name_problem`]), sorted.
    pub fn package_files(&self, layer: Layer) -> Result<Vec<String>> {
        let dir = self.layout.packages_dir(layer);
        let mut out = Vec::new();
        for (name, path) in list_dir(&dir)? {
            let utf8 = path.file_name().and_then(|n| n.to_str()) == Some(name.as_str());
            if utf8
                && file_name_problem(&name).is_none()
                && fs::symlink_metadata(&path)
                    .map(|m| m.is_file())
                    .unwrap_or(false)
            {
                out.push(name);
            }
        }
        Ok(out)
    }
}

/// Whether `active.list` or any generation file exists.
pub(crate) fn is_initialised(layout: &Layout) -> Result<bool> {
    if exists(&layout.active_list())? {
        return Ok(true);
    }
    match list_dir(&layout.generations_dir()) {
        Ok(entries) => Ok(entries
            .iter()
            .any(|(name, _)| generation::generation_file_number(name).is_some())),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}
