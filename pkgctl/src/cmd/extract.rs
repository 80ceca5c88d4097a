//! `pkgctl extract`: restore a package's tree into a directory.
//!
//! Every entry is created relative to the open descriptor of its parent
//! directory, with `O_CREAT | O_EXCL | O_NOFOLLOW` for files, `mkdirat` +
//! `O_NOFOLLOW | O_DIRECTORY` for directories and `symlinkat` for links, so
//! nothing is ever written through a symlink, not even one the package itself
//! created, and nothing that already exists is ever opened for writing.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use hpkg_format::{EntryId, EntryKind, Package};
use rustix::fs::{AtFlags, Mode, OFlags, Timespec, Timestamps, XattrFlags};
use rustix::io::Errno;

use crate::chunk_cache::RecentChunks;
use crate::error::{CliError, Result, WithPath};
use crate::input;
use crate::output::{lossy, warn};
use crate::stream::{self, PieceBuf};

/// Linux's limit for the value of one extended attribute.
const XATTR_SIZE_MAX: u64 = 64 * 1024;

/// Restore a package's files into a directory.
///
/// Creates DIR if it does not exist; it must otherwise be empty, and nothing
/// that exists is ever overwritten. Restores directories, files, symlinks,
/// permission bits, modification times (also of directories and symlinks)
/// and the Haiku attributes of files and directories as `user.<name>`
/// extended attributes. The package's own `.PackageInfo` is extracted too.
///
/// - setuid and setgid bits are restored only when run as root.
/// - Linux symlinks cannot hold user attributes, and no attribute may exceed
///   64 KiB: such attributes are skipped with a warning on standard error.
/// - On a file system without user extended attributes, attributes are
///   skipped with one warning.
/// - Entries are created relative to their parent directory without
///   following symlinks, so a package cannot write outside DIR, not even
///   through a symlink it created itself; a package that names a path twice
///   is refused.
/// - On error, what was extracted so far is left in DIR.
///
/// Example:
///
///   pkgctl extract tipster-1.1.1-1-x86_64.hpkg /tmp/tipster
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The package file.
    pub package: PathBuf,
    /// Where to extract: a new or empty directory.
    pub dir: PathBuf,
}

/// Run `pkgctl extract`.
pub fn run(args: &Args) -> Result<()> {
    let pkg = input::open_package(&args.package, "extract")?;
    let root = prepare_dir(&args.dir)?;
    Extractor {
        pkg: &pkg,
        cache: RecentChunks::new(),
        buf: PieceBuf::new(),
        keep_setid: rustix::process::geteuid().is_root(),
        xattrs_supported: true,
    }
    .extract(root, &args.dir)?;
    tracing::info!(
        "extracted {} entries of {} into {}",
        pkg.toc().len(),
        args.package.display(),
        args.dir.display()
    );
    Ok(())
}

/// Create `dir` or check that it is an empty directory, and open it.
fn prepare_dir(dir: &Path) -> Result<File> {
    match fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir_all(dir).at(dir)?,
        Err(e) => return Err(CliError::io(dir, e)),
        Ok(m) if !m.is_dir() => {
            return Err(CliError::refused(dir, "exists and is not a directory"));
        }
        Ok(_) => {
            if fs::read_dir(dir).at(dir)?.next().is_some() {
                return Err(CliError::refused(
                    dir,
                    "directory is not empty; extract only writes into a new or empty directory",
                ));
            }
        }
    }
    let fd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .at(dir)?;
    Ok(File::from(fd))
}

/// A directory created and still open, finished once its subtree is written.
struct OpenDir {
    file: File,
    id: EntryId,
    end: EntryId,
    path: PathBuf,
}

struct Extractor<'a> {
    pkg: &'a Package,
    cache: RecentChunks,
    buf: PieceBuf,
    keep_setid: bool,
    xattrs_supported: bool,
}

