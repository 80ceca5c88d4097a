//! Changing a root from its repositories: `install`, `update`,
//! `uninstall` and `full-sync`. Each is solved with the installed set and
//! committed as one generation, so one `rollback` undoes it.

use std::collections::HashSet;
use std::path::Path;

use hpkg_format::{Operator, Requirement, Version};
use state::Root;

use crate::cmd::root::{print_commit, reason, LayerArg};
use crate::error::{CliError, Result};
use crate::output::Out;
use crate::repo::apply::{self, Plan};
use crate::repo::index;
use crate::repo::solve::{self, Candidate, Request, Transaction};

/// Install packages from the repositories, with what they need.
///
/// Each NAME may carry a version constraint (`app>=1.2`, `lib:libz<2`); a
/// name matches a package name or anything a package provides. The request
/// is solved together with the installed packages (provides, version
/// operators, conflicts, repository priority); when nothing satisfies it,
/// the reason is printed. Downloads are checked against the SHA-256 of the
/// verified index before anything changes, and the whole change is one new
/// generation.
///
/// Example:
///
///   pkgctl -R /srv/root install app
///   pkgctl -R /srv/root install --dry-run --json 'app>=1.2'
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct InstallArgs {
    /// The layer new packages go to (default: system).
    #[arg(long, value_enum)]
    layer: Option<LayerArg>,
    /// Print what would change, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the plan as JSON: {"add": [...], "remove": [...]}.
    #[arg(long)]
    json: bool,
    /// What to install: NAME or NAME<OP>VERSION (OP: < <= = != >= >).
    #[arg(required = true, value_name = "NAME[OP VERSION]")]
    packages: Vec<String>,
}

/// Update installed packages to the newest the repositories offer.
///
/// Without NAME, every installed package. Dependencies are solved as for
/// install; new versions go to the layer of the packages they replace.
///
/// Example:
///
///   pkgctl -R /srv/root update
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct UpdateArgs {
    /// Print what would change, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the plan as JSON.
    #[arg(long)]
    json: bool,
    /// The packages to update (default: all).
    #[arg(value_name = "NAME")]
    packages: Vec<String>,
}

/// Remove installed packages.
///
/// Refused, naming them, when packages that stay still need one of them.
///
/// Example:
///
///   pkgctl -R /srv/root uninstall app
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct UninstallArgs {
    /// Print what would change, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the plan as JSON.
    #[arg(long)]
    json: bool,
    /// The packages to remove.
    #[arg(required = true, value_name = "NAME")]
    packages: Vec<String>,
}

/// Bring every installed package to what the repositories offer.
///
/// Every installed package found in a repository takes what the
/// repositories offer: the highest-priority repository's newest version,
/// even when that is older than the installed one (update never
/// downgrades); packages in no repository stay.
///
/// Example:
///
///   pkgctl -R /srv/root full-sync --dry-run
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct FullSyncArgs {
    /// Print what would change, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the plan as JSON.
    #[arg(long)]
    json: bool,
}

/// Parse `name`, `name>=1.2`, `name = 1.2` ...
pub fn parse_request(text: &str) -> std::result::Result<Requirement, String> {
    let at = text.find(['<', '>', '=', '!']);
    let Some(at) = at else {
        let name = text.trim();
        if name.is_empty() {
            return Err("an empty package name".into());
        }
        return Ok(Requirement {
            name: name.into(),
            operator: None,
            version: None,
        });
    };
    let name = text[..at].trim();
    let rest = &text[at..];
    let op_len = if rest.get(1..2) == Some("=") { 2 } else { 1 };
    let op_text = &rest[..op_len];
    let operator = match op_text {
        "=" | "==" => Operator::Equal,
        other => Operator::parse(other).ok_or_else(|| format!("{other:?} is not an operator"))?,
    };
    let version = Version::parse(rest[op_len..].trim())?;
    if name.is_empty() {
        return Err(format!("{text:?} has no package name"));
    }
    Ok(Requirement {
        name: name.into(),
        operator: Some(operator),
        version: Some(version),
    })
}

/// Print a plan (or its JSON) and, unless a dry run, commit it.
fn finish(
    root: &Root,
    path: &Path,
    tx: &Transaction,
    layer: Option<LayerArg>,
    repos: &[index::Available],
    dry_run: bool,
    json: bool,
) -> Result<()> {
    let plan = Plan::of(tx);
    if json || dry_run {
        let mut out = Out::new();
        if json {
            out.json_line(&plan)?;
        } else {
            for p in &plan.add {
                out.line(format_args!(
                    "+ {} {} ({})",
                    p.name,
                    p.version,
                    p.repository.as_deref().unwrap_or("")
                ))?;
            }
            for p in &plan.remove {
                out.line(format_args!("- {} {} ({})", p.name, p.version, p.file_name))?;
            }
            if tx.is_empty() {
                out.line("nothing to do")?;
            }
        }
        out.finish()?;
        if dry_run {
            return Ok(());
        }
    }
    if tx.is_empty() {
        if !json {
            let mut out = Out::new();
            out.line("nothing to do")?;
            out.finish()?;
        }
        return Ok(());
    }
    let layer = apply::target_layer(tx, layer.map(Into::into), path)?;
    let commit = apply::commit(root, path, tx, layer, repos, &reason())?;
    if json {
        crate::cmd::root::warn_all(&commit.warnings);
        return Ok(());
    }
    print_commit(&commit)
}

