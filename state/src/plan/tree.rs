//! The union tree: every node of the mounted file system, addressed by its
//! index, and the paths one package hides from another.
//!
//! The tree adds 16 bytes per node to the packages' own TOC indexes: a flat
//! `Vec<Node>` in breadth-first order, where a node names the package and
//! TOC entry that provide it and the contiguous range of its children,
//! sorted by name for binary-search lookup. No parent is stored: the
//! children ranges follow each other in node order (a node without children
//! has an empty range where the previous one ended), so a node's parent is
//! the first node whose range ends past it, found by binary search. Only
//! `..` and log messages need it. Names, modes, times,
//! sizes, symlink targets and attributes are read from the owning package's
//! TOC, never copied. The root is node 0. Inode numbers are the daemon's
//! business: it numbers nodes so that a path keeps its number across trees.
//!
//! *Shine-through* directories ([`Tree::with_shine_through`]) are top-level
//! directories that always exist (a synthetic empty one where no package has
//! the name): the bind mounts of the data directories sit on them.

pub use super::union::HIDDEN_TOP_LEVEL;

use std::collections::HashSet;
use std::ops::Range;
use std::path::Path;
use std::time::SystemTime;

use hpkg_format::{EntryAttr, EntryId, EntryKind, Toc};

use super::package::MountedPackage;
use super::{tree_image, union};

/// `Node::pkg` of the synthetic root directory.
pub(super) const ROOT_PKG: u32 = u32::MAX;

/// Permission bits of the root directory.
const ROOT_MODE: u16 = 0o755;

/// `Node::pkg` of a synthetic shine-through directory (its `entry` is its
/// position in the shine-through list).
pub(super) const SHINE_PKG: u32 = u32::MAX - 1;

/// Permission bits of a shine-through directory that no package has:
/// 1777 for `tmp`, 0700 for `root`, 0755 otherwise.
pub fn shine_default_mode(name: &str) -> u16 {
    match name {
        "tmp" => 0o1777,
        "root" => 0o700,
        _ => 0o755,
    }
}

/// One node of the union tree.
#[derive(Debug, Clone, Copy)]
pub(super) struct Node {
    /// Index of the providing package (for a merged directory the lowest
    /// one of the merge), or `ROOT_PKG`.
    pub(super) pkg: u32,
    /// Entry in that package's TOC.
    pub(super) entry: EntryId,
    /// Index of the first child; for a node without children, where the
    /// children of the nodes before it end (so that `children_end` never
    /// decreases from one node to the next).
    pub(super) first_child: u32,
    /// Number of children.
    pub(super) child_count: u32,
}

impl Node {
    /// One past the index of the last child.
    fn children_end(&self) -> u64 {
        u64::from(self.first_child) + u64::from(self.child_count)
    }
}

const _: () = assert!(std::mem::size_of::<Node>() == 16);

/// A node hidden by another package at the same path.
#[derive(Debug, Clone, Copy)]
pub(super) struct Shadow {
    /// The union node at that path (the winner).
    pub(super) node: u32,
    /// The package whose node is hidden.
    pub(super) pkg: u32,
    /// Its TOC entry.
    pub(super) entry: EntryId,
}

/// Why the tree could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// More nodes than 32-bit indexes can number.
    #[error("the union of the packages has more than 4 billion nodes")]
    TooManyNodes,
    /// More packages than 32-bit indexes can number.
    #[error("more than 4 billion packages")]
    TooManyPackages,
}

/// Memory held by the mount's indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryUse {
    /// Packages mounted.
    pub packages: usize,
    /// TOC entries of all packages.
    pub entries: usize,
    /// Nodes of the union tree.
    pub nodes: usize,
    /// Bytes of the TOC indexes (entry tables, attribute tables and the TOC
    /// section buffers holding names, symlink targets and inline data).
    pub toc_bytes: usize,
    /// Of `toc_bytes`, the fixed-size entry and attribute tables.
    pub toc_table_bytes: usize,
    /// Bytes of the union tree (nodes and shadow records).
    pub tree_bytes: usize,
    /// Bytes per package, whatever its size: the package record with its
    /// metadata, and the heap's chunk table (an estimate).
    pub package_bytes: usize,
}

impl MemoryUse {
    /// Total bytes.
    pub fn total(&self) -> usize {
        self.toc_bytes + self.tree_bytes + self.package_bytes
    }

