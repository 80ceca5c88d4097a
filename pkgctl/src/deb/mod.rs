//! Importing Debian binary packages (`.deb`) as Haiku packages (`.hpkg`).
//!
//! # Reading
//!
//! A `.deb` is an `ar` archive: `debian-binary` (must say `2.x`), then
//! `control.tar[.gz|.xz|.zst]`, then `data.tar[.gz|.xz|.zst|.bz2]`; members
//! starting with `_` are skipped, any other member is an error. Every member
//! is read to its end and checked against its stated size.
//!
//! The data member becomes the package tree: paths are normalised
//! (`./usr/bin/x` → `usr/bin/x`), paths with `..` or starting with `/` are
//! refused; directories, regular files and symlinks keep their permission
//! bits (setuid, setgid and sticky included), modification time (seconds:
//! tar stores no more) and targets; hard links become separate regular files
//! with the content, mode and time of the file they link to. Device
//! nodes and FIFOs are refused (a package cannot hold them): the import of
//! that `.deb` fails with an error naming the `.deb` and the path. Owners
//! and groups are not kept (Haiku packages have none).
//!
//! The control member's files (`control`, `md5sums`, `conffiles`,
//! `preinst`, `postinst`, `prerm`, `postrm`, `config`, `triggers`,
//! `shlibs`, `symbols` …) go, with their modes and times, into a top-level
//! directory `.DEBIAN/` of the package, as in `dpkg-deb --build`'s input
//! tree. Maintainer scripts are never run. A `.PackageInfo` text file with
//! the metadata below goes at the top, as in Haiku's packages. The mount
//! hides both top-level names.
//!
//! # Metadata
//!
//! - `Package` → name, with `-` → `_` (Haiku names cannot hold `-`; Debian
//!   names never hold `_`, so the mapping is one-to-one). The same mapping
//!   applies to every name in relations.
//! - `Version` → version, order-preserving: see [`version`]. The original is
//!   in `.DEBIAN/control`; `pkgctl info` shows it as "Debian version".
//! - `Architecture`: `amd64` → `x86_64`, `i386` → `x86`, `arm64` → `arm64`,
//!   `armhf`/`armel` → `arm`, `riscv64` → `riscv64`, `all` → `any`; any
//!   other is an error.
//! - `Description`: the first line → summary; the rest → description
//!   (lines ` .` are blank lines, one-space lines are joined into paragraphs,
//!   lines indented further are kept as they are). Without an extended
//!   description, the summary is used.
//! - `Maintainer` → packager (`unknown` if absent); `Origin` → vendor, else
//!   `Debian`; `Homepage` → urls.
//! - Copyrights and licenses, which Haiku requires: the copyright is
//!   `see /usr/share/doc/<package>/copyright`; the licenses are the
//!   distinct `License:` short names of that file when it is a
//!   machine-readable (DEP-5) copyright file in the package, else the same
//!   `see …` pointer. Nothing is invented.
//! - `Depends` + `Pre-Depends` → requires. Operators: `<<` → `<`, `<=`,
//!   `=` → `==`, `>=`, `>>` → `>` (and the obsolete `<`, `>` as `<=`,
//!   `>=`); versions mapped as above. Architecture qualifiers (`:any`,
//!   `:native`, `:amd64`) are dropped; an alternative with an architecture
//!   list (`[amd64]`) that excludes the package's architecture is dropped;
//!   build profiles (`<!nocheck>`) are ignored. Haiku has no alternatives:
//!   a group `a | b | c` becomes a requirement on its first alternative met
//!   by a package of the same import batch (the `.deb`s of one command
//!   line, by name or `Provides`), else by an `.hpkg` already in the output
//!   directory, else on its first alternative. The full original relation
//!   stays in `.DEBIAN/control`.
//! - `Provides` → provides (a versioned provide keeps its version); the
//!   package also provides its own name at its own version.
//! - `Conflicts` + `Breaks` → conflicts, with operators as above.
//! - `Replaces` → replaces (names only: Haiku's replaces has no version).
//! - `Recommends`, `Suggests`, `Enhances`, `Essential`, `Priority`,
//!   `Section`, `Source` … are not mapped; they stay in `.DEBIAN/control`.
//!
//! # Merged /usr
//!
//! By default the data tree is exactly what `dpkg-deb -x` gives. With
//! `--merge-usr` it is laid out as on a merged-/usr system: see
//! [`usrmerge`].

