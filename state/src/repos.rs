//! Configured repositories ([`RepoConfig`], one file each under
//! `ROOT/system/settings/repositories/`) and the last index accepted from
//! each ([`AcceptedIndex`], under `ROOT/system/cache/repositories/<name>/`).
//!
//! A repository file is `key = value` lines (`#` starts a comment):
//!
//! ```text
//! url = https://example.org/repo     where repo, repo.minisig ... live
//! key = RWQ...                       minisign public key (base64 line)
//! insecure = yes                     instead of key: no signature checked
//! priority = 0                       higher wins between repositories
//! ```
//!
//! The accepted index is kept as fetched (`repo`, `repo.minisig`,
//! `repo.info`); its signature is checked again whenever it is read, so a
//! file changed in the cache is never trusted.

use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hpkg_format::Repository;
use serde::Serialize;

use crate::error::{io_at, Error, Result};
use crate::fsutil::{exists, list_dir, write_atomic, AtomicPoints};
use crate::layout::Layout;
use crate::signing::{IndexStamp, PublicKey};

/// Largest repository settings file read, in bytes.
const MAX_SETTINGS: usize = 64 * 1024;

/// Settings and cache files are not failpoint targets.
const NO_POINTS: AtomicPoints = AtomicPoints {
    fsync: "",
    rename: "",
    dirsync: "",
};

/// One configured repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepoConfig {
    /// Local name (the file name of its settings).
    pub name: String,
    /// Base URL (`http://`, `https://`, `file://`) or a directory path.
    pub url: String,
    /// The minisign public key (base64 line); `None` for an insecure one.
    pub key: Option<String>,
    /// Priority: a package found in several repositories comes from the
    /// one with the highest.
    pub priority: i32,
}

/// Whether `name` can name a repository: ASCII letters, digits, `.`, `_`
/// and `-`, not starting with `.`, at most 64 bytes.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn settings_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Settings {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

impl RepoConfig {
    /// Parse the settings file text of repository `name` read from `path`.
    pub fn parse(name: &str, text: &str, path: &Path) -> Result<RepoConfig> {
        let mut url = None;
        let mut key = None;
        let mut insecure = false;
        let mut priority = 0;
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let at = |reason: String| settings_error(path, format!("line {}: {reason}", n + 1));
            let (k, v) = line
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| at(format!("expected `key = value`, found {line:?}")))?;
            match k {
                "url" => url = Some(v.to_string()),
                "key" => key = Some(v.to_string()),
                "insecure" => {
                    insecure = parse_bool(v).ok_or_else(|| at(format!("{v:?} is not yes or no")))?
                }
                "priority" => {
                    priority = v
                        .parse()
                        .map_err(|_| at(format!("priority {v:?} is not an integer")))?
                }
                other => return Err(at(format!("unknown setting {other:?}"))),
            }
        }
        let url = url.ok_or_else(|| settings_error(path, "no url"))?;
        match (&key, insecure) {
            (None, false) => return Err(settings_error(path, "no key, and not marked insecure")),
            (Some(_), true) => return Err(settings_error(path, "both a key and insecure")),
            (Some(k), false) => {
                PublicKey::parse(k, path)?;
            }
            (None, true) => {}
        }
        Ok(RepoConfig {
            name: name.to_string(),
            url,
            key,
            priority,
        })
    }

    /// The settings file text.
    pub fn to_text(&self) -> String {
        let mut s = format!("# repository {}\nurl = {}\n", self.name, self.url);
        match &self.key {
            Some(k) => s.push_str(&format!("key = {k}\n")),
            None => s.push_str("insecure = yes\n"),
        }
        s.push_str(&format!("priority = {}\n", self.priority));
        s
    }

    /// Its public key, `None` for an insecure repository.
    pub fn public_key(&self, layout: &Layout) -> Result<Option<PublicKey>> {
        self.key
            .as_deref()
            .map(|k| PublicKey::parse(k, &layout.repository_file(&self.name)))
            .transpose()
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "yes" | "true" | "1" => Some(true),
        "no" | "false" | "0" => Some(false),
        _ => None,
    }
}

/// Every configured repository, highest priority first, then by name.
pub fn list(layout: &Layout) -> Result<Vec<RepoConfig>> {
    let dir = layout.repositories_dir();
    if !exists(&dir)? {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (name, _) in list_dir(&dir)? {
        if valid_name(&name) {
            out.push(load(layout, &name)?);
        }
    }
    out.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.name.cmp(&b.name)));
    Ok(out)
}

/// The repository called `name`.
pub fn load(layout: &Layout, name: &str) -> Result<RepoConfig> {
    let path = layout.repository_file(name);
    if !valid_name(name) {
        return Err(settings_error(&path, "not a valid repository name"));
    }
    let bytes = crate::fsutil::read_limited(&path, MAX_SETTINGS as u64)?;
    let text = String::from_utf8(bytes).map_err(|_| settings_error(&path, "not UTF-8"))?;
    RepoConfig::parse(name, &text, &path)
}

