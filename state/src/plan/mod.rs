//! The planner: everything about what a mount shows, decided in one place.
//!
//! [`plan`] takes what was asked for (a package root and a generation, or
//! package files) and decides
//!
//! * which packages are mounted, in which order ([`source`]: layer by layer,
//!   inside a layer in activation order), and which are refused, each with
//!   its reason ([`Refusal`]): a file that cannot be opened as a package,
//!   unmet requirements;
//! * the union of the mounted packages ([`tree`], built by `union`): the
//!   winner of every path, the paths one package hides from another, and the
//!   blocked entries left out.
//!
//! Packages of a root with state open from their index images
//! ([`index_cache`]) when those are valid; [`Plan::index`] counts how.
//!
//! The FUSE daemon serves the [`Plan`]'s tree and `pkgctl status` reports
//! the same plan, so what status says is what the mount shows.
//!
//! ```no_run
//! use state::plan::{self, GenerationChoice, MountSpec, Request};
//! # fn main() -> Result<(), state::plan::PlanError> {
//! let spec = MountSpec::from_sources(&["/srv/root".into()], &[])?;
//! let plan = plan::plan(&Request::new(&spec, GenerationChoice::Current), None)?;
//! for r in &plan.refused {
//!     eprintln!("{r}");
//! }
//! println!("{} nodes", plan.tree.len());
//! # Ok(()) }
//! ```

pub mod index_cache;
pub mod package;
pub mod source;
pub mod tree;
pub mod tree_image;
mod union;

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hpkg_format::PackageInfo;
use serde::Serialize;

use crate::layout::Layer;
pub use index_cache::{IndexStats, IndexWrites, IndexWritten};
pub use package::MountedPackage;
pub use source::{GenerationChoice, MountSpec, Resolved, SourceError, SourcePackage};
pub use tree::{NodeRef, Shadowed, Tree, TreeError, UnionCache};

/// Why a plan could not be made at all (a refused package is not an error:
/// it is listed in [`Plan::refused`]).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The packages to mount could not be found.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A package named on the command line could not be opened.
    #[error("{}: {source}", path.display())]
    Package {
        /// The package file.
        path: PathBuf,
        /// Why.
        #[source]
        source: hpkg_format::Error,
    },
    /// The union tree could not be built.
    #[error(transparent)]
    Tree(#[from] TreeError),
}

/// What to plan.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// What to mount.
    pub spec: &'a MountSpec,
    /// Which generation of a root with state.
    pub choice: GenerationChoice,
    /// Shine-through directories (names checked by the caller).
    pub shine: &'a [String],
    /// Whether a root with state opens its packages through the index
    /// cache ([`index_cache`]; `packagefs mount --no-index-cache` clears it).
    pub index_cache: bool,
    /// Whether the plan may write the cache images it did not find: the
    /// union image at once, the index images later ([`Plan::index_writes`]).
    /// A mount of the current generation does; `pkgctl status`, which only
    /// reports, does not (nor does a mount of an older generation, which
    /// changes nothing on disk).
    pub write_caches: bool,
}

impl<'a> Request<'a> {
    /// Plan `spec`'s generation `choice`, without shine-through directories.
    pub fn new(spec: &'a MountSpec, choice: GenerationChoice) -> Request<'a> {
        Request {
            spec,
            choice,
            shine: &[],
            index_cache: true,
            write_caches: true,
        }
    }
}

/// Why a package is not mounted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Refused {
    /// The file cannot be opened as a package (missing, truncated, not a
    /// package, damaged).
    Invalid {
        /// The reader's error.
        error: String,
    },
    /// Requirements that no mountable package meets.
    Unmet {
        /// Each requirement, as written in the package.
        requirements: Vec<String>,
    },
    /// It requires a package that is itself not mounted.
    NeedsRefused,
    /// Its layer's trust policy requires it to be vouched for, and nothing
    /// vouches for it.
    Untrusted {
        /// Why (what was looked for).
        reason: String,
    },
    /// A valid package file in a packages directory that the generation in
    /// force does not hold: a running mount activates it (unless its layer
    /// already has it under another name), `pkgctl add` does otherwise.
    NotActivated,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Invalid { error } => write!(f, "not a valid package: {error}"),
            Refused::Unmet { requirements } => {
                write!(f, "unmet requirement {}", requirements.join(", "))
            }
            Refused::NeedsRefused => {
                f.write_str("it requires a package that is itself not mounted")
            }
            Refused::Untrusted { reason } => f.write_str(reason),
            Refused::NotActivated => f.write_str("not in the generation in force (not activated)"),
        }
    }
}

