//! Crash test across the whole stack: `pkgctl` transactions (add, remove,
//! rollback, gc) are killed with SIGKILL at random moments. After each kill:
//! `active.list` parses and passes its checksum; the generation in force is
//! the old one or the new one (the new one when the command had already
//! exited 0); `pkgctl verify` finds every package of every kept generation
//! with its hash; and a fresh mount shows exactly the packages of the list.
//!
//! 200 iterations by default; `PACKAGEFS_CRASH_ITERATIONS` sets another count.

mod state_common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use packagefs_tests::{bin_path, MountGuard};
use state::Generation;

const POOL: usize = 6;
const LAYERS: [&str; 3] = ["system", "common", "user"];

/// A small deterministic generator (xorshift64*), so a failure can be rerun.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn active(root: &Path) -> Generation {
    let bytes = std::fs::read(root.join("system/state/active.list")).unwrap();
    Generation::parse(&bytes)
        .unwrap_or_else(|e| panic!("active.list does not parse and check: {e}"))
}

/// Package names of a generation (file `pN.hpkg` holds package `pN`).
fn names(g: &Generation) -> BTreeSet<String> {
    g.packages
        .iter()
        .map(|p| p.file_name.trim_end_matches(".hpkg").to_string())
        .collect()
}

/// What a fresh mount of `root` shows under `data/`.
fn mounted_names(root: &Path, mnt: &Path) -> BTreeSet<String> {
    let out = Command::new(bin_path("packagefs"))
        .arg("mount")
        .arg(root)
        .arg(mnt)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mount failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let guard = MountGuard::new(mnt);
    let mut seen = BTreeSet::new();
    if let Ok(dir) = std::fs::read_dir(mnt.join("data")) {
        for e in dir {
            let e = e.unwrap();
            let file = e.file_name().into_string().unwrap();
            let name = file.trim_end_matches(".txt").to_string();
            assert_eq!(
                std::fs::read(e.path()).unwrap(),
                state_common::content(&name),
                "{file}"
            );
            seen.insert(name);
        }
    }
    guard.unmount().unwrap();
    seen
}

#[test]
fn killed_transactions_leave_a_consistent_mountable_root() {
    let iterations: usize = std::env::var("PACKAGEFS_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let tmp = tempfile::tempdir().unwrap();
    let (root, pkgs, mnt) = (
        tmp.path().join("root"),
        tmp.path().join("pkgs"),
        tmp.path().join("mnt"),
    );
    std::fs::create_dir_all(&pkgs).unwrap();
    std::fs::create_dir_all(&mnt).unwrap();
    for i in 0..POOL {
        state_common::build_package(&format!("p{i}"), &[], &pkgs.join(format!("p{i}.hpkg")));
    }
    let pkgctl = bin_path("pkgctl");
    assert!(Command::new(&pkgctl)
        .arg("init")
        .arg(&root)
        .status()
        .unwrap()
        .success());

    let mut rng = Rng(0x5EED_CAFE_F00D_0001);
    let (mut finished, mut killed) = (0, 0);
    for i in 0..iterations {
        let before = active(&root);
        let mut cmd = Command::new(&pkgctl);
        cmd.arg("-R").arg(&root);
        match rng.below(5) {
            0 | 1 => {
                let layer = LAYERS[rng.below(3) as usize];
                let pkg = pkgs.join(format!("p{}.hpkg", rng.below(POOL as u64)));
                cmd.args(["add", "--force", "--layer", layer]).arg(pkg);
            }
            2 => {
                cmd.args(["remove", "--force", &format!("p{}", rng.below(POOL as u64))]);
            }
            3 => {
                cmd.arg("rollback");
            }
            _ => {
                cmd.args(["gc", "--keep", "3"]);
            }
        }
        let args: Vec<String> = cmd
            .get_args()
            .skip(2)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(rng.below(60_000)));
        let exited_ok = match child.try_wait().unwrap() {
            Some(status) => status.success(),
            None => {
                child.kill().unwrap();
                killed += 1;
                false
            }
        };
        let out = child.wait_with_output().unwrap();
        let after = active(&root);
        let context = format!("iteration {i}: pkgctl {args:?} (exited ok: {exited_ok})");
        if exited_ok {
            finished += 1;
            // The command said which generation it made (or that nothing changed).
            let stdout = String::from_utf8_lossy(&out.stdout);
            if let Some(n) = stdout
                .lines()
                .find_map(|l| l.strip_prefix("generation "))
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
            {
                assert_eq!(
                    after.number, n,
                    "{context}: reported generation is not in force"
                );
            }
        } else {
            assert!(
                after.number == before.number || after.parent == Some(before.number),
                "{context}: generation {} is neither the old {} nor a child of it",
                after.number,
                before.number
            );
        }
        // Every package of every kept generation is there with its hash
        // (verify first recovers an interrupted transaction, as any command does).
        let v = Command::new(&pkgctl)
            .arg("-R")
            .arg(&root)
            .arg("verify")
            .output()
            .unwrap();
        assert!(
            v.status.success(),
            "{context}: verify failed: {}{}",
            String::from_utf8_lossy(&v.stdout),
            String::from_utf8_lossy(&v.stderr)
        );
        let now = active(&root);
        assert_eq!(
            mounted_names(&root, &mnt),
            names(&now),
            "{context}: mount differs from active.list"
        );
    }
    eprintln!("{iterations} iterations: {finished} commands finished, {killed} killed");
    assert!(
        killed > 0 && finished > 0,
        "the kill timing never hit one of the two cases"
    );
}
