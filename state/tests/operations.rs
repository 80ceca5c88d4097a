//! Package operations on real roots: init, add, remove, rollback, pin, gc,
//! verify, sync from directories, retention, fallback, locking.

mod common;

use std::fs;
use std::time::Duration;

use common::*;
use state::{Digest, Error, Generation, Layer, LockWait, Root, VerifyProblem};

#[test]
fn init_creates_layout_and_generation_one() {
    let s = Scratch::new();
    let l = s.layout();
    for dir in l.directories() {
        assert!(dir.is_dir(), "{}", dir.display());
    }
    let g = assert_consistent(l, true);
    assert_eq!((g.number, g.parent, g.packages.len()), (1, None, 0));
    assert_eq!(g.reason, "init");
    // Idempotent: no new generation.
    Root::init(l.root()).unwrap();
    assert_eq!(s.root.current().unwrap().generation.number, 1);
    assert_eq!(s.root.generations().unwrap().generations.len(), 1);
}

#[test]
fn init_adopts_existing_packages_and_refuses_foreign_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path().join("r");
    fs::create_dir_all(r.join("user/packages")).unwrap();
    fs::create_dir_all(r.join("system/packages")).unwrap();
    fs::copy(fixtures().join(PLAIN[0]), r.join("user/packages/b.hpkg")).unwrap();
    fs::copy(fixtures().join(PLAIN[1]), r.join("user/packages/a.hpkg")).unwrap();
    fs::copy(fixtures().join(PLAIN[2]), r.join("system/packages/z.hpkg")).unwrap();
    fs::write(r.join("user/packages/README"), "not a package").unwrap();
    let root = Root::init(&r).unwrap();
    let g = root.current().unwrap().generation;
    let names: Vec<String> = g.packages.iter().map(|p| p.display_name()).collect();
    assert_eq!(names, ["system/z.hpkg", "user/a.hpkg", "user/b.hpkg"]);
    assert_eq!(g.packages[2].hash, file_hash(&fixtures().join(PLAIN[0])));

    // An invalid package there: init fails and commits nothing.
    let r2 = dir.path().join("r2");
    fs::create_dir_all(r2.join("common/packages")).unwrap();
    fs::write(r2.join("common/packages/bad.hpkg"), b"hpkg but not really").unwrap();
    let e = Root::init(&r2).unwrap_err();
    assert!(matches!(e, Error::InvalidPackage { .. }), "{e}");
    assert!(!r2.join("system/state/active.list").exists());
    fs::remove_file(r2.join("common/packages/bad.hpkg")).unwrap();
    Root::init(&r2).unwrap();

    // A directory with something else in it is refused.
    let r3 = dir.path().join("r3");
    fs::create_dir_all(&r3).unwrap();
    fs::write(r3.join("notes.txt"), "x").unwrap();
    let e = Root::init(&r3).unwrap_err();
    assert!(
        matches!(e, Error::NotEmpty { ref entry, .. } if entry == "notes.txt"),
        "{e}"
    );
    assert!(matches!(Root::open(&r3), Err(Error::NotARoot { .. })));
}