/// A package left out of the mount, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The package file.
    pub path: PathBuf,
    /// Its layer (`None` for a package file mounted on its own).
    pub layer: Option<Layer>,
    /// The package's name, when its metadata could be read.
    pub package: Option<String>,
    /// `<name>-<version>`, when its metadata could be read.
    pub label: Option<String>,
    /// Why.
    pub reason: Refused,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        match (&self.label, self.layer) {
            (Some(l), Some(layer)) => write!(f, " ({l}, {layer})")?,
            (Some(l), None) => write!(f, " ({l})")?,
            (None, Some(layer)) => write!(f, " ({layer})")?,
            (None, None) => {}
        }
        write!(f, " is not mounted: {}", self.reason)
    }
}

/// What a mount shows, decided.
#[derive(Debug)]
pub struct Plan {
    /// The union of the mounted packages ([`Tree::packages`], ascending
    /// priority).
    pub tree: Tree,
    /// The generation planned (`None`: a directory scan or package files).
    pub generation: Option<u64>,
    /// Packages left out, with the reason, in mount order.
    pub refused: Vec<Refusal>,
    /// The blocked entries hidden.
    pub blocked: Vec<String>,
    /// Warnings to show loudly (a fallback to an older generation, blocked
    /// entries unreadable, a package's file hidden by a shine-through
    /// directory, ...).
    pub warnings: Vec<String>,
    /// Packages taken over from the previous tree unopened.
    pub reused: usize,
    /// Time spent opening packages.
    pub open_time: Duration,
    /// Time spent merging them.
    pub merge_time: Duration,
    /// What the index cache did (all zero without one).
    pub index: IndexStats,
    /// The index images to write ([`Plan::write_index_images`], or
    /// [`IndexWrites::write`] on a thread of the caller's).
    pub index_writes: IndexWrites,
    /// Whether the merge came from the union cache (beside the index
    /// cache: [`tree_image`]).
    pub union: UnionCache,
}

/// Decide what `request` mounts. Packages of `previous` (a tree being
/// replaced) whose file is unchanged (same path, owner, device, inode, size
/// and modification time) are taken over instead of being opened again.
///
/// Package files named one by one must all open ([`PlanError::Package`]).
/// In a root, a package that cannot be opened is refused, and so is, in a
/// root with state, one whose requirements the generation's other mountable
/// packages do not meet: the rest is mounted, because a system must boot.
pub fn plan(request: &Request<'_>, previous: Option<&Tree>) -> Result<Plan, PlanError> {
    let mut resolved = source::resolve_with(request.spec, request.choice)?;
    if !request.index_cache {
        resolved.index_dir = None;
    }
    if !request.write_caches {
        resolved.index_writable = false;
    }
    plan_resolved(
        &resolved,
        matches!(request.spec, MountSpec::Files(_)),
        request.shine,
        previous,
    )
}

/// [`plan`] of what [`source::resolve_with`] decided; `strict`: every
/// package must open. Packages open through the index cache in
/// [`Resolved::index_dir`], if any.
pub fn plan_resolved(
    resolved: &Resolved,
    strict: bool,
    shine: &[String],
    previous: Option<&Tree>,
) -> Result<Plan, PlanError> {
    let started = Instant::now();
    let mut slots: Vec<Option<MountedPackage>> = resolved
        .packages
        .iter()
        .map(|src| previous.and_then(|t| unchanged(t, src)))
        .collect();
    let reused = slots.iter().filter(|s| s.is_some()).count();
    let (indexes, sources): (Vec<usize>, Vec<SourcePackage>) = resolved
        .packages
        .iter()
        .enumerate()
        .filter(|(i, _)| slots.get(*i).is_some_and(Option::is_none))
        .map(|(i, p)| (i, p.clone()))
        .unzip();
    let mut refused = Vec::new();
    let mut index = IndexStats::default();
    let mut index_writes = IndexWrites::default();
    let index_dir = resolved
        .index_dir
        .as_deref()
        .map(|path| index_cache::IndexDir {
            path,
            writable: resolved.index_writable,
        });
    let opened_all = package::open_all_cached(sources, index_dir);
    for (i, opened) in indexes.into_iter().zip(opened_all) {
        match opened {
            Ok((p, used)) => {
                index.count(&used);
                if let index_cache::IndexUse::Rebuilt { job: Some(job), .. } = used {
                    index_writes.push(p.clone(), job);
                }
                if let Some(slot) = slots.get_mut(i) {
                    *slot = Some(p);
                }
            }
            Err((src, source)) if strict => {
                return Err(PlanError::Package {
                    path: src.path,
                    source,
                })
            }
            Err((src, e)) => refused.push((
                src.path.clone(),
                Refusal {
                    path: src.path,
                    layer: src.layer,
                    package: None,
                    label: None,
                    reason: Refused::Invalid {
                        error: e.to_string(),
                    },
                },
            )),
        }
    }
    let open_time = started.elapsed();
    let mut packages: Vec<MountedPackage> = slots.into_iter().flatten().collect();
    if resolved.check_dependencies {
        let (kept, unmet) = split_unmet(packages);
        packages = kept;
        refused.extend(unmet.into_iter().map(|r| (r.path.clone(), r)));
    }
    // Refusals in mount order, like the packages.
    refused.sort_by_key(|(path, _)| {
        resolved
            .packages
            .iter()
            .position(|p| &p.path == path)
            .unwrap_or(usize::MAX)
    });
    packages.retain(|p| resolved.layer_shown(p.source()));
    let merge_started = Instant::now();
    let (tree, union) = Tree::with_union_cache(
        packages,
        &resolved.blocked,
        shine,
        resolved.index_dir.as_deref(),
        resolved.index_writable,
    )?;
    let mut warnings = resolved.warnings.clone();
    warnings.extend(tree.warnings().iter().cloned());
    Ok(Plan {
        tree,
        generation: resolved.generation,
        refused: refused.into_iter().map(|(_, r)| r).collect(),
        blocked: resolved.blocked.clone(),
        warnings,
        reused,
        open_time,
        merge_time: merge_started.elapsed(),
        index,
        index_writes,
        union,
    })
}