    /// Bytes per TOC entry of the TOC indexes and the union tree (the cost
    /// that grows with the number of files).
    pub fn bytes_per_entry(&self) -> f64 {
        (self.toc_bytes + self.tree_bytes) as f64 / self.entries.max(1) as f64
    }

    /// Like [`MemoryUse::bytes_per_entry`] without the TOC section buffers
    /// (names and other strings): the fixed cost of an entry.
    pub fn fixed_bytes_per_entry(&self) -> f64 {
        (self.toc_table_bytes + self.tree_bytes) as f64 / self.entries.max(1) as f64
    }
}

impl std::fmt::Display for MemoryUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} packages, {} entries, {} nodes: {} bytes of TOC index + {} bytes of union tree \
             = {:.1} bytes/entry ({:.1} without names and other strings), \
             + {} bytes of per-package records",
            self.packages,
            self.entries,
            self.nodes,
            self.toc_bytes,
            self.tree_bytes,
            self.bytes_per_entry(),
            self.fixed_bytes_per_entry(),
            self.package_bytes,
        )
    }
}

/// Blocked paths relative to the mount root, without leading, trailing or
/// doubled `/` and `.` components (empty ones dropped).
fn normalize_blocked<S: AsRef<str>>(blocked: &[S]) -> HashSet<Vec<u8>> {
    blocked
        .iter()
        .map(|b| {
            b.as_ref()
                .split('/')
                .filter(|c| !c.is_empty() && *c != ".")
                .collect::<Vec<_>>()
                .join("/")
                .into_bytes()
        })
        .filter(|b| !b.is_empty())
        .collect()
}

/// What [`Tree::with_union_cache`] did with the union cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnionCache {
    /// No cache directory, or packages without a recorded hash: merged.
    Unused,
    /// The merge came from a stored union image.
    Hit,
    /// Merged, and an image stored for next time.
    Merged {
        /// Why a stored image was not used (damaged, unreadable), if there
        /// was one.
        rejected: Option<String>,
        /// Whether the new image was stored (why not: a full disk, a
        /// read-only directory); `None`: not tried (an older generation's
        /// mount writes nothing).
        stored: Option<Result<(), String>>,
    },
}

/// The union of a list of packages.
#[derive(Debug)]
pub struct Tree {
    packages: Vec<MountedPackage>,
    nodes: Vec<Node>,
    shadows: Vec<Shadow>,
    root_mtime: SystemTime,
    /// The shine-through names.
    shine: Vec<String>,
    /// The node index of each shine-through name.
    shine_nodes: Vec<u32>,
    /// What the merge hid against the packages' wishes.
    warnings: Vec<String>,
    /// Nodes refused by the shadowing policy.
    refused_shadows: Vec<Shadow>,
}

/// A node of the tree, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct NodeRef<'a> {
    tree: &'a Tree,
    index: u32,
    node: Node,
}

/// A path one package hides from another.
#[derive(Debug, Clone)]
pub struct Shadowed<'a> {
    /// The path, relative to the mount root.
    pub path: Vec<u8>,
    /// The package whose node is hidden.
    pub hidden: &'a MountedPackage,
    /// The kind of the hidden node.
    pub hidden_kind: EntryKind,
    /// The package whose node is shown (`None`: a shine-through directory
    /// that no package has, which hides every package's non-directory of
    /// its name).
    pub shown: Option<&'a MountedPackage>,
}

impl Tree {
    /// Merge packages given in ascending priority (a later package wins).
    pub fn new(packages: Vec<MountedPackage>) -> Result<Tree, TreeError> {
        Tree::with_blocked::<&str>(packages, &[])
    }

    /// Like [`Tree::new`], hiding the paths in `blocked` (relative to the
    /// mount root; leading and trailing `/` ignored) and everything below
    /// them. A hidden path does not exist in the tree at all.
    pub fn with_blocked<S: AsRef<str>>(
        packages: Vec<MountedPackage>,
        blocked: &[S],
    ) -> Result<Tree, TreeError> {
        Tree::with_shine_through(packages, blocked, &[])
    }

