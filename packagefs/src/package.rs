//! An activated package: the opened [`Package`] with its layer, the owner its
//! nodes show, its label for `user.packagefs.package`, and a counter of read
//! errors (a package truncated or overwritten while mounted). Packages are
//! opened in parallel.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use hpkg_format::Package;

use crate::source::SourcePackage;

/// How many read errors of one package are logged one by one before only
/// every 1000th is.
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
    source: SourcePackage,
    label: String,
    read_errors: AtomicU64,
}

impl MountedPackage {
    /// Open and index the package file `source.path`.
    pub fn open(source: SourcePackage) -> Result<MountedPackage, hpkg_format::Error> {
        let package = Package::open(&source.path)?;
        // A descriptor of the same file, for a live mount to hand to the
        // state when the file is deleted (its content is then retained).
        let file = File::open(&source.path).ok();
        let info = package.info();
        let mut label = format!("{}-{}", info.name, info.version);
        if let Some(layer) = source.layer {
            label.push_str(&format!(" ({layer})"));
        }
        Ok(MountedPackage {
            shared: Arc::new(Shared {
                package,
                file,
                source,
                label,
                read_errors: AtomicU64::new(0),
            }),
        })
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

    /// Count and log a failed read of this package's data (the file was
    /// truncated, overwritten or became unreadable while mounted).
    pub fn report_read_error(&self, what: &str, err: &hpkg_format::Error) {
        let n = self.shared.read_errors.fetch_add(1, Ordering::Relaxed) + 1;
        if n <= LOGGED_ERRORS || n % 1000 == 0 {
            tracing::error!(
                package = %self.package().info().name,
                file = %self.path().display(),
                "package {} ({}): reading {what} failed: {err} ({n} read error{} so far)",
                self.path().display(),
                self.shared.label,
                if n == 1 { "" } else { "s" }
            );
        }
    }
}

/// A package that could not be opened.
pub type OpenFailure = (SourcePackage, hpkg_format::Error);

/// Open every package in parallel; results keep the order of `sources`.
///
/// Four threads per core, at least 4 and at most 16: with the packages'
/// pages not yet cached, opening waits on the disk more than it computes,
/// and more reads in flight overlap those waits (on the Debian benchmark
/// root, cold, 8 threads took half the time of 2 on 2 cores).
pub fn open_all(sources: Vec<SourcePackage>) -> Vec<Result<MountedPackage, OpenFailure>> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .saturating_mul(4)
        .clamp(4, 16)
        .min(sources.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let sources = &sources;
    let mut opened: Vec<(usize, Result<MountedPackage, OpenFailure>)> =
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(source) = sources.get(i) else { break };
                            let r = MountedPackage::open(source.clone())
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
    opened.into_iter().map(|(_, r)| r).collect()
}