pub mod archive;
pub mod control;
pub mod convert;
pub mod kept;
pub mod relations;
pub mod usrmerge;
/// The Debian → Haiku version mapping lives in the state crate, which also
/// decodes it for display.
pub use state::debian_version as version;

use std::fmt;
use std::path::PathBuf;

/// A `.deb` that cannot be imported, and why.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct Error {
    /// The `.deb`.
    pub path: PathBuf,
    /// What is wrong.
    pub kind: ErrorKind,
}

/// What can be wrong with a `.deb`.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// The file could not be read or the package not written.
    #[error("{0}")]
    Io(std::io::Error),
    /// Not an `ar` archive, or a damaged one.
    #[error("not a Debian package (bad ar archive: {0})")]
    NotAr(String),
    /// A member a `.deb` must have is missing.
    #[error("no {0} member")]
    MissingMember(&'static str),
    /// A member a `.deb` must not have.
    #[error("unexpected member {0:?}")]
    UnexpectedMember(String),
    /// `debian-binary` does not say 2.x.
    #[error("unsupported .deb format version {0:?} (only 2.x)")]
    FormatVersion(String),
    /// A member compressed with something unknown.
    #[error("member {0}: unknown compression")]
    UnknownCompression(String),
    /// A member shorter than its header says.
    #[error("member {member} is truncated ({found} of {expected} bytes)")]
    Truncated {
        /// The member.
        member: String,
        /// Size from the header.
        expected: u64,
        /// Bytes found.
        found: u64,
    },
    /// A member could not be decoded.
    #[error("member {member}: {reason}")]
    Member {
        /// The member.
        member: String,
        /// What went wrong.
        reason: String,
    },
    /// A path with `..` or an absolute path.
    #[error("path {0:?} escapes the package root")]
    UnsafePath(String),
    /// A device node, FIFO or other entry a package cannot hold.
    #[error("{path}: {what}; a package holds only files, directories and symlinks")]
    SpecialFile {
        /// The path in the data member.
        path: String,
        /// What it is.
        what: &'static str,
    },
    /// The data member cannot be made into a tree.
    #[error("{0}")]
    Tree(#[from] hpkg_format::TreeError),
    /// The control file is missing, malformed or lacks a field.
    #[error("control file: {0}")]
    Control(String),
    /// An architecture with no Haiku counterpart.
    #[error("architecture {0:?} has no Haiku counterpart")]
    Architecture(String),
    /// A relation field that cannot be parsed.
    #[error("field {field}: {reason}")]
    Relation {
        /// The field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// Writing the package failed.
    #[error("{0}")]
    Write(hpkg_format::Error),
    /// With `--merge-usr`: a path shipped both under a top-level merged
    /// directory and under `usr/`, not identical.
    #[error("{path} and {usr_path} are both in the package and differ; cannot merge /usr")]
    UsrMergeClash {
        /// The path under the top-level directory (`/bin/x`).
        path: String,
        /// The path under `usr/` (`/usr/bin/x`).
        usr_path: String,
    },
    /// Two `.deb`s of the batch would write the same file.
    #[error("would write {output}, as {other} does; not importing both")]
    OutputClash {
        /// The output file.
        output: PathBuf,
        /// The other `.deb`.
        other: PathBuf,
    },
}

impl ErrorKind {
    /// A decoding problem in `member`.
    pub fn member(member: &str, reason: impl fmt::Display) -> ErrorKind {
        ErrorKind::Member {
            member: member.to_string(),
            reason: reason.to_string(),
        }
    }

    /// This problem, about the `.deb` at `path`.
    pub fn at(self, path: impl Into<PathBuf>) -> Error {
        Error {
            path: path.into(),
            kind: self,
        }
    }
}
