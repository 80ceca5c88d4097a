//! The exec cache (`--exec-cache DIR`): a file executed, or opened twice,
//! is decompressed into a cache file named by its package's hash and entry,
//! and later opens are passed through to it by the kernel (FUSE
//! passthrough): reads and mappings no longer reach the daemon, which the
//! root's `user.packagefs.requests` counts show. A changed package gets a
//! new cache file, a damaged one is found and written anew, a full cache
//! disk leaves the mount serving from the packages, and the cache stays
//! under its bound.
//!
//! The tests mount for real, as root, on a kernel with FUSE passthrough.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use hpkg_format::writer::{create_from_dir, WriteOptions};
use packagefs_tests::mapping::Mapping;
use packagefs_tests::{wait_for, PackagefsMount};
use state::{Layer, Root};

/// `lines` lines of text that differ with `seed`: compressible, like most
/// files, and never equal for two seeds.
fn content(seed: u64, lines: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = Vec::new();
    for i in 0..lines {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(format!("{seed:4} line {i:6} {:016x}\n", x % 4096).as_bytes());
    }
    out
}

/// The big file of version `seed` of the package (about 400 KiB).
fn big(seed: u64) -> Vec<u8> {
    content(seed, 12_000)
}

/// Build package `app` at version `1.0-<release>` into `out` with
/// `data/big.bin` = [`big`]`(release)`, an executable `bin/echo` (the
/// host's) and the files `extra` (path, content).
fn build_app(release: u64, extra: &[(&str, Vec<u8>)], out: &Path) {
    let src = tempfile::tempdir().unwrap();
    fs::create_dir_all(src.path().join("data")).unwrap();
    fs::create_dir_all(src.path().join("bin")).unwrap();
    fs::write(src.path().join("data/big.bin"), big(release)).unwrap();
    let echo = src.path().join("bin/echo");
    fs::copy("/bin/echo", &echo).unwrap();
    fs::set_permissions(&echo, fs::Permissions::from_mode(0o755)).unwrap();
    for (path, bytes) in extra {
        fs::write(src.path().join(path), bytes).unwrap();
    }
    let text = format!(
        "name app\nsummary \"s\"\ndescription \"d\"\nvendor v\npackager p\n\
         architecture any\nversion 1.0-{release}\ncopyrights c\nlicenses MIT\n\
         provides {{ app = 1.0 }}\n"
    );
    let info = hpkg_format::info_text::parse(&text).unwrap();
    create_from_dir(
        src.path(),
        &info,
        out,
        &WriteOptions::default(),
        &mut |_| {},
    )
    .unwrap();
}

/// A scratch directory: a package root with state holding `app` (release
/// 1, with `extra`), and `ec/`, the cache directory to use.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new(extra: &[(&str, Vec<u8>)]) -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix("pfs-exec")
            .tempdir()
            .unwrap();
        let s = Scratch { dir };
        fs::create_dir_all(s.root().join("system/packages")).unwrap();
        build_app(1, extra, &s.root().join("system/packages/app.hpkg"));
        Root::init(s.root()).unwrap();
        s
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("ec")
    }

    /// Replace `app` with release `release` (a new generation).
    fn update(&self, release: u64) {
        let p = self.dir.path().join("new/app.hpkg");
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        build_app(release, &[], &p);
        Root::open(self.root())
            .unwrap()
            .add(&[&p], Layer::System, true, "update app")
            .unwrap();
    }

    /// Mount the root with the cache and `args`.
    fn mount(&self, args: &[&str]) -> PackagefsMount {
        let cache = self.cache();
        let mut all = vec!["--exec-cache", cache.to_str().unwrap()];
        all.extend_from_slice(args);
        PackagefsMount::new(&[&self.root()], &all)
    }

    /// The hex blake3 of the package file of the current generation.
    fn package_hash(&self) -> String {
        let loaded = Root::open(self.root()).unwrap().current().unwrap();
        loaded
            .generation
            .packages
            .iter()
            .find(|p| p.file_name == "app.hpkg")
            .map(|p| p.hash.to_hex())
            .unwrap()
    }
}

