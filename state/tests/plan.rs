//! The planner's decisions beyond the union (which `plan_model.rs` checks):
//! the reason given for each refused package and their order, package files
//! named one by one that must all open, packages taken over unopened from
//! the tree being replaced only while their file is unchanged, and the
//! files of the packages directories the generation does not hold.

use std::path::{Path, PathBuf};

use hpkg_format::{create_from_tree, Timestamp, TreeBuilder, WriteOptions};
use state::plan::{self, GenerationChoice, MountSpec, PlanError, Refused, Request};
use state::{Layer, Root};

/// Write package `name` (one file `data/<name>`) requiring `requires`.
fn write(dir: &Path, name: &str, requires: &str) -> PathBuf {
    let mut tree = TreeBuilder::new();
    tree.add_file(
        format!("data/{name}").as_bytes(),
        0o644,
        Timestamp::from_secs(1_700_000_000),
        name.as_bytes().to_vec(),
    )
    .unwrap();
    let mut text = format!(
        "name {name}\nversion 1.0-1\narchitecture any\nsummary \"s\"\ndescription \"d\"\n\
         packager p\nvendor v\ncopyrights c\nlicenses MIT\nprovides {{ {name} = 1.0-1 }}\n"
    );
    if !requires.is_empty() {
        text.push_str(&format!("requires {{ {requires} }}\n"));
    }
    let info = hpkg_format::info_text::parse(&text).unwrap();
    let out = dir.join(format!("{name}.hpkg"));
    create_from_tree(tree, &info, &out, &WriteOptions::default()).unwrap();
    out
}

fn root_spec(root: &Path) -> MountSpec {
    MountSpec::Root {
        root: root.to_path_buf(),
        layers: Layer::ALL.to_vec(),
    }
}

fn plan_of(spec: &MountSpec) -> Result<plan::Plan, PlanError> {
    plan::plan(&Request::new(spec, GenerationChoice::Current), None)
}

#[test]
fn each_refusal_has_its_reason_in_mount_order() {
    let dir = tempfile::tempdir().unwrap();
    let root_dir = dir.path().join("root");
    let root = Root::init(&root_dir).unwrap();
    // Activated user layer first: the refusals still come system first.
    let needs = write(dir.path(), "needs_needy", "needy");
    root.add(&[&needs], Layer::User, true, "t").unwrap();
    let needy = write(dir.path(), "needy", "nowhere");
    root.add(&[&needy], Layer::System, true, "t").unwrap();
    let good = write(dir.path(), "good", "");
    root.add(&[&good], Layer::System, true, "t").unwrap();
    let p = plan_of(&root_spec(&root_dir)).unwrap();
    let got: Vec<(Option<String>, Refused)> = p
        .refused
        .iter()
        .map(|r| (r.package.clone(), r.reason.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (
                Some("needy".to_string()),
                Refused::Unmet {
                    requirements: vec!["nowhere".to_string()]
                }
            ),
            (Some("needs_needy".to_string()), Refused::NeedsRefused),
        ]
    );
    assert_eq!(p.tree.packages().len(), 1);
    let first = &p.refused[0];
    assert_eq!(first.layer, Some(Layer::System));
    assert_eq!(first.label.as_deref(), Some("needy-1.0-1"));
    assert_eq!(
        first.to_string(),
        format!(
            "{} (needy-1.0-1, system) is not mounted: unmet requirement nowhere",
            first.path.display()
        )
    );
    assert_eq!(
        p.refused[1].reason.to_string(),
        "it requires a package that is itself not mounted"
    );
}

#[test]
fn package_files_must_all_open_and_a_root_refuses_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good", "");
    let bad = dir.path().join("bad.hpkg");
    std::fs::write(&bad, b"not a package").unwrap();
    let files = MountSpec::Files(vec![good.clone(), bad.clone()]);
    match plan_of(&files) {
        Err(PlanError::Package { path, .. }) => assert_eq!(path, bad),
        other => panic!("expected a package error, got {other:?}"),
    }
    // A root without state: the bad file is refused, the rest mounted.
    let root = dir.path().join("scan");
    std::fs::create_dir_all(root.join("system/packages")).unwrap();
    std::fs::copy(&good, root.join("system/packages/good.hpkg")).unwrap();
    std::fs::copy(&bad, root.join("system/packages/bad.hpkg")).unwrap();
    let p = plan_of(&root_spec(&root)).unwrap();
    assert_eq!(p.tree.packages().len(), 1);
    assert_eq!(p.refused.len(), 1);
    assert!(
        matches!(&p.refused[0].reason, Refused::Invalid { .. }),
        "{:?}",
        p.refused
    );
    assert!(p.refused[0]
        .to_string()
        .contains("is not mounted: not a valid package:"));
}

