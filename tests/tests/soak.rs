//! A soak test of a live root: 8 readers (`cat`, `ls`, `stat` and the exec
//! of a program, two of each, as separate processes) work inside the mount
//! while packages are dropped into and deleted from a packages directory,
//! swapping the tree again and again. Paths present throughout never give
//! an error or change their inode number, and the daemon never dies.
//!
//! CI makes 200 swaps; `PACKAGEFS_SOAK=1` makes 2,000. The figures
//! (swaps, reads, time) are printed.

mod state_common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use hpkg_format::Compression;
use packagefs_tests::{wait_for, write_package, PackagefsMount};
use state_common::{content, Scratch};

/// Seconds to wait for a change to show.
const PATIENCE: u64 = 10;

/// A package `tools` with an executable `bin/true` (a copy of the host's).
fn tools_package(dir: &Path) -> PathBuf {
    let src = dir.join("tools-src");
    std::fs::create_dir_all(src.join("bin")).unwrap();
    let host = ["/usr/bin/true", "/bin/true"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("no true(1) on this machine");
    std::fs::copy(host, src.join("bin/true")).unwrap();
    let out = dir.join("tools-1.0-1-any.hpkg");
    write_package(&src, "tools", &out, Compression::Zstd);
    out
}

/// One reader: runs `check` until `stop`, returning (runs, failures).
fn reader(
    stop: Arc<AtomicBool>,
    check: impl Fn() -> Result<(), String> + Send + 'static,
) -> std::thread::JoinHandle<(u64, Vec<String>)> {
    std::thread::spawn(move || {
        let mut runs = 0u64;
        let mut failures = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            if let Err(e) = check() {
                failures.push(format!("run {runs}: {e}"));
            }
            runs += 1;
        }
        (runs, failures)
    })
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn readers_never_fail_while_packages_come_and_go() {
    let swaps: usize = if std::env::var_os("PACKAGEFS_SOAK").is_some_and(|v| v == "1") {
        2000
    } else {
        200
    };
    let s = Scratch::new();
    let (root_dir, _root) = s.root_with(&["alpha"]);
    let m = PackagefsMount::new(&[&root_dir], &["-v"]);
    // Dropped in: the mount activates it.
    std::fs::copy(
        tools_package(s.dir.path()),
        root_dir.join("system/packages/tools-1.0-1-any.hpkg"),
    )
    .unwrap();
    let alpha = m.path().join("data/alpha.txt");
    let tool = m.path().join("bin/true");
    assert!(
        wait_for(PATIENCE, || tool.exists()),
        "tools was not activated\n{}",
        m.log()
    );
    let alpha_ino = std::fs::metadata(&alpha).unwrap().ino();

    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..2 {
        let (a, t, d) = (alpha.clone(), tool.clone(), m.path().join("data"));
        readers.push(reader(stop.clone(), move || {
            let got = run(Command::new("cat").arg(&a))?;
            (got.as_bytes() == content("alpha").as_slice())
                .then_some(())
                .ok_or_else(|| "cat: wrong content".to_string())
        }));
        readers.push(reader(stop.clone(), move || {
            let got = run(Command::new("ls").arg(&d))?;
            got.lines()
                .any(|l| l == "alpha.txt")
                .then_some(())
                .ok_or_else(|| format!("ls: no alpha.txt in {got:?}"))
        }));
        let a = alpha.clone();
        readers.push(reader(stop.clone(), move || {
            let got = run(Command::new("stat").args(["-c", "%i"]).arg(&a))?;
            (got.trim() == alpha_ino.to_string())
                .then_some(())
                .ok_or_else(|| format!("stat: inode {} instead of {alpha_ino}", got.trim()))
        }));
        readers.push(reader(stop.clone(), move || {
            run(&mut Command::new(&t)).map(|_| ())
        }));
    }

    let started = Instant::now();
    let names = ["beta", "gamma"];
    let built: Vec<PathBuf> = names.iter().map(|n| s.package(n, &[])).collect();
    let mut present = [false, false];
    for swap in 0..swaps {
        let which = swap % 2;
        let target = root_dir.join(format!("system/packages/{}-1.0-1-any.hpkg", names[which]));
        let shown = m.path().join(format!("data/{}.txt", names[which]));
        if present[which] {
            std::fs::remove_file(&target).unwrap();
        } else {
            std::fs::copy(&built[which], &target).unwrap();
        }
        present[which] = !present[which];
        let want = present[which];
        assert!(
            wait_for(PATIENCE, || shown.exists() == want),
            "swap {swap}: {} did not {}\n{}",
            names[which],
            if want { "appear" } else { "disappear" },
            m.log()
        );
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    let mut failures = Vec::new();
    for r in readers {
        let (runs, f) = r.join().expect("a reader panicked");
        total += runs;
        failures.extend(f);
    }
    println!(
        "soak: {swaps} swaps in {:.1} s ({:.0} ms each), {total} reader runs, {} failures",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e3 / swaps as f64,
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} reader failures, first: {:?}\n{}",
        failures.len(),
        failures.iter().take(5).collect::<Vec<_>>(),
        m.log()
    );
    assert!(m.is_mounted(), "the daemon died\n{}", m.log());
    assert_eq!(std::fs::read(&alpha).unwrap(), content("alpha"));
    assert!(!m.log().contains("panicked"), "{}", m.log());
}
