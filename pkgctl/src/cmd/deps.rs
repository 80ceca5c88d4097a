//! `pkgctl deps`: what an active package requires and which active packages
//! meet each requirement, or (`--reverse`) which active packages require
//! it; `--tree` follows either direction to the end.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use hpkg_format::PackageInfo;
use serde::Serialize;

use crate::cmd::root::open;
use crate::error::{CliError, Result};
use crate::output::Out;

/// Show an active package's dependencies, or what depends on it.
///
/// For each requirement of NAME: the active packages that meet it, or
/// `UNMET`. With --reverse: the active packages with a requirement NAME
/// meets. With --tree: recursively, each package once.
///
/// With --json, one object: {"package": "name-version", "children": [...]},
/// each child {"package": "name-version", "requirement": "lib:libz >= 1",
/// "children": [...]} (with --tree, nested; else empty), and an unmet
/// requirement {"package": "<requirement>", "requirement", "unmet": true}.
///
/// Example:
///
///   pkgctl -R /srv/root deps app --tree
///   pkgctl -R /srv/root deps zlib --reverse
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The package name.
    name: String,
    /// What requires NAME instead of what NAME requires.
    #[arg(long)]
    reverse: bool,
    /// Follow the dependencies recursively.
    #[arg(long)]
    tree: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// One node of the answer.
#[derive(Debug, Clone, Serialize)]
struct Node {
    /// `name-version`, or the unmet requirement's text.
    package: String,
    /// The requirement that links it to its parent.
    #[serde(skip_serializing_if = "Option::is_none")]
    requirement: Option<String>,
    /// Whether this requirement is met (forward only).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    unmet: bool,
    /// Further nodes.
    children: Vec<Node>,
}

fn label(p: &PackageInfo) -> String {
    format!("{}-{}", p.name, p.version)
}

/// The nodes under `p`, recursing when `tree`; `seen` stops cycles.
fn children(
    all: &[Arc<PackageInfo>],
    p: &PackageInfo,
    reverse: bool,
    tree: bool,
    seen: &mut HashSet<String>,
) -> Vec<Node> {
    let mut out = Vec::new();
    let link = |q: &PackageInfo, requirement: String, seen: &mut HashSet<String>| {
        let grand = if tree && seen.insert(q.name.clone()) {
            children(all, q, reverse, tree, seen)
        } else {
            Vec::new()
        };
        Node {
            package: label(q),
            requirement: Some(requirement),
            unmet: false,
            children: grand,
        }
    };
    if reverse {
        for q in all {
            for req in &q.requires {
                if p.satisfies(req) {
                    out.push(link(q, req.to_string(), seen));
                }
            }
        }
    } else {
        for req in &p.requires {
            let providers: Vec<&Arc<PackageInfo>> =
                all.iter().filter(|q| q.satisfies(req)).collect();
            if providers.is_empty() {
                out.push(Node {
                    package: req.to_string(),
                    requirement: Some(req.to_string()),
                    unmet: true,
                    children: Vec::new(),
                });
            }
            for q in providers {
                out.push(link(q, req.to_string(), seen));
            }
        }
    }
    out
}

fn print(out: &mut Out, nodes: &[Node], depth: usize, reverse: bool) -> Result<()> {
    for n in nodes {
        let pad = "  ".repeat(depth);
        let req = n.requirement.as_deref().unwrap_or("");
        if n.unmet {
            out.line(format_args!("{pad}{req}: UNMET"))?;
        } else if reverse {
            out.line(format_args!("{pad}{} (requires {req})", n.package))?;
        } else {
            out.line(format_args!("{pad}{req}: {}", n.package))?;
        }
        print(out, &n.children, depth + 1, reverse)?;
    }
    Ok(())
}

/// `pkgctl deps`.
pub fn run(args: &Args, path: &Path) -> Result<()> {
    let root = open(path)?;
    let state = |e| CliError::state(path, e);
    let current = root.current().map_err(state)?.generation;
    let mut all = Vec::new();
    for p in &current.packages {
        all.push(root.package_info(p).map_err(state)?);
    }
    let me = all
        .iter()
        .find(|p| p.name == args.name)
        .cloned()
        .ok_or_else(|| {
            CliError::refused(
                path,
                format!("{}: no active package has that name", args.name),
            )
        })?;
    let mut seen = HashSet::from([me.name.clone()]);
    let top = Node {
        package: label(&me),
        requirement: None,
        unmet: false,
        children: children(&all, &me, args.reverse, args.tree, &mut seen),
    };
    let mut out = Out::new();
    if args.json {
        out.json_line(&top)?;
    } else {
        out.line(format_args!(
            "{}{}",
            top.package,
            if args.reverse {
                " is required by:"
            } else {
                " requires:"
            }
        ))?;
        print(&mut out, &top.children, 1, args.reverse)?;
    }
    out.finish()
}