#[test]
fn add_remove_rollback_retains_files() {
    let s = Scratch::new();
    let l = s.layout();
    let a = s.incoming(PLAIN[0], "a.hpkg");
    let b = s.incoming(PLAIN[1], "b b.hpkg");
    let c = s.incoming(PLAIN[3], "c.hpkg");
    let c1 = s
        .root
        .add(&[&a, &b], Layer::User, false, "add a b")
        .unwrap();
    assert!(c1.changed);
    assert_eq!((c1.generation.number, c1.generation.parent), (2, Some(1)));
    assert_eq!(c1.added.len(), 2);
    let c2 = s.root.add(&[&c], Layer::System, false, "add c").unwrap();
    assert_eq!(c2.generation.number, 3);
    let order: Vec<String> = c2
        .generation
        .packages
        .iter()
        .map(|p| p.display_name())
        .collect();
    assert_eq!(order, ["user/a.hpkg", "user/b b.hpkg", "system/c.hpkg"]);
    assert_consistent(l, true);

    // Remove by package name ("example" is a.hpkg's package name) and by file name.
    let r = s
        .root
        .remove(&["example", "system/c.hpkg"], false, "remove")
        .unwrap();
    assert_eq!(r.generation.number, 4);
    assert_eq!(r.removed.len(), 2);
    let a_hash = file_hash(&a);
    assert!(!l.package_file(Layer::User, "a.hpkg").exists());
    assert!(l.store_file(&a_hash).is_file(), "retained in the store");
    assert_eq!(
        s.root.resolve_path(&c2.generation.packages[0]),
        l.store_file(&a_hash)
    );
    assert_consistent(l, true);

    // Rollback (default: parent) restores both files with identical content.
    let rb = s.root.rollback(None, "rollback").unwrap();
    assert_eq!((rb.generation.number, rb.generation.parent), (5, Some(4)));
    assert_eq!(rb.generation.packages, c2.generation.packages);
    assert_eq!(
        fs::read(l.package_file(Layer::User, "a.hpkg")).unwrap(),
        fs::read(&a).unwrap()
    );
    assert_eq!(
        fs::read(l.package_file(Layer::System, "c.hpkg")).unwrap(),
        fs::read(&c).unwrap()
    );
    // Renamed back (no other generation needs the store copy under another name).
    assert!(!l.store_file(&a_hash).exists());
    assert_consistent(l, true);
    assert_eq!(s.root.verify().unwrap(), vec![]);

    // Rolling back again toggles to generation 4's set.
    let rb2 = s.root.rollback(None, "rollback").unwrap();
    assert_eq!(rb2.generation.packages, r.generation.packages);
    // Rollback to an explicit generation, and to the current one (no change).
    let rb3 = s.root.rollback(Some(1), "to 1").unwrap();
    assert!(rb3.generation.packages.is_empty());
    assert_eq!(visible_files(l, Layer::User).len(), 0);
    let same = s
        .root
        .rollback(Some(rb3.generation.number), "noop")
        .unwrap();
    assert!(!same.changed);
    assert!(matches!(
        s.root.rollback(Some(99), "x"),
        Err(Error::NoSuchGeneration(99))
    ));
    assert_consistent(l, true);
    assert_eq!(s.root.verify().unwrap(), vec![]);
}

#[test]
fn same_content_under_two_names_stays_reachable() {
    let s = Scratch::new();
    let l = s.layout();
    let a = s.incoming(PLAIN[0], "a.hpkg");
    let a2 = s.incoming(PLAIN[0], "a2.hpkg");
    s.root.add(&[a], Layer::User, false, "a").unwrap();
    // Forced: the same package in two layers. Gen 3: both.
    s.root.add(&[a2], Layer::Common, true, "a2").unwrap();
    s.root
        .remove(&["user/a.hpkg", "common/a2.hpkg"], false, "rm")
        .unwrap(); // gen 4: none
    s.root.rollback(Some(2), "to 2").unwrap(); // only user/a.hpkg
                                               // The store copy must stay: generation 3 still needs common/a2.hpkg.
    assert_consistent(l, true);
    assert_eq!(s.root.verify().unwrap(), vec![]);
    s.root.rollback(Some(3), "to 3").unwrap();
    assert_consistent(l, true);
    assert_eq!(visible_files(l, Layer::Common).len(), 1);
}

