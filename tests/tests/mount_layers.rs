//! A package root with three layers, built from the golden packages: the
//! mounted tree is the union of their listings, the higher layer (and inside
//! a layer the later file name) winning every shared file path, directories
//! merged and shown as the lowest package has them; nodes of the user layer
//! belong to the owner of `user/packages`; `user.packagefs.package` names
//! the providing package and layer.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::chown;
use std::path::Path;

use packagefs_tests::{
    assert_listing_eq, bin_path, golden_mount_listing, golden_package, list_dir, package_label,
    walk_nodes, EntryInfo, ListOptions, Listing, PackagefsMount,
};

const USER_UID: u32 = 4321;
const USER_GID: u32 = 8765;

/// (layer, file name in the layer, golden package) in priority order.
const LAYOUT: &[(&str, &str, &str)] = &[
    ("system", "a-nested.hpkg", "nested-zstd"),
    ("system", "b-tipster.hpkg", "tipster-1.1.1-1-x86_64"),
    ("common", "bigfile.hpkg", "bigfile-zstd"),
    ("common", "ctags.hpkg", "ctags_source-5.8-5-source"),
    ("user", "artificial.hpkg", "artificial-1.0.0-any"),
    ("user", "nested.hpkg", "nested-zlib"),
];

fn build_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    for layer in ["system", "common", "user"] {
        std::fs::create_dir_all(root.path().join(layer).join("packages")).unwrap();
    }
    // Copied in reverse order: the mount must sort by name, not by age.
    for (layer, name, stem) in LAYOUT.iter().rev() {
        std::fs::copy(
            golden_package(stem),
            root.path().join(layer).join("packages").join(name),
        )
        .unwrap();
    }
    chown(
        root.path().join("user/packages"),
        Some(USER_UID),
        Some(USER_GID),
    )
    .unwrap();
    root
}

/// What the union of the chosen layers must look like: path -> (entry,
/// index into LAYOUT of the provider).
fn model(layers: &[&str]) -> BTreeMap<String, (EntryInfo, usize)> {
    let mut union: BTreeMap<String, (EntryInfo, usize)> = BTreeMap::new();
    for (i, (layer, _, stem)) in LAYOUT.iter().enumerate() {
        if !layers.contains(layer) {
            continue;
        }
        for (path, entry) in golden_mount_listing(&golden_package(stem)) {
            if let Some((old, _)) = union.get(&path) {
                // The golden packages never put a file where another has a
                // directory; this model does not handle that case.
                assert_eq!(old.kind, entry.kind, "{path}: type clash in the fixtures");
                if entry.kind == "dir" {
                    continue; // merged: the lower directory stays
                }
            }
            union.insert(path, (entry, i));
        }
    }
    union
}

fn check(mount: &PackagefsMount, layers: &[&str]) {
    let want = model(layers);
    let got = list_dir(
        mount.path(),
        ListOptions {
            skip_package_xattr: true,
        },
    )
    .unwrap_or_else(|e| panic!("layers {layers:?}: {e}"));
    let want_entries: Listing = want
        .iter()
        .map(|(p, (e, _))| (p.clone(), e.clone()))
        .collect();
    assert_listing_eq(&want_entries, &got);

    let seen = walk_nodes(mount.path());
    for (path, (entry, provider)) in &want {
        let s = &seen[path];
        let (layer, _, stem) = LAYOUT[*provider];
        let owner = if layer == "user" {
            (USER_UID, USER_GID)
        } else {
            (0, 0)
        };
        assert_eq!((s.uid, s.gid), owner, "{path}: owner");
        if entry.kind != "symlink" {
            let label = format!("{} ({layer})", package_label(&golden_package(stem)));
            assert_eq!(s.package.as_deref(), Some(label.as_str()), "{path}");
        }
    }
}

#[test]
fn three_layers_merge_with_the_higher_layer_winning() {
    let root = build_root();
    let mount = PackagefsMount::new(&[root.path()], &[]);
    check(&mount, &["system", "common", "user"]);

    // A merged directory lists the names of every package that has it.
    let mut names: Vec<String> = std::fs::read_dir(mount.path().join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut want = BTreeSet::new();
    for (_, _, stem) in LAYOUT {
        for path in golden_mount_listing(&golden_package(stem)).keys() {
            if let Some(rest) = path.strip_prefix("data/") {
                if !rest.contains('/') {
                    want.insert(rest.to_string());
                }
            }
        }
    }
    assert!(want.contains("mixed.bin") && want.contains("sizes"));
    assert_eq!(names, want.into_iter().collect::<Vec<_>>());
    mount.unmount();
}

#[test]
fn only_the_chosen_layers_are_mounted() {
    let root = build_root();
    let mount = PackagefsMount::new(&[root.path()], &["--layers", "system,common"]);
    check(&mount, &["system", "common"]);
    mount.unmount();
}

#[test]
fn the_fstab_form_mounts_a_root() {
    let root = build_root();
    let (dir, mnt, log) = PackagefsMount::mount_dir();
    let out = std::process::Command::new(bin_path("packagefs"))
        .arg(root.path())
        .arg(&mnt)
        .arg("-o")
        .arg("rw,nosuid,nodev,layers=user,cache_size=1M,x-systemd.automount")
        .arg("--log-file")
        .arg(&log)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mount = PackagefsMount::adopt(dir, log);
    check(&mount, &["user"]);
    mount.unmount();
}

#[test]
fn a_bad_package_in_a_root_is_left_out_and_logged() {
    let root = build_root();
    let bad = root.path().join("common/packages/broken.hpkg");
    std::fs::write(&bad, b"hpkg but not really").unwrap();
    let mount = PackagefsMount::new(&[root.path()], &[]);
    check(&mount, &["system", "common", "user"]);
    assert!(
        mount.log().contains(&bad.display().to_string()),
        "log names the package: {}",
        mount.log()
    );
    mount.unmount();
}

#[test]
fn a_bad_package_named_on_its_own_fails_the_mount() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.hpkg");
    std::fs::write(&bad, b"not a package at all").unwrap();
    let err = match PackagefsMount::try_new(&[Path::new(&bad)], &[]) {
        Ok(_) => panic!("mounting a broken package succeeded"),
        Err(e) => e,
    };
    assert!(err.contains(&bad.display().to_string()), "{err}");
}
