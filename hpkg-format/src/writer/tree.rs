//! The source tree of a package being written: nodes whose payloads are
//! *sources* (bytes in memory, a file on disk, a range of an existing
//! package's heap), built either from a directory or from an opened package,
//! so that both entry points share one encoder.
//!
//! Building reads only metadata and extended attributes; file contents are
//! streamed later, while the heap is written.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::attr::MAX_DEPTH;
use crate::error::{Error, Result};
use crate::package::Package;
use crate::toc::{Children, Data, EntryId, EntryKind};

use super::attr_type;

/// The file Haiku's tools compile the package attributes from.
pub(crate) const PACKAGE_INFO_FILE: &[u8] = b".PackageInfo";

/// Where payload bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// Bytes held in memory.
    Bytes(Vec<u8>),
    /// A regular file of this size on disk, read when the heap is written.
    File {
        /// Its path.
        path: PathBuf,
        /// Its size when the tree was scanned.
        size: u64,
    },
    /// A range of the uncompressed heap of the package being rewritten.
    Package {
        /// Heap offset.
        offset: u64,
        /// Length.
        size: u64,
    },
}

impl Source {
    /// Payload length.
    pub fn size(&self) -> u64 {
        match self {
            Source::Bytes(b) => b.len() as u64,
            Source::File { size, .. } | Source::Package { size, .. } => *size,
        }
    }
}

/// What a node is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A regular file and its content.
    File(Source),
    /// A directory and its entries, in the order they are written.
    Directory(Vec<Node>),
    /// A symbolic link and its target.
    Symlink(Vec<u8>),
}

/// A file attribute (Haiku) / extended attribute (Linux).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeAttr {
    /// Name, without Linux's `user.` prefix.
    pub name: Vec<u8>,
    /// Haiku type code.
    pub type_code: u32,
    /// Payload.
    pub data: Source,
}

/// One entry of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    /// Entry name.
    pub name: Vec<u8>,
    /// Type and content.
    pub kind: Kind,
    /// Permission bits (`0o7777` mask).
    pub mode: u16,
    /// Modification time, seconds since the epoch (never negative).
    pub mtime: u64,
    /// Nanoseconds of the modification time.
    pub mtime_nanos: u32,
    /// File attributes, in the order they are written.
    pub attrs: Vec<NodeAttr>,
}

/// Apply a `SOURCE_DATE_EPOCH` clamp: times newer than it become it.
pub(crate) fn clamp_time(secs: u64, nanos: u32, epoch: Option<i64>) -> (u64, u32) {
    match epoch {
        Some(e) => {
            let e = u64::try_from(e).unwrap_or(0);
            if secs > e || (secs == e && nanos > 0) {
                (e, 0)
            } else {
                (secs, nanos)
            }
        }
        None => (secs, nanos),
    }
}

/// What scanning a directory needs besides the directory.
pub(crate) struct ScanOptions<'a> {
    /// Clamp for modification times.
    pub epoch: Option<i64>,
    /// `(device, inode)` of a file to leave out (the package being written,
    /// if it already exists inside the tree).
    pub exclude: Option<(u64, u64)>,
    /// Where warnings go.
    pub warn: &'a mut dyn FnMut(&str),
    /// Paths (relative to the tree) left out.
    pub skipped: &'a mut Vec<String>,
}

/// Scan `dir` into the top-level nodes of a package.
///
/// Entries are sorted by name bytes, except that a top-level `.PackageInfo`
/// comes last, as Haiku's `package create` adds it. Modes are `st_mode &
/// 0o7777`; modification times are whole seconds (Haiku's writer stores no
/// nanoseconds); hard links become separate files. Device nodes, FIFOs and
/// sockets are refused.
pub(crate) fn scan_dir(dir: &Path, opts: &mut ScanOptions<'_>) -> Result<Vec<Node>> {
    let meta = fs::metadata(dir).map_err(|e| Error::Io(e).in_file(dir))?;
    if !meta.is_dir() {
        return Err(Error::Unpackable {
            path: dir.to_path_buf(),
            reason: "not a directory".into(),
        });
    }
    let mut nodes = scan_children(dir, Path::new(""), 0, opts)?;
    if let Some(i) = nodes.iter().position(|n| n.name == PACKAGE_INFO_FILE) {
        let info = nodes.remove(i);
        nodes.push(info);
    }
    Ok(nodes)
}

