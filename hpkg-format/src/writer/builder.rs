//! [`TreeBuilder`]: a package's file tree assembled in memory, entry by
//! entry, for sources that are not a directory on disk (e.g. the data
//! member of a Debian package). Contents are held in memory until the
//! package is written, so this is meant for payloads of tens of megabytes,
//! not gigabytes.
//!
//! Paths are `/`-separated byte strings relative to the package root
//! (`usr/bin/env`); parents are created implicitly (mode `0755`, time 0)
//! and take the mode and time of a later [`TreeBuilder::add_dir`] of the
//! same path. Entries come out sorted by name bytes, a top-level
//! `.PackageInfo` last, as [`create_from_dir`](super::create_from_dir) does,
//! so the same entries give the same package whatever order they were added
//! in.

use std::collections::BTreeMap;

use crate::attr::MAX_DEPTH;

use super::tree::{Kind, Node, Source, PACKAGE_INFO_FILE};

/// Why an entry cannot be added to a [`TreeBuilder`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    /// The path is empty, absolute, or has an empty, `.` or `..` component,
    /// or a NUL byte.
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath {
        /// The path as given (lossy UTF-8).
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The path was added before (as anything but an implicit parent).
    #[error("{path:?} is added twice")]
    Duplicate {
        /// The path.
        path: String,
    },
    /// A parent of the path is a file or a symlink.
    #[error("{path:?}: parent {parent:?} is not a directory")]
    NotADirectory {
        /// The path being added.
        path: String,
        /// The parent that is not a directory.
        parent: String,
    },
    /// A mode with bits outside `0o7777`.
    #[error("{path:?}: mode {mode:#o} has bits outside 0o7777")]
    InvalidMode {
        /// The path.
        path: String,
        /// The mode given.
        mode: u32,
    },
    /// Nanoseconds of one second or more.
    #[error("{path:?}: {nanos} nanoseconds is not less than a second")]
    InvalidTime {
        /// The path.
        path: String,
        /// The nanoseconds given.
        nanos: u32,
    },
    /// More nested directories than the format allows.
    #[error("{path:?}: directories nested deeper than {MAX_DEPTH}")]
    TooDeep {
        /// The path.
        path: String,
    },
}

/// A modification time: seconds since the epoch and nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Whole seconds since 1970-01-01 UTC.
    pub secs: u64,
    /// Nanoseconds (below 1 000 000 000).
    pub nanos: u32,
}

impl Timestamp {
    /// A time of whole seconds.
    pub fn from_secs(secs: u64) -> Timestamp {
        Timestamp { secs, nanos: 0 }
    }
}

/// One entry while the tree is being built.
#[derive(Debug)]
struct Entry {
    mode: u16,
    time: Timestamp,
    kind: EntryKind,
}

#[derive(Debug)]
enum EntryKind {
    /// A directory; `explicit` once added by `add_dir`.
    Dir {
        children: BTreeMap<Vec<u8>, Entry>,
        explicit: bool,
    },
    File(Vec<u8>),
    Symlink(Vec<u8>),
}

/// The entries of a directory, by name.
type Children = BTreeMap<Vec<u8>, Entry>;

/// A package's file tree built in memory; write it with
/// [`create_from_tree`](super::create_from_tree).
#[derive(Debug, Default)]
pub struct TreeBuilder {
    root: BTreeMap<Vec<u8>, Entry>,
    files: u64,
    bytes: u64,
}

