//! Transactions: every change to a root, under its exclusive lock.
//!
//! 1. **Begin**: take the lock; find the generation in force; undo whatever
//!    an interrupted transaction left (its journal, its uncommitted
//!    generation file, temporaries `.*.tmp-*`); repair a corrupt `active.list`
//!    or a missing current generation file from the newest valid generation.
//! 2. **Prepare** (the operation): stage copies as fsynced temporaries.
//! 3. **Commit** the plan:
//!    1. write the journal (temp, fsync, rename, fsync dir) listing every move;
//!    2. move files: retire package files out of `packages/` (rename into the
//!       store, or unlink when the store holds that content), rename staged
//!       store files and package copies into place (never replacing a file),
//!       fsync the directories;
//!    3. write `generations/<N>.list` (temp, fsync, rename, fsync dir);
//!    4. write `active.list` (temp, fsync, rename, fsync dir): the commit point;
//!    5. remove the journal.
//!
//!    Success is reported only after step 4 is durable. Any failure before
//!    that aborts: the old `active.list` is put back if it had been replaced,
//!    the new generation file is removed and the journal's moves are undone,
//!    so the old generation is fully in force; nothing is retried into a
//!    commit. Whatever the abort could not finish, the next transaction's
//!    begin finishes.
//!
//! At every instant every package of every kept generation is reachable: in
//! its packages directory or in the store (files leave `packages/` only into
//! the store, or when the store already holds their content).

use std::cell::OnceCell;
use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::path::PathBuf;

use serde::Serialize;

use crate::active_list::{ActivePackage, Generation, ListError, MAX_LIST_SIZE};
use crate::deps;
use crate::digest::{hash_file, Digest};
use crate::error::{io_at, Error, Result};
use crate::fsutil::{
    exists, read_limited, remove_if_exists, remove_temps, rename, sync_dir, write_atomic,
    AtomicPoints,
};
use crate::generation;
use crate::journal::{Journal, JournalOp};
use crate::layout::{Layer, Layout};
use crate::lock::{self, LockGuard};
use crate::root::{is_initialised, Root};
use crate::store::{rename_noreplace, stage_copy_of};

/// Failpoints of writing the journal.
pub(crate) const JOURNAL_POINTS: AtomicPoints = AtomicPoints {
    fsync: "journal.fsync",
    rename: "journal.rename",
    dirsync: "journal.dirsync",
};
/// Failpoints of writing `generations/<N>.list`.
pub(crate) const GENFILE_POINTS: AtomicPoints = AtomicPoints {
    fsync: "genfile.fsync",
    rename: "genfile.rename",
    dirsync: "genfile.dirsync",
};
/// Failpoints of writing `active.list`.
pub(crate) const ACTIVE_POINTS: AtomicPoints = AtomicPoints {
    fsync: "active.fsync",
    rename: "active.rename",
    dirsync: "active.dirsync",
};
/// Failpoints of repairs (begin's recovery and abort).
pub(crate) const REPAIR_POINTS: AtomicPoints = AtomicPoints {
    fsync: "repair.fsync",
    rename: "repair.rename",
    dirsync: "repair.dirsync",
};

/// The outcome of an operation that may commit a generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Commit {
    /// The generation now in force (the new one, or the unchanged current one).
    pub generation: Generation,
    /// Whether a new generation was committed (`false`: nothing to change).
    pub changed: bool,
    /// Packages active now that were not before (layer, name and content).
    pub added: Vec<ActivePackage>,
    /// Packages active before that are not now.
    pub removed: Vec<ActivePackage>,
    /// Dependency problems of the new set that `force` let through.
    pub forced: Vec<deps::Problem>,
    /// Messages for the user: recovery of an interrupted transaction, repairs,
    /// packages that could not be retained, unreadable packages ...
    pub warnings: Vec<String>,
}

/// One file move of a plan. Commit orders them: retires, store files, places.
#[derive(Debug)]
pub(crate) enum Step {
    /// `packages/<layer>/<name>` (whose content is `hash`) leaves `packages/`.
    Retire {
        layer: Layer,
        name: String,
        hash: Digest,
    },
    /// A staged temporary becomes `store/<hash>.hpkg` (which must not exist).
    StoreTemp { hash: Digest, temp: PathBuf },
    /// A staged temporary becomes `packages/<layer>/<name>` (which must be free).
    PlaceTemp {
        layer: Layer,
        name: String,
        temp: PathBuf,
    },
    /// `store/<hash>.hpkg` is renamed to `packages/<layer>/<name>`.
    PlaceFromStore {
        layer: Layer,
        name: String,
        hash: Digest,
    },
}

