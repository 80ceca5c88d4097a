//! Eight processes run 25 transactions each on one root: no update is lost,
//! no list is corrupt, generation numbers form one chain.
//!
//! The workers are this test binary run again with `PACKAGEFS_STATE_WORKER`
//! set, which makes `worker_entry` do the work (it does nothing otherwise).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;
use state::{Layer, Root};

const WORKER_ENV: &str = "PACKAGEFS_STATE_WORKER";
const PROCESSES: usize = 8;
const TRANSACTIONS: usize = 25;

/// Child mode: `<root>\t<incoming dir>\t<worker id>`.
#[test]
fn worker_entry() {
    let Ok(spec) = std::env::var(WORKER_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split('\t').collect();
    let (root, incoming, id) = (Path::new(parts[0]), Path::new(parts[1]), parts[2]);
    let root = Root::open(root).unwrap();
    let fixture = fixtures().join(PLAIN[1]);
    for j in 0..TRANSACTIONS {
        let file = incoming.join(format!("w{id}-{j}.hpkg"));
        std::fs::copy(&fixture, &file).unwrap();
        let layer = Layer::ALL[j % 3];
        // Forced: the same package (ref_minimal) goes into every layer.
        let c = root
            .add(&[file], layer, true, &format!("worker {id} add {j}"))
            .unwrap();
        assert!(c.changed);
    }
}

#[test]
fn eight_processes_lose_no_update() {
    let s = Scratch::new();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..PROCESSES)
        .map(|i| {
            let incoming: PathBuf = s.dir.path().join(format!("in{i}"));
            std::fs::create_dir(&incoming).unwrap();
            Command::new(&exe)
                .args(["--exact", "worker_entry", "--nocapture", "--test-threads=1"])
                .env(
                    WORKER_ENV,
                    format!(
                        "{}\t{}\t{i}",
                        s.layout().root().display(),
                        incoming.display()
                    ),
                )
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let start = std::time::Instant::now();
    for mut c in children {
        assert!(c.wait().unwrap().success(), "a worker failed");
    }
    eprintln!(
        "{} transactions by {PROCESSES} processes in {:?}",
        PROCESSES * TRANSACTIONS,
        start.elapsed()
    );
    let total = PROCESSES * TRANSACTIONS;
    let current = assert_consistent(s.layout(), true);
    assert_eq!(current.number, 1 + total as u64);
    let gens = generation_files(s.layout());
    assert_eq!(gens.len(), 1 + total);
    for (n, g) in &gens {
        // One chain: every generation's parent is the one before it, and it
        // holds exactly one package more.
        if *n > 1 {
            assert_eq!(g.parent, Some(n - 1));
        }
        assert_eq!(g.packages.len() as u64, n - 1);
    }
    let names: BTreeSet<String> = current
        .packages
        .iter()
        .map(|p| p.file_name.clone())
        .collect();
    for i in 0..PROCESSES {
        for j in 0..TRANSACTIONS {
            assert!(names.contains(&format!("w{i}-{j}.hpkg")), "w{i}-{j} lost");
        }
    }
    // Each worker's adds appear in its own order.
    for i in 0..PROCESSES {
        let order: Vec<usize> = current
            .packages
            .iter()
            .filter_map(|p| {
                p.file_name
                    .strip_prefix(&format!("w{i}-"))?
                    .strip_suffix(".hpkg")?
                    .parse()
                    .ok()
            })
            .collect();
        assert_eq!(order, (0..TRANSACTIONS).collect::<Vec<_>>());
    }
    assert_eq!(s.root.verify().unwrap(), vec![]);
}
