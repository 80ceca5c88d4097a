//! Crash safety: a child process runs random transactions on a root and is
//! killed with SIGKILL at a random moment (deterministic seeds). After each
//! kill, before any recovery: `active.list` parses and checks; its generation
//! is the last one the child reported committed, or the one after (in flight);
//! every package of every kept generation is reachable with its size and hash.
//! Then the next transaction recovers: `verify` finds nothing, the packages
//! directories match the current generation exactly, nothing is left over.
//!
//! 200 kills by default; `PACKAGEFS_CRASH_ITERATIONS=N` for more.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use state::{Error, Layer, Root};

const CHILD_ENV: &str = "PACKAGEFS_CRASH_CHILD";

/// Child mode: `<root>\t<incoming dir>\t<seed>`. Runs transactions until killed,
/// printing `COMMITTED <n>` after each commit.
#[test]
fn crash_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split('\t').collect();
    let (root, incoming) = (Path::new(parts[0]), Path::new(parts[1]));
    let mut rng = fastrand::Rng::with_seed(parts[2].parse().unwrap());
    let root = Root::open(root).unwrap();
    println!("READY");
    for step in 0.. {
        let current = root.current().unwrap().generation;
        let pick = rng.u32(0..100);
        let result = if pick < 40 {
            let src = incoming.join(format!("s{step}"));
            std::fs::create_dir(&src).unwrap();
            let file = src.join(format!("n{}.hpkg", rng.u32(0..6)));
            std::fs::copy(fixtures().join(PLAIN[rng.usize(0..PLAIN.len())]), &file).unwrap();
            let layer = Layer::ALL[rng.usize(0..3)];
            root.add(&[file], layer, rng.bool(), "add")
                .map(|c| c.changed)
        } else if pick < 60 && !current.packages.is_empty() {
            let p = &current.packages[rng.usize(0..current.packages.len())];
            root.remove(&[p.display_name()], false, "remove")
                .map(|c| c.changed)
        } else if pick < 78 {
            let target = if rng.bool() {
                None
            } else {
                Some(rng.u64(1..=current.number))
            };
            root.rollback(target, "rollback").map(|c| c.changed)
        } else if pick < 88 {
            root.gc(rng.usize(1..5)).map(|_| false)
        } else {
            let n = rng.u64(1..=current.number);
            if rng.bool() {
                root.pin(n)
            } else {
                root.unpin(n)
            }
            .map(|_| false)
        };
        match result {
            Ok(true) => {
                let n = root.current().unwrap().generation.number;
                println!("COMMITTED {n}");
            }
            Ok(false) => {}
            Err(
                Error::NameClash { .. }
                | Error::ActiveInOtherLayer { .. }
                | Error::NoSuchGeneration(_)
                | Error::NoParent(_),
            ) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
}

fn iterations() -> usize {
    std::env::var("PACKAGEFS_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

#[test]
fn sigkill_at_random_moments_never_breaks_the_root() {
    let exe = std::env::current_exe().unwrap();
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let mut scratch = Scratch::new();
    let mut commits_seen = 0usize;
    let mut in_flight_landed = 0usize;
    for it in 0..iterations() {
        if it % 50 == 0 && it > 0 {
            scratch = Scratch::new();
        }
        let layout = scratch.layout().clone();
        let before = read_gen(&layout.active_list()).number;
        let incoming = scratch.dir.path().join(format!("in{it}"));
        std::fs::create_dir(&incoming).unwrap();
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(
                CHILD_ENV,
                format!("{}\t{}\t{it}", layout.root().display(), incoming.display()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // Wait until the child is ready and has committed a random number of
        // times (0 to 2), then let it run a random while and kill it.
        let wait_commits = rng.usize(0..3);
        let mut lines = Vec::new();
        let mut ready = false;
        while !ready
            || lines
                .iter()
                .filter(|l: &&String| l.starts_with("COMMITTED"))
                .count()
                < wait_commits
        {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(l) if l.ends_with("READY") => ready = true,
                Ok(l) => lines.push(l),
                Err(_) => {
                    panic!("iteration {it}: child stalled (ready: {ready}, lines: {lines:?})")
                }
            }
        }
        std::thread::sleep(Duration::from_micros(rng.u64(0..30_000)));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        reader.join().unwrap();
        lines.extend(rx.try_iter());
        if status.signal() != Some(9) {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            panic!("iteration {it}: child ended by itself ({status}):\n{err}");
        }
        let reported = lines
            .iter()
            .filter_map(|l| l.strip_prefix("COMMITTED ")?.parse::<u64>().ok())
            .max();
        commits_seen += lines.iter().filter(|l| l.starts_with("COMMITTED")).count();
        let last = reported.unwrap_or(before);

        // Before any recovery.
        let current = read_gen(&layout.active_list());
        assert!(
            current.number == last || current.number == last + 1,
            "iteration {it}: generation {} in force, child reported {last}",
            current.number
        );
        if current.number == last + 1 {
            in_flight_landed += 1;
        }
        for (n, g) in generation_files(&layout) {
            if n > current.number {
                continue; // an uncommitted generation file
            }
            for p in &g.packages {
                assert!(
                    reachable(&layout, p),
                    "iteration {it}: generation {n}: {} unreachable",
                    p.display_name()
                );
            }
        }

        // The next transaction recovers.
        let root = Root::open(layout.root()).unwrap();
        let problems = root.verify().unwrap();
        assert!(
            problems.iter().all(|p| !matches!(
                p,
                state::VerifyProblem::Missing { .. }
                    | state::VerifyProblem::Mismatch { .. }
                    | state::VerifyProblem::CorruptList { .. }
            )),
            "iteration {it}: {problems:?}"
        );
        let after = assert_consistent(&layout, true);
        assert_eq!(
            after.number, current.number,
            "iteration {it}: recovery changed the generation"
        );
    }
    eprintln!(
        "{} kills, {commits_seen} commits reported, {in_flight_landed} in-flight commits landed",
        iterations()
    );
    // Not vacuous: the children committed (every iteration waits for 1 on
    // average), and some kills landed between a commit and its report.
    assert!(
        commits_seen >= iterations() / 2,
        "the children hardly committed anything"
    );
    assert!(in_flight_landed > 0, "no kill landed inside a commit");
}
