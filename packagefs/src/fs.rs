//! The file-system operations over one [`Snapshot`] (a union tree with its
//! inode numbers), free of FUSE types: lookup, attributes, directory
//! listing, reading files and symlinks, extended attributes, statfs, the
//! read-only refusals, and the kernel's lookup counts. The FUSE adapter
//! ([`crate::fuse`]) only translates calls and replies; [`crate::volume`]
//! chooses the snapshot that serves a request.
//!
//! Extended attributes: each Haiku file attribute of a file or directory is
//! `user.<name>`; `user.packagefs.package` names the providing package as
//! `<name>-<version> (<layer>)` (for a merged directory: the lowest-priority
//! package of the merge, whose directory also gives its mode and owner; for
//! a package file mounted on its own: `<name>-<version>`). Linux allows no `user.*` attributes on
//! symlinks, so symlinks list none. Values over 64 KiB (Linux's limit for
//! one attribute) are left out of the list, and reading one by name fails
//! with `E2BIG`. The root directory has no attributes.

use std::ops::Range;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use hpkg_format::heap::CHUNK_SIZE;
use hpkg_format::{ChunkKey, Data, EntryId, EntryKind, NoCache};
use state::plan::{MountedPackage, NodeRef, Tree};

use crate::cache::{Claim, ShardedChunkCache};
use crate::inodes::Numbering;
use crate::prefetch::Prefetcher;

/// Linux's limit for one extended attribute value.
pub const XATTR_SIZE_MAX: u64 = 65536;
/// Linux's limit for an extended attribute name.
pub const XATTR_NAME_MAX: usize = 255;
/// The attribute naming the providing package.
pub const PACKAGE_XATTR: &[u8] = b"user.packagefs.package";
/// Block size reported by `stat` (big reads are cheap: whole chunks).
pub const BLOCK_SIZE: u32 = 1 << 17;

/// Reads at least this long that end near a chunk boundary trigger read-ahead.
const PREFETCH_MIN_READ: usize = 32 << 10;
/// Chunks prefetched at most after a read.
const PREFETCH_MAX_CHUNKS: u64 = 4;
/// Chunks of one read handed to the workers at most.
const FAN_OUT_MAX_CHUNKS: u64 = 32;

/// Why an operation failed; each maps to one errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FsError {
    /// No such node or name.
    #[error("no such file or directory")]
    NotFound,
    /// A directory operation on a non-directory.
    #[error("not a directory")]
    NotDir,
    /// A file operation on a directory.
    #[error("is a directory")]
    IsDir,
    /// A readlink of something that is not a symlink, or a bad argument.
    #[error("invalid argument")]
    Invalid,
    /// Any attempt to change the file system.
    #[error("read-only file system")]
    ReadOnly,
    /// No such extended attribute.
    #[error("no such attribute")]
    NoData,
    /// An attribute value larger than Linux allows.
    #[error("attribute value too large")]
    TooBig,
    /// The package data could not be read (logged with the package name).
    #[error("I/O error")]
    Io,
    /// An inode number this snapshot does not have (a node of a replaced
    /// tree, or one the kernel was told to forget).
    #[error("stale file handle")]
    Stale,
}

impl FsError {
    /// The errno for the kernel.
    pub fn errno(self) -> i32 {
        match self {
            FsError::NotFound => libc::ENOENT,
            FsError::NotDir => libc::ENOTDIR,
            FsError::IsDir => libc::EISDIR,
            FsError::Invalid => libc::EINVAL,
            FsError::ReadOnly => libc::EROFS,
            FsError::NoData => libc::ENODATA,
            FsError::TooBig => libc::E2BIG,
            FsError::Io => libc::EIO,
            FsError::Stale => libc::ESTALE,
        }
    }
}

/// Attributes of a node, as `stat` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    /// Inode number.
    pub ino: u64,
    /// Kind.
    pub kind: EntryKind,
    /// Size in bytes.
    pub size: u64,
    /// 512-byte blocks.
    pub blocks: u64,
    /// Permission bits (with setuid, setgid, sticky).
    pub perm: u16,
    /// Link count: 2 + subdirectories for a directory, 1 otherwise.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time (also shown as access and change time).
    pub mtime: SystemTime,
    /// Preferred I/O size.
    pub blksize: u32,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, Copy)]
