//! Where everything lives under a package root, the three [`Layer`]s, and the
//! rules for package file names.
//!
//! ```text
//! ROOT/
//!   system/packages/*.hpkg   common/packages/*.hpkg   user/packages/*.hpkg
//!   system/state/
//!     active.list            generations/<N>.list     store/<blake3>.hpkg
//!     blocked-entries        lock                     journal
//!     mounts/<pid>-<n>.mount live mounts (see `crate::mounts`)
//!     index/<blake3>.idx     index images of packages (see `crate::plan::index_cache`)
//!   data/
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;

use crate::digest::Digest;

/// A layer of packages. Higher layers win conflicts: `User` > `Common` > `System`
/// (the derived order is that priority, lowest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// The base system (lowest).
    System,
    /// Shared optional packages.
    Common,
    /// Per-user packages and overrides (highest).
    User,
}

impl Layer {
    /// All layers, lowest first.
    pub const ALL: [Layer; 3] = [Layer::System, Layer::Common, Layer::User];

    /// The layer's name as written in lists, paths and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Layer::System => "system",
            Layer::Common => "common",
            Layer::User => "user",
        }
    }

    /// Parse a layer name (`system`, `common`, `user`).
    pub fn parse(text: &str) -> Option<Layer> {
        Layer::ALL.into_iter().find(|l| l.name() == text)
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Layer {
    type Err = String;

    fn from_str(s: &str) -> Result<Layer, String> {
        Layer::parse(s).ok_or_else(|| format!("unknown layer {s:?} (system, common or user)"))
    }
}

/// Paths of a package root. Pure path arithmetic: nothing is touched on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

/// Name of the active list inside the state directory.
pub const ACTIVE_LIST: &str = "active.list";
/// Name of the lock file inside the state directory.
pub const LOCK: &str = "lock";
/// Name of the transaction journal inside the state directory.
pub const JOURNAL: &str = "journal";
/// Name of the blocked-entries file inside the state directory.
pub const BLOCKED_ENTRIES: &str = "blocked-entries";
/// The extension of an index image in the index directory.
pub const INDEX_EXTENSION: &str = ".idx";
/// The extension every package file name carries.
pub const PACKAGE_EXTENSION: &str = ".hpkg";
/// Longest package file name accepted, in bytes (Linux `NAME_MAX`).
pub const MAX_FILE_NAME: usize = 255;

impl Layout {
    /// The layout of the root at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Layout {
        Layout { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `ROOT/<layer>/packages`.
    pub fn packages_dir(&self, layer: Layer) -> PathBuf {
        self.root.join(layer.name()).join("packages")
    }

    /// `ROOT/<layer>/packages/<file_name>`.
    pub fn package_file(&self, layer: Layer, file_name: &str) -> PathBuf {
        self.packages_dir(layer).join(file_name)
    }

    /// `ROOT/system/state`.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join("system").join("state")
    }

    /// `ROOT/system/state/active.list`.
    pub fn active_list(&self) -> PathBuf {
        self.state_dir().join(ACTIVE_LIST)
    }

    /// `ROOT/system/state/generations`.
    pub fn generations_dir(&self) -> PathBuf {
        self.state_dir().join("generations")
    }

    /// `ROOT/system/state/generations/<n>.list`.
    pub fn generation_file(&self, n: u64) -> PathBuf {
        self.generations_dir().join(format!("{n}.list"))
    }

    /// `ROOT/system/state/store`.
    pub fn store_dir(&self) -> PathBuf {
        self.state_dir().join("store")
    }

    /// `ROOT/system/state/store/<hex>.hpkg`.
    pub fn store_file(&self, hash: &Digest) -> PathBuf {
        self.store_dir()
            .join(format!("{}{PACKAGE_EXTENSION}", hash.to_hex()))
    }

    /// `ROOT/system/state/mounts`: one registration per live mount
    /// (see [`crate::mounts`]).
    pub fn mounts_dir(&self) -> PathBuf {
        self.state_dir().join("mounts")
    }

    /// `ROOT/system/state/index`: one index image per package, named by the
    /// package's blake3 (see [`crate::plan::index_cache`]).
    pub fn index_dir(&self) -> PathBuf {
        self.state_dir().join("index")
    }

    /// `ROOT/system/state/index/<hex>.idx`.
    pub fn index_file(&self, hash: &Digest) -> PathBuf {
        self.index_dir()
            .join(format!("{}{INDEX_EXTENSION}", hash.to_hex()))
    }

    /// `ROOT/system/state/blocked-entries`.
    pub fn blocked_entries(&self) -> PathBuf {
        self.state_dir().join(BLOCKED_ENTRIES)
    }

    /// `ROOT/system/state/lock`.
    pub fn lock_file(&self) -> PathBuf {
        self.state_dir().join(LOCK)
    }

    /// `ROOT/system/state/journal`: the intent record of an unfinished transaction.
    pub fn journal(&self) -> PathBuf {
        self.state_dir().join(JOURNAL)
    }

    /// `ROOT/data`.
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// `ROOT/system/settings`: what the root's administrator configures.
    pub fn settings_dir(&self) -> PathBuf {
        self.root.join("system").join("settings")
    }

    /// `ROOT/system/settings/policy`: the trust policy of each layer
    /// (format: [`crate::trust`]).
    pub fn policy_file(&self) -> PathBuf {
        self.settings_dir().join("policy")
    }

    /// `ROOT/system/settings/trust`: the public keys (`*.pub`) whose
    /// detached signatures vouch for a package.
    pub fn trust_dir(&self) -> PathBuf {
        self.settings_dir().join("trust")
    }

    /// `ROOT/system/settings/repositories`: one file per configured
    /// repository (format: [`crate::repos`]).
    pub fn repositories_dir(&self) -> PathBuf {
        self.settings_dir().join("repositories")
    }

    /// `ROOT/system/settings/repositories/<name>`.
    pub fn repository_file(&self, name: &str) -> PathBuf {
        self.repositories_dir().join(name)
    }

    /// `ROOT/system/cache`: what can be fetched again.
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("system").join("cache")
    }

    /// `ROOT/system/cache/repositories/<name>`: the last accepted index of a
    /// repository (`repo`, `repo.minisig`, `repo.info`).
    pub fn repository_cache(&self, name: &str) -> PathBuf {
        self.cache_dir().join("repositories").join(name)
    }

    /// `ROOT/system/cache/packages`: downloads, as
    /// `<sha256>/<file>.hpkg` (and `<file>.hpkg.part` while partial).
    pub fn download_cache(&self) -> PathBuf {
        self.cache_dir().join("packages")
    }

    /// Every directory `init` creates, parents first.
    pub fn directories(&self) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        for layer in Layer::ALL {
            dirs.push(self.root.join(layer.name()));
            dirs.push(self.packages_dir(layer));
        }
        dirs.push(self.state_dir());
        dirs.push(self.generations_dir());
        dirs.push(self.store_dir());
        dirs.push(self.data_dir());
        dirs
    }

    /// The directories in which transactions leave temporaries.
    pub fn temp_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = Layer::ALL.iter().map(|l| self.packages_dir(*l)).collect();
        dirs.push(self.state_dir());
        dirs.push(self.generations_dir());
        dirs.push(self.store_dir());
        dirs
    }
}

