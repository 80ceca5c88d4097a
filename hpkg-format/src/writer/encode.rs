//! The one encoder behind both entry points (`docs/hpkg-format.md` §16): payloads are
//! streamed into the heap in tree order (each entry's data, then its
//! attributes' data, then its children), then the TOC and the package
//! attributes are appended, then the header is filled in.
//!
//! Entry attributes follow spec §8.2: `file:type` (not for regular files),
//! `file:permissions` (only when not the type's default), `atime`, `mtime`,
//! `crtime` (all the modification time, so the output does not depend on
//! when the tree was last read; Haiku also writes the modification time as
//! creation time on non-Haiku hosts), `file:mtime:nanos` only when non-zero
//! (never for a scanned directory, since Haiku writes none; kept when a
//! rewritten package had them), `data` (omitted for empty files) or
//! `symlink:path`, the file attributes, then the child entries.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Mutex;

use zerocopy::byteorder::{U16, U32, U64};
use zerocopy::IntoBytes;

use crate::attr::{MAX_DEPTH, MAX_INLINE_DATA};
use crate::codec::Compression;
use crate::error::{Error, Location, Result};
use crate::header::{
    HpkgHeader, FORMAT_VERSION, HPKG_HEADER_SIZE, HPKG_MAGIC, MAX_ATTRIBUTES_LENGTH, MAX_TOC_LENGTH,
};
use crate::heap::{Chunk, ChunkCache, ChunkKey, CHUNK_SIZE};
use crate::ids;
use crate::package::Package;
use crate::toc::EntryKind;

use super::heap::{HeapSizes, HeapWriter};
use super::section::{self, Node as Attr, Value};
use super::tree::{Kind, Node, Source};

/// Counters gathered while encoding.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    /// Entries written.
    pub entries: u64,
    /// Regular files among them.
    pub files: u64,
}

/// The result of encoding: sizes for the header and the statistics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Written {
    /// Heap sizes.
    pub heap: HeapSizes,
    /// Size of the whole file.
    pub file_size: u64,
    /// Entry counters.
    pub counts: Counts,
}

/// Keeps the last few decompressed chunks of the package being rewritten,
/// so that streaming a payload decompresses each chunk once.
#[derive(Debug, Default)]
struct RecentChunks(Mutex<Vec<(ChunkKey, Chunk)>>);

impl ChunkCache for RecentChunks {
    fn get(&self, key: ChunkKey) -> Option<Chunk> {
        let cache = self.0.lock().ok()?;
        cache
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, c)| c.clone())
    }
    fn insert(&self, key: ChunkKey, chunk: Chunk) {
        if let Ok(mut cache) = self.0.lock() {
            if cache.len() >= 2 {
                cache.remove(0);
            }
            cache.push((key, chunk));
        }
    }
}

/// Where payload bytes are read from.
struct Sources<'a> {
    /// The package being rewritten, for [`Source::Package`].
    pkg: Option<&'a Package>,
    cache: RecentChunks,
    buf: Vec<u8>,
}

impl Sources<'_> {
    /// Feed a payload to `sink` in pieces of at most 64 KiB.
    fn stream(&mut self, src: &Source, sink: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<()> {
        match src {
            Source::Bytes(b) => sink(b),
            Source::File { path, size } => {
                let in_file = |e: io::Error| Error::Io(e).in_file(path);
                let changed = || Error::Unpackable {
                    path: path.clone(),
                    reason: format!("changed size while being packaged (was {size} bytes)"),
                };
                let mut f: File = OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(path)
                    .map_err(in_file)?;
                if f.metadata().map_err(in_file)?.len() != *size {
                    return Err(changed());
                }
                self.buf.resize(CHUNK_SIZE, 0);
                let mut left = *size;
                while left > 0 {
                    let want = left.min(CHUNK_SIZE as u64) as usize;
                    let n = match f.read(&mut self.buf[..want]) {
                        Ok(0) => return Err(changed()),
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(in_file(e)),
                    };
                    sink(&self.buf[..n])?;
                    left -= n as u64;
                }
                if f.read(&mut self.buf[..1]).map_err(in_file)? != 0 {
                    return Err(changed());
                }
                Ok(())
            }
            Source::Package { offset, size } => {
                let pkg = self.pkg.ok_or_else(|| Error::Corrupt {
                    at: Location::Heap(*offset),
                    reason: "payload refers to a package that is not being rewritten".into(),
                })?;
                let in_pkg = |e: Error| match pkg.path() {
                    Some(p) => e.in_file(p),
                    None => e,
                };
                self.buf.resize(CHUNK_SIZE, 0);
                let end = offset.checked_add(*size).ok_or(Error::OutOfHeap {
                    offset: *offset,
                    len: *size,
                    heap_size: pkg.heap().size(),
                })?;
                let mut pos = *offset;
                while pos < end {
                    // Pieces never cross a chunk boundary of the source heap,
                    // so each source chunk is decompressed once.
                    let room = CHUNK_SIZE as u64 - pos % CHUNK_SIZE as u64;
                    let n = room.min(end - pos) as usize;
                    pkg.heap()
                        .read_at(pos, &mut self.buf[..n], &self.cache)
                        .map_err(in_pkg)?;
                    sink(&self.buf[..n])?;
                    pos += n as u64;
                }
                Ok(())
            }
        }
    }
}

