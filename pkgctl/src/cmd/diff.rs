//! `pkgctl diff`: packages added, removed and changed between two
//! generations, and the one-line summary `generations` shows for each.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use state::{ActivePackage, Generation, Layer, Root};

use crate::cmd::root::open;
use crate::error::{CliError, Result};
use crate::output::Out;

/// Show what changed between two generations.
///
/// Without arguments: from the parent of the current generation to the
/// current one; with A: from A to the current one; with A and B: from A to
/// B. A package is identified by its layer and name; `~` marks one whose
/// version or content changed.
///
/// With --json, one object:
///
///   {"from": 3, "to": 4,
///    "added":   [{"layer", "name", "version", "file_name"}],
///    "removed": [{"layer", "name", "version", "file_name"}],
///    "changed": [{"layer", "name", "from", "to", "file_name"}]}
///
/// Example:
///
///   pkgctl -R /srv/root diff 3 4
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The older generation.
    a: Option<u64>,
    /// The newer generation (default: the current one).
    b: Option<u64>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// One package of a diff.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Entry {
    /// Its layer.
    pub layer: Layer,
    /// Package name.
    pub name: String,
    /// Version.
    pub version: String,
    /// File name.
    pub file_name: String,
}

/// A package present in both, with another version or content.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Changed {
    /// Its layer.
    pub layer: Layer,
    /// Package name.
    pub name: String,
    /// Version before.
    pub from: String,
    /// Version after.
    pub to: String,
    /// File name after.
    pub file_name: String,
}

/// What changed between two generations.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Diff {
    /// Generation compared from.
    pub from: u64,
    /// Generation compared to.
    pub to: u64,
    /// Packages only in `to`.
    pub added: Vec<Entry>,
    /// Packages only in `from`.
    pub removed: Vec<Entry>,
    /// Packages in both that differ.
    pub changed: Vec<Changed>,
}

impl Diff {
    /// `+2 -1 ~1`, or `=` when nothing changed.
    pub fn summary(&self) -> String {
        if self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty() {
            return "=".into();
        }
        format!(
            "+{} -{} ~{}",
            self.added.len(),
            self.removed.len(),
            self.changed.len()
        )
    }
}

/// A package's name and version, read from it (or guessed from its file
/// name when it cannot be read any more).
fn entry(root: &Root, p: &ActivePackage) -> (Entry, state::Digest) {
    let (name, version) = match root.package_info(p) {
        Ok(info) => (info.name.clone(), info.version.to_string()),
        Err(_) => {
            let stem = p.file_name.trim_end_matches(".hpkg");
            (stem.to_string(), "?".into())
        }
    };
    (
        Entry {
            layer: p.layer,
            name,
            version,
            file_name: p.file_name.clone(),
        },
        p.hash,
    )
}

/// The diff from generation `a` to `b`.
pub fn diff(root: &Root, a: &Generation, b: &Generation) -> Diff {
    let index = |g: &Generation| -> BTreeMap<(Layer, String), (Entry, state::Digest)> {
        g.packages
            .iter()
            .map(|p| {
                let (e, h) = entry(root, p);
                ((e.layer, e.name.clone()), (e, h))
            })
            .collect()
    };
    let (old, new) = (index(a), index(b));
    let mut d = Diff {
        from: a.number,
        to: b.number,
        ..Diff::default()
    };
    for (key, (e, h)) in &new {
        match old.get(key) {
            None => d.added.push(e.clone()),
            Some((o, oh)) if oh != h || o.version != e.version => d.changed.push(Changed {
                layer: e.layer,
                name: e.name.clone(),
                from: o.version.clone(),
                to: e.version.clone(),
                file_name: e.file_name.clone(),
            }),
            Some(_) => {}
        }
    }
    for (key, (e, _)) in &old {
        if !new.contains_key(key) {
            d.removed.push(e.clone());
        }
    }
    d
}

/// `pkgctl diff`.
pub fn run(args: &Args, path: &Path) -> Result<()> {
    let root = open(path)?;
    let state = |e| CliError::state(path, e);
    let current = root.current().map_err(state)?.generation;
    let (a, b) = match (args.a, args.b) {
        (Some(a), Some(b)) => (
            root.generation(a).map_err(state)?,
            root.generation(b).map_err(state)?,
        ),
        (Some(a), None) => (root.generation(a).map_err(state)?, current),
        (None, _) => {
            let parent = current.parent.ok_or_else(|| {
                CliError::refused(
                    path,
                    format!(
                        "generation {} has no parent to compare with",
                        current.number
                    ),
                )
            })?;
            (root.generation(parent).map_err(state)?, current)
        }
    };
    let d = diff(&root, &a, &b);
    let mut out = Out::new();
    if args.json {
        out.json_line(&d)?;
        return out.finish();
    }
    out.line(format_args!(
        "generation {} -> {}: {}",
        d.from,
        d.to,
        d.summary()
    ))?;
    for e in &d.added {
        out.line(format_args!("+ {}/{} {}", e.layer, e.name, e.version))?;
    }
    for e in &d.removed {
        out.line(format_args!("- {}/{} {}", e.layer, e.name, e.version))?;
    }
    for c in &d.changed {
        out.line(format_args!(
            "~ {}/{} {} -> {}",
            c.layer, c.name, c.from, c.to
        ))?;
    }
    out.finish()
}
