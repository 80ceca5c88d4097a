//! The whole mount: the snapshot being served, the nodes of replaced
//! snapshots that the kernel still holds, and the snapshots open files read.
//!
//! A request takes the [`Volume::read`] guard for as long as it runs, reply
//! included, so a swap ([`Volume::swap`], under the write lock) falls
//! between requests: every reply before it was computed from the old tree
//! and has reached the kernel, every one after it from the new tree, and
//! the invalidations sent after the swap always come after the replies
//! they correct.
//!
//! Lifetimes follow the kernel, never a fixed count:
//!
//! * a node that exists in the new tree keeps its inode number (see
//!   [`crate::inodes`]) and its lookup count moves over with it;
//! * a node that disappears while the kernel still holds references to it
//!   (its lookup count, kept per node by [`Snapshot::count_lookup`] and
//!   [`Snapshot::forget`]) becomes an *orphan*: its attributes are kept,
//!   `getattr` answers them, and a lookup or listing inside it finds
//!   nothing (as in a removed directory). The orphan is dropped when the
//!   kernel has forgotten it;
//! * an orphan that is a file also keeps its package and entry, so a file
//!   opened before its package was removed or updated keeps reading the
//!   content it was opened with ([`Volume::read_orphan`]): the kernel holds
//!   a reference to the inode of every open file, so the orphan lives
//!   exactly as long as it can be read. Open files need no handle, and the
//!   kernel opens and closes files without asking the daemon
//!   (`FUSE_NO_OPEN_SUPPORT`). Only the package's index stays in memory
//!   for it, never the replaced tree.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard};

use hpkg_format::{EntryId, EntryKind};
use state::plan::{MountedPackage, Tree};

use crate::fs::{Attr, FsError, Snapshot};
use crate::inodes::{self, Invalidations, GONE};

/// A node of a replaced tree that the kernel still references.
#[derive(Debug, Clone)]
struct Orphan {
    /// Its attributes when it was replaced.
    attr: Attr,
    /// The kernel's references to it.
    lookups: u64,
    /// For a file: where its content is, and its path (for log lines).
    content: Option<Content>,
}

/// Where an orphaned file's content lives.
#[derive(Debug, Clone)]
struct Content {
    package: MountedPackage,
    entry: EntryId,
    path: Vec<u8>,
}

/// How the kernel is told to forget cached entries and attributes: the
/// FUSE session's notifier, behind a seam the file-system core can be
/// tested without.
pub trait Notify {
    /// Forget the attributes and cached data (for a directory, the listing)
    /// of inode `ino`.
    fn inval_inode(&self, ino: u64) -> std::io::Result<()>;
    /// Forget the entry `name` of directory `parent` (negative ones too).
    fn inval_entry(&self, parent: u64, name: &[u8]) -> std::io::Result<()>;
}

/// Counts for the log and the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeStats {
    /// Nodes of replaced trees the kernel still references.
    pub orphans: usize,
    /// Of those, files whose package stays open for them.
    pub orphan_files: usize,
}

/// The mounted file system across live changes.
#[derive(Debug)]
pub struct Volume {
    current: RwLock<Arc<Snapshot>>,
    orphans: Mutex<HashMap<u64, Orphan>>,
}

impl Volume {
    /// Serve `snapshot`.
    pub fn new(snapshot: Snapshot) -> Volume {
        Volume {
            current: RwLock::new(Arc::new(snapshot)),
            orphans: Mutex::new(HashMap::new()),
        }
    }

    /// The snapshot being served, held until the guard drops: hold it
    /// across the whole request, reply included (see the module comment).
    pub fn read(&self) -> RwLockReadGuard<'_, Arc<Snapshot>> {
        self.current.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The snapshot being served.
    pub fn current(&self) -> Arc<Snapshot> {
        self.read().clone()
    }