/// The cache files (temporary ones included): name -> content.
fn cache_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = match fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| {
                let e = e.unwrap();
                let name = e.file_name().to_string_lossy().into_owned();
                (name, fs::read(e.path()).unwrap())
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

/// The READ requests the mount has answered so far.
fn reads(m: &PackagefsMount) -> u64 {
    let v = xattr::get(m.path(), "user.packagefs.requests")
        .unwrap()
        .expect("the root has no user.packagefs.requests");
    let line = String::from_utf8(v).unwrap();
    line.split_once(": ")
        .map(|(_, kinds)| kinds)
        .unwrap_or("")
        .split(", ")
        .filter_map(|p| p.split_once(' '))
        .find(|(k, _)| *k == "read")
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0)
}

/// Read the file at `path` in one open, then drop its pages from the
/// mount's page cache, so that the next ordinary open must ask the daemon
/// again (a passed-through open never reads those pages).
fn read_once(path: &Path) -> Vec<u8> {
    let mut f = File::open(path).unwrap();
    let mut v = Vec::new();
    f.read_to_end(&mut v).unwrap();
    rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed).unwrap();
    v
}

#[test]
fn a_file_read_twice_or_executed_is_passed_through_to_its_cache_file() {
    let s = Scratch::new(&[]);
    let m = s.mount(&[]);
    let file = m.path().join("data/big.bin");
    let hash = s.package_hash();

    // The first open is served by the daemon, and caches nothing.
    let before = reads(&m);
    assert_eq!(read_once(&file), big(1));
    assert!(reads(&m) > before, "the first read asked no READ");
    assert!(cache_files(&s.cache()).is_empty());

    // The second writes the cache file and is passed through to it.
    let before = reads(&m);
    assert_eq!(read_once(&file), big(1));
    let files = cache_files(&s.cache());
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].0.starts_with(&format!("{hash}-")),
        "{}",
        files[0].0
    );
    assert_eq!(files[0].1, big(1));
    assert_eq!(
        reads(&m),
        before,
        "a passed-through read reached the daemon"
    );

    // So are later ones, and mappings.
    assert_eq!(read_once(&file), big(1));
    let f = File::open(&file).unwrap();
    let map = Mapping::new(&f);
    assert_eq!(map.bytes(), big(1));
    drop((map, f));
    assert_eq!(
        reads(&m),
        before,
        "a passed-through mapping reached the daemon"
    );

    // A program is cached at its first execution and runs from the cache.
    let out = Command::new(m.path().join("bin/echo"))
        .arg("hello from the cache")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}\n{}", m.log());
    assert_eq!(out.stdout, b"hello from the cache\n");
    assert_eq!(reads(&m), before, "the execution reached the daemon");
    let files = cache_files(&s.cache());
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files
        .iter()
        .any(|(_, c)| *c == fs::read("/bin/echo").unwrap()));
}

#[test]
fn the_cache_survives_a_remount_and_a_changed_package_gets_a_new_file() {
    let s = Scratch::new(&[]);
    let old_hash = s.package_hash();
    {
        let m = s.mount(&[]);
        let file = m.path().join("data/big.bin");
        assert_eq!(read_once(&file), big(1));
        assert_eq!(read_once(&file), big(1));
        assert_eq!(cache_files(&s.cache()).len(), 1);

        // A live change: the new content at once, then its own cache file.
        s.update(2);
        assert!(
            wait_for(10, || read_once(&file) != big(1)),
            "the mount did not follow the update"
        );
        assert_eq!(read_once(&file), big(2));
        assert_eq!(read_once(&file), big(2));
        m.unmount();
    }
    let new_hash = s.package_hash();
    assert_ne!(old_hash, new_hash);
    let files = cache_files(&s.cache());
    assert_eq!(files.len(), 2, "{files:?}");
    for (name, bytes) in &files {
        let want = if name.starts_with(&format!("{new_hash}-")) {
            big(2)
        } else {
            assert!(name.starts_with(&format!("{old_hash}-")), "{name}");
            big(1)
        };
        assert!(*bytes == want, "{name} holds the wrong content");
    }

    // Mounted again, the first open is passed through to the cache file.
    let m = s.mount(&[]);
    let before = reads(&m);
    assert_eq!(read_once(&m.path().join("data/big.bin")), big(2));
    assert_eq!(
        reads(&m),
        before,
        "the cache file was not used after a remount"
    );
    // The old generation still reads its own content, from its own file.
    let old = s.mount(&["--generation", "1"]);
    assert_eq!(read_once(&old.path().join("data/big.bin")), big(1));
    assert_eq!(read_once(&m.path().join("data/big.bin")), big(2));
    assert_eq!(cache_files(&s.cache()).len(), 2);
}

