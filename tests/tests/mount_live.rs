//! A mount of the current generation of a root with state follows the root:
//! a package copied or moved into a packages directory appears, a removed
//! one disappears while a file opened before keeps reading its content, a
//! rollback made with `state::Root` shows the old tree, a new
//! `blocked-entries` hides its paths, and a second mount
//! with `--generation previous` shows the generation before.

mod state_common;

use std::io::Read;

use packagefs_tests::{wait_for, PackagefsMount};
use state_common::{content, expected, files, Scratch};

/// Seconds to wait for a change to show.
const PATIENCE: u64 = 10;

#[test]
fn the_mount_follows_the_root() {
    let s = Scratch::new();
    let (root_dir, root) = s.root_with(&["alpha"]);
    let m = PackagefsMount::new(&[&root_dir], &["-v"]);
    assert_eq!(files(m.path()), expected(&["alpha"]));

    // cp: the file appears once complete.
    std::fs::copy(
        s.package("beta", &[]),
        root_dir.join("system/packages/beta-1.0-1-any.hpkg"),
    )
    .unwrap();
    assert!(
        wait_for(PATIENCE, || files(m.path()) == expected(&["alpha", "beta"])),
        "beta did not appear: {:?}\n{}",
        files(m.path()).keys().collect::<Vec<_>>(),
        m.log()
    );

    // alpha did not change: it was reused, not opened again.
    assert!(
        m.log().contains("1 packages reused, 1 opened"),
        "alpha was not reused\n{}",
        m.log()
    );

    // mv into the user layer.
    std::fs::rename(
        s.package("gamma", &[]),
        root_dir.join("user/packages/gamma-1.0-1-any.hpkg"),
    )
    .unwrap();
    assert!(
        wait_for(PATIENCE, || files(m.path())
            == expected(&["alpha", "beta", "gamma"])),
        "gamma did not appear\n{}",
        m.log()
    );

    // An invalid file is refused and the mount stays as it was.
    std::fs::write(
        root_dir.join("system/packages/broken-1.0-1-any.hpkg"),
        b"not a package",
    )
    .unwrap();
    assert!(
        wait_for(PATIENCE, || m.log().contains("broken-1.0-1-any.hpkg")),
        "no log line about the broken file\n{}",
        m.log()
    );
    assert_eq!(files(m.path()), expected(&["alpha", "beta", "gamma"]));
    std::fs::remove_file(root_dir.join("system/packages/broken-1.0-1-any.hpkg")).unwrap();

    // rm: beta's file goes; one opened before keeps its content.
    let mut open = std::fs::File::open(m.path().join("data/beta.txt")).unwrap();
    std::fs::remove_file(root_dir.join("system/packages/beta-1.0-1-any.hpkg")).unwrap();
    assert!(
        wait_for(PATIENCE, || files(m.path())
            == expected(&["alpha", "gamma"])),
        "beta did not disappear\n{}",
        m.log()
    );
    let mut got = Vec::new();
    open.read_to_end(&mut got).unwrap();
    assert_eq!(got, content("beta"), "the open file lost its content");
    let after_rm = root.current().unwrap().generation.number;

    // Rollback (as pkgctl does it): beta is back, from the content the
    // daemon retained from its open descriptor.
    root.rollback(None, "test rollback").unwrap();
    assert!(
        wait_for(PATIENCE, || files(m.path())
            == expected(&["alpha", "beta", "gamma"])),
        "the rollback did not show\n{}",
        m.log()
    );

    // A new blocked-entries file hides its paths at once.
    std::fs::write(
        root_dir.join("system/state/blocked-entries"),
        "data/gamma.txt\n",
    )
    .unwrap();
    assert!(
        wait_for(PATIENCE, || files(m.path()) == expected(&["alpha", "beta"])),
        "the blocked entry is still shown\n{}",
        m.log()
    );

    // Another mount of the previous generation shows the set after the rm
    // (without gamma's blocked file).
    assert_eq!(
        root.current().unwrap().generation.parent,
        Some(after_rm),
        "rollback's parent"
    );
    let prev = PackagefsMount::new(&[&root_dir], &["--generation", "previous"]);
    assert_eq!(files(prev.path()), expected(&["alpha"]));
}

/// Reads of an unchanged file never fail or change while packages come and
/// go and the tree is swapped again and again.
#[test]
fn reads_go_on_while_trees_are_swapped() {
    let s = Scratch::new();
    let (root_dir, _root) = s.root_with(&["alpha"]);
    let m = PackagefsMount::new(&[&root_dir], &["-v"]);
    let beta = s.package("beta", &[]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let path = m.path().join("data/alpha.txt");
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let got = std::fs::read(&path).unwrap_or_else(|e| panic!("read {reads}: {e}"));
                assert_eq!(got, content("alpha"), "read {reads}");
                reads += 1;
            }
            reads
        })
    };
    let target = root_dir.join("system/packages/beta-1.0-1-any.hpkg");
    for round in 0..5 {
        std::fs::copy(&beta, &target).unwrap();
        assert!(
            wait_for(PATIENCE, || m.path().join("data/beta.txt").exists()),
            "round {round}: beta did not appear\n{}",
            m.log()
        );
        std::fs::remove_file(&target).unwrap();
        assert!(
            wait_for(PATIENCE, || !m.path().join("data/beta.txt").exists()),
            "round {round}: beta did not disappear\n{}",
            m.log()
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let reads = reader.join().expect("the reader failed");
    assert!(reads > 0);
    assert_eq!(files(m.path()), expected(&["alpha"]));
}

/// The count of `kind` in the root's `user.packagefs.requests` line.
fn requests_of(m: &PackagefsMount, kind: &str) -> u64 {
    let line = String::from_utf8(
        xattr::get(m.path(), "user.packagefs.requests")
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    line.split_once(": ")
        .map(|(_, kinds)| kinds)
        .unwrap_or("")
        .split(", ")
        .filter_map(|p| p.split_once(' '))
        .find(|(k, _)| *k == kind)
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0)
}

/// A live mount opens files without asking the daemon: reading a file again
/// and again costs no OPEN, RELEASE or READ, yet a file held open across a
/// change that removes its package reads on from it.
#[test]
fn a_live_mount_opens_files_without_round_trips() {
    let s = Scratch::new();
    let (root_dir, _root) = s.root_with(&["alpha", "beta"]);
    let m = PackagefsMount::new(&[&root_dir], &["-v"]);
    let path = m.path().join("data/alpha.txt");
    assert_eq!(std::fs::read(&path).unwrap(), content("alpha"));
    let opens = requests_of(&m, "open");
    assert!(opens <= 1, "at most the first open is asked");
    for _ in 0..20 {
        assert_eq!(std::fs::read(&path).unwrap(), content("alpha"));
    }
    for kind in ["open", "release", "read"] {
        let n = requests_of(&m, kind);
        for _ in 0..5 {
            assert_eq!(std::fs::read(&path).unwrap(), content("alpha"));
        }
        assert_eq!(requests_of(&m, kind), n, "{kind}");
    }
    assert_eq!(requests_of(&m, "open"), opens);

    // Held open, beta's file outlives beta's removal, unread until then.
    let mut held = std::fs::File::open(m.path().join("data/beta.txt")).unwrap();
    std::fs::remove_file(root_dir.join("system/packages/beta-1.0-1-any.hpkg")).unwrap();
    assert!(
        wait_for(PATIENCE, || files(m.path()) == expected(&["alpha"])),
        "beta did not go\n{}",
        m.log()
    );
    let mut got = Vec::new();
    held.read_to_end(&mut got).unwrap();
    assert_eq!(got, content("beta"));
}
