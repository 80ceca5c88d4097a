//! The errors of the `packagefs` command (main.rs; not part of the
//! library): each one printed as one line after `packagefs: `.

use std::io;
use std::path::PathBuf;

use cli_docs::CliDocsError;
use packagefs::daemon::DaemonError;
use packagefs::options::OptionError;
use packagefs::plan::SourceError;
use packagefs::shine::ShineError;

/// Why a `packagefs` command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line names no mount point, or no command at all.
    #[error("{0}")]
    Usage(&'static str),
    /// Starting, stopping or talking to the daemon failed.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// The completion script could not be written.
    #[error("cannot write the completion script: {0}")]
    Completions(#[source] io::Error),
    /// The man pages could not be written.
    #[error(transparent)]
    Man(#[from] CliDocsError),
    /// `RUST_LOG` is not a filter.
    #[error("bad RUST_LOG {spec:?}: {source}")]
    LogFilter {
        /// The value of `RUST_LOG`.
        spec: String,
        /// Why it is not a filter.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// The `--log-file` cannot be opened.
    #[error("cannot open log file {}: {source}", path.display())]
    LogFile {
        /// The log file.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// Logging could not be set up.
    #[error("cannot set up logging: {0}")]
    Logging(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A bad `-o` option or size.
    #[error(transparent)]
    Option(#[from] OptionError),
    /// Bad layers or generation, or nothing to mount.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A bad shine-through list.
    #[error(transparent)]
    Shine(#[from] ShineError),
    /// A package root or file that cannot be found.
    #[error("{}: {source}", path.display())]
    NoSource {
        /// The path as given.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A mount point that cannot be found.
    #[error("mount point {}: {source}", path.display())]
    NoMountPoint {
        /// The path as given.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// A packagefs is mounted on the mount point already: a second one
    /// would stack a second daemon on it.
    #[error(
        "{}: a packagefs is already mounted there (unmount it first: packagefs unmount {})",
        path.display(),
        path.display()
    )]
    AlreadyMounted {
        /// The mount point, as the mount table names it.
        path: PathBuf,
    },
    /// A mount point that is not a directory.
    #[error("mount point {} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// The packages could not be loaded.
    #[error(transparent)]
    Load(#[from] packagefs::plan::PlanError),
    /// `--strict`, and the plan refuses packages.
    #[error("--strict: not mounting without {}", .0.join("; "))]
    Strict(Vec<String>),
    /// The worker threads could not be started.
    #[error("cannot start worker threads: {0}")]
    Workers(#[source] io::Error),
    /// The kernel refused the mount.
    #[error("cannot mount at {}: {source}", path.display())]
    Mount {
        /// The mount point.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}