#[test]
fn name_clash_duplicates_and_ambiguity() {
    let s = Scratch::new();
    let a = s.incoming(PLAIN[1], "m.hpkg");
    s.root.add(&[&a], Layer::User, false, "m").unwrap();
    // Same content again: nothing to do.
    let again = s.root.add(&[&a], Layer::User, false, "m").unwrap();
    assert!(!again.changed);
    assert!(again.warnings.iter().any(|w| w.contains("already active")));
    // Different content under the same name: refused, unless forced.
    let other = s.incoming(PLAIN[0], "x.hpkg");
    let renamed = s.dir.path().join("in/m2");
    fs::create_dir(&renamed).unwrap();
    let clash = renamed.join("m.hpkg");
    fs::copy(&other, &clash).unwrap();
    let e = s
        .root
        .add(&[&clash], Layer::User, false, "clash")
        .unwrap_err();
    assert!(matches!(e, Error::NameClash { .. }), "{e}");
    let forced = s.root.add(&[&clash], Layer::User, true, "clash").unwrap();
    assert_eq!(forced.removed.len(), 1);
    assert_eq!(
        file_hash(&s.layout().package_file(Layer::User, "m.hpkg")),
        file_hash(&clash)
    );
    assert_consistent(s.layout(), true);
    assert_eq!(s.root.verify().unwrap(), vec![]);
    // Name given twice.
    let e = s
        .root
        .add(&[&a, &a], Layer::Common, false, "dup")
        .unwrap_err();
    assert!(matches!(e, Error::DuplicateName { .. }), "{e}");
    // Two active packages named ref_minimal: removing by name is ambiguous.
    let b = s.incoming(PLAIN[2], "buildpkg.hpkg");
    s.root.add(&[&a, &b], Layer::Common, false, "two").unwrap();
    let e = s.root.remove(&["ref_minimal"], false, "rm").unwrap_err();
    match e {
        Error::Ambiguous { candidates, .. } => {
            assert_eq!(candidates, ["common/m.hpkg", "common/buildpkg.hpkg"])
        }
        other => panic!("{other}"),
    }
    let e = s.root.remove(&["nothing"], false, "rm").unwrap_err();
    assert!(matches!(e, Error::NotActive { .. }));
    // A failed add leaves no temporaries.
    let bad = s.dir.path().join("in/bad.hpkg");
    fs::write(&bad, b"not a package").unwrap();
    let e = s.root.add(&[&bad], Layer::User, false, "bad").unwrap_err();
    assert!(
        matches!(e, Error::InvalidPackage { ref path, .. } if *path == bad),
        "{e}"
    );
    assert_consistent(s.layout(), true);
}

#[test]
fn one_package_name_is_active_in_one_layer_only() {
    let s = Scratch::new();
    let l = s.layout();
    // PLAIN[1] and PLAIN[2] are both packages named ref_minimal.
    let m = s.incoming(PLAIN[1], "m.hpkg");
    let other = s.incoming(PLAIN[2], "buildpkg.hpkg");
    let example = s.incoming(PLAIN[0], "example.hpkg");
    s.root.add(&[&m], Layer::System, false, "m").unwrap();
    let before = s.root.current().unwrap().generation;

    // In another layer: refused, naming both files and layers.
    let e = s
        .root
        .add(&[&example, &other], Layer::User, false, "other")
        .unwrap_err();
    match &e {
        Error::ActiveInOtherLayer {
            name,
            layer,
            file,
            other_layer,
            other_file,
        } => {
            assert_eq!(name, "ref_minimal");
            assert_eq!((*layer, file.as_str()), (Layer::User, "buildpkg.hpkg"));
            assert_eq!(
                (*other_layer, other_file.as_str()),
                (Layer::System, "m.hpkg")
            );
        }
        other => panic!("{other}"),
    }
    let text = e.to_string();
    assert!(
        text.contains("user/buildpkg.hpkg") && text.contains("system/m.hpkg"),
        "{text}"
    );
    assert_eq!(s.root.current().unwrap().generation, before);
    assert_consistent(l, true);

    // Same layer: told apart by file name, as before.
    let c = s
        .root
        .add(&[&other], Layer::System, false, "same layer")
        .unwrap();
    assert_eq!(c.added.len(), 1);
    s.root
        .remove(&["system/buildpkg.hpkg"], false, "rm")
        .unwrap();

    // --force keeps both, with a warning.
    let c = s
        .root
        .add(&[&other], Layer::Common, true, "forced")
        .unwrap();
    assert!(c.generation.find(Layer::Common, "buildpkg.hpkg").is_some());
    assert!(c.generation.find(Layer::System, "m.hpkg").is_some());
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("common/buildpkg.hpkg") && w.contains("system/m.hpkg")),
        "{:?}",
        c.warnings
    );
    assert_consistent(l, true);
}

