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

/// Merge the packages (ascending priority) into nodes and shadows, leaving
/// out the paths in `blocked` (`a/b`, no leading or trailing `/`) and
/// everything below them, with the top-level directories `shine` (see the
/// module comment). Returns the nodes, the shadows, and the node index of
/// each name of `shine`.
pub(super) fn build(
    packages: &[MountedPackage],
    blocked: &HashSet<Vec<u8>>,
    shine: &[String],
) -> Result<Built, TreeError> {
    let count = u32::try_from(packages.len()).map_err(|_| TreeError::TooManyPackages)?;
    if count >= SHINE_PKG {
        return Err(TreeError::TooManyPackages);
    }
    let tocs: Vec<&Toc> = packages.iter().map(|p| p.package().toc()).collect();
    let toc = |p: u32| tocs[p as usize];
    let name = |&(p, e): &(u32, EntryId)| -> &[u8] {
        if p == SHINE_PKG {
            shine.get(e as usize).map(|s| s.as_bytes()).unwrap_or(b"")
        } else {
            toc(p).name(e)
        }
    };
    let kind = |(p, e): (u32, EntryId)| {
        if p == SHINE_PKG {
            EntryKind::Directory
        } else {
            toc(p).entry(e).kind()
        }
    };
    let mut shine_nodes = vec![0u32; shine.len()];
    let mut warnings = Vec::new();
    let mut refused = Vec::new();
    // Per package: its layer, and whether it may shadow lower layers.
    let layer_of = |p: u32| packages.get(p as usize).and_then(|m| m.source().layer);
    let may_shadow = |p: u32| {
        packages
            .get(p as usize)
            .is_none_or(|m| m.source().may_shadow)
    };
    let mut kept: Vec<(u32, EntryId)> = Vec::new();
    let mut denied: Vec<(u32, EntryId)> = Vec::new();

    let mut nodes = vec![Node {
        pkg: ROOT_PKG,
        entry: 0,
        first_child: 0,
        child_count: 0,
    }];
    let mut shadows = Vec::new();
    // A queued directory: its node, its contributors, and its path (kept
    // only when there are blocked paths to compare with).
    let mut queue: VecDeque<(u32, Vec<Contributor>, Vec<u8>)> = VecDeque::new();
    queue.push_back((0, (0..count).map(|p| (p, None)).collect(), Vec::new()));
    let mut children: Vec<(u32, EntryId)> = Vec::new();
    while let Some((dir, contributors, dir_path)) = queue.pop_front() {
        children.clear();
        for &(p, e) in &contributors {
            let t = toc(p);
            children.extend(
                t.children(e)
                    .filter(|&c| !(e.is_none() && HIDDEN_TOP_LEVEL.contains(&t.name(c))))
                    .map(|c| (p, c)),
            );
        }
        if dir == 0 {
            children.extend((0..shine.len() as u32).map(|i| (SHINE_PKG, i)));
        }
        children.sort_unstable_by(|a, b| match name(a).cmp(name(b)) {
            Ordering::Equal => a.cmp(b),
            other => other,
        });
        let first = node_index(nodes.len())?;
        let mut rest = &children[..];
        while let Some(head) = rest.first() {
            let len = rest
                .iter()
                .position(|c| name(c) != name(head))
                .unwrap_or(rest.len());
            let (group, tail) = rest.split_at(len);
            rest = tail;
            // A member of a layer that may not shadow is refused where a
            // lower layer has the path, unless both are directories (it
            // may add entries to a lower directory, not replace anything).
            kept.clear();
            denied.clear();
            for &m in group {
                let refuse = !may_shadow(m.0)
                    && group.iter().any(|&q| {
                        matches!((layer_of(q.0), layer_of(m.0)), (Some(a), Some(b)) if a < b)
                            && (kind(m) != EntryKind::Directory || kind(q) != EntryKind::Directory)
                    });
                if refuse {
                    denied.push(m);
                } else {
                    kept.push(m);
                }
            }
            let group = &kept[..];
            let Some((&winner, lower)) = group.split_last() else {
                continue;
            };
            if winner.0 == SHINE_PKG {
                let index = node_index(nodes.len())?;
                if let Some(slot) = shine_nodes.get_mut(winner.1 as usize) {
                    *slot = index;
                }
                let mut merged: Vec<Contributor> = Vec::new();
                for &(p, e) in lower {
                    if kind((p, e)) == EntryKind::Directory {
                        merged.push((p, Some(e)));
                    } else {
                        if let Some(mp) = packages.get(p as usize) {
                            warnings.push(format!(
                                "/{} of package {} is not a directory: \
                                 the shine-through directory hides it",
                                String::from_utf8_lossy(name(&winner)),
                                mp.label()
                            ));
                        }
                        shadows.push(Shadow {
                            node: index,
                            pkg: p,
                            entry: e,
                        });
                    }
                }
                let (pkg, entry) = match merged.first() {
                    Some(&(p, Some(e))) => (p, e),
                    _ => winner,
                };
                nodes.push(Node {
                    pkg,
                    entry,
                    first_child: 0,
                    child_count: 0,
                });
                refused.extend(denied.iter().map(|&(pkg, entry)| Shadow {
                    node: index,
                    pkg,
                    entry,
                }));
                if !merged.is_empty() {
                    queue.push_back((index, merged, name(&winner).to_vec()));
                }
                continue;
            }
            let path = if blocked.is_empty() {
                Vec::new()
            } else {
                let mut p = dir_path.clone();
                if !p.is_empty() {
                    p.push(b'/');
                }
                p.extend_from_slice(name(&winner));
                if blocked.contains(&p) {
                    continue;
                }
                p
            };
            let index = node_index(nodes.len())?;
            nodes.push(Node {
                pkg: winner.0,
                entry: winner.1,
                first_child: 0,
                child_count: 0,
            });
            refused.extend(denied.iter().map(|&(pkg, entry)| Shadow {
                node: index,
                pkg,
                entry,
            }));
            let winner_is_dir = kind(winner) == EntryKind::Directory;
            let mut merged: Vec<Contributor> = Vec::new();
            let mut opaque = !winner_is_dir;
            for &(p, e) in lower.iter().rev() {
                if !opaque && kind((p, e)) == EntryKind::Directory {
                    merged.push((p, Some(e)));
                } else {
                    opaque = true;
                    shadows.push(Shadow {
                        node: index,
                        pkg: p,
                        entry: e,
                    });
                }
            }
            if winner_is_dir {
                merged.reverse();
                merged.push((winner.0, Some(winner.1)));
                if let (Some(&(p, Some(e))), Some(node)) =
                    (merged.first(), nodes.get_mut(index as usize))
                {
                    node.pkg = p;
                    node.entry = e;
                }
                queue.push_back((index, merged, path));
            }
        }
        let end = node_index(nodes.len())?;
        if let Some(d) = nodes.get_mut(dir as usize) {
            d.first_child = first;
            d.child_count = end - first;
        }
    }
    // Childless nodes get an empty range where the children so far end, so
    // that the ranges' ends never decrease (what `NodeRef::parent` needs).
    let mut end = 0u32;
    for node in &mut nodes {
        if node.child_count == 0 {
            node.first_child = end;
        } else {
            end = node.first_child.saturating_add(node.child_count);
        }
    }
    nodes.shrink_to_fit();
    shadows.shrink_to_fit();
    Ok(Built {
        nodes,
        shadows,
        shine_nodes,
        warnings,
        refused,
    })
}

fn node_index(len: usize) -> Result<u32, TreeError> {
    u32::try_from(len)
        .ok()
        .filter(|&n| n < u32::MAX)
        .ok_or(TreeError::TooManyNodes)
}
