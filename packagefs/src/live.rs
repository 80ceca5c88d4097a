//! Live changes: a mount of the current generation of a root with state
//! follows the root while mounted.
//!
//! [`Trees`] holds the tree being served and lets the FUSE adapter route
//! each request to the tree an inode number belongs to (the tree's *epoch*
//! is in its inode numbers' high 32 bits, see [`crate::tree`]). An open file
//! keeps reading the tree it was opened in (its handle holds an `Arc` of
//! it), even after its package was removed.
//!
//! [`watch`] starts a thread that watches the three `packages/` directories
//! (files closed after writing, moved in or out, deleted) and
//! `system/state/` (`active.list` or `blocked-entries` replaced, as `pkgctl`
//! does). A change in a packages directory makes the state follow it
//! (`state::Root::sync_from_dirs`, handing over the mount's open descriptor
//! of a deleted package so its content can be retained); an invalid or
//! half-written file is refused with a log line and looked at again on the
//! next event. Whenever the generation in force (or the blocked entries)
//! then differs from the one served, the new tree is built, swapped in, and
//! the kernel told to forget the root's entries.
//!
//! Packages that did not change are reused (not re-opened), so their
//! decompressed chunks stay cached.
//!
//! Limitations: a lookup answered from the old tree just as the swap
//! happens can leave a stale entry in the kernel; the root's entries are
//! invalidated twice (right after the swap and 200 ms later) to close
//! that window in practice. Inode numbers are not stable across swaps:
//! every swap gives every node but the root a new one, even for unchanged
//! paths but the shine-through directories' (a process holding a directory of the old tree open keeps seeing
//! the old tree there until it looks the path up again; `stat` of an
//! unchanged file shows another inode number after a swap). The last [`KEPT_TREES`] replaced trees
//! stay reachable by their inode numbers; older ones answer `ENOENT`.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use fuser::{INodeNo, Notifier};
use inotify::{Inotify, WatchDescriptor, WatchMask};

use crate::fs::PackageFs;
use crate::source::{self, GenerationChoice, Layer, MountSpec};
use crate::tree::{Tree, ROOT_INO};

/// Replaced trees kept reachable by their inode numbers.
pub const KEPT_TREES: usize = 8;

/// When to invalidate the root's entries a second time after a swap.
const RECHECK: Duration = Duration::from_millis(200);

/// How long to wait for more events before acting on a change.
const SETTLE: Duration = Duration::from_millis(100);

/// The trees of a mount: the one being served, the recently replaced ones,
/// and the ones open files read.
#[derive(Debug)]
pub struct Trees {
    current: RwLock<Arc<PackageFs>>,
    old: Mutex<VecDeque<Arc<PackageFs>>>,
    handles: Mutex<HashMap<u64, Arc<PackageFs>>>,
    next_fh: AtomicU64,
    next_epoch: AtomicU32,
}

impl Trees {
    /// Serve `fs`.
    pub fn new(fs: Arc<PackageFs>) -> Trees {
        let epoch = fs.tree().epoch();
        Trees {
            current: RwLock::new(fs),
            old: Mutex::new(VecDeque::new()),
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            next_epoch: AtomicU32::new(epoch.wrapping_add(1)),
        }
    }

    /// The tree being served.
    pub fn current(&self) -> Arc<PackageFs> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The tree inode `ino` belongs to: the current one for the root and
    /// for unknown epochs (which then answer "no such node").
    pub fn for_ino(&self, ino: u64) -> Arc<PackageFs> {
        let current = self.current();
        if Tree::is_stable_ino(ino) || Tree::epoch_of(ino) == current.tree().epoch() {
            return current;
        }
        let old = self.old.lock().unwrap_or_else(PoisonError::into_inner);
        old.iter()
            .find(|fs| fs.tree().epoch() == Tree::epoch_of(ino))
            .cloned()
            .unwrap_or(current)
    }

