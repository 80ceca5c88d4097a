//! The trust policy of each layer ([`Policy`], `ROOT/system/settings/policy`)
//! and the check that a package is vouched for ([`Vouchers`]).
//!
//! The policy file holds one setting per line, `<layer> <setting> <value>`
//! (`#` starts a comment; values `yes` or `no`):
//!
//! ```text
//! # every package of the user layer needs a voucher
//! user    require-vouched  yes
//! # the common layer may replace paths of the system layer
//! common  may-shadow       yes
//! ```
//!
//! * `require-vouched` (default `no`): a package may only be activated in
//!   the layer when it is vouched for: a verified repository index (one
//!   added with a key) lists its SHA-256, or a detached signature
//!   `PKG.hpkg.minisig` beside it verifies with a key of
//!   `ROOT/system/settings/trust/*.pub`.
//! * `may-shadow`: whether the layer's packages may replace paths that
//!   lower layers provide (otherwise they may only add paths). Default:
//!   `yes` when the layer's packages directory is owned by root, `no`
//!   otherwise — a user who owns `user/packages` cannot replace
//!   `/usr/bin/ls` for root. Applied by the union planner.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, Seek};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::error::{io_at, Error, Result};
use crate::fsutil::{exists, list_dir};
use crate::layout::{Layer, Layout};
use crate::repos;
use crate::root::Root;
use crate::signing::PublicKey;

/// Largest policy file read, in bytes.
const MAX_POLICY: u64 = 64 * 1024;

/// The policy of one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayerPolicy {
    /// Every package must be vouched for.
    pub require_vouched: bool,
    /// Whether its packages may replace paths of lower layers.
    pub may_shadow: bool,
}

/// The trust policy of a root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    layers: [LayerPolicy; 3],
}

fn index(layer: Layer) -> usize {
    match layer {
        Layer::System => 0,
        Layer::Common => 1,
        Layer::User => 2,
    }
}

impl Policy {
    /// The policy of the root at `layout`: its policy file (none: the
    /// defaults) over defaults that depend on who owns each packages
    /// directory.
    pub fn load(layout: &Layout) -> Result<Policy> {
        let path = layout.policy_file();
        let text = if exists(&path)? {
            let bytes = crate::fsutil::read_limited(&path, MAX_POLICY)?;
            String::from_utf8(bytes).map_err(|_| Error::Settings {
                path: path.clone(),
                reason: "not UTF-8".into(),
            })?
        } else {
            String::new()
        };
        let owned_by_root = |layer: Layer| {
            fs::metadata(layout.packages_dir(layer))
                .map(|m| m.uid() == 0)
                .unwrap_or(true)
        };
        Policy::parse(&text, &path, owned_by_root)
    }

    /// Parse a policy file's `text` (from `path`); `owned_by_root` tells
    /// the default of `may-shadow` for each layer.
    pub fn parse(text: &str, path: &Path, owned_by_root: impl Fn(Layer) -> bool) -> Result<Policy> {
        let mut layers = [LayerPolicy::default(); 3];
        for layer in Layer::ALL {
            layers[index(layer)].may_shadow = owned_by_root(layer);
        }
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let at = |reason: String| Error::Settings {
                path: path.to_path_buf(),
                reason: format!("line {}: {reason}", n + 1),
            };
            let words: Vec<&str> = line.split_whitespace().collect();
            let [layer, setting, value] = words[..] else {
                return Err(at(format!(
                    "expected `<layer> <setting> yes|no`, found {line:?}"
                )));
            };
            let layer =
                Layer::parse(layer).ok_or_else(|| at(format!("unknown layer {layer:?}")))?;
            let value = match value {
                "yes" => true,
                "no" => false,
                v => return Err(at(format!("{v:?} is not yes or no"))),
            };
            let l = &mut layers[index(layer)];
            match setting {
                "require-vouched" => l.require_vouched = value,
                "may-shadow" => l.may_shadow = value,
                s => {
                    return Err(at(format!(
                        "unknown setting {s:?} (require-vouched, may-shadow)"
                    )))
                }
            }
        }
        Ok(Policy { layers })
    }

    /// The policy of `layer`.
    pub fn layer(&self, layer: Layer) -> LayerPolicy {
        self.layers[index(layer)]
    }

    /// Whether `layer`'s packages may replace paths of lower layers.
    pub fn may_shadow(&self, layer: Layer) -> bool {
        self.layer(layer).may_shadow
    }

    /// Whether every package of `layer` must be vouched for.
    pub fn requires_vouching(&self, layer: Layer) -> bool {
        self.layer(layer).require_vouched
    }
}

