//! A package root with state: the mount shows the generation in force (in
//! its order, from the packages directories or the store), `--generation N`
//! / `previous` / `-o generation=N` show an older one without changing the
//! disk, `blocked-entries` hides paths, and a package with an unmet
//! requirement is not mounted. A root without a state directory is covered
//! by `mount_layers` (directory scan).

mod state_common;

use packagefs_tests::PackagefsMount;
use state::{Layer, Root};
use state_common::{expected, files, Scratch};

/// Generation 1: alpha (system); 2: + beta (system); 3: + gamma (user).
fn three_generations(s: &Scratch) -> Root {
    let (_, root) = s.root_with(&["alpha"]);
    assert_eq!(root.current().unwrap().generation.number, 1);
    root.add(&[s.package("beta", &[])], Layer::System, false, "add beta")
        .unwrap();
    root.add(&[s.package("gamma", &[])], Layer::User, false, "add gamma")
        .unwrap();
    assert_eq!(root.current().unwrap().generation.number, 3);
    root
}

fn state_snapshot(s: &Scratch) -> Vec<(String, Vec<u8>)> {
    let dir = s.root().join("system/state");
    // The lock, and the mounts' registrations (which gc reads), are not the
    // state a mount must leave alone.
    let mut out: Vec<(String, Vec<u8>)> = files(&dir)
        .into_iter()
        .filter(|(p, _)| p != "lock" && !p.starts_with("mounts/"))
        .collect();
    out.sort();
    out
}

#[test]
fn the_mount_shows_the_current_generation() {
    let s = Scratch::new();
    let _root = three_generations(&s);
    let m = PackagefsMount::new(&[&s.root()], &[]);
    assert_eq!(files(m.path()), expected(&["alpha", "beta", "gamma"]));
}

#[test]
fn older_generations_mount_read_only_and_change_nothing() {
    let s = Scratch::new();
    let root = three_generations(&s);
    let before = state_snapshot(&s);
    let g1 = PackagefsMount::new(&[&s.root()], &["--generation", "1"]);
    assert_eq!(files(g1.path()), expected(&["alpha"]));
    let prev = PackagefsMount::new(&[&s.root()], &["--generation", "previous"]);
    assert_eq!(files(prev.path()), expected(&["alpha", "beta"]));
    let fstab = PackagefsMount::new(&[&s.root()], &["-o", "generation=1"]);
    assert_eq!(files(fstab.path()), expected(&["alpha"]));
    assert_eq!(state_snapshot(&s), before, "mounting changed the state");
    assert_eq!(root.current().unwrap().generation.number, 3);

    // A generation whose package left the packages directory is mounted
    // from the store.
    root.remove(&["beta"], false, "remove beta").unwrap();
    assert!(!s
        .root()
        .join("system/packages/beta-1.0-1-any.hpkg")
        .exists());
    let cur = PackagefsMount::new(&[&s.root()], &[]);
    assert_eq!(files(cur.path()), expected(&["alpha", "gamma"]));
    let prev = PackagefsMount::new(&[&s.root()], &["--generation", "previous"]);
    assert_eq!(files(prev.path()), expected(&["alpha", "beta", "gamma"]));

    // No such generation: the mount fails and says so.
    let err = PackagefsMount::try_new(&[&s.root()], &["--generation", "99"])
        .expect_err("generation 99 mounted");
    assert!(err.contains("99"), "{err}");
}

#[test]
fn blocked_entries_are_hidden() {
    let s = Scratch::new();
    let _root = three_generations(&s);
    std::fs::write(
        s.root().join("system/state/blocked-entries"),
        "# hide beta's file\n/data/beta.txt\n",
    )
    .unwrap();
    let m = PackagefsMount::new(&[&s.root()], &[]);
    assert_eq!(files(m.path()), expected(&["alpha", "gamma"]));
    assert!(!m.path().join("data/beta.txt").exists());
    // A blocked directory hides everything below it.
    std::fs::write(s.root().join("system/state/blocked-entries"), "data\n").unwrap();
    let m2 = PackagefsMount::new(&[&s.root()], &[]);
    assert!(files(m2.path()).is_empty());
    assert!(!m2.path().join("data").exists());
}

#[test]
fn a_package_with_unmet_requirements_is_not_mounted() {
    let s = Scratch::new();
    let root = three_generations(&s);
    let delta = s.package("delta", &["nosuchthing >= 1"]);
    assert!(root
        .add(&[&delta], Layer::System, false, "add delta")
        .is_err());
    root.add(&[&delta], Layer::System, true, "add delta anyway")
        .unwrap();
    let epsilon = s.package("epsilon", &["alpha"]);
    root.add(&[&epsilon], Layer::Common, false, "add epsilon")
        .unwrap();
    let m = PackagefsMount::new(&[&s.root()], &["-v"]);
    assert_eq!(
        files(m.path()),
        expected(&["alpha", "beta", "epsilon", "gamma"])
    );
    let log = m.log();
    assert!(
        log.contains("delta") && log.contains("not mounted") && log.contains("nosuchthing"),
        "no log line says why delta is missing:\n{log}"
    );
}
