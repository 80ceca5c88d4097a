//! Building the union tree: a breadth-first merge of the packages' TOCs.
//!
//! Each union directory is built from its *contributors*: the package
//! directories merged into it, in ascending priority. Their children are
//! gathered, sorted by name (then by priority and TOC order) and grouped by
//! name; the last member of a group (highest priority; inside one package,
//! the later entry) wins the path. Below the winner the group is read as a
//! stack, as overlayfs does: a winning directory merges with the directories
//! directly below it until the first non-directory, and everything from
//! there down is hidden (a file hides every lower node, a directory hides
//! lower files). Every hidden node is recorded as a [`Shadow`].
//!
//! A file or symlink node is the winner's. A merged directory shows the
//! metadata (mode, owner, times, attributes, `user.packagefs.package`) of
//! the *lowest* directory of its stack: a package of a higher layer adds
//! entries to a system directory but cannot change who owns it or its mode.
//!
//! Breadth-first order keeps the children of one directory contiguous, so a
//! node only needs the index of its first child and a count; and the
//! directories' ranges follow each other in node order, which lets a
//! node's parent be found without storing it.
//!
//! *Shine-through* names (see [`super::Tree::with_shine_through`]) are
//! always directories at the top level: a synthetic one (`Node::pkg` is
//! `SHINE_PKG`) joins each such name's group as its highest member, every
//! package directory of that name is merged below it (the lowest one still
//! gives the metadata), and every package's non-directory there is hidden
//! with a warning naming the package.

use std::cmp::Ordering;
use std::collections::{HashSet, VecDeque};

use hpkg_format::{EntryId, EntryKind, Toc};

use super::package::MountedPackage;
use super::tree::{Node, Shadow, TreeError, ROOT_PKG, SHINE_PKG};

/// Top-level names of a package that never show in the union: Haiku's
/// `.PackageInfo`, and `.DEBIAN`, where `pkgctl import-deb` keeps a Debian
/// package's control files.
pub const HIDDEN_TOP_LEVEL: [&[u8]; 2] = [b".PackageInfo", b".DEBIAN"];

/// A contributor to a union directory: a package and its directory entry
/// (`None`: the package's top level).
type Contributor = (u32, Option<EntryId>);

/// What [`build`] makes.
pub(super) struct Built {
    /// The nodes, breadth-first.
    pub(super) nodes: Vec<Node>,
    /// The hidden nodes.
    pub(super) shadows: Vec<Shadow>,
    /// The node index of each shine-through name.
    pub(super) shine_nodes: Vec<u32>,
    /// What the build had to hide against the packages' wishes (a
    /// package's non-directory where a shine-through directory stands).
    pub(super) warnings: Vec<String>,
    /// Nodes of layers that may not shadow lower layers, refused where
    /// they would have (the node is the path's union node).
    pub(super) refused: Vec<Shadow>,
}

/// A package's entry in a group of same-named entries.
type Member = (u32, EntryId);

/// A directory waiting to be merged: its node, its contributors, and its
/// path (kept only when there are blocked paths to compare with).
type Queued = (u32, Vec<Contributor>, Vec<u8>);

/// The state of one [`build`].
struct Merger<'a> {
    packages: &'a [MountedPackage],
    tocs: Vec<&'a Toc>,
    blocked: &'a HashSet<Vec<u8>>,
    shine: &'a [String],
    out: Built,
    queue: VecDeque<Queued>,
}

