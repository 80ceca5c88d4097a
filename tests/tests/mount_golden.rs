//! Every golden package mounted on its own looks, through ordinary file
//! calls and xattrs, exactly like its `*.expected.jsonl` (without the
//! top-level `.PackageInfo`, which the mount hides).

mod common;

use std::collections::BTreeMap;

use common::{assert_same_listing, expected, golden_packages, package_label, walk, Mount};

#[test]
fn every_golden_package_mounts_as_its_listing() {
    let packages = golden_packages();
    assert_eq!(packages.len(), 11, "expected 11 golden packages");
    for pkg in &packages {
        let mount = Mount::new(&[pkg], &[]);
        let seen = walk(&mount.path());
        let got: BTreeMap<_, _> = seen
            .iter()
            .map(|(p, s)| (p.clone(), s.entry.clone()))
            .collect();
        assert_same_listing(&pkg.display().to_string(), &got, &expected(pkg));

        let label = package_label(pkg);
        for (path, s) in &seen {
            assert_eq!((s.uid, s.gid), (0, 0), "{path}: owner");
            if s.entry["type"] == "symlink" {
                assert_eq!(s.package, None, "{path}: symlinks carry no user xattrs");
            } else {
                assert_eq!(s.package.as_deref(), Some(label.as_str()), "{path}");
            }
        }
        assert!(
            !mount.path().join(".PackageInfo").exists(),
            "the top-level .PackageInfo is hidden"
        );
        mount.unmount();
    }
}