impl Step {
    fn rank(&self) -> u8 {
        match self {
            Step::Retire { .. } => 0,
            Step::StoreTemp { .. } => 1,
            Step::PlaceTemp { .. } | Step::PlaceFromStore { .. } => 2,
        }
    }
}

/// What an operation wants committed.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// The new package list, in activation order.
    pub packages: Vec<ActivePackage>,
    /// The reason recorded in the generation.
    pub reason: String,
    /// File moves. A `PlaceTemp`'s hash is in `packages`.
    pub steps: Vec<Step>,
    /// Forced dependency problems to report.
    pub forced: Vec<deps::Problem>,
    /// Messages to report.
    pub warnings: Vec<String>,
}

/// A transaction in progress: the lock is held until it is dropped.
#[derive(Debug)]
pub(crate) struct Txn<'r> {
    pub root: &'r Root,
    _lock: LockGuard,
    /// The generation in force.
    pub current: Generation,
    /// Every valid kept generation, oldest first, the current one included;
    /// read when first needed.
    kept: OnceCell<Vec<Generation>>,
    /// What begin had to say.
    pub warnings: Vec<String>,
    /// The number the next generation gets.
    next: u64,
}

fn encode(g: &Generation, layout: &Layout) -> Result<Vec<u8>> {
    g.encode()
        .map_err(|ListError { line, message }| Error::Corrupt {
            path: layout.generation_file(g.number),
            line,
            message,
        })
}

/// Every valid generation file up to `current` (corrupt ones are left out:
/// `verify` and `generations` report them), with `current` itself.
fn load_kept(layout: &Layout, current: &Generation) -> Result<Vec<Generation>> {
    let mut kept: Vec<Generation> = generation::scan_up_to(layout, current.number)?
        .into_iter()
        .filter_map(|(_, parsed)| parsed.ok())
        .filter(|g| g.number != current.number)
        .collect();
    kept.push(current.clone());
    Ok(kept)
}

/// Take the lock and recover (see the module documentation).
pub(crate) fn begin(root: &Root) -> Result<Txn<'_>> {
    let layout = &root.layout;
    let lock = lock::acquire(&layout.lock_file(), root.lock_wait)?;
    let loaded = generation::load_current(layout)?;
    let mut warnings = loaded.warnings;
    let mut current = loaded.generation;

    let numbers = generation::numbers(layout)?;
    let orphans: Vec<u64> = if loaded.fallback {
        Vec::new()
    } else {
        numbers
            .iter()
            .copied()
            .filter(|n| *n > current.number)
            .collect()
    };
    let max_seen = numbers
        .iter()
        .copied()
        .filter(|n| !orphans.contains(n))
        .chain([current.number])
        .max()
        .unwrap_or(current.number);

    // The current generation's own file: present and valid, else rewritten.
    // Its pinned flag is authoritative (a pin interrupted between the two
    // files is finished here).
    let mut rewrite_active = loaded.fallback;
    match generation::read_list(&layout.generation_file(current.number)) {
        Ok(own) if own.packages == current.packages => {
            if own.pinned != current.pinned {
                current.pinned = own.pinned;
                rewrite_active = true;
            }
        }
        _ => {
            write_atomic(
                &layout.generation_file(current.number),
                &encode(&current, layout)?,
                REPAIR_POINTS,
            )?;
            warnings.push(format!(
                "WARNING: rewrote generations/{}.list from the current generation",
                current.number
            ));
        }
    }
    if rewrite_active {
        write_atomic(
            &layout.active_list(),
            &encode(&current, layout)?,
            REPAIR_POINTS,
        )?;
        if loaded.fallback {
            warnings.push(format!(
                "WARNING: rewrote active.list from generation {}",
                current.number
            ));
        }
    }

    let journal_path = layout.journal();
    let journal = match read_limited(&journal_path, MAX_LIST_SIZE) {
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e),
        Ok(bytes) => Some(Journal::parse(&bytes)),
    };
    let kept = OnceCell::new();
    match &journal {
        Some(Ok(j)) if j.target > current.number => {
            let loaded_kept = load_kept(layout, &current)?;
            warnings.extend(undo(layout, j, &loaded_kept)?);
            let _ = kept.set(loaded_kept);
            warnings.push(format!(
                "recovered an interrupted transaction: generation {} was not committed, generation {} stays in force",
                j.target, current.number
            ));
        }
        Some(Err(e)) => warnings.push(format!("WARNING: ignored a corrupt journal: {e}")),
        _ => {}
    }
    for n in &orphans {
        remove_if_exists(&layout.generation_file(*n))?;
    }
    remove_temps(&layout.temp_dirs())?;
    if journal.is_some() || !orphans.is_empty() {
        sync_dir(&layout.generations_dir(), "repair.dirsync")?;
        remove_if_exists(&journal_path)?;
        sync_dir(&layout.state_dir(), "repair.dirsync")?;
    }
    Ok(Txn {
        root,
        _lock: lock,
        current,
        kept,
        warnings,
        next: max_seen + 1,
    })
}