pub struct DirEntry<'a> {
    /// Inode number.
    pub ino: u64,
    /// Offset to pass back to continue after this entry.
    pub next_offset: u64,
    /// Kind.
    pub kind: EntryKind,
    /// Name (`.` and `..` included).
    pub name: &'a [u8],
    /// The node (for `.` and `..`: the directory and its parent).
    pub node: NodeRef<'a>,
}

/// File-system statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatFs {
    /// Total blocks (the size of the package files).
    pub blocks: u64,
    /// Nodes.
    pub files: u64,
    /// Block size.
    pub bsize: u32,
    /// Longest name.
    pub namelen: u32,
}

/// Tunables of the operations.
#[derive(Debug, Clone)]
pub struct FsConfig {
    /// Bytes of decompressed chunks kept.
    pub cache_size: u64,
    /// Read-ahead workers (0: no read-ahead).
    pub prefetch_threads: usize,
}

impl Default for FsConfig {
    fn default() -> FsConfig {
        FsConfig {
            cache_size: crate::cache::DEFAULT_CAPACITY,
            prefetch_threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .clamp(2, 8),
        }
    }
}

/// One union tree as the kernel sees it: its nodes with their inode
/// numbers and the kernel's lookup count of each, sharing the mount's chunk
/// cache and read-ahead workers with the snapshots before and after it.
#[derive(Debug)]
pub struct Snapshot {
    tree: Arc<Tree>,
    numbering: Numbering,
    /// Per node: how many times the kernel was given its inode number by a
    /// lookup or a readdirplus entry, less what it forgot.
    lookups: Box<[AtomicU32]>,
    /// The generation the tree shows (`None`: no state).
    generation: Option<u64>,
    cache: Arc<ShardedChunkCache>,
    prefetcher: Option<Arc<Prefetcher>>,
}

impl Snapshot {
    /// The first snapshot of a mount, of `tree` (showing `generation`).
    pub fn new(
        tree: Tree,
        generation: Option<u64>,
        config: &FsConfig,
    ) -> std::io::Result<Snapshot> {
        let cache = Arc::new(ShardedChunkCache::new(config.cache_size));
        let prefetcher = match config.prefetch_threads {
            0 => None,
            n => Some(Arc::new(Prefetcher::start(cache.clone(), n)?)),
        };
        let numbering = Numbering::first(&tree);
        Ok(Snapshot::with_parts(
            tree, numbering, generation, cache, prefetcher,
        ))
    }

    /// The snapshot that follows this one: `tree` numbered `numbering`
    /// (see [`crate::inodes::carry`]), sharing this one's chunk cache and
    /// read-ahead workers. Lookup counts start at zero.
    pub fn successor(&self, tree: Tree, numbering: Numbering, generation: Option<u64>) -> Snapshot {
        Snapshot::with_parts(
            tree,
            numbering,
            generation,
            self.cache.clone(),
            self.prefetcher.clone(),
        )
    }

    fn with_parts(
        tree: Tree,
        numbering: Numbering,
        generation: Option<u64>,
        cache: Arc<ShardedChunkCache>,
        prefetcher: Option<Arc<Prefetcher>>,
    ) -> Snapshot {
        let lookups = (0..tree.len()).map(|_| AtomicU32::new(0)).collect();
        Snapshot {
            tree: Arc::new(tree),
            numbering,
            lookups,
            generation,
            cache,
            prefetcher,
        }
    }

    /// The union tree.
    pub fn tree(&self) -> &Arc<Tree> {
        &self.tree
    }

    /// The inode numbers of the tree's nodes.
    pub fn numbering(&self) -> &Numbering {
        &self.numbering
    }

    /// The generation shown (`None`: a root without state, package files).
    pub fn generation(&self) -> Option<u64> {
        self.generation
    }

    /// The chunk cache.
    pub fn cache(&self) -> &ShardedChunkCache {
        &self.cache
    }

