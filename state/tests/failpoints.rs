//! Every failpoint (cargo feature `failpoints`) makes its step fail; after the
//! failure the old generation is fully in force, and the next transaction
//! succeeds and leaves a clean root.
//!
//! `cargo test -p state --features failpoints --test failpoints`
#![cfg(feature = "failpoints")]

mod common;

use std::fs;

use common::*;
use fail::FailScenario;
use state::{Layer, Root, FAILPOINTS};

/// The operation a failpoint is exercised with.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    /// Add a new package (copy, journal, place, generation file, active.list).
    Add,
    /// Remove a package whose content is not in the store (rename into it).
    RemoveMoved,
    /// Remove a package whose content the store holds already (unlink).
    RemoveUnlinked,
    /// Sync after a file was deleted by hand, retaining it from an open file.
    SyncRetain,
    /// Pin the current generation.
    Pin,
    /// Collect old generations and store files.
    Gc,
    /// Retain an open file into the store.
    Retain,
    /// A transaction that has to repair a corrupt active.list first.
    Repair,
    /// Initialise a new root.
    Init,
    /// Register a mount.
    Mount,
}

fn op_for(point: &str) -> Op {
    match point {
        "stage.retire.rename" => Op::RemoveMoved,
        "stage.retire.unlink" => Op::RemoveUnlinked,
        "store.copy.fsync" | "stage.store.rename" => Op::SyncRetain,
        p if p.starts_with("pin.") => Op::Pin,
        p if p.starts_with("gc.") => Op::Gc,
        "store.rename" | "store.dirsync" => Op::Retain,
        p if p.starts_with("repair.") => Op::Repair,
        "init.dirsync" => Op::Init,
        "mount.rename" => Op::Mount,
        _ => Op::Add,
    }
}

/// A root at generation 4: user/a.hpkg active; b's content in the store
/// (added in 2, removed in 4); user/b2.hpkg holds b's content too (3).
fn setup() -> Scratch {
    let s = Scratch::new();
    let a = s.incoming(PLAIN[0], "a.hpkg");
    let b = s.incoming(PLAIN[1], "b.hpkg");
    s.root.add(&[a, b], Layer::User, false, "setup").unwrap();
    let b2 = s.incoming(PLAIN[1], "b2.hpkg");
    s.root.add(&[b2], Layer::User, false, "setup").unwrap();
    s.root.remove(&["user/b.hpkg"], false, "setup").unwrap();
    assert_eq!(s.root.current().unwrap().generation.number, 4);
    s
}

/// Run `op` with `point` failing; returns the result as text. `open` is an
/// open descriptor of user/a.hpkg (for `SyncRetain`).
fn run(s: &Scratch, op: Op, point: &str, open: &fs::File) -> Result<Vec<String>, String> {
    let r = &s.root;
    let l = s.layout();
    let result = match op {
        Op::Add => {
            let c = s.incoming(PLAIN[3], "c.hpkg");
            fail::cfg(point, "return").unwrap();
            r.add(&[c], Layer::Common, false, "add c")
                .map(|c| c.warnings)
        }
        Op::RemoveMoved => {
            fail::cfg(point, "return").unwrap();
            r.remove(&["a.hpkg"], false, "rm a").map(|c| c.warnings)
        }
        Op::RemoveUnlinked => {
            fail::cfg(point, "return").unwrap();
            r.remove(&["b2.hpkg"], false, "rm b2").map(|c| c.warnings)
        }
        Op::SyncRetain => {
            fs::remove_file(l.package_file(Layer::User, "a.hpkg")).unwrap();
            fail::cfg(point, "return").unwrap();
            let give = |_: &state::ActivePackage| open.try_clone().ok();
            r.sync_from_dirs("sync", &give)
                .map(|rep| rep.commit.warnings)
        }
        Op::Pin => {
            fail::cfg(point, "return").unwrap();
            r.pin(4)
        }
        Op::Gc => {
            fail::cfg(point, "return").unwrap();
            r.gc(1).map(|g| g.warnings)
        }
        Op::Retain => {
            let f = fs::File::open(fixtures().join(PLAIN[3])).unwrap();
            let h = file_hash(&fixtures().join(PLAIN[3]));
            let size = f.metadata().unwrap().len();
            fail::cfg(point, "return").unwrap();
            r.retain_from_fd(&f, h, size).map(|_| Vec::new())
        }
        Op::Repair => {
            let mut bytes = fs::read(l.active_list()).unwrap();
            bytes[40] ^= 1;
            fs::write(l.active_list(), bytes).unwrap();
            fail::cfg(point, "return").unwrap();
            r.gc(100).map(|g| g.warnings)
        }
        Op::Init => {
            fail::cfg(point, "return").unwrap();
            Root::init(s.dir.path().join("fresh")).map(|_| Vec::new())
        }
        Op::Mount => {
            fail::cfg(point, "return").unwrap();
            r.register_mount(4, std::path::Path::new("/mnt"))
                .map(|_| Vec::new())
        }
    };
    fail::remove(point);
    result.map_err(|e| e.to_string())
}