/// Undo the moves of an uncommitted journal, last first. Each undo checks the
/// disk first, so running this again (after a crash during it) is harmless.
fn undo(layout: &Layout, journal: &Journal, kept: &[Generation]) -> Result<Vec<String>> {
    let referenced = |h: &Digest| kept.iter().any(|g| g.references(h));
    let mut warnings = Vec::new();
    for op in journal.ops.iter().rev() {
        match op {
            JournalOp::Place {
                layer,
                name,
                hash,
                from_store,
            } => {
                let path = layout.package_file(*layer, name);
                if !exists(&path)? {
                    continue;
                }
                let (_, actual) = hash_file(&path).map_err(io_at(&path, "read"))?;
                if actual != *hash {
                    continue; // not the file this transaction placed
                }
                let store = layout.store_file(hash);
                if (*from_store || referenced(hash)) && !exists(&store)? {
                    rename(&path, &store, "repair.rename")?;
                } else {
                    remove_if_exists(&path)?;
                }
            }
            JournalOp::Store { hash } => {
                if !referenced(hash) {
                    remove_if_exists(&layout.store_file(hash))?;
                }
            }
            JournalOp::Retire {
                layer,
                name,
                hash,
                moved,
            } => {
                let path = layout.package_file(*layer, name);
                if exists(&path)? {
                    continue;
                }
                let store = layout.store_file(hash);
                if !exists(&store)? {
                    warnings.push(format!(
                        "WARNING: cannot restore {layer}/{name}: store/{hash}.hpkg is missing"
                    ));
                    continue;
                }
                if *moved {
                    rename(&store, &path, "repair.rename")?;
                } else {
                    let staged = stage_copy_of(&store, &path, "repair.fsync")?;
                    rename(&staged.temp, &path, "repair.rename")?;
                }
            }
        }
    }
    for dir in Layer::ALL
        .iter()
        .map(|l| layout.packages_dir(*l))
        .chain([layout.store_dir()])
    {
        sync_dir(&dir, "repair.dirsync")?;
    }
    Ok(warnings)
}

/// `old` → `new` as (added, removed), comparing layer, name and content.
fn diff(old: &[ActivePackage], new: &[ActivePackage]) -> (Vec<ActivePackage>, Vec<ActivePackage>) {
    let old_set: HashSet<&ActivePackage> = old.iter().collect();
    let new_set: HashSet<&ActivePackage> = new.iter().collect();
    (
        new.iter()
            .filter(|p| !old_set.contains(p))
            .cloned()
            .collect(),
        old.iter()
            .filter(|p| !new_set.contains(p))
            .cloned()
            .collect(),
    )
}