    /// Remember that a file was opened in `fs`; returns its handle.
    pub fn open_handle(&self, fs: Arc<PackageFs>) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.handles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(fh, fs);
        fh
    }

    /// The tree file handle `fh` was opened in.
    pub fn handle(&self, fh: u64) -> Option<Arc<PackageFs>> {
        self.handles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&fh)
            .cloned()
    }

    /// Forget file handle `fh`.
    pub fn release(&self, fh: u64) {
        self.handles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&fh);
    }

    /// Serve `tree` (numbered in a new epoch) from now on, sharing the
    /// current tree's cache; returns the replaced tree.
    pub fn swap(&self, tree: Tree) -> Arc<PackageFs> {
        let epoch = self.next_epoch.fetch_add(1, Ordering::Relaxed);
        // `old` is locked before `current` changes and until the replaced
        // tree is in it: a request that reads the new `current` and then
        // looks for its inode's (older) epoch must find the replaced tree
        // there, not fall through to "no such node". (`for_ino` never holds
        // both locks at once, so the order cannot deadlock.)
        let mut old = self.old.lock().unwrap_or_else(PoisonError::into_inner);
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let fs = Arc::new(PackageFs::sharing(tree.with_epoch(epoch), &current));
        let replaced = std::mem::replace(&mut *current, fs);
        drop(current);
        old.push_back(replaced.clone());
        while old.len() > KEPT_TREES {
            old.pop_front();
        }
        replaced
    }
}

/// Why watching could not start.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The root has no state to follow.
    #[error("{}: not a package root with state: {source}", path.display())]
    NoState {
        /// The root.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<state::Error>,
    },
    /// inotify failed.
    #[error("cannot watch {}: {source}", path.display())]
    Watch {
        /// What was to be watched.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// What the served tree was built from, to tell whether a reload changes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Served {
    generation: Option<u64>,
    blocked: Vec<String>,
}

/// Follow the root of `spec` (current generation) from a background
/// thread, swapping new trees into `trees` and invalidating the kernel's
/// caches through `notifier`.
pub fn watch(
    trees: Arc<Trees>,
    notifier: Notifier,
    spec: MountSpec,
    root: &Path,
) -> Result<(), LiveError> {
    let state_root = state::Root::open(root).map_err(|source| LiveError::NoState {
        path: root.to_path_buf(),
        source: Box::new(source),
    })?;
    let mut inotify = Inotify::init().map_err(|source| LiveError::Watch {
        path: root.to_path_buf(),
        source,
    })?;
    let mut packages_wds: Vec<WatchDescriptor> = Vec::new();
    for layer in Layer::ALL {
        let dir = root.join(layer.name()).join("packages");
        if !dir.is_dir() {
            continue;
        }
        let wd = inotify
            .watches()
            .add(
                &dir,
                WatchMask::CLOSE_WRITE
                    | WatchMask::MOVED_TO
                    | WatchMask::MOVED_FROM
                    | WatchMask::DELETE,
            )
            .map_err(|source| LiveError::Watch { path: dir, source })?;
        packages_wds.push(wd);
    }
    let state_dir = state_root.layout().state_dir();
    inotify
        .watches()
        .add(&state_dir, WatchMask::CLOSE_WRITE | WatchMask::MOVED_TO)
        .map_err(|source| LiveError::Watch {
            path: state_dir.clone(),
            source,
        })?;
    let initial = source::resolve_with(&spec, GenerationChoice::Current)
        .map(|r| Served {
            generation: r.generation,
            blocked: r.blocked,
        })
        .unwrap_or(Served {
            generation: None,
            blocked: Vec::new(),
        });
    let thread = move || {
        let mut served = initial;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let (mut packages, mut state_changed) = (false, false);
            let mut classify = |wd: &WatchDescriptor, name: Option<OsString>| {
                let name = name.unwrap_or_default();
                let name = name.to_string_lossy();
                if packages_wds.contains(wd) {
                    packages |= name.ends_with(".hpkg") && !name.starts_with('.');
                } else {
                    state_changed |= name == "active.list" || name == "blocked-entries";
                }
            };
            match inotify.read_events_blocking(&mut buf) {
                Ok(events) => {
                    for e in events {
                        classify(&e.wd, e.name.map(|n| n.to_os_string()));
                    }
                }
                Err(e) => {
                    tracing::error!("live changes: reading inotify events failed: {e}; no longer following the root");
                    return;
                }
            }
            // Let a burst of events settle, then take them all.
            std::thread::sleep(SETTLE);
            while let Ok(events) = inotify.read_events(&mut buf) {
                let mut any = false;
                for e in events {
                    any = true;
                    classify(&e.wd, e.name.map(|n| n.to_os_string()));
                }
                if !any {
                    break;
                }
            }
            if !packages && !state_changed {
                continue;
            }
            if packages {
                sync(&state_root, &trees);
            }
            served = reload(&spec, &trees, &notifier, served);
        }
    };
    std::thread::Builder::new()
        .name("live".into())
        .spawn(thread)
        .map_err(|source| LiveError::Watch {
            path: root.to_path_buf(),
            source,
        })?;
    Ok(())
}

