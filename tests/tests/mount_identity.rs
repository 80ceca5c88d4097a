//! Node identity across live changes, as a process living inside a system
//! root sees it: its working directory, an open directory, an open file and
//! a mapping inside the mount stay valid across 100 swaps, and a path that
//! stays keeps its inode number. A path that disappears answers ENOENT for
//! itself alone while a descriptor opened before keeps its content, and the
//! daemon lets go of replaced nodes once the kernel forgets them.
//!
//! One test in this binary: it changes the process's working directory.

mod state_common;

use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use packagefs_tests::mapping::Mapping;
use packagefs_tests::{wait_for, PackagefsMount};
use state_common::{content, Scratch};

/// Seconds to wait for a change to show.
const PATIENCE: u64 = 10;

/// Swaps the test makes (each round adds and removes a package).
const SWAPS: usize = 100;

/// The names in the directory open as `dir`, read from its start.
fn names_in(dir: &File) -> Vec<String> {
    let dup = dir.as_fd().try_clone_to_owned().unwrap();
    let mut d = rustix::fs::Dir::read_from(&dup).unwrap();
    d.rewind();
    let mut names: Vec<String> = d
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "." && n != "..")
        .collect();
    names.sort();
    names
}

/// The number of replaced trees' nodes the daemon said it still held at
/// its last swap.
fn last_orphan_count(log: &str) -> Option<usize> {
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("now serving generation"))?;
    let (before, _) = line.split_once(" nodes of replaced trees")?;
    before.rsplit(' ').next()?.parse().ok()
}

#[test]
fn a_process_inside_the_tree_survives_100_swaps() {
    let s = Scratch::new();
    let (root_dir, _root) = s.root_with(&["alpha"]);
    let m = PackagefsMount::new(&[&root_dir], &["-v"]);
    let data = m.path().join("data");
    let dir_ino = std::fs::metadata(&data).unwrap().ino();
    let file_ino = std::fs::metadata(data.join("alpha.txt")).unwrap().ino();

    // Held the whole time: a working directory, an open directory, an open
    // file and a mapping of it.
    let saved_cwd = std::env::current_dir().unwrap();
    std::env::set_current_dir(&data).unwrap();
    let open_dir = File::open(".").unwrap();
    let open_file = File::open("alpha.txt").unwrap();
    let mapping = Mapping::new(&open_file);

    let beta = s.package("beta", &[]);
    let target = root_dir.join("system/packages/beta-1.0-1-any.hpkg");
    let check = |round: usize, with_beta: bool| {
        let here = Path::new(".");
        assert_eq!(
            std::fs::metadata(here).unwrap().ino(),
            dir_ino,
            "swap {round}: the working directory changed inode"
        );
        assert_eq!(
            std::fs::read("alpha.txt").unwrap_or_else(|e| panic!("swap {round}: {e}")),
            content("alpha"),
            "swap {round}: reading through the working directory"
        );
        assert_eq!(
            std::fs::metadata("alpha.txt").unwrap().ino(),
            file_ino,
            "swap {round}: an unchanged file changed inode"
        );
        let mut want = vec!["alpha.txt".to_string()];
        if with_beta {
            want.push("beta.txt".to_string());
        }
        assert_eq!(
            names_in(&open_dir),
            want,
            "swap {round}: the open directory"
        );
        let mut buf = vec![0u8; content("alpha").len()];
        open_file.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(buf, content("alpha"), "swap {round}: the open file");
        assert_eq!(
            mapping.bytes(),
            content("alpha"),
            "swap {round}: the mapping"
        );
    };
    let mut swaps = 0;
    let mut held_beta = None;
    while swaps < SWAPS {
        std::fs::copy(&beta, &target).unwrap();
        assert!(
            wait_for(PATIENCE, || Path::new("beta.txt").exists()),
            "swap {swaps}: beta did not appear\n{}",
            m.log()
        );
        swaps += 1;
        check(swaps, true);
        if swaps == 1 {
            held_beta = Some(File::open("beta.txt").unwrap());
        }
        std::fs::remove_file(&target).unwrap();
        assert!(
            wait_for(PATIENCE, || !Path::new("beta.txt").exists()),
            "swap {swaps}: beta did not disappear\n{}",
            m.log()
        );
        swaps += 1;
        check(swaps, false);
        // The vanished path answers ENOENT; a descriptor opened before
        // still reads its content and its attributes.
        let err = std::fs::metadata("beta.txt").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
        if let Some(f) = held_beta.as_mut() {
            let mut got = Vec::new();
            f.read_to_end(&mut got).unwrap();
            assert!(
                got.is_empty() || got == content("beta"),
                "swap {swaps}: the held file"
            );
            assert_eq!(
                f.metadata().unwrap().len(),
                content("beta").len() as u64,
                "fstat of the held file"
            );
        }
    }
    drop(mapping);
    drop(open_file);
    drop(open_dir);
    drop(held_beta);
    std::env::set_current_dir(saved_cwd).unwrap();

    // Each appearance of beta.txt was a new node; had the daemon kept
    // replaced nodes by anything but the kernel's references, they would
    // pile up (one per round).
    let orphans = last_orphan_count(&m.log()).expect("no swap line in the log");
    assert!(
        orphans < SWAPS / 4,
        "{orphans} replaced nodes still held after {SWAPS} swaps\n{}",
        m.log()
    );
}