    /// Like [`Tree::with_blocked`], with the top-level directories `shine`
    /// (names checked by the caller, see `packagefs::shine::check_names`):
    /// each is a directory whatever the packages have there (their
    /// directories of that name merged into it, anything else hidden with a
    /// warning), and keeps one inode number in every tree built with the
    /// same list.
    pub fn with_shine_through<S: AsRef<str>>(
        packages: Vec<MountedPackage>,
        blocked: &[S],
        shine: &[String],
    ) -> Result<Tree, TreeError> {
        let blocked = normalize_blocked(blocked);
        let built = union::build(&packages, &blocked, shine)?;
        Ok(Tree::from_built(packages, built, shine))
    }

    /// Like [`Tree::with_shine_through`], taking the merge from the union
    /// image in directory `cache` made from the same packages and options
    /// (see [`tree_image`]), or merging and, if `writable`, storing one
    /// there. Without a directory, or for packages without a recorded hash,
    /// it merges.
    pub fn with_union_cache<S: AsRef<str>>(
        packages: Vec<MountedPackage>,
        blocked: &[S],
        shine: &[String],
        cache: Option<&Path>,
        writable: bool,
    ) -> Result<(Tree, UnionCache), TreeError> {
        let blocked = normalize_blocked(blocked);
        let key = cache.and_then(|dir| Some((dir, tree_image::key(&packages, &blocked, shine)?)));
        let Some((dir, key)) = key else {
            let built = union::build(&packages, &blocked, shine)?;
            return Ok((Tree::from_built(packages, built, shine), UnionCache::Unused));
        };
        let path = tree_image::path(dir, &key);
        let rejected = match tree_image::load(&path, &key, &packages, shine) {
            Ok(Some(built)) => {
                return Ok((Tree::from_built(packages, built, shine), UnionCache::Hit));
            }
            Ok(None) => None,
            Err(e) => Some(format!("{}: {e}", path.display())),
        };
        let built = union::build(&packages, &blocked, shine)?;
        let stored = writable.then(|| {
            tree_image::store(&path, &built, &key).map_err(|e| format!("{}: {e}", path.display()))
        });
        let tree = Tree::from_built(packages, built, shine);
        Ok((tree, UnionCache::Merged { rejected, stored }))
    }

    /// The tree of a merge result.
    fn from_built(packages: Vec<MountedPackage>, built: union::Built, shine: &[String]) -> Tree {
        // The stamps taken when the packages were opened: no second stat.
        let root_mtime = packages
            .iter()
            .filter_map(|p| {
                p.file_mtime()
                    .or_else(|| std::fs::metadata(p.path()).and_then(|m| m.modified()).ok())
            })
            .max()
            .unwrap_or(SystemTime::UNIX_EPOCH);
        Tree {
            packages,
            nodes: built.nodes,
            shadows: built.shadows,
            root_mtime,
            shine: shine.to_vec(),
            shine_nodes: built.shine_nodes,
            warnings: built.warnings,
            refused_shadows: built.refused,
        }
    }

    /// What the merge had to hide against the packages' wishes (a
    /// non-directory where a shine-through directory stands).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Whether node `index` is a shine-through directory.
    pub fn is_shine_through(&self, index: u32) -> bool {
        self.shine_nodes.contains(&index)
    }

    /// The shine-through names the tree was built with.
    pub fn shine_through(&self) -> &[String] {
        &self.shine
    }

    /// The name of a node (empty for the root).
    fn node_name(&self, n: &Node) -> &[u8] {
        if n.pkg == SHINE_PKG {
            return self
                .shine
                .get(n.entry as usize)
                .map(|s| s.as_bytes())
                .unwrap_or(b"");
        }
        self.packages
            .get(n.pkg as usize)
            .map(|p| p.package().toc().name(n.entry))
            .unwrap_or(b"")
    }

    /// The mounted packages, in ascending priority.
    pub fn packages(&self) -> &[MountedPackage] {
        &self.packages
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the tree has only its root.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1
    }