impl Plan {
    /// Write the index images waiting in [`Plan::index_writes`] now, and
    /// count them in [`Plan::index`] (for a caller with nothing better to
    /// do; the daemon writes them once the mount is ready).
    pub fn write_index_images(&mut self) {
        let done = std::mem::take(&mut self.index_writes).write();
        self.index.add_written(&done);
    }
}

/// The files of `root`'s packages directories that `generation` does not
/// hold, each with why it is not mounted: a file that is not a valid
/// package (half-copied, damaged) says what the reader found, one the
/// layer's trust policy refuses is [`Refused::Untrusted`], any other is
/// [`Refused::NotActivated`].
pub fn unactivated(
    root: &crate::root::Root,
    generation: &crate::active_list::Generation,
) -> crate::error::Result<Vec<Refusal>> {
    let untrusted: std::collections::HashMap<PathBuf, String> = root
        .untrusted_files()?
        .into_iter()
        .map(|r| (r.path, r.reason))
        .collect();
    let mut out = Vec::new();
    for layer in Layer::ALL {
        for name in root.package_files(layer)? {
            if generation.find(layer, &name).is_some() {
                continue;
            }
            let path = root.layout().package_file(layer, &name);
            let (package, label, reason) = match hpkg_format::Package::open(&path) {
                Ok(p) => (
                    Some(p.info().name.clone()),
                    Some(crate::deps::label(p.info())),
                    match untrusted.get(&path) {
                        Some(reason) => Refused::Untrusted {
                            reason: reason.clone(),
                        },
                        None => Refused::NotActivated,
                    },
                ),
                Err(e) => (
                    None,
                    None,
                    Refused::Invalid {
                        error: e.to_string(),
                    },
                ),
            };
            out.push(Refusal {
                path,
                layer: Some(layer),
                package,
                label,
                reason,
            });
        }
    }
    Ok(out)
}

/// Split `packages` into those whose requirements the others meet
/// ([`crate::deps::mountable`]) and refusals of the rest.
fn split_unmet(packages: Vec<MountedPackage>) -> (Vec<MountedPackage>, Vec<Refusal>) {
    let infos: Vec<&PackageInfo> = packages.iter().map(|p| p.package().info()).collect();
    let ok = crate::deps::mountable(&infos);
    if ok.iter().all(|&m| m) {
        return (packages, Vec::new());
    }
    let problems = crate::deps::check_refs(&infos);
    let mut kept = Vec::with_capacity(packages.len());
    let mut refused = Vec::new();
    for (i, (p, mountable)) in packages.into_iter().zip(ok).enumerate() {
        if mountable {
            kept.push(p);
            continue;
        }
        let requirements: Vec<String> = problems
            .iter()
            .filter_map(|pr| match pr {
                crate::DepProblem::Unmet {
                    package,
                    requirement,
                    ..
                } if *package == i => Some(requirement.clone()),
                _ => None,
            })
            .collect();
        refused.push(Refusal {
            path: p.path().to_path_buf(),
            layer: p.source().layer,
            package: Some(p.package().info().name.clone()),
            label: Some(crate::deps::label(p.package().info())),
            reason: if requirements.is_empty() {
                Refused::NeedsRefused
            } else {
                Refused::Unmet { requirements }
            },
        });
    }
    (kept, refused)
}

/// The package of `tree` that is `src`'s file, unchanged since it was opened.
fn unchanged(tree: &Tree, src: &SourcePackage) -> Option<MountedPackage> {
    let now = std::fs::metadata(&src.path).ok()?;
    tree.packages()
        .iter()
        .find(|m| m.source() == src && m.is_unchanged(&now))
        .cloned()
}
