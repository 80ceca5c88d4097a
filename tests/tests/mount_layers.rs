//! A package root with three layers: the mounted tree is the union of the
//! packages, the higher layer (and inside a layer the later file name)
//! winning every shared path, directories merged and shown as the lowest
//! package has them; nodes of the user layer belong to the owner of
//! `user/packages` and lose their setuid/setgid bits; `user.packagefs.package`
//! names the providing package and layer.
//!
//! Two kinds of roots: one of golden packages (whose listings give the
//! model), and one of small packages written from trees made here, each
//! putting one rule to the test (shadowing, merging, file/directory clashes
//! both ways, file-name order, setid stripping, ownership).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::Path;

use hpkg_format::Compression;
use packagefs_tests::{
    assert_listing_eq, bin_path, golden_mount_listing, golden_package, list_dir, package_label,
    walk_nodes, write_package, EntryInfo, ListOptions, Listing, NodeMeta, PackagefsMount,
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
    allow_user_shadowing(root.path());
    root
}

/// A user owns the user layer's packages directory, which by default may
/// add paths but not replace lower layers' (see mount_plan.rs); these
/// tests put the union rules themselves to the test, so the policy lets
/// the user layer shadow.
fn allow_user_shadowing(root: &Path) {
    std::fs::create_dir_all(root.join("system/settings")).unwrap();
    std::fs::write(root.join("system/settings/policy"), "user may-shadow yes\n").unwrap();
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

// ---------------------------------------------------------------------------
// A root of packages written from small trees.

/// Owner given to `ROOT/user/packages` in the written root.
const WRITTEN_UID: u32 = 1234;
const WRITTEN_GID: u32 = 5678;

/// Makes `root/rel` a file with `content` and permission bits `mode`
/// (parents made as needed, mode 755).
fn put_file(root: &Path, rel: &str, mode: u32, content: &[u8]) {
    let path = root.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(&path, content).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Makes `root/rel` a directory with permission bits `mode`.
fn put_dir(root: &Path, rel: &str, mode: u32) {
    let path = root.join(rel);
    fs::create_dir_all(&path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Writes the tree `build` makes as `root/<layer>/packages/<file>`, a package
/// called `name`; returns its `user.packagefs.package` value.
fn layer_package(
    root: &Path,
    layer: &str,
    file: &str,
    name: &str,
    build: impl FnOnce(&Path),
) -> String {
    let tree = tempfile::tempdir().unwrap();
    build(tree.path());
    let out = root.join(layer).join("packages").join(file);
    let label = write_package(tree.path(), name, &out, Compression::Zstd);
    format!("{label} ({layer})")
}

/// The written root and what its mount must show: the listing (without the
/// package attribute), and each path's owner and package attribute.
struct WrittenRoot {
    root: tempfile::TempDir,
    listing: Listing,
    nodes: BTreeMap<String, NodeMeta>,
}

fn written_root() -> WrittenRoot {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    for layer in ["system", "common", "user"] {
        fs::create_dir_all(r.join(layer).join("packages")).unwrap();
    }
    // Written from the highest layer down: neither age nor the order of
    // creation may matter.
    let user = layer_package(r, "user", "user.hpkg", "usr", |t| {
        put_file(t, "shadowed.txt", 0o644, b"user\n");
        xattr::set(t.join("shadowed.txt"), "user.test:who", b"user").unwrap();
        put_file(t, "merged/from_user.txt", 0o644, b"from user\n");
        put_dir(t, "merged", 0o700);
        // (c) a file over a lower directory.
        put_file(t, "clash_dir_under_file", 0o644, b"file over dir\n");
        put_file(t, "setid/suid_user", 0o4755, b"suid user\n");
        put_file(t, "setid/sgid_user", 0o2750, b"sgid user\n");
        put_dir(t, "setid/sticky_user", 0o1777);
        put_file(t, "user_only/mine.txt", 0o600, b"mine\n");
        put_dir(t, "user_only", 0o750);
    });
    // (d) In common, the package in the later file gets the shared path,
    // whatever the packages are called.
    let common_b = layer_package(r, "common", "b-common.hpkg", "alpha", |t| {
        put_file(t, "order.txt", 0o644, b"from b-common\n");
        put_file(t, "shadowed.txt", 0o644, b"common\n");
        xattr::set(t.join("shadowed.txt"), "user.test:who", b"common").unwrap();
        put_file(t, "merged/from_common.txt", 0o644, b"from common\n");
        put_file(t, "merged/sub/common_deep.txt", 0o644, b"common deep\n");
        // (c) a directory over a lower file.
        put_file(t, "clash_file_under_dir/x.txt", 0o644, b"in the dir\n");
        put_dir(t, "clash_file_under_dir", 0o755);
    });
    let common_a = layer_package(r, "common", "a-common.hpkg", "zeta", |t| {
        put_file(t, "order.txt", 0o644, b"from a-common\n");
        put_file(t, "common_only.txt", 0o640, b"only a-common\n");
    });
    let system = layer_package(r, "system", "sys.hpkg", "sys", |t| {
        put_file(t, "shadowed.txt", 0o644, b"system\n");
        xattr::set(t.join("shadowed.txt"), "user.test:who", b"system").unwrap();
        put_file(t, "merged/from_system.txt", 0o644, b"from system\n");
        put_file(t, "merged/sub/sys_deep.txt", 0o644, b"system deep\n");
        put_dir(t, "merged/sub", 0o755);
        put_dir(t, "merged", 0o755);
        put_file(t, "clash_dir_under_file/inner/f.txt", 0o644, b"hidden\n");
        put_file(t, "clash_file_under_dir", 0o644, b"hidden file\n");
        put_file(t, "setid/suid_sys", 0o4755, b"suid system\n");
        put_file(t, "setid/sgid_sys", 0o2755, b"sgid system\n");
        put_dir(t, "setid", 0o755);
    });
    chown(
        r.join("user/packages"),
        Some(WRITTEN_UID),
        Some(WRITTEN_GID),
    )
    .unwrap();
    allow_user_shadowing(r);

    let owned_by = |label: &str| {
        let (uid, gid) = if label.ends_with("(user)") {
            (WRITTEN_UID, WRITTEN_GID)
        } else {
            (0, 0)
        };
        NodeMeta {
            uid,
            gid,
            package: Some(label.to_owned()),
        }
    };
    let rows: Vec<(&str, EntryInfo, &str)> = vec![
        // (a) user over common over system: content, attributes and the
        // package attribute are the user package's.
        (
            "shadowed.txt",
            EntryInfo::file(0o644, b"user\n").with_xattr("test:who", b"user"),
            &user,
        ),
        // (b) merged: entries of all layers; shown as the lowest (system)
        // directory has it, mode 755 and root's, not the user's 700.
        ("merged", EntryInfo::dir(0o755), &system),
        (
            "merged/from_common.txt",
            EntryInfo::file(0o644, b"from common\n"),
            &common_b,
        ),
        (
            "merged/from_system.txt",
            EntryInfo::file(0o644, b"from system\n"),
            &system,
        ),
        (
            "merged/from_user.txt",
            EntryInfo::file(0o644, b"from user\n"),
            &user,
        ),
        ("merged/sub", EntryInfo::dir(0o755), &system),
        (
            "merged/sub/common_deep.txt",
            EntryInfo::file(0o644, b"common deep\n"),
            &common_b,
        ),
        (
            "merged/sub/sys_deep.txt",
            EntryInfo::file(0o644, b"system deep\n"),
            &system,
        ),
        // (c) the user file hides the system directory and its subtree; the
        // common directory hides the system file.
        (
            "clash_dir_under_file",
            EntryInfo::file(0o644, b"file over dir\n"),
            &user,
        ),
        ("clash_file_under_dir", EntryInfo::dir(0o755), &common_b),
        (
            "clash_file_under_dir/x.txt",
            EntryInfo::file(0o644, b"in the dir\n"),
            &common_b,
        ),
        // (d) b-common.hpkg (package "alpha") wins over a-common.hpkg ("zeta").
        (
            "order.txt",
            EntryInfo::file(0o644, b"from b-common\n"),
            &common_b,
        ),
        (
            "common_only.txt",
            EntryInfo::file(0o640, b"only a-common\n"),
            &common_a,
        ),
        // (e) setuid/setgid kept in system, stripped in user; sticky kept.
        ("setid", EntryInfo::dir(0o755), &system),
        (
            "setid/suid_sys",
            EntryInfo::file(0o4755, b"suid system\n"),
            &system,
        ),
        (
            "setid/sgid_sys",
            EntryInfo::file(0o2755, b"sgid system\n"),
            &system,
        ),
        (
            "setid/suid_user",
            EntryInfo::file(0o755, b"suid user\n"),
            &user,
        ),
        (
            "setid/sgid_user",
            EntryInfo::file(0o750, b"sgid user\n"),
            &user,
        ),
        ("setid/sticky_user", EntryInfo::dir(0o1777), &user),
        // (f) a directory only the user layer has is the user's.
        ("user_only", EntryInfo::dir(0o750), &user),
        (
            "user_only/mine.txt",
            EntryInfo::file(0o600, b"mine\n"),
            &user,
        ),
    ];
    let listing = rows
        .iter()
        .map(|(path, entry, _)| ((*path).to_owned(), entry.clone()))
        .collect();
    let nodes = rows
        .iter()
        .map(|(path, _, label)| ((*path).to_owned(), owned_by(label)))
        .collect();
    WrittenRoot {
        root,
        listing,
        nodes,
    }
}

#[test]
fn written_layers_follow_every_union_rule() {
    let written = written_root();
    let mount = PackagefsMount::new(&[written.root.path()], &[]);
    let m = mount.path();

    let got = list_dir(
        m,
        ListOptions {
            skip_package_xattr: true,
        },
    )
    .unwrap();
    assert_listing_eq(&written.listing, &got);
    let nodes = walk_nodes(m);
    for (path, want) in &written.nodes {
        assert_eq!(nodes.get(path), Some(want), "{path}: owner and package");
    }
    assert_eq!(nodes.len(), written.nodes.len());

    // (a) by name, the way a user would check.
    assert_eq!(fs::read(m.join("shadowed.txt")).unwrap(), b"user\n");
    assert_eq!(
        xattr::get(m.join("shadowed.txt"), "user.packagefs.package")
            .unwrap()
            .as_deref(),
        Some(&b"usr-1.0-1 (user)"[..])
    );
    // (c) nothing of the hidden subtree can be reached.
    let e = fs::metadata(m.join("clash_dir_under_file/inner/f.txt")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR), "{e}");
    // (e) the stat mode itself.
    let mode = |p: &str| fs::metadata(m.join(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("setid/suid_sys"), 0o4755);
    assert_eq!(mode("setid/sgid_sys"), 0o2755);
    assert_eq!(mode("setid/suid_user"), 0o755);
    assert_eq!(mode("setid/sgid_user"), 0o750);
    // (f) the root itself is root's.
    let root_meta = fs::metadata(m).unwrap();
    assert_eq!(
        (
            std::os::unix::fs::MetadataExt::uid(&root_meta),
            std::os::unix::fs::MetadataExt::gid(&root_meta)
        ),
        (0, 0)
    );
    mount.unmount();
}

#[test]
fn written_layers_without_the_user_layer() {
    // The same root with only system and common: everything the user layer
    // did is undone (the common file shows again, no user-owned nodes).
    let written = written_root();
    let mount = PackagefsMount::new(&[written.root.path()], &["--layers", "system,common"]);
    let m = mount.path();
    assert_eq!(fs::read(m.join("shadowed.txt")).unwrap(), b"common\n");
    assert_eq!(
        fs::read(m.join("clash_dir_under_file/inner/f.txt")).unwrap(),
        b"hidden\n"
    );
    assert!(!m.join("user_only").exists());
    let nodes = walk_nodes(m);
    assert!(
        nodes.values().all(|n| (n.uid, n.gid) == (0, 0)),
        "{nodes:?}"
    );
    assert_eq!(
        nodes["shadowed.txt"].package.as_deref(),
        Some("alpha-1.0-1 (common)")
    );
    mount.unmount();
}
