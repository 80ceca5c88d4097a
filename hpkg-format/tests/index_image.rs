//! Index images: a package opened from its image is the package parsed
//! (same tables, names, attributes, data, metadata) for every golden
//! package; an image of another key, stamp or package header is stale; any
//! truncation or byte flip of an image is an error, never a panic; and an
//! image whose checksum was forged over a bad table is refused by the
//! table checks.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hpkg_format::index_image::{self, FileStamp, ImageError, HEADER_SIZE};
use hpkg_format::{NoCache, Package, ReadAt};
use zerocopy::IntoBytes;

fn fixtures() -> PathBuf {
    std::env::var_os("PACKAGEFS_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"))
}

fn golden_packages() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["haiku", "haiku-tool"] {
        for e in std::fs::read_dir(fixtures().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "hpkg") {
                out.push(p);
            }
        }
    }
    out.sort();
    assert!(
        out.len() >= 11,
        "expected the golden packages, found {out:?}"
    );
    out
}

const KEY: [u8; 32] = [7; 32];
const STAMP: FileStamp = FileStamp {
    dev: 1,
    ino: 2,
    size: 3,
    mtime_ns: 4,
    ctime_ns: 5,
};

fn source(path: &Path) -> Arc<dyn ReadAt> {
    Arc::new(std::fs::File::open(path).unwrap())
}

fn image_of(path: &Path) -> (Package, Vec<u8>) {
    index_image::open_and_encode(source(path), &KEY, &STAMP).unwrap()
}

fn load(image: &[u8], path: &Path) -> Result<Package, ImageError> {
    index_image::load(&image.to_vec(), source(path), &KEY, &STAMP)
}

/// Everything the accessors show of a package, for comparison.
fn describe(p: &Package) -> Vec<String> {
    let toc = p.toc();
    let mut out = vec![format!("{:?}", p.info()), format!("{}", p.file_size())];
    toc.walk(|path, id| {
        let e = toc.entry(id);
        let attrs: Vec<String> = toc
            .attrs(id)
            .iter()
            .map(|a| {
                let data = p.data_to_vec(toc.attr_data(a), &NoCache).unwrap();
                format!(
                    "{:?}={:x}:{data:?}",
                    String::from_utf8_lossy(toc.attr_name(a)),
                    a.type_code()
                )
            })
            .collect();
        let data = p.data_to_vec(toc.data(id), &NoCache).unwrap();
        out.push(format!(
            "{} {:?} {:o} {:?} {} {} {:?} {:?} {}",
            String::from_utf8_lossy(path),
            e.kind(),
            e.mode(),
            e.mtime(),
            e.size(),
            e.subtree_end(),
            toc.symlink_target(id),
            attrs,
            blake(&data)
        ));
    });
    out
}

fn blake(data: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(data))
}

#[test]
fn loaded_package_is_the_parsed_package() {
    for path in golden_packages() {
        let parsed = Package::open(&path).unwrap();
        let (encoded, image) = image_of(&path);
        let loaded = load(&image, &path).unwrap();
        assert_eq!(
            loaded.toc().entries().as_bytes(),
            parsed.toc().entries().as_bytes(),
            "{}",
            path.display()
        );
        assert_eq!(describe(&loaded), describe(&parsed), "{}", path.display());
        assert_eq!(describe(&encoded), describe(&parsed), "{}", path.display());
        assert_eq!(loaded.minor_version(), parsed.minor_version());
        assert_eq!(loaded.heap().size(), parsed.heap().size());
        // Seeds of the fuzz target `index_image` (fuzz/seeds/index_image):
        // `INDEX_IMAGE_SEEDS=DIR cargo test -p hpkg-format --test index_image`.
        if let Some(dir) = std::env::var_os("INDEX_IMAGE_SEEDS") {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            if stem.starts_with("tipster") {
                std::fs::write(Path::new(&dir).join(format!("{stem}.idx")), &image).unwrap();
            }
        }
        // The image holds the tables, the TOC section and the header: its
        // size per entry, for the record (`--nocapture`).
        println!(
            "{}: {} entries, image {} bytes ({:.1} per entry), package {} bytes",
            path.file_name().unwrap().to_string_lossy(),
            parsed.toc().len(),
            image.len(),
            image.len() as f64 / parsed.toc().len().max(1) as f64,
            parsed.file_size()
        );
    }
}