/// What can vouch for a package: the trusted keys and the checksums listed
/// by verified repository indexes.
#[derive(Debug, Clone, Default)]
pub struct Vouchers {
    keys: Vec<(PathBuf, PublicKey)>,
    /// SHA-256 (lowercase hex) -> the repository listing it.
    checksums: HashMap<String, String>,
}

/// Who vouched for a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Voucher {
    /// A verified repository index lists its checksum.
    Repository(String),
    /// A detached signature by this trusted key file.
    Key(PathBuf),
}

impl Vouchers {
    /// The trusted keys of `ROOT/system/settings/trust/*.pub` and the
    /// checksums of every accepted index of a repository added with a key
    /// (its signature checked again; an index that no longer verifies
    /// vouches for nothing).
    pub fn load(layout: &Layout) -> Result<Vouchers> {
        let mut v = Vouchers::default();
        let dir = layout.trust_dir();
        if exists(&dir)? {
            for (name, path) in list_dir(&dir)? {
                if name.ends_with(".pub") {
                    v.keys.push((path.clone(), PublicKey::load(&path)?));
                }
            }
        }
        for config in repos::list(layout)? {
            if config.key.is_none() {
                continue;
            }
            let Ok(Some(index)) = repos::accepted(layout, &config) else {
                continue;
            };
            for p in &index.repository.packages {
                if let Some(c) = &p.checksum {
                    v.checksums.insert(c.clone(), config.name.clone());
                }
            }
        }
        Ok(v)
    }

    /// Whether the repository indexes vouch for content with this SHA-256.
    pub fn listed(&self, sha256: &str) -> Option<&str> {
        self.checksums.get(sha256).map(String::as_str)
    }

    /// Who vouches for the package file at `path` (read through `file`):
    /// a repository listing its SHA-256, else a trusted key whose
    /// signature `<path>.minisig` verifies. `Err` says why nobody does.
    pub fn vouch(&self, path: &Path, file: &mut File) -> Result<Voucher, String> {
        let sha = sha256_of(file).map_err(|e| format!("cannot read it: {e}"))?;
        if let Some(repo) = self.listed(&sha) {
            return Ok(Voucher::Repository(repo.to_string()));
        }
        let mut sig_path = path.as_os_str().to_owned();
        sig_path.push(".minisig");
        let sig_path = PathBuf::from(sig_path);
        let sig = match fs::read_to_string(&sig_path) {
            Ok(s) => s,
            Err(_) => {
                return Err(format!(
                    "no verified repository lists its SHA-256 {sha} and it has no signature {}",
                    sig_path.display()
                ))
            }
        };
        let mut why = Vec::new();
        for (key_path, key) in &self.keys {
            if file.rewind().is_err() {
                break;
            }
            match key.verify(&mut *file, &sig, &sig_path) {
                Ok(_) => return Ok(Voucher::Key(key_path.clone())),
                Err(e) => why.push(e.to_string()),
            }
        }
        if self.keys.is_empty() {
            why.push("no trusted key in the trust directory".into());
        }
        Err(format!(
            "no verified repository lists its SHA-256 {sha}, and its signature is by no trusted key ({})",
            why.join("; ")
        ))
    }
}

