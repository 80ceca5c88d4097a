//! The per-package index cache: `ROOT/system/state/index/<blake3>.idx`
//! holds the index image ([`hpkg_format::index_image`]) of a package whose
//! generation recorded that blake3, so a remount reads each package's image
//! instead of decompressing and parsing its TOC.
//!
//! An image is never trusted blindly. It is used only if the package file
//! still has the size the generation recorded and the image (its magic,
//! version, length, CRC-32 and tables) is valid and was made for this very
//! file: the same key, the same header, and the same stamp (device, inode,
//! size, modification and change times). A file rewritten in place keeps
//! its size at most; its change time moves. On a stamp mismatch the package
//! is parsed and its image rewritten, rather than its blake3 checked against
//! the key: hashing reads the whole file, parsing only its TOC, so
//! re-indexing is the cheaper way to be right (a package copied or touched
//! costs one parse, once).
//!
//! Images are not written while a mount waits: opening a package through
//! the cache only notes an [`ImageJob`], and the caller writes the plan's
//! [`IndexWrites`] when it can (the daemon once the mount is ready, on a
//! thread of its own), each image encoded then from the package in memory.
//!
//! Images are written atomically: a temporary in the index directory, then
//! a rename over the image. They are not fsynced: an image is derived data
//! checked at every load, so one lost or half-written by a crash is found
//! damaged and rebuilt, and a first mount of thousands of packages does not
//! wait for thousands of flushes. A write that fails (full disk, read-only
//! root, no permission) leaves the mount going without the image.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hpkg_format::index_image::{self, FileStamp, ImageParts};
use hpkg_format::Package;
use serde::Serialize;

use super::package::MountedPackage;
use super::source::SourcePackage;
use crate::fsutil::temp_path;
use crate::layout::INDEX_EXTENSION;

/// How opening one package used the index cache.
#[derive(Debug, Clone)]
pub enum IndexUse {
    /// No cache for it: none given, no recorded hash, or the file's size is
    /// not the recorded one.
    Uncached,
    /// Opened from its image.
    Hit,
    /// Parsed, because its image was missing, stale or damaged.
    Rebuilt {
        /// Why the image was not used.
        why: Rebuild,
        /// The new image to write; `None`: the cache is read-only (an older
        /// generation's mount writes nothing).
        job: Option<Box<ImageJob>>,
    },
}

/// An index image to write: where, and what it is made of besides the
/// package it indexes.
#[derive(Debug, Clone)]
pub struct ImageJob {
    dir: PathBuf,
    target: PathBuf,
    key: [u8; 32],
    stamp: FileStamp,
    parts: ImageParts,
}

/// The index images a plan did not find, waiting to be written, each with
/// the package it indexes.
#[derive(Debug, Default)]
pub struct IndexWrites {
    jobs: Vec<(MountedPackage, Box<ImageJob>)>,
}

impl IndexWrites {
    /// Note that `package`'s image is to be written.
    pub(super) fn push(&mut self, package: MountedPackage, job: Box<ImageJob>) {
        self.jobs.push((package, job));
    }

    /// Images waiting.
    pub fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Whether none is waiting.
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Encode and write every image, one at a time (one image's bytes in
    /// memory at once). A failure is counted and the next image tried: a
    /// full disk may have room again, and each image stands alone.
    pub fn write(self) -> IndexWritten {
        let mut done = IndexWritten::default();
        for (package, job) in self.jobs {
            let image = index_image::encode(package.package(), &job.parts, &job.key, &job.stamp);
            match write_image(&job.dir, &job.target, &image) {
                Ok(()) => done.written += 1,
                Err(e) => {
                    done.failures += 1;
                    done.first_failure
                        .get_or_insert_with(|| format!("{}: {e}", job.target.display()));
                }
            }
        }
        done
    }
}

/// What [`IndexWrites::write`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexWritten {
    /// Images written.
    pub written: usize,
    /// Images that could not be written.
    pub failures: usize,
    /// Why the first of them could not, naming its file.
    pub first_failure: Option<String>,
}

/// Why a package's image was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rebuild {
    /// There was none.
    Missing,
    /// It was made for another version of the package file.
    Stale,
    /// It is damaged (truncated, garbled, unreadable): the message names the
    /// image file and what is wrong.
    Damaged(String),
}