#[test]
fn image_of_another_key_stamp_or_package_is_refused() {
    let packages = golden_packages();
    let (a, b) = (&packages[0], &packages[1]);
    let (_, image) = image_of(a);
    let other_key = index_image::load(&image, source(a), &[8; 32], &STAMP);
    assert!(matches!(other_key, Err(ImageError::Key)), "{other_key:?}");
    let mut stamp = STAMP;
    stamp.ctime_ns += 1;
    let touched = index_image::load(&image, source(a), &KEY, &stamp);
    assert!(
        touched.as_ref().is_err_and(ImageError::is_stale),
        "{touched:?}"
    );
    let other_package = index_image::load(&image, source(b), &KEY, &STAMP);
    assert!(
        other_package.as_ref().is_err_and(ImageError::is_stale),
        "{other_package:?}"
    );
    // A damaged stamp is damage, not staleness: the checksum comes first.
    let mut flipped = image.clone();
    flipped[56] ^= 1;
    let damaged = index_image::load(&flipped, source(a), &KEY, &STAMP);
    assert!(
        matches!(damaged, Err(ImageError::Checksum { .. })),
        "{damaged:?}"
    );
    // The same size but another header: still stale.
    let mut same_size = std::fs::read(a).unwrap();
    same_size[30] ^= 1; // a byte of the stored heap size changes
    let changed = index_image::load(&image, Arc::new(same_size), &KEY, &STAMP);
    assert!(changed.is_err(), "{changed:?}");
}

#[test]
fn every_truncation_and_byte_flip_is_an_error() {
    let path = &golden_packages()[0];
    let (_, image) = image_of(path);
    for len in 0..image.len() {
        assert!(load(&image[..len], path).is_err(), "truncated to {len}");
    }
    let mut longer = image.clone();
    longer.push(0);
    assert!(matches!(
        load(&longer, path),
        Err(ImageError::Length { .. })
    ));
    for at in 0..image.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = image.clone();
            bad[at] ^= flip;
            assert!(load(&bad, path).is_err(), "byte {at} ^ {flip:#x} accepted");
        }
    }
    assert!(load(&image, path).is_ok());
}

/// Patch the CRC-32 of `image` so that only the table checks stand guard.
fn forge_checksum(image: &mut [u8]) {
    let at = 16;
    image[at..at + 4].fill(0);
    let crc = crc32fast::hash(image);
    image[at..at + 4].copy_from_slice(&crc.to_ne_bytes());
}

#[test]
fn forged_tables_are_refused_without_panics() {
    for path in golden_packages() {
        let (parsed, image) = image_of(&path);
        let entries = parsed.toc().len();
        let table_end = HEADER_SIZE + entries * 32 + 32 * attrs_count(&parsed);
        // Every byte of the entry and attribute tables set to 0xff, one at
        // a time, with a valid checksum: an error or (a field that any
        // value fits, like a time) a package, never a panic.
        let mut refused = 0;
        for at in HEADER_SIZE..table_end.min(HEADER_SIZE + 32 * 64) {
            let mut bad = image.clone();
            if bad[at] == 0xff {
                continue;
            }
            bad[at] = 0xff;
            forge_checksum(&mut bad);
            match load(&bad, &path) {
                Err(ImageError::Table(_)) => refused += 1,
                Err(e) => panic!("{}: byte {at}: {e}", path.display()),
                Ok(p) => walk_metadata(&p),
            }
        }
        assert!(refused > 0, "{}", path.display());
    }
}

#[test]
fn forged_subtree_and_name_are_named() {
    let path = &golden_packages()[0];
    let (parsed, image) = image_of(path);
    assert!(parsed.toc().len() > 1);
    // Entry 0's subtree end (offset 28 in the entry) beyond the table.
    let mut bad = image.clone();
    let at = HEADER_SIZE + 28;
    bad[at..at + 4].copy_from_slice(&u32::MAX.to_ne_bytes());
    forge_checksum(&mut bad);
    let e = load(&bad, path).unwrap_err();
    assert!(e.to_string().contains("entry 0: subtree end"), "{e}");
    // Entry 0's name (offset 24) beyond the string arena.
    let mut bad = image.clone();
    let at = HEADER_SIZE + 24;
    bad[at..at + 4].copy_from_slice(&u32::MAX.to_ne_bytes());
    forge_checksum(&mut bad);
    let e = load(&bad, path).unwrap_err();
    assert!(e.to_string().contains("entry 0: name"), "{e}");
    // A stored checksum that does not match.
    let mut bad = image.clone();
    bad[HEADER_SIZE] ^= 1;
    assert!(matches!(load(&bad, path), Err(ImageError::Checksum { .. })));
}

fn attrs_count(p: &Package) -> usize {
    let toc = p.toc();
    (0..toc.len() as u32).map(|id| toc.attrs(id).len()).sum()
}

/// Every accessor that does not read the heap, on every entry.
fn walk_metadata(p: &Package) {
    let toc = p.toc();
    toc.walk(|_, id| {
        let _ = (toc.entry(id).size(), toc.symlink_target(id), toc.data(id));
        for a in toc.attrs(id) {
            let _ = (toc.attr_name(a), toc.attr_data(a));
        }
        let _ = toc.children(Some(id)).count();
    });
}

