//! Live changes for the daemon: make the packages directories' content the
//! current generation ([`Root::sync_from_dirs`]), retaining deleted files from
//! the daemon's open descriptors ([`Root::retain_from_fd`]).

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::path::PathBuf;

use hpkg_format::Package;
use serde::Serialize;

use crate::active_list::ActivePackage;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::fsutil::{exists, remove_if_exists, sync_dir};
use crate::layout::Layer;
use crate::root::Root;
use crate::store::{rename_noreplace, stage_retained};
use crate::txn::{self, Commit, Plan, Step};

/// A file in a packages directory that was not activated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    /// Its layer.
    pub layer: Layer,
    /// Its path.
    pub path: PathBuf,
    /// Why (for the log).
    pub reason: String,
}

/// The outcome of [`Root::sync_from_dirs`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// The commit (`changed == false` when the directories match already).
    pub commit: Commit,
    /// Files not activated: incomplete or invalid packages, and packages whose
    /// name is active in another layer. They are looked at again by the next
    /// sync.
    pub rejected: Vec<Rejected>,
}

impl Root {
    /// Make the current generation match the packages directories, in one
    /// transaction (none when nothing changed):
    ///
    /// * an active package whose file is unchanged stays, in its place;
    /// * a file that is new (or whose content changed) and is a complete,
    ///   valid package is appended (layer order, then file name); an invalid
    ///   or still-growing one, one whose package name is active in another
    ///   layer (as [`Root::add`] refuses without `force`), or one that the
    ///   layer's trust policy requires to be vouched for and nobody vouches
    ///   for ([`crate::trust`]), is listed in [`SyncReport::rejected`] and
    ///   left inactive;
    /// * an active package whose file is gone (or changed) is deactivated;
    ///   unless the store already holds its content, `open_file` is asked for
    ///   an open descriptor of it (the daemon's, from the mount) and its
    ///   content is copied into the store so older generations stay usable —
    ///   when it returns `None` or the content no longer matches, a warning
    ///   says which package older generations lost; an I/O error while
    ///   retaining aborts the sync (nothing committed).
    ///
    /// Dependencies are not enforced here (the directories are the truth);
    /// problems are reported as warnings, and the daemon uses
    /// [`crate::deps::mountable`] to decide what to mount.
    pub fn sync_from_dirs(
        &self,
        reason: &str,
        open_file: &dyn Fn(&ActivePackage) -> Option<File>,
    ) -> Result<SyncReport> {
        let txn = txn::begin(self)?;
        let layout = &self.layout;
        let mut on_disk: BTreeMap<(Layer, String), PathBuf> = BTreeMap::new();
        for layer in Layer::ALL {
            for name in self.package_files(layer)? {
                let path = layout.package_file(layer, &name);
                on_disk.insert((layer, name), path);
            }
        }
        let mut plan = Plan {
            reason: reason.to_string(),
            ..Plan::default()
        };
        let mut rejected = Vec::new();
        let mut staged: HashSet<Digest> = HashSet::new();
        let mut temps = Vec::new();
        let policy = self.policy()?;
        let vouchers = if Layer::ALL.iter().any(|l| policy.requires_vouching(*l)) {
            crate::trust::Vouchers::load(layout)?
        } else {
            crate::trust::Vouchers::default()
        };
        let result = (|| -> Result<()> {
            for c in &txn.current.packages {
                let key = (c.layer, c.file_name.clone());
                if let Some(path) = on_disk.get(&key) {
                    if self
                        .hash_file(path)
                        .map(|(_, h)| h == c.hash)
                        .unwrap_or(false)
                    {
                        plan.packages.push(c.clone());
                        on_disk.remove(&key);
                        continue;
                    }
                }
                // Its content has left the packages directory: retain it.
                let store = layout.store_file(&c.hash);
                if staged.contains(&c.hash) || exists(&store)? {
                    continue;
                }
                let Some(file) = open_file(c) else {
                    plan.warnings.push(format!(
                        "WARNING: {} was deleted or changed and no open copy was available: older generations using it lost it",
                        c.display_name()
                    ));
                    continue;
                };
                match stage_retained(&file, &c.display_name(), c.size, &c.hash, &store) {
                    Ok(s) => {
                        temps.push(s.temp.clone());
                        staged.insert(c.hash);
                        plan.steps.push(Step::StoreTemp {
                            hash: c.hash,
                            temp: s.temp,
                        });
                    }
                    // The open file no longer has that content: it is lost.
                    Err(e @ Error::ContentMismatch { .. }) => plan.warnings.push(format!(
                        "WARNING: could not retain {}: {e}; older generations using it lost it",
                        c.display_name()
                    )),
                    // An I/O failure aborts the transaction.
                    Err(e) => return Err(e),
                }
            }
            for ((layer, name), path) in on_disk {
                let reject = |reason: String| Rejected {
                    layer,
                    path: path.clone(),
                    reason,
                };
                let (size, hash) = match self.hash_file(&path) {
                    Ok(v) => v,
                    Err(e) => {
                        rejected.push(reject(e.to_string()));
                        continue;
                    }
                };
                let pkg = match Package::open(&path) {
                    Ok(p) => p,
                    Err(e) => {
                        rejected.push(reject(format!("not a valid package (yet): {e}")));
                        continue;
                    }
                };
                if self.hash_file(&path).ok() != Some((size, hash)) {
                    rejected.push(reject("changed while being read".into()));
                    continue;
                }
                if policy.requires_vouching(layer) {
                    let vouched = File::open(&path)
                        .map_err(|e| format!("cannot read it: {e}"))
                        .and_then(|mut f| vouchers.vouch(&path, &mut f));
                    if let Err(why) = vouched {
                        rejected.push(reject(format!(
                            "refused by the trust policy of the {layer} layer: {why}"
                        )));
                        continue;
                    }
                }
                let package = &pkg.info().name;
                if let Some(other) = self.active_in_other_layer(&plan.packages, package, layer) {
                    rejected.push(reject(format!(
                        "package {package:?} is already active in the {} layer as {}; a package may be active in one layer only (remove one of them)",
                        other.layer,
                        other.display_name()
                    )));
                    continue;
                }
                self.remember_info(hash, pkg.info().clone());
                plan.packages.push(ActivePackage {
                    layer,
                    file_name: name,
                    size,
                    hash,
                });
            }
            Ok(())
        })();
        if let Err(e) = result {
            for t in temps {
                let _ = remove_if_exists(&t);
            }
            return Err(e);
        }
        let new_gen = crate::active_list::Generation {
            packages: plan.packages.clone(),
            ..txn.current.clone()
        };
        for p in self.check_dependencies(&new_gen).problems {
            plan.warnings.push(format!("dependency problem: {p}"));
        }
        let commit = txn.commit(plan)?;
        Ok(SyncReport { commit, rejected })
    }

    /// Copy the content of an open file into `store/<hash>.hpkg` (under the
    /// lock; fsynced temporary, renamed into place), checking it has `size`
    /// bytes with blake3 `hash`. Reads with positioned reads, so the
    /// descriptor's offset is left alone. Returns `false` when the store held
    /// that content already. The store file is kept while a kept generation
    /// references it (else the next `gc` removes it).
    pub fn retain_from_fd(&self, file: &File, hash: Digest, size: u64) -> Result<bool> {
        let _txn = txn::begin(self)?;
        let store = self.layout.store_file(&hash);
        if exists(&store)? {
            return Ok(false);
        }
        let s = stage_retained(file, "retained file", size, &hash, &store)?;
        if let Err(e) = rename_noreplace(&s.temp, &store, "store.rename") {
            let _ = remove_if_exists(&s.temp);
            return Err(e);
        }
        sync_dir(&self.layout.store_dir(), "store.dirsync")?;
        Ok(true)
    }
}