/// Why a package file name is refused, or `None` when it is acceptable.
///
/// Accepted: valid UTF-8 (checked by the caller), 1..=255 bytes, ending in
/// `.hpkg`, not starting with `.` (hidden names are temporaries), no `/`, and
/// no control characters (so a name never needs escaping in a list: it is the
/// last field of its line and may contain spaces).
pub fn file_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("empty name");
    }
    if name.len() > MAX_FILE_NAME {
        return Some("longer than 255 bytes");
    }
    if name.starts_with('.') {
        return Some("starts with '.'");
    }
    if name.contains('/') {
        return Some("contains '/'");
    }
    if name.chars().any(char::is_control) {
        return Some("contains a control character");
    }
    if !name.ends_with(PACKAGE_EXTENSION) || name.len() == PACKAGE_EXTENSION.len() {
        return Some("does not end in .hpkg");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_parse_and_order() {
        for l in Layer::ALL {
            assert_eq!(Layer::parse(l.name()), Some(l));
            assert_eq!(l.to_string().parse::<Layer>(), Ok(l));
        }
        assert!(Layer::System < Layer::Common && Layer::Common < Layer::User);
        assert!("System".parse::<Layer>().is_err());
    }

    #[test]
    fn paths() {
        let l = Layout::new("/r");
        assert_eq!(
            l.package_file(Layer::Common, "a.hpkg"),
            Path::new("/r/common/packages/a.hpkg")
        );
        assert_eq!(l.active_list(), Path::new("/r/system/state/active.list"));
        assert_eq!(
            l.generation_file(12),
            Path::new("/r/system/state/generations/12.list")
        );
        let d = Digest::of_bytes(b"");
        assert_eq!(
            l.store_file(&d),
            Path::new(&format!("/r/system/state/store/{}.hpkg", d.to_hex()))
        );
    }

    #[test]
    fn file_names() {
        assert_eq!(file_name_problem("a b.hpkg"), None);
        assert_eq!(file_name_problem(" lead.hpkg"), None);
        for bad in [
            "",
            ".hpkg",
            ".x.hpkg",
            "a/b.hpkg",
            "a\nb.hpkg",
            "a\u{7f}.hpkg",
            "a.zip",
        ] {
            assert!(file_name_problem(bad).is_some(), "{bad:?}");
        }
        assert!(file_name_problem(&format!("{}.hpkg", "x".repeat(251))).is_some());
        assert!(file_name_problem(&format!("{}.hpkg", "x".repeat(250))).is_none());
    }
}
