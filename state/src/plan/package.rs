//! An activated package: the opened [`Package`] with its layer, the owner its
//! nodes show, its label for `user.packagefs.package`, and a counter of read
//! errors (a package truncated or overwritten while mounted). Packages are
//! opened in parallel ([`open_all`]), from their index images when a cache
//! directory is given ([`open_all_cached`], [`super::index_cache`]).

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use hpkg_format::Package;

use super::index_cache::{self, IndexDir, IndexUse};
use super::source::SourcePackage;

/// How many read errors of one package are worth a log line one by one
/// before only every 1000th is (see [`MountedPackage::count_read_error`]).
const LOGGED_ERRORS: u64 = 10;

/// A package in the union tree. Cloning is cheap and shares the opened
/// package (a live mount reuses unchanged packages in its next tree).
#[derive(Debug, Clone)]
pub struct MountedPackage {
    shared: Arc<Shared>,
}

/// What clones of a [`MountedPackage`] share.
#[derive(Debug)]
struct Shared {
    package: Package,
    file: Option<File>,
    /// The file as it was just before it was read.
    stamp: Option<Stamp>,
    source: SourcePackage,
    label: String,
    read_errors: AtomicU64,
}

impl MountedPackage {
    /// Open and index the package file `source.path`.
    pub fn open(source: SourcePackage) -> Result<MountedPackage, hpkg_format::Error> {
        MountedPackage::open_cached(source, None).map(|(p, _)| p)
    }

    /// Open the package file `source.path`, from its index image in
    /// `index_dir` when one is valid (see [`index_cache::open`]), and say
    /// how the cache was used.
    pub fn open_cached(
        source: SourcePackage,
        index_dir: Option<IndexDir<'_>>,
    ) -> Result<(MountedPackage, IndexUse), hpkg_format::Error> {
        let in_file = |e: std::io::Error| hpkg_format::Error::Io(e).in_file(&source.path);
        let opened = File::open(&source.path).map_err(in_file)?;
        // Taken before reading: a change while it is read shows as a
        // changed file next time.
        let meta = opened.metadata().map_err(in_file)?;
        let stamp = Some(Stamp::of(&meta));
        // A descriptor of the same file, for a live mount to hand to the
        // state when the file is deleted (its content is then retained).
        let file = opened.try_clone().ok();
        let (package, used) = index_cache::open(&source, opened, &meta, index_dir)?;
        let mut label = crate::deps::label(package.info());
        if let Some(layer) = source.layer {
            label.push_str(&format!(" ({layer})"));
        }
        let mounted = MountedPackage {
            shared: Arc::new(Shared {
                package,
                file,
                stamp,
                source,
                label,
                read_errors: AtomicU64::new(0),
            }),
        };
        Ok((mounted, used))
    }

    /// Bytes of the record of one package (not counting its label, TOC and
    /// chunk table).
    pub const RECORD_BYTES: usize =
        std::mem::size_of::<MountedPackage>() + std::mem::size_of::<Shared>();

    /// The opened package.
    pub fn package(&self) -> &Package {
        &self.shared.package
    }

    /// An open descriptor of the package file (`None` if it could not be
    /// opened a second time). It is the file's content even once deleted.
    pub fn file(&self) -> Option<&File> {
        self.shared.file.as_ref()
    }

    /// Where it comes from, its layer and owner.
    pub fn source(&self) -> &SourcePackage {
        &self.shared.source
    }

    /// The package file.
    pub fn path(&self) -> &Path {
        &self.shared.source.path
    }

    /// `<name>-<version> (<layer>)`, or `<name>-<version>` for a package file
    /// mounted on its own: the value of `user.packagefs.package`.
    pub fn label(&self) -> &str {
        &self.shared.label
    }

    /// How many reads of this package's data have failed.
    pub fn read_errors(&self) -> u64 {
        self.shared.read_errors.load(Ordering::Relaxed)
    }

    /// Count a failed read of this package's data (the file was truncated,
    /// overwritten or became unreadable while mounted). Returns the count so
    /// far when it is worth a log line: each of the first few, then every
    /// 1000th.
    pub fn count_read_error(&self) -> Option<u64> {
        let n = self.shared.read_errors.fetch_add(1, Ordering::Relaxed) + 1;
        (n <= LOGGED_ERRORS || n % 1000 == 0).then_some(n)
    }

    /// Whether the package file, whose metadata is now `now`, is still the
    /// file that was read: the same device, inode, size and modification
    /// time as just before it was read. A file rewritten in place (the same
    /// inode) is a changed file too.
    pub fn is_unchanged(&self, now: &std::fs::Metadata) -> bool {
        self.shared.stamp == Some(Stamp::of(now))
    }

    /// Whether `self` and `other` are the same opened package (clones of one
    /// [`MountedPackage`]): a tree built from a previous one reuses the
    /// packages that did not change.
    pub fn same_as(&self, other: &MountedPackage) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

/// What tells one version of a file from another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
        }
    }
}

impl MountedPackage {
    /// The file's modification time just before it was read.
    pub(super) fn file_mtime(&self) -> Option<std::time::SystemTime> {
        let s = self.shared.stamp?;
        let nanos = u32::try_from(s.mtime_nsec).ok()?;
        let since = std::time::Duration::new(s.mtime.unsigned_abs(), nanos);
        if s.mtime >= 0 {
            std::time::SystemTime::UNIX_EPOCH.checked_add(since)
        } else {
            std::time::SystemTime::UNIX_EPOCH.checked_sub(since)
        }
    }

    /// The file's device, inode, size and modification time just before it
    /// was read, in one array (`None` if it could not be read): what keys a
    /// cached union of packages to the files it was built from.
    pub(super) fn stamp_words(&self) -> Option<[i64; 5]> {
        self.shared.stamp.map(|s| {
            [
                s.dev as i64,
                s.ino as i64,
                s.size as i64,
                s.mtime,
                s.mtime_nsec,
            ]
        })
    }
}

/// A package that could not be opened.
pub type OpenFailure = (SourcePackage, hpkg_format::Error);

/// Open every package in parallel; results keep the order of `sources`.
pub fn open_all(sources: Vec<SourcePackage>) -> Vec<Result<MountedPackage, OpenFailure>> {
    let mut out = Vec::with_capacity(sources.len());
    for opened in open_all_cached(sources, None) {
        out.push(match opened {
            Ok((p, _)) => Ok(p),
            Err(e) => Err(e),
        });
    }
    out
}

/// [`open_all`] with the index cache in `index_dir`: each package with how
/// it used the cache.
///
/// Four threads per core, at least 4 and at most 16: with the packages'
/// pages not yet cached, opening waits on the disk more than it computes,
/// and more reads in flight overlap those waits (on the Debian benchmark
/// root, cold, 8 threads took half the time of 2 on 2 cores).
pub fn open_all_cached(
    sources: Vec<SourcePackage>,
    index_dir: Option<IndexDir<'_>>,
) -> Vec<Result<(MountedPackage, IndexUse), OpenFailure>> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .saturating_mul(4)
        .clamp(4, 16)
        .min(sources.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let sources = &sources;
    type Opened = Result<(MountedPackage, IndexUse), OpenFailure>;
    let mut opened: Vec<(usize, Opened)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(source) = sources.get(i) else { break };
                        let r = MountedPackage::open_cached(source.clone(), index_dir)
                            .map_err(|e| (source.clone(), e));
                        done.push((i, r));
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    opened.sort_by_key(|(i, _)| *i);
    let mut out = Vec::with_capacity(opened.len());
    for (_, r) in opened {
        out.push(r);
    }
    out
}
