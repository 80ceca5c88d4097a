//! The error type of the format library: every way a package or repository file
//! can be wrong, each naming the byte offset where it was found.

use std::io;
use std::path::PathBuf;

/// Where in a file a problem was found.
///
/// Offsets into the heap are offsets into the *uncompressed* heap; offsets into
/// a section are relative to the start of that section inside the heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// Byte offset from the start of the file.
    File(u64),
    /// Byte offset into the uncompressed heap.
    Heap(u64),
    /// Byte offset into the TOC section.
    Toc(u64),
    /// Byte offset into the package-attributes section.
    Attributes(u64),
    /// Byte offset into the repository-info blob.
    RepoInfo(u64),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(o) => write!(f, "file offset {o}"),
            Location::Heap(o) => write!(f, "heap offset {o}"),
            Location::Toc(o) => write!(f, "TOC offset {o}"),
            Location::Attributes(o) => write!(f, "package-attributes offset {o}"),
            Location::RepoInfo(o) => write!(f, "repository-info offset {o}"),
        }
    }
}

/// Everything that can go wrong reading or writing a package.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The same error, with the file it happened in.
    #[error("{}: {source}", path.display())]
    InFile {
        /// The file being read or written.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: Box<Error>,
    },
    /// An operating-system I/O error.
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// The file is shorter than the structure it must hold.
    #[error("truncated: {what} needs {needed} bytes at {at}, but only {available} are there")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where it starts.
        at: Location,
        /// How many bytes were needed.
        needed: u64,
        /// How many bytes were available.
        available: u64,
    },
    /// The magic bytes are not `hpkg` / `hpkr`.
    #[error("not a {expected} file (magic {found:02x?})")]
    BadMagic {
        /// The magic that was expected (`hpkg` or `hpkr`).
        expected: &'static str,
        /// The four bytes found.
        found: [u8; 4],
    },
    /// A version-1 file: an older, incompatible layout (spec §14).
    #[error("format version 1 (pre-2013 Haiku) is not supported; only version 2 is")]
    Version1,
    /// A format version other than 1 or 2.
    #[error("unsupported format version {0}; only version 2 is supported")]
    UnsupportedVersion(u16),
    /// A header field breaks a rule of the format.
    #[error("bad header: {0}")]
    BadHeader(String),
    /// The heap compression id is not 0, 1 or 2.
    #[error("unknown heap compression {0}")]
    UnknownCompression(u16),
    /// A chunk could not be decompressed, or decompressed to the wrong size.
    #[error("heap chunk {index} at {at}: {reason}")]
    BadChunk {
        /// Index of the chunk.
        index: u64,
        /// File offset of the stored chunk.
        at: Location,
        /// What was wrong.
        reason: String,
    },
    /// A read outside the uncompressed heap.
    #[error("heap read of {len} bytes at {offset} is outside the heap of {heap_size} bytes")]
    OutOfHeap {
        /// Start of the read.
        offset: u64,
        /// Length of the read.
        len: u64,
        /// Uncompressed heap size.
        heap_size: u64,
    },
    /// A section (TOC, attributes, info) breaks a rule of the format.
    #[error("{at}: {reason}")]
    Corrupt {
        /// Where.
        at: Location,
        /// What.
        reason: String,
    },
    /// A limit this implementation sets to protect itself was exceeded.
    #[error("{what} of {value} exceeds the supported limit of {limit}")]
    LimitExceeded {
        /// Which limit.
        what: &'static str,
        /// The value found.
        value: u64,
        /// The limit.
        limit: u64,
    },
    /// A textual `.PackageInfo` could not be parsed.
    #[error("package info line {line}: {reason}")]
    PackageInfoSyntax {
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        reason: String,
    },
    /// A textual `.PackageInfo` does not set every required field.
    #[error("package info: {}", missing_fields(fields))]
    PackageInfoMissing {
        /// Every required field not set, in the order of `REQUIRED_FIELDS`.
        fields: Vec<&'static str>,
    },
    /// Package metadata is incomplete or inconsistent (writer side).
    #[error("invalid package info: {0}")]
    InvalidInfo(String),
    /// A source tree cannot be packaged as it is.
    #[error("cannot package {}: {reason}", path.display())]
    Unpackable {
        /// The offending path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl Error {
    /// Shorthand for a [`Error::Corrupt`].
    pub(crate) fn corrupt(at: Location, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            at,
            reason: reason.into(),
        }
    }

    /// Attach the file name to this error (once).
    pub fn in_file(self, path: impl Into<PathBuf>) -> Error {
        match self {
            e @ Error::InFile { .. } => e,
            e => Error::InFile {
                path: path.into(),
                source: Box::new(e),
            },
        }
    }

    /// The error without its file context.
    pub fn root(&self) -> &Error {
        match self {
            Error::InFile { source, .. } => source.root(),
            e => e,
        }
    }
}

/// The message of [`Error::PackageInfoMissing`].
fn missing_fields(fields: &[&str]) -> String {
    let list = |names: &[&str]| match names {
        [] => String::new(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    };
    let (noun, verb) = if fields.len() == 1 {
        ("field", "is")
    } else {
        ("fields", "are")
    };
    format!(
        "required {noun} {} {verb} not set (a .PackageInfo must set {})",
        list(fields),
        list(&crate::info_text::REQUIRED_FIELDS)
    )
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
