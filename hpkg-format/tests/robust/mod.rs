//! Shared helpers of the robustness tests: locating the golden fixtures, a
//! deterministic PRNG, reading everything a package holds, and a tiny package
//! builder for hand-crafted hostile inputs (attribute streams are written with
//! the library's own `write_uleb128` / `encode_tag`).

#![allow(dead_code)]

pub mod synth;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hpkg_format::attr::{encode_tag, write_uleb128};
use hpkg_format::codec::{self, Compression};
use hpkg_format::ids::{self, AttrType};
use hpkg_format::{NoCache, Package};

/// The golden fixtures directory: `$PACKAGEFS_FIXTURES`, or `shared/fixtures`
/// beside the workspace.
pub fn fixtures() -> PathBuf {
    let dir = std::env::var_os("PACKAGEFS_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"));
    assert!(
        dir.is_dir(),
        "golden fixtures not found at {}; set PACKAGEFS_FIXTURES (CI has ../shared beside the checkout)",
        dir.display()
    );
    dir
}

/// The bytes of a golden fixture, e.g. `haiku/artificial-1.0.0-any.hpkg`.
pub fn fixture(rel: &str) -> Vec<u8> {
    let path = fixtures().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// SplitMix64: a small deterministic PRNG.
pub struct Rng(pub u64);

impl Rng {
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Open `bytes` as a package and, if that works, read everything it holds:
/// every entry's metadata, file content, symlink target and attribute data.
/// The error of the open, or else the first read error, if any.
pub fn open_and_read_all(bytes: Vec<u8>) -> hpkg_format::Result<()> {
    let pkg = Package::from_source(Arc::new(bytes))?;
    let toc = pkg.toc();
    let mut first_err = None;
    let mut buf = vec![0u8; 64 << 10];
    toc.walk(|_, id| {
        let e = toc.entry(id);
        let _ = (
            e.kind(),
            e.mode(),
            e.mtime(),
            e.size(),
            toc.symlink_target(id),
        );
        let mut datas = vec![toc.data(id)];
        datas.extend(toc.attrs(id).iter().map(|a| toc.attr_data(a)));
        for data in datas {
            let r = if data.len() <= 1 << 20 {
                pkg.data_to_vec(data, &NoCache).map(drop)
            } else {
                // Large (possibly hostile) sizes: read in pieces, up to 16 MiB.
                let mut off = 0;
                let mut r = Ok(());
                while off < data.len().min(16 << 20) {
                    match pkg.read_data(data, off, &mut buf, &NoCache) {
                        Ok(n) => off += n as u64,
                        Err(e) => {
                            r = Err(e);
                            break;
                        }
                    }
                }
                r
            };
            if let (Err(e), None) = (r, &first_err) {
                first_err = Some(e);
            }
        }
    });
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The parts of an attribute section: string table and attribute list.
#[derive(Debug, Clone, Default)]
pub struct SectionParts {
    /// Strings of the table (without their NULs).
    pub strings: Vec<Vec<u8>>,
    /// The attribute list, its final 0 included.
    pub list: Vec<u8>,
}

impl SectionParts {
    /// A section with no strings.
    pub fn new(list: Vec<u8>) -> SectionParts {
        SectionParts {
            strings: Vec::new(),
            list,
        }
    }

    /// String subsection bytes (always at least the terminating empty string).
    fn table(&self) -> Vec<u8> {
        let mut t = Vec::new();
        for s in &self.strings {
            t.extend_from_slice(s);
            t.push(0);
        }
        t.push(0);
        t
    }
}

/// Append a tag.
pub fn tag(out: &mut Vec<u8>, id: u8, ty: AttrType, encoding: u8, children: bool) {
    write_uleb128(out, encode_tag(id, ty, encoding, children));
}

/// Append an attribute with an inline string value.
pub fn str_attr(out: &mut Vec<u8>, id: u8, value: &[u8], children: bool) {
    tag(out, id, AttrType::String, 0, children);
    out.extend_from_slice(value);
    out.push(0);
}

/// Append an attribute with a one-byte unsigned value.
pub fn u8_attr(out: &mut Vec<u8>, id: u8, value: u8) {
    tag(out, id, AttrType::UInt, 0, false);
    out.push(value);
}

/// The package attributes of a minimal valid package (`package:name`).
pub fn minimal_attrs() -> SectionParts {
    let mut list = Vec::new();
    str_attr(&mut list, ids::PACKAGE_NAME, b"hostile", false);
    list.push(0);
    SectionParts::new(list)
}

/// Build an `.hpkg`: heap = `payload`, then the TOC, then the package
/// attributes, cut into 64 KiB chunks stored with `compression` (raw where it
/// does not shrink them). `replace_chunk(index, stored)` may swap a stored
/// chunk for another, to plant hostile ones.
pub fn build_package(
    compression: Compression,
    payload: &[u8],
    toc: &SectionParts,
    attrs: &SectionParts,
    replace_chunk: &dyn Fn(usize, Vec<u8>) -> Vec<u8>,
) -> Vec<u8> {
    let toc_table = toc.table();
    let attrs_table = attrs.table();
    let mut heap = payload.to_vec();
    heap.extend_from_slice(&toc_table);
    heap.extend_from_slice(&toc.list);
    heap.extend_from_slice(&attrs_table);
    heap.extend_from_slice(&attrs.list);
    let mut stored = Vec::new();
    let mut table = Vec::new();
    let chunks: Vec<&[u8]> = heap.chunks(65536).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let mut out = Vec::new();
        if !codec::compress(compression, 9, chunk, &mut out) {
            out = chunk.to_vec();
        }
        let out = replace_chunk(i, out);
        if i + 1 < chunks.len() {
            table.extend_from_slice(&((out.len() - 1) as u16).to_be_bytes());
        }
        stored.extend_from_slice(&out);
    }
    if compression != Compression::None {
        stored.extend_from_slice(&table);
    }
    let mut file = Vec::new();
    let total = 80 + stored.len() as u64;
    file.extend_from_slice(b"hpkg");
    file.extend_from_slice(&80u16.to_be_bytes());
    file.extend_from_slice(&2u16.to_be_bytes());
    file.extend_from_slice(&total.to_be_bytes());
    file.extend_from_slice(&1u16.to_be_bytes());
    file.extend_from_slice(&(compression as u16).to_be_bytes());
    file.extend_from_slice(&65536u32.to_be_bytes());
    file.extend_from_slice(&(stored.len() as u64).to_be_bytes());
    file.extend_from_slice(&(heap.len() as u64).to_be_bytes());
    let attrs_len = attrs_table.len() + attrs.list.len();
    file.extend_from_slice(&(attrs_len as u32).to_be_bytes());
    file.extend_from_slice(&(attrs_table.len() as u32).to_be_bytes());
    file.extend_from_slice(&(attrs.strings.len() as u32).to_be_bytes());
    file.extend_from_slice(&0u32.to_be_bytes());
    let toc_len = toc_table.len() + toc.list.len();
    file.extend_from_slice(&(toc_len as u64).to_be_bytes());
    file.extend_from_slice(&(toc_table.len() as u64).to_be_bytes());
    file.extend_from_slice(&(toc.strings.len() as u64).to_be_bytes());
    assert_eq!(file.len(), 80);
    file.extend_from_slice(&stored);
    file
}

/// [`build_package`] with no chunk replaced.
pub fn simple_package(
    compression: Compression,
    payload: &[u8],
    toc: &SectionParts,
    attrs: &SectionParts,
) -> Vec<u8> {
    build_package(compression, payload, toc, attrs, &|_, c| c)
}