impl Extractor<'_> {
    fn extract(&mut self, root: File, dest: &Path) -> Result<()> {
        let toc = self.pkg.toc();
        let mut open: Vec<OpenDir> = Vec::new();
        for id in 0..toc.len() as EntryId {
            while open.last().is_some_and(|d| id >= d.end) {
                if let Some(dir) = open.pop() {
                    self.finish_dir(dir)?;
                }
            }
            let (parent, parent_path) = match open.last() {
                Some(d) => (&d.file, d.path.as_path()),
                None => (&root, dest),
            };
            let name = OsStr::from_bytes(toc.name(id));
            let path = parent_path.join(name);
            let e = toc.entry(id);
            match e.kind() {
                EntryKind::Directory => {
                    let file = make_dir(parent, name, &path)?;
                    open.push(OpenDir {
                        file,
                        id,
                        end: e.subtree_end(),
                        path,
                    });
                }
                EntryKind::File => self.write_file(parent, name, id, &path)?,
                EntryKind::Symlink => self.make_symlink(parent, name, id, &path)?,
            }
        }
        while let Some(dir) = open.pop() {
            self.finish_dir(dir)?;
        }
        Ok(())
    }

    fn write_file(&mut self, parent: &File, name: &OsStr, id: EntryId, path: &Path) -> Result<()> {
        let toc = self.pkg.toc();
        let fd = rustix::fs::openat(
            parent,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| create_error(e, path))?;
        let mut file = File::from(fd);
        stream::for_each_piece(
            self.pkg,
            toc.data(id),
            &self.cache,
            &mut self.buf,
            |piece| file.write_all(piece).at(path),
        )?;
        self.set_attributes(&file, id, path)?;
        self.set_mode_and_time(&file, id, path)
    }

    fn make_symlink(
        &mut self,
        parent: &File,
        name: &OsStr,
        id: EntryId,
        path: &Path,
    ) -> Result<()> {
        let toc = self.pkg.toc();
        let target = toc.symlink_target(id);
        rustix::fs::symlinkat(target, parent, name).map_err(|e| create_error(e, path))?;
        for a in toc.attrs(id) {
            warn(format_args!(
                "{}: attribute \"{}\" ({} bytes) not stored: Linux symlinks cannot hold user attributes; skipped",
                path.display(),
                lossy(toc.attr_name(a)),
                a.size()
            ));
        }
        rustix::fs::utimensat(parent, name, &self.times(id), AtFlags::SYMLINK_NOFOLLOW).at(path)
    }

    fn finish_dir(&mut self, dir: OpenDir) -> Result<()> {
        self.set_attributes(&dir.file, dir.id, &dir.path)?;
        self.set_mode_and_time(&dir.file, dir.id, &dir.path)
    }

    /// Store the entry's Haiku attributes as `user.<name>` extended attributes.
    fn set_attributes(&mut self, file: &File, id: EntryId, path: &Path) -> Result<()> {
        let toc = self.pkg.toc();
        for a in toc.attrs(id) {
            let name = toc.attr_name(a);
            if a.size() > XATTR_SIZE_MAX {
                warn(format_args!(
                    "{}: attribute \"{}\" ({} bytes) is larger than Linux allows (64 KiB); skipped",
                    path.display(),
                    lossy(name),
                    a.size()
                ));
                continue;
            }
            if !self.xattrs_supported {
                continue;
            }
            let value = self
                .pkg
                .data_to_vec(toc.attr_data(a), &self.cache)
                .map_err(|e| self.package_error(e))?;
            let full = [b"user.".as_slice(), name].concat();
            match rustix::fs::fsetxattr(file, full.as_slice(), &value, XattrFlags::empty()) {
                Ok(()) => {}
                Err(Errno::NOTSUP) => {
                    warn(format_args!(
                        "{}: the file system does not store user extended attributes; Haiku attributes are not extracted",
                        path.display()
                    ));
                    self.xattrs_supported = false;
                }
                Err(e) => warn(format_args!(
                    "{}: attribute \"{}\" ({} bytes) could not be stored: {}; skipped",
                    path.display(),
                    lossy(name),
                    a.size(),
                    io::Error::from(e)
                )),
            }
        }
        Ok(())
    }

    fn set_mode_and_time(&self, file: &File, id: EntryId, path: &Path) -> Result<()> {
        let mode = self.pkg.toc().entry(id).mode() & 0o7777;
        let mode = if self.keep_setid {
            mode
        } else {
            mode & !0o6000
        };
        rustix::fs::fchmod(file, Mode::from_raw_mode(mode.into())).at(path)?;
        rustix::fs::futimens(file.as_fd(), &self.times(id)).at(path)
    }

    /// Access and modification time: both the entry's modification time.
    fn times(&self, id: EntryId) -> Timestamps {
        let (secs, nanos) = self.pkg.toc().entry(id).mtime();
        let t = Timespec {
            tv_sec: secs,
            tv_nsec: nanos.into(),
        };
        Timestamps {
            last_access: t,
            last_modification: t,
        }
    }

    fn package_error(&self, e: hpkg_format::Error) -> CliError {
        match self.pkg.path() {
            Some(p) => e.in_file(p).into(),
            None => e.into(),
        }
    }
}

/// Create directory `name` in `parent` and open it without following a symlink.
fn make_dir(parent: &File, name: &OsStr, path: &Path) -> Result<File> {
    rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700))
        .map_err(|e| create_error(e, path))?;
    let fd = rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .at(path)?;
    Ok(File::from(fd))
}

/// The error for a failed create: an existing path means the package names
/// it twice (the destination started empty).
fn create_error(e: Errno, path: &Path) -> CliError {
    if e == Errno::EXIST {
        CliError::refused(
            path,
            "already exists: the package holds this path twice; refusing to overwrite it",
        )
    } else {
        CliError::io(path, e.into())
    }
}