#[test]
fn sync_rejects_a_drop_in_whose_name_is_active_in_another_layer() {
    let s = Scratch::new();
    let l = s.layout();
    let m = s.incoming(PLAIN[1], "m.hpkg");
    s.root.add(&[&m], Layer::System, false, "m").unwrap();
    let none = |_: &state::ActivePackage| None;
    // ref_minimal again, dropped into the user layer, and into system.
    let dropped = l.package_file(Layer::User, "drop.hpkg");
    fs::copy(fixtures().join(PLAIN[2]), &dropped).unwrap();
    let same_layer = l.package_file(Layer::System, "drop2.hpkg");
    fs::copy(fixtures().join(PLAIN[2]), &same_layer).unwrap();
    let r = s.root.sync_from_dirs("sync", &none).unwrap();
    assert_eq!(r.rejected.len(), 1, "{:?}", r.rejected);
    let rej = &r.rejected[0];
    assert_eq!((rej.layer, &rej.path), (Layer::User, &dropped));
    assert!(
        rej.reason.contains("\"ref_minimal\"") && rej.reason.contains("system/m.hpkg"),
        "{}",
        rej.reason
    );
    let g = r.commit.generation;
    assert!(g.find(Layer::User, "drop.hpkg").is_none());
    assert!(g.find(Layer::System, "drop2.hpkg").is_some());
    // Still rejected next time; accepted once the other is gone.
    let r = s.root.sync_from_dirs("sync", &none).unwrap();
    assert!(!r.commit.changed);
    assert_eq!(r.rejected.len(), 1);
    fs::remove_file(l.package_file(Layer::System, "m.hpkg")).unwrap();
    fs::remove_file(&same_layer).unwrap();
    let r = s.root.sync_from_dirs("sync", &none).unwrap();
    assert_eq!(r.rejected, vec![]);
    assert!(r.commit.generation.find(Layer::User, "drop.hpkg").is_some());
}

#[test]
fn dependencies_refused_unless_forced() {
    let s = Scratch::new();
    let tipster = s.incoming("haiku/tipster-1.1.1-1-x86_64.hpkg", "tipster.hpkg");
    let e = s
        .root
        .add(&[&tipster], Layer::User, false, "t")
        .unwrap_err();
    match &e {
        Error::Dependencies { problems } => {
            assert_eq!(problems.len(), 1);
            assert!(
                problems[0]
                    .to_string()
                    .contains("requires haiku >= r1~beta1_hrev52295_129-1"),
                "{e}"
            );
        }
        other => panic!("{other}"),
    }
    assert_eq!(s.root.current().unwrap().generation.number, 1);
    assert_consistent(s.layout(), true);
    let c = s.root.add(&[tipster], Layer::User, true, "t").unwrap();
    assert_eq!(c.forced.len(), 1);
    let report = s.root.check_dependencies(&c.generation);
    assert_eq!(report.problems, c.forced);
    // An unrelated add is not blocked by the problem already there.
    let a = s.incoming(PLAIN[0], "a.hpkg");
    let c2 = s.root.add(&[a], Layer::User, false, "a").unwrap();
    assert!(c2.forced.is_empty());
    assert!(c2.warnings.iter().any(|w| w.contains("already present")));
}

