//! `pkgctl owner`: the active package that provides a path of the mounted
//! tree, and what it shadows, found in the plan of `state::plan` (the same
//! code the daemon mounts with). The path is a tree path or one under a
//! FUSE mount of the root.

use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use hpkg_format::EntryKind;
use serde::Serialize;
use state::plan::{MountedPackage, NodeRef, Plan, Tree};

use crate::cmd::root::{open, warn_all};
use crate::cmd::status::{mount_plan, Named};
use crate::error::{CliError, Result};
use crate::fuse_mount;
use crate::output::{lossy, Out};

/// Show the active package that provides a path, and what it shadows.
///
/// PATH is a path as the mounted tree shows it (/usr/bin/env or
/// usr/bin/env), or a path under a mount of the root (/mnt/root/usr/bin/env
/// where the root is mounted at /mnt/root): the tree path is tried first,
/// then the innermost FUSE mount point above PATH. Symbolic links in PATH
/// are not followed.
///
/// The first line starts with the providing package, as `pacman -Qo`:
///
///   hello_user 1.0-1 (user) hello_user-1.0-1-any.hpkg: file /etc/hello/hello.conf
///     shadows hello_base 1.0-1 (system, hello_base-1.0-1-any.hpkg): file
///
/// A directory several packages have is merged: it names the lowest of
/// them first, then the others (`merged with ...`); its contents can come
/// from any of them. The mount root and shine-through directories belong to
/// no package (`no package: directory /`). A path the tree does not have
/// exits with status 1, saying when ROOT/system/state/blocked-entries hides
/// it.
///
/// With --json, prints one JSON object (stable; new keys may be added):
///
///   {
///     "path": "etc/hello/hello.conf",     the tree path, no leading /
///     "kind": "file" | "dir" | "symlink",
///     "package": {"name": "hello_user", "version": "1.0-1", "layer": "user",
///                 "file_name": "hello_user-1.0-1-any.hpkg",
///                 "label": "hello_user-1.0-1"}
///                or null: the mount root or a shine-through directory,
///     "shadows": [{"name", "version", "layer", "file_name", "label",
///                  "kind": kind of the hidden entry}],
///     "merged": [{"name", "version", "layer", "file_name", "label"}]
///                the other packages that have this directory (else []),
///     "refused_shadows": [same shape as shadows]
///                packages of a layer that may not shadow lower layers
///                (the trust policy's may-shadow no) refused at this path
///   }
///
/// Example:
///
///   pkgctl -R /srv/root owner /usr/bin/env
///   pkgctl -R /srv/root owner /mnt/root/etc/hello/hello.conf --json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// A tree path, or a path under a mount of the root.
    path: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// A package as `owner` names it.
#[derive(Debug, Serialize)]
struct PackageJson {
    name: String,
    version: String,
    #[serde(flatten)]
    named: Named,
}

impl PackageJson {
    fn of(m: &MountedPackage) -> PackageJson {
        let info = m.package().info();
        let named = Named::of(m);
        // The version as the label (`name-version`, for people) shows it.
        let version = named
            .label
            .strip_prefix(info.name.as_str())
            .and_then(|rest| rest.strip_prefix('-'))
            .map_or_else(|| info.version.to_string(), str::to_string);
        PackageJson {
            name: info.name.clone(),
            version,
            named,
        }
    }

    /// `name version (layer, file)`.
    fn text(&self) -> String {
        format!(
            "{} {} ({}, {})",
            self.name, self.version, self.named.layer, self.named.file_name
        )
    }
}

/// A package whose entry is hidden.
#[derive(Debug, Serialize)]
struct ShadowJson {
    #[serde(flatten)]
    package: PackageJson,
    kind: &'static str,
}

/// `owner --json`.
#[derive(Debug, Serialize)]
struct OwnerJson {
    path: String,
    kind: &'static str,
    package: Option<PackageJson>,
    shadows: Vec<ShadowJson>,
    merged: Vec<PackageJson>,
    refused_shadows: Vec<ShadowJson>,
}

/// The components of a tree path (`.` and `..` taken lexically).
fn tree_components(path: &Path) -> Vec<Vec<u8>> {
    fuse_mount::lexical(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.as_bytes().to_vec()),
            _ => None,
        })
        .collect()
}

/// The node at `parts`, if the tree has it.
fn lookup<'a>(tree: &'a Tree, parts: &[impl AsRef<[u8]>]) -> Option<NodeRef<'a>> {
    parts
        .iter()
        .try_fold(tree.root(), |node, name| node.lookup(name.as_ref()))
}

