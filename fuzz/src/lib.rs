//! The bodies of the fuzz targets in `fuzz_targets/`: each takes arbitrary
//! bytes, drives one layer of the `hpkg-format` reader as far as the bytes
//! allow, and checks that two ways of reading the same bytes agree. A panic,
//! an abort or a sanitizer report is a bug; errors are the expected outcome.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hpkg_format::attr::{Section, SectionKind, Value};
use hpkg_format::header::HeapGeometry;
use hpkg_format::heap::CHUNK_SIZE;
use hpkg_format::{Chunk, ChunkCache, ChunkKey, Data, Heap, NoCache, Package, Toc};

/// Most heap bytes one execution decompresses or copies (roughly), so that a
/// large seed (or a hostile heap size) keeps executions fast.
const READ_BUDGET: u64 = 4 << 20;
/// The same for the `heap` target, which decompresses every chunk twice.
const HEAP_BUDGET: u64 = 1 << 20;
/// Payloads up to this size are also read whole with `data_to_vec`.
const WHOLE_READ_MAX: u64 = 1 << 20;

/// A tiny bounded chunk cache (first in, first out), so that reads go through
/// the cache paths too. It counts the chunks offered to it, that is the chunks
/// decompressed for partial reads.
pub struct SmallCache {
    slots: Mutex<Vec<(ChunkKey, Chunk)>>,
    capacity: usize,
    inserts: AtomicU64,
}

impl SmallCache {
    /// A cache keeping at most `capacity` chunks.
    pub fn new(capacity: usize) -> SmallCache {
        SmallCache {
            slots: Mutex::new(Vec::new()),
            capacity,
            inserts: AtomicU64::new(0),
        }
    }

    /// How many chunks were offered so far.
    pub fn inserts(&self) -> u64 {
        self.inserts.load(Ordering::Relaxed)
    }
}

impl ChunkCache for SmallCache {
    fn get(&self, key: ChunkKey) -> Option<Chunk> {
        let slots = self.slots.lock().ok()?;
        slots
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, c)| c.clone())
    }

    fn insert(&self, key: ChunkKey, chunk: Chunk) {
        self.inserts.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut slots) = self.slots.lock() {
            if slots.iter().any(|(k, _)| *k == key) {
                return;
            }
            if slots.len() >= self.capacity {
                slots.remove(0);
            }
            slots.push((key, chunk));
        }
    }
}

/// A small deterministic PRNG (SplitMix64), seeded from the input.
pub struct Rng(u64);