#[test]
fn pin_and_gc() {
    let s = Scratch::new();
    let l = s.layout();
    for (i, rel) in PLAIN.iter().enumerate() {
        let f = s.incoming(rel, &format!("p{i}.hpkg"));
        s.root.add(&[f], Layer::User, false, "add").unwrap(); // gens 2..=5
    }
    for i in 0..4 {
        s.root.remove(&[format!("p{i}.hpkg")], false, "rm").unwrap(); // gens 6..=9
    }
    let stored: usize = fs::read_dir(l.store_dir()).unwrap().count();
    assert_eq!(stored, 4);
    s.root.pin(3).unwrap();
    assert!(s.root.generation(3).unwrap().pinned);
    assert!(matches!(s.root.pin(42), Err(Error::NoSuchGeneration(42))));
    let report = s.root.gc(2).unwrap();
    assert_eq!(report.removed_generations, [1, 2, 4, 5, 6, 7]);
    let kept: Vec<u64> = s
        .root
        .generations()
        .unwrap()
        .generations
        .iter()
        .map(|g| g.number)
        .collect();
    assert_eq!(kept, [3, 8, 9]);
    // Generation 3 has p0 and p1; 8 has p3; so p2's store file went.
    assert_eq!(report.removed_store_files.len(), 1);
    assert_eq!(
        report.removed_store_files[0],
        file_hash(&fixtures().join(PLAIN[2]))
    );
    assert!(report.freed_bytes > 0);
    assert_consistent(l, true);
    assert_eq!(s.root.verify().unwrap(), vec![]);
    // Pinned generation 3 can still be rolled back to.
    let rb = s.root.rollback(Some(3), "to 3").unwrap();
    assert_eq!(rb.generation.packages.len(), 2);
    assert_consistent(l, true);
    s.root.unpin(3).unwrap();
    let report = s.root.gc(1).unwrap();
    assert_eq!(report.removed_generations, [3, 8, 9]);
    // Only the current generation is left, and its files are all in packages/.
    assert_eq!(fs::read_dir(l.store_dir()).unwrap().count(), 0);
    assert_consistent(l, true);
    // Pinning the current generation shows in active.list too.
    let n = s.root.current().unwrap().generation.number;
    s.root.pin(n).unwrap();
    assert!(s.root.current().unwrap().generation.pinned);
}

#[test]
fn gc_leaves_foreign_store_files_alone_and_says_so() {
    let s = Scratch::new();
    let store = s.layout().store_dir();
    fs::write(store.join("notes.txt"), "mine").unwrap();
    let temp = store.join(".x.hpkg.tmp-1-0");
    fs::write(&temp, "in progress").unwrap();
    let stray = Digest::of_bytes(b"stray");
    fs::write(s.layout().store_file(&stray), "stray").unwrap();
    let report = s.root.gc(1).unwrap();
    assert_eq!(report.removed_store_files, [stray]);
    assert_eq!(report.freed_bytes, 5);
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(
        report.warnings[0].contains("notes.txt: unknown file in the store, left alone"),
        "{:?}",
        report.warnings
    );
    assert!(store.join("notes.txt").exists());
}

#[test]
fn verify_detects_modified_and_missing_files() {
    let s = Scratch::new();
    let l = s.layout();
    let a = s.incoming(PLAIN[0], "a.hpkg");
    let b = s.incoming(PLAIN[1], "b.hpkg");
    s.root.add(&[a, b], Layer::User, false, "ab").unwrap();
    s.root.remove(&["b.hpkg"], false, "rm b").unwrap();
    assert_eq!(s.root.verify().unwrap(), vec![]);
    // Flip one byte of a.hpkg in place.
    let path = l.package_file(Layer::User, "a.hpkg");
    let mut bytes = fs::read(&path).unwrap();
    bytes[100] ^= 1;
    fs::write(&path, &bytes).unwrap();
    // Delete b's store copy.
    let b_hash = file_hash(&fixtures().join(PLAIN[1]));
    fs::remove_file(l.store_file(&b_hash)).unwrap();
    let problems = s.root.verify().unwrap();
    // a is wrong in generations 2 and 3; b is missing in generation 2.
    let mismatches = problems.iter().filter(|p| matches!(p, VerifyProblem::Mismatch { package, .. } if package.file_name == "a.hpkg")).count();
    let missing = problems.iter().filter(|p| matches!(p, VerifyProblem::Missing { generation: 2, package } if package.file_name == "b.hpkg")).count();
    assert_eq!(
        (mismatches, missing, problems.len()),
        (2, 1, 3),
        "{problems:?}"
    );
    // A corrupt generation file is reported too.
    let g2 = l.generation_file(2);
    let mut text = fs::read(&g2).unwrap();
    text[30] ^= 4;
    fs::write(&g2, text).unwrap();
    let problems = s.root.verify().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, VerifyProblem::CorruptList { path, .. } if *path == g2)),
        "{problems:?}"
    );
}