struct Encoder<'a, W: Write> {
    heap: HeapWriter<W>,
    sources: Sources<'a>,
    counts: Counts,
}

impl<W: Write> Encoder<'_, W> {
    /// Store a payload: inline when at most 8 bytes, else on the heap.
    fn place(&mut self, src: &Source) -> Result<Value> {
        let size = src.size();
        if size <= MAX_INLINE_DATA {
            let mut bytes = Vec::with_capacity(size as usize);
            self.sources.stream(src, &mut |b| {
                bytes.extend_from_slice(b);
                Ok(())
            })?;
            return Ok(Value::RawInline(bytes));
        }
        let offset = self.heap.offset();
        let heap = &mut self.heap;
        self.sources
            .stream(src, &mut |b| heap.write(b).map_err(Error::Io))?;
        Ok(Value::RawHeap { size, offset })
    }

    /// The `dir:entry` attributes of `nodes` with their subtrees, payloads
    /// written on the way. Iterative over directories, so a deep tree cannot
    /// exhaust the stack.
    fn entries(&mut self, nodes: &[Node]) -> Result<Vec<Attr>> {
        struct Frame<'n> {
            iter: std::slice::Iter<'n, Node>,
            /// The directory's own attribute, collecting its entries.
            entry: Option<Attr>,
        }
        fn attach(stack: &mut [Frame<'_>], top_level: &mut Vec<Attr>, attr: Attr) {
            match stack.last_mut().and_then(|f| f.entry.as_mut()) {
                Some(parent) => parent.children.push(attr),
                None => top_level.push(attr),
            }
        }
        let mut stack = vec![Frame {
            iter: nodes.iter(),
            entry: None,
        }];
        let mut top_level = Vec::new();
        while let Some(frame) = stack.last_mut() {
            match frame.iter.next() {
                Some(node) => {
                    let attr = self.entry(node)?;
                    if let Kind::Directory(children) = &node.kind {
                        if stack.len() > MAX_DEPTH {
                            return Err(Error::Unpackable {
                                path: String::from_utf8_lossy(&node.name).into_owned().into(),
                                reason: format!("directories nested deeper than {MAX_DEPTH}"),
                            });
                        }
                        stack.push(Frame {
                            iter: children.iter(),
                            entry: Some(attr),
                        });
                    } else {
                        attach(&mut stack, &mut top_level, attr);
                    }
                }
                None => {
                    if let Some(Frame {
                        entry: Some(attr), ..
                    }) = stack.pop()
                    {
                        attach(&mut stack, &mut top_level, attr);
                    }
                }
            }
        }
        Ok(top_level)
    }

    /// The attribute of one entry without its child entries (spec §8.2),
    /// its payloads written to the heap.
    fn entry(&mut self, node: &Node) -> Result<Attr> {
        check_name(&node.name)?;
        self.counts.entries += 1;
        let kind = match node.kind {
            Kind::File(_) => EntryKind::File,
            Kind::Directory(_) => EntryKind::Directory,
            Kind::Symlink(_) => EntryKind::Symlink,
        };
        let mut children = Vec::new();
        if kind != EntryKind::File {
            children.push(Attr::uint(ids::FILE_TYPE, kind as u64));
        }
        if node.mode != kind.default_mode() {
            children.push(Attr::uint(ids::FILE_PERMISSIONS, u64::from(node.mode)));
        }
        children.push(Attr::uint(ids::FILE_ATIME, node.mtime));
        children.push(Attr::uint(ids::FILE_MTIME, node.mtime));
        children.push(Attr::uint(ids::FILE_CRTIME, node.mtime));
        if node.mtime_nanos != 0 {
            children.push(Attr::uint(
                ids::FILE_MTIME_NANOS,
                u64::from(node.mtime_nanos),
            ));
        }
        match &node.kind {
            Kind::File(src) => {
                self.counts.files += 1;
                if src.size() > 0 {
                    let value = self.place(src)?;
                    children.push(Attr::leaf(ids::DATA, value));
                }
            }
            Kind::Symlink(target) => {
                children.push(Attr::string(ids::SYMLINK_PATH, target.as_slice()));
            }
            Kind::Directory(_) => {}
        }
        for a in &node.attrs {
            let value = self.place(&a.data)?;
            children.push(Attr {
                id: ids::FILE_ATTRIBUTE,
                value: Value::Str(a.name.clone()),
                children: vec![
                    Attr::uint(ids::FILE_ATTRIBUTE_TYPE, u64::from(a.type_code)),
                    Attr::leaf(ids::DATA, value),
                ],
            });
        }
        Ok(Attr {
            id: ids::DIR_ENTRY,
            value: Value::Str(node.name.clone()),
            children,
        })
    }
}