impl Txn<'_> {
    /// The root's paths.
    pub fn layout(&self) -> &Layout {
        &self.root.layout
    }

    /// Every valid kept generation, oldest first, the current one included.
    pub fn kept(&self) -> Result<&[Generation]> {
        if let Some(k) = self.kept.get() {
            return Ok(k);
        }
        let loaded = load_kept(self.layout(), &self.current)?;
        Ok(self.kept.get_or_init(|| loaded))
    }

    /// Kept generation `n`.
    pub fn kept_generation(&self, n: u64) -> Result<Option<&Generation>> {
        Ok(self.kept()?.iter().find(|g| g.number == n))
    }

    /// Take begin's warnings (for operations that do not commit).
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// Commit `plan` as a new generation (see the module documentation). A
    /// plan that changes nothing commits nothing.
    pub fn commit(mut self, mut plan: Plan) -> Result<Commit> {
        let old = self.current.clone();
        let mut warnings = std::mem::take(&mut self.warnings);
        warnings.append(&mut plan.warnings);
        if plan.packages == old.packages && plan.steps.is_empty() {
            return Ok(Commit {
                generation: old,
                changed: false,
                added: Vec::new(),
                removed: Vec::new(),
                forced: plan.forced,
                warnings,
            });
        }
        plan.steps.sort_by_key(Step::rank);
        let (added, removed) = diff(&old.packages, &plan.packages);
        let generation = Generation::new(self.next, Some(old.number), &plan.reason, plan.packages);
        let result = self
            .journal_for(&generation, &plan.steps)
            .and_then(|journal| {
                let written =
                    write_atomic(&self.layout().journal(), &journal.encode(), JOURNAL_POINTS)
                        .and_then(|()| self.execute(&plan.steps, &journal.ops, &generation));
                if written.is_err() {
                    self.abort(&old, &journal);
                }
                written
            });
        if let Err(e) = result {
            let _ = remove_temps(&self.layout().temp_dirs());
            return Err(e);
        }
        if let Err(e) = crate::fsutil::remove_file(&self.layout().journal(), "journal.remove") {
            warnings.push(format!(
                "could not remove the journal after the commit ({e}); the next transaction will"
            ));
        }
        Ok(Commit {
            generation,
            changed: true,
            added,
            removed,
            forced: plan.forced,
            warnings,
        })
    }

    /// The journal of `steps`, deciding for each retire whether it renames
    /// into the store or unlinks (the store already holds that content).
    fn journal_for(&self, generation: &Generation, steps: &[Step]) -> Result<Journal> {
        let layout = self.layout();
        let mut in_store: HashSet<Digest> = HashSet::new();
        let mut ops = Vec::new();
        for step in steps {
            ops.push(match step {
                Step::Retire { layer, name, hash } => {
                    let stored = in_store.contains(hash) || exists(&layout.store_file(hash))?;
                    in_store.insert(*hash);
                    JournalOp::Retire {
                        layer: *layer,
                        name: name.clone(),
                        hash: *hash,
                        moved: !stored,
                    }
                }
                Step::StoreTemp { hash, .. } => {
                    in_store.insert(*hash);
                    JournalOp::Store { hash: *hash }
                }
                Step::PlaceTemp { layer, name, .. } => {
                    let hash = generation
                        .find(*layer, name)
                        .map(|p| p.hash)
                        .ok_or_else(|| Error::NotActive {
                            spec: format!("{layer}/{name}"),
                        })?;
                    JournalOp::Place {
                        layer: *layer,
                        name: name.clone(),
                        hash,
                        from_store: false,
                    }
                }
                Step::PlaceFromStore { layer, name, hash } => JournalOp::Place {
                    layer: *layer,
                    name: name.clone(),
                    hash: *hash,
                    from_store: true,
                },
            });
        }
        Ok(Journal {
            target: generation.number,
            ops,
        })
    }

    /// Steps 2–4 of a commit.
    fn execute(&self, steps: &[Step], ops: &[JournalOp], generation: &Generation) -> Result<()> {
        let layout = self.layout();
        let bytes = encode(generation, layout)?;
        let mut dirs = BTreeSet::new();
        for (step, op) in steps.iter().zip(ops) {
            match (step, op) {
                (Step::Retire { layer, name, hash }, JournalOp::Retire { moved, .. }) => {
                    let path = layout.package_file(*layer, name);
                    dirs.insert(layout.packages_dir(*layer));
                    if *moved {
                        rename(&path, &layout.store_file(hash), "stage.retire.rename")?;
                        dirs.insert(layout.store_dir());
                    } else {
                        crate::fsutil::remove_file(&path, "stage.retire.unlink")?;
                    }
                }
                (Step::StoreTemp { hash, temp }, _) => {
                    rename_noreplace(temp, &layout.store_file(hash), "stage.store.rename")?;
                    dirs.insert(layout.store_dir());
                }
                (Step::PlaceTemp { layer, name, temp }, _) => {
                    rename_noreplace(
                        temp,
                        &layout.package_file(*layer, name),
                        "stage.place.rename",
                    )?;
                    dirs.insert(layout.packages_dir(*layer));
                }
                (Step::PlaceFromStore { layer, name, hash }, _) => {
                    rename_noreplace(
                        &layout.store_file(hash),
                        &layout.package_file(*layer, name),
                        "stage.place.rename",
                    )?;
                    dirs.insert(layout.packages_dir(*layer));
                    dirs.insert(layout.store_dir());
                }
                _ => {}
            }
        }
        for dir in &dirs {
            sync_dir(dir, "stage.dirsync")?;
        }
        write_atomic(
            &layout.generation_file(generation.number),
            &bytes,
            GENFILE_POINTS,
        )?;
        write_atomic(&layout.active_list(), &bytes, ACTIVE_POINTS)
    }

    /// Best effort after a failed commit: put `old` back in force and undo the
    /// journal's moves. What fails here, the next begin redoes.
    fn abort(&self, old: &Generation, journal: &Journal) {
        let layout = self.layout();
        if let Ok(old_bytes) = encode(old, layout) {
            if fs::read(layout.active_list()).ok().as_deref() != Some(&old_bytes[..]) {
                let _ = write_atomic(&layout.active_list(), &old_bytes, REPAIR_POINTS);
            }
        }
        let _ = remove_if_exists(&layout.generation_file(journal.target));
        let _ = sync_dir(&layout.generations_dir(), "repair.dirsync");
        let undone = self.kept().and_then(|kept| undo(layout, journal, kept));
        if undone.is_ok() {
            let _ = remove_if_exists(&layout.journal());
            let _ = sync_dir(&layout.state_dir(), "repair.dirsync");
        }
    }
}