/// What the index cache did for a plan's packages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IndexStats {
    /// Packages opened from their image.
    pub hits: usize,
    /// Packages parsed that had no image (or no index directory).
    pub missing: usize,
    /// Packages parsed whose image was of another version of the file.
    pub stale: usize,
    /// Packages parsed whose image was damaged.
    pub damaged: usize,
    /// Images to write (rebuilt packages of a writable cache), until
    /// [`IndexStats::add_written`] says how their writing went.
    pub pending: usize,
    /// Images written.
    pub written: usize,
    /// Images that could not be written.
    pub write_failures: usize,
    /// One line per damaged image, and one for the first write failure.
    pub warnings: Vec<String>,
}

impl IndexStats {
    /// Count how one package used the cache.
    pub fn count(&mut self, used: &IndexUse) {
        let (why, written) = match used {
            IndexUse::Uncached => return,
            IndexUse::Hit => {
                self.hits += 1;
                return;
            }
            IndexUse::Rebuilt { why, job } => (why, job),
        };
        match why {
            Rebuild::Missing => self.missing += 1,
            Rebuild::Stale => self.stale += 1,
            Rebuild::Damaged(reason) => {
                self.damaged += 1;
                self.warnings
                    .push(format!("index cache: {reason}; rebuilt from the package"));
            }
        }
        if written.is_some() {
            self.pending += 1;
        }
    }

    /// Count the images written (or not) of those pending.
    pub fn add_written(&mut self, done: &IndexWritten) {
        self.pending = self.pending.saturating_sub(done.written + done.failures);
        self.written += done.written;
        if let (Some(e), 0) = (&done.first_failure, self.write_failures) {
            self.warnings.push(index_write_warning(e));
        }
        self.write_failures += done.failures;
    }

    /// Whether the cache was consulted at all.
    pub fn is_used(&self) -> bool {
        [self.hits, self.missing, self.stale, self.damaged]
            .iter()
            .any(|&n| n > 0)
    }
}

/// The warning for images that could not be written, the first named.
pub fn index_write_warning(first_failure: &str) -> String {
    format!("index cache not written, mounting without it: {first_failure}")
}

/// Where the index images are, and whether missing ones are written.
#[derive(Debug, Clone, Copy)]
pub struct IndexDir<'a> {
    /// The index directory.
    pub path: &'a Path,
    /// Whether images are written (else only read).
    pub writable: bool,
}

/// Open the package `source` whose file is open as `file`, with metadata
/// `meta` taken before reading: from its image in `dir` when one is valid,
/// else by parsing it (and then, if `dir` is writable, with the job of
/// writing its image).
/// Without `dir` or a recorded hash, or with a size other than the recorded
/// one, the package is parsed and no image is touched. Errors name the
/// package file.
pub fn open(
    source: &SourcePackage,
    file: File,
    meta: &fs::Metadata,
    dir: Option<IndexDir<'_>>,
) -> Result<(Package, IndexUse), hpkg_format::Error> {
    let path = &source.path;
    let (dir, hash) = match (dir, source.recorded) {
        (Some(dir), Some((size, hash))) if meta.len() == size => (dir, hash),
        _ => {
            let package = Package::from_source(Arc::new(file)).map_err(|e| e.in_file(path))?;
            return Ok((package.with_path(path), IndexUse::Uncached));
        }
    };
    let stamp = FileStamp::of(meta);
    let image_path = dir.path.join(format!("{}{INDEX_EXTENSION}", hash.to_hex()));
    let file = Arc::new(file);
    let why = match File::open(&image_path) {
        Ok(image) => match index_image::load(&image, file.clone(), &hash.0, &stamp) {
            Ok(package) => return Ok((package.with_path(path), IndexUse::Hit)),
            Err(e) if e.is_stale() => Rebuild::Stale,
            Err(e) => Rebuild::Damaged(format!("{}: {e}", image_path.display())),
        },
        // No index directory, or something else in its place: no image.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Rebuild::Missing
        }
        Err(e) => Rebuild::Damaged(format!("{}: {e}", image_path.display())),
    };
    let (package, parts) = index_image::open_for_image(file).map_err(|e| e.in_file(path))?;
    let job = dir.writable.then(|| {
        Box::new(ImageJob {
            dir: dir.path.to_path_buf(),
            target: image_path,
            key: hash.0,
            stamp,
            parts,
        })
    });
    Ok((package.with_path(path), IndexUse::Rebuilt { why, job }))
}

/// Write `image` to `target` in `dir` (created if missing) atomically: a
/// temporary beside it, renamed over it; the temporary is removed if any
/// step fails.
fn write_image(dir: &Path, target: &Path, image: &[u8]) -> io::Result<()> {
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let temp = temp_path(target);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&temp)
        .and_then(|mut f| f.write_all(image))
        .and_then(|()| fs::rename(&temp, target));
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written
}
