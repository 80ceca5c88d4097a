//! The mount and `pkgctl status` follow one plan: the layer decides the
//! winner of a path whatever order packages were activated in, status names
//! the same winner the mount shows, and every package the mount leaves out
//! is named with its reason on `packagefs mount`'s standard error (the mount
//! still succeeds, unless `--strict`) and by `pkgctl status`; `pkgctl owner`
//! of a path under the mount names the package the mount shows there.

use std::path::{Path, PathBuf};
use std::process::Command;

use hpkg_format::Compression;
use packagefs_tests::{bin_path, write_package, PackagefsMount};

/// A package `name` at `dir/<name>.hpkg` whose only file is `etc/conf`,
/// holding `name`.
fn conf_package(dir: &Path, name: &str) -> PathBuf {
    let src = dir.join(format!("src-{name}"));
    std::fs::create_dir_all(src.join("etc")).unwrap();
    std::fs::write(src.join("etc/conf"), name).unwrap();
    let out = dir.join(format!("{name}.hpkg"));
    write_package(&src, name, &out, Compression::Zstd);
    out
}

/// `dir/root`, made a package root by `pkgctl init`.
fn init_root(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    ok(Command::new(bin_path("pkgctl"))
        .arg("init")
        .arg(&root)
        .output()
        .unwrap());
    root
}

