//! The FUSE adapter: translates `fuser` calls into operations on the
//! [`Volume`]'s served [`Snapshot`] and their results into replies, counts
//! them ([`crate::requests`]), and mounts the file system.
//!
//! Kernel caching does most of the work: entries, negative entries and
//! attributes live for [`DEFAULT_TTL`] (the tree only changes by explicit
//! invalidation), file pages are kept across opens (`FOPEN_KEEP_CACHE`),
//! directory listings are cached (`FOPEN_CACHE_DIR`), opening a directory
//! (and a file, unless open files must pin their tree) and closing a file
//! cost no round trip where the kernel supports it (`FUSE_NO_OPENDIR_SUPPORT`,
//! `FUSE_NO_OPEN_SUPPORT`, no `flush`: a file opened before a live change
//! reads on through its orphaned inode, see [`Volume`]), listings come with
//! attributes (readdirplus), reads are asynchronous and up to the kernel's
//! page limit, and requests are served by several threads, each with its
//! own `/dev/fuse` descriptor.
//!
//! With an exec cache ([`MountConfig::exec_cache`]) and a kernel with FUSE
//! passthrough, every open is answered (no `FUSE_NO_OPEN_SUPPORT`): one
//! whose file has a cache file ([`crate::exec_cache`]) is passed through to
//! it, so that the kernel reads and maps the cache file itself, following
//! the kernel's rules of one backing file per inode ([`crate::passthrough`]).

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, BackingId, BsdFileFlags, Config, CopyFileRangeFlags, Errno, FileAttr, FileHandle,
    FileType, Filesystem, FopenFlags, Generation, INodeNo, InitFlags, KernelConfig, LockOwner,
    MountOption, Notifier, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite,
    ReplyXattr, Request, Session, SessionACL, TimeOrNow, WriteFlags,
};
use hpkg_format::EntryKind;

use crate::exec_cache::{self, ExecCache, FMODE_EXEC};
use crate::fs::{Attr, FsError, Snapshot};
use crate::inodes::ROOT_INO;
use crate::kmount;
use crate::options::MountFlag;
use crate::passthrough::{Ordinary, Passthrough};
use crate::requests::{Op, RequestCounts, REQUESTS_XATTR};
use crate::volume::{Notify, Volume};

/// How long the kernel may cache entries and attributes: one day.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The open flags of a passed-through open besides `FOPEN_PASSTHROUGH`:
/// none, since the kernel refuses any but `FOPEN_DIRECT_IO`,
/// `FOPEN_PARALLEL_DIRECT_WRITES` and `FOPEN_NOFLUSH` with it (even
/// `FOPEN_KEEP_CACHE`: the open then fails with `EIO`).
const PASSTHROUGH_FLAGS: FopenFlags = FopenFlags::empty();

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
    /// Pass opens of executed and often opened files through to their
    /// decompressed copies in this cache (needs root and a kernel with FUSE
    /// passthrough; without either, nothing changes).
    pub exec_cache: Option<Arc<ExecCache>>,
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
            exec_cache: None,
        }
    }
}

/// Mount the snapshot `fs` read-only at `mountpoint` (a mount that never
/// changes); see [`mount_volume`].
pub fn mount(fs: Snapshot, mountpoint: &Path, config: &MountConfig) -> io::Result<Session<FuseFs>> {
    mount_volume(Arc::new(Volume::new(fs)), mountpoint, config)
}

