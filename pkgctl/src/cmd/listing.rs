//! The root commands that only look: `list` (the active packages),
//! `generations` and `verify`.

use std::path::Path;

use serde::Serialize;
use state::{ActivePackage, VerifyProblem};

use crate::cmd::root::{open, warn_all};
use crate::error::{CliError, Result};
use crate::output::Out;

/// List the active packages of the generation in force.
///
/// One line per package in activation order (a later package wins a path
/// inside its layer; user wins over common over system):
///
///   user    hello_user    1.0-1  hello_user-1.0-1-any.hpkg
///
/// With --json, prints one JSON object (stable; new keys may be added):
///
///   {
///     "generation": 4,
///     "packages": [
///       {"layer": "system" | "common" | "user",
///        "file_name": "hello_user-1.0-1-any.hpkg",
///        "size": 1234,                     bytes
///        "hash": "<64 lowercase hex digits of blake3>",
///        "name": "hello_user" or null,     null: metadata unreadable
///        "version": "1.0-1" or null,       the package's (Haiku) version
///        "display_version": "1.0-1" or null}
///                                          as the text shows it: the Debian
///                                          version of a package imported
///                                          from Debian (2.36-9+deb12u4)
///     ],
///     "warnings": ["..."]                  also printed on standard error
///   }
///
/// Example:
///
///   pkgctl -R /srv/root list
///   pkgctl -R /srv/root list --json | jq -r '.packages[].name'
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct ListArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// List every kept generation, oldest first; `*` marks the one in force.
///
///   * 4  parent 3     2026-01-02T03:04:05Z  pinned  2 package(s)  +1 -0 ~1     pkgctl add ...
///
/// `+1 -0 ~1` sums up the change from the parent (packages added, removed,
/// changed; `=` none; `?` when the parent was collected); `pkgctl diff`
/// shows it in full.
///
/// With --json, prints one JSON object (stable; new keys may be added):
///
///   {
///     "current": 4,
///     "generations": [
///       {"number": 4, "parent": 3 or null, "time": "2026-01-02T03:04:05Z",
///        "reason": "pkgctl ...", "pinned": false,
///        "packages": [{"layer", "file_name", "size", "hash"}]}
///     ],
///     "warnings": ["..."]                  also printed on standard error
///   }
///
/// Example:
///
///   pkgctl -R /srv/root generations
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct GenerationsArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Check every package of every kept generation against its size and hash.
///
/// Each package must be in its packages directory or in the store with the
/// content recorded in its generation. Prints each problem on its own line
/// (on standard output) and exits with status 1 if there is any.
///
/// With --json, prints one JSON object (stable; new keys may be added):
///
///   {"problems": [
///     {"kind": "missing", "generation": 3, "package": {"layer", "file_name", "size", "hash"}}
///     {"kind": "mismatch", "generation": 3, "package": {..}, "path": "...",
///      "size": 12, "hash": "<blake3 found>"}
///     {"kind": "corrupt-list", "path": "...", "message": "..."}
///     {"kind": "warning", "message": "..."}
///   ]}
///
/// Example:
///
///   pkgctl -R /srv/root verify
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct VerifyArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// One line of `list --json`.
#[derive(Debug, Serialize)]
struct Listed<'a> {
    #[serde(flatten)]
    package: &'a ActivePackage,
    name: Option<String>,
    version: Option<String>,
    display_version: Option<String>,
}

/// `list --json`.
#[derive(Debug, Serialize)]
struct ListJson<'a> {
    generation: u64,
    packages: Vec<Listed<'a>>,
    warnings: &'a [String],
}

/// `verify --json`.
#[derive(Debug, Serialize)]
struct VerifyJson<'a> {
    problems: &'a [VerifyProblem],
}

/// `pkgctl list`.
pub fn list(args: &ListArgs, path: &Path) -> Result<()> {
    let root = open(path)?;
    let loaded = root.current().map_err(|e| CliError::state(path, e))?;
    let mut warnings = loaded.warnings.clone();
    let mut listed = Vec::new();
    for p in &loaded.generation.packages {
        let info = root.package_info(p).map_err(|e| {
            warnings.push(format!("{}: metadata unreadable: {e}", p.display_name()));
        });
        let info = info.as_deref().ok();
        listed.push(Listed {
            package: p,
            name: info.map(|i| i.name.clone()),
            version: info.map(|i| i.version.to_string()),
            display_version: info.map(state::display::display_version),
        });
    }
    warn_all(&warnings);
    let mut out = Out::new();
    if args.json {
        out.json_pretty(&ListJson {
            generation: loaded.generation.number,
            packages: listed,
            warnings: &warnings,
        })?;
    } else {
        for l in &listed {
            out.line(format_args!(
                "{:<7} {:<20} {:<12} {}",
                l.package.layer.name(),
                l.name.as_deref().unwrap_or("?"),
                l.display_version.as_deref().unwrap_or("?"),
                l.package.file_name
            ))?;
        }
    }
    out.finish()
}

/// `pkgctl generations`.
pub fn generations(args: &GenerationsArgs, path: &Path) -> Result<()> {
    let root = open(path)?;
    let list = root.generations().map_err(|e| CliError::state(path, e))?;
    warn_all(&list.warnings);
    let mut out = Out::new();
    if args.json {
        out.json_pretty(&list)?;
    } else {
        for g in &list.generations {
            let parent = g
                .parent
                .map(|p| format!("parent {p}"))
                .unwrap_or_else(|| "no parent".into());
            // What changed since the parent (`?` when it was collected).
            let change = match g.parent {
                None => crate::cmd::diff::diff(
                    &root,
                    &state::Generation {
                        packages: Vec::new(),
                        ..g.clone()
                    },
                    g,
                )
                .summary(),
                Some(p) => match list.generations.iter().find(|o| o.number == p) {
                    Some(parent) => crate::cmd::diff::diff(&root, parent, g).summary(),
                    None => "?".into(),
                },
            };
            out.line(format_args!(
                "{} {:>4}  {:<10}  {}  {:<6}  {} package(s)  {:<11}  {}",
                if g.number == list.current { '*' } else { ' ' },
                g.number,
                parent,
                state::active_list::format_time(g.time),
                if g.pinned { "pinned" } else { "" },
                g.packages.len(),
                change,
                g.reason
            ))?;
        }
    }
    out.finish()
}

/// `pkgctl verify`.
pub fn verify(args: &VerifyArgs, path: &Path) -> Result<()> {
    let root = open(path)?;
    let problems = root.verify().map_err(|e| CliError::state(path, e))?;
    let mut out = Out::new();
    if args.json {
        out.json_pretty(&VerifyJson {
            problems: &problems,
        })?;
    } else if problems.is_empty() {
        out.line("verify: every package of every kept generation is intact")?;
    } else {
        for p in &problems {
            out.line(p)?;
        }
    }
    out.finish()?;
    if problems.is_empty() {
        return Ok(());
    }
    Err(CliError::refused(
        path,
        format!("verify found {} problem(s)", problems.len()),
    ))
}