    /// The attributes of orphan `ino` (a node of a replaced tree the kernel
    /// still references).
    pub fn orphan_attr(&self, ino: u64) -> Option<Attr> {
        self.orphans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&ino)
            .map(|o| o.attr)
    }

    /// Whether `ino` is an orphan.
    pub fn is_orphan(&self, ino: u64) -> bool {
        self.orphan_attr(ino).is_some()
    }

    /// The kernel forgot `n` references to `ino`. `current` is the guard of
    /// the request ([`Volume::read`]).
    pub fn forget(&self, current: &Snapshot, ino: u64, n: u64) {
        if current.forget(ino, n) {
            return;
        }
        let mut orphans = self.orphans.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(o) = orphans.get_mut(&ino) {
            o.lookups = o.lookups.saturating_sub(n);
            if o.lookups == 0 {
                orphans.remove(&ino);
            }
        }
    }

    /// Read up to `size` bytes at `offset` of orphan `ino`, a file whose
    /// path disappeared while the kernel still holds it (an open file),
    /// through `current`'s chunk cache. `Stale` if `ino` is no orphaned file.
    pub fn read_orphan(
        &self,
        current: &Snapshot,
        ino: u64,
        offset: u64,
        size: u32,
    ) -> Result<Vec<u8>, FsError> {
        let mut buf = Vec::new();
        let n = self.read_orphan_into(current, ino, offset, size, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// [`Volume::read_orphan`] into `buf`, as [`Snapshot::read_into`] does.
    pub fn read_orphan_into(
        &self,
        current: &Snapshot,
        ino: u64,
        offset: u64,
        size: u32,
        buf: &mut Vec<u8>,
    ) -> Result<usize, FsError> {
        let content = self
            .orphans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&ino)
            .and_then(|o| o.content.clone())
            .ok_or(FsError::Stale)?;
        current.read_entry_into(
            &content.package,
            content.entry,
            offset,
            size,
            None,
            || content.path.clone(),
            buf,
        )
    }

    /// Counts of what replaced snapshots still hold.
    pub fn stats(&self) -> VolumeStats {
        let orphans = self.orphans.lock().unwrap_or_else(PoisonError::into_inner);
        VolumeStats {
            orphans: orphans.len(),
            orphan_files: orphans.values().filter(|o| o.content.is_some()).count(),
        }
    }

    /// Serve `tree` (showing `generation`) from now on, numbered so that
    /// what it shares with the served tree keeps its inode numbers. Returns
    /// what the kernel must now be told (see [`send`]).
    ///
    /// Only one thread swaps (the live thread): the served snapshot cannot
    /// change between numbering the new tree and the swap.
    pub fn swap(&self, tree: Tree, generation: Option<u64>) -> Invalidations {
        let old = self.current();
        let carried = inodes::carry(old.tree(), old.numbering(), &tree);
        let new = old.successor(tree, carried.numbering, generation);
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let mut orphans = self.orphans.lock().unwrap_or_else(PoisonError::into_inner);
        for (i, &j) in carried.old_to_new.iter().enumerate() {
            let i = i as u32;
            let n = old.lookups_of(i);
            if n == 0 {
                continue;
            }
            if j != GONE {
                new.set_lookups(j, n);
            } else if let Some(node) = old.tree().at(i) {
                let content = match (node.kind(), node.package(), node.entry_id()) {
                    (EntryKind::File, Some(package), Some(entry)) => Some(Content {
                        package: package.clone(),
                        entry,
                        path: node.path(),
                    }),
                    _ => None,
                };
                orphans.insert(
                    old.ino_of(&node),
                    Orphan {
                        attr: old.attr_of(&node),
                        lookups: u64::from(n),
                        content,
                    },
                );
            }
        }
        *current = Arc::new(new);
        carried.invalidations
    }
}

/// Tell the kernel what `inv` lists (failures are logged at debug level: an
/// entry the kernel does not have cannot be stale).
pub fn send(notify: &dyn Notify, inv: &Invalidations) {
    for (parent, name) in &inv.entries {
        if let Err(e) = notify.inval_entry(*parent, name) {
            tracing::debug!(
                "invalidating entry {} of inode {parent}: {e}",
                String::from_utf8_lossy(name)
            );
        }
    }
    for &ino in &inv.inodes {
        if let Err(e) = notify.inval_inode(ino) {
            tracing::debug!("invalidating inode {ino}: {e}");
        }
    }
}
