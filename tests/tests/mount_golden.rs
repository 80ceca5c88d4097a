//! Every golden package mounted on its own looks, through ordinary file
//! calls and xattrs, exactly like its `*.expected.jsonl` (without the
//! top-level `.PackageInfo`, which the mount hides).

use packagefs_tests::{
    assert_listing_eq, golden_mount_listing, golden_packages, list_dir, package_label, walk_nodes,
    ListOptions, PackagefsMount,
};

#[test]
fn every_golden_package_mounts_as_its_listing() {
    let packages = golden_packages();
    assert_eq!(packages.len(), 11, "expected 11 golden packages");
    for pkg in &packages {
        let mount = PackagefsMount::new(&[pkg], &[]);
        let got = list_dir(
            mount.path(),
            ListOptions {
                skip_package_xattr: true,
            },
        )
        .unwrap_or_else(|e| panic!("{}: {e}", pkg.display()));
        assert_listing_eq(&golden_mount_listing(pkg), &got);

        let label = package_label(pkg);
        let nodes = walk_nodes(mount.path());
        assert_eq!(
            nodes.keys().collect::<Vec<_>>(),
            got.keys().collect::<Vec<_>>()
        );
        for (path, node) in &nodes {
            assert_eq!((node.uid, node.gid), (0, 0), "{path}: owner");
            if got[path].kind == "symlink" {
                assert_eq!(node.package, None, "{path}: symlinks carry no user xattrs");
            } else {
                assert_eq!(node.package.as_deref(), Some(label.as_str()), "{path}");
            }
        }
        assert!(
            !mount.path().join(".PackageInfo").exists(),
            "the top-level .PackageInfo is hidden"
        );
        mount.unmount();
    }
}
