//! The FUSE adapter: translates `fuser` calls into [`PackageFs`] operations
//! and their results into replies, and mounts the file system.
//!
//! Kernel caching does most of the work: entries, negative entries and
//! attributes live for [`DEFAULT_TTL`] (the tree only changes by explicit
//! invalidation), file pages are kept across opens (`FOPEN_KEEP_CACHE`),
//! directory listings are cached (`FOPEN_CACHE_DIR`), opening a directory
//! (and a file, unless open files must pin their tree) and closing a file
//! cost no round trip where the kernel supports it (`FUSE_NO_OPENDIR_SUPPORT`,
//! `FUSE_NO_OPEN_SUPPORT`, no `flush`), listings come with
//! attributes (readdirplus), reads are asynchronous and up to the kernel's
//! page limit, and requests are served by several threads, each with its
//! own `/dev/fuse` descriptor.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, BsdFileFlags, Config, CopyFileRangeFlags, Errno, FileAttr, FileHandle, FileType,
    Filesystem, FopenFlags, Generation, INodeNo, InitFlags, KernelConfig, LockOwner, MountOption,
    OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, ReplyXattr, Request, Session,
    SessionACL, TimeOrNow, WriteFlags,
};
use hpkg_format::EntryKind;

use crate::fs::{Attr, FsError, PackageFs};
use crate::kmount;
use crate::live::Trees;
use crate::options::MountFlag;

/// How long the kernel may cache entries and attributes: one day.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// How the file system is mounted.
#[derive(Debug, Clone)]
pub struct MountConfig {
    /// Let other users than the mounter see the tree (`allow_other`).
    pub allow_other: bool,
    /// Let root too see the tree (`allow_root`).
    pub allow_root: bool,
    /// The source shown in the mount table.
    pub fsname: String,
    /// Further kernel mount flags (`nosuid`, `nodev`, `noexec`, `noatime`, ...).
    pub flags: Vec<MountFlag>,
    /// Threads serving requests.
    pub threads: usize,
    /// Entry and attribute time-to-live.
    pub ttl: Duration,
    /// Give every open file a handle that keeps the tree it was opened in
    /// (see [`Trees`]): needed when trees are swapped while mounted (a live
    /// mount). Without it, opening a file costs no round trip where the
    /// kernel allows (`FUSE_NO_OPEN_SUPPORT`): a file read again is then
    /// served from the page cache without asking the daemon at all.
    pub pin_open_files: bool,
}

impl Default for MountConfig {
    fn default() -> MountConfig {
        MountConfig {
            allow_other: false,
            allow_root: false,
            fsname: "packagefs".into(),
            flags: Vec::new(),
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .clamp(4, 16),
            ttl: DEFAULT_TTL,
            pin_open_files: true,
        }
    }
}

/// Mount `fs` read-only at `mountpoint`. Returns once the kernel has
/// completed the FUSE handshake: the mount is ready. Run the returned
/// session (`Session::run`, or `Session::spawn` for a background thread) to
/// serve requests.
///
/// As root the file system is mounted with `mount(2)` (see
/// [`crate::kmount`]) and the session never unmounts it: it serves until
/// someone unmounts the mount point ([`crate::kmount::unmount`], `umount`).
/// Otherwise it is fuser's mount, which unmounts when the session ends.
pub fn mount(
    fs: Arc<PackageFs>,
    mountpoint: &Path,
    config: &MountConfig,
) -> io::Result<Session<FuseFs>> {
    mount_trees(Arc::new(Trees::new(fs)), mountpoint, config)
}

/// Like [`mount`], serving whichever tree `trees` holds: a live mount swaps
/// trees in while the session runs.
pub fn mount_trees(
    trees: Arc<Trees>,
    mountpoint: &Path,
    config: &MountConfig,
) -> io::Result<Session<FuseFs>> {
    let mut options = vec![
        MountOption::RO,
        MountOption::FSName(config.fsname.clone()),
        MountOption::Subtype(kmount::SUBTYPE.into()),
        MountOption::DefaultPermissions,
    ];
    for f in config.flags.iter().map(|&f| fuser_option(f)) {
        if !options.contains(&f) {
            options.push(f);
        }
    }
    let mut fuse_config = Config::default();
    fuse_config.mount_options = options;
    fuse_config.acl = if config.allow_other {
        SessionACL::All
    } else if config.allow_root {
        SessionACL::RootAndOwner
    } else {
        SessionACL::Owner
    };
    fuse_config.n_threads = Some(config.threads.max(1));
    fuse_config.clone_fd = true;
    let fs = FuseFs {
        trees,
        ttl: config.ttl,
        pin_open_files: config.pin_open_files,
        no_open: false,
        no_opendir: false,
    };
    if !kmount::can_mount() {
        return Session::new(fs, mountpoint, &fuse_config);
    }
    // As root: mount(2) ourselves, so that nothing unmounts the mount point
    // by path behind our back (see `kmount`).
    let acl = fuse_config.acl;
    let allow_other = config.allow_other || config.allow_root;
    let device = kmount::mount_fuse(
        mountpoint,
        &config.fsname,
        kmount::SUBTYPE,
        &config.flags,
        allow_other,
    )?;
    Session::from_fd(fs, device, acl, fuse_config).inspect_err(|_| {
        let _ = kmount::unmount(mountpoint);
    })
}

