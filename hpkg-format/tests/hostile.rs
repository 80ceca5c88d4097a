//! Hostile input: every truncation and many bit flips of small golden packages,
//! and hand-crafted malformed packages. Each must give an error (or, for a
//! flip that keeps the package valid, a normal read), never a panic, an
//! unbounded allocation or a stack overflow.

mod robust;
use robust as common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use common::{
    build_package, fixture, minimal_attrs, open_and_read_all, simple_package, str_attr, tag,
    u8_attr, Rng, SectionParts,
};
use hpkg_format::attr::write_uleb128;
use hpkg_format::ids::{self, AttrType};
use hpkg_format::{Compression, Error, NoCache, Package};

/// The small golden packages mutated here: zstd, zstd (minor 1, inline data,
/// empty file) and zlib with every kind of package attribute.
const SMALL: [&str; 3] = [
    "haiku-tool/minimal-zstd.hpkg",
    "haiku/artificial-1.0.0-any.hpkg",
    "haiku-tool/metadata-zlib.hpkg",
];

// ------------------------------------------------------------ allocations

/// Records the largest single allocation made by the current thread while
/// tracking is on.
struct LargestAlloc;

thread_local! {
    static TRACK: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    if TRACK.with(Cell::get) {
        LARGEST.with(|l| l.set(l.get().max(size)));
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// thread-locals touched are const-initialised `Cell`s, which neither allocate
// nor register destructors.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for LargestAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same layout as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: same layout as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: `ptr` was allocated by `System` with this layout.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: LargestAlloc = LargestAlloc;

/// Run `f` and return its result with the largest allocation it made.
fn largest_alloc<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    TRACK.with(|t| t.set(true));
    let out = f();
    TRACK.with(|t| t.set(false));
    (out, LARGEST.with(Cell::get))
}

// ------------------------------------------------------------ mutations

/// Open and read everything, turning a panic into a message.
fn no_panic(bytes: Vec<u8>) -> Result<hpkg_format::Result<()>, String> {
    catch_unwind(AssertUnwindSafe(|| open_and_read_all(bytes))).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "non-string panic".into())
    })
}

fn set_be(bytes: &mut [u8], at: usize, value: u64, width: usize) {
    if bytes.len() >= at + width {
        bytes[at..at + width].copy_from_slice(&value.to_be_bytes()[8 - width..]);
    }
}

#[test]
fn every_truncation_is_an_error() {
    for name in SMALL {
        let full = fixture(name);
        assert!(
            no_panic(full.clone()).unwrap().is_ok(),
            "{name} itself must read"
        );
        for len in 0..full.len() {
            let prefix = full[..len].to_vec();
            let r = no_panic(prefix.clone())
                .unwrap_or_else(|p| panic!("{name} truncated to {len}: panic {p}"));
            assert!(r.is_err(), "{name} truncated to {len} bytes opened");

            // The same, with the header made to agree: total size, then also
            // the stored heap size, so that the heap and section parsers see
            // the truncated data.
            let mut patched = prefix;
            set_be(&mut patched, 8, len as u64, 8);
            let r = no_panic(patched.clone())
                .unwrap_or_else(|p| panic!("{name} truncated to {len}, size patched: panic {p}"));
            assert!(
                r.is_err(),
                "{name} truncated to {len} (size patched) opened"
            );
            if len >= 80 {
                set_be(&mut patched, 24, len as u64 - 80, 8);
                let r = no_panic(patched).unwrap_or_else(|p| {
                    panic!("{name} truncated to {len}, sizes patched: panic {p}")
                });
                assert!(
                    r.is_err(),
                    "{name} truncated to {len} (sizes patched) opened"
                );
            }
        }
    }
}

