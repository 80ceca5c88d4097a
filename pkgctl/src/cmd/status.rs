//! `pkgctl status`: the generation in force and what is wrong with it or
//! hidden in it, as the mount sees it: the plan of `state::plan` (the same
//! code the daemon mounts with) gives the shadowed paths, the packages left
//! out with their reasons, and the blocked entries; the dependency check
//! gives the problems.

use std::path::Path;

use serde::Serialize;
use state::plan::{self, GenerationChoice, MountSpec, MountedPackage, Plan, Refused, Request};
use state::{ActivePackage, DepProblem, Generation, Layer, Root};

use crate::cmd::root::{open, warn_all};
use crate::error::{CliError, Result};
use crate::output::{lossy, Out};

/// Show the generation in force and its conflicts.
///
/// Prints the generation in force, then:
///
///   shadowed paths: every path one mounted package hides from another, with
///     the package shown in its place (user wins over common over system;
///     inside a layer the later activated package wins);
///   refused shadows: paths where a package of a layer that may not shadow
///     lower layers (ROOT/system/settings/policy `<layer> may-shadow no`; the
///     default for a layer whose packages directory is not owned by root)
///     would have replaced a lower layer's node, and was refused;
///   not mounted: active packages the mount leaves out, each with its file
///     and the reason (requirements unmet, file missing or not a valid
///     package);
///   not activated: files in a packages directory that the generation does
///     not hold, with the reason (not a valid package, or not activated);
///   dependency problems: unmet requirements and conflicts;
///   blocked entries: the paths ROOT/system/state/blocked-entries hides.
///
/// The exit status is 0 whatever is found (`pkgctl verify` checks the files).
///
/// With --json, prints one JSON object (stable; new keys may be added):
///
///   {
///     "generation": {"number": 4, "parent": 3 or null,
///                    "time": "2026-01-02T03:04:05Z", "reason": "...",
///                    "pinned": false, "packages": [{"layer", "file_name",
///                    "size", "hash"}]},
///     "fallback": false,              true: active.list was unusable
///     "shadowed": [
///       {"path": "etc/hello/hello.conf",
///        "kind": "file" | "directory" | "symlink",     of the hidden entry
///        "hidden": {"layer": "system", "file_name": "...", "label": "hello_base-1.0-1"},
///        "shown":  {"layer": "user", "file_name": "...", "label": "hello_user-1.0-1"}
///                  or null: a shine-through directory no package has}
///     ],
///     "refused_shadows": [same shape as shadowed],
///                                        what a package of a layer whose
///                                        policy says `may-shadow no` would
///                                        have hidden: "hidden" is that
///                                        package (refused), "shown" the
///                                        lower one the tree keeps
///     "not_mounted": [{"layer", "file_name", "label", "path",
///                      "reason": {"kind": "unmet", "requirements": ["..."]}
///                              | {"kind": "invalid", "error": "..."}
///                              | {"kind": "needs-refused"},
///                      "message": "why, in words"}],
///                                        left out of the mount (and of
///                                        "shadowed"); label "" when the
///                                        metadata is unreadable
///     "not_activated": [same shape as not_mounted],
///                                        files in a packages directory that
///                                        the generation does not hold: not
///                                        valid packages (a half-copied or
///                                        damaged file) or not yet activated
///     "problems": [
///       {"kind": "unmet", "package": 0, "name": "hello_user-1.0-1",
///        "requirement": "hello_base"}
///       {"kind": "conflict", "package", "name", "requirement", "other", "other_name"}
///     ],                                 package/other index generation.packages
///     "unreadable": [{"package": 0, "error": "..."}],
///     "blocked_entries": ["path", ...],
///     "warnings": ["..."]                also printed on standard error
///   }
///
/// Example:
///
///   pkgctl -R /srv/root status
///   pkgctl -R /srv/root status --json | jq '.problems'
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// A package as `status` (and `owner`) names it.
#[derive(Debug, Serialize)]
pub(crate) struct Named {
    pub(crate) layer: Layer,
    pub(crate) file_name: String,
    pub(crate) label: String,
}