impl<'a> Merger<'a> {
    fn name(&self, (p, e): Member) -> &'a [u8] {
        if p == SHINE_PKG {
            self.shine
                .get(e as usize)
                .map(|s| s.as_bytes())
                .unwrap_or(b"")
        } else {
            self.tocs[p as usize].name(e)
        }
    }

    fn kind(&self, (p, e): Member) -> EntryKind {
        if p == SHINE_PKG {
            EntryKind::Directory
        } else {
            self.tocs[p as usize].entry(e).kind()
        }
    }

    /// Split a group by the shadowing policy: a member of a layer that may
    /// not shadow is refused where a lower layer has the path, unless both
    /// are directories (it may add entries to a lower directory, not
    /// replace anything). Returns (kept, refused).
    fn police(&self, group: &[Member]) -> (Vec<Member>, Vec<Member>) {
        let layer = |p: u32| self.packages.get(p as usize).and_then(|m| m.source().layer);
        let may_shadow = |p: u32| {
            self.packages
                .get(p as usize)
                .is_none_or(|m| m.source().may_shadow)
        };
        let is_dir = |m: Member| self.kind(m) == EntryKind::Directory;
        group.iter().partition(|&&m| {
            may_shadow(m.0)
                || !group.iter().any(|&q| {
                    matches!((layer(q.0), layer(m.0)), (Some(a), Some(b)) if a < b)
                        && !(is_dir(m) && is_dir(q))
                })
        })
    }

    /// Add a node for `member`; returns its index.
    fn push_node(&mut self, (pkg, entry): Member) -> Result<u32, TreeError> {
        let index = node_index(self.out.nodes.len())?;
        self.out.nodes.push(Node {
            pkg,
            entry,
            first_child: 0,
            child_count: 0,
        });
        Ok(index)
    }

    /// Record `members` as hidden at node `node`.
    fn hide(list: &mut Vec<Shadow>, node: u32, members: impl IntoIterator<Item = Member>) {
        list.extend(
            members
                .into_iter()
                .map(|(pkg, entry)| Shadow { node, pkg, entry }),
        );
    }

    /// Merge directory `dir` from its contributors: one node per name of
    /// their children, queueing the directories among them.
    fn merge_dir(
        &mut self,
        dir: u32,
        contributors: &[Contributor],
        dir_path: &[u8],
    ) -> Result<(), TreeError> {
        let mut children: Vec<Member> = Vec::new();
        for &(p, e) in contributors {
            let t = self.tocs[p as usize];
            children.extend(
                t.children(e)
                    .filter(|&c| !(e.is_none() && HIDDEN_TOP_LEVEL.contains(&t.name(c))))
                    .map(|c| (p, c)),
            );
        }
        if dir == 0 {
            children.extend((0..self.shine.len() as u32).map(|i| (SHINE_PKG, i)));
        }
        children.sort_unstable_by(|&a, &b| match self.name(a).cmp(self.name(b)) {
            Ordering::Equal => a.cmp(&b),
            other => other,
        });
        let first = node_index(self.out.nodes.len())?;
        let groups: Vec<usize> = children
            .chunk_by(|&a, &b| self.name(a) == self.name(b))
            .map(<[Member]>::len)
            .collect();
        let mut start = 0;
        for len in groups {
            let group = &children[start..start + len];
            start += len;
            let (kept, denied) = self.police(group);
            let Some((&winner, lower)) = kept.split_last() else {
                continue;
            };
            if winner.0 == SHINE_PKG {
                self.merge_shine(winner, lower, &denied)?;
            } else {
                self.merge_path(dir_path, winner, lower, &denied)?;
            }
        }
        let end = node_index(self.out.nodes.len())?;
        if let Some(d) = self.out.nodes.get_mut(dir as usize) {
            d.first_child = first;
            d.child_count = end - first;
        }
        Ok(())
    }

    /// A shine-through directory: every package directory of its name
    /// merged below it, every non-directory hidden with a warning.
    fn merge_shine(
        &mut self,
        winner: Member,
        lower: &[Member],
        denied: &[Member],
    ) -> Result<(), TreeError> {
        let (dirs, others): (Vec<Member>, Vec<Member>) = lower
            .iter()
            .partition(|&&m| self.kind(m) == EntryKind::Directory);
        let provider = dirs.first().copied().unwrap_or(winner);
        let index = self.push_node(provider)?;
        if let Some(slot) = self.out.shine_nodes.get_mut(winner.1 as usize) {
            *slot = index;
        }
        for &(p, _) in &others {
            if let Some(mp) = self.packages.get(p as usize) {
                self.out.warnings.push(format!(
                    "/{} of package {} is not a directory: the shine-through directory hides it",
                    String::from_utf8_lossy(self.name(winner)),
                    mp.label()
                ));
            }
        }
        Merger::hide(&mut self.out.shadows, index, others);
        Merger::hide(&mut self.out.refused, index, denied.iter().copied());
        if !dirs.is_empty() {
            let merged = dirs.into_iter().map(|(p, e)| (p, Some(e))).collect();
            self.queue
                .push_back((index, merged, self.name(winner).to_vec()));
        }
        Ok(())
    }

    /// An ordinary path: the winner's node, the directories directly below
    /// a winning directory merged into it (down to the first
    /// non-directory), the rest hidden.
    fn merge_path(
        &mut self,
        dir_path: &[u8],
        winner: Member,
        lower: &[Member],
        denied: &[Member],
    ) -> Result<(), TreeError> {
        let path = if self.blocked.is_empty() {
            Vec::new()
        } else {
            let mut p = dir_path.to_vec();
            if !p.is_empty() {
                p.push(b'/');
            }
            p.extend_from_slice(self.name(winner));
            if self.blocked.contains(&p) {
                return Ok(());
            }
            p
        };
        let index = self.push_node(winner)?;
        Merger::hide(&mut self.out.refused, index, denied.iter().copied());
        if self.kind(winner) != EntryKind::Directory {
            Merger::hide(&mut self.out.shadows, index, lower.iter().rev().copied());
            return Ok(());
        }
        let stack = lower
            .iter()
            .rev()
            .take_while(|&&m| self.kind(m) == EntryKind::Directory)
            .count();
        let (hidden, below) = lower.split_at(lower.len() - stack);
        Merger::hide(&mut self.out.shadows, index, hidden.iter().rev().copied());
        let merged: Vec<Contributor> = below
            .iter()
            .chain(std::iter::once(&winner))
            .map(|&(p, e)| (p, Some(e)))
            .collect();
        // A merged directory shows its lowest directory's metadata.
        if let (Some(&(p, Some(e))), Some(node)) =
            (merged.first(), self.out.nodes.get_mut(index as usize))
        {
            node.pkg = p;
            node.entry = e;
        }
        self.queue.push_back((index, merged, path));
        Ok(())
    }
}