#[test]
fn every_failpoint_leaves_the_old_generation_in_force() {
    let scenario = FailScenario::setup();
    for &point in FAILPOINTS {
        let op = op_for(point);
        let s = setup();
        let l = s.layout().clone();
        let old = s.root.current().unwrap().generation;
        let open = fs::File::open(l.package_file(Layer::User, "a.hpkg")).unwrap();
        let result = run(&s, op, point, &open);
        let injected = format!("injected failure at failpoint {point}");
        match (point, &result) {
            // After the commit point: success, with a warning; the journal
            // is left for the next transaction.
            ("journal.remove", Ok(warnings)) => {
                assert!(
                    warnings.iter().any(|w| w.contains(&injected)),
                    "{warnings:?}"
                );
                assert_eq!(s.root.current().unwrap().generation.number, 5);
                assert!(l.journal().exists());
            }
            (_, Err(e)) => {
                assert!(e.contains(&injected), "{point}: failed otherwise: {e}");
                let now = s.root.current().unwrap();
                if op != Op::Repair {
                    assert!(!now.fallback, "{point}");
                    assert_eq!(
                        now.generation.packages, old.packages,
                        "{point}: old generation not in force"
                    );
                    assert_eq!(now.generation.number, old.number, "{point}");
                } else {
                    assert_eq!(now.generation.packages, old.packages, "{point}");
                }
                if matches!(
                    op,
                    Op::Add | Op::RemoveMoved | Op::RemoveUnlinked | Op::Gc | Op::Pin
                ) {
                    // The packages directories are exactly as before.
                    assert_consistent(&l, false);
                }
                if op == Op::Init {
                    assert!(!s.dir.path().join("fresh/system/state/active.list").exists());
                }
                if op == Op::Mount {
                    // No registration, not even its temporary, is left.
                    assert_eq!(fs::read_dir(l.mounts_dir()).unwrap().count(), 0);
                    assert_eq!(s.root.live_mounts().unwrap(), vec![]);
                }
            }
            (_, Ok(w)) => panic!("{point}: {op:?} did not fail ({w:?})"),
        }
        // The next transaction succeeds and cleans up.
        if op == Op::Init {
            Root::init(s.dir.path().join("fresh")).unwrap();
            assert_consistent(
                &Root::open(s.dir.path().join("fresh"))
                    .unwrap()
                    .layout()
                    .clone(),
                true,
            );
            continue;
        }
        if op == Op::SyncRetain {
            let give = |_: &state::ActivePackage| open.try_clone().ok();
            let rep = s.root.sync_from_dirs("sync", &give).unwrap();
            assert_eq!(rep.commit.removed.len(), 1, "{point}");
            assert!(
                l.store_file(&old.packages[0].hash).is_file(),
                "{point}: not retained"
            );
        }
        let d = s.incoming(PLAIN[2], "d.hpkg");
        let next = s
            .root
            // User: d is a ref_minimal, as b2 there (one package, one layer).
            .add(&[d], Layer::User, false, "next")
            .unwrap_or_else(|e| panic!("{point}: next: {e}"));
        assert!(next.changed, "{point}");
        let current = assert_consistent(&l, true);
        assert!(current.find(Layer::User, "d.hpkg").is_some());
        if op == Op::Pin {
            // Pinned or not, active.list agrees with the generation file.
            let own = read_gen(&l.generation_file(4));
            assert_eq!(s.root.generation(4).unwrap().pinned, own.pinned, "{point}");
        }
        let problems = s.root.verify().unwrap();
        assert_eq!(problems, vec![], "{point}");
    }
    scenario.teardown();
}