/// `init`'s commit of generation 1 (see [`Root::init`]); on an initialised
/// root, only a begin (recovery).
pub(crate) fn init_first_generation(root: &Root) -> Result<()> {
    let layout = &root.layout;
    let guard = lock::acquire(&layout.lock_file(), root.lock_wait)?;
    if is_initialised(layout)? {
        drop(guard);
        begin(root)?;
        return Ok(());
    }
    remove_temps(&layout.temp_dirs())?;
    let mut packages = Vec::new();
    for layer in Layer::ALL {
        for name in root.package_files(layer)? {
            let path = layout.package_file(layer, &name);
            let pkg =
                hpkg_format::Package::open(&path).map_err(|source| Error::InvalidPackage {
                    path: path.clone(),
                    source,
                })?;
            let (size, hash) = root.hash_file(&path)?;
            root.remember_info(hash, pkg.info().clone());
            packages.push(ActivePackage {
                layer,
                file_name: name,
                size,
                hash,
            });
        }
    }
    let first = Generation::new(1, None, "init", packages);
    let bytes = encode(&first, layout)?;
    let written = write_atomic(&layout.generation_file(1), &bytes, GENFILE_POINTS)
        .and_then(|()| write_atomic(&layout.active_list(), &bytes, ACTIVE_POINTS));
    if written.is_err() {
        let _ = remove_if_exists(&layout.active_list());
        let _ = remove_if_exists(&layout.generation_file(1));
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    /// Commit moves files in rank order whatever order a plan lists them
    /// in: a replacement planned place-first still retires the old file
    /// (into the store) before the new one takes its name.
    #[test]
    fn commit_retires_before_it_places() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::init(dir.path().join("r")).unwrap();
        let layout = root.layout().clone();
        let path = layout.package_file(Layer::User, "p.hpkg");
        let entry = |bytes: &[u8]| ActivePackage {
            layer: Layer::User,
            file_name: "p.hpkg".into(),
            size: bytes.len() as u64,
            hash: Digest::of_bytes(bytes),
        };
        fs::write(&path, b"old").unwrap();
        let first = begin(&root).unwrap().commit(Plan {
            packages: vec![entry(b"old")],
            reason: "old".into(),
            ..Plan::default()
        });
        assert!(first.unwrap().changed);

        let src = dir.path().join("new");
        fs::write(&src, b"new").unwrap();
        // Staged under the lock: begin removes leftover temporaries.
        let txn = begin(&root).unwrap();
        let staged = stage_copy_of(&src, &path, "stage.copy.fsync").unwrap();
        let commit = txn
            .commit(Plan {
                packages: vec![entry(b"new")],
                reason: "new".into(),
                steps: vec![
                    Step::PlaceTemp {
                        layer: Layer::User,
                        name: "p.hpkg".into(),
                        temp: staged.temp,
                    },
                    Step::Retire {
                        layer: Layer::User,
                        name: "p.hpkg".into(),
                        hash: Digest::of_bytes(b"old"),
                    },
                ],
                ..Plan::default()
            })
            .unwrap();
        assert_eq!(commit.generation.number, 3);
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(
            fs::read(layout.store_file(&Digest::of_bytes(b"old"))).unwrap(),
            b"old"
        );
    }

    #[test]
    fn steps_rank_retires_then_store_files_then_places() {
        let h = Digest::of_bytes(b"x");
        let (layer, name, temp) = (Layer::User, String::from("n.hpkg"), PathBuf::from("t"));
        let ranks: Vec<u8> = [
            Step::Retire {
                layer,
                name: name.clone(),
                hash: h,
            },
            Step::StoreTemp {
                hash: h,
                temp: temp.clone(),
            },
            Step::PlaceTemp {
                layer,
                name: name.clone(),
                temp,
            },
            Step::PlaceFromStore {
                layer,
                name,
                hash: h,
            },
        ]
        .iter()
        .map(Step::rank)
        .collect();
        assert_eq!(ranks, [0, 1, 2, 2]);
    }
}