fn pkgctl(root: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin_path("pkgctl"))
        .arg("-R")
        .arg(root)
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "pkgctl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `pkgctl status --json`'s shadowed paths as (path, hidden label, shown label).
fn shadowed(root: &Path) -> Vec<(String, String, String)> {
    let v: serde_json::Value =
        serde_json::from_str(&ok(pkgctl(root, &["status", "--json"]))).unwrap();
    v["shadowed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["path"].as_str().unwrap().to_string(),
                s["hidden"]["label"].as_str().unwrap().to_string(),
                s["shown"]["label"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_layer_wins_in_every_activation_order() {
    // (first added, its layer), (then added, its layer): the user layer's
    // package must win both times, in the mount and in status.
    for order in [
        [("low", "system"), ("high", "user")],
        [("high", "user"), ("low", "system")],
        [("high", "common"), ("low", "system")],
        [("low", "common"), ("high", "user")],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let root = init_root(dir.path());
        let m = PackagefsMount::new(&[&root], &[]);
        for (name, layer) in order {
            let pkg = conf_package(dir.path(), name);
            ok(pkgctl(
                &root,
                &["add", "--layer", layer, pkg.to_str().unwrap()],
            ));
        }
        assert!(
            packagefs_tests::wait_for(10, || std::fs::read_to_string(m.path().join("etc/conf"))
                .is_ok_and(|c| c == "high")),
            "{order:?}: the mount shows {:?}\n{}",
            std::fs::read_to_string(m.path().join("etc/conf")),
            m.log()
        );
        let fresh = PackagefsMount::new(&[&root], &[]);
        assert_eq!(
            std::fs::read_to_string(fresh.path().join("etc/conf")).unwrap(),
            "high",
            "{order:?}: a fresh mount"
        );
        assert_eq!(
            shadowed(&root),
            vec![(
                "etc/conf".to_string(),
                "low-1.0-1".to_string(),
                "high-1.0-1".to_string()
            )],
            "{order:?}: status"
        );
    }
}

#[test]
fn owner_of_a_path_under_the_mount_names_the_package_shown_there() {
    let dir = tempfile::tempdir().unwrap();
    let root = init_root(dir.path());
    for (name, layer) in [("high", "user"), ("low", "system")] {
        let pkg = conf_package(dir.path(), name);
        ok(pkgctl(
            &root,
            &["add", "--layer", layer, pkg.to_str().unwrap()],
        ));
    }
    let m = PackagefsMount::new(&[&root], &[]);
    let conf = m.path().join("etc/conf");
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "high");
    let expected = "high 1.0-1 (user) high.hpkg: file /etc/conf\n  \
                    shadows low 1.0-1 (system, low.hpkg): file\n";
    assert_eq!(
        ok(pkgctl(&root, &["owner", conf.to_str().unwrap()])),
        expected
    );
    // Through a symbolic link to the mount point, outside the mount.
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(m.path(), &link).unwrap();
    let via_link = link.join("etc/conf");
    assert_eq!(
        ok(pkgctl(&root, &["owner", via_link.to_str().unwrap()])),
        expected
    );
    let v: serde_json::Value = serde_json::from_str(&ok(pkgctl(
        &root,
        &["owner", "--json", conf.to_str().unwrap()],
    )))
    .unwrap();
    assert_eq!(v["path"], "etc/conf");
    assert_eq!(v["package"]["label"], "high-1.0-1");
    assert_eq!(v["shadows"][0]["label"], "low-1.0-1");
    // A path under the mount that the tree does not have.
    let missing = m.path().join("etc/none");
    let out = pkgctl(&root, &["owner", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "pkgctl: {}: no active package provides it\n",
            missing.display()
        )
    );
}

/// A root whose generation holds `good` and `needy` (which requires a
/// package nobody provides), and whose system layer has a damaged file.
fn root_with_refusals(dir: &Path) -> PathBuf {
    let root = init_root(dir);
    let good = conf_package(dir, "good");
    ok(pkgctl(&root, &["add", good.to_str().unwrap()]));
    // needy: requires "nowhere"; added with --force.
    let src = dir.join("src-needy");
    std::fs::create_dir_all(src.join("data")).unwrap();
    std::fs::write(src.join("data/needy"), "needy").unwrap();
    let text = packagefs_tests::package_info_text("needy") + "requires { nowhere }\n";
    let info = hpkg_format::info_text::parse(&text).unwrap();
    let needy = dir.join("needy.hpkg");
    hpkg_format::create_from_dir(&src, &info, &needy, &Default::default(), &mut |_| {}).unwrap();
    ok(pkgctl(&root, &["add", "--force", needy.to_str().unwrap()]));
    root
}

/// A `packagefs mount ROOT MNT --log-file LOG ARGS...` run on a fresh
/// mount point, whatever its outcome, unmounted (if mounted) when dropped.
struct MountRun {
    // Declared first: it drops (unmounts) before the directory goes.
    _guard: packagefs_tests::MountGuard,
    path: PathBuf,
    out: std::process::Output,
    _dir: tempfile::TempDir,
}

impl MountRun {
    fn new(root: &Path, args: &[&str]) -> MountRun {
        let (dir, path, log) = PackagefsMount::mount_dir();
        let out = Command::new(bin_path("packagefs"))
            .arg("mount")
            .arg(root)
            .arg(&path)
            .arg("--log-file")
            .arg(&log)
            .args(args)
            .output()
            .unwrap();
        MountRun {
            _guard: packagefs_tests::MountGuard::new(&path),
            path,
            out,
            _dir: dir,
        }
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
}

#[test]
fn a_refused_package_is_named_at_mount_and_by_status() {
    let dir = tempfile::tempdir().unwrap();
    let root = root_with_refusals(dir.path());
    let run = MountRun::new(&root, &[]);
    let (mountpoint, stderr) = (&run.path, run.stderr());
    assert!(run.out.status.success(), "the mount must succeed: {stderr}");
    assert!(
        stderr.contains("needy") && stderr.contains("unmet requirement nowhere"),
        "standard error does not name the refused package: {stderr:?}"
    );
    assert_eq!(
        std::fs::read_to_string(mountpoint.join("etc/conf")).unwrap(),
        "good"
    );
    assert!(!mountpoint.join("data/needy").exists());
    drop(run);

    // --strict: the same root fails to mount, naming it.
    let strict = MountRun::new(&root, &["--strict"]);
    let stderr = strict.stderr();
    assert!(!strict.out.status.success(), "--strict mounted anyway");
    assert!(stderr.contains("needy"), "{stderr}");
    assert!(!packagefs_tests::is_mounted(&strict.path).unwrap());

    // status, text and JSON.
    let text = ok(pkgctl(&root, &["status"]));
    assert!(
        text.lines()
            .any(|l| l.contains("needy-1.0-1") && l.contains("unmet requirement nowhere")),
        "{text}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&ok(pkgctl(&root, &["status", "--json"]))).unwrap();
    let nm = v["not_mounted"].as_array().unwrap();
    assert_eq!(nm.len(), 1, "{v}");
    assert_eq!(nm[0]["label"], "needy-1.0-1");
    assert_eq!(nm[0]["reason"]["kind"], "unmet");
    assert_eq!(nm[0]["reason"]["requirements"][0], "nowhere");
    assert!(nm[0]["path"].as_str().unwrap().ends_with(".hpkg"));
}

#[test]
fn a_damaged_package_in_the_generation_is_refused_with_the_reader_error() {
    let dir = tempfile::tempdir().unwrap();
    let root = init_root(dir.path());
    let good = conf_package(dir.path(), "good");
    let other = conf_package(dir.path(), "other");
    ok(pkgctl(&root, &["add", good.to_str().unwrap()]));
    ok(pkgctl(
        &root,
        &["add", "--layer", "user", other.to_str().unwrap()],
    ));
    // Damage the active file in place: the generation still names it.
    let active = root.join("user/packages/other.hpkg");
    std::fs::write(&active, b"no longer a package").unwrap();
    let run = MountRun::new(&root, &[]);
    let (mountpoint, stderr) = (&run.path, run.stderr());
    assert!(run.out.status.success(), "{stderr}");
    assert!(
        stderr.contains("other.hpkg") && stderr.contains("not a valid package"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(mountpoint.join("etc/conf")).unwrap(),
        "good"
    );
    let v: serde_json::Value =
        serde_json::from_str(&ok(pkgctl(&root, &["status", "--json"]))).unwrap();
    let nm = v["not_mounted"].as_array().unwrap();
    assert_eq!(nm.len(), 1, "{v}");
    assert_eq!(nm[0]["file_name"], "other.hpkg");
    assert_eq!(nm[0]["reason"]["kind"], "invalid");
}

#[test]
fn a_bad_file_dropped_into_a_live_root_is_logged_and_listed_by_status() {
    let dir = tempfile::tempdir().unwrap();
    let root = init_root(dir.path());
    let good = conf_package(dir.path(), "good");
    ok(pkgctl(&root, &["add", good.to_str().unwrap()]));
    let m = PackagefsMount::new(&[&root], &[]);
    // Half a package: what a copy interrupted midway leaves.
    let bytes = std::fs::read(conf_package(dir.path(), "half")).unwrap();
    std::fs::write(
        root.join("common/packages/half.hpkg"),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    assert!(
        packagefs_tests::wait_for(10, || m.log().contains("half.hpkg")),
        "the refusal is not logged:\n{}",
        m.log()
    );
    let v: serde_json::Value =
        serde_json::from_str(&ok(pkgctl(&root, &["status", "--json"]))).unwrap();
    let na = v["not_activated"].as_array().unwrap();
    assert_eq!(na.len(), 1, "{v}");
    assert_eq!(na[0]["file_name"], "half.hpkg");
    assert_eq!(na[0]["layer"], "common");
    assert_eq!(na[0]["reason"]["kind"], "invalid");
    let text = ok(pkgctl(&root, &["status"]));
    assert!(
        text.lines()
            .any(|l| l.contains("common/half.hpkg") && l.contains("not a valid package")),
        "{text}"
    );
    // The mount is as it was.
    assert_eq!(
        std::fs::read_to_string(m.path().join("etc/conf")).unwrap(),
        "good"
    );
}

#[test]
fn a_user_owned_layer_adds_paths_but_replaces_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    ok(Command::new(bin_path("pkgctl"))
        .arg("init")
        .arg(&root)
        .output()
        .unwrap());
    let system = conf_package(dir.path(), "low");
    ok(pkgctl(&root, &["add", system.to_str().unwrap()]));
    // A user owns the user layer's packages directory: by default its
    // packages may add paths but not replace the system's.
    std::os::unix::fs::chown(root.join("user/packages"), Some(4321), Some(4321)).unwrap();
    let src = dir.path().join("src-mine");
    std::fs::create_dir_all(src.join("etc")).unwrap();
    std::fs::write(src.join("etc/conf"), "mine").unwrap();
    std::fs::write(src.join("etc/extra"), "mine").unwrap();
    let mine = dir.path().join("mine.hpkg");
    write_package(&src, "mine", &mine, Compression::Zstd);
    ok(pkgctl(
        &root,
        &["add", "--layer", "user", mine.to_str().unwrap()],
    ));
    let m = PackagefsMount::new(&[&root], &[]);
    assert_eq!(
        std::fs::read_to_string(m.path().join("etc/conf")).unwrap(),
        "low",
        "the user layer replaced a system file"
    );
    assert_eq!(
        std::fs::read_to_string(m.path().join("etc/extra")).unwrap(),
        "mine",
        "the user layer cannot add a path"
    );
    let v: serde_json::Value =
        serde_json::from_str(&ok(pkgctl(&root, &["status", "--json"]))).unwrap();
    let refused = v["refused_shadows"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "{v}");
    assert_eq!(refused[0]["path"], "etc/conf");
    assert_eq!(refused[0]["hidden"]["label"], "mine-1.0-1");
    assert_eq!(refused[0]["shown"]["label"], "low-1.0-1");
    assert_eq!(v["shadowed"].as_array().unwrap().len(), 0, "{v}");
    let owner: serde_json::Value =
        serde_json::from_str(&ok(pkgctl(&root, &["owner", "/etc/conf", "--json"]))).unwrap();
    assert_eq!(owner["package"]["name"], "low", "{owner}");
    assert_eq!(owner["refused_shadows"][0]["name"], "mine", "{owner}");
    drop(m);

    // The administrator allows it in the policy: the user layer wins.
    std::fs::create_dir_all(root.join("system/settings")).unwrap();
    std::fs::write(root.join("system/settings/policy"), "user may-shadow yes\n").unwrap();
    let m = PackagefsMount::new(&[&root], &[]);
    assert_eq!(
        std::fs::read_to_string(m.path().join("etc/conf")).unwrap(),
        "mine"
    );
    assert_eq!(shadowed(&root).len(), 1);
}
