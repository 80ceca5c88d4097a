//! Eight threads reading different and identical files of one mount at
//! once, whole and in small pieces, get exactly the expected content, also
//! with a chunk cache far smaller than the data (constant eviction).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use packagefs_tests::{golden_mount_listing, golden_package, sha256_hex, PackagefsMount};

/// (path in the mount, expected sha256) of every file of the packages.
fn files(stems: &[&str], root: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for stem in stems {
        for (path, entry) in golden_mount_listing(&golden_package(stem)) {
            if entry.kind == "file" {
                out.push((root.join(&path), entry.sha256.unwrap()));
            }
        }
    }
    out
}

/// Drop the kernel's cached pages of `f`, so that reads reach the daemon.
fn drop_page_cache(f: &File) {
    rustix::fs::fadvise(f, 0, None, rustix::fs::Advice::DontNeed).expect("posix_fadvise");
}

/// Read a whole file in one go, bypassing what the kernel has cached.
fn read_whole(path: &Path) -> Vec<u8> {
    let mut f = File::open(path).unwrap();
    drop_page_cache(&f);
    let mut out = Vec::new();
    f.read_to_end(&mut out).unwrap();
    out
}

/// Read a file in `piece`-byte reads at scattered offsets (each piece once),
/// reassembling it.
fn read_in_pieces(path: &Path, piece: usize, seed: usize) -> Vec<u8> {
    let mut f = File::open(path).unwrap();
    drop_page_cache(&f);
    let len = f.metadata().unwrap().len() as usize;
    let mut out = vec![0u8; len];
    let count = len.div_ceil(piece);
    // Visit the pieces in a scrambled but complete order.
    let step = (1..=count.max(1))
        .rev()
        .find(|s| gcd(*s, count.max(1)) == 1 && *s > count / 3)
        .unwrap_or(1);
    for k in 0..count {
        let i = (seed + k * step) % count;
        let start = i * piece;
        let end = (start + piece).min(len);
        f.seek(SeekFrom::Start(start as u64)).unwrap();
        f.read_exact(&mut out[start..end]).unwrap();
    }
    out
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn hammer(mount: &PackagefsMount) {
    // The content, read once and checked against the golden sha256; the
    // threads then compare bytes.
    let all: Vec<(PathBuf, Vec<u8>)> = files(&["bigfile-zstd", "nested-zstd"], mount.path())
        .into_iter()
        .map(|(path, sha)| {
            let data = std::fs::read(&path).unwrap();
            assert_eq!(sha256_hex(&data), sha, "{}", path.display());
            (path, data)
        })
        .collect();
    assert!(all.len() > 20);
    std::thread::scope(|s| {
        for t in 0..8usize {
            let all = &all;
            s.spawn(move || {
                for round in 0..2 {
                    for i in 0..all.len() {
                        // Even threads read everything in the same order (the
                        // same files at once); odd threads start elsewhere.
                        let j = if t % 2 == 0 {
                            i
                        } else {
                            (i + t * 7) % all.len()
                        };
                        let (path, want) = &all[j];
                        let data = match (t + round) % 3 {
                            0 => read_whole(path),
                            1 => read_in_pieces(path, 4096, t),
                            _ => read_in_pieces(path, 100_000, t + i),
                        };
                        assert!(&data == want, "thread {t}: {}", path.display());
                    }
                }
            });
        }
    });
}

#[test]
fn eight_threads_read_the_expected_content() {
    let (big, nested) = (
        golden_package("bigfile-zstd"),
        golden_package("nested-zstd"),
    );
    let mount = PackagefsMount::new(&[&big, &nested], &[]);
    hammer(&mount);
    mount.unmount();
}

#[test]
fn eight_threads_with_a_tiny_cache_read_the_expected_content() {
    let (big, nested) = (
        golden_package("bigfile-zstd"),
        golden_package("nested-zstd"),
    );
    let mount = PackagefsMount::new(&[&big, &nested], &["--cache-size", "256K"]);
    hammer(&mount);
    mount.unmount();
}
