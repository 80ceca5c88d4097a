//! [`Error`]: everything that can go wrong with a package root, each naming the
//! file or package concerned.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::deps;
use crate::digest::Digest;
use crate::layout::Layer;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error of a package-root operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system call failed.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// What was being done (`open`, `fsync`, `rename` ...).
        op: &'static str,
        /// The system error.
        #[source]
        source: io::Error,
    },
    /// `Root::open` on a directory that is not an initialised package root.
    #[error("{}: not a package root (no system/state/); run `pkgctl init` first", path.display())]
    NotARoot {
        /// The directory.
        path: PathBuf,
    },
    /// `init` on a directory holding something that is not part of a root.
    #[error("{}: refusing to initialise a non-empty directory: {entry:?} is not part of a package root", path.display())]
    NotEmpty {
        /// The directory.
        path: PathBuf,
        /// The first foreign entry found.
        entry: String,
    },
    /// A list or journal file is malformed, torn or fails its checksum.
    #[error("{}: line {line}: {message}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// 1-based line number (0: the file as a whole).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Neither `active.list` nor any generation file could be used.
    #[error("{}: no valid generation: {}", root.display(), details.join("; "))]
    NoValidGeneration {
        /// The root.
        root: PathBuf,
        /// Why each candidate was rejected.
        details: Vec<String>,
    },
    /// The generation asked for is not kept (never existed, or was collected).
    #[error("generation {0} does not exist (or was removed by gc)")]
    NoSuchGeneration(u64),
    /// `gc` asked to keep fewer than one generation.
    #[error(
        "gc must keep at least 1 generation (asked to keep {0}); the current one is always kept"
    )]
    KeepTooFew(usize),
    /// `rollback` without a target on a generation without parent.
    #[error("generation {0} has no parent to roll back to")]
    NoParent(u64),
    /// A file given to `add` (or found by `init`) is not a valid package.
    #[error("{}: not a valid package: {source}", path.display())]
    InvalidPackage {
        /// The file.
        path: PathBuf,
        /// What the reader found wrong.
        #[source]
        source: hpkg_format::Error,
    },
    /// A package file name that lists cannot hold.
    #[error("{name:?}: unusable package file name: {reason}")]
    BadFileName {
        /// The name (lossy UTF-8).
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// `add` of a file whose name is taken by different content in that layer.
    #[error("{}: a different file of that name is already in the {layer} layer (use --force to replace it)", path.display())]
    NameClash {
        /// The layer.
        layer: Layer,
        /// The file name.
        name: String,
        /// The existing file.
        path: PathBuf,
    },
    /// `add` of a package whose name is already active in another layer.
    #[error("{layer}/{file}: package {name:?} is already active in the {other_layer} layer as {other_layer}/{other_file}; a package may be active in one layer only (remove it first, or use --force to keep both)")]
    ActiveInOtherLayer {
        /// The package name.
        name: String,
        /// The layer being added to.
        layer: Layer,
        /// The file being added.
        file: String,
        /// The layer where that name is active.
        other_layer: Layer,
        /// The active file of that name.
        other_file: String,
    },
    /// The same file name given twice for one layer in one `add`.
    #[error("{name:?} is given twice for the {layer} layer")]
    DuplicateName {
        /// The layer.
        layer: Layer,
        /// The file name.
        name: String,
    },
    /// `remove` of something no active package is called.
    #[error("{spec:?}: no active package has that name or file name")]
    NotActive {
        /// What was asked for.
        spec: String,
    },
    /// `remove` of a name several active packages answer to.
    #[error("{spec:?} is ambiguous, it matches: {} (name one as LAYER/FILE.hpkg)", candidates.join(", "))]
    Ambiguous {
        /// What was asked for.
        spec: String,
        /// `layer/file` of every match.
        candidates: Vec<String>,
    },
    /// The resulting package set has unmet requirements or conflicts.
    #[error("refusing a package set with {} dependency problem(s) (use --force to override):\n  {}",
        problems.len(),
        problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n  "))]
    Dependencies {
        /// Every problem found.
        problems: Vec<deps::Problem>,
    },
    /// The lock could not be taken within the configured time.
    #[error("{}: another transaction still holds the lock after {waited:?}", path.display())]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// How long was waited.
        waited: Duration,
    },
    /// A package of a generation is in neither `packages/` nor the store.
    #[error("generation {generation}: {layer}/{file} (blake3 {hash}) is neither in its packages directory nor in the store")]
    Unrestorable {
        /// The generation being restored.
        generation: u64,
        /// Layer of the package.
        layer: Layer,
        /// File name of the package.
        file: String,
        /// Its content hash.
        hash: Digest,
    },
    /// Content to retain does not have the size or hash it should.
    #[error("{what}: expected {expected_size} bytes with blake3 {expected}, found {size} bytes with blake3 {actual}")]
    ContentMismatch {
        /// What was being retained.
        what: String,
        /// Expected size.
        expected_size: u64,
        /// Expected hash.
        expected: Digest,
        /// Size found.
        size: u64,
        /// Hash found.
        actual: Digest,
    },
    /// A key or signature file is unusable, or a signature does not verify.
    #[error("{}: {reason}", path.display())]
    Signature {
        /// The key or signature file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A package is not vouched for in a layer whose policy requires it.
    #[error("{}: refused by the trust policy of the {layer} layer: {reason}", path.display())]
    Untrusted {
        /// The package file.
        path: PathBuf,
        /// The layer it was meant for.
        layer: Layer,
        /// Why it is not vouched for.
        reason: String,
    },
    /// A settings file (policy, repository) is malformed or refers to
    /// something missing.
    #[error("{}: {reason}", path.display())]
    Settings {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl Error {
    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, op: &'static str, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            op,
            source,
        }
    }

    /// Whether this is a file-not-found I/O error.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// `map_err` helper: `.map_err(io_at(path, "open"))`.
pub(crate) fn io_at<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> Error + 'a {
    move |e| Error::io(path, op, e)
}