/// Mount `volume` read-only at `mountpoint`. Returns once the kernel has
/// completed the FUSE handshake: the mount is ready. Run the returned
/// session (`Session::run`, or `Session::spawn` for a background thread) to
/// serve requests; a live mount swaps snapshots into `volume` meanwhile.
///
/// As root the file system is mounted with `mount(2)` (see
/// [`crate::kmount`]) and the session never unmounts it: it serves until
/// someone unmounts the mount point ([`crate::kmount::unmount`], `umount`).
/// Otherwise it is fuser's mount, which unmounts when the session ends.
pub fn mount_volume(
    volume: Arc<Volume>,
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
        volume,
        requests: RequestCounts::default(),
        ttl: config.ttl,
        no_open: false,
        no_opendir: false,
        exec_cache: config.exec_cache.clone(),
        passthrough: Passthrough::default(),
        passthrough_granted: false,
        passthrough_on: AtomicBool::new(false),
        next_fh: AtomicU64::new(1),
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

/// The kernel side of [`Notify`]: the FUSE session's notifier.
#[derive(Debug)]
pub struct KernelNotify(pub Notifier);

impl Notify for KernelNotify {
    fn inval_inode(&self, ino: u64) -> io::Result<()> {
        self.0.inval_inode(INodeNo(ino), 0, 0)
    }

    fn inval_entry(&self, parent: u64, name: &[u8]) -> io::Result<()> {
        self.0.inval_entry(INodeNo(parent), OsStr::from_bytes(name))
    }
}

/// The `fuser` face of a [`Volume`].
#[derive(Debug)]
pub struct FuseFs {
    volume: Arc<Volume>,
    /// The requests answered, by kind (see [`crate::requests`]).
    requests: RequestCounts,
    ttl: Duration,
    /// Files need no handle and the kernel can do without `open`
    /// (`FUSE_NO_OPEN_SUPPORT`): answering the first one with `ENOSYS`
    /// makes it open files itself from then on, keeping their pages
    /// cached, and send no `release` either.
    no_open: bool,
    /// The kernel can do without `opendir` (`FUSE_NO_OPENDIR_SUPPORT`):
    /// the same for directories, whose listings it then caches itself.
    no_opendir: bool,
    /// See [`MountConfig::exec_cache`].
    exec_cache: Option<Arc<ExecCache>>,
    /// The open files passed through to cache files.
    passthrough: Passthrough<BackingId>,
    /// Whether the kernel agreed to passthrough (asked for with an exec
    /// cache only): opens then go through [`FuseFs::open_cached`].
    passthrough_granted: bool,
    /// Whether new backing files may be made: passthrough granted, and no
    /// refusal of a backing file yet.
    passthrough_on: AtomicBool,
    /// The next file handle handed out by [`FuseFs::open_cached`].
    next_fh: AtomicU64,
}

impl FuseFs {
    /// The errno for `e` from an operation on `ino`: a node the served tree
    /// no longer has is `ENOENT` while the kernel still holds it (an orphan:
    /// its path disappeared), `ESTALE` once it is forgotten.
    fn errno_for(&self, e: FsError, ino: INodeNo) -> Errno {
        match e {
            FsError::Stale if self.volume.is_orphan(ino.0) => Errno::ENOENT,
            e => errno(e),
        }
    }
}

impl FuseFs {
    /// Open `ino` when opens may be passed through: through to its cache
    /// file if it has one or this open makes it qualify (see
    /// [`crate::exec_cache`]; the cache file is written now, without
    /// holding up swaps of the served tree), else the ordinary way, unless
    /// the inode is passed through already (even once the kernel has
    /// refused a new backing file: its rules still hold for the old ones).
    fn open_cached(&self, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let fs = self.volume.current();
        match fs.open(ino.0, flags.0) {
            Ok(()) => {}
            // A file whose path disappeared, reopened (through /proc): it
            // reads on from its package, the ordinary way.
            Err(FsError::Stale) if self.volume.is_orphan(ino.0) => {}
            Err(e) => return reply.error(self.errno_for(e, ino)),
        }
        // Handles only tell opens apart for the passthrough bookkeeping.
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        let key = exec_cache::key_of(&fs, ino.0);
        if let (Some(cache), Some((key, size))) = (&self.exec_cache, key) {
            if self.passthrough_on.load(Ordering::Relaxed)
                && !self.passthrough.conflicts(ino.0, &key)
            {
                let exec = flags.0 & FMODE_EXEC != 0;
                let mut read = |offset, len| guarded("exec cache", || fs.read(ino.0, offset, len));
                if let Some(file) = cache.file_for_open(key, size, exec, &mut read) {
                    let backing = self
                        .passthrough
                        .open_passthrough(fh, ino.0, key, || match reply.open_backing(&file) {
                            Ok(id) => Some(id),
                            Err(e) => {
                                self.passthrough_refused(cache, &e);
                                None
                            }
                        });
                    if let Some(id) = backing {
                        return reply.opened_passthrough(FileHandle(fh), PASSTHROUGH_FLAGS, &id);
                    }
                }
            }
        }
        match self
            .passthrough
            .open_ordinary(fh, ino.0, key.as_ref().map(|(k, _)| k))
        {
            Ordinary::Serve => reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE),
            Ordinary::PassThrough(id) => {
                reply.opened_passthrough(FileHandle(fh), PASSTHROUGH_FLAGS, &id)
            }
            Ordinary::Conflict => {
                // Cannot happen while an inode number names one entry of one
                // package; the kernel would refuse any other answer.
                tracing::error!("bug: inode {} is passed through to another file", ino.0);
                self.passthrough.release(fh);
                reply.error(Errno::EIO);
            }
        }
    }

    /// The kernel refused a backing file: stop passing files through.
    fn passthrough_refused(&self, cache: &ExecCache, e: &io::Error) {
        if self.passthrough_on.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                "exec cache {}: the kernel refuses a backing file ({e}; passthrough \
                 needs CAP_SYS_ADMIN and a cache directory not on a stacked file \
                 system such as overlayfs); serving files from their packages",
                cache.config().dir.display()
            );
        }
    }
}