/// Merge the packages (ascending priority) into nodes and shadows, leaving
/// out the paths in `blocked` (`a/b`, no leading or trailing `/`) and
/// everything below them, with the top-level directories `shine` (see the
/// module comment).
pub(super) fn build(
    packages: &[MountedPackage],
    blocked: &HashSet<Vec<u8>>,
    shine: &[String],
) -> Result<Built, TreeError> {
    let count = u32::try_from(packages.len()).map_err(|_| TreeError::TooManyPackages)?;
    if count >= SHINE_PKG {
        return Err(TreeError::TooManyPackages);
    }
    let mut m = Merger {
        packages,
        tocs: packages.iter().map(|p| p.package().toc()).collect(),
        blocked,
        shine,
        out: Built {
            nodes: Vec::new(),
            shadows: Vec::new(),
            shine_nodes: vec![0u32; shine.len()],
            warnings: Vec::new(),
            refused: Vec::new(),
        },
        queue: VecDeque::new(),
    };
    m.push_node((ROOT_PKG, 0))?;
    m.queue
        .push_back((0, (0..count).map(|p| (p, None)).collect(), Vec::new()));
    while let Some((dir, contributors, dir_path)) = m.queue.pop_front() {
        m.merge_dir(dir, &contributors, &dir_path)?;
    }
    let mut out = m.out;
    // Childless nodes get an empty range where the children so far end, so
    // that the ranges' ends never decrease (what `NodeRef::parent` needs).
    let mut end = 0u32;
    for node in &mut out.nodes {
        if node.child_count == 0 {
            node.first_child = end;
        } else {
            end = node.first_child.saturating_add(node.child_count);
        }
    }
    out.nodes.shrink_to_fit();
    out.shadows.shrink_to_fit();
    Ok(out)
}

fn node_index(len: usize) -> Result<u32, TreeError> {
    u32::try_from(len)
        .ok()
        .filter(|&n| n < u32::MAX)
        .ok_or(TreeError::TooManyNodes)
}
