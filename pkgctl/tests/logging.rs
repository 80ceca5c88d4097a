//! `pkgctl -v` and `RUST_LOG`: diagnostics of what changes on disk go to
//! standard error (nothing by default), and standard output stays exactly
//! what it is without them.

use std::path::Path;
use std::process::{Command, Output};

fn pkgctl(args: &[&std::ffi::OsStr], rust_log: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pkgctl"));
    cmd.args(args).env_remove("RUST_LOG");
    if let Some(spec) = rust_log {
        cmd.env("RUST_LOG", spec);
    }
    let out = cmd.output().expect("run pkgctl");
    assert!(out.status.success(), "pkgctl {args:?}: {out:?}");
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Build the demo package hello_base into `dir`, then init a root there and
/// add the package, with `flags` before each command. Returns the outputs of
/// create, init and add.
fn session(dir: &Path, flags: &[&str], rust_log: Option<&str>) -> [Output; 3] {
    let tree = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/packages/hello-base");
    let pkg = dir.join("hello_base-1.0-1-any.hpkg");
    let root = dir.join("root");
    let with = |args: &[&std::ffi::OsStr]| {
        let mut all: Vec<&std::ffi::OsStr> = flags.iter().map(|f| f.as_ref()).collect();
        all.extend_from_slice(args);
        pkgctl(&all, rust_log)
    };
    let create = with(&[
        "create".as_ref(),
        tree.as_os_str(),
        "-q".as_ref(),
        "-o".as_ref(),
        pkg.as_os_str(),
    ]);
    let init = with(&["init".as_ref(), root.as_os_str()]);
    let add = with(&[
        "-R".as_ref(),
        root.as_os_str(),
        "add".as_ref(),
        pkg.as_os_str(),
    ]);
    [create, init, add]
}

#[test]
fn quiet_by_default_and_info_with_v_on_stderr_only() {
    let quiet_dir = tempfile::tempdir().unwrap();
    let loud_dir = tempfile::tempdir().unwrap();
    let quiet = session(quiet_dir.path(), &[], None);
    let loud = session(loud_dir.path(), &["-v"], None);
    for out in &quiet {
        assert!(out.stderr.is_empty(), "stderr without -v: {out:?}");
    }
    // Standard output is the same with -v, but for the root path init names.
    let [q_create, q_init, q_add] = &quiet;
    let [l_create, l_init, l_add] = &loud;
    assert_eq!(q_create.stdout, l_create.stdout);
    assert_eq!(q_add.stdout, l_add.stdout);
    assert_eq!(
        text(&q_init.stdout).replace(&quiet_dir.path().display().to_string(), "DIR"),
        text(&l_init.stdout).replace(&loud_dir.path().display().to_string(), "DIR")
    );
    assert!(
        text(&q_add.stdout).starts_with("generation 2\n"),
        "{q_add:?}"
    );

    let create_log = text(&l_create.stderr);
    let pkg = loud_dir.path().join("hello_base-1.0-1-any.hpkg");
    assert!(
        create_log.contains("INFO") && create_log.contains(&format!("wrote {}", pkg.display())),
        "{create_log}"
    );
    let add_log = text(&l_add.stderr);
    assert!(
        add_log.contains("committed generation 2 (1 package(s) added, 0 removed)"),
        "{add_log}"
    );
    assert!(
        add_log.contains("activated system/hello_base-1.0-1-any.hpkg"),
        "{add_log}"
    );
}

#[test]
fn rust_log_sets_the_level_and_wins_over_v() {
    let dir = tempfile::tempdir().unwrap();
    let [_, _, add] = session(dir.path(), &[], Some("info"));
    assert!(
        text(&add.stderr).contains("committed generation 2"),
        "{add:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let outs = session(dir.path(), &["-vv"], Some("warn"));
    for out in &outs {
        assert!(out.stderr.is_empty(), "RUST_LOG=warn with -vv: {out:?}");
    }
}
