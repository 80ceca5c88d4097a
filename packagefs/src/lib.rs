//! packagefs: a read-only FUSE file system serving the union of Haiku
//! `.hpkg` packages straight from the package files, never extracting them.
//!
//! - [`source`] decides what to mount: the packages of a root's layers, or
//!   package files, in ascending priority.
//! - [`package`] opens them (in parallel) and [`tree`] merges them into one
//!   union tree with stable inode numbers, recording the paths one package
//!   hides from another.
//! - [`fs`] holds the file-system operations over the tree, [`cache`] the
//!   decompressed chunks, [`prefetch`] read-ahead, and [`fuse`] the thin
//!   adapter to the kernel.
//! - [`live`] follows a root with state while mounted: package files
//!   added or removed, `pkgctl` changes, swapping in the new tree.
//! - [`options`] parses `-o` mount options, [`daemon`] starts the daemon in
//!   the background and reports when the mount is ready (and to systemd).
//! - [`shine`] makes the shine-through directories: the data directories
//!   bind-mounted over top-level directories of the read-only tree.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use packagefs::{fs::{FsConfig, PackageFs}, fuse, source::MountSpec};
//!
//! let spec = MountSpec::Files(vec!["hello-1.0-1-x86_64.hpkg".into()]);
//! let tree = packagefs::load_tree(&spec)?;
//! let fs = Arc::new(PackageFs::new(tree, &FsConfig::default())?);
//! let session = fuse::mount(fs, "/mnt/hello".as_ref(), &fuse::MountConfig::default())?;
//! session.run()?; // until unmounted
//! # Ok(()) }
//! ```

pub mod cache;
pub mod daemon;
pub mod fs;
pub mod fuse;
pub mod kmount;
pub mod live;
pub mod options;
pub mod package;
pub mod prefetch;
pub mod shine;
pub mod source;
pub mod tree;

use std::os::unix::fs::MetadataExt;

use package::MountedPackage;
use source::{GenerationChoice, MountSpec, SourceError};
use tree::{Tree, TreeError};

