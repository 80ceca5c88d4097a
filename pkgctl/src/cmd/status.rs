//! `pkgctl status`: the generation in force and what is wrong with it or
//! hidden in it: shadowed paths (with the union rules of `packagefs::tree`,
//! the same code the mount uses), dependency problems, blocked entries.

use std::path::Path;

use packagefs::package::MountedPackage;
use packagefs::source::{Layer as MountLayer, SourcePackage};
use packagefs::tree::Tree;
use serde::Serialize;
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
///   not mounted: active packages the mount leaves out because their
///     requirements are unmet (or their metadata is unreadable);
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
///        "shown":  {"layer": "user", "file_name": "...", "label": "hello_user-1.0-1"}}
///     ],
///     "not_mounted": [{"layer", "file_name", "label"}],  left out of the mount
///                                        (and of "shadowed"): requirements
///                                        unmet, or metadata unreadable (label "")
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

/// A package as `status` names it.
#[derive(Debug, Serialize)]
struct Named {
    layer: Layer,
    file_name: String,
    label: String,
}

/// One shadowed path.
#[derive(Debug, Serialize)]
struct ShadowedJson {
    path: String,
    kind: &'static str,
    hidden: Named,
    shown: Named,
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
    not_mounted: Vec<Named>,
    problems: &'a [DepProblem],
    unreadable: Vec<Unreadable>,
    blocked_entries: Vec<String>,
    warnings: &'a [String],
}

fn mount_layer(layer: Layer) -> MountLayer {
    match layer {
        Layer::System => MountLayer::System,
        Layer::Common => MountLayer::Common,
        Layer::User => MountLayer::User,
    }
}

/// Indexes (into `generation.packages`) of the packages the mount leaves
/// out: those whose metadata is unreadable, and those whose requirements
/// cannot be met by mountable packages ([`state::deps::mountable`]).
fn not_mounted(root: &Root, generation: &Generation) -> Vec<usize> {
    let mut readable = Vec::new();
    let mut out = Vec::new();
    for (i, p) in generation.packages.iter().enumerate() {
        match root.package_info(p) {
            Ok(info) => readable.push((i, info)),
            Err(_) => out.push(i),
        }
    }
    let refs: Vec<&hpkg_format::PackageInfo> = readable.iter().map(|(_, i)| i.as_ref()).collect();
    for ((i, _), ok) in readable.iter().zip(state::deps::mountable(&refs)) {
        if !ok {
            out.push(*i);
        }
    }
    out.sort_unstable();
    out
}

/// The union tree of a generation's mountable packages (all but
/// `left_out`), opened in mount order (layer, then activation order).
/// Packages that cannot be opened are left out with a warning, as the mount
/// leaves them out.
fn union_tree(
    root: &Root,
    generation: &Generation,
    left_out: &[usize],
    warnings: &mut Vec<String>,
) -> Result<(Tree, Vec<ActivePackage>)> {
    let mut order: Vec<&ActivePackage> = generation
        .packages
        .iter()
        .enumerate()
        .filter(|(i, _)| !left_out.contains(i))
        .map(|(_, p)| p)
        .collect();
    order.sort_by_key(|p| p.layer);
    let mut mounted = Vec::with_capacity(order.len());
    let mut active = Vec::with_capacity(order.len());
    for p in order {
        let layer = mount_layer(p.layer);
        let source = SourcePackage {
            path: root.resolve_path(p),
            layer: Some(layer),
            uid: 0,
            gid: 0,
            strip_setid: layer == MountLayer::User,
        };
        match MountedPackage::open(source) {
            Ok(m) => {
                mounted.push(m);
                active.push(p.clone());
            }
            Err(e) => warnings.push(format!(
                "{}: cannot be opened, left out of the shadowing check: {e}",
                p.display_name()
            )),
        }
    }
    let tree = Tree::new(mounted).map_err(|e| CliError::refused(root.path(), e.to_string()))?;
    Ok((tree, active))
}

/// `pkgctl status`.
pub fn run(args: &Args, path: &Path) -> Result<()> {
    let root = open(path)?;
    let state_err = |e| CliError::state(path, e);
    let loaded = root.current().map_err(state_err)?;
    let generation = &loaded.generation;
    let mut warnings = loaded.warnings.clone();
    let left_out = not_mounted(&root, generation);
    let (tree, active) = union_tree(&root, generation, &left_out, &mut warnings)?;
    let named = |m: &MountedPackage| {
        let i = tree
            .packages()
            .iter()
            .position(|t| std::ptr::eq(t, m))
            .and_then(|i| active.get(i));
        let info = m.package().info();
        Named {
            layer: i.map(|p| p.layer).unwrap_or(Layer::System),
            file_name: i.map(|p| p.file_name.clone()).unwrap_or_default(),
            label: state::display::label(info),
        }
    };
    let shadowed: Vec<ShadowedJson> = tree
        .shadowed()
        .map(|s| ShadowedJson {
            path: lossy(&s.path).into_owned(),
            kind: s.hidden_kind.name(),
            hidden: named(s.hidden),
            shown: named(s.shown),
        })
        .collect();
    let not_mounted: Vec<Named> = left_out
        .iter()
        .filter_map(|i| generation.packages.get(*i))
        .map(|p| Named {
            layer: p.layer,
            file_name: p.file_name.clone(),
            label: root
                .package_info(p)
                .map(|info| state::display::label(&info))
                .unwrap_or_default(),
        })
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
    let blocked_entries = root.blocked_entries().map_err(state_err)?;
    warn_all(&warnings);
    let mut out = Out::new();
    if args.json {
        out.json_pretty(&StatusJson {
            generation,
            fallback: loaded.fallback,
            shadowed,
            not_mounted,
            problems: &deps.problems,
            unreadable,
            blocked_entries,
            warnings: &warnings,
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
    out.line(format_args!("shadowed paths: {}", shadowed.len()))?;
    for s in &shadowed {
        out.line(format_args!(
            "  /{}: {} of {} ({}/{}) hidden by {} ({}/{})",
            s.path,
            s.kind,
            s.hidden.label,
            s.hidden.layer,
            s.hidden.file_name,
            s.shown.label,
            s.shown.layer,
            s.shown.file_name
        ))?;
    }
    out.line(format_args!(
        "not mounted (requirements unmet or metadata unreadable): {}",
        not_mounted.len()
    ))?;
    for n in &not_mounted {
        out.line(format_args!("  {} ({}/{})", n.label, n.layer, n.file_name))?;
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
    for b in &blocked_entries {
        out.line(format_args!("  {b}"))?;
    }
    out.finish()
}
