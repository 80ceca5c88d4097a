//! The root commands that change a package root: `init`, `add`, `remove`,
//! `rollback`, `gc`, `pin` and `unpin`, and what they share: opening the
//! root, the reason recorded in a generation, and printing a [`Commit`].

use std::path::{Path, PathBuf};

use state::{Commit, Layer, Root};

use crate::error::{CliError, Result};
use crate::output::{warn, Out};

/// Create a package root (idempotent).
///
/// Creates ROOT/{system,common,user}/packages, ROOT/system/state and
/// ROOT/data, and commits generation 1 holding every package already in the
/// packages directories. An initialised root is left as it is. A non-empty
/// directory that is not a package root is refused.
///
/// Example:
///
///   pkgctl init /srv/root
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct InitArgs {
    /// The root directory (default: -R ROOT or $PACKAGEFS_ROOT).
    pub root: Option<PathBuf>,
}

/// The layer a package is added to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LayerArg {
    /// ROOT/system/packages (lowest priority).
    System,
    /// ROOT/common/packages.
    Common,
    /// ROOT/user/packages (highest priority).
    User,
}

impl From<LayerArg> for Layer {
    fn from(l: LayerArg) -> Layer {
        match l {
            LayerArg::System => Layer::System,
            LayerArg::Common => Layer::Common,
            LayerArg::User => Layer::User,
        }
    }
}

/// Activate package files in one new generation.
///
/// Each file is copied into ROOT/<layer>/packages/ under its own name and
/// checked before anything is committed. A resulting set with new unmet
/// requirements or conflicts is refused (each problem is printed on its own
/// line), unless --force. A package whose name is already active in another
/// layer is refused too (one package, one layer), unless --force. --force
/// also replaces a different file of the same name in the layer. When the
/// layer's trust policy (ROOT/system/settings/policy) requires vouched
/// packages, each file must be listed by a verified repository index or
/// carry a PKG.hpkg.minisig by a key of ROOT/system/settings/trust/. Prints
/// the new generation and the packages added (`+ layer/file`) and removed
/// (`- layer/file`).
///
/// Example:
///
///   pkgctl -R /srv/root add --layer user tipster-1.1.1-1-x86_64.hpkg
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct AddArgs {
    /// The layer to add to.
    #[arg(long, value_enum, default_value = "system")]
    pub layer: LayerArg,
    /// Accept dependency problems, a package active in another layer too,
    /// and replace same-named files.
    #[arg(long)]
    pub force: bool,
    /// The package files.
    #[arg(required = true, value_name = "PKG.hpkg")]
    pub packages: Vec<PathBuf>,
}

/// Deactivate packages in one new generation.
///
/// A package is named by its package name (tipster), its file name
/// (tipster-1.1.1-1-x86_64.hpkg), or either with its layer (user/tipster).
/// The file leaves the packages directory for the store, so older
/// generations keep it. Refused when it would leave requirements unmet,
/// unless --force.
///
/// Example:
///
///   pkgctl -R /srv/root remove tipster
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct RemoveArgs {
    /// Accept dependency problems.
    #[arg(long)]
    pub force: bool,
    /// The packages to remove.
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
}

/// Make a new generation with the packages of generation N.
///
/// N defaults to the parent of the current generation. The new generation's
/// parent is the current one, so a second rollback undoes the first. Package
/// files come back from the store.
///
/// Example:
///
///   pkgctl -R /srv/root rollback
///   pkgctl -R /srv/root rollback 3
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct RollbackArgs {
    /// The generation to return to (default: the parent of the current one).
    pub generation: Option<u64>,
}

/// Remove old generations and the stored package files only they needed.
///
/// Keeps the newest --keep generations, every pinned one, the current one,
/// and every one a running packagefs mount serves (each is named, with its
/// mount point, when nothing else kept it).
///
/// Example:
///
///   pkgctl -R /srv/root gc --keep 3
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct GcArgs {
    /// How many of the newest generations to keep (at least 1).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub keep: u64,
}

/// Protect generation N from gc.
///
/// Example:
///
///   pkgctl -R /srv/root pin 3
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct PinArgs {
    /// The generation.
    pub generation: u64,
}

/// Let gc remove generation N again.
///
/// Example:
///
///   pkgctl -R /srv/root unpin 3
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct UnpinArgs {
    /// The generation.
    pub generation: u64,
}

/// Open the initialised root at `path`.
pub fn open(path: &Path) -> Result<Root> {
    Root::open(path).map_err(|e| CliError::state(path, e))
}

/// What a generation made now records as its reason: the command line.
pub fn reason() -> String {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    format!("pkgctl {}", args.join(" "))
}

/// Print each message as `pkgctl: warning: ...` on standard error.
pub fn warn_all(warnings: &[String]) {
    for w in warnings {
        warn(w);
    }
}

