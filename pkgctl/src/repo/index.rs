//! The client side of repository indexes: `refresh` fetches a repository's
//! index, checks it (signature with the key it was added with, name,
//! version never lower than the one accepted last, expiry, `repo.sha256`)
//! and only then replaces the accepted one; [`available`] gives every
//! accepted index for searching and solving.

use std::path::Path;
use std::sync::Arc;

use hpkg_format::Repository;
use serde::Serialize;
use state::repos::{self, AcceptedIndex, RepoConfig};
use state::Layout;

use crate::error::{CliError, Result};
use crate::output::warn;
use crate::repo::fetch::{sha256, url_error, Base, Fetcher};

/// What a refresh of one repository did.
#[derive(Debug, Clone, Serialize)]
pub struct Refreshed {
    /// Repository name.
    pub name: String,
    /// Version of the accepted index (`None`: insecure, unsigned).
    pub version: Option<u64>,
    /// Packages it lists.
    pub packages: usize,
    /// Whether the accepted index changed.
    pub changed: bool,
}

/// Refresh one repository. A refusal leaves the accepted index as it was.
pub fn refresh(layout: &Layout, fetcher: &Fetcher, config: &RepoConfig) -> Result<Refreshed> {
    let base = Base::parse(&config.url);
    let repo_url = base.join("repo");
    let bytes = fetcher
        .get(&base, "repo")?
        .ok_or_else(|| url_error(&repo_url, "no repository index there"))?;
    let previous = match repos::accepted(layout, config) {
        Ok(p) => p,
        Err(e) => {
            warn(format_args!(
                "{}: the accepted index no longer verifies and is ignored: {e}",
                config.name
            ));
            None
        }
    };
    let key = config.public_key(layout).map_err(CliError::State)?;
    let sig_text = match &key {
        Some(key) => {
            let sig_url = base.join("repo.minisig");
            let sig = fetcher.get(&base, "repo.minisig")?.ok_or_else(|| {
                url_error(
                    &sig_url,
                    "no signature, and the repository was added with a key",
                )
            })?;
            let sig = String::from_utf8(sig)
                .map_err(|_| url_error(&sig_url, "not a signature (not UTF-8)"))?;
            let stamp = repos::verify_index(key, &bytes, &sig, Path::new(&sig_url))
                .map_err(|e| url_error(&repo_url, refusal(&e)))?;
            let now = jiff::Timestamp::now().as_second();
            if stamp.expires <= now {
                return Err(url_error(
                    &repo_url,
                    format!(
                        "index version {} expired at {}; keeping the last good index",
                        stamp.version,
                        when(stamp.expires)
                    ),
                ));
            }
            if let Some(last) = previous.as_ref().and_then(|p| p.stamp.as_ref()) {
                if stamp.version < last.version {
                    return Err(url_error(
                        &repo_url,
                        format!(
                            "index version {} is older than version {} accepted before (a replayed index?); keeping the last good index",
                            stamp.version, last.version
                        ),
                    ));
                }
                if stamp.version == last.version && !same_file(previous.as_ref(), &bytes) {
                    return Err(url_error(
                        &repo_url,
                        format!("index version {} differs from the one accepted with that version; keeping the last good index", stamp.version),
                    ));
                }
            }
            Some((sig, stamp))
        }
        None => {
            warn(format_args!(
                "{}: repository added with --insecure: its index is NOT verified",
                config.name
            ));
            None
        }
    };
    let repository = Repository::from_source(Arc::new(bytes.clone()))
        .map_err(|e| url_error(&repo_url, format!("not a valid repository index: {e}")))?;
    if let Some((_, stamp)) = &sig_text {
        if stamp.name != repository.info.name {
            return Err(url_error(
                &repo_url,
                format!(
                    "the signature is for repository {:?} but the index is {:?}",
                    stamp.name, repository.info.name
                ),
            ));
        }
    }
    if let Some(sum) = fetcher.get(&base, "repo.sha256")? {
        let want = String::from_utf8_lossy(&sum).trim().to_ascii_lowercase();
        if want != sha256(&bytes) {
            return Err(url_error(
                &base.join("repo.sha256"),
                "does not match the index",
            ));
        }
    }
    let info = fetcher.get(&base, "repo.info").ok().flatten();
    let old_version = previous
        .as_ref()
        .and_then(|p| p.stamp.as_ref())
        .map(|s| s.version);
    let new_version = sig_text.as_ref().map(|(_, s)| s.version);
    // A new signature of the same index (a later expiry) is news too.
    let changed = !same_file(previous.as_ref(), &bytes) || old_version != new_version;
    if changed {
        repos::accept(
            layout,
            &config.name,
            &bytes,
            sig_text.as_ref().map(|(s, _)| s.as_str()),
            info.as_deref(),
        )
        .map_err(CliError::State)?;
    }
    Ok(Refreshed {
        name: config.name.clone(),
        version: sig_text.map(|(_, s)| s.version),
        packages: repository.packages.len(),
        changed,
    })
}

/// Why a signature was refused, without the temporary path it names.
fn refusal(e: &state::Error) -> String {
    match e {
        state::Error::Signature { reason, .. } => {
            format!("refused: {reason}; keeping the last good index")
        }
        other => format!("refused: {other}; keeping the last good index"),
    }
}

fn same_file(previous: Option<&AcceptedIndex>, bytes: &[u8]) -> bool {
    previous
        .and_then(|p| std::fs::read(&p.path).ok())
        .is_some_and(|old| old == bytes)
}

/// A time as `2026-01-02T03:04:05Z`.
pub fn when(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| format!("@{secs}"))
}

/// A repository with its accepted index.
#[derive(Debug, Clone)]
pub struct Available {
    /// Its settings.
    pub config: RepoConfig,
    /// The accepted index (signature checked again).
    pub index: AcceptedIndex,
}

/// Every configured repository that has an accepted index, highest priority
/// first. Those without one (never refreshed), whose cached index no longer
/// verifies, or whose index has expired are left out with a warning.
pub fn available(layout: &Layout) -> Result<Vec<Available>> {
    let mut out = Vec::new();
    for config in repos::list(layout).map_err(CliError::State)? {
        match repos::accepted(layout, &config) {
            Ok(Some(index)) => {
                if let Some(s) = &index.stamp {
                    // As apt does with an expired Release file: a stale
                    // index could hide security updates.
                    if s.expires <= jiff::Timestamp::now().as_second() {
                        warn(format_args!(
                            "{}: the accepted index expired at {}; its packages are not offered until pkgctl refresh gets a newer one",
                            config.name,
                            when(s.expires)
                        ));
                        continue;
                    }
                }
                out.push(Available { config, index })
            }
            Ok(None) => warn(format_args!(
                "{}: no index yet; run pkgctl refresh",
                config.name
            )),
            Err(e) => warn(format_args!("{}: cached index ignored: {e}", config.name)),
        }
    }
    Ok(out)
}