#[test]
fn bit_flips_never_panic() {
    const FLIPS: usize = 20_000;
    for name in SMALL {
        let full = fixture(name);
        let mut rng = Rng(0x5eed ^ full.len() as u64);
        let (mut ok, mut err) = (0usize, 0usize);
        for i in 0..FLIPS {
            let mut bytes = full.clone();
            let mut what = Vec::new();
            match i % 3 {
                // One bit.
                0 => {
                    let (at, bit) = (rng.below(full.len() as u64) as usize, rng.below(8));
                    bytes[at] ^= 1 << bit;
                    what.push((at, bit));
                }
                // 2–8 bits anywhere.
                1 => {
                    for _ in 0..2 + rng.below(7) {
                        let (at, bit) = (rng.below(full.len() as u64) as usize, rng.below(8));
                        bytes[at] ^= 1 << bit;
                        what.push((at, bit));
                    }
                }
                // One byte set to a boundary value.
                _ => {
                    let at = rng.below(full.len() as u64) as usize;
                    let v = [0x00, 0xff, 0x7f, 0x80, 0x01][rng.below(5) as usize];
                    bytes[at] = v;
                    what.push((at, u64::from(v) << 8));
                }
            }
            match no_panic(bytes) {
                Ok(Ok(())) => ok += 1,
                Ok(Err(_)) => err += 1,
                Err(p) => panic!(
                    "{name}: mutation {i} (byte offset, bit or value<<8: {what:?}) panicked: {p}"
                ),
            }
        }
        // Flips in reserved fields, times or file content leave a readable
        // package; most others are caught. Both must occur, or the mutations
        // did not reach the file.
        assert!(ok > 0 && err > 0, "{name}: {ok} readable, {err} errors");
        eprintln!("{name}: {FLIPS} mutations, {ok} still readable, {err} errors");
    }
}

#[test]
fn version_1_is_its_own_error() {
    let mut bytes = fixture(SMALL[1]);
    bytes[6..8].copy_from_slice(&1u16.to_be_bytes());
    let e = Package::from_source(Arc::new(bytes)).unwrap_err();
    assert!(matches!(e.root(), Error::Version1), "{e}");
}

// ------------------------------------------------------------ hand-crafted

/// A TOC with one file `f` whose content is `size` bytes at heap `offset`.
fn file_toc(size: u64, offset: u64) -> SectionParts {
    let mut list = Vec::new();
    str_attr(&mut list, ids::DIR_ENTRY, b"f", true);
    tag(&mut list, ids::DATA, AttrType::Raw, 1, false);
    write_uleb128(&mut list, size);
    write_uleb128(&mut list, offset);
    list.extend_from_slice(&[0, 0]);
    SectionParts::new(list)
}

/// Open a package built from a TOC list (no heap payload) and return the error.
fn toc_error(toc: SectionParts) -> String {
    let bytes = simple_package(Compression::None, &[], &toc, &minimal_attrs());
    match no_panic(bytes) {
        Ok(Err(e)) => e.to_string(),
        Ok(Ok(())) => panic!("hostile TOC was accepted"),
        Err(p) => panic!("hostile TOC panicked: {p}"),
    }
}

#[test]
fn built_packages_read_back() {
    // The builder itself must make valid packages, or the cases below prove
    // nothing.
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i * 7 / 13) as u8).collect();
    for c in [Compression::None, Compression::Zlib, Compression::Zstd] {
        let toc = file_toc(payload.len() as u64, 0);
        let pkg = Package::from_source(Arc::new(simple_package(
            c,
            &payload,
            &toc,
            &minimal_attrs(),
        )))
        .unwrap();
        assert_eq!(pkg.info().name, "hostile");
        let id = pkg.toc().lookup(None, b"f").unwrap();
        assert_eq!(
            pkg.data_to_vec(pkg.toc().data(id), &NoCache).unwrap(),
            payload
        );
    }
}

#[test]
fn leb128_of_eleven_bytes() {
    let mut list = vec![0xff; 10];
    list.push(0x01);
    list.push(0);
    let e = toc_error(SectionParts::new(list));
    assert!(e.contains("LEB128"), "{e}");
}

#[test]
fn tag_above_8192() {
    let mut list = Vec::new();
    write_uleb128(&mut list, 8193);
    list.push(0);
    let e = toc_error(SectionParts::new(list));
    assert!(e.contains("tag 8193 is out of range"), "{e}");
}

#[test]
fn string_index_equal_to_count() {
    let mut list = Vec::new();
    tag(&mut list, ids::DIR_ENTRY, AttrType::String, 1, false);
    write_uleb128(&mut list, 1);
    list.push(0);
    let toc = SectionParts {
        strings: vec![b"a".to_vec()],
        list,
    };
    let e = toc_error(toc);
    assert!(e.contains("string index 1 out of range"), "{e}");
}

#[test]
fn inline_data_of_nine_bytes() {
    let mut list = Vec::new();
    str_attr(&mut list, ids::DIR_ENTRY, b"f", true);
    tag(&mut list, ids::DATA, AttrType::Raw, 0, false);
    write_uleb128(&mut list, 9);
    list.extend_from_slice(&[7; 9]);
    list.extend_from_slice(&[0, 0]);
    let e = toc_error(SectionParts::new(list));
    assert!(e.contains("inline data of 9 bytes"), "{e}");
}