/// Whether `m`'s own table of contents has a directory at `parts`.
fn has_directory(m: &MountedPackage, parts: &[&[u8]]) -> bool {
    let toc = m.package().toc();
    parts
        .iter()
        .try_fold(None, |dir, name| toc.lookup(dir, name).map(Some))
        .flatten()
        .is_some_and(|e| toc.entry(e).kind() == EntryKind::Directory)
}

/// What `plan` has at `path`, tried as a tree path, then as a path under a
/// FUSE mount; else the tree paths tried.
fn find<'a>(plan: &'a Plan, path: &Path) -> std::result::Result<NodeRef<'a>, Vec<Vec<u8>>> {
    let direct = tree_components(path);
    if let Some(node) = lookup(&plan.tree, &direct) {
        return Ok(node);
    }
    let mut tried = vec![direct.join(&b'/')];
    if let Some((_, rest)) = fuse_mount::split(path) {
        let parts = tree_components(&rest);
        if let Some(node) = lookup(&plan.tree, &parts) {
            return Ok(node);
        }
        tried.push(parts.join(&b'/'));
    }
    Err(tried)
}

/// The blocked entry that hides one of `tried` (the entry itself or an
/// ancestor of it).
fn blocking<'a>(blocked: &'a [String], tried: &[Vec<u8>]) -> Option<&'a str> {
    blocked.iter().map(String::as_str).find(|b| {
        tried.iter().any(|t| {
            t.strip_prefix(b.as_bytes())
                .is_some_and(|r| r.is_empty() || r.starts_with(b"/"))
        })
    })
}

/// `pkgctl owner`.
pub fn run(args: &Args, root_path: &Path) -> Result<()> {
    let root = open(root_path)?;
    let plan = mount_plan(&root)?;
    warn_all(&plan.warnings);
    let node = find(&plan, &args.path).map_err(|tried| {
        let why = match blocking(&plan.blocked, &tried) {
            Some(b) => format!(
                "no active package provides it (hidden by {} entry {b})",
                root.layout().blocked_entries().display()
            ),
            None => "no active package provides it".to_string(),
        };
        CliError::refused(&args.path, why)
    })?;
    let path = node.path();
    let kind = node.kind();
    let provider = node.package();
    let here = |records: &mut dyn Iterator<Item = state::plan::Shadowed<'_>>| -> Vec<ShadowJson> {
        records
            .filter(|s| s.path == path)
            .map(|s| ShadowJson {
                package: PackageJson::of(s.hidden),
                kind: s.hidden_kind.name(),
            })
            .collect()
    };
    let shadows = here(&mut plan.tree.shadowed());
    let refused_shadows = here(&mut plan.tree.refused_shadows());
    let parts: Vec<&[u8]> = path
        .split(|b| *b == b'/')
        .filter(|p| !p.is_empty())
        .collect();
    let merged: Vec<PackageJson> = if kind == EntryKind::Directory {
        plan.tree
            .packages()
            .iter()
            .filter(|m| provider.is_none_or(|p| !p.same_as(m)) && has_directory(m, &parts))
            .map(PackageJson::of)
            .collect()
    } else {
        Vec::new()
    };
    let answer = OwnerJson {
        path: lossy(&path).into_owned(),
        kind: kind.name(),
        package: provider.map(PackageJson::of),
        shadows,
        merged,
        refused_shadows,
    };
    let mut out = Out::new();
    if args.json {
        out.json_pretty(&answer)?;
        return out.finish();
    }
    print(&mut out, &answer, node.is_root())?;
    out.finish()
}

/// The text form of `answer`.
fn print(out: &mut Out, answer: &OwnerJson, is_root: bool) -> Result<()> {
    let what = match answer.kind {
        "dir" => "directory",
        kind => kind,
    };
    let shown = Path::new("/").join(&answer.path);
    let note = if is_root {
        " (the mount root)"
    } else if answer.package.is_none() {
        " (shine-through)"
    } else if !answer.merged.is_empty() {
        " (merged)"
    } else {
        ""
    };
    let by = match &answer.package {
        Some(p) => format!(
            "{} {} ({}) {}",
            p.name, p.version, p.named.layer, p.named.file_name
        ),
        None => "no package".to_string(),
    };
    out.line(format_args!("{by}: {what} {}{note}", shown.display()))?;
    for s in &answer.shadows {
        out.line(format_args!("  shadows {}: {}", s.package.text(), s.kind))?;
    }
    for m in &answer.merged {
        out.line(format_args!("  merged with {}", m.text()))?;
    }
    for s in &answer.refused_shadows {
        out.line(format_args!(
            "  refused to shadow it (the layer's policy): {}: {}",
            s.package.text(),
            s.kind
        ))?;
    }
    Ok(())
}
