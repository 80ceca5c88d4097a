//! The daemon's log (through `tracing`): `-v --log-file F` logs each
//! package mounted (info, with its name, layer and file as fields) and
//! each package refused with the reason (warn); the default level is warn,
//! and `RUST_LOG` overrides the level.

mod state_common;

use std::path::Path;
use std::process::Command;

use packagefs_tests::{bin_path, MountGuard, PackagefsMount};
use state::Layer;
use state_common::Scratch;

/// Mount `root` in the background with `args`, `RUST_LOG` set to
/// `rust_log` (or unset); the log once mounted.
fn mount_log(root: &Path, args: &[&str], rust_log: Option<&str>) -> String {
    let (dir, mnt, log) = PackagefsMount::mount_dir();
    let mut cmd = Command::new(bin_path("packagefs"));
    cmd.arg("mount")
        .arg(root)
        .arg(&mnt)
        .arg("--log-file")
        .arg(&log)
        .args(args);
    match rust_log {
        Some(v) => cmd.env("RUST_LOG", v),
        None => cmd.env_remove("RUST_LOG"),
    };
    let out = cmd.output().unwrap();
    let guard = MountGuard::new(&mnt);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(mnt.join("data/alpha.txt").is_file());
    guard.unmount().unwrap();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    drop(dir);
    text
}

#[test]
fn activations_and_refusals_are_logged_with_the_package_name() {
    let s = Scratch::new();
    let (root_dir, root) = s.root_with(&["alpha"]);
    let delta = s.package("delta", &["nosuchthing >= 1"]);
    root.add(&[&delta], Layer::User, true, "add delta anyway")
        .unwrap();

    let log = mount_log(&root_dir, &["-v"], None);
    let mounted = log
        .lines()
        .find(|l| l.contains("INFO") && l.contains("mounted alpha-1.0-1"))
        .unwrap_or_else(|| panic!("no info line for alpha:\n{log}"));
    for field in ["package=alpha", "layer=system", "alpha-1.0-1-any.hpkg"] {
        assert!(mounted.contains(field), "{field} missing from {mounted:?}");
    }
    let refused = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains("package=delta"))
        .unwrap_or_else(|| panic!("no warning for delta:\n{log}"));
    assert!(
        refused.contains("not mounted") && refused.contains("nosuchthing"),
        "{refused:?}"
    );
    assert!(!log.contains("mounted delta"), "{log}");

    // Default: warnings only.
    let quiet = mount_log(&root_dir, &[], None);
    assert!(quiet.contains("package=delta"), "{quiet}");
    assert!(!quiet.contains("INFO"), "{quiet}");

    // RUST_LOG overrides the level -v gives.
    let info = mount_log(&root_dir, &[], Some("packagefs=info"));
    assert!(info.contains("INFO"), "{info}");
    assert!(info.contains("mounted alpha-1.0-1"), "{info}");
    let silent = mount_log(&root_dir, &["-v"], Some("packagefs=error"));
    assert!(
        !silent.contains("INFO") && !silent.contains("WARN"),
        "{silent}"
    );
}