/// Print a commit: warnings and forced problems on standard error; the
/// generation in force and what changed on standard output.
pub fn print_commit(commit: &Commit) -> Result<()> {
    warn_all(&commit.warnings);
    for p in &commit.forced {
        warn(format_args!("forced despite: {p}"));
    }
    let mut out = Out::new();
    let g = &commit.generation;
    if commit.changed {
        tracing::info!(
            "committed generation {} ({} package(s) added, {} removed)",
            g.number,
            commit.added.len(),
            commit.removed.len()
        );
        for p in &commit.added {
            tracing::info!("activated {}", p.display_name());
        }
        for p in &commit.removed {
            tracing::info!("deactivated {}", p.display_name());
        }
        out.line(format_args!("generation {}", g.number))?;
        for p in &commit.added {
            out.line(format_args!("+ {}", p.display_name()))?;
        }
        for p in &commit.removed {
            out.line(format_args!("- {}", p.display_name()))?;
        }
    } else {
        out.line(format_args!(
            "generation {} (unchanged: nothing to do)",
            g.number
        ))?;
    }
    out.finish()
}

/// `pkgctl init`.
pub fn init(args: &InitArgs, global: Option<&Path>) -> Result<()> {
    let path = args
        .root
        .clone()
        .or_else(|| global.map(Path::to_path_buf))
        .or_else(|| std::env::var_os("PACKAGEFS_ROOT").map(PathBuf::from))
        .ok_or(CliError::NoRoot)?;
    let root = Root::init(&path).map_err(|e| CliError::state(&path, e))?;
    let loaded = root.current().map_err(|e| CliError::state(&path, e))?;
    warn_all(&loaded.warnings);
    tracing::info!(
        "{}: package root ready at generation {}",
        path.display(),
        loaded.generation.number
    );
    let mut out = Out::new();
    out.line(format_args!(
        "{}: package root, generation {} with {} package(s)",
        path.display(),
        loaded.generation.number,
        loaded.generation.packages.len()
    ))?;
    out.finish()
}

/// `pkgctl add`.
pub fn add(args: &AddArgs, path: &Path) -> Result<()> {
    let root = open(path)?;
    for p in &args.packages {
        root.check_trust(args.layer.into(), p)
            .map_err(|e| CliError::state(path, e))?;
    }
    let commit = root
        .add(&args.packages, args.layer.into(), args.force, &reason())
        .map_err(|e| CliError::state(path, e))?;
    print_commit(&commit)
}

/// `pkgctl remove`.
pub fn remove(args: &RemoveArgs, path: &Path) -> Result<()> {
    let root = open(path)?;
    let commit = root
        .remove(&args.names, args.force, &reason())
        .map_err(|e| CliError::state(path, e))?;
    print_commit(&commit)
}

/// `pkgctl rollback`.
pub fn rollback(args: &RollbackArgs, path: &Path) -> Result<()> {
    let root = open(path)?;
    let commit = root
        .rollback(args.generation, &reason())
        .map_err(|e| CliError::state(path, e))?;
    print_commit(&commit)
}

/// `pkgctl gc`.
pub fn gc(args: &GcArgs, path: &Path) -> Result<()> {
    let root = open(path)?;
    let keep = usize::try_from(args.keep).unwrap_or(usize::MAX);
    let report = root.gc(keep).map_err(|e| CliError::state(path, e))?;
    warn_all(&report.warnings);
    if !report.removed_generations.is_empty() || !report.removed_store_files.is_empty() {
        tracing::info!(
            "{}: removed generation(s) {:?} and {} store file(s) ({} bytes)",
            path.display(),
            report.removed_generations,
            report.removed_store_files.len(),
            report.freed_bytes
        );
    }
    let mut out = Out::new();
    let numbers: Vec<String> = report
        .removed_generations
        .iter()
        .map(u64::to_string)
        .collect();
    out.line(format_args!(
        "removed {} generation(s){}{}; {} store file(s), {} bytes freed; {} index image(s)",
        numbers.len(),
        if numbers.is_empty() { "" } else { ": " },
        numbers.join(", "),
        report.removed_store_files.len(),
        report.freed_bytes,
        report.removed_index_files.len()
    ))?;
    for m in &report.kept_mounted {
        out.line(format_args!(
            "kept generation {}: mounted at {} (pid {})",
            m.generation,
            m.mountpoint.display(),
            m.pid
        ))?;
    }
    out.finish()
}

/// `pkgctl pin` (`pinned`) and `pkgctl unpin`.
pub fn pin(generation: u64, pinned: bool, path: &Path) -> Result<()> {
    let root = open(path)?;
    let warnings = if pinned {
        root.pin(generation)
    } else {
        root.unpin(generation)
    }
    .map_err(|e| CliError::state(path, e))?;
    warn_all(&warnings);
    tracing::info!(
        "{}: generation {generation} {}",
        path.display(),
        if pinned { "pinned" } else { "unpinned" }
    );
    let mut out = Out::new();
    out.line(format_args!(
        "generation {generation} {}",
        if pinned { "pinned" } else { "unpinned" }
    ))?;
    out.finish()
}