#[test]
fn a_transaction_first_repairs_what_it_finds() {
    use std::os::unix::fs::MetadataExt;
    let s = Scratch::new();
    let l = s.layout();
    let a = s.incoming(PLAIN[0], "a.hpkg");
    let b = s.incoming(PLAIN[3], "b.hpkg");
    s.root.add(&[a], Layer::User, false, "a").unwrap();
    let current = s
        .root
        .add(&[b], Layer::User, false, "b")
        .unwrap()
        .generation;
    let inode = |p: &std::path::Path| fs::metadata(p).unwrap().ino();

    // Nothing to repair: active.list and the generation file stay as they are.
    let before = (inode(&l.active_list()), inode(&l.generation_file(3)));
    assert!(s.root.gc(100).unwrap().warnings.is_empty());
    assert_eq!(
        (inode(&l.active_list()), inode(&l.generation_file(3))),
        before
    );

    // A valid generation file that disagrees with active.list is rewritten.
    let wrong = Generation {
        packages: current.packages[..1].to_vec(),
        ..current.clone()
    };
    fs::write(l.generation_file(3), wrong.encode().unwrap()).unwrap();
    let w = s.root.gc(100).unwrap().warnings;
    assert!(
        w.iter().any(|w| w.contains("rewrote generations/3.list")),
        "{w:?}"
    );
    assert_eq!(read_gen(&l.generation_file(3)).packages, current.packages);

    // A pin that reached the generation file but not active.list is finished.
    s.root.pin(3).unwrap();
    fs::write(l.active_list(), current.encode().unwrap()).unwrap();
    assert!(!s.root.current().unwrap().generation.pinned);
    s.root.gc(100).unwrap();
    assert!(s.root.current().unwrap().generation.pinned);
    assert!(read_gen(&l.active_list()).pinned);

    // A corrupt journal is ignored with a warning, and removed.
    fs::write(l.journal(), b"not a journal").unwrap();
    let w = s.root.gc(100).unwrap().warnings;
    assert!(
        w.iter().any(|w| w.contains("ignored a corrupt journal")),
        "{w:?}"
    );
    assert!(!l.journal().exists());

    // A journal that cannot be read stops the transaction.
    fs::create_dir(l.journal()).unwrap();
    let e = s.root.gc(100).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
    fs::remove_dir(l.journal()).unwrap();
    assert_consistent(l, true);
}

#[test]
fn corrupt_active_list_falls_back_loudly_and_is_repaired() {
    let s = Scratch::new();
    let l = s.layout();
    let a = s.incoming(PLAIN[0], "a.hpkg");
    s.root.add(&[a], Layer::User, false, "a").unwrap();
    let mut bytes = fs::read(l.active_list()).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x10;
    fs::write(l.active_list(), &bytes).unwrap();
    let loaded = s.root.current().unwrap();
    assert!(loaded.fallback);
    assert_eq!(loaded.generation.number, 2);
    assert!(
        loaded.warnings[0].contains("WARNING: active.list is unusable"),
        "{:?}",
        loaded.warnings
    );
    // A torn newest generation file is skipped too.
    fs::write(l.generation_file(2), b"packagefs-active-list 1\ngenera").unwrap();
    let loaded = s.root.current().unwrap();
    assert_eq!(loaded.generation.number, 1);
    assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
    // The next transaction repairs active.list (from generation 1) and goes on.
    let b = s.incoming(PLAIN[1], "b.hpkg");
    let c = s.root.add(&[b], Layer::User, false, "b").unwrap();
    assert!(
        c.warnings.iter().any(|w| w.contains("rewrote active.list")),
        "{:?}",
        c.warnings
    );
    assert_eq!(
        c.generation.number, 3,
        "numbers never reuse a corrupt file's number"
    );
    assert!(!s.root.current().unwrap().fallback);
    // Nothing valid at all.
    fs::write(l.active_list(), b"").unwrap();
    for n in 1..=3 {
        let _ = fs::remove_file(l.generation_file(n));
    }
    assert!(matches!(
        s.root.current(),
        Err(Error::NoValidGeneration { .. })
    ));
}