impl Named {
    /// A mounted package.
    pub(crate) fn of(m: &MountedPackage) -> Named {
        Named {
            layer: m.source().layer.unwrap_or(Layer::System),
            file_name: file_name(m.path()),
            label: state::deps::label(m.package().info()),
        }
    }
}

/// The file name of `path`, lossily.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// One shadowed path.
#[derive(Debug, Serialize)]
struct ShadowedJson {
    path: String,
    kind: &'static str,
    hidden: Named,
    /// `None`: a shine-through directory no package has.
    shown: Option<Named>,
}

/// A package the mount leaves out.
#[derive(Debug, Serialize)]
struct NotMounted {
    #[serde(flatten)]
    named: Named,
    path: String,
    reason: Refused,
    message: String,
}

/// A package whose metadata could not be read.
#[derive(Debug, Serialize)]
struct Unreadable {
    package: usize,
    error: String,
}

/// `status --json`.
#[derive(Debug, Serialize)]
struct StatusJson<'a> {
    generation: &'a Generation,
    fallback: bool,
    shadowed: Vec<ShadowedJson>,
    refused_shadows: Vec<ShadowedJson>,
    not_mounted: Vec<NotMounted>,
    not_activated: Vec<NotMounted>,
    problems: &'a [DepProblem],
    unreadable: Vec<Unreadable>,
    blocked_entries: &'a [String],
    warnings: &'a [String],
    /// What the index cache holds for the packages a mount would open.
    index_cache: &'a plan::IndexStats,
    /// `found`, `missing` or `damaged`; `null`: no union cache.
    union_image: Option<&'static str>,
}

/// Whether the mount would take its merge from a union image (`found`), or
/// merge because there is none or it is damaged; `None`: no union cache
/// (a root without state).
fn union_image(union: &plan::UnionCache) -> Option<&'static str> {
    match union {
        plan::UnionCache::Unused => None,
        plan::UnionCache::Hit => Some("found"),
        plan::UnionCache::Merged { rejected: None, .. } => Some("missing"),
        plan::UnionCache::Merged {
            rejected: Some(_), ..
        } => Some("damaged"),
    }
}

/// The plan of the mount of every layer of `root`'s generation in force:
/// what a mount shows.
pub(crate) fn mount_plan(root: &Root) -> Result<Plan> {
    let spec = MountSpec::Root {
        root: root.path().to_path_buf(),
        layers: Layer::ALL.to_vec(),
    };
    let request = Request {
        // A report writes nothing.
        write_caches: false,
        ..Request::new(&spec, GenerationChoice::Current)
    };
    plan::plan(&request, None).map_err(|e| CliError::refused(root.path(), e.to_string()))
}