#[test]
fn a_damaged_cache_file_is_found_and_written_anew() {
    let s = Scratch::new(&[]);
    {
        let m = s.mount(&[]);
        let file = m.path().join("data/big.bin");
        read_once(&file);
        read_once(&file);
        m.unmount();
    }
    let files = cache_files(&s.cache());
    assert_eq!(files.len(), 1, "{files:?}");
    let path = s.cache().join(&files[0].0);
    for damage in ["a flipped byte", "a cut"] {
        let mut bytes = fs::read(&path).unwrap();
        if damage == "a flipped byte" {
            bytes[100_000] ^= 0x20;
        } else {
            bytes.truncate(50_000);
        }
        fs::write(&path, &bytes).unwrap();
        let m = s.mount(&[]);
        let file = m.path().join("data/big.bin");
        assert!(read_once(&file) == big(1), "{damage} was served");
        assert!(read_once(&file) == big(1), "{damage} was served");
        assert!(
            fs::read(&path).unwrap() == big(1),
            "the cache file was not written anew after {damage}"
        );
        assert!(m.log().contains("damaged"), "{}", m.log());
        m.unmount();
    }
}

/// A small tmpfs, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn new(at: PathBuf, size: &str) -> Tmpfs {
        fs::create_dir_all(&at).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .status()
            .unwrap();
        assert!(st.success(), "mount -t tmpfs failed");
        Tmpfs(at)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_cache_disk_leaves_the_mount_serving() {
    let other = content(7, 8000);
    let s = Scratch::new(&[("data/other.bin", other.clone())]);
    let _tmpfs = Tmpfs::new(s.cache(), "64k");
    let m = s.mount(&[]);
    for _ in 0..3 {
        assert_eq!(read_once(&m.path().join("data/big.bin")), big(1));
        assert_eq!(read_once(&m.path().join("data/other.bin")), other);
    }
    let out = Command::new(m.path().join("bin/echo"))
        .arg("still running")
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"still running\n");
    let files = cache_files(&s.cache());
    // Only the program (smaller than the disk) may be there; no leftovers.
    assert!(
        files.iter().all(|(n, _)| !n.starts_with(".tmp-")),
        "{files:?}"
    );
    assert!(
        files.iter().all(|(_, c)| *c != big(1) && *c != other),
        "a file larger than the disk is in the cache"
    );
    let log = m.log();
    assert_eq!(
        log.matches("cannot write").count(),
        1,
        "not one warning:\n{log}"
    );
}

#[test]
fn the_cache_stays_under_its_bound() {
    let extra: Vec<(String, Vec<u8>)> = (1..=6)
        .map(|i| (format!("data/f{i}"), content(100 + i, 1700)))
        .collect();
    let refs: Vec<(&str, Vec<u8>)> = extra.iter().map(|(p, c)| (p.as_str(), c.clone())).collect();
    let s = Scratch::new(&refs);
    let bound = 200_000u64;
    let m = s.mount(&["--exec-cache-size", "200000"]);
    for (path, want) in &extra {
        let file = m.path().join(path);
        assert_eq!(read_once(&file), *want);
        assert_eq!(read_once(&file), *want);
        let files = cache_files(&s.cache());
        let total: u64 = files.iter().map(|(_, c)| c.len() as u64).sum();
        assert!(total <= bound, "{total} bytes in the cache: {files:?}");
    }
    // The most recent files are there; the oldest made room for them.
    let files = cache_files(&s.cache());
    assert!(files.len() >= 2 && files.len() < 6, "{} files", files.len());
    assert!(files.iter().any(|(_, c)| *c == extra[5].1));
    assert!(!files.iter().any(|(_, c)| *c == extra[0].1));
}

