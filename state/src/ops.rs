//! The package operations of a [`Root`]: `add`, `remove`, `rollback`, `pin`,
//! `unpin`, and dependency checks of a generation. Each is one transaction.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hpkg_format::{Package, PackageInfo};
use serde::Serialize;

use crate::active_list::{ActivePackage, Generation};
use crate::deps;
use crate::digest::Digest;
use crate::error::{io_at, Error, Result};
use crate::fsutil::{exists, remove_if_exists, write_atomic, AtomicPoints};
use crate::layout::{file_name_problem, Layer};
use crate::root::Root;
use crate::store::stage_copy_of;
use crate::txn::{self, Commit, Plan, Step, Txn};

/// Failpoints of pinning: the generation file.
const PIN_GENFILE_POINTS: AtomicPoints = AtomicPoints {
    fsync: "pin.genfile.fsync",
    rename: "pin.genfile.rename",
    dirsync: "pin.genfile.dirsync",
};
/// Failpoints of pinning: `active.list` (when the current generation is pinned).
const PIN_ACTIVE_POINTS: AtomicPoints = AtomicPoints {
    fsync: "pin.active.fsync",
    rename: "pin.active.rename",
    dirsync: "pin.active.dirsync",
};

/// Dependency problems of a generation's package set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DependencyReport {
    /// Problems; their `package`/`other` indexes refer to `generation.packages`.
    pub problems: Vec<deps::Problem>,
    /// Packages whose metadata could not be read (index, error), left out of
    /// the check.
    pub unreadable: Vec<(usize, String)>,
}

impl Root {
    /// Activate package files in `layer`: one transaction, one new generation.
    ///
    /// Each file is copied into `<layer>/packages/` under its own file name
    /// (hashing on the way; fsynced temporary, renamed into place at commit)
    /// and the copy is validated with the `hpkg-format` reader before anything
    /// is committed. New packages are appended in argument order (later wins
    /// conflicts inside the layer).
    ///
    /// * The same content already active under that name: left as is (a warning).
    /// * A different file of that name in the layer (active or not):
    ///   [`Error::NameClash`], unless `force`, which replaces it (the old file
    ///   goes to the store, so older generations keep it).
    /// * A file of identical content already in `packages/` but not active: activated in place.
    /// * A package whose name is active in another layer:
    ///   [`Error::ActiveInOtherLayer`] naming both, unless `force` (then both
    ///   are active, with a warning). In the same layer, packages are told
    ///   apart by file name only (see above).
    /// * Dependencies: a resulting set with requirement or conflict problems
    ///   that the current set does not already have is refused with
    ///   [`Error::Dependencies`] listing each, unless `force` (then they are in
    ///   [`Commit::forced`]). Problems the current set already had are warnings.
    pub fn add<P: AsRef<Path>>(
        &self,
        files: &[P],
        layer: Layer,
        force: bool,
        reason: &str,
    ) -> Result<Commit> {
        let txn = txn::begin(self)?;
        let mut temps = Vec::new();
        let planned = self.plan_add(&txn, files, layer, force, reason, &mut temps);
        commit_or_clean(txn, planned, temps)
    }