/// Entry names: non-empty, not `.` or `..`, no `/` or NUL (spec §8.4).
fn check_name(name: &[u8]) -> Result<()> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return Err(Error::Unpackable {
            path: String::from_utf8_lossy(name).into_owned().into(),
            reason: "not a valid entry name".into(),
        });
    }
    Ok(())
}

/// The header fields of the two sections.
struct SectionFields {
    toc_length: u64,
    toc_strings_length: u64,
    toc_strings_count: u64,
    attributes_length: u64,
    attributes_strings_length: u64,
    attributes_strings_count: u64,
}

/// Encode a package into `file` (empty, positioned at 0): header
/// placeholder, heap, then the real header at offset 0.
pub(crate) fn encode(
    file: &File,
    nodes: &[Node],
    attributes: &section::Encoded,
    pkg: Option<&Package>,
    compression: Compression,
    level: u32,
) -> Result<Written> {
    if attributes.bytes.len() as u64 > MAX_ATTRIBUTES_LENGTH {
        return Err(Error::LimitExceeded {
            what: "package attributes length",
            value: attributes.bytes.len() as u64,
            limit: MAX_ATTRIBUTES_LENGTH,
        });
    }
    let mut out = BufWriter::with_capacity(4 * CHUNK_SIZE, file);
    out.write_all(&[0u8; HPKG_HEADER_SIZE])?;
    let mut enc = Encoder {
        heap: HeapWriter::new(out, compression, level),
        sources: Sources {
            pkg,
            cache: RecentChunks::default(),
            buf: Vec::new(),
        },
        counts: Counts::default(),
    };
    let toc_list = enc.entries(nodes)?;
    let toc = section::encode(&toc_list, "TOC")?;
    drop(toc_list);
    if toc.bytes.len() as u64 > MAX_TOC_LENGTH {
        return Err(Error::LimitExceeded {
            what: "TOC length",
            value: toc.bytes.len() as u64,
            limit: MAX_TOC_LENGTH,
        });
    }
    enc.heap.write(&toc.bytes)?;
    enc.heap.write(&attributes.bytes)?;
    let counts = enc.counts;
    let (mut out, heap) = enc.heap.finish()?;
    out.flush()?;
    drop(out);
    let fields = SectionFields {
        toc_length: toc.bytes.len() as u64,
        toc_strings_length: toc.strings_length,
        toc_strings_count: toc.strings_count,
        attributes_length: attributes.bytes.len() as u64,
        attributes_strings_length: attributes.strings_length,
        attributes_strings_count: attributes.strings_count,
    };
    let file_size = HPKG_HEADER_SIZE as u64 + heap.compressed;
    let header = header(compression, heap, &fields)?;
    std::os::unix::fs::FileExt::write_all_at(file, header.as_bytes(), 0)?;
    Ok(Written {
        heap,
        file_size,
        counts,
    })
}

fn header(compression: Compression, heap: HeapSizes, f: &SectionFields) -> Result<HpkgHeader> {
    let u32_field = |what: &'static str, v: u64| {
        u32::try_from(v).map_err(|_| Error::LimitExceeded {
            what,
            value: v,
            limit: u64::from(u32::MAX),
        })
    };
    Ok(HpkgHeader {
        magic: HPKG_MAGIC,
        header_size: U16::new(HPKG_HEADER_SIZE as u16),
        version: U16::new(FORMAT_VERSION),
        total_size: U64::new(HPKG_HEADER_SIZE as u64 + heap.compressed),
        minor_version: U16::new(ids::READER_MINOR_VERSION),
        heap_compression: U16::new(compression as u16),
        heap_chunk_size: U32::new(CHUNK_SIZE as u32),
        heap_size_compressed: U64::new(heap.compressed),
        heap_size_uncompressed: U64::new(heap.uncompressed),
        attributes_length: U32::new(u32_field("package attributes length", f.attributes_length)?),
        attributes_strings_length: U32::new(u32_field(
            "package attributes strings length",
            f.attributes_strings_length,
        )?),
        attributes_strings_count: U32::new(u32_field(
            "package attributes strings count",
            f.attributes_strings_count,
        )?),
        reserved1: U32::new(0),
        toc_length: U64::new(f.toc_length),
        toc_strings_length: U64::new(f.toc_strings_length),
        toc_strings_count: U64::new(f.toc_strings_count),
    })
}