fn scan_children(
    dir: &Path,
    rel: &Path,
    depth: usize,
    opts: &mut ScanOptions<'_>,
) -> Result<Vec<Node>> {
    if depth >= MAX_DEPTH {
        return Err(Error::Unpackable {
            path: dir.to_path_buf(),
            reason: format!("directories nested deeper than {MAX_DEPTH}"),
        });
    }
    let mut names: Vec<Vec<u8>> = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::Io(e).in_file(dir))? {
        let entry = entry.map_err(|e| Error::Io(e).in_file(dir))?;
        names.push(entry.file_name().as_bytes().to_vec());
    }
    names.sort_unstable();
    let mut nodes = Vec::with_capacity(names.len());
    for name in names {
        let path = dir.join(OsStr::from_bytes(&name));
        let rel = rel.join(OsStr::from_bytes(&name));
        if let Some(node) = scan_entry(&path, &rel, name, depth, opts)? {
            nodes.push(node);
        }
    }
    Ok(nodes)
}

fn scan_entry(
    path: &Path,
    rel: &Path,
    name: Vec<u8>,
    depth: usize,
    opts: &mut ScanOptions<'_>,
) -> Result<Option<Node>> {
    let meta = fs::symlink_metadata(path).map_err(|e| Error::Io(e).in_file(path))?;
    if opts.exclude == Some((meta.dev(), meta.ino())) {
        let shown = rel.display().to_string();
        (opts.warn)(&format!(
            "{shown}: left out, it is the package being written"
        ));
        opts.skipped.push(shown);
        return Ok(None);
    }
    let ft = meta.file_type();
    let kind = if ft.is_file() {
        Kind::File(Source::File {
            path: path.to_path_buf(),
            size: meta.len(),
        })
    } else if ft.is_dir() {
        Kind::Directory(scan_children(path, rel, depth + 1, opts)?)
    } else if ft.is_symlink() {
        let target = fs::read_link(path).map_err(|e| Error::Io(e).in_file(path))?;
        Kind::Symlink(target.as_os_str().as_bytes().to_vec())
    } else {
        let what = if ft.is_block_device() {
            "a block device"
        } else if ft.is_char_device() {
            "a character device"
        } else if ft.is_fifo() {
            "a FIFO"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "of an unknown file type"
        };
        return Err(Error::Unpackable {
            path: path.to_path_buf(),
            reason: format!(
                "it is {what}; a package holds only regular files, directories and symlinks"
            ),
        });
    };
    let secs = match u64::try_from(meta.mtime()) {
        Ok(s) => s,
        Err(_) => {
            (opts.warn)(&format!(
                "{}: modification time before 1970, stored as 1970-01-01",
                rel.display()
            ));
            0
        }
    };
    let (mtime, mtime_nanos) = clamp_time(secs, 0, opts.epoch);
    let attrs = read_xattrs(path, rel, opts)?;
    Ok(Some(Node {
        name,
        kind,
        mode: (meta.mode() & 0o7777) as u16,
        mtime,
        mtime_nanos,
        attrs,
    }))
}

/// Whether an I/O error means "this file system has no extended attributes".
fn unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::ENOSYS))
}