    /// The root directory.
    pub fn root(&self) -> NodeRef<'_> {
        NodeRef {
            tree: self,
            index: 0,
            node: self.nodes[0],
        }
    }

    /// The node at `index` of the node table (the root is 0).
    pub fn at(&self, index: u32) -> Option<NodeRef<'_>> {
        let node = *self.nodes.get(index as usize)?;
        Some(NodeRef {
            tree: self,
            index,
            node,
        })
    }

    /// Modification time shown for the root: that of the newest package file.
    pub fn root_mtime(&self) -> SystemTime {
        self.root_mtime
    }

    /// How many nodes are hidden by other packages.
    pub fn shadowed_count(&self) -> usize {
        self.shadows.len()
    }

    /// Every hidden node, in breadth-first order of its path.
    pub fn shadowed(&self) -> impl Iterator<Item = Shadowed<'_>> + '_ {
        self.describe(&self.shadows)
    }

    /// Every node that a package of a layer that may not shadow lower
    /// layers (the trust policy's `may-shadow no`) would have put over a
    /// lower layer's, and that was refused: `hidden` is the refused
    /// package, `shown` the one the tree shows.
    pub fn refused_shadows(&self) -> impl Iterator<Item = Shadowed<'_>> + '_ {
        self.describe(&self.refused_shadows)
    }

    fn describe<'t>(&'t self, records: &'t [Shadow]) -> impl Iterator<Item = Shadowed<'t>> + 't {
        records.iter().filter_map(move |s| {
            let node = self.at(s.node)?;
            let hidden = self.packages.get(s.pkg as usize)?;
            Some(Shadowed {
                path: node.path(),
                hidden,
                hidden_kind: hidden.package().toc().entry(s.entry).kind(),
                shown: node.package(),
            })
        })
    }

    /// Memory held by the TOC indexes and the union tree.
    pub fn memory(&self) -> MemoryUse {
        let toc_table_bytes = self
            .packages
            .iter()
            .map(|p| {
                let toc = p.package().toc();
                toc.len() * std::mem::size_of::<hpkg_format::Entry>() + attrs_bytes(toc)
            })
            .sum();
        MemoryUse {
            packages: self.packages.len(),
            entries: self.packages.iter().map(|p| p.package().toc().len()).sum(),
            nodes: self.nodes.len(),
            toc_bytes: self
                .packages
                .iter()
                .map(|p| p.package().toc().memory_bytes())
                .sum(),
            toc_table_bytes,
            tree_bytes: self.nodes.capacity() * std::mem::size_of::<Node>()
                + self.shadows.capacity() * std::mem::size_of::<Shadow>(),
            package_bytes: self
                .packages
                .iter()
                .map(|p| {
                    let heap = p.package().heap();
                    let table = if heap.compression() == hpkg_format::Compression::None {
                        0
                    } else {
                        (heap.chunk_count() as usize + 1) * 4
                    };
                    MountedPackage::RECORD_BYTES + p.label().len() + table
                })
                .sum(),
        }
    }
}

/// Bytes of a TOC's attribute table (an estimate from the entries' counts).
fn attrs_bytes(toc: &Toc) -> usize {
    (0..toc.len() as u32)
        .map(|id| toc.attrs(id).len())
        .sum::<usize>()
        * std::mem::size_of::<EntryAttr>()
}