/// fuser's name for a mount flag.
fn fuser_option(flag: MountFlag) -> MountOption {
    match flag {
        MountFlag::Suid => MountOption::Suid,
        MountFlag::NoSuid => MountOption::NoSuid,
        MountFlag::Dev => MountOption::Dev,
        MountFlag::NoDev => MountOption::NoDev,
        MountFlag::Exec => MountOption::Exec,
        MountFlag::NoExec => MountOption::NoExec,
        MountFlag::NoAtime => MountOption::NoAtime,
    }
}

/// The `fuser` face of a [`PackageFs`].
#[derive(Debug)]
pub struct FuseFs {
    trees: Arc<Trees>,
    ttl: Duration,
    /// See [`MountConfig::pin_open_files`].
    pin_open_files: bool,
    /// Files need no handle and the kernel can do without `open`
    /// (`FUSE_NO_OPEN_SUPPORT`): answering the first one with `ENOSYS`
    /// makes it open files itself from then on, keeping their pages
    /// cached, and send no `release` either.
    no_open: bool,
    /// The kernel can do without `opendir` (`FUSE_NO_OPENDIR_SUPPORT`):
    /// the same for directories, whose listings it then caches itself.
    no_opendir: bool,
}

impl FuseFs {
    /// The tree serving inode `ino`.
    fn fs(&self, ino: INodeNo) -> Arc<PackageFs> {
        self.trees.for_ino(ino.0)
    }
}

fn errno(e: FsError) -> Errno {
    Errno::from_i32(e.errno())
}

fn file_type(kind: EntryKind) -> FileType {
    match kind {
        EntryKind::File => FileType::RegularFile,
        EntryKind::Directory => FileType::Directory,
        EntryKind::Symlink => FileType::Symlink,
    }
}

fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.blocks,
        atime: a.mtime,
        mtime: a.mtime,
        ctime: a.mtime,
        crtime: a.mtime,
        kind: file_type(a.kind),
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: 0,
        blksize: a.blksize,
        flags: 0,
    }
}

/// A negative entry: the kernel caches "no such name" for the TTL.
fn negative_attr() -> FileAttr {
    FileAttr {
        ino: INodeNo(0),
        size: 0,
        blocks: 0,
        atime: SystemTime::UNIX_EPOCH,
        mtime: SystemTime::UNIX_EPOCH,
        ctime: SystemTime::UNIX_EPOCH,
        crtime: SystemTime::UNIX_EPOCH,
        kind: FileType::RegularFile,
        perm: 0,
        nlink: 0,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 0,
        flags: 0,
    }
}

/// Run an operation that decodes package data, turning a panic (a bug)
/// into EIO with a log line: the request is answered and the serving thread
/// survives, where an unwinding panic would leave the caller hanging.
fn guarded<T>(what: &str, op: impl FnOnce() -> Result<T, FsError>) -> Result<T, FsError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(op)).unwrap_or_else(|_| {
        tracing::error!("bug: {what} panicked; answered EIO");
        Err(FsError::Io)
    })
}

/// Reply to a getxattr/listxattr with `value` under the size-probe rules:
/// size 0 asks for the length, a buffer too small gets `ERANGE`.
fn reply_xattr(reply: ReplyXattr, size: u32, value: Result<Vec<u8>, FsError>) {
    match value {
        Err(e) => reply.error(errno(e)),
        Ok(v) => match u32::try_from(v.len()) {
            Err(_) => reply.error(Errno::E2BIG),
            Ok(len) if size == 0 => reply.size(len),
            Ok(len) if len > size => reply.error(Errno::ERANGE),
            Ok(_) => reply.data(&v),
        },
    }
}