/// Answer `EROFS` to each listed operation: nothing can change the tree.
macro_rules! read_only {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $reply:ty;)*) => {
        $(
            fn $name(&self, _req: &Request, $(_: $ty,)* reply: $reply) {
                self.requests.count(Op::Other);
                reply.error(Errno::EROFS);
            }
        )*
    };
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

thread_local! {
    /// Each serving thread's read buffer, kept from one READ to the next
    /// ([`Snapshot::read_into`]): at most one reply (1 MiB) a thread.
    static READ_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
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
fn reply_xattr(reply: ReplyXattr, size: u32, value: Result<Vec<u8>, (FsError, Errno)>) {
    match value {
        Err((_, e)) => reply.error(e),
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
            // Every listing request with attributes, not only the first of
            // a directory (no FUSE_READDIRPLUS_AUTO): a directory too large
            // for one reply would otherwise go on in plain READDIRs, and a
            // `find` or `ls -l` then pays one LOOKUP per further entry
            // (6,808 on the 2,300-package benchmark). Attributes cost the
            // daemon nothing it does not hold already.
            InitFlags::FUSE_DO_READDIRPLUS,
            InitFlags::FUSE_CACHE_SYMLINKS,
            InitFlags::FUSE_MAX_PAGES,
        ] {
            if config.add_capabilities(cap).is_err() {
                tracing::debug!("kernel lacks FUSE capability {cap:?}");
            }
        }
        if let Some(cache) = &self.exec_cache {
            // Depth 1: the cache files must be on a file system that is not
            // stacked itself, and this one can be a lower layer of overlayfs.
            let on = config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
                && config.set_max_stack_depth(1).is_ok();
            if !on {
                tracing::warn!(
                    "exec cache {}: the kernel has no FUSE passthrough; \
                     serving every file from its package",
                    cache.config().dir.display()
                );
            }
            self.passthrough_granted = on;
            self.passthrough_on.store(on, Ordering::Relaxed);
        }
        // Opening needs no answer from us: the mount is read-only, so the
        // kernel refuses every open for writing or truncating itself, and an
        // open file needs no handle (after a live change it reads on
        // through its orphaned inode). Only files that may be passed
        // through are opened here.
        self.no_open = !self.passthrough_granted
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
            "unmounted; chunk cache: {:?}; requests answered: {}",
            self.volume.current().cache().stats(),
            self.requests
        );
        if let Some(cache) = &self.exec_cache {
            let (files, bytes) = cache.usage();
            tracing::info!("exec cache: {files} files, {bytes} bytes");
        }
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.requests.count(Op::Lookup);
        let fs = self.volume.read();
        match guarded("lookup", || fs.lookup(parent.0, name.as_bytes())) {
            Ok(a) => {
                fs.count_lookup(a.ino);
                reply.entry(&self.ttl, &file_attr(&a), Generation(0));
            }
            Err(FsError::NotFound) => reply.entry(&self.ttl, &negative_attr(), Generation(0)),
            Err(e) => reply.error(self.errno_for(e, parent)),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.requests.count(Op::Forget);
        let fs = self.volume.read();
        self.volume.forget(&fs, ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.requests.count(Op::Getattr);
        let fs = self.volume.read();
        match fs.getattr(ino.0) {
            Ok(a) => reply.attr(&self.ttl, &file_attr(&a)),
            // A node whose path disappeared, still held by the kernel (an
            // open file, a working directory): its last attributes.
            Err(FsError::Stale) => match self.volume.orphan_attr(ino.0) {
                Some(a) => reply.attr(&self.ttl, &file_attr(&a)),
                None => reply.error(Errno::ESTALE),
            },
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        self.requests.count(Op::Readlink);
        let fs = self.volume.read();
        match fs.readlink(ino.0) {
            Ok(t) => reply.data(t),
            Err(e) => reply.error(self.errno_for(e, ino)),
        }
    }

    read_only! {
        setattr(ino: INodeNo, mode: Option<u32>, uid: Option<u32>, gid: Option<u32>,
                size: Option<u64>, atime: Option<TimeOrNow>, mtime: Option<TimeOrNow>,
                ctime: Option<SystemTime>, fh: Option<FileHandle>, crtime: Option<SystemTime>,
                chgtime: Option<SystemTime>, bkuptime: Option<SystemTime>,
                flags: Option<BsdFileFlags>) -> ReplyAttr;
        mknod(parent: INodeNo, name: &OsStr, mode: u32, umask: u32, rdev: u32) -> ReplyEntry;
        mkdir(parent: INodeNo, name: &OsStr, mode: u32, umask: u32) -> ReplyEntry;
        unlink(parent: INodeNo, name: &OsStr) -> ReplyEmpty;
        rmdir(parent: INodeNo, name: &OsStr) -> ReplyEmpty;
        symlink(parent: INodeNo, link_name: &OsStr, target: &Path) -> ReplyEntry;
        rename(parent: INodeNo, name: &OsStr, newparent: INodeNo, newname: &OsStr,
               flags: RenameFlags) -> ReplyEmpty;
        link(ino: INodeNo, newparent: INodeNo, newname: &OsStr) -> ReplyEntry;
        write(ino: INodeNo, fh: FileHandle, offset: u64, data: &[u8], write_flags: WriteFlags,
              flags: OpenFlags, lock_owner: Option<LockOwner>) -> ReplyWrite;
        setxattr(ino: INodeNo, name: &OsStr, value: &[u8], flags: i32, position: u32) -> ReplyEmpty;
        removexattr(ino: INodeNo, name: &OsStr) -> ReplyEmpty;
        create(parent: INodeNo, name: &OsStr, mode: u32, umask: u32, flags: i32) -> ReplyCreate;
        fallocate(ino: INodeNo, fh: FileHandle, offset: u64, length: u64, mode: i32) -> ReplyEmpty;
        copy_file_range(ino_in: INodeNo, fh_in: FileHandle, offset_in: u64, ino_out: INodeNo,
                        fh_out: FileHandle, offset_out: u64, len: u64,
                        flags: CopyFileRangeFlags) -> ReplyWrite;
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.requests.count(Op::Open);
        if self.no_open {
            // The kernel takes this as "opens always succeed" and stops
            // asking (one round trip less per open, and none on close).
            return reply.error(Errno::ENOSYS);
        }
        if self.passthrough_granted {
            return self.open_cached(ino, flags, reply);
        }
        let fs = self.volume.read();
        match fs.open(ino.0, flags.0) {
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE),
            Err(FsError::Stale) if self.volume.is_orphan(ino.0) => {
                reply.opened(FileHandle(0), FopenFlags::FOPEN_KEEP_CACHE)
            }
            Err(e) => reply.error(self.errno_for(e, ino)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.requests.count(Op::Read);
        tracing::trace!("read ino {} offset {offset} size {size}", ino.0);
        // Not the read guard: decompressing must not hold up a swap. An
        // inode's content never changes (an updated file gets a new inode),
        // so a read needs no ordering against invalidations.
        let fs = self.volume.current();
        // A file opened before a live change removed or updated it reads on
        // from its package, through its orphaned inode.
        READ_BUF.with(|cell| {
            let mut buf = cell.borrow_mut();
            let buf = &mut *buf;
            let read = || match fs.read_into(ino.0, offset, size, buf) {
                Err(FsError::Stale) => self.volume.read_orphan_into(&fs, ino.0, offset, size, buf),
                r => r,
            };
            match guarded("read", read) {
                Ok(n) => reply.data(&buf[..n]),
                Err(e) => reply.error(self.errno_for(e, ino)),
            }
        });
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        self.requests.count(Op::Other);
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
        self.requests.count(Op::Release);
        self.passthrough.release(fh.0);
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
        self.requests.count(Op::Other);
        reply.ok();
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        self.requests.count(Op::Opendir);
        if self.no_opendir {
            // From now on the kernel opens directories itself, caching their
            // listings (FOPEN_CACHE_DIR | FOPEN_KEEP_CACHE): no round trip
            // per opendir and releasedir.
            return reply.error(Errno::ENOSYS);
        }
        let fs = self.volume.read();
        match fs.opendir(ino.0, flags.0) {
            Ok(()) => reply.opened(
                FileHandle(0),
                FopenFlags::FOPEN_CACHE_DIR | FopenFlags::FOPEN_KEEP_CACHE,
            ),
            Err(e) => reply.error(self.errno_for(e, ino)),
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
        self.requests.count(Op::Readdir);
        let fs = self.volume.read();
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
            Err(e) => reply.error(self.errno_for(e, ino)),
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
        self.requests.count(Op::Readdirplus);
        let fs = self.volume.read();
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
                    // The kernel takes a reference to every entry but `.`
                    // and `..`, as for a lookup.
                    if e.name != b"." && e.name != b".." {
                        fs.count_lookup(e.ino);
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(self.errno_for(e, ino)),
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
        self.requests.count(Op::Other);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        self.requests.count(Op::Statfs);
        let s = self.volume.read().statfs();
        reply.statfs(s.blocks, 0, 0, s.files, 0, s.bsize, s.namelen, s.bsize);
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        self.requests.count(Op::Getxattr);
        if ino.0 == ROOT_INO && name.as_bytes() == REQUESTS_XATTR {
            return reply_xattr(reply, size, Ok(self.requests.to_string().into_bytes()));
        }
        let fs = self.volume.read();
        let value = guarded("getxattr", || fs.getxattr(ino.0, name.as_bytes()))
            .map_err(|e| (e, self.errno_for(e, ino)));
        reply_xattr(reply, size, value);
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        self.requests.count(Op::Listxattr);
        let fs = self.volume.read();
        let names =
            guarded("listxattr", || fs.listxattr(ino.0)).map_err(|e| (e, self.errno_for(e, ino)));
        reply_xattr(reply, size, names);
    }

    fn access(&self, _req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        self.requests.count(Op::Access);
        let fs = self.volume.read();
        match fs.access(ino.0, mask.bits()) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(self.errno_for(e, ino)),
        }
    }
}