#[test]
fn sync_from_dirs_follows_the_directories() {
    let s = Scratch::new();
    let l = s.layout();
    let a = s.incoming(PLAIN[0], "a.hpkg");
    s.root.add(&[&a], Layer::User, false, "a").unwrap();
    let none = |_: &state::ActivePackage| None;
    // Nothing changed: no generation.
    let r = s.root.sync_from_dirs("sync", &none).unwrap();
    assert!(!r.commit.changed);
    // A new file dropped in, a half-copied one, and a hidden temporary.
    fs::copy(
        fixtures().join(PLAIN[1]),
        l.package_file(Layer::Common, "new.hpkg"),
    )
    .unwrap();
    let full = fs::read(fixtures().join(PLAIN[3])).unwrap();
    fs::write(
        l.package_file(Layer::Common, "half.hpkg"),
        &full[..full.len() / 2],
    )
    .unwrap();
    fs::write(l.packages_dir(Layer::Common).join(".copying.hpkg"), b"x").unwrap();
    let r = s.root.sync_from_dirs("sync", &none).unwrap();
    assert!(r.commit.changed);
    assert_eq!(r.commit.added.len(), 1);
    assert_eq!(r.commit.added[0].display_name(), "common/new.hpkg");
    assert_eq!(r.rejected.len(), 1);
    assert!(r.rejected[0].path.ends_with("half.hpkg"));
    // The copy completes: activated by the next sync.
    fs::write(l.package_file(Layer::Common, "half.hpkg"), &full).unwrap();
    let r = s.root.sync_from_dirs("sync", &none).unwrap();
    assert_eq!(r.commit.added.len(), 1);
    assert!(r.rejected.is_empty());
    // Deleted by hand while the daemon holds it open: retained from the descriptor.
    let path = l.package_file(Layer::User, "a.hpkg");
    let open = fs::File::open(&path).unwrap();
    fs::remove_file(&path).unwrap();
    let give =
        |p: &state::ActivePackage| (p.file_name == "a.hpkg").then(|| open.try_clone().unwrap());
    let r = s.root.sync_from_dirs("sync", &give).unwrap();
    assert_eq!(r.commit.removed.len(), 1);
    assert_eq!(
        fs::read(l.store_file(&file_hash(&a))).unwrap(),
        fs::read(&a).unwrap()
    );
    assert_eq!(s.root.verify().unwrap(), vec![]);
    // ... and rollback brings it back.
    s.root.rollback(None, "rollback").unwrap();
    assert_eq!(fs::read(&path).unwrap(), fs::read(&a).unwrap());
    // Deleted without an open copy: deactivated with a warning.
    fs::remove_file(l.package_file(Layer::Common, "new.hpkg")).unwrap();
    let r = s.root.sync_from_dirs("sync", &none).unwrap();
    assert_eq!(r.commit.removed.len(), 1);
    assert!(
        r.commit.warnings.iter().any(|w| w.contains("lost it")),
        "{:?}",
        r.commit.warnings
    );
    assert!(!s.root.verify().unwrap().is_empty());
}

#[test]
fn retain_from_fd_checks_content() {
    let s = Scratch::new();
    let a = fixtures().join(PLAIN[0]);
    let f = fs::File::open(&a).unwrap();
    let h = file_hash(&a);
    let size = fs::metadata(&a).unwrap().len();
    assert!(s.root.retain_from_fd(&f, h, size).unwrap());
    assert!(!s.root.retain_from_fd(&f, h, size).unwrap());
    assert_eq!(
        fs::read(s.layout().store_file(&h)).unwrap(),
        fs::read(&a).unwrap()
    );
    let wrong = state::Digest::of_bytes(b"other");
    let e = s.root.retain_from_fd(&f, wrong, size).unwrap_err();
    assert!(matches!(e, Error::ContentMismatch { .. }), "{e}");
    assert!(!s.layout().store_file(&wrong).exists());
    assert!(leftovers(s.layout()).is_empty());
}