#[test]
fn package_files_mounted_on_their_own_are_not_cached() {
    let s = Scratch::new(&[]);
    let cache = s.cache();
    let m = PackagefsMount::new(
        &[&s.root().join("system/packages/app.hpkg")],
        &["--exec-cache", cache.to_str().unwrap()],
    );
    for _ in 0..3 {
        assert_eq!(read_once(&m.path().join("data/big.bin")), big(1));
    }
    assert!(cache_files(&cache).is_empty());
}

#[test]
fn concurrent_opens_executions_and_mappings_never_fail() {
    let s = Scratch::new(&[]);
    let m = s.mount(&["--exec-cache-opens", "3"]);
    let file = m.path().join("data/big.bin");
    let echo = m.path().join("bin/echo");
    let want = big(1);
    std::thread::scope(|scope| {
        for t in 0..6 {
            let (file, echo, want) = (&file, &echo, &want);
            scope.spawn(move || {
                for i in 0..15 {
                    match (t + i) % 3 {
                        0 => assert!(read_once(file) == *want, "thread {t}: wrong content"),
                        1 => {
                            // Held open across the others' opens.
                            let f = File::open(file).unwrap();
                            let map = Mapping::new(&f);
                            assert!(map.bytes() == *want, "thread {t}: wrong mapping");
                        }
                        _ => {
                            let out = Command::new(echo).arg(t.to_string()).output().unwrap();
                            assert_eq!(out.stdout, format!("{t}\n").into_bytes(), "{out:?}");
                        }
                    }
                }
            });
        }
    });
    assert_eq!(cache_files(&s.cache()).len(), 2, "{}", m.log());
    assert!(!m.log().contains("bug"), "{}", m.log());
}

#[test]
fn the_fstab_option_names_the_cache() {
    let s = Scratch::new(&[]);
    let opt = format!("exec_cache={},exec_cache_size=10M", s.cache().display());
    let m = PackagefsMount::new(&[&s.root()], &["-o", &opt]);
    let file = m.path().join("data/big.bin");
    read_once(&file);
    let before = reads(&m);
    assert_eq!(read_once(&file), big(1));
    assert_eq!(reads(&m), before);
    assert_eq!(cache_files(&s.cache()).len(), 1);
}

/// An overlayfs at `<dir>/m` (on `<dir>/l`, `u`, `w`), unmounted when dropped.
struct Overlay(PathBuf);

impl Overlay {
    fn new(dir: &Path) -> Overlay {
        for d in ["l", "u", "w", "m"] {
            fs::create_dir_all(dir.join(d)).unwrap();
        }
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            dir.join("l").display(),
            dir.join("u").display(),
            dir.join("w").display()
        );
        let st = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o", &opts])
            .arg(dir.join("m"))
            .status()
            .unwrap();
        assert!(st.success(), "mount -t overlay failed");
        Overlay(dir.join("m"))
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_refused_backing_file_leaves_the_mount_serving() {
    // The kernel refuses backing files on a stacked file system (ELOOP), as
    // it refuses them to a daemon without CAP_SYS_ADMIN.
    let s = Scratch::new(&[]);
    let overlay = Overlay::new(&s.dir.path().join("ov"));
    let cache = overlay.0.clone();
    let m = PackagefsMount::new(&[&s.root()], &["--exec-cache", cache.to_str().unwrap()]);
    let file = m.path().join("data/big.bin");
    for _ in 0..4 {
        let before = reads(&m);
        assert_eq!(read_once(&file), big(1));
        assert!(reads(&m) > before, "no READ: passed through after all?");
    }
    for _ in 0..2 {
        let out = Command::new(m.path().join("bin/echo"))
            .arg("served")
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"served\n", "{out:?}");
    }
    let log = m.log();
    assert_eq!(log.matches("refuses a backing file").count(), 1, "{log}");
    drop(m);
}