    fn plan_add<P: AsRef<Path>>(
        &self,
        txn: &Txn<'_>,
        files: &[P],
        layer: Layer,
        force: bool,
        reason: &str,
        temps: &mut Vec<PathBuf>,
    ) -> Result<Plan> {
        let layout = &self.layout;
        let mut plan = Plan {
            packages: txn.current.packages.clone(),
            reason: reason.to_string(),
            ..Plan::default()
        };
        let mut names = HashSet::new();
        for src in files {
            let src: &Path = src.as_ref();
            let name =
                src.file_name()
                    .and_then(|n| n.to_str())
                    .ok_or_else(|| Error::BadFileName {
                        name: src.to_string_lossy().into_owned(),
                        reason: "no file name, or not UTF-8",
                    })?;
            if let Some(reason) = file_name_problem(name) {
                return Err(Error::BadFileName {
                    name: name.into(),
                    reason,
                });
            }
            if !names.insert(name.to_string()) {
                return Err(Error::DuplicateName {
                    layer,
                    name: name.into(),
                });
            }
            let dest = layout.package_file(layer, name);
            let staged = stage_copy_of(src, &dest, "stage.copy.fsync")?;
            temps.push(staged.temp.clone());
            let copy = File::open(&staged.temp).map_err(io_at(&staged.temp, "open"))?;
            let pkg =
                Package::from_source(Arc::new(copy)).map_err(|source| Error::InvalidPackage {
                    path: src.to_path_buf(),
                    source,
                })?;
            self.remember_info(staged.hash, pkg.info().clone());
            if let Some(other) = self.active_in_other_layer(&plan.packages, &pkg.info().name, layer)
            {
                if !force {
                    return Err(Error::ActiveInOtherLayer {
                        name: pkg.info().name.clone(),
                        layer,
                        file: name.into(),
                        other_layer: other.layer,
                        other_file: other.file_name.clone(),
                    });
                }
                plan.warnings.push(format!(
                    "{layer}/{name}: package {:?} is now active in two layers (also {}), as --force asked",
                    pkg.info().name,
                    other.display_name()
                ));
            }
            let entry = ActivePackage {
                layer,
                file_name: name.to_string(),
                size: staged.size,
                hash: staged.hash,
            };
            let active = plan
                .packages
                .iter()
                .position(|p| p.layer == layer && p.file_name == name);
            let on_disk = if exists(&dest)? {
                Some(self.hash_file(&dest)?.1)
            } else {
                None
            };
            if let Some(i) = active {
                if plan.packages.get(i).map(|p| p.hash) == Some(staged.hash)
                    && on_disk == Some(staged.hash)
                {
                    remove_if_exists(&staged.temp)?;
                    plan.warnings
                        .push(format!("{}: already active", entry.display_name()));
                    continue;
                }
            }
            match on_disk {
                Some(h) if h == staged.hash && active.is_none() => {
                    // Identical content already there, inactive: activate in place.
                    remove_if_exists(&staged.temp)?;
                }
                Some(h) => {
                    if !force {
                        return Err(Error::NameClash {
                            layer,
                            name: name.into(),
                            path: dest,
                        });
                    }
                    plan.steps.push(Step::Retire {
                        layer,
                        name: name.into(),
                        hash: h,
                    });
                    plan.steps.push(Step::PlaceTemp {
                        layer,
                        name: name.into(),
                        temp: staged.temp,
                    });
                }
                None => {
                    plan.steps.push(Step::PlaceTemp {
                        layer,
                        name: name.into(),
                        temp: staged.temp,
                    });
                }
            }
            if let Some(i) = active {
                plan.packages.remove(i);
            }
            plan.packages.push(entry);
        }
        plan.forced =
            self.dependency_gate(&txn.current, &plan.packages, force, &mut plan.warnings)?;
        Ok(plan)
    }