#[test]
fn lock_timeout_and_blocked_entries() {
    let s = Scratch::new();
    let held = state::lock::acquire(&s.layout().lock_file(), LockWait::Block).unwrap();
    let impatient = Root::open(s.layout().root())
        .unwrap()
        .with_lock_wait(LockWait::Timeout(Duration::from_millis(20)));
    assert!(matches!(impatient.gc(1), Err(Error::LockTimeout { .. })));
    drop(held);
    impatient.gc(1).unwrap();

    assert_eq!(s.root.blocked_entries().unwrap(), Vec::<String>::new());
    fs::write(
        s.layout().blocked_entries(),
        "# hidden\n\n/boot/home/x \nsystem/bin/y\n",
    )
    .unwrap();
    assert_eq!(
        s.root.blocked_entries().unwrap(),
        ["/boot/home/x", "system/bin/y"]
    );
}

#[test]
fn interrupted_transaction_is_undone_by_the_next() {
    // Simulate a crash after the journal was written and files were moved,
    // before the commit: the next transaction undoes the moves.
    let s = Scratch::new();
    let l = s.layout();
    let a = s.incoming(PLAIN[0], "a.hpkg");
    s.root.add(&[&a], Layer::User, false, "a").unwrap();
    let before = assert_consistent(l, true);
    let h = file_hash(&a);
    let journal = state::journal::Journal {
        target: 3,
        ops: vec![
            state::journal::JournalOp::Retire {
                layer: Layer::User,
                name: "a.hpkg".into(),
                hash: h,
                moved: true,
            },
            state::journal::JournalOp::Place {
                layer: Layer::System,
                name: "n.hpkg".into(),
                hash: file_hash(&fixtures().join(PLAIN[1])),
                from_store: false,
            },
        ],
    };
    fs::write(l.journal(), journal.encode()).unwrap();
    fs::rename(l.package_file(Layer::User, "a.hpkg"), l.store_file(&h)).unwrap();
    fs::copy(
        fixtures().join(PLAIN[1]),
        l.package_file(Layer::System, "n.hpkg"),
    )
    .unwrap();
    fs::write(
        l.packages_dir(Layer::System).join(".n.hpkg.tmp-1-2"),
        b"partial",
    )
    .unwrap();
    let mut g3 = before.clone();
    g3.number = 3;
    g3.parent = Some(2);
    fs::write(l.generation_file(3), g3.encode().unwrap()).unwrap();
    // Readers still see generation 2, whole.
    assert_eq!(s.root.current().unwrap().generation, before);
    let report = s.root.gc(10).unwrap();
    assert!(
        report.warnings.iter().any(|w| w.contains("interrupted")),
        "{:?}",
        report.warnings
    );
    let after = assert_consistent(l, true);
    assert_eq!(after, before);
    assert!(!l.store_file(&h).exists());
    // The next commit gets number 3.
    let b = s.incoming(PLAIN[3], "b.hpkg");
    assert_eq!(
        s.root
            .add(&[b], Layer::User, false, "b")
            .unwrap()
            .generation
            .number,
        3
    );
}

#[test]
fn json_shapes_are_stable() {
    fn sync_send<T: Send + Sync>() {}
    sync_send::<Root>();
    let s = Scratch::new();
    let a = s.incoming(PLAIN[0], "a.hpkg");
    let c = s
        .root
        .add(&[&a], Layer::User, false, "pkgctl add a.hpkg")
        .unwrap();
    let text = serde_json::to_string(&c.generation).unwrap();
    assert!(
        text.starts_with(r#"{"number":2,"parent":1,"time":""#),
        "{text}"
    );
    assert!(text.contains(r#"","reason":"pkgctl add a.hpkg","pinned":false,"packages":[{"layer":"user","file_name":"a.hpkg","size":"#), "{text}");
    let v = serde_json::to_value(&c.generation).unwrap();
    assert_eq!(v["parent"], 1);
    assert!(v["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        v["packages"][0],
        serde_json::json!({
            "layer": "user",
            "file_name": "a.hpkg",
            "size": fs::metadata(&a).unwrap().len(),
            "hash": file_hash(&a).to_hex(),
        })
    );
    let c = serde_json::to_value(&c).unwrap();
    let keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "added",
            "changed",
            "forced",
            "generation",
            "removed",
            "warnings"
        ]
    );
}