/// Write the settings of `config` (creating the directories).
pub fn save(layout: &Layout, config: &RepoConfig) -> Result<()> {
    let path = layout.repository_file(&config.name);
    if !valid_name(&config.name) {
        return Err(settings_error(
            &path,
            "not a valid repository name (letters, digits, . _ -)",
        ));
    }
    let dir = layout.repositories_dir();
    fs::create_dir_all(&dir).map_err(io_at(&dir, "create"))?;
    write_atomic(&path, config.to_text().as_bytes(), NO_POINTS)
}

/// Forget repository `name`: its settings and its cached index.
pub fn remove(layout: &Layout, name: &str) -> Result<()> {
    let path = layout.repository_file(name);
    if !valid_name(name) || !exists(&path)? {
        return Err(settings_error(&path, "no such repository"));
    }
    fs::remove_file(&path).map_err(io_at(&path, "remove"))?;
    let cache = layout.repository_cache(name);
    if exists(&cache)? {
        fs::remove_dir_all(&cache).map_err(io_at(&cache, "remove"))?;
    }
    Ok(())
}

/// An index whose signature verifies with `key` (read from `sig_path`):
/// the stamp of its trusted comment. The comment must be one written by
/// `pkgctl repo create`.
pub fn verify_index(
    key: &PublicKey,
    index: &[u8],
    sig: &str,
    sig_path: &Path,
) -> Result<IndexStamp> {
    let comment = key.verify(Cursor::new(index), sig, sig_path)?;
    IndexStamp::parse(&comment).ok_or_else(|| Error::Signature {
        path: sig_path.to_path_buf(),
        reason: format!("trusted comment {comment:?} has no name, version and expiry"),
    })
}

/// The last index accepted from a repository.
#[derive(Debug, Clone)]
pub struct AcceptedIndex {
    /// The index.
    pub repository: Arc<Repository>,
    /// Its signature's stamp, checked again now (`None`: insecure repository).
    pub stamp: Option<IndexStamp>,
    /// Where the index file is.
    pub path: PathBuf,
}

/// The index accepted from `config`, if any. Its signature is checked again
/// with the repository's key (a cache file changed since is an error).
pub fn accepted(layout: &Layout, config: &RepoConfig) -> Result<Option<AcceptedIndex>> {
    let dir = layout.repository_cache(&config.name);
    let path = dir.join("repo");
    if !exists(&path)? {
        return Ok(None);
    }
    let bytes = fs::read(&path).map_err(io_at(&path, "read"))?;
    let stamp = match config.public_key(layout)? {
        Some(key) => {
            let sig_path = dir.join("repo.minisig");
            let sig = fs::read_to_string(&sig_path).map_err(io_at(&sig_path, "read"))?;
            Some(verify_index(&key, &bytes, &sig, &sig_path)?)
        }
        None => None,
    };
    let repository =
        Repository::from_source(Arc::new(bytes)).map_err(|source| Error::InvalidPackage {
            path: path.clone(),
            source,
        })?;
    Ok(Some(AcceptedIndex {
        repository: Arc::new(repository),
        stamp,
        path,
    }))
}

/// Keep a newly accepted index of repository `name`: `repo`, then its
/// signature (if any) and `repo.info` (if any), each replaced atomically.
pub fn accept(
    layout: &Layout,
    name: &str,
    index: &[u8],
    sig: Option<&str>,
    info: Option<&[u8]>,
) -> Result<()> {
    let dir = layout.repository_cache(name);
    fs::create_dir_all(&dir).map_err(io_at(&dir, "create"))?;
    write_atomic(&dir.join("repo"), index, NO_POINTS)?;
    let sig_path = dir.join("repo.minisig");
    match sig {
        Some(s) => write_atomic(&sig_path, s.as_bytes(), NO_POINTS)?,
        None => {
            crate::fsutil::remove_if_exists(&sig_path)?;
        }
    }
    if let Some(i) = info {
        write_atomic(&dir.join("repo.info"), i, NO_POINTS)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_refuse_nonsense() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        let keys = crate::signing::generate(crate::signing::Protection::Unencrypted, "k").unwrap();
        let key = PublicKey::parse(&keys.public, Path::new("k.pub")).unwrap();
        let secure = RepoConfig {
            name: "main".into(),
            url: "http://127.0.0.1:1/repo".into(),
            key: Some(key.to_base64()),
            priority: 2,
        };
        let insecure = RepoConfig {
            name: "local".into(),
            url: "/srv/repo".into(),
            key: None,
            priority: 0,
        };
        save(&layout, &secure).unwrap();
        save(&layout, &insecure).unwrap();
        assert_eq!(list(&layout).unwrap(), vec![secure.clone(), insecure]);
        remove(&layout, "local").unwrap();
        assert_eq!(list(&layout).unwrap(), vec![secure]);
        assert!(remove(&layout, "local").is_err());
        let p = Path::new("x");
        for bad in [
            "url = u\n",
            "url = u\nkey = nonsense\n",
            "url = u\ninsecure = maybe\n",
            "url = u\ninsecure = yes\npriority = high\n",
            "insecure = yes\n",
            "url = u\ninsecure = yes\ncolour = blue\n",
        ] {
            assert!(RepoConfig::parse("x", bad, p).is_err(), "{bad}");
        }
        assert!(!valid_name("../x") && !valid_name(".hidden") && valid_name("main-2.x"));
    }
}
