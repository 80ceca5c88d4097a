//! A synthetic TOC section of any size, built in memory with the library's own
//! attribute encoding: 100 top-level directories, each with subdirectories
//! holding files (string-table names, permissions, mtime, heap data, and a
//! `BEOS:TYPE` attribute on every tenth file). Shared by the allocation test
//! and the TOC benchmark.

use hpkg_format::attr::{encode_tag, write_uleb128, Section, SectionKind};
use hpkg_format::ids::{self, AttrType};

/// A TOC section's bytes and the header fields that describe it.
pub struct SynthToc {
    /// String table, then attribute list.
    pub bytes: Vec<u8>,
    /// Length of the string subsection.
    pub strings_length: u64,
    /// Number of strings.
    pub strings_count: u64,
    /// Number of entries in it.
    pub entries: usize,
    /// Heap size the data references fit in.
    pub heap_size: u64,
}

impl SynthToc {
    /// A [`Section`] over a copy of the bytes, ready for `Toc::parse`.
    pub fn section(&self) -> Section {
        Section::new(
            self.bytes.clone(),
            SectionKind::Toc,
            self.strings_length,
            self.strings_count,
            self.heap_size,
            1,
        )
        .expect("synthetic string table")
    }
}

fn tag(out: &mut Vec<u8>, id: u8, ty: AttrType, encoding: u8, children: bool) {
    write_uleb128(out, encode_tag(id, ty, encoding, children));
}

/// A TOC of about `n` entries (at least 100 directories; the rest are split
/// into subdirectories of 100 files).
pub fn synth_toc(n: usize) -> SynthToc {
    const TOP: usize = 100;
    const FILES: usize = 99;
    // Each subdirectory holds itself and FILES files.
    let subdirs_total = n.saturating_sub(TOP).div_ceil(FILES + 1).max(1);
    let per_top = subdirs_total.div_ceil(TOP);

    // String table: directory and file names, and the attribute name.
    let mut names: Vec<Vec<u8>> = Vec::new();
    let top_names = 0;
    names.extend((0..TOP).map(|i| format!("dir{i}").into_bytes()));
    let sub_names = names.len();
    names.extend((0..per_top).map(|i| format!("sub{i}").into_bytes()));
    let file_names = names.len();
    names.extend((0..FILES).map(|i| format!("file-{i}.txt").into_bytes()));
    let attr_name = names.len() as u64;
    names.push(b"BEOS:TYPE".to_vec());
    let mut bytes = Vec::new();
    for s in &names {
        bytes.extend_from_slice(s);
        bytes.push(0);
    }
    bytes.push(0);
    let strings_length = bytes.len() as u64;

    let entry = |out: &mut Vec<u8>, name: usize, dir: bool| {
        tag(out, ids::DIR_ENTRY, AttrType::String, 1, true);
        write_uleb128(out, name as u64);
        if dir {
            tag(out, ids::FILE_TYPE, AttrType::UInt, 0, false);
            out.push(1);
        }
        tag(out, ids::FILE_PERMISSIONS, AttrType::UInt, 1, false);
        out.extend_from_slice(&(if dir { 0o755u16 } else { 0o644 }).to_be_bytes());
        tag(out, ids::FILE_MTIME, AttrType::UInt, 2, false);
        out.extend_from_slice(&1_767_323_045u32.to_be_bytes());
    };
    let mut entries = 0usize;
    let mut heap_off = 0u64;
    for t in 0..TOP {
        entry(&mut bytes, top_names + t, true);
        entries += 1;
        for s in 0..per_top {
            entry(&mut bytes, sub_names + s, true);
            entries += 1;
            for f in 0..FILES {
                entry(&mut bytes, file_names + f, false);
                let size = 100 + (f as u64 * 37) % 5000;
                tag(&mut bytes, ids::DATA, AttrType::Raw, 1, false);
                write_uleb128(&mut bytes, size);
                write_uleb128(&mut bytes, heap_off);
                heap_off += size;
                if f % 10 == 0 {
                    tag(&mut bytes, ids::FILE_ATTRIBUTE, AttrType::String, 1, true);
                    write_uleb128(&mut bytes, attr_name);
                    tag(
                        &mut bytes,
                        ids::FILE_ATTRIBUTE_TYPE,
                        AttrType::UInt,
                        2,
                        false,
                    );
                    bytes.extend_from_slice(&0x4d49_4d53u32.to_be_bytes());
                    tag(&mut bytes, ids::DATA, AttrType::Raw, 0, false);
                    write_uleb128(&mut bytes, 5);
                    bytes.extend_from_slice(b"text\0");
                    bytes.push(0);
                }
                bytes.push(0);
                entries += 1;
            }
            bytes.push(0);
        }
        bytes.push(0);
    }
    bytes.push(0);
    SynthToc {
        bytes,
        strings_length,
        strings_count: names.len() as u64,
        entries,
        heap_size: heap_off,
    }
}