fn lossy(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

impl TreeBuilder {
    /// An empty tree.
    pub fn new() -> TreeBuilder {
        TreeBuilder::default()
    }

    /// Regular files added so far.
    pub fn file_count(&self) -> u64 {
        self.files
    }

    /// Bytes of file content added so far.
    pub fn content_bytes(&self) -> u64 {
        self.bytes
    }

    /// Add a directory. If it already exists as an implicit parent, it takes
    /// `mode` and `time`.
    pub fn add_dir(&mut self, path: &[u8], mode: u32, time: Timestamp) -> Result<(), TreeError> {
        let (mode, time) = check_meta(path, mode, time)?;
        let (parent, name) = self.parent_of(path)?;
        match parent.get_mut(name) {
            Some(Entry {
                kind: EntryKind::Dir { explicit, .. },
                mode: m,
                time: t,
            }) if !*explicit => {
                *explicit = true;
                *m = mode;
                *t = time;
                Ok(())
            }
            Some(_) => Err(TreeError::Duplicate { path: lossy(path) }),
            None => {
                parent.insert(
                    name.to_vec(),
                    Entry {
                        mode,
                        time,
                        kind: EntryKind::Dir {
                            children: BTreeMap::new(),
                            explicit: true,
                        },
                    },
                );
                Ok(())
            }
        }
    }

    /// Add a regular file with its contents.
    pub fn add_file(
        &mut self,
        path: &[u8],
        mode: u32,
        time: Timestamp,
        contents: Vec<u8>,
    ) -> Result<(), TreeError> {
        let len = contents.len() as u64;
        self.add_leaf(path, mode, time, EntryKind::File(contents))?;
        self.files += 1;
        self.bytes += len;
        Ok(())
    }

    /// Add a symbolic link to `target` (stored as given).
    pub fn add_symlink(
        &mut self,
        path: &[u8],
        mode: u32,
        time: Timestamp,
        target: &[u8],
    ) -> Result<(), TreeError> {
        self.add_leaf(path, mode, time, EntryKind::Symlink(target.to_vec()))
    }

    fn add_leaf(
        &mut self,
        path: &[u8],
        mode: u32,
        time: Timestamp,
        kind: EntryKind,
    ) -> Result<(), TreeError> {
        let (mode, time) = check_meta(path, mode, time)?;
        let (parent, name) = self.parent_of(path)?;
        if parent.contains_key(name) {
            return Err(TreeError::Duplicate { path: lossy(path) });
        }
        parent.insert(name.to_vec(), Entry { mode, time, kind });
        Ok(())
    }

    /// The children map of `path`'s parent (created implicitly) and the
    /// last component.
    fn parent_of<'a, 'p>(
        &'a mut self,
        path: &'p [u8],
    ) -> Result<(&'a mut Children, &'p [u8]), TreeError> {
        let invalid = |reason| TreeError::InvalidPath {
            path: lossy(path),
            reason,
        };
        if path.is_empty() {
            return Err(invalid("empty"));
        }
        if path.first() == Some(&b'/') {
            return Err(invalid("absolute"));
        }
        if path.contains(&0) {
            return Err(invalid("contains a NUL byte"));
        }
        let parts: Vec<&[u8]> = path.split(|&b| b == b'/').collect();
        for p in &parts {
            match *p {
                b"" => return Err(invalid("empty component")),
                b"." | b".." => return Err(invalid("`.` or `..` component")),
                _ => {}
            }
        }
        if parts.len() > MAX_DEPTH {
            return Err(TreeError::TooDeep { path: lossy(path) });
        }
        let Some((name, dirs)) = parts.split_last() else {
            return Err(invalid("empty"));
        };
        let mut map = &mut self.root;
        for (i, dir) in dirs.iter().enumerate() {
            let entry = map.entry(dir.to_vec()).or_insert_with(|| Entry {
                mode: 0o755,
                time: Timestamp::default(),
                kind: EntryKind::Dir {
                    children: BTreeMap::new(),
                    explicit: false,
                },
            });
            map = match &mut entry.kind {
                EntryKind::Dir { children, .. } => children,
                _ => {
                    let end = dirs.iter().take(i + 1).map(|d| d.len() + 1).sum::<usize>() - 1;
                    return Err(TreeError::NotADirectory {
                        path: lossy(path),
                        parent: lossy(path.get(..end).unwrap_or(path)),
                    });
                }
            };
        }
        Ok((map, name))
    }

    /// The writer's nodes, sorted by name, a top-level `.PackageInfo` last;
    /// times newer than `epoch` are clamped to it.
    pub(crate) fn into_nodes(self, epoch: Option<i64>) -> Vec<Node> {
        let mut nodes = convert(self.root, epoch);
        if let Some(i) = nodes.iter().position(|n| n.name == PACKAGE_INFO_FILE) {
            let info = nodes.remove(i);
            nodes.push(info);
        }
        nodes
    }
}

fn check_meta(path: &[u8], mode: u32, time: Timestamp) -> Result<(u16, Timestamp), TreeError> {
    let mode = u16::try_from(mode)
        .ok()
        .filter(|m| m & !0o7777 == 0)
        .ok_or(TreeError::InvalidMode {
            path: lossy(path),
            mode,
        })?;
    if time.nanos >= 1_000_000_000 {
        return Err(TreeError::InvalidTime {
            path: lossy(path),
            nanos: time.nanos,
        });
    }
    Ok((mode, time))
}

/// Depth is bounded by [`MAX_DEPTH`] when entries are added, so recursion
/// here is bounded too.
fn convert(map: BTreeMap<Vec<u8>, Entry>, epoch: Option<i64>) -> Vec<Node> {
    map.into_iter()
        .map(|(name, e)| {
            let kind = match e.kind {
                EntryKind::Dir { children, .. } => Kind::Directory(convert(children, epoch)),
                EntryKind::File(bytes) => Kind::File(Source::Bytes(bytes)),
                EntryKind::Symlink(target) => Kind::Symlink(target),
            };
            let (mtime, mtime_nanos) = super::tree::clamp_time(e.time.secs, e.time.nanos, epoch);
            Node {
                name,
                kind,
                mode: e.mode,
                mtime,
                mtime_nanos,
                attrs: Vec::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_paths_and_duplicates() {
        let mut t = TreeBuilder::new();
        let ts = Timestamp::from_secs(5);
        for bad in [
            &b""[..],
            b"/abs",
            b"a//b",
            b"a/../b",
            b"./a",
            b"a/",
            b"a\0b",
        ] {
            assert!(
                matches!(
                    t.add_file(bad, 0o644, ts, vec![]),
                    Err(TreeError::InvalidPath { .. })
                ),
                "{bad:?}"
            );
        }
        t.add_file(b"d/f", 0o644, ts, vec![1]).unwrap();
        assert!(matches!(
            t.add_file(b"d/f", 0o644, ts, vec![]),
            Err(TreeError::Duplicate { .. })
        ));
        // The implicit parent takes an explicit add once, then no more.
        t.add_dir(b"d", 0o700, ts).unwrap();
        assert!(matches!(
            t.add_dir(b"d", 0o700, ts),
            Err(TreeError::Duplicate { .. })
        ));
        assert_eq!(
            t.add_file(b"d/f/g", 0o644, ts, vec![]),
            Err(TreeError::NotADirectory {
                path: "d/f/g".into(),
                parent: "d/f".into()
            })
        );
        assert!(matches!(
            t.add_file(b"x", 0o100644, ts, vec![]),
            Err(TreeError::InvalidMode { .. })
        ));
        let nodes = t.into_nodes(None);
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].mode, 0o700);
    }
}