impl<'a> NodeRef<'a> {
    /// The node's index in its tree (the root is 0).
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The tree the node belongs to.
    pub fn tree(&self) -> &'a Tree {
        self.tree
    }

    /// Whether this is the root directory.
    pub fn is_root(&self) -> bool {
        self.node.pkg == ROOT_PKG
    }

    /// The providing package (`None` for the root).
    pub fn package(&self) -> Option<&'a MountedPackage> {
        self.tree.packages.get(self.node.pkg as usize)
    }

    /// The providing package's index in [`Tree::packages`] (`None` for the root).
    pub fn package_index(&self) -> Option<usize> {
        self.package().map(|_| self.node.pkg as usize)
    }

    /// The TOC entry in the providing package (`None` for the root).
    pub fn entry_id(&self) -> Option<EntryId> {
        self.package().map(|_| self.node.entry)
    }

    /// The providing package's TOC and this node's entry in it.
    pub fn toc_entry(&self) -> Option<(&'a Toc, EntryId)> {
        Some((self.package()?.package().toc(), self.node.entry))
    }

    /// The parent directory (the root's parent is the root): the first node
    /// whose children end past this one, by binary search.
    pub fn parent(&self) -> NodeRef<'a> {
        if self.index == 0 {
            return self.tree.root();
        }
        let index = u64::from(self.index);
        let parent = self
            .tree
            .nodes
            .partition_point(|n| n.children_end() <= index);
        u32::try_from(parent)
            .ok()
            .and_then(|p| self.tree.at(p))
            .unwrap_or_else(|| self.tree.root())
    }

    /// The name (empty for the root).
    pub fn name(&self) -> &'a [u8] {
        self.tree.node_name(&self.node)
    }

    /// The path from the mount root, `/`-separated, without a leading `/`.
    pub fn path(&self) -> Vec<u8> {
        let mut parts = Vec::new();
        let mut n = *self;
        while !n.is_root() {
            parts.push(n.name());
            n = n.parent();
        }
        parts.reverse();
        parts.join(&b'/')
    }

    /// Kind of node.
    pub fn kind(&self) -> EntryKind {
        match self.toc_entry() {
            Some((toc, e)) => toc.entry(e).kind(),
            None => EntryKind::Directory,
        }
    }

    /// Permission bits as stored (setuid and setgid stripped in the user layer).
    pub fn mode(&self) -> u16 {
        match (self.toc_entry(), self.package()) {
            (Some((toc, e)), Some(p)) => {
                let mode = toc.entry(e).mode() & 0o7777;
                if p.source().strip_setid {
                    mode & !0o6000
                } else {
                    mode
                }
            }
            _ if self.node.pkg == SHINE_PKG => self
                .tree
                .shine
                .get(self.node.entry as usize)
                .map_or(ROOT_MODE, |n| shine_default_mode(n)),
            _ => ROOT_MODE,
        }
    }

    /// Owner and group shown.
    pub fn owner(&self) -> (u32, u32) {
        match self.package() {
            Some(p) => (p.source().uid, p.source().gid),
            None => (0, 0),
        }
    }

    /// Modification time.
    pub fn mtime(&self) -> SystemTime {
        match self.toc_entry() {
            Some((toc, e)) => {
                let (secs, nanos) = toc.entry(e).mtime();
                let since = std::time::Duration::new(secs.unsigned_abs(), nanos);
                if secs >= 0 {
                    SystemTime::UNIX_EPOCH.checked_add(since)
                } else {
                    SystemTime::UNIX_EPOCH.checked_sub(since)
                }
                .unwrap_or(SystemTime::UNIX_EPOCH)
            }
            None => self.tree.root_mtime,
        }
    }

    /// Size as `lstat` shows it: file length, symlink target length, 0 for a
    /// directory.
    pub fn size(&self) -> u64 {
        match self.toc_entry() {
            Some((toc, e)) => toc.entry(e).size(),
            None => 0,
        }
    }

    /// The target of a symlink (empty for other kinds).
    pub fn symlink_target(&self) -> &'a [u8] {
        match self.toc_entry() {
            Some((toc, e)) => toc.symlink_target(e),
            None => b"",
        }
    }

    /// The Haiku attributes of the node.
    pub fn attrs(&self) -> &'a [EntryAttr] {
        match self.toc_entry() {
            Some((toc, e)) => toc.attrs(e),
            None => &[],
        }
    }

    /// Indexes of the children: `first..first + count`.
    fn child_range(&self) -> Range<u32> {
        self.node.first_child..self.node.first_child.saturating_add(self.node.child_count)
    }

    /// Number of children.
    pub fn child_count(&self) -> u32 {
        self.node.child_count
    }

    /// The `i`-th child in name order.
    pub fn child(&self, i: u32) -> Option<NodeRef<'a>> {
        if i >= self.node.child_count {
            return None;
        }
        self.tree.at(self.node.first_child.checked_add(i)?)
    }

    /// The children in name order.
    pub fn children(&self) -> impl Iterator<Item = NodeRef<'a>> + 'a {
        let tree = self.tree;
        self.child_range().filter_map(move |i| tree.at(i))
    }

    /// Number of child directories (for the link count).
    pub fn subdir_count(&self) -> u32 {
        self.children()
            .filter(|c| c.kind() == EntryKind::Directory)
            .count() as u32
    }

    /// The child called `name`, by binary search.
    pub fn lookup(&self, name: &[u8]) -> Option<NodeRef<'a>> {
        let range = self.child_range();
        let nodes = self
            .tree
            .nodes
            .get(range.start as usize..range.end as usize)?;
        let i = nodes
            .binary_search_by(|n| self.tree.node_name(n).cmp(name))
            .ok()?;
        self.tree.at(range.start + u32::try_from(i).ok()?)
    }
}