#[test]
fn unchanged_packages_are_taken_over_and_changed_ones_opened_again() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("scan");
    let packages = root.join("system/packages");
    std::fs::create_dir_all(&packages).unwrap();
    for name in ["a", "b"] {
        std::fs::copy(
            write(dir.path(), name, ""),
            packages.join(format!("{name}.hpkg")),
        )
        .unwrap();
    }
    let spec = root_spec(&root);
    let first = plan_of(&spec).unwrap();
    let again = plan::plan(
        &Request::new(&spec, GenerationChoice::Current),
        Some(&first.tree),
    )
    .unwrap();
    assert_eq!(again.reused, 2);
    for (x, y) in first.tree.packages().iter().zip(again.tree.packages()) {
        assert!(x.same_as(y));
    }
    // b is replaced by another file (another inode, size and time).
    let other = write(&dir.path().join("."), "bb", "");
    std::fs::remove_file(packages.join("b.hpkg")).unwrap();
    std::fs::copy(&other, packages.join("b.hpkg")).unwrap();
    let third = plan::plan(
        &Request::new(&spec, GenerationChoice::Current),
        Some(&again.tree),
    )
    .unwrap();
    assert_eq!(third.reused, 1);
    assert!(third.tree.packages()[0].same_as(&again.tree.packages()[0]));
    assert!(!third.tree.packages()[1].same_as(&again.tree.packages()[1]));
    assert_eq!(third.tree.packages()[1].package().info().name, "bb");
    // a is only touched: the same inode and size, its time 100 s later
    // (the same nanoseconds). A changed time is a changed file.
    let a = std::fs::File::options()
        .write(true)
        .open(packages.join("a.hpkg"))
        .unwrap();
    let then = a.metadata().unwrap().modified().unwrap();
    a.set_modified(then + std::time::Duration::from_secs(100))
        .unwrap();
    let fourth = plan::plan(
        &Request::new(&spec, GenerationChoice::Current),
        Some(&third.tree),
    )
    .unwrap();
    assert_eq!(fourth.reused, 1);
    assert!(!fourth.tree.packages()[0].same_as(&third.tree.packages()[0]));
    assert!(fourth.tree.packages()[1].same_as(&third.tree.packages()[1]));
}

#[test]
fn files_the_generation_does_not_hold_are_listed_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let root_dir = dir.path().join("root");
    let root = Root::init(&root_dir).unwrap();
    let good = write(dir.path(), "good", "");
    root.add(&[&good], Layer::System, false, "t").unwrap();
    // Dropped in by hand, never activated: a valid one and a half one.
    std::fs::copy(
        write(dir.path(), "late", ""),
        root_dir.join("common/packages/late.hpkg"),
    )
    .unwrap();
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(
        root_dir.join("user/packages/half.hpkg"),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    let generation = root.current().unwrap().generation;
    let listed = plan::unactivated(&root, &generation).unwrap();
    let got: Vec<(Option<Layer>, String, bool)> = listed
        .iter()
        .map(|r| {
            (
                r.layer,
                r.path.file_name().unwrap().to_string_lossy().into_owned(),
                matches!(r.reason, Refused::Invalid { .. }),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (Some(Layer::Common), "late.hpkg".to_string(), false),
            (Some(Layer::User), "half.hpkg".to_string(), true),
        ]
    );
    assert_eq!(listed[0].reason, Refused::NotActivated);
    assert_eq!(listed[0].package.as_deref(), Some("late"));
}

#[test]
fn an_opened_package_knows_its_label_file_and_read_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "p", "");
    let m = plan::MountedPackage::open(plan::SourcePackage {
        path: path.clone(),
        layer: Some(Layer::User),
        uid: 0,
        gid: 0,
        strip_setid: true,
        may_shadow: true,
        recorded: None,
    })
    .unwrap();
    assert_eq!(m.label(), "p-1.0-1 (user)");
    assert_eq!(m.path(), path);
    let size = m
        .file()
        .expect("a descriptor of the file")
        .metadata()
        .unwrap()
        .len();
    assert_eq!(size, std::fs::metadata(&path).unwrap().len());
    // Each of the first ten failed reads is worth a log line, then every
    // 1000th; all are counted.
    assert_eq!(m.read_errors(), 0);
    let logged: Vec<u64> = (0..2000).filter_map(|_| m.count_read_error()).collect();
    let mut want: Vec<u64> = (1..=10).collect();
    want.extend([1000, 2000]);
    assert_eq!(logged, want);
    assert_eq!(m.read_errors(), 2000);
    // A package file on its own has no layer in its label.
    let alone = plan::MountedPackage::open(plan::SourcePackage {
        layer: None,
        ..m.source().clone()
    })
    .unwrap();
    assert_eq!(alone.label(), "p-1.0-1");
}