/// The `user.*` extended attributes of `path` (not following symlinks),
/// sorted by name, as Haiku attributes.
fn read_xattrs(path: &Path, rel: &Path, opts: &mut ScanOptions<'_>) -> Result<Vec<NodeAttr>> {
    let names = match xattr::list(path) {
        Ok(names) => names,
        Err(e) if unsupported(&e) => return Ok(Vec::new()),
        Err(e) => return Err(Error::Io(e).in_file(path)),
    };
    let mut attrs = Vec::new();
    let mut seen = HashSet::new();
    for full in names {
        let bytes = full.as_bytes();
        let Some(name) = bytes.strip_prefix(b"user.") else {
            if bytes != b"security.selinux" {
                (opts.warn)(&format!(
                    "{}: extended attribute {} left out (only user.* attributes become Haiku attributes)",
                    rel.display(),
                    String::from_utf8_lossy(bytes)
                ));
            }
            continue;
        };
        if name.is_empty() || !seen.insert(name.to_vec()) {
            continue;
        }
        let value = match xattr::get(path, &full) {
            Ok(Some(v)) => v,
            // Removed since it was listed.
            Ok(None) => continue,
            Err(e) => return Err(Error::Io(e).in_file(path)),
        };
        attrs.push(NodeAttr {
            name: name.to_vec(),
            type_code: attr_type::infer(name, &value),
            data: Source::Bytes(value),
        });
    }
    attrs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(attrs)
}

/// The nodes of an opened package, in its own order, with every attribute
/// and type code kept; payloads refer to the package's heap.
pub(crate) fn from_package(pkg: &Package, epoch: Option<i64>) -> Vec<Node> {
    struct Frame<'a> {
        dir: Option<EntryId>,
        kids: Children<'a>,
        nodes: Vec<Node>,
    }
    let toc = pkg.toc();
    // Depth-first with an explicit stack: a hostile package may nest deeply.
    let mut stack = vec![Frame {
        dir: None,
        kids: toc.children(None),
        nodes: Vec::new(),
    }];
    while let Some(top) = stack.last_mut() {
        match top.kids.next() {
            Some(id) if toc.entry(id).kind() == EntryKind::Directory => stack.push(Frame {
                dir: Some(id),
                kids: toc.children(Some(id)),
                nodes: Vec::new(),
            }),
            Some(id) => {
                let node = package_node(pkg, id, Vec::new(), epoch);
                top.nodes.push(node);
            }
            None => {
                let Some(done) = stack.pop() else { break };
                match (done.dir, stack.last_mut()) {
                    (Some(id), Some(parent)) => {
                        parent.nodes.push(package_node(pkg, id, done.nodes, epoch));
                    }
                    _ => return done.nodes,
                }
            }
        }
    }
    Vec::new()
}

fn data_source(data: Data<'_>) -> Source {
    match data {
        Data::Inline(b) => Source::Bytes(b.to_vec()),
        Data::Heap { size: 0, .. } => Source::Bytes(Vec::new()),
        Data::Heap { offset, size } => Source::Package { offset, size },
    }
}

/// One entry of `pkg`; `children` are the nodes of a directory's entries.
fn package_node(pkg: &Package, id: EntryId, children: Vec<Node>, epoch: Option<i64>) -> Node {
    let toc = pkg.toc();
    let e = toc.entry(id);
    let kind = match e.kind() {
        EntryKind::File => Kind::File(data_source(toc.data(id))),
        EntryKind::Symlink => Kind::Symlink(toc.symlink_target(id).to_vec()),
        EntryKind::Directory => Kind::Directory(children),
    };
    let (secs, nanos) = e.mtime();
    let (mtime, mtime_nanos) = clamp_time(u64::try_from(secs).unwrap_or(0), nanos, epoch);
    let attrs = toc
        .attrs(id)
        .iter()
        .map(|a| NodeAttr {
            name: toc.attr_name(a).to_vec(),
            type_code: a.type_code(),
            data: data_source(toc.attr_data(a)),
        })
        .collect();
    Node {
        name: toc.name(id).to_vec(),
        kind,
        mode: e.mode(),
        mtime,
        mtime_nanos,
        attrs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamping() {
        assert_eq!(clamp_time(10, 5, None), (10, 5));
        assert_eq!(clamp_time(10, 5, Some(20)), (10, 5));
        assert_eq!(clamp_time(20, 0, Some(20)), (20, 0));
        assert_eq!(clamp_time(20, 1, Some(20)), (20, 0));
        assert_eq!(clamp_time(30, 1, Some(20)), (20, 0));
        assert_eq!(clamp_time(30, 1, Some(-5)), (0, 0));
    }
}