impl Filesystem for FuseFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        for cap in [
            InitFlags::FUSE_ASYNC_READ,
            InitFlags::FUSE_PARALLEL_DIROPS,
            InitFlags::FUSE_DO_READDIRPLUS,
            InitFlags::FUSE_READDIRPLUS_AUTO,
            InitFlags::FUSE_CACHE_SYMLINKS,
            InitFlags::FUSE_MAX_PAGES,
        ] {
            if config.add_capabilities(cap).is_err() {
                tracing::debug!("kernel lacks FUSE capability {cap:?}");
            }
        }
        // Opening needs no answer from us: the mount is read-only, so the
        // kernel refuses every open for writing or truncating itself. Files
        // of a live mount are opened here all the same, for their handles.
        self.no_open = !self.pin_open_files
            && config
                .add_capabilities(InitFlags::FUSE_NO_OPEN_SUPPORT)
                .is_ok();
        self.no_opendir = config
            .add_capabilities(InitFlags::FUSE_NO_OPENDIR_SUPPORT)
            .is_ok();
        // Read ahead as far as the kernel allows.
        if let Err(max) = config.set_max_readahead(u32::MAX) {
            let _ = config.set_max_readahead(max);
        }
        let _ = config.set_max_background(64);
        let _ = config.set_congestion_threshold(48);
        Ok(())
    }

    fn destroy(&mut self) {
        tracing::info!(
            "unmounted; chunk cache: {:?}",
            self.trees.current().cache().stats()
        );
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let fs = self.fs(parent);
        match guarded("lookup", || fs.lookup(parent.0, name.as_bytes())) {
            Ok(a) => reply.entry(&self.ttl, &file_attr(&a), Generation(0)),
            Err(FsError::NotFound) if fs.tree().node(parent.0).is_some() => {
                reply.entry(&self.ttl, &negative_attr(), Generation(0))
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.fs(ino).getattr(ino.0) {
            Ok(a) => reply.attr(&self.ttl, &file_attr(&a)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        reply.error(Errno::EROFS);
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.fs(ino).readlink(ino.0) {
            Ok(t) => reply.data(t),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn mkdir(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn unlink(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn rmdir(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn symlink(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _link_name: &OsStr,
        _target: &Path,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn rename(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _newparent: INodeNo,
        _newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if self.no_open {
            // The kernel takes this as "opens always succeed" and stops
            // asking (one round trip less per open, and none on close).
            return reply.error(Errno::ENOSYS);
        }
        let fs = self.fs(ino);
        match fs.open(ino.0, flags.0) {
            Ok(()) => reply.opened(
                FileHandle(self.trees.open_handle(fs)),
                FopenFlags::FOPEN_KEEP_CACHE,
            ),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        tracing::trace!("read ino {} offset {offset} size {size}", ino.0);
        // An open file reads the tree it was opened in.
        let fs = self.trees.handle(fh.0).unwrap_or_else(|| self.fs(ino));
        match guarded("read", || fs.read(ino.0, offset, size)) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        reply.error(Errno::EROFS);
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // Nothing to flush: ENOSYS makes the kernel stop sending a flush on
        // every close.
        reply.error(Errno::ENOSYS);
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.trees.release(fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if self.no_opendir {
            // From now on the kernel opens directories itself, caching their
            // listings (FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE): no round trip
            // per opendir and releasedir.
            return reply.error(Errno::ENOSYS);
        }
        match self.fs(ino).opendir(ino.0, flags.0) {
            Ok(()) => reply.opened(
                FileHandle(0),
                FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE,
            ),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let fs = self.fs(ino);
        let listing = fs.readdir(ino.0, offset);
        match listing {
            Ok(entries) => {
                for e in entries {
                    let name = OsStr::from_bytes(e.name);
                    if reply.add(INodeNo(e.ino), e.next_offset, file_type(e.kind), name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let fs = self.fs(ino);
        let listing = fs.readdir(ino.0, offset);
        match listing {
            Ok(entries) => {
                for e in entries {
                    let attr = file_attr(&fs.attr_of(&e.node));
                    let name = OsStr::from_bytes(e.name);
                    if reply.add(
                        INodeNo(e.ino),
                        e.next_offset,
                        name,
                        &self.ttl,
                        &attr,
                        Generation(0),
                    ) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let s = self.trees.current().statfs();
        reply.statfs(s.blocks, 0, 0, s.files, 0, s.bsize, s.namelen, s.bsize);
    }

    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let value = guarded("getxattr", || self.fs(ino).getxattr(ino.0, name.as_bytes()));
        reply_xattr(reply, size, value);
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let names = guarded("listxattr", || self.fs(ino).listxattr(ino.0));
        reply_xattr(reply, size, names);
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn access(&self, _req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        match self.fs(ino).access(ino.0, mask.bits()) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn create(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        reply.error(Errno::EROFS);
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _length: u64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn copy_file_range(
        &self,
        _req: &Request,
        _ino_in: INodeNo,
        _fh_in: FileHandle,
        _offset_in: u64,
        _ino_out: INodeNo,
        _fh_out: FileHandle,
        _offset_out: u64,
        _len: u64,
        _flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        reply.error(Errno::EROFS);
    }
}
