//! The error type of the command line: every failure names the file it is
//! about, so `main` can print it as one line `pkgctl: <file>: <reason>`.

use std::io;
use std::path::{Path, PathBuf};

/// Everything a `pkgctl` command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The format library refused a file; its message already names the file
    /// and the offset.
    #[error(transparent)]
    Format(#[from] hpkg_format::Error),
    /// An operating-system error on a file `pkgctl` reads or writes.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The command will not do what was asked, for a reason about `path`.
    #[error("{}: {reason}", path.display())]
    Refused {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Fetching from a repository failed, or what it served was refused.
    #[error("{url}: {reason}")]
    Url {
        /// The URL (or path) fetched.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// Writing to standard output failed.
    #[error("<stdout>: {0}")]
    Stdout(io::Error),
    /// Some `.deb` files of an import batch failed (each was reported).
    #[error("import-deb: {failed} of {total} .deb file(s) could not be imported")]
    ImportFailed {
        /// How many failed.
        failed: usize,
        /// How many were given.
        total: usize,
    },
    /// A root command without `-R ROOT` or `PACKAGEFS_ROOT`.
    #[error("no package root: give -R ROOT or set PACKAGEFS_ROOT")]
    NoRoot,
    /// A package-root operation failed; the message names the file concerned.
    #[error(transparent)]
    State(state::Error),
    /// A new package set was refused for its dependency problems; `main`
    /// prints each problem on its own line before this one.
    #[error("{}: refusing a package set with {} dependency problem(s) (use --force to override)", root.display(), problems.len())]
    Dependencies {
        /// The package root.
        root: PathBuf,
        /// Every problem, one line each.
        problems: Vec<String>,
    },
    /// No set of packages satisfies an install or update; `main` prints the
    /// solver's explanation, one line each, before this one.
    #[error("{}: cannot satisfy the request (see above); nothing changed", root.display())]
    Unsatisfiable {
        /// The package root.
        root: PathBuf,
        /// The solver's explanation, line by line.
        explanation: Vec<String>,
    },
    /// `uninstall` of packages that others still need.
    #[error("{}: refusing to uninstall what other packages still need; nothing changed", root.display())]
    StillNeeded {
        /// The package root.
        root: PathBuf,
        /// `X is still needed by Y (requires R)`, one each.
        needs: Vec<String>,
    },
}

impl CliError {
    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<Path>, source: io::Error) -> CliError {
        CliError::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// A refusal about `path`.
    pub fn refused(path: impl AsRef<Path>, reason: impl Into<String>) -> CliError {
        CliError::Refused {
            path: path.as_ref().to_path_buf(),
            reason: reason.into(),
        }
    }

    /// A package-root error of the root at `root`: errors that name their
    /// own file keep their message, the others are said to be about the root.
    pub fn state(root: &Path, error: state::Error) -> CliError {
        use state::Error as E;
        match error {
            E::Dependencies { problems } => CliError::Dependencies {
                root: root.to_path_buf(),
                problems: problems.iter().map(ToString::to_string).collect(),
            },
            E::Io { .. }
            | E::NotARoot { .. }
            | E::NotEmpty { .. }
            | E::Corrupt { .. }
            | E::NoValidGeneration { .. }
            | E::InvalidPackage { .. }
            | E::NameClash { .. }
            | E::LockTimeout { .. }
            | E::Signature { .. }
            | E::Untrusted { .. }
            | E::Settings { .. } => CliError::State(error),
            other => CliError::refused(root, other.to_string()),
        }
    }

    /// Lines to print, each as `pkgctl: <line>`, before the error itself.
    pub fn details(&self) -> Vec<String> {
        match self {
            CliError::Dependencies { root, problems } => problems
                .iter()
                .map(|p| format!("{}: {p}", root.display()))
                .collect(),
            CliError::Unsatisfiable { root, explanation } => explanation
                .iter()
                .map(|l| format!("{}: {l}", root.display()))
                .collect(),
            CliError::StillNeeded { root, needs } => needs
                .iter()
                .map(|l| format!("{}: {l}", root.display()))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whether this is standard output closing early (`pkgctl contents | head`),
    /// which is not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Stdout(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

/// An operating-system error from `std` or `rustix`, before it knows its file.
pub trait OsError {
    /// As a `std::io::Error`.
    fn into_io(self) -> io::Error;
}

impl OsError for io::Error {
    fn into_io(self) -> io::Error {
        self
    }
}

impl OsError for rustix::io::Errno {
    fn into_io(self) -> io::Error {
        self.into()
    }
}

/// Attach a path to an I/O result.
pub trait WithPath<T> {
    /// The result, its error turned into a [`CliError::Io`] about `path`.
    fn at(self, path: &Path) -> Result<T>;
}

impl<T, E: OsError> WithPath<T> for std::result::Result<T, E> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|e| CliError::io(path, e.into_io()))
    }
}

/// Result alias of the command line.
pub type Result<T, E = CliError> = std::result::Result<T, E>;
