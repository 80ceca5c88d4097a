//! Inode numbers that survive live changes.
//!
//! A tree's nodes are addressed by index ([`state::plan::Tree`]); the kernel
//! knows them by inode number. The first tree of a mount numbers node `i`
//! as `i + 1` (the root is 1), so two mounts of the same packages agree.
//! Every later tree is numbered by [`carry`], which walks the replaced tree
//! and the new one side by side, matching children by name:
//!
//! * a directory that exists in both keeps its number, whichever packages
//!   provide it now: a process whose working directory or open directory is
//!   inside the tree goes on working, and the mounts on the shine-through
//!   directories stay where they are;
//! * a file or symlink keeps its number while it comes from the same entry
//!   of the same opened package; one that now comes from another package
//!   (an update) gets a new number, as a file replaced by a package manager
//!   on a disk file system gets a new inode. The kernel's page cache of the
//!   old content then can never be served for the new one, and processes
//!   holding the old file keep it;
//! * a path that appears gets a number never used before in the mount.
//!
//! [`carry`] also says what the kernel must forget: the directories whose
//! listing changed, the names that appeared, disappeared or now name another
//! inode, and the nodes whose attributes changed.

use std::collections::HashMap;

use hpkg_format::EntryKind;
use state::plan::{NodeRef, Tree};

/// Inode number of the root directory.
pub const ROOT_INO: u64 = 1;

/// In [`Carried::old_to_new`]: the old node has no successor.
pub const GONE: u32 = u32::MAX;

/// The inode number of every node of one tree, and back.
#[derive(Debug)]
pub struct Numbering {
    /// Node index → inode number; `None`: node `i` is `i + 1`.
    inos: Option<Box<[u64]>>,
    /// Inode number → node index (empty when `inos` is `None`).
    by_ino: HashMap<u64, u32>,
    /// Nodes in the tree.
    len: u32,
    /// The next number never given out in this mount.
    next: u64,
}

impl Numbering {
    /// The numbering of a mount's first tree: node `i` is `i + 1`.
    pub fn first(tree: &Tree) -> Numbering {
        let len = u32::try_from(tree.len()).unwrap_or(u32::MAX);
        Numbering {
            inos: None,
            by_ino: HashMap::new(),
            len,
            next: u64::from(len) + 1,
        }
    }

    /// The inode number of node `index`.
    pub fn ino(&self, index: u32) -> u64 {
        match &self.inos {
            None => u64::from(index) + 1,
            Some(inos) => inos.get(index as usize).copied().unwrap_or(0),
        }
    }

    /// The node index of inode `ino` (`None`: not in this tree).
    pub fn index(&self, ino: u64) -> Option<u32> {
        match &self.inos {
            None => u32::try_from(ino.checked_sub(1)?)
                .ok()
                .filter(|&i| i < self.len),
            Some(_) => self.by_ino.get(&ino).copied(),
        }
    }
}

/// What the kernel must be told after a swap.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Invalidations {
    /// Inodes whose attributes (or, for a directory, listing) changed.
    pub inodes: Vec<u64>,
    /// `(parent inode, name)` of names that appeared, disappeared, or name
    /// another inode now.
    pub entries: Vec<(u64, Vec<u8>)>,
}

/// The numbering of a new tree, carried over from the tree it replaces.
#[derive(Debug)]
pub struct Carried {
    /// The new tree's numbering.
    pub numbering: Numbering,
    /// For each node of the old tree, the node of the new tree that keeps
    /// its inode number, or [`GONE`].
    pub old_to_new: Vec<u32>,
    /// What the kernel must forget.
    pub invalidations: Invalidations,
}

/// Whether two nodes of the same kind show the same thing: the same entry
/// of the same opened package (or both synthetic: the root, a shine-through
/// directory no package has).
fn same_source(a: &NodeRef<'_>, b: &NodeRef<'_>) -> bool {
    match (a.package(), b.package()) {
        (Some(x), Some(y)) => x.same_as(y) && a.entry_id() == b.entry_id(),
        (None, None) => a.mode() == b.mode(),
        _ => false,
    }
}

/// Number `new` so that what it shares with `old` (numbered `old_numbers`)
/// keeps its inode numbers (see the module comment).
pub fn carry(old: &Tree, old_numbers: &Numbering, new: &Tree) -> Carried {
    let mut inos = vec![0u64; new.len()];
    let mut old_to_new = vec![GONE; old.len()];
    let mut inv = Invalidations::default();
    if let Some(first) = inos.first_mut() {
        *first = ROOT_INO;
    }
    if let Some(first) = old_to_new.first_mut() {
        *first = 0;
    }
    // The root's time is the newest package file's: tell the kernel always.
    inv.inodes.push(ROOT_INO);
    let mut stack = vec![(old.root(), new.root())];
    while let Some((o, n)) = stack.pop() {
        let dir_ino = old_numbers.ino(o.index());
        let mut listing_changed = false;
        let mut oc = o.children().peekable();
        let mut nc = n.children().peekable();
        loop {
            let order = match (oc.peek(), nc.peek()) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(a), Some(b)) => a.name().cmp(b.name()),
            };
            match order {
                std::cmp::Ordering::Less => {
                    // Gone.
                    if let Some(a) = oc.next() {
                        listing_changed = true;
                        inv.entries.push((dir_ino, a.name().to_vec()));
                    }
                }
                std::cmp::Ordering::Greater => {
                    // New.
                    if let Some(b) = nc.next() {
                        listing_changed = true;
                        inv.entries.push((dir_ino, b.name().to_vec()));
                    }
                }
                std::cmp::Ordering::Equal => {
                    let (Some(a), Some(b)) = (oc.next(), nc.next()) else {
                        break;
                    };
                    let kind = a.kind();
                    let same = same_source(&a, &b);
                    let keeps = kind == b.kind() && (kind == EntryKind::Directory || same);
                    if !keeps {
                        listing_changed = true;
                        inv.entries.push((dir_ino, a.name().to_vec()));
                        continue;
                    }
                    let ino = old_numbers.ino(a.index());
                    if let Some(slot) = inos.get_mut(b.index() as usize) {
                        *slot = ino;
                    }
                    if let Some(slot) = old_to_new.get_mut(a.index() as usize) {
                        *slot = b.index();
                    }
                    if kind == EntryKind::Directory {
                        if !same {
                            inv.inodes.push(ino);
                        }
                        stack.push((a, b));
                    }
                }
            }
        }
        if listing_changed && dir_ino != ROOT_INO {
            inv.inodes.push(dir_ino);
        }
    }
    let mut next = old_numbers.next;
    for slot in inos.iter_mut().filter(|s| **s == 0) {
        *slot = next;
        next += 1;
    }
    let by_ino = inos
        .iter()
        .enumerate()
        .map(|(i, &ino)| (ino, i as u32))
        .collect();
    Carried {
        numbering: Numbering {
            inos: Some(inos.into_boxed_slice()),
            by_ino,
            len: u32::try_from(new.len()).unwrap_or(u32::MAX),
            next,
        },
        old_to_new,
        invalidations: inv,
    }
}