fn unsatisfiable(path: &Path, e: solve::Unsatisfiable) -> CliError {
    CliError::Unsatisfiable {
        root: path.to_path_buf(),
        explanation: e.0.trim_end().lines().map(str::to_string).collect(),
    }
}

/// Open the root, solve the request `make` derives from the installed
/// set against the accepted indexes, then print or commit the result.
fn solve_and_apply(
    path: &Path,
    layer: Option<LayerArg>,
    dry_run: bool,
    json: bool,
    make: impl FnOnce(&[Candidate]) -> Result<Request>,
) -> Result<()> {
    let root = crate::cmd::root::open(path)?;
    let repos = index::available(root.layout())?;
    let installed = apply::installed(&root, path)?;
    let request = make(&installed)?;
    let tx = solve::solve(installed, apply::candidates(&repos), request)
        .map_err(|e| unsatisfiable(path, e))?;
    finish(&root, path, &tx, layer, &repos, dry_run, json)
}

/// `pkgctl install`.
pub fn install(args: &InstallArgs, path: &Path) -> Result<()> {
    let mut wanted = Vec::new();
    for p in &args.packages {
        wanted.push(parse_request(p).map_err(|e| CliError::refused(path, format!("{p:?}: {e}")))?);
    }
    solve_and_apply(path, args.layer, args.dry_run, args.json, |_| {
        Ok(Request {
            install: wanted,
            ..Request::default()
        })
    })
}

/// `pkgctl update`.
pub fn update(args: &UpdateArgs, path: &Path) -> Result<()> {
    solve_and_apply(path, None, args.dry_run, args.json, |installed| {
        for name in &args.packages {
            if !installed.iter().any(|c| &c.info.name == name) {
                return Err(CliError::refused(path, format!("{name}: not installed")));
            }
        }
        Ok(Request {
            update: args.packages.iter().cloned().collect(),
            update_all: args.packages.is_empty(),
            ..Request::default()
        })
    })
}

/// `pkgctl full-sync`.
pub fn full_sync(args: &FullSyncArgs, path: &Path) -> Result<()> {
    solve_and_apply(path, None, args.dry_run, args.json, |_| {
        Ok(Request {
            update_all: true,
            allow_downgrade: true,
            ..Request::default()
        })
    })
}

/// `pkgctl uninstall`.
pub fn uninstall(args: &UninstallArgs, path: &Path) -> Result<()> {
    let root = crate::cmd::root::open(path)?;
    let installed = apply::installed(&root, path)?;
    let names: HashSet<&str> = args.packages.iter().map(String::as_str).collect();
    for n in &names {
        if !installed.iter().any(|c| c.info.name == *n) {
            return Err(CliError::refused(path, format!("{n}: not installed")));
        }
    }
    let (leaving, remaining): (Vec<Candidate>, Vec<Candidate>) = installed
        .into_iter()
        .partition(|c| names.contains(c.info.name.as_str()));
    let needed = solve::still_needed(&remaining, &leaving);
    if !needed.is_empty() {
        return Err(CliError::StillNeeded {
            root: path.to_path_buf(),
            needs: needed
                .iter()
                .map(|(by, req, what)| {
                    format!(
                        "{} is still needed by {} (requires {req})",
                        what.label(),
                        by.label()
                    )
                })
                .collect(),
        });
    }
    let tx = Transaction {
        add: Vec::new(),
        remove: leaving,
    };
    finish(&root, path, &tx, None, &[], args.dry_run, args.json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse() {
        let r = parse_request("app").unwrap();
        assert_eq!((r.name.as_str(), r.operator), ("app", None));
        for (text, op) in [
            ("app>=1.2", Operator::GreaterEqual),
            ("app >= 1.2", Operator::GreaterEqual),
            ("lib:libz<2", Operator::Less),
            ("app=1.2", Operator::Equal),
            ("app==1.2", Operator::Equal),
            ("app!=1.2", Operator::NotEqual),
            ("app>1.2", Operator::Greater),
            ("app<=1.2", Operator::LessEqual),
        ] {
            let r = parse_request(text).unwrap();
            assert_eq!(r.operator, Some(op), "{text}");
            assert!(r.name == "app" || r.name == "lib:libz", "{text}");
        }
        assert!(parse_request(">=1").is_err());
        assert!(parse_request("app>=").is_err());
        assert!(parse_request("").is_err());
    }
}
