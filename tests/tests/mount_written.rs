//! Packages written by the format library's writer from trees made here,
//! mounted and read back exactly, with every heap compression: a tree 200
//! directories deep, and a file of many 64 KiB chunks mixing random and
//! compressible data, read whole and in pieces that straddle chunk
//! boundaries.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{symlink, FileExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hpkg_format::Compression;
use packagefs_tests::{assert_listing_eq, list_dir, write_package, ListOptions, PackagefsMount};

/// Depth of the deep tree.
const DEPTH: usize = 200;

/// Heap chunk size of the writer.
const CHUNK: usize = 64 * 1024;

/// A xorshift64* generator: reproducible data that does not compress.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn fill(&mut self, out: &mut Vec<u8>, len: usize) {
        let end = out.len() + len;
        while out.len() < end {
            let word = self.next().to_le_bytes();
            let take = (end - out.len()).min(8);
            out.extend_from_slice(&word[..take]);
        }
    }
}

/// About 5 MiB of random runs, text, zeros and short repeats, in pieces of
/// uneven length so that no run lines up with a chunk, ending mid-chunk.
fn mixed_content() -> Vec<u8> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::with_capacity(5 << 20);
    let text = b"packagefs reads what the writer wrote, chunk by chunk. ";
    let mut i = 0usize;
    while out.len() < 5 << 20 {
        let len = 10_000 + (rng.next() % 150_000) as usize;
        match i % 4 {
            0 => rng.fill(&mut out, len),
            1 => out.extend(text.iter().cycle().take(len)),
            2 => out.resize(out.len() + len, 0),
            _ => out.extend((0..len).map(|k| (k % 251) as u8)),
        }
        i += 1;
    }
    out.truncate((5 << 20) + 12_345);
    out
}

/// The source tree: `deep/0/1/…/199` with a file and a symlink at the
/// bottom and a file every 50 levels, plus `big.bin` with [`mixed_content`].
fn make_tree(root: &Path, big: &[u8]) -> PathBuf {
    let mut dir = root.join("deep");
    for level in 0..DEPTH {
        dir.push(level.to_string());
        if level % 50 == 0 {
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("marker.txt"), format!("level {level}\n")).unwrap();
        }
    }
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("bottom.txt"), b"the bottom\n").unwrap();
    // Up to the marker of level 150.
    let up = format!("{}marker.txt", "../".repeat(DEPTH - 1 - 150));
    symlink(up, dir.join("up")).unwrap();
    fs::write(root.join("big.bin"), big).unwrap();
    // Fixed modes, whatever the umask.
    let mut walk = vec![root.to_path_buf()];
    while let Some(d) = walk.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let md = fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
                walk.push(p);
            } else if md.is_file() {
                fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
            }
        }
    }
    dir
}

/// Reads `len` bytes at `offset` with pread.
fn read_at(f: &File, offset: usize, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, offset as u64).unwrap();
    buf
}

fn round_trip(compression: Compression) {
    let big = mixed_content();
    let src = tempfile::tempdir().unwrap();
    let tree = src.path().join("tree");
    fs::create_dir(&tree).unwrap();
    let bottom = make_tree(&tree, &big);
    let out = src.path().join("written.hpkg");
    write_package(&tree, "written", &out, compression);
    let pkg = hpkg_format::Package::open(&out).unwrap();
    assert_eq!(pkg.heap().compression(), compression);

    let mount = PackagefsMount::new(&[&out], &[]);
    let m = mount.path();

    // Pieces first, while nothing is cached: each straddles or touches a
    // chunk boundary, or the end of the file.
    let f = File::open(m.join("big.bin")).unwrap();
    assert_eq!(f.metadata().unwrap().len(), big.len() as u64);
    let last = big.len();
    for (offset, len) in [
        (CHUNK - 1, 2),
        (CHUNK, 1),
        (3 * CHUNK - 100, 2 * CHUNK + 200),
        (17 * CHUNK + 5, 1000),
        (0, 10),
        (40 * CHUNK - 7, 7),
        (last - 1, 1),
        (last - CHUNK - 3, CHUNK + 3),
    ] {
        assert!(
            read_at(&f, offset, len) == big[offset..offset + len],
            "{compression:?}: {len} bytes at {offset}"
        );
    }
    // Past the end: nothing.
    let mut tail = [0u8; 16];
    assert_eq!(f.read_at(&mut tail, last as u64).unwrap(), 0);
    // The whole file, bypassing the page cache.
    rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed).unwrap();
    let mut whole = Vec::new();
    (&f).read_to_end(&mut whole).unwrap();
    assert!(whole == big, "{compression:?}: big.bin differs");
    drop(f);

    // The whole tree, deep levels included, lists as its source.
    let want = list_dir(&tree, ListOptions::default()).unwrap();
    let got = list_dir(
        m,
        ListOptions {
            skip_package_xattr: true,
        },
    )
    .unwrap();
    assert_eq!(
        want.keys().filter(|k| k.ends_with("/bottom.txt")).count(),
        1
    );
    assert_listing_eq(&want, &got);
    let relative = bottom.strip_prefix(&tree).unwrap();
    assert_eq!(relative.components().count(), DEPTH + 1);
    assert_eq!(
        fs::read(m.join(relative).join("up")).unwrap(),
        b"level 150\n"
    );
    mount.unmount();
}

#[test]
fn written_zstd_package_reads_back_exactly() {
    round_trip(Compression::Zstd);
}

#[test]
fn written_zlib_package_reads_back_exactly() {
    round_trip(Compression::Zlib);
}

#[test]
fn written_uncompressed_package_reads_back_exactly() {
    round_trip(Compression::None);
}