/// The undo of an interrupted commit keeps in the store exactly what a kept
/// generation references: a failed add leaves no store copy of its new
/// package, a failed sync keeps the copy it retained of a deleted active
/// package (the generation in force needs it).
#[test]
fn undo_keeps_exactly_the_referenced_store_files() {
    let scenario = FailScenario::setup();
    for point in ["stage.dirsync", "genfile.rename", "active.rename"] {
        let s = setup();
        let l = s.layout().clone();
        let c = s.incoming(PLAIN[3], "c.hpkg");
        let c_hash = file_hash(&c);
        fail::cfg(point, "return").unwrap();
        let added = s.root.add(&[&c], Layer::Common, false, "add c");
        fail::remove(point);
        assert!(added.is_err(), "{point}");
        assert!(!l.package_file(Layer::Common, "c.hpkg").exists(), "{point}");
        assert!(
            !l.store_file(&c_hash).exists(),
            "{point}: the undo kept a store file no generation references"
        );

        let a = l.package_file(Layer::User, "a.hpkg");
        let a_hash = file_hash(&a);
        let open = fs::File::open(&a).unwrap();
        fs::remove_file(&a).unwrap();
        let give = |_: &state::ActivePackage| open.try_clone().ok();
        fail::cfg(point, "return").unwrap();
        let synced = s.root.sync_from_dirs("sync", &give);
        fail::remove(point);
        assert!(synced.is_err(), "{point}");
        assert!(
            l.store_file(&a_hash).is_file(),
            "{point}: the undo dropped the retained copy generation 4 needs"
        );
        assert_eq!(s.root.current().unwrap().generation.number, 4);
        let missing: Vec<_> = s
            .root
            .verify()
            .unwrap()
            .into_iter()
            .filter(|p| matches!(p, state::VerifyProblem::Missing { .. }))
            .collect();
        assert_eq!(missing, vec![], "{point}");
    }
    scenario.teardown();
}

/// gc fsyncs a directory only when it removed something from it: with
/// `gc.dirsync` failing, a gc that removes nothing succeeds, and one that
/// removes only a store file fails.
#[test]
fn gc_syncs_exactly_the_directories_it_changed() {
    let scenario = FailScenario::setup();
    let s = setup();
    fail::cfg("gc.dirsync", "return").unwrap();
    let nothing = s.root.gc(100);
    let stray = state::Digest::of_bytes(b"stray");
    fs::write(s.layout().store_file(&stray), "stray").unwrap();
    let store_only = s.root.gc(100);
    fail::remove("gc.dirsync");
    scenario.teardown();
    let nothing = nothing.unwrap();
    assert!(nothing.removed_generations.is_empty() && nothing.removed_store_files.is_empty());
    let e = store_only.unwrap_err().to_string();
    assert!(
        e.contains("injected failure at failpoint gc.dirsync"),
        "{e}"
    );
}

/// A transaction with nothing to repair fsyncs nothing for repairs.
#[test]
fn begin_syncs_only_after_a_repair() {
    let scenario = FailScenario::setup();
    let s = setup();
    fail::cfg("repair.dirsync", "return").unwrap();
    let clean = s.root.gc(100);
    // An orphan generation file (above the current one) needs a repair.
    fs::copy(s.layout().generation_file(4), s.layout().generation_file(9)).unwrap();
    let orphan = s.root.gc(100);
    fail::remove("repair.dirsync");
    scenario.teardown();
    assert!(clean.is_ok(), "{clean:?}");
    let e = orphan.unwrap_err().to_string();
    assert!(
        e.contains("injected failure at failpoint repair.dirsync"),
        "{e}"
    );
}

/// The undo of a failed add never destroys the only copy of content a kept
/// generation references: a package file deleted by hand comes back with
/// an add of the same content, and if that add fails after placing the
/// file, the copy goes into the store.
#[test]
fn undo_keeps_referenced_content_it_placed() {
    let scenario = FailScenario::setup();
    let s = setup();
    let l = s.layout().clone();
    let a = l.package_file(Layer::User, "a.hpkg");
    let a_hash = file_hash(&a);
    fs::remove_file(&a).unwrap();
    let gone = s.root.remove(&["user/a.hpkg"], false, "rm a").unwrap();
    assert!(gone.warnings.iter().any(|w| w.contains("deleted by hand")));
    assert!(!l.store_file(&a_hash).exists());
    let again = s.incoming(PLAIN[0], "again.hpkg");
    fail::cfg("genfile.rename", "return").unwrap();
    let added = s.root.add(&[&again], Layer::Common, false, "again");
    fail::remove("genfile.rename");
    scenario.teardown();
    assert!(added.is_err());
    assert!(!l.package_file(Layer::Common, "again.hpkg").exists());
    assert!(
        l.store_file(&a_hash).is_file(),
        "generation 4 references that content: its copy must stay"
    );
}

/// Each failpoint name is a real step (sanity for the list in the crate).
#[test]
fn failpoint_list_has_no_duplicates() {
    let mut names: Vec<&str> = FAILPOINTS.to_vec();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), FAILPOINTS.len());
}