/// Make the state follow the packages directories, handing over the
/// mount's descriptors of packages that were deleted.
fn sync(root: &state::Root, trees: &Trees) {
    let served = trees.current();
    let layout = root.layout().clone();
    let open_file = |p: &state::ActivePackage| -> Option<File> {
        let in_dir = layout.package_file(p.layer, &p.file_name);
        let stored = layout.store_file(&p.hash);
        served
            .tree()
            .packages()
            .iter()
            .find(|m| m.path() == in_dir || m.path() == stored)
            .and_then(|m| m.file())
            .and_then(|f| f.try_clone().ok())
    };
    match root.sync_from_dirs("packagefs: packages directory changed", &open_file) {
        Ok(report) => {
            for r in &report.rejected {
                tracing::warn!(
                    file = %r.path.display(),
                    "package {} ({}) is not activated: {}",
                    r.path.display(),
                    r.layer,
                    r.reason
                );
            }
            for w in &report.commit.warnings {
                tracing::warn!("{w}");
            }
            if report.commit.changed {
                tracing::info!(
                    "packages directories changed: generation {}",
                    report.commit.generation.number
                );
            }
        }
        Err(e) => tracing::error!("following the packages directories failed: {e}"),
    }
}

/// Build and swap in the tree of the current generation if it differs from
/// `served`; returns what is served afterwards.
fn reload(spec: &MountSpec, trees: &Trees, notifier: &Notifier, served: Served) -> Served {
    let resolved = match source::resolve_with(spec, GenerationChoice::Current) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("reloading the root failed: {e}; the mount stays as it was");
            return served;
        }
    };
    let now = Served {
        generation: resolved.generation,
        blocked: resolved.blocked.clone(),
    };
    if now == served {
        return served;
    }
    let current = trees.current();
    let tree = match crate::build_tree_reusing(&resolved, false, Some(current.tree())) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("building the new tree failed: {e}; the mount stays as it was");
            return served;
        }
    };
    let old = trees.swap(tree);
    let new = trees.current();
    tracing::info!(
        "now serving generation {} ({} packages)",
        now.generation.unwrap_or(0),
        new.tree().packages().len()
    );
    invalidate(notifier, &old, &new);
    // A lookup that started before the swap may have answered from the old
    // tree after the invalidation: forget again once it has surely ended.
    std::thread::sleep(RECHECK);
    invalidate(notifier, &old, &new);
    now
}

/// Make the kernel forget the root's entries (old and new names, so that
/// negative entries go too) and the root's attributes and listing. Every
/// node below the root has a new inode number, so forgetting the top level
/// is enough for path lookups to reach the new tree.
///
/// The shine-through directories are left alone: invalidating a dentry
/// detaches the mounts on it (the kernel's `d_invalidate`), and theirs
/// carry the bind mounts of the data directories. They keep their inode
/// numbers in every tree, so the kernel's revalidation after the entry TTL
/// finds them unchanged too.
fn invalidate(notifier: &Notifier, old: &PackageFs, new: &PackageFs) {
    let mut names: Vec<Vec<u8>> = Vec::new();
    for fs in [old, new] {
        names.extend(fs.tree().root().children().map(|c| c.name().to_vec()));
    }
    names.sort();
    names.dedup();
    let shine = new.tree().shine_through();
    names.retain(|n| !shine.iter().any(|s| s.as_bytes() == n.as_slice()));
    for name in names {
        let os = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&name);
        if let Err(e) = notifier.inval_entry(INodeNo(ROOT_INO), os) {
            tracing::debug!("invalidating /{}: {e}", String::from_utf8_lossy(&name));
        }
    }
    if let Err(e) = notifier.inval_inode(INodeNo(ROOT_INO), 0, 0) {
        tracing::debug!("invalidating the root: {e}");
    }
}