#[test]
fn heap_reference_past_the_end() {
    // The heap holds the TOC and attributes only (< 100 bytes).
    for (size, offset) in [(10, 95), (1, 1 << 40), (u64::MAX, 1), (1, u64::MAX)] {
        let e = toc_error(file_toc(size, offset));
        assert!(
            e.contains("lies outside the heap"),
            "{size} at {offset}: {e}"
        );
    }
}

/// A TOC of `depth` directories, each inside the previous one.
fn nested_dirs(depth: usize) -> SectionParts {
    let mut list = Vec::new();
    for _ in 0..depth {
        str_attr(&mut list, ids::DIR_ENTRY, b"d", true);
        u8_attr(&mut list, ids::FILE_TYPE, 1);
    }
    list.resize(list.len() + depth + 1, 0);
    SectionParts::new(list)
}

#[test]
fn directories_nested_100000_deep() {
    let e = toc_error(nested_dirs(100_000));
    assert!(e.contains("nested deeper than"), "{e}");
    // A deep but sane tree still reads, and its deepest path is complete.
    let bytes = simple_package(Compression::None, &[], &nested_dirs(4000), &minimal_attrs());
    let pkg = Package::from_source(Arc::new(bytes)).unwrap();
    let mut longest = 0;
    pkg.toc().walk(|path, _| longest = longest.max(path.len()));
    assert_eq!((pkg.toc().len(), longest), (4000, 4000 * 2 - 1));
}

#[test]
fn package_attributes_nested_100000_deep() {
    // package:name with a child list of package:names, each with children.
    let mut list = Vec::new();
    for _ in 0..100_000 {
        str_attr(&mut list, ids::PACKAGE_NAME, b"n", true);
    }
    list.resize(list.len() + 100_001, 0);
    let bytes = simple_package(
        Compression::None,
        &[],
        &SectionParts::new(vec![0]),
        &SectionParts::new(list),
    );
    let e = Package::from_source(Arc::new(bytes))
        .unwrap_err()
        .to_string();
    assert!(e.contains("nested deeper than"), "{e}");
}

#[test]
fn chunk_table_summing_past_the_end() {
    let payload = vec![0u8; 3 * 65536];
    let toc = file_toc(payload.len() as u64, 0);
    for c in [Compression::Zlib, Compression::Zstd] {
        let mut bytes = simple_package(c, &payload, &toc, &minimal_attrs());
        // Four chunks: the table is the last 3 × 2 bytes.
        let n = bytes.len();
        bytes[n - 6..].copy_from_slice(&[0xff; 6]);
        let e = Package::from_source(Arc::new(bytes))
            .unwrap_err()
            .to_string();
        assert!(e.contains("chunk table sums"), "{c}: {e}");
    }
}

#[test]
fn chunk_bombs_fail_without_large_allocations() {
    let zeros = vec![0u8; 1 << 20];
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    zlib.write_all(&zeros).unwrap();
    let bombs = [
        (Compression::Zlib, "zlib", zlib.finish().unwrap()),
        // With the content size in the frame header, and without it.
        (
            Compression::Zstd,
            "zstd",
            zstd::bulk::compress(&zeros, 19).unwrap(),
        ),
        (
            Compression::Zstd,
            "zstd streamed",
            zstd::stream::encode_all(&zeros[..], 19).unwrap(),
        ),
    ];
    // Chunk 0 holds the file's 64 KiB; the TOC and attributes are in chunk 1.
    let payload: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
    let toc = file_toc(payload.len() as u64, 0);
    for (c, what, bomb) in bombs {
        assert!(bomb.len() < 65536, "{what} bomb of {} bytes", bomb.len());
        let bytes = build_package(c, &payload, &toc, &minimal_attrs(), &|i, chunk| {
            if i == 0 {
                bomb.clone()
            } else {
                chunk
            }
        });
        let mut buf = vec![0u8; 65536];
        let (reads, largest) = largest_alloc(|| {
            let pkg = Package::from_source(Arc::new(bytes)).expect("TOC chunk is valid");
            let id = pkg.toc().lookup(None, b"f").expect("entry f");
            // Whole chunk (decoded in place), then part of it (via a buffer).
            [
                pkg.read_file(id, 0, &mut buf, &NoCache),
                pkg.read_file(id, 100, &mut buf[..10], &NoCache),
            ]
        });
        for r in reads {
            let e = r.expect_err(what).to_string();
            assert!(e.contains("heap chunk 0"), "{what}: {e}");
        }
        // The partial read allocates one chunk buffer (so tracking works),
        // and nothing larger.
        assert!(
            (65536..=65536 + 4096).contains(&largest),
            "{what}: largest allocation {largest} bytes"
        );
    }
}
