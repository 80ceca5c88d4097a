//! The index cache through the mounted file system: a remount of a root
//! with state opens its packages from their index images (the log says how
//! many) and shows exactly the tree of a mount without the cache
//! (`--no-index-cache`, which touches no image); a damaged image is logged,
//! ignored and rebuilt; a full index directory (a tiny tmpfs) leaves the
//! mount whole with one warning.

mod state_common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use packagefs_tests::listing::{list_dir, ListOptions, Listing};
use packagefs_tests::PackagefsMount;
use state_common::Scratch;

const PACKAGES: [&str; 3] = ["alpha", "beta", "gamma"];

/// Mount `root` with `args` (plus `-v`), list it, wait for the images the
/// daemon writes once the mount is ready (if any), unmount; the listing and
/// the daemon's log.
fn mount_and_list(root: &Path, args: &[&str]) -> (Listing, String) {
    let mut all = vec!["-v"];
    all.extend_from_slice(args);
    let m = PackagefsMount::new(&[root], &all);
    let listing = list_dir(m.path(), ListOptions::default()).unwrap();
    let log = m.log();
    let log = match cache_line(&log) {
        Some(line) if !line.ends_with("; 0 to write") => {
            m.log_when("the index images written", |l| write_line(l).is_some())
        }
        _ => log,
    };
    m.unmount();
    (listing, log)
}

/// The `index cache: ...` line of a log that says what the mount found.
fn cache_line(log: &str) -> Option<&str> {
    log.lines()
        .find(|l| l.contains("index cache: ") && l.contains("hits"))
}

/// The line of a log that says how writing the index images went.
fn write_line(line: &str) -> Option<&str> {
    (line.contains("index cache: ") && line.contains(" written, ")).then_some(line)
}

/// The first such line of `log`.
fn written_line(log: &str) -> Option<&str> {
    log.lines().find_map(write_line)
}

fn index_dir(root: &Path) -> PathBuf {
    root.join("system/state/index")
}

fn images(root: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(index_dir(root))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    out.retain(|p| p.extension().is_some_and(|e| e == "idx"));
    out.sort();
    out
}

#[test]
fn a_remount_uses_the_cache_and_shows_the_same_tree() {
    let s = Scratch::new();
    let (root, _) = s.root_with(&PACKAGES);
    let (uncached, log) = mount_and_list(&root, &["--no-index-cache"]);
    assert!(cache_line(&log).is_none(), "{log}");
    assert!(!log.contains("union cache"), "{log}");
    assert!(images(&root).is_empty());
    // The same as a mount option (for fstab).
    let (listing, log) = mount_and_list(&root, &["-o", "no_index_cache"]);
    assert!(cache_line(&log).is_none(), "{log}");
    assert!(!log.contains("union cache"), "{log}");
    assert!(images(&root).is_empty());
    assert_eq!(listing, uncached);

    let (first, log) = mount_and_list(&root, &[]);
    let line = cache_line(&log).unwrap_or_else(|| panic!("no cache line in\n{log}"));
    assert!(
        line.contains("0 hits, 3 missing") && line.ends_with("; 3 to write"),
        "{line}"
    );
    // Written once the mount was ready, after the line that says so.
    let written = written_line(&log).unwrap_or_else(|| panic!("no write line in\n{log}"));
    assert!(written.contains("3 written, 0 not written"), "{written}");
    let ready = log.find("mounted at").unwrap();
    assert!(log.find(written).unwrap() > ready, "{log}");
    assert_eq!(images(&root).len(), 3);
    assert!(log.contains("union cache: merged, image stored"), "{log}");
    assert_eq!(unions(&root).len(), 1);
    assert_eq!(first, uncached);

    let (second, log) = mount_and_list(&root, &[]);
    let line = cache_line(&log).unwrap_or_else(|| panic!("no cache line in\n{log}"));
    assert!(line.contains("3 hits, 0 missing"), "{line}");
    assert!(
        log.contains("union cache: the merge was taken from its image"),
        "{log}"
    );
    assert_eq!(second, uncached);
}

fn unions(root: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(index_dir(root))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    out.retain(|p| p.extension().is_some_and(|e| e == "tree"));
    out
}