/// Set the native-endian `u64` at `at` and patch the checksum.
fn set_u64(image: &mut [u8], at: usize, value: u64) {
    image[at..at + 8].copy_from_slice(&value.to_ne_bytes());
    forge_checksum(image);
}

#[test]
fn each_header_check_names_what_is_wrong() {
    let path = &golden_packages()[0];
    let (_, image) = image_of(path);
    let field = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&image[at..at + 8]);
        u64::from_ne_bytes(b)
    };
    let (toc_length, attributes_length) = (field(120), field(128));
    let check = |bad: &[u8], want: fn(&ImageError) -> bool, what: &str| {
        let got = load(bad, path);
        assert!(got.as_ref().is_err_and(want), "{what}: {got:?}");
        assert!(!got.is_err_and(|e| e.is_stale()), "{what} is not staleness");
    };
    for (at, what) in [
        (12, "byte order"),
        (20, "entry size"),
        (22, "attribute size"),
    ] {
        let mut bad = image.clone();
        bad[at] ^= 1;
        forge_checksum(&mut bad);
        check(&bad, |e| matches!(e, ImageError::Layout), what);
    }
    let mut bad = image.clone();
    set_u64(&mut bad, 120, 64 << 20 | 1);
    check(&bad, |e| matches!(e, ImageError::Limit { .. }), "TOC limit");
    let mut bad = image.clone();
    set_u64(&mut bad, 128, (1 << 20) + 1);
    check(
        &bad,
        |e| matches!(e, ImageError::Limit { .. }),
        "attributes limit",
    );
    let mut bad = image.clone();
    set_u64(&mut bad, 104, toc_length + 1);
    check(
        &bad,
        |e| matches!(e, ImageError::Counts { .. }),
        "entry count",
    );
    let mut bad = image.clone();
    set_u64(&mut bad, 112, toc_length + 1);
    check(
        &bad,
        |e| matches!(e, ImageError::Counts { .. }),
        "attribute count",
    );
    let mut bad = image.clone();
    set_u64(&mut bad, 136, toc_length + 1);
    check(
        &bad,
        |e| matches!(e, ImageError::Counts { .. }),
        "arena length",
    );
    // An arena one byte longer than stored: the lengths do not add up.
    let mut bad = image.clone();
    set_u64(&mut bad, 136, field(136) + 1);
    check(
        &bad,
        |e| matches!(e, ImageError::Length { .. }),
        "image length",
    );
    // A TOC one byte shorter than the package header says (the arena is
    // shorter still): consistent lengths, but not this package's sections.
    let mut bad = image.clone();
    assert!(field(136) < toc_length - 1);
    set_u64(&mut bad, 120, toc_length - 1);
    check(&bad, |e| matches!(e, ImageError::Sections), "TOC length");
    let mut bad = image.clone();
    bad.pop();
    set_u64(&mut bad, 128, attributes_length - 1);
    check(
        &bad,
        |e| matches!(e, ImageError::Sections),
        "attributes length",
    );
    // An image of another layout version (an older or newer packagefs
    // wrote it) is to be replaced, not reported as damage.
    let mut bad = image.clone();
    bad[8..12].copy_from_slice(&(index_image::VERSION - 1).to_ne_bytes());
    forge_checksum(&mut bad);
    let got = load(&bad, path);
    assert!(
        got.as_ref()
            .is_err_and(|e| matches!(e, ImageError::Version(v) if *v == index_image::VERSION - 1)),
        "{got:?}"
    );
    assert!(got.is_err_and(|e| e.is_stale()), "another version is stale");
    // A damaged image is not a stale one.
    let mut bad = image.clone();
    bad[HEADER_SIZE] ^= 1;
    check(
        &bad,
        |e| matches!(e, ImageError::Checksum { .. }),
        "checksum",
    );
}

#[test]
fn a_stamp_tells_files_apart() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    std::fs::write(&a, b"12345").unwrap();
    let stamp = FileStamp::of(&std::fs::metadata(&a).unwrap());
    assert_eq!(stamp.size, 5);
    assert_ne!((stamp.dev, stamp.ino), (0, 0));
    assert!(stamp.mtime_ns > 1_600_000_000_000_000_000, "{stamp:?}");
    assert!(stamp.ctime_ns > 1_600_000_000_000_000_000, "{stamp:?}");
    let b = dir.path().join("b");
    std::fs::copy(&a, &b).unwrap();
    let other = FileStamp::of(&std::fs::metadata(&b).unwrap());
    assert_ne!(stamp.ino, other.ino);
    assert_eq!(stamp, FileStamp::of(&std::fs::metadata(&a).unwrap()));
}
