//! Mount registrations and gc: a generation a live mount serves (and every
//! package file it needs) survives `gc`, a registration's lock is what makes
//! it live, and the file of a process that died is ignored and cleaned.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Child, Command};

use common::*;
use state::{Digest, Error, Layer, LiveMount};

/// Generations 2 (+a), 3 (+b), 4 (-a: a's content only in the store);
/// returns a's content hash.
fn three_generations(s: &Scratch) -> Digest {
    let a = s.incoming(PLAIN[0], "a.hpkg");
    let b = s.incoming(PLAIN[1], "b.hpkg");
    s.root.add(&[a], Layer::User, false, "add a").unwrap();
    s.root.add(&[b], Layer::User, false, "add b").unwrap();
    s.root.remove(&["a.hpkg"], false, "rm a").unwrap();
    assert_eq!(s.root.current().unwrap().generation.number, 4);
    file_hash(&fixtures().join(PLAIN[0]))
}

fn mount_files(s: &Scratch) -> Vec<String> {
    fs::read_dir(s.layout().mounts_dir())
        .map(|d| {
            d.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn gc_keeps_a_mounted_generation_until_the_registration_is_dropped() {
    let s = Scratch::new();
    let l = s.layout();
    let a_hash = three_generations(&s);

    // A mount serving the previous generation (`--generation previous`).
    let reg = s.root.register_mount(3, Path::new("/mnt/prev")).unwrap();
    let me = LiveMount {
        generation: 3,
        mountpoint: "/mnt/prev".into(),
        pid: std::process::id(),
    };
    assert_eq!(reg.mount(), &me);
    assert_eq!(s.root.live_mounts().unwrap(), vec![me.clone()]);

    let report = s.root.gc(1).unwrap();
    assert_eq!(report.removed_generations, [1, 2]);
    assert_eq!(report.kept_mounted, vec![me.clone()]);
    // Generation 3 needs a, which only the store holds: it stays.
    assert!(l.store_file(&a_hash).is_file());
    assert!(report.removed_store_files.is_empty());
    assert_consistent(l, true);
    assert_eq!(s.root.verify().unwrap(), vec![]);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["kept_mounted"],
        serde_json::json!([{"generation": 3, "mountpoint": "/mnt/prev", "pid": std::process::id()}])
    );

    // Rolling back to the mounted generation still works.
    let rb = s.root.rollback(None, "back to 3").unwrap();
    assert_eq!(rb.generation.number, 5);
    assert!(rb.generation.find(Layer::User, "a.hpkg").is_some());
    assert_consistent(l, true);

    // Generations kept for another reason are not reported as kept for a mount.
    let report = s.root.gc(3).unwrap();
    assert_eq!(report.removed_generations, Vec::<u64>::new());
    assert_eq!(report.kept_mounted, vec![]);

    // Unregistered, generation 3 goes (the current one is 5).
    drop(reg);
    assert_eq!(mount_files(&s), Vec::<String>::new());
    assert_eq!(s.root.live_mounts().unwrap(), vec![]);
    let report = s.root.gc(1).unwrap();
    assert_eq!(report.removed_generations, [3, 4]);
    assert_eq!(report.kept_mounted, vec![]);
    assert!(!l.store_file(&a_hash).exists());
    assert_consistent(l, true);
}

#[test]
fn a_mount_of_a_store_only_generation_keeps_its_store_files() {
    let s = Scratch::new();
    let l = s.layout();
    let a_hash = three_generations(&s);
    // Generation 2 holds only a; the newest generation does not.
    let _reg = s.root.register_mount(2, Path::new("/m")).unwrap();
    let report = s.root.gc(1).unwrap();
    assert_eq!(report.removed_generations, [1, 3]);
    assert_eq!(
        report
            .kept_mounted
            .iter()
            .map(|m| m.generation)
            .collect::<Vec<_>>(),
        [2]
    );
    assert!(l.store_file(&a_hash).is_file());
    s.root.rollback(Some(2), "to 2").unwrap();
    assert_consistent(l, true);
}

#[test]
fn update_moves_a_registration_and_refuses_an_unknown_generation() {
    let s = Scratch::new();
    three_generations(&s);
    let mut reg = s.root.register_mount(2, Path::new("/m")).unwrap();
    let first = reg.path().to_path_buf();
    reg.update(4).unwrap();
    assert!(!first.exists(), "the old registration file is removed");
    assert_eq!(
        s.root
            .live_mounts()
            .unwrap()
            .iter()
            .map(|m| m.generation)
            .collect::<Vec<_>>(),
        [4]
    );
    assert_eq!(mount_files(&s).len(), 1);
    // Generation 2 is no longer served: gc takes it.
    let report = s.root.gc(1).unwrap();
    assert_eq!(report.removed_generations, [1, 2, 3]);
    assert_eq!(report.kept_mounted, vec![]);
    // A generation that is not kept is refused, and the registration stays.
    assert!(matches!(reg.update(2), Err(Error::NoSuchGeneration(2))));
    assert!(matches!(reg.update(9), Err(Error::NoSuchGeneration(9))));
    assert_eq!(reg.mount().generation, 4);
    assert_eq!(s.root.live_mounts().unwrap().len(), 1);
    assert!(matches!(
        s.root.register_mount(1, Path::new("/m")),
        Err(Error::NoSuchGeneration(1))
    ));
    // Two mounts of one generation are both listed.
    let _second = s.root.register_mount(4, Path::new("/n")).unwrap();
    let mounts = s.root.live_mounts().unwrap();
    assert_eq!(mounts.len(), 2);
    assert_eq!(mounts[1].mountpoint, Path::new("/n"));
}

/// Another process holding the lock of a file: a shell that opens it, locks
/// it with flock(1) and becomes `sleep` (one process, so killing it releases
/// the lock).
struct Holder(Child);

impl Holder {
    fn lock(path: &Path) -> Holder {
        let child = Command::new("sh")
            .args(["-c", "exec 9>>\"$0\" && flock 9 && exec sleep 600"])
            .arg(path)
            .spawn()
            .expect("run sh");
        Holder(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn registrations_of_dead_processes_are_ignored_and_removed() {
    let s = Scratch::new();
    three_generations(&s);
    let dir = s.layout().mounts_dir();
    fs::create_dir_all(&dir).unwrap();
    let text = |g: u64, pid: u32| {
        format!("packagefs mount\ngeneration {g}\npid {pid}\nmountpoint /dead\n")
    };

    // A file nobody holds locked: a daemon that crashed.
    let stale = dir.join("4000000-0.mount");
    fs::write(&stale, text(2, 4_000_000)).unwrap();
    // A temporary of a registration that died before its rename.
    let temp = dir.join(".4000000-1.mount.tmp-4000000-0");
    fs::write(&temp, "packagefs mount\n").unwrap();
    // Something else entirely is left alone.
    fs::write(dir.join("README"), "not a registration").unwrap();
    assert_eq!(s.root.live_mounts().unwrap(), vec![]);
    assert!(!stale.exists() && !temp.exists());
    assert!(dir.join("README").exists());
    assert_eq!(s.root.gc(1).unwrap().removed_generations, [1, 2, 3]);

    // The same file held by another live process counts, until it dies.
    let s = Scratch::new();
    three_generations(&s);
    let other = s.layout().mounts_dir().join("4000001-0.mount");
    fs::create_dir_all(other.parent().unwrap()).unwrap();
    let mut holder = Holder::lock(&other);
    // Write the registration once flock(1) holds the lock.
    for _ in 0..1000 {
        if other.exists() && locked_elsewhere(&other) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let live = || s.root.live_mounts();
    fs::write(&other, text(2, holder.0.id())).unwrap();
    let mounts = live().unwrap();
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].generation, 2);
    assert_eq!(mounts[0].pid, holder.0.id());
    let report = s.root.gc(1).unwrap();
    assert_eq!(report.removed_generations, [1, 3]);
    assert_eq!(report.kept_mounted, mounts);
    holder.kill();
    assert_eq!(live().unwrap(), vec![]);
    assert!(!other.exists());
    assert_eq!(s.root.gc(1).unwrap().removed_generations, [2]);
}

/// Whether some process holds the lock of `path` (`flock --nonblock` fails).
fn locked_elsewhere(path: &Path) -> bool {
    !Command::new("flock")
        .arg("--nonblock")
        .arg(path)
        .arg("true")
        .status()
        .expect("run flock(1)")
        .success()
}

#[test]
fn a_mount_of_a_generation_gone_by_hand_is_not_reported_as_kept() {
    let s = Scratch::new();
    three_generations(&s);
    let _reg = s.root.register_mount(2, Path::new("/m")).unwrap();
    fs::remove_file(s.layout().generation_file(2)).unwrap();
    let report = s.root.gc(1).unwrap();
    assert_eq!(report.removed_generations, [1, 3]);
    assert_eq!(report.kept_mounted, vec![]);
}

#[test]
fn keep_below_one_is_refused() {
    let s = Scratch::new();
    three_generations(&s);
    let e = s.root.gc(0).unwrap_err();
    assert!(matches!(e, Error::KeepTooFew(0)), "{e:?}");
    assert!(e.to_string().contains("at least 1"), "{e}");
    assert_eq!(s.root.generations().unwrap().generations.len(), 4);
}
