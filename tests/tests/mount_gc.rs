//! gc while old states are mounted: every mount registers the generation it
//! serves with its root (`system/state/mounts/`), gc spares those
//! generations and their store files and says so, a live mount moves its
//! registration along with the generations it swaps in, and an unmounted
//! one leaves nothing behind.

mod state_common;

use std::process::Command;

use packagefs_tests::{bin_path, wait_for, PackagefsMount};
use state_common::{expected, files, Scratch};

fn pkgctl(root: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(bin_path("pkgctl"))
        .arg("-R")
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pkgctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The generations the root keeps.
fn kept(root: &state::Root) -> Vec<u64> {
    root.generations()
        .unwrap()
        .generations
        .iter()
        .map(|g| g.number)
        .collect()
}

#[test]
fn gc_spares_what_mounts_serve() {
    let s = Scratch::new();
    let (root_dir, root) = s.root_with(&["alpha"]);
    let beta = s.package("beta", &[]);
    pkgctl(&root_dir, &["add", beta.to_str().unwrap()]);
    pkgctl(&root_dir, &["remove", "alpha"]);
    // Generations: 1 {alpha}, 2 {alpha, beta}, 3 {beta}.
    let live = PackagefsMount::new(&[&root_dir], &[]);
    let old = PackagefsMount::new(&[&root_dir], &["--generation", "previous"]);
    assert_eq!(files(old.path()), expected(&["alpha", "beta"]));
    assert_eq!(root.live_mounts().unwrap().len(), 2);

    // gc --keep 1 keeps generation 2 for the old mount, and says so.
    let out = pkgctl(&root_dir, &["gc", "--keep", "1"]);
    assert!(out.contains('2'), "gc does not say what it kept: {out}");
    assert_eq!(kept(&root), vec![2, 3]);
    // The old mount still reads alpha, whose file is only in the store.
    assert!(!root_dir
        .join("system/packages/alpha-1.0-1-any.hpkg")
        .exists());
    assert_eq!(files(old.path()), expected(&["alpha", "beta"]));
    // And rollback still finds the parent.
    pkgctl(&root_dir, &["rollback"]);
    assert!(
        wait_for(10, || files(live.path()) == expected(&["alpha", "beta"])),
        "the live mount did not follow the rollback\n{}",
        live.log()
    );

    // The live mount moved its registration to generation 4; once the old
    // mount is gone, gc may take generation 2 and 3.
    assert!(
        wait_for(10, || root
            .live_mounts()
            .unwrap()
            .iter()
            .any(|m| m.generation == 4)),
        "the live mount's registration did not follow: {:?}",
        root.live_mounts().unwrap()
    );
    old.unmount();
    assert!(
        wait_for(10, || root.live_mounts().unwrap().len() == 1),
        "{:?}",
        root.live_mounts().unwrap()
    );
    pkgctl(&root_dir, &["gc", "--keep", "1"]);
    assert_eq!(kept(&root), vec![4]);
    assert_eq!(files(live.path()), expected(&["alpha", "beta"]));

    // --keep 0 is refused.
    let out = Command::new(bin_path("pkgctl"))
        .arg("-R")
        .arg(&root_dir)
        .args(["gc", "--keep", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    // Unmounted: the daemon exits and its registration goes with it.
    drop(live);
    assert!(
        wait_for(10, || root.live_mounts().unwrap().is_empty()),
        "{:?}",
        root.live_mounts().unwrap()
    );
}