/// SHA-256 of what `file` holds from its start, lowercase hex.
pub fn sha256_of(file: &mut File) -> std::io::Result<String> {
    file.rewind()?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

impl Root {
    /// The trust policy of this root.
    pub fn policy(&self) -> Result<Policy> {
        Policy::load(&self.layout)
    }

    /// Refuse a package file meant for `layer` when the layer requires
    /// vouching and nobody vouches for it ([`Error::Untrusted`]). Returns
    /// who vouched (`None`: the layer requires nothing).
    pub fn check_trust(&self, layer: Layer, path: &Path) -> Result<Option<Voucher>> {
        let policy = self.policy()?;
        if !policy.requires_vouching(layer) {
            return Ok(None);
        }
        let vouchers = Vouchers::load(&self.layout)?;
        let mut file = File::open(path).map_err(io_at(path, "open"))?;
        vouchers
            .vouch(path, &mut file)
            .map(Some)
            .map_err(|reason| Error::Untrusted {
                path: path.to_path_buf(),
                layer,
                reason,
            })
    }
}

impl Root {
    /// Files in the packages directories that their layer's trust policy
    /// refuses (nobody vouches for them), with the reason: what `status`
    /// lists as refused. Empty when no layer requires vouching.
    pub fn untrusted_files(&self) -> Result<Vec<crate::sync::Rejected>> {
        let policy = self.policy()?;
        let layers: Vec<Layer> = Layer::ALL
            .into_iter()
            .filter(|l| policy.requires_vouching(*l))
            .collect();
        if layers.is_empty() {
            return Ok(Vec::new());
        }
        let vouchers = Vouchers::load(&self.layout)?;
        let mut out = Vec::new();
        for layer in layers {
            for name in self.package_files(layer)? {
                let path = self.layout.package_file(layer, &name);
                let vouched = File::open(&path)
                    .map_err(|e| format!("cannot read it: {e}"))
                    .and_then(|mut f| vouchers.vouch(&path, &mut f));
                if let Err(why) = vouched {
                    out.push(crate::sync::Rejected {
                        layer,
                        path,
                        reason: format!("refused by the trust policy of the {layer} layer: {why}"),
                    });
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_lines_and_defaults() {
        let p = Path::new("policy");
        let by_owner = |l: Layer| l != Layer::User;
        let none = Policy::parse("", p, by_owner).unwrap();
        assert!(none.may_shadow(Layer::System) && none.may_shadow(Layer::Common));
        assert!(
            !none.may_shadow(Layer::User),
            "user-owned layers may not shadow"
        );
        assert!(Layer::ALL.iter().all(|l| !none.requires_vouching(*l)));
        let set = Policy::parse(
            "# comment\nuser require-vouched yes\nuser may-shadow yes # trust them\ncommon may-shadow no\n",
            p,
            by_owner,
        )
        .unwrap();
        assert!(set.requires_vouching(Layer::User) && !set.requires_vouching(Layer::System));
        assert!(set.may_shadow(Layer::User) && !set.may_shadow(Layer::Common));
        for bad in [
            "user require-vouched",
            "users may-shadow yes",
            "user may-shadow maybe",
            "user shadow yes",
            "user may-shadow yes extra",
        ] {
            let e = Policy::parse(bad, p, by_owner).unwrap_err().to_string();
            assert!(e.starts_with("policy: line 1: "), "{bad}: {e}");
        }
    }

    #[test]
    fn detached_signatures_by_trusted_keys_vouch() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        let pkg = dir.path().join("a.hpkg");
        fs::write(&pkg, b"package bytes").unwrap();
        let mut f = File::open(&pkg).unwrap();
        assert!(Vouchers::load(&layout)
            .unwrap()
            .vouch(&pkg, &mut f)
            .is_err());

        let keys = crate::signing::generate(crate::signing::Protection::Unencrypted, "k").unwrap();
        let key_file = dir.path().join("k.key");
        fs::write(&key_file, &keys.secret).unwrap();
        let sk = crate::signing::SecretKey::load(&key_file, None).unwrap();
        let sig = sk.sign(&b"package bytes"[..], "t", &key_file).unwrap();
        fs::write(dir.path().join("a.hpkg.minisig"), sig).unwrap();
        // Signed, but by a key nobody trusts.
        assert!(Vouchers::load(&layout)
            .unwrap()
            .vouch(&pkg, &mut f)
            .is_err());
        fs::create_dir_all(layout.trust_dir()).unwrap();
        fs::write(layout.trust_dir().join("k.pub"), &keys.public).unwrap();
        let v = Vouchers::load(&layout)
            .unwrap()
            .vouch(&pkg, &mut f)
            .unwrap();
        assert_eq!(v, Voucher::Key(layout.trust_dir().join("k.pub")));
        // Changed content: the signature no longer vouches.
        fs::write(&pkg, b"package bytez").unwrap();
        let mut f = File::open(&pkg).unwrap();
        assert!(Vouchers::load(&layout)
            .unwrap()
            .vouch(&pkg, &mut f)
            .is_err());
    }
}
