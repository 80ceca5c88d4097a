//! A package file truncated or overwritten while mounted never crashes the
//! daemon: reads of its files fail with EIO and the log names the package;
//! the rest of the mount keeps working.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use packagefs_tests::{golden_mount_listing, golden_package, sha256_hex, PackagefsMount};

/// A root with bigfile-zstd in system and nested-zstd in common, copied so
/// that the copies can be damaged.
fn root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    for (layer, stem) in [("system", "bigfile-zstd"), ("common", "nested-zstd")] {
        let dir = root.path().join(layer).join("packages");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(golden_package(stem), dir.join(format!("{stem}.hpkg"))).unwrap();
    }
    root
}

fn read_err(path: &Path) -> std::io::Error {
    let mut buf = Vec::new();
    match File::open(path).and_then(|mut f| f.read_to_end(&mut buf)) {
        Ok(n) => panic!("{}: read {n} bytes from a damaged package", path.display()),
        Err(e) => e,
    }
}

/// The mount still answers: stat of the root, a listing, and files of the
/// undamaged package read correctly.
fn still_alive(mount: &PackagefsMount) {
    let m = mount.path();
    assert!(std::fs::metadata(m).unwrap().is_dir());
    assert!(std::fs::read_dir(m.join("data")).unwrap().count() > 3);
    let nested = golden_mount_listing(&golden_package("nested-zstd"));
    for path in ["data/sizes/size_131073.bin", "attrs/with_attrs.txt"] {
        let data = std::fs::read(m.join(path)).unwrap();
        assert_eq!(Some(sha256_hex(&data)), nested[path].sha256, "{path}");
    }
    assert!(mount.is_mounted());
}

#[test]
fn a_truncated_package_gives_eio_and_the_daemon_lives_on() {
    let root = root();
    let pkg = root.path().join("system/packages/bigfile-zstd.hpkg");
    let mount = PackagefsMount::new(&[root.path()], &[]);
    // Nothing of bigfile has been read yet: no page is cached.
    let len = std::fs::metadata(&pkg).unwrap().len();
    File::options()
        .write(true)
        .open(&pkg)
        .unwrap()
        .set_len(len / 4)
        .unwrap();

    for file in ["data/mixed.bin", "data/zeros_2MiB.bin"] {
        let e = read_err(&mount.path().join(file));
        assert_eq!(e.raw_os_error(), Some(libc::EIO), "{file}: {e}");
    }
    // stat does not need the heap.
    let md = std::fs::metadata(mount.path().join("data/mixed.bin")).unwrap();
    assert_eq!(md.len(), 6414751);
    still_alive(&mount);
    let log = mount.log();
    assert!(
        log.contains(&pkg.display().to_string()) && log.contains("truncated"),
        "the log names the package: {log}"
    );
    mount.unmount();
}

#[test]
fn a_package_overwritten_with_zeros_gives_eio_and_the_daemon_lives_on() {
    let root = root();
    let pkg = root.path().join("system/packages/bigfile-zstd.hpkg");
    let mount = PackagefsMount::new(&[root.path()], &[]);
    let len = std::fs::metadata(&pkg).unwrap().len();
    // Zero everything but the first 64 KiB: compressed chunks no longer
    // decompress.
    let f = File::options().write(true).open(&pkg).unwrap();
    let zeros = vec![0u8; 1 << 20];
    let mut at = 65536u64;
    while at < len {
        let n = (len - at).min(zeros.len() as u64) as usize;
        f.write_all_at(&zeros[..n], at).unwrap();
        at += n as u64;
    }
    drop(f);

    // zeros_2MiB.bin compresses well: all its chunks are compressed.
    let e = read_err(&mount.path().join("data/zeros_2MiB.bin"));
    assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
    still_alive(&mount);
    assert!(
        mount.log().contains(&pkg.display().to_string()),
        "the log names the package: {}",
        mount.log()
    );
    mount.unmount();
}