/// A damaged union image is refused with a warning, the packages are
/// merged again (the same tree), and a good image replaces it.
#[test]
fn a_damaged_union_image_is_refused_and_replaced() {
    let s = Scratch::new();
    let (root, _) = s.root_with(&PACKAGES);
    let (expected, _) = mount_and_list(&root, &[]);
    let image = unions(&root).pop().expect("a union image");
    let good = fs::read(&image).unwrap();
    let mut bad = good.clone();
    let last = bad.len() - 3;
    bad[last] ^= 0x10;
    fs::write(&image, &bad).unwrap();
    let (listing, log) = mount_and_list(&root, &[]);
    assert!(
        log.contains("union cache: image refused, merged again") && log.contains("checksum"),
        "{log}"
    );
    assert_eq!(listing, expected);
    assert_eq!(fs::read(&image).unwrap(), good);
    let (listing, log) = mount_and_list(&root, &[]);
    assert!(log.contains("union cache: the merge was taken"), "{log}");
    assert_eq!(listing, expected);
}

#[test]
fn a_damaged_image_is_logged_and_rebuilt() {
    let s = Scratch::new();
    let (root, _) = s.root_with(&PACKAGES);
    let (expected, _) = mount_and_list(&root, &[]);
    let image = images(&root)[0].clone();
    let good = fs::read(&image).unwrap();
    let mut bad = good.clone();
    bad.truncate(good.len() - 7);
    bad[300] ^= 0xff;
    fs::write(&image, &bad).unwrap();

    let (listing, log) = mount_and_list(&root, &[]);
    assert_eq!(listing, expected);
    let warning = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains(&image.display().to_string()))
        .unwrap_or_else(|| panic!("no warning naming {} in\n{log}", image.display()));
    assert!(warning.contains("rebuilt"), "{warning}");
    let line = cache_line(&log).unwrap();
    assert!(
        line.contains("2 hits") && line.contains("1 damaged"),
        "{line}"
    );
    assert_eq!(fs::read(&image).unwrap(), good, "the image was not rebuilt");
}

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .unwrap();
        assert!(status.success(), "mount -t tmpfs on {}", at.display());
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_index_directory_leaves_the_mount_whole_with_one_warning() {
    let s = Scratch::new();
    let (root, _) = s.root_with(&PACKAGES);
    let (expected, _) = mount_and_list(&root, &["--no-index-cache"]);
    let tmpfs = Tmpfs::mount(&index_dir(&root), "64k");
    // Fill it: every image write now fails with ENOSPC.
    let filler = vec![0x55u8; 4096];
    let mut fill = fs::File::create(tmpfs.0.join("filler")).unwrap();
    while std::io::Write::write_all(&mut fill, &filler).is_ok() {}
    drop(fill);

    let (listing, log) = mount_and_list(&root, &[]);
    assert_eq!(listing, expected);
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("index cache not written"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("No space left"), "{}", warnings[0]);
    let line = written_line(&log).unwrap();
    assert!(line.contains("0 written, 3 not written"), "{line}");
    assert!(images(&root).is_empty());
    // No temporaries left behind.
    let left: Vec<_> = fs::read_dir(&tmpfs.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["filler"], "{left:?}");
}

/// A package dropped into a live root gets its image once it is served,
/// and the next mount opens every package from its image.
#[test]
fn a_package_added_while_mounted_gets_its_image_after_the_swap() {
    let s = Scratch::new();
    let (root, _) = s.root_with(&["alpha", "beta"]);
    let m = PackagefsMount::new(&[&root], &["-v"]);
    m.log_when("the first images written", |l| {
        write_line(l).is_some_and(|l| l.contains("2 written, 0 not written"))
    });
    assert_eq!(images(&root).len(), 2);
    fs::copy(
        s.package("gamma", &[]),
        root.join("system/packages/gamma-1.0-1-any.hpkg"),
    )
    .unwrap();
    let log = m.log_when("gamma's image written", |l| {
        write_line(l).is_some_and(|l| l.contains("1 written, 0 not written"))
    });
    // Written after the new tree was served, not before.
    let served = log.find("now serving generation").expect("a swap");
    let written = log.find("1 written, 0 not written").unwrap();
    assert!(written > served, "{log}");
    assert_eq!(
        state_common::files(m.path()),
        state_common::expected(&["alpha", "beta", "gamma"])
    );
    assert_eq!(images(&root).len(), 3);
    m.unmount();
    let (_, log) = mount_and_list(&root, &[]);
    let line = cache_line(&log).unwrap_or_else(|| panic!("no cache line in\n{log}"));
    assert!(line.contains("3 hits, 0 missing"), "{line}");
}
