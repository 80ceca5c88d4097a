//! From a solved [`Transaction`] to one new generation: the candidates of
//! the root and of the repositories, the downloads (each checked against
//! its verified SHA-256 before anything changes), and one
//! [`state::Root::change`].

use std::path::{Path, PathBuf};

use serde::Serialize;
use state::{Commit, Layer, Root};

use crate::error::{CliError, Result};
use crate::repo::fetch::{Base, Fetcher};
use crate::repo::index::Available;
use crate::repo::solve::{Candidate, Origin, Transaction};

/// The active packages of the root as candidates, in generation order.
pub fn installed(root: &Root, path: &Path) -> Result<Vec<Candidate>> {
    let loaded = root.current().map_err(|e| CliError::state(path, e))?;
    let mut out = Vec::new();
    for p in loaded.generation.packages {
        let info = root
            .package_info(&p)
            .map_err(|e| CliError::state(path, e))?;
        out.push(Candidate {
            info,
            origin: Origin::Installed(p),
        });
    }
    Ok(out)
}

/// Every package of every accepted index, as candidates.
pub fn candidates(repos: &[Available]) -> Vec<Candidate> {
    let mut out = Vec::new();
    for a in repos {
        for p in &a.index.repository.packages {
            out.push(Candidate {
                info: std::sync::Arc::new(p.clone()),
                origin: Origin::Repo {
                    repo: a.config.name.clone(),
                    priority: a.config.priority,
                },
            });
        }
    }
    out
}

/// One line of a planned change, for `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Planned {
    /// Package name.
    pub name: String,
    /// Version.
    pub version: String,
    /// The repository it comes from (added packages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Its layer (removed packages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer: Option<Layer>,
    /// Its file name.
    pub file_name: String,
}

/// A transaction as `{"add": [Planned...], "remove": [Planned...]}`.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Packages to add.
    pub add: Vec<Planned>,
    /// Packages to remove.
    pub remove: Vec<Planned>,
}

fn planned(c: &Candidate) -> Planned {
    let (repository, layer, file_name) = match &c.origin {
        Origin::Installed(p) => (None, Some(p.layer), p.file_name.clone()),
        Origin::Repo { repo, .. } => (Some(repo.clone()), None, c.info.file_name()),
    };
    Planned {
        name: c.info.name.clone(),
        version: c.info.version.to_string(),
        repository,
        layer,
        file_name,
    }
}

impl Plan {
    /// The plan of `tx`.
    pub fn of(tx: &Transaction) -> Plan {
        Plan {
            add: tx.add.iter().map(planned).collect(),
            remove: tx.remove.iter().map(planned).collect(),
        }
    }
}

/// The layer new packages go to: `wanted`, else the one layer of the
/// packages they replace, else `system`. Replacing packages of several
/// layers at once without `--layer` is refused.
pub fn target_layer(tx: &Transaction, wanted: Option<Layer>, path: &Path) -> Result<Layer> {
    if let Some(l) = wanted {
        return Ok(l);
    }
    let mut layers: Vec<Layer> = tx
        .remove
        .iter()
        .filter_map(|c| match &c.origin {
            Origin::Installed(p) => Some(p.layer),
            Origin::Repo { .. } => None,
        })
        .collect();
    layers.sort();
    layers.dedup();
    match layers.as_slice() {
        [] => Ok(Layer::System),
        [one] => Ok(*one),
        many => {
            Err(CliError::refused(
                path,
                format!(
                "the change replaces packages of the {} layers; run it once per layer with --layer",
                many.iter().map(|l| l.name()).collect::<Vec<_>>().join(" and ")
            ),
            ))
        }
    }
}

/// Download every added package into the root's cache (checked against the
/// index's SHA-256), then commit the whole change as one generation; the
/// downloads leave the cache once committed.
pub fn commit(
    root: &Root,
    path: &Path,
    tx: &Transaction,
    layer: Layer,
    repos: &[Available],
    reason: &str,
) -> Result<Commit> {
    let fetcher = Fetcher::new();
    let mut files: Vec<PathBuf> = Vec::new();
    for c in &tx.add {
        let Origin::Repo { repo, .. } = &c.origin else {
            continue;
        };
        let available = repos
            .iter()
            .find(|a| &a.config.name == repo)
            .ok_or_else(|| CliError::refused(path, format!("repository {repo} vanished")))?;
        let base = Base::parse(&available.config.url);
        let file_name = c.info.file_name();
        let sha = c.info.checksum.as_deref().ok_or_else(|| {
            CliError::refused(
                &available.index.path,
                format!("{} has no checksum in the index", c.label()),
            )
        })?;
        let dest = root.layout().download_cache().join(sha).join(&file_name);
        fetcher.download(&base, &format!("packages/{file_name}"), &dest, sha)?;
        files.push(dest);
    }
    let remove: Vec<state::ActivePackage> = tx
        .remove
        .iter()
        .filter_map(|c| match &c.origin {
            Origin::Installed(p) => Some(p.clone()),
            Origin::Repo { .. } => None,
        })
        .collect();
    let commit = root
        .change(&remove, &files, layer, false, reason)
        .map_err(|e| CliError::state(path, e))?;
    // The packages directory holds its own copy now; a failed commit keeps
    // the verified downloads for the next try.
    for f in &files {
        let _ = std::fs::remove_file(f);
        if let Some(dir) = f.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
    Ok(commit)
}