impl Rng {
    /// Seed from bytes (FNV-1a).
    pub fn from_bytes(data: &[u8]) -> Rng {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for &b in data {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        Rng(h)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

fn be(data: &[u8], at: usize, width: usize) -> u64 {
    data.get(at..at + width)
        .map(|b| b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
        .unwrap_or(0)
}

// ---------------------------------------------------------------- package

/// Target `package`: open the bytes as a package; if that works, walk the whole
/// TOC and read every file, symlink and attribute. When the header's total size
/// disagrees with the input length, the same bytes are tried again with it
/// patched, so that mutations reach the parsers behind that first check.
pub fn package(data: &[u8]) {
    exercise_package(data.to_vec());
    if data.len() >= 16 && data.starts_with(b"hpkg") && be(data, 8, 8) != data.len() as u64 {
        let mut patched = data.to_vec();
        patched[8..16].copy_from_slice(&(data.len() as u64).to_be_bytes());
        exercise_package(patched);
    }
}

fn exercise_package(bytes: Vec<u8>) {
    let Ok(pkg) = Package::from_source(Arc::new(bytes)) else {
        return;
    };
    walk_package(&pkg);
}

/// Every accessor of an opened package on every entry, and reads of every
/// payload (within the budget).
fn walk_package(pkg: &Package) {
    let info = pkg.info();
    let _ = format!("{info:?} {}", info.file_name());
    for p in &info.provides {
        if let Some(v) = &p.version {
            let _ = v.compare(&info.version);
        }
    }
    for r in &info.requires {
        let _ = info.satisfies(r);
    }
    let toc = pkg.toc();
    let cache = SmallCache::new(8);
    let mut read = 0u64;
    let mut seen = 0usize;
    toc.walk(|path, id| {
        seen += 1;
        assert!(!path.is_empty(), "empty path for entry {id}");
        let e = toc.entry(id);
        let _ = (e.kind(), e.mode(), e.mtime(), e.size());
        let _ = toc.symlink_target(id);
        let children = toc.children(Some(id)).count();
        assert!(children as u64 <= u64::from(e.subtree_end() - id));
        read_payload(pkg, toc.data(id), &cache, &mut read);
        for a in toc.attrs(id) {
            let _ = (toc.attr_name(a), a.type_code(), a.size());
            read_payload(pkg, toc.attr_data(a), &cache, &mut read);
        }
    });
    assert_eq!(seen, toc.len(), "walk visits every entry once");
    let top: Vec<_> = toc.children(None).collect();
    for &c in top.iter().take(16) {
        let _ = toc.lookup(None, toc.name(c));
    }
}

/// Read a payload piecewise through `read_data` and whole through
/// `data_to_vec` (when small); when both succeed they must agree. Heap
/// payloads are skipped once the work done so far (bytes read, chunks
/// decompressed for partial reads) exceeds the budget.
fn read_payload(pkg: &Package, data: Data<'_>, cache: &SmallCache, read: &mut u64) {
    let len = data.len();
    if let Data::Heap { .. } = data {
        if *read + cache.inserts() * CHUNK_SIZE as u64 > READ_BUDGET {
            return;
        }
    }
    // Odd piece size, so that pieces straddle chunk boundaries.
    let mut piece = vec![0u8; 7 * 1024 + 3];
    let mut pieces: Option<Vec<u8>> = (len <= WHOLE_READ_MAX).then(Vec::new);
    let mut off = 0u64;
    let mut ok = true;
    while off < len && *read + cache.inserts() * (CHUNK_SIZE as u64) <= READ_BUDGET {
        match pkg.read_data(data, off, &mut piece, cache) {
            Ok(0) => panic!("read_data returned 0 bytes at {off} of {len}"),
            Ok(n) => {
                if let Some(p) = pieces.as_mut() {
                    p.extend_from_slice(&piece[..n]);
                }
                off += n as u64;
                *read += n as u64;
            }
            Err(_) => {
                ok = false;
                break;
            }
        }
    }
    if let (Some(p), true) = (pieces, ok && off == len) {
        *read += len;
        if let Ok(w) = pkg.data_to_vec(data, cache) {
            assert_eq!(p, w, "piecewise and whole reads disagree");
        }
    }
}

// ---------------------------------------------------------- index image

/// The package every `index_image` input claims to index: a golden package
/// small enough to embed, with directories, symlinks and attributes.
static IMAGE_PACKAGE: &[u8] = include_bytes!("../seeds/package/tipster-1.1.1-1-x86_64.hpkg");

/// Target `index_image`: the bytes as the index image of [`IMAGE_PACKAGE`];
/// if it loads, walk it as the `package` target does. The key and stamp it
/// is checked against are taken from the input's own header, and its CRC-32
/// is patched to match, so that mutations get past those checks to the
/// length, header and table checks behind them (offsets of the image header
/// of `hpkg_format::index_image`: CRC at 16, key at 24, stamp at 56).
pub fn index_image(data: &[u8]) {
    use hpkg_format::index_image::{load, FileStamp, HEADER_SIZE};
    let mut image = data.to_vec();
    let mut key = [0u8; 32];
    let mut stamp = FileStamp::default();
    if image.len() >= HEADER_SIZE {
        key.copy_from_slice(&image[24..56]);
        let word = |i: usize| {
            let at = 56 + 8 * i;
            let mut b = [0u8; 8];
            b.copy_from_slice(&image[at..at + 8]);
            u64::from_ne_bytes(b)
        };
        stamp = FileStamp {
            dev: word(0),
            ino: word(1),
            size: word(2),
            mtime_ns: word(3) as i64,
            ctime_ns: word(4) as i64,
        };
        image[16..20].fill(0);
        let crc = crc32fast::hash(&image);
        image[16..20].copy_from_slice(&crc.to_ne_bytes());
    }
    let package: Arc<dyn hpkg_format::ReadAt> = Arc::new(IMAGE_PACKAGE.to_vec());
    if let Ok(pkg) = load(&image, package, &key, &stamp) {
        walk_package(&pkg);
    }
}

// ---------------------------------------------------------------- section

/// Target `section`: a 14-byte parameter block, then the section bytes.
///
/// Parameters: flags (bit 0: attributes section instead of TOC), minor
/// version, string-subsection length (u32 BE), string count (u32 BE), heap
/// size (u32 BE). The section is read attribute by attribute (descending into
/// or skipping child lists as the input decides) and parsed as a TOC.
pub fn section(data: &[u8]) {
    let Some(body) = data.get(14..) else {
        return;
    };
    let flags = data[0];
    let kind = if flags & 1 == 0 {
        SectionKind::Toc
    } else {
        SectionKind::Attributes
    };
    let minor = u16::from(data[1]);
    let strings_length = be(data, 2, 4);
    let strings_count = be(data, 6, 4);
    let heap_size = be(data, 10, 4);
    let make = || {
        Section::new(
            body.to_vec(),
            kind,
            strings_length,
            strings_count,
            heap_size,
            minor,
        )
    };
    let Ok(sec) = make() else {
        return;
    };
    let mut rng = Rng::from_bytes(data);
    let mut r = sec.reader();
    let mut depth = 0usize;
    loop {
        match r.next_attr() {
            Ok(None) if depth == 0 => {
                let _ = r.expect_end();
                break;
            }
            Ok(None) => depth -= 1,
            Ok(Some(a)) => {
                match a.value {
                    Value::Str(_) => {
                        let _ = r.string(&a).unwrap_or_default();
                    }
                    Value::Int(_) | Value::UInt(_) => {
                        let _ = r.uint(&a);
                    }
                    Value::RawInline(s) => {
                        assert!(sec.span(s).len() as u64 <= 8, "inline data over 8 bytes");
                    }
                    Value::RawHeap { offset, size } => {
                        assert!(offset <= heap_size && size <= heap_size - offset);
                    }
                }
                if a.has_children {
                    if rng.below(2) == 0 {
                        if r.skip_children().is_err() {
                            break;
                        }
                    } else {
                        depth += 1;
                    }
                }
            }
            Err(_) => break,
        }
        assert!(r.pos() <= sec.bytes.len() as u64);
    }
    if let Ok(toc) = make().and_then(Toc::parse) {
        let mut n = 0usize;
        toc.walk(|_, id| {
            n += 1;
            let _ = (toc.data(id), toc.symlink_target(id), toc.attrs(id));
            for a in toc.attrs(id) {
                let _ = (toc.attr_name(a), toc.attr_data(a));
            }
        });
        assert_eq!(n, toc.len());
        let _ = toc.memory_bytes();
    }
}

// ---------------------------------------------------------------- heap

/// The heap geometry an input describes: the heap fields of an `hpkg`/`hpkr`
/// header when it starts with one (so package seeds serve here too), else a
/// 13-byte block: compression, uncompressed size (u64 BE), stored size (u32
/// BE), with the heap right after it. As [`Heap::open`] requires (its header
/// check guarantees it), the stored heap lies inside the input; the
/// uncompressed size and the compression are left as they are.
pub fn heap_geometry(data: &[u8]) -> Option<HeapGeometry> {
    let (offset, compression, compressed_size, uncompressed_size) =
        if data.len() >= 72 && (data.starts_with(b"hpkg") || data.starts_with(b"hpkr")) {
            (
                be(data, 4, 2),
                be(data, 18, 2) as u16,
                be(data, 24, 8),
                be(data, 32, 8),
            )
        } else {
            let head = data.get(..13)?;
            let stored = be(head, 9, 4).min(data.len() as u64 - 13);
            (13, u16::from(head[0] % 4), stored, be(head, 1, 8))
        };
    if offset.checked_add(compressed_size)? > data.len() as u64 {
        return None;
    }
    Some(HeapGeometry {
        offset,
        compression,
        compressed_size,
        uncompressed_size,
    })
}

/// Target `heap`: open a heap over the input with the geometry it describes,
/// read its first chunks and its last one, then random ranges (chosen by a
/// PRNG seeded from the input) with and without a cache, whole and split in
/// two: all must agree.
pub fn heap(data: &[u8]) {
    let Some(geo) = heap_geometry(data) else {
        return;
    };
    let Ok(heap) = Heap::open(Arc::new(data.to_vec()), geo) else {
        return;
    };
    let size = heap.size();
    let cache = SmallCache::new(2);
    let count = heap.chunk_count();
    let last = count.checked_sub(1).filter(|&l| l >= 8);
    for index in (0..count.min(8)).chain(last) {
        let len = heap.chunk_len(index);
        assert!(len <= CHUNK_SIZE && len > 0, "chunk {index} of {len} bytes");
        let (at, stored) = heap.stored_range(index);
        assert!(at >= geo.offset && stored <= CHUNK_SIZE as u64);
        let _ = heap.is_raw(index);
        let direct = heap.chunk(index, &NoCache);
        let cached = heap.chunk(index, &cache);
        match (&direct, &cached) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.len(), len);
                assert_eq!(a, b, "chunk {index}: cached and direct differ");
            }
            (Err(_), Err(_)) => {}
            _ => panic!("chunk {index}: cached and direct reads disagree on success"),
        }
    }
    let mut rng = Rng::from_bytes(data);
    let mut budget = HEAP_BUDGET;
    for _ in 0..8 {
        let offset = rng.below(size.saturating_add(2).min(1 << 40));
        let len = rng.below(2 * CHUNK_SIZE as u64 + 2);
        if budget < 3 * len {
            break;
        }
        budget -= 3 * len;
        let mut a = vec![0u8; len as usize];
        let ra = heap.read_at(offset, &mut a, &NoCache);
        let in_heap = offset <= size && len <= size - offset;
        if !in_heap {
            assert!(ra.is_err(), "read of {len} at {offset} past heap {size}");
            continue;
        }
        let mut b = vec![0u8; len as usize];
        let split = rng.below(len + 1) as usize;
        let (b1, b2) = b.split_at_mut(split);
        let rb = heap
            .read_at(offset, b1, &cache)
            .and_then(|()| heap.read_at(offset + split as u64, b2, &cache));
        if let (Ok(()), Ok(())) = (&ra, &rb) {
            assert_eq!(a, b, "read of {len} at {offset}: whole and split differ");
        }
        assert_eq!(ra.is_ok(), rb.is_ok(), "read of {len} at {offset}");
        if len <= WHOLE_READ_MAX {
            if let (Ok(v), Ok(())) = (heap.read_vec(offset, len), &ra) {
                assert_eq!(v, a);
            }
        }
    }
}