/// Why a mount could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The packages to mount could not be found.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A package named on the command line could not be opened.
    #[error(transparent)]
    Package(#[from] hpkg_format::Error),
    /// The union tree could not be built.
    #[error(transparent)]
    Tree(#[from] TreeError),
}

/// Open the packages `spec` names and merge them into a tree (the current
/// generation of a root with state); see [`load_tree_with`].
pub fn load_tree(spec: &MountSpec) -> Result<Tree, Error> {
    load_tree_with(spec, GenerationChoice::Current)
}

/// Open the packages of `spec` (the generation `choice` of a root with
/// state) and merge them into a tree.
///
/// Package files named one by one must all open. In a root, a package that
/// cannot be opened is left out with an error in the log, and the rest is
/// mounted. In a root with state, the generation's warnings are logged as
/// warnings, a package whose requirements are not met by the generation's
/// other mountable packages is left out with a warning saying why, and the
/// paths of `blocked-entries` are hidden.
pub fn load_tree_with(spec: &MountSpec, choice: GenerationChoice) -> Result<Tree, Error> {
    load_tree_shining(spec, choice, &[])
}

/// Like [`load_tree_with`], with the shine-through directories `shine`
/// (see [`Tree::with_shine_through`]).
pub fn load_tree_shining(
    spec: &MountSpec,
    choice: GenerationChoice,
    shine: &[String],
) -> Result<Tree, Error> {
    let resolved = source::resolve_with(spec, choice)?;
    build_tree_with(&resolved, matches!(spec, MountSpec::Files(_)), None, shine)
}

/// Open the packages `resolved` names and merge them into a tree (see
/// [`load_tree_with`]); `strict`: every package must open.
pub fn build_tree(resolved: &source::Resolved, strict: bool) -> Result<Tree, Error> {
    build_tree_reusing(resolved, strict, None)
}

/// Like [`build_tree`], taking the packages of `previous` that are still
/// the same file (same path, owner, device, inode, size and modification
/// time) instead of opening them again, and keeping its shine-through
/// directories.
pub fn build_tree_reusing(
    resolved: &source::Resolved,
    strict: bool,
    previous: Option<&Tree>,
) -> Result<Tree, Error> {
    let shine = previous
        .map(|t| t.shine_through().to_vec())
        .unwrap_or_default();
    build_tree_with(resolved, strict, previous, &shine)
}

/// [`build_tree_reusing`] with the shine-through directories `shine`.
pub fn build_tree_with(
    resolved: &source::Resolved,
    strict: bool,
    previous: Option<&Tree>,
    shine: &[String],
) -> Result<Tree, Error> {
    let started = std::time::Instant::now();
    for w in &resolved.warnings {
        tracing::warn!("{w}");
    }
    if let Some(n) = resolved.generation {
        tracing::info!(
            "mounting generation {n} ({} packages)",
            resolved.packages.len()
        );
    }
    let mut slots: Vec<Option<MountedPackage>> = resolved
        .packages
        .iter()
        .map(|src| previous.and_then(|t| unchanged(t, src)))
        .collect();
    let missing: Vec<(usize, source::SourcePackage)> = resolved
        .packages
        .iter()
        .enumerate()
        .filter(|(i, _)| slots.get(*i).is_some_and(Option::is_none))
        .map(|(i, p)| (i, p.clone()))
        .collect();
    if previous.is_some() {
        tracing::info!(
            "{} packages reused, {} opened",
            resolved.packages.len() - missing.len(),
            missing.len()
        );
    }
    let (indexes, sources): (Vec<usize>, Vec<source::SourcePackage>) = missing.into_iter().unzip();
    for (i, opened) in indexes.into_iter().zip(package::open_all(sources)) {
        match opened {
            Ok(p) => {
                if let Some(slot) = slots.get_mut(i) {
                    *slot = Some(p);
                }
            }
            Err((_, e)) if strict => return Err(Error::Package(e)),
            Err((src, e)) => tracing::error!(
                file = %src.path.display(),
                "package {} is not mounted: {e}",
                src.path.display()
            ),
        }
    }
    let opened = started.elapsed();
    let mut packages: Vec<MountedPackage> = slots.into_iter().flatten().collect();
    if resolved.check_dependencies {
        packages = drop_unmet(packages);
    }
    packages.retain(|p| resolved.layer_shown(p.source()));
    let tree = Tree::with_shine_through(packages, &resolved.blocked, shine)?;
    log_activations(previous, &tree);
    tracing::info!(
        "{} packages opened in {:.1} ms, merged in {:.1} ms",
        tree.packages().len(),
        opened.as_secs_f64() * 1e3,
        (started.elapsed() - opened).as_secs_f64() * 1e3
    );
    if !resolved.blocked.is_empty() {
        tracing::info!("{} blocked entries hidden", resolved.blocked.len());
    }
    tracing::info!("index memory: {}", tree.memory());
    if tree.shadowed_count() > 0 {
        tracing::info!(
            "{} paths are hidden by higher-priority packages",
            tree.shadowed_count()
        );
        for s in tree.shadowed() {
            tracing::debug!(
                "/{}: {} {} hidden by {}",
                String::from_utf8_lossy(&s.path),
                s.hidden.label(),
                s.hidden_kind.name(),
                s.shown.label()
            );
        }
    }
    Ok(tree)
}

/// Log (info) each package of `tree` as mounted, or, when it replaces
/// `previous`, each package activated or deactivated by the change.
fn log_activations(previous: Option<&Tree>, tree: &Tree) {
    let layer = |p: &MountedPackage| p.source().layer.map_or("-", |l| l.name());
    let Some(previous) = previous else {
        for p in tree.packages() {
            tracing::info!(
                package = %p.package().info().name,
                layer = %layer(p),
                file = %p.path().display(),
                "mounted {}",
                p.label()
            );
        }
        return;
    };
    let has = |t: &Tree, p: &MountedPackage| {
        t.packages()
            .iter()
            .any(|q| q.path() == p.path() && q.label() == p.label())
    };
    for p in tree.packages().iter().filter(|p| !has(previous, p)) {
        tracing::info!(
            package = %p.package().info().name,
            layer = %layer(p),
            file = %p.path().display(),
            "activated {}",
            p.label()
        );
    }
    for p in previous.packages().iter().filter(|p| !has(tree, p)) {
        tracing::info!(
            package = %p.package().info().name,
            layer = %layer(p),
            file = %p.path().display(),
            "deactivated {}",
            p.label()
        );
    }
}

/// Leave out the packages whose requirements the others do not meet
/// (`state::deps::mountable`), with a warning naming what is missing.
fn drop_unmet(packages: Vec<MountedPackage>) -> Vec<MountedPackage> {
    let infos: Vec<&hpkg_format::PackageInfo> =
        packages.iter().map(|p| p.package().info()).collect();
    let ok = state::deps::mountable(&infos);
    if ok.iter().all(|&m| m) {
        return packages;
    }
    let owned: Vec<hpkg_format::PackageInfo> = infos.iter().map(|&i| i.clone()).collect();
    let problems = state::deps::check(&owned);
    packages
        .into_iter()
        .zip(ok)
        .enumerate()
        .filter_map(|(i, (p, mountable))| {
            if mountable {
                return Some(p);
            }
            let unmet: Vec<String> = problems
                .iter()
                .filter_map(|pr| match pr {
                    state::DepProblem::Unmet {
                        package,
                        requirement,
                        ..
                    } if *package == i => Some(requirement.clone()),
                    _ => None,
                })
                .collect();
            let why = if unmet.is_empty() {
                "it requires a package that is itself not mounted".to_string()
            } else {
                format!("unmet requirement {}", unmet.join(", "))
            };
            tracing::warn!(
                package = %p.package().info().name,
                file = %p.path().display(),
                "package {} ({}) is not mounted: {why}",
                p.path().display(),
                p.label()
            );
            None
        })
        .collect()
}

/// The package of `tree` that is `src`'s file, unchanged since it was opened.
fn unchanged(tree: &Tree, src: &source::SourcePackage) -> Option<MountedPackage> {
    let now = std::fs::metadata(&src.path).ok()?;
    tree.packages()
        .iter()
        .find(|m| {
            m.source() == src
                && m.file()
                    .and_then(|f| f.metadata().ok())
                    .is_some_and(|then| {
                        then.dev() == now.dev()
                            && then.ino() == now.ino()
                            && then.size() == now.size()
                            && then.mtime() == now.mtime()
                            && then.mtime_nsec() == now.mtime_nsec()
                    })
        })
        .cloned()
}