    /// The node of inode `ino`, if this snapshot has it.
    pub fn node(&self, ino: u64) -> Result<NodeRef<'_>, FsError> {
        self.numbering
            .index(ino)
            .and_then(|i| self.tree.at(i))
            .ok_or(FsError::Stale)
    }

    /// Whether this snapshot has inode `ino`.
    pub fn has(&self, ino: u64) -> bool {
        self.numbering.index(ino).is_some()
    }

    /// The inode number of `node` (a node of this snapshot's tree).
    pub fn ino_of(&self, node: &NodeRef<'_>) -> u64 {
        self.numbering.ino(node.index())
    }

    /// Count one more kernel reference to `ino` (a lookup reply or a
    /// readdirplus entry carrying it).
    pub fn count_lookup(&self, ino: u64) {
        if let Some(c) = self
            .numbering
            .index(ino)
            .and_then(|i| self.lookups.get(i as usize))
        {
            // Saturating: a count that reaches the top stays there (the node
            // is then never forgotten, which is safe).
            let _ = c.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(1));
        }
    }

    /// The kernel forgot `n` references to `ino`; `false` when this snapshot
    /// does not have `ino`.
    pub fn forget(&self, ino: u64, n: u64) -> bool {
        let Some(c) = self
            .numbering
            .index(ino)
            .and_then(|i| self.lookups.get(i as usize))
        else {
            return false;
        };
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        let _ = c.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
            (c != u32::MAX).then(|| c.saturating_sub(n))
        });
        true
    }

    /// The kernel's references to node `index`.
    pub fn lookups_of(&self, index: u32) -> u32 {
        self.lookups
            .get(index as usize)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Set the kernel's references to node `index` (taken over from the
    /// snapshot this one replaces).
    pub fn set_lookups(&self, index: u32, n: u32) {
        if let Some(c) = self.lookups.get(index as usize) {
            c.store(n, Ordering::Relaxed);
        }
    }

    /// Attributes of a node.
    pub fn attr_of(&self, node: &NodeRef<'_>) -> Attr {
        let kind = node.kind();
        let size = node.size();
        let (uid, gid) = node.owner();
        Attr {
            ino: self.ino_of(node),
            kind,
            size,
            blocks: size.div_ceil(512),
            perm: node.mode(),
            nlink: match kind {
                EntryKind::Directory => 2u32.saturating_add(node.subdir_count()),
                _ => 1,
            },
            uid,
            gid,
            mtime: node.mtime(),
            blksize: BLOCK_SIZE,
        }
    }

    /// Look `name` up in directory `parent`.
    pub fn lookup(&self, parent: u64, name: &[u8]) -> Result<Attr, FsError> {
        let dir = self.node(parent)?;
        if dir.kind() != EntryKind::Directory {
            return Err(FsError::NotDir);
        }
        let node = match name {
            b"." => dir,
            b".." => dir.parent(),
            _ => dir.lookup(name).ok_or(FsError::NotFound)?,
        };
        Ok(self.attr_of(&node))
    }

    /// Attributes of inode `ino`.
    pub fn getattr(&self, ino: u64) -> Result<Attr, FsError> {
        Ok(self.attr_of(&self.node(ino)?))
    }

    /// The target of symlink `ino`.
    pub fn readlink(&self, ino: u64) -> Result<&[u8], FsError> {
        let node = self.node(ino)?;
        match node.kind() {
            EntryKind::Symlink => Ok(node.symlink_target()),
            _ => Err(FsError::Invalid),
        }
    }

    /// Check an `open(2)` of `ino` with `flags`: anything but read-only
    /// access (or truncation) is refused.
    pub fn open(&self, ino: u64, flags: i32) -> Result<(), FsError> {
        self.node(ino)?;
        if flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0 {
            return Err(FsError::ReadOnly);
        }
        Ok(())
    }

    /// Check an `opendir` of `ino`.
    pub fn opendir(&self, ino: u64, flags: i32) -> Result<(), FsError> {
        let node = self.node(ino)?;
        if node.kind() != EntryKind::Directory {
            return Err(FsError::NotDir);
        }
        if flags & libc::O_ACCMODE != libc::O_RDONLY {
            return Err(FsError::ReadOnly);
        }
        Ok(())
    }

    /// Check `access(2)`: writing is refused, the kernel checks the rest
    /// (the file system is mounted with `default_permissions`).
    pub fn access(&self, ino: u64, mask: i32) -> Result<(), FsError> {
        self.node(ino)?;
        if mask & libc::W_OK != 0 {
            return Err(FsError::ReadOnly);
        }
        Ok(())
    }

    /// The entries of directory `ino` from position `offset` on (0: from
    /// the start; otherwise the `next_offset` of the last entry seen).
    pub fn readdir(
        &self,
        ino: u64,
        offset: u64,
    ) -> Result<impl Iterator<Item = DirEntry<'_>> + '_, FsError> {
        let dir = self.node(ino)?;
        if dir.kind() != EntryKind::Directory {
            return Err(FsError::NotDir);
        }
        let total = u64::from(dir.child_count()) + 2;
        Ok((offset..total).filter_map(move |i| {
            let (node, name): (NodeRef<'_>, &[u8]) = match i {
                0 => (dir, b"."),
                1 => (dir.parent(), b".."),
                _ => {
                    let c = dir.child(u32::try_from(i - 2).ok()?)?;
                    (c, c.name())
                }
            };
            Some(DirEntry {
                ino: self.ino_of(&node),
                next_offset: i + 1,
                kind: node.kind(),
                name,
                node,
            })
        }))
    }

    /// Read up to `size` bytes of file `ino` at `offset`.
    pub fn read(&self, ino: u64, offset: u64, size: u32) -> Result<Vec<u8>, FsError> {
        let mut buf = Vec::new();
        let n = self.read_into(ino, offset, size, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// [`Snapshot::read`] into `buf`, a buffer kept from one read to the
    /// next: the bytes read are `buf[..n]` for the `n` returned. `buf` only
    /// grows (zeroed once, to the largest read), so that a read writes each
    /// byte once, without clearing or allocating a megabyte for every
    /// request.
    pub fn read_into(
        &self,
        ino: u64,
        offset: u64,
        size: u32,
        buf: &mut Vec<u8>,
    ) -> Result<usize, FsError> {
        let node = self.node(ino)?;
        let (Some(entry), Some(mp), Some(pkg)) =
            (node.entry_id(), node.package(), node.package_index())
        else {
            // The root and synthetic shine-through directories.
            return Err(FsError::IsDir);
        };
        self.read_entry_into(mp, entry, offset, size, Some(pkg), || node.path(), buf)
    }

    /// Read up to `size` bytes at `offset` of file `entry` of package `mp`,
    /// through this snapshot's chunk cache: a file of this tree (`pkg`: its
    /// package's index in the tree, for the read-ahead workers), or one
    /// that only an orphan still names (`None`: no read-ahead). `path`
    /// names the file in a read error's log line. A directory entry is
    /// `IsDir`, a symlink or an entry `mp` does not have `Invalid`: the one
    /// check of the kind on the read path.
    ///
    /// The bytes read are `buf[..n]` for the `n` returned (see
    /// [`Snapshot::read_into`]).
    #[allow(clippy::too_many_arguments)]
    pub fn read_entry_into(
        &self,
        mp: &MountedPackage,
        entry: EntryId,
        offset: u64,
        size: u32,
        pkg: Option<usize>,
        path: impl FnOnce() -> Vec<u8>,
        buf: &mut Vec<u8>,
    ) -> Result<usize, FsError> {
        let toc = mp.package().toc();
        if usize::try_from(entry).map_or(true, |e| e >= toc.len()) {
            return Err(FsError::Invalid);
        }
        match toc.entry(entry).kind() {
            EntryKind::File => {}
            EntryKind::Directory => return Err(FsError::IsDir),
            EntryKind::Symlink => return Err(FsError::Invalid),
        }
        let data = toc.data(entry);
        let len = data.len();
        if offset >= len {
            return Ok(0);
        }
        let n = usize::try_from((len - offset).min(u64::from(size))).map_err(|_| FsError::Io)?;
        if buf.len() < n {
            buf.resize(n, 0);
        }
        let buf = &mut buf[..n];
        match data {
            Data::Inline(bytes) => {
                let start = usize::try_from(offset).map_err(|_| FsError::Io)?;
                let src = bytes.get(start..start + n).ok_or(FsError::Io)?;
                buf.copy_from_slice(src);
            }
            Data::Heap { offset: base, size } => {
                let shared = match pkg {
                    Some(pkg) => self.fan_out(pkg, mp, base + offset, n),
                    None => 0..0,
                };
                self.read_heap(mp, base, size, offset, buf, shared)
                    .map_err(|e| {
                        report_read_error(
                            mp,
                            &format!("{} at {offset}", String::from_utf8_lossy(&path())),
                            &e,
                        );
                        FsError::Io
                    })?;
                if let Some(pkg) = pkg {
                    self.prefetch_after(pkg, mp, base, size, offset, n);
                }
            }
        }
        Ok(n)
    }

    /// Hand the chunks of a read of `len` heap bytes at `start` after its
    /// first one to the prefetch workers; returns their index range.
    fn fan_out(&self, pkg: usize, mp: &MountedPackage, start: u64, len: usize) -> Range<u64> {
        let (Some(prefetcher), Some(last_byte)) =
            (&self.prefetcher, (start + len as u64).checked_sub(1))
        else {
            return 0..0;
        };
        let chunk = CHUNK_SIZE as u64;
        let first = start / chunk + 1;
        let end = (last_byte / chunk + 1)
            .min(first + FAN_OUT_MAX_CHUNKS)
            .min(mp.package().heap().chunk_count());
        for index in first..end {
            prefetcher.request(&self.tree, pkg, index);
        }
        first..end.max(first)
    }

    /// Fill `out` from the file whose data is `base..base + size` in the
    /// uncompressed heap, starting `offset` bytes into it.
    ///
    /// Stored (raw) chunks are read straight from the package file. A
    /// compressed chunk the read covers whole is taken from the cache (or a
    /// load in progress) when there, and otherwise decompressed straight
    /// into `out` and not cached (the kernel's page cache keeps it), unless
    /// it is one of the `shared` chunks handed to the prefetch workers: then
    /// it is cached so that the worker skips it. A chunk read in part goes
    /// through the cache, so files sharing a chunk decompress it once.
    fn read_heap(
        &self,
        mp: &MountedPackage,
        base: u64,
        size: u64,
        offset: u64,
        out: &mut [u8],
        shared: Range<u64>,
    ) -> Result<(), hpkg_format::Error> {
        let heap = mp.package().heap();
        let start = base.saturating_add(offset);
        if base.checked_add(size).is_none_or(|end| end > heap.size())
            || offset
                .checked_add(out.len() as u64)
                .is_none_or(|e| e > size)
        {
            return Err(hpkg_format::Error::OutOfHeap {
                offset: start,
                len: out.len() as u64,
                heap_size: heap.size(),
            });
        }
        // The daemon's chunk policy for the heap's one read loop.
        struct DaemonChunks<'a> {
            cache: &'a ShardedChunkCache,
            shared: Range<u64>,
        }
        impl hpkg_format::ChunkSource for DaemonChunks<'_> {
            fn fill(
                &self,
                heap: &hpkg_format::Heap,
                index: u64,
                out: &mut [u8],
            ) -> Result<(), hpkg_format::Error> {
                let n = out.len();
                let key = ChunkKey {
                    heap: heap.id(),
                    index,
                };
                match self.cache.claim(key) {
                    Claim::Cached(c) if c.len() == n => out.copy_from_slice(&c),
                    Claim::Cached(_) => heap.decompress_chunk(index, out)?,
                    Claim::Loading(l) => match l.wait() {
                        Some(c) if c.len() == n => out.copy_from_slice(&c),
                        _ => heap.decompress_chunk(index, out)?,
                    },
                    Claim::Mine(guard) => {
                        heap.decompress_chunk(index, out)?;
                        if self.shared.contains(&index) {
                            guard.publish(Arc::from(&*out), true);
                        }
                    }
                }
                Ok(())
            }

            fn chunk(
                &self,
                heap: &hpkg_format::Heap,
                index: u64,
            ) -> Result<hpkg_format::Chunk, hpkg_format::Error> {
                let key = ChunkKey {
                    heap: heap.id(),
                    index,
                };
                self.cache.get_or_load(key, || heap.chunk(index, &NoCache))
            }
        }
        let source = DaemonChunks {
            cache: &self.cache,
            shared,
        };
        heap.read_with(start, out, &source)
    }

    /// After a long read that ends near a chunk boundary, ask the workers to
    /// decompress the chunks the next read of the same length will need.
    fn prefetch_after(
        &self,
        pkg: usize,
        mp: &MountedPackage,
        base: u64,
        size: u64,
        offset: u64,
        len: usize,
    ) {
        let Some(prefetcher) = &self.prefetcher else {
            return;
        };
        let chunk = CHUNK_SIZE as u64;
        let end = base + offset + len as u64;
        let file_end = base + size;
        if len < PREFETCH_MIN_READ || end >= file_end {
            return;
        }
        // Only when the read reached the last quarter of its chunk.
        let in_chunk = end % chunk;
        if in_chunk != 0 && in_chunk < chunk * 3 / 4 {
            return;
        }
        let heap = mp.package().heap();
        let first = end.div_ceil(chunk);
        let last = (end + len as u64).min(file_end).div_ceil(chunk);
        for index in first..last.min(first + PREFETCH_MAX_CHUNKS) {
            if index < heap.chunk_count() {
                prefetcher.request(&self.tree, pkg, index);
            }
        }
    }

    /// The names of the extended attributes of `ino`, each followed by NUL.
    pub fn listxattr(&self, ino: u64) -> Result<Vec<u8>, FsError> {
        let node = self.node(ino)?;
        let mut out = Vec::new();
        let (Some((toc, _)), Some(_)) = (node.toc_entry(), node.package()) else {
            return Ok(out);
        };
        if node.kind() == EntryKind::Symlink {
            return Ok(out);
        }
        out.extend_from_slice(PACKAGE_XATTR);
        out.push(0);
        let attrs = node.attrs();
        for (i, a) in attrs.iter().enumerate() {
            let name = toc.attr_name(a);
            if !listable(name) || a.size() > XATTR_SIZE_MAX {
                continue;
            }
            // A name given twice is shown once (the first wins, as in getxattr).
            if attrs[..i].iter().any(|b| toc.attr_name(b) == name) {
                continue;
            }
            out.extend_from_slice(b"user.");
            out.extend_from_slice(name);
            out.push(0);
        }
        Ok(out)
    }

    /// The value of extended attribute `name` of `ino`.
    pub fn getxattr(&self, ino: u64, name: &[u8]) -> Result<Vec<u8>, FsError> {
        let node = self.node(ino)?;
        let (Some((toc, _)), Some(mp)) = (node.toc_entry(), node.package()) else {
            return Err(FsError::NoData);
        };
        if node.kind() == EntryKind::Symlink {
            return Err(FsError::NoData);
        }
        if name == PACKAGE_XATTR {
            return Ok(mp.label().as_bytes().to_vec());
        }
        let Some(haiku_name) = name.strip_prefix(b"user.") else {
            return Err(FsError::NoData);
        };
        if !listable(haiku_name) {
            return Err(FsError::NoData);
        }
        let attr = node
            .attrs()
            .iter()
            .find(|a| toc.attr_name(a) == haiku_name)
            .ok_or(FsError::NoData)?;
        if attr.size() > XATTR_SIZE_MAX {
            return Err(FsError::TooBig);
        }
        mp.package()
            .data_to_vec(toc.attr_data(attr), self.cache.as_ref())
            .map_err(|e| {
                report_read_error(
                    mp,
                    &format!(
                        "attribute {} of {}",
                        String::from_utf8_lossy(haiku_name),
                        String::from_utf8_lossy(&node.path())
                    ),
                    &e,
                );
                FsError::Io
            })
    }

    /// File-system statistics.
    pub fn statfs(&self) -> StatFs {
        let bsize = 4096u32;
        let bytes: u64 = self
            .tree
            .packages()
            .iter()
            .map(|p| p.package().file_size())
            .sum();
        StatFs {
            blocks: bytes.div_ceil(u64::from(bsize)),
            files: self.tree.len() as u64,
            bsize,
            namelen: XATTR_NAME_MAX as u32,
        }
    }
}

/// Count and log (the first few, then every 1000th) a failed read of `mp`'s
/// data: the file was truncated, overwritten or became unreadable while
/// mounted.
fn report_read_error(mp: &MountedPackage, what: &str, err: &hpkg_format::Error) {
    if let Some(n) = mp.count_read_error() {
        tracing::error!(
            package = %mp.package().info().name,
            file = %mp.path().display(),
            "package {} ({}): reading {what} failed: {err} ({n} read error{} so far)",
            mp.path().display(),
            mp.label(),
            if n == 1 { "" } else { "s" }
        );
    }
}

/// Whether a Haiku attribute name can be shown as `user.<name>`: it fits
/// Linux's name limit and is not the name packagefs uses itself.
fn listable(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() + 5 <= XATTR_NAME_MAX
        && !name.contains(&0)
        && name != &PACKAGE_XATTR[5..]
}