    /// The first of `packages` outside `layer` whose package name is `name`
    /// (packages whose metadata cannot be read are passed over): one package
    /// name may be active in one layer only.
    pub(crate) fn active_in_other_layer<'p>(
        &self,
        packages: &'p [ActivePackage],
        name: &str,
        layer: Layer,
    ) -> Option<&'p ActivePackage> {
        packages
            .iter()
            .find(|p| p.layer != layer && self.package_info(p).is_ok_and(|info| info.name == name))
    }

    /// Deactivate packages, each named by file name (`foo-1.0-x86_64.hpkg`),
    /// package name (`foo`), or either qualified by its layer
    /// (`user/foo-1.0-x86_64.hpkg`, `user/foo`). A name several active packages
    /// answer to is [`Error::Ambiguous`] (listing them); one none answers to is
    /// [`Error::NotActive`].
    ///
    /// Each file leaves `packages/`: renamed into `store/<blake3>.hpkg` (the
    /// previous generation, which is kept, still references it), or unlinked
    /// when the store already holds that content. Dependencies are checked as
    /// for [`Root::add`].
    pub fn remove<S: AsRef<str>>(&self, specs: &[S], force: bool, reason: &str) -> Result<Commit> {
        let txn = txn::begin(self)?;
        let current = &txn.current;
        let mut chosen: Vec<usize> = Vec::new();
        for spec in specs {
            let spec = spec.as_ref();
            let matches = self.match_spec(current, spec);
            match matches.as_slice() {
                [] => return Err(Error::NotActive { spec: spec.into() }),
                [one] => {
                    if !chosen.contains(one) {
                        chosen.push(*one);
                    }
                }
                many => {
                    return Err(Error::Ambiguous {
                        spec: spec.into(),
                        candidates: many
                            .iter()
                            .filter_map(|i| current.packages.get(*i))
                            .map(ActivePackage::display_name)
                            .collect(),
                    })
                }
            }
        }
        let mut plan = Plan {
            reason: reason.to_string(),
            ..Plan::default()
        };
        for (i, p) in current.packages.iter().enumerate() {
            if !chosen.contains(&i) {
                plan.packages.push(p.clone());
                continue;
            }
            self.plan_retire(&txn, p, &mut plan)?;
        }
        plan.forced = self.dependency_gate(current, &plan.packages, force, &mut plan.warnings)?;
        txn.commit(plan)
    }

    /// Plan `p` (active) leaving its packages directory.
    fn plan_retire(&self, txn: &Txn<'_>, p: &ActivePackage, plan: &mut Plan) -> Result<()> {
        let path = self.layout.package_file(p.layer, &p.file_name);
        if exists(&path)? {
            let (_, actual) = self.hash_file(&path)?;
            if actual != p.hash {
                plan.warnings.push(format!(
                    "WARNING: {} was modified in place; generations referencing its original content can no longer use it",
                    p.display_name()
                ));
            }
            plan.steps.push(Step::Retire {
                layer: p.layer,
                name: p.file_name.clone(),
                hash: actual,
            });
        } else if !exists(&self.layout.store_file(&p.hash))? {
            plan.warnings.push(format!(
                "WARNING: {} was already deleted by hand; generations referencing it can no longer use it",
                p.display_name()
            ));
        }
        let _ = txn;
        Ok(())
    }

    /// Indexes of the active packages `spec` names (see [`Root::remove`]).
    fn match_spec(&self, g: &Generation, spec: &str) -> Vec<usize> {
        let (layer, name) = match spec.split_once('/') {
            Some((l, rest)) => match Layer::parse(l) {
                Some(layer) => (Some(layer), rest),
                None => return Vec::new(),
            },
            None => (None, spec),
        };
        let in_layer = |p: &ActivePackage| layer.is_none_or(|l| l == p.layer);
        let by_file: Vec<usize> = g
            .packages
            .iter()
            .enumerate()
            .filter(|(_, p)| in_layer(p) && p.file_name == name)
            .map(|(i, _)| i)
            .collect();
        if !by_file.is_empty() {
            return by_file;
        }
        g.packages
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                in_layer(p)
                    && self
                        .package_info(p)
                        .map(|info| info.name == name)
                        .unwrap_or(false)
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Make a new generation with the package set of kept generation `target`
    /// (default: the parent of the current one). Its parent is the current
    /// generation, so rolling back twice returns to where you were.
    ///
    /// Files are put back into `packages/`: renamed out of the store when no
    /// other kept generation needs that store file, else copied (from the
    /// store, or from a packages file with the same content). Current packages
    /// not in the target leave for the store as in [`Root::remove`].
    /// Dependencies are not checked (the target set was accepted once).
    /// Rolling back to the current generation changes nothing.
    pub fn rollback(&self, target: Option<u64>, reason: &str) -> Result<Commit> {
        let txn = txn::begin(self)?;
        let current = txn.current.clone();
        let n = match target {
            Some(n) => n,
            None => current.parent.ok_or(Error::NoParent(current.number))?,
        };
        if n == current.number {
            return txn.commit(Plan {
                packages: current.packages.clone(),
                reason: reason.into(),
                ..Plan::default()
            });
        }
        let goal = txn
            .kept_generation(n)?
            .cloned()
            .ok_or(Error::NoSuchGeneration(n))?;
        let mut temps = Vec::new();
        match self.plan_rollback(&txn, &current, &goal, reason, &mut temps) {
            Ok(plan) => txn.commit(plan),
            Err(e) => {
                for t in temps {
                    let _ = remove_if_exists(&t);
                }
                Err(e)
            }
        }
    }

    fn plan_rollback(
        &self,
        txn: &Txn<'_>,
        current: &Generation,
        goal: &Generation,
        reason: &str,
        temps: &mut Vec<PathBuf>,
    ) -> Result<Plan> {
        let layout = &self.layout;
        let mut plan = Plan {
            packages: goal.packages.clone(),
            reason: reason.to_string(),
            ..Plan::default()
        };
        let mut freed: HashSet<(Layer, String)> = HashSet::new();
        for c in &current.packages {
            if goal
                .find(c.layer, &c.file_name)
                .is_some_and(|t| t.hash == c.hash)
            {
                continue;
            }
            self.plan_retire(txn, c, &mut plan)?;
            freed.insert((c.layer, c.file_name.clone()));
        }
        for t in &goal.packages {
            let path = layout.package_file(t.layer, &t.file_name);
            let kept_in_place = current
                .find(t.layer, &t.file_name)
                .is_some_and(|c| c.hash == t.hash);
            if !freed.contains(&(t.layer, t.file_name.clone())) && exists(&path)? {
                let (_, actual) = self.hash_file(&path)?;
                if actual == t.hash {
                    continue; // already there (active or not)
                }
                // A stray inactive file of another content takes the name: it goes to the store.
                plan.steps.push(Step::Retire {
                    layer: t.layer,
                    name: t.file_name.clone(),
                    hash: actual,
                });
            } else if kept_in_place {
                plan.warnings.push(format!(
                    "WARNING: {} is active but missing from its packages directory; restoring it",
                    t.display_name()
                ));
            }
            let store = layout.store_file(&t.hash);
            if exists(&store)? {
                if self.sole_reference(txn, goal, t)? {
                    plan.steps.push(Step::PlaceFromStore {
                        layer: t.layer,
                        name: t.file_name.clone(),
                        hash: t.hash,
                    });
                } else {
                    let staged = stage_copy_of(&store, &path, "stage.copy.fsync")?;
                    temps.push(staged.temp.clone());
                    plan.steps.push(Step::PlaceTemp {
                        layer: t.layer,
                        name: t.file_name.clone(),
                        temp: staged.temp,
                    });
                }
                continue;
            }
            let source = self.packages_file_with(&current.packages, &t.hash)?;
            let Some(source) = source else {
                return Err(Error::Unrestorable {
                    generation: goal.number,
                    layer: t.layer,
                    file: t.file_name.clone(),
                    hash: t.hash,
                });
            };
            let staged = stage_copy_of(&source, &path, "stage.copy.fsync")?;
            temps.push(staged.temp.clone());
            plan.steps.push(Step::PlaceTemp {
                layer: t.layer,
                name: t.file_name.clone(),
                temp: staged.temp,
            });
        }
        Ok(plan)
    }

    /// Whether `t` of the new set `goal` is the only user of its content
    /// among the kept generations and the new one (so the store file can be
    /// renamed rather than copied).
    fn sole_reference(&self, txn: &Txn<'_>, goal: &Generation, t: &ActivePackage) -> Result<bool> {
        Ok(txn
            .kept()?
            .iter()
            .chain(std::iter::once(goal))
            .flat_map(|g| g.packages.iter())
            .filter(|p| p.hash == t.hash)
            .all(|p| p.layer == t.layer && p.file_name == t.file_name)
            && goal.packages.iter().filter(|p| p.hash == t.hash).count() == 1)
    }

    /// A file in a packages directory holding content `hash`, among `candidates`.
    fn packages_file_with(
        &self,
        candidates: &[ActivePackage],
        hash: &Digest,
    ) -> Result<Option<PathBuf>> {
        for c in candidates.iter().filter(|c| c.hash == *hash) {
            let path = self.layout.package_file(c.layer, &c.file_name);
            if exists(&path)? && self.hash_file(&path)?.1 == *hash {
                return Ok(Some(path));
            }
        }
        Ok(None)
    }

    /// Pin generation `n`: `gc` never removes it. Returns warnings (recovery).
    pub fn pin(&self, n: u64) -> Result<Vec<String>> {
        self.set_pinned(n, true)
    }

    /// Unpin generation `n`. Returns warnings (recovery).
    pub fn unpin(&self, n: u64) -> Result<Vec<String>> {
        self.set_pinned(n, false)
    }

    fn set_pinned(&self, n: u64, pinned: bool) -> Result<Vec<String>> {
        let mut txn = txn::begin(self)?;
        let warnings = txn.take_warnings();
        let mut g = txn
            .kept_generation(n)?
            .cloned()
            .ok_or(Error::NoSuchGeneration(n))?;
        if g.pinned == pinned && (n != txn.current.number || txn.current.pinned == pinned) {
            return Ok(warnings);
        }
        g.pinned = pinned;
        let bytes = g.encode().map_err(|e| Error::Corrupt {
            path: self.layout.generation_file(n),
            line: e.line,
            message: e.message,
        })?;
        write_atomic(&self.layout.generation_file(n), &bytes, PIN_GENFILE_POINTS)?;
        if n == txn.current.number {
            write_atomic(&self.layout.active_list(), &bytes, PIN_ACTIVE_POINTS)?;
        }
        Ok(warnings)
    }

    /// Dependency problems of `generation`'s package set (for `pkgctl status`
    /// and the daemon). Reads each package's metadata (cached by hash).
    pub fn check_dependencies(&self, generation: &Generation) -> DependencyReport {
        let mut infos: Vec<(usize, Arc<PackageInfo>)> = Vec::new();
        let mut unreadable = Vec::new();
        for (i, p) in generation.packages.iter().enumerate() {
            match self.package_info(p) {
                Ok(info) => infos.push((i, info)),
                Err(e) => unreadable.push((i, e.to_string())),
            }
        }
        let refs: Vec<&PackageInfo> = infos.iter().map(|(_, info)| info.as_ref()).collect();
        let index_of = |k: usize| infos.get(k).map(|(i, _)| *i).unwrap_or(k);
        let problems = deps::check_refs(&refs)
            .into_iter()
            .map(|p| match p {
                deps::Problem::Unmet {
                    package,
                    name,
                    requirement,
                } => deps::Problem::Unmet {
                    package: index_of(package),
                    name,
                    requirement,
                },
                deps::Problem::Conflict {
                    package,
                    name,
                    requirement,
                    other,
                    other_name,
                } => deps::Problem::Conflict {
                    package: index_of(package),
                    name,
                    requirement,
                    other: index_of(other),
                    other_name,
                },
            })
            .collect();
        DependencyReport {
            problems,
            unreadable,
        }
    }

    /// Refuse `new` when it has dependency problems `old` does not have
    /// (unless `force`); returns the problems let through.
    fn dependency_gate(
        &self,
        old: &Generation,
        new: &[ActivePackage],
        force: bool,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<deps::Problem>> {
        let new_gen = Generation {
            packages: new.to_vec(),
            ..old.clone()
        };
        let after = self.check_dependencies(&new_gen);
        for (i, e) in &after.unreadable {
            let name = new
                .get(*i)
                .map(ActivePackage::display_name)
                .unwrap_or_default();
            warnings.push(format!(
                "WARNING: {name}: metadata unreadable, dependencies not checked: {e}"
            ));
        }
        if after.problems.is_empty() {
            return Ok(Vec::new());
        }
        let before: HashSet<String> = self
            .check_dependencies(old)
            .problems
            .iter()
            .map(|p| p.to_string())
            .collect();
        let (old_problems, fresh): (Vec<_>, Vec<_>) = after
            .problems
            .into_iter()
            .partition(|p| before.contains(&p.to_string()));
        for p in &old_problems {
            warnings.push(format!("dependency problem (already present): {p}"));
        }
        if fresh.is_empty() || force {
            return Ok(fresh);
        }
        Err(Error::Dependencies { problems: fresh })
    }
}

impl Root {
    /// Remove some active packages and add package files to `layer` in ONE
    /// transaction: one new generation, so one `rollback` undoes the whole
    /// change (what `pkgctl install`, `update` and `uninstall` commit).
    ///
    /// `remove` names active packages exactly (layer, file name and hash; one
    /// that is no longer active is [`Error::NotActive`]); they leave for the
    /// store as in [`Root::remove`]. `add` is handled as in [`Root::add`]
    /// (copied, validated; a different file of the same name in the layer is
    /// replaced), and each file must pass the layer's trust policy
    /// ([`Root::check_trust`]). Dependencies are checked on the final set:
    /// new problems are refused with [`Error::Dependencies`] unless `force`.
    pub fn change<P: AsRef<Path>>(
        &self,
        remove: &[ActivePackage],
        add: &[P],
        layer: Layer,
        force: bool,
        reason: &str,
    ) -> Result<Commit> {
        for file in add {
            self.check_trust(layer, file.as_ref())?;
        }
        let txn = txn::begin(self)?;
        let mut temps = Vec::new();
        let planned = (|| -> Result<Plan> {
            let mut plan = self.plan_add(&txn, add, layer, true, reason, &mut temps)?;
            for old in remove {
                let at = plan.packages.iter().position(|p| p == old);
                let Some(i) = at else {
                    return Err(Error::NotActive {
                        spec: old.display_name(),
                    });
                };
                plan.packages.remove(i);
                self.plan_retire(&txn, old, &mut plan)?;
            }
            let mut warnings = Vec::new();
            plan.forced =
                self.dependency_gate(&txn.current, &plan.packages, force, &mut warnings)?;
            for w in warnings {
                if !plan.warnings.contains(&w) {
                    plan.warnings.push(w);
                }
            }
            Ok(plan)
        })();
        commit_or_clean(txn, planned, temps)
    }
}

/// Commit `planned`, or, when planning failed, remove the temporary files
/// it staged and return its error.
fn commit_or_clean(
    txn: txn::Txn<'_>,
    planned: Result<txn::Plan>,
    temps: Vec<std::path::PathBuf>,
) -> Result<Commit> {
    match planned {
        Ok(plan) => txn.commit(plan),
        Err(e) => {
            for t in temps {
                let _ = remove_if_exists(&t);
            }
            Err(e)
        }
    }
}