/// `pkgctl status`.
pub fn run(args: &Args, path: &Path) -> Result<()> {
    let root = open(path)?;
    let state_err = |e| CliError::state(path, e);
    let loaded = root.current().map_err(state_err)?;
    let generation = &loaded.generation;
    let mut warnings = loaded.warnings.clone();
    let plan = mount_plan(&root)?;
    warnings.extend(
        plan.warnings
            .iter()
            .filter(|w| !loaded.warnings.contains(w))
            .cloned(),
    );
    let json = |s: plan::Shadowed<'_>| ShadowedJson {
        path: lossy(&s.path).into_owned(),
        kind: s.hidden_kind.name(),
        hidden: Named::of(s.hidden),
        shown: s.shown.map(Named::of),
    };
    let shadowed: Vec<ShadowedJson> = plan.tree.shadowed().map(json).collect();
    let refused_shadows: Vec<ShadowedJson> = plan.tree.refused_shadows().map(json).collect();
    let described = |r: &plan::Refusal| NotMounted {
        named: Named {
            layer: r.layer.unwrap_or(Layer::System),
            file_name: file_name(&r.path),
            label: r.label.clone().unwrap_or_default(),
        },
        path: r.path.display().to_string(),
        reason: r.reason.clone(),
        message: r.reason.to_string(),
    };
    let not_mounted: Vec<NotMounted> = plan.refused.iter().map(described).collect();
    let not_activated: Vec<NotMounted> = plan::unactivated(&root, generation)
        .map_err(state_err)?
        .iter()
        .map(described)
        .collect();
    let deps = root.check_dependencies(generation);
    let unreadable: Vec<Unreadable> = deps
        .unreadable
        .iter()
        .map(|(package, error)| Unreadable {
            package: *package,
            error: error.clone(),
        })
        .collect();
    let blocked_entries = &plan.blocked;
    warn_all(&warnings);
    let mut out = Out::new();
    if args.json {
        out.json_pretty(&StatusJson {
            generation,
            fallback: loaded.fallback,
            shadowed,
            refused_shadows,
            not_mounted,
            not_activated,
            problems: &deps.problems,
            unreadable,
            blocked_entries,
            warnings: &warnings,
            index_cache: &plan.index,
            union_image: union_image(&plan.union),
        })?;
        return out.finish();
    }
    out.line(format_args!(
        "generation {} ({}{} package(s)): {}",
        generation.number,
        if generation.pinned { "pinned, " } else { "" },
        generation.packages.len(),
        generation.reason
    ))?;
    if loaded.fallback {
        out.line("active.list is unusable: this is the newest valid generation file")?;
    }
    for (title, list, verb) in [
        ("shadowed paths", &shadowed, "hidden by"),
        (
            "refused shadows (the layer's policy: may-shadow no)",
            &refused_shadows,
            "refused; shown:",
        ),
    ] {
        out.line(format_args!("{title}: {}", list.len()))?;
        for s in list {
            let shown = match &s.shown {
                Some(n) => format!("{} ({}/{})", n.label, n.layer, n.file_name),
                None => "the shine-through directory".to_string(),
            };
            out.line(format_args!(
                "  /{}: {} of {} ({}/{}) {verb} {shown}",
                s.path, s.kind, s.hidden.label, s.hidden.layer, s.hidden.file_name,
            ))?;
        }
    }
    for (title, list) in [
        ("not mounted", &not_mounted),
        ("not activated (in a packages directory)", &not_activated),
    ] {
        out.line(format_args!("{title}: {}", list.len()))?;
        for n in list {
            let label = if n.named.label.is_empty() {
                String::new()
            } else {
                format!("{} ", n.named.label)
            };
            out.line(format_args!(
                "  {label}({}/{}): {}",
                n.named.layer, n.named.file_name, n.message
            ))?;
        }
    }
    out.line(format_args!(
        "dependency problems: {}",
        deps.problems.len() + unreadable.len()
    ))?;
    for p in &deps.problems {
        out.line(format_args!("  {p}"))?;
    }
    for u in &unreadable {
        let name = generation
            .packages
            .get(u.package)
            .map(ActivePackage::display_name)
            .unwrap_or_default();
        out.line(format_args!("  {name}: metadata unreadable: {}", u.error))?;
    }
    out.line(format_args!("blocked entries: {}", blocked_entries.len()))?;
    for b in blocked_entries {
        out.line(format_args!("  {b}"))?;
    }
    let index = &plan.index;
    if index.is_used() {
        out.line(format_args!(
            "index cache: {} of {} package(s) have an image ({} missing, {} stale, {} damaged); \
             union image: {}",
            index.hits,
            index.hits + index.missing + index.stale + index.damaged,
            index.missing,
            index.stale,
            index.damaged,
            union_image(&plan.union).unwrap_or("none")
        ))?;
    }
    out.finish()
}
