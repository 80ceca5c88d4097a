//! The TOC as a compact index (`docs/hpkg-format.md` §8): one fixed 32-byte [`Entry`] per node
//! in depth-first order, extended attributes in one side table sorted by
//! entry, and one string arena holding only what the accessors return:
//! names, symlink targets, inline data and attribute names. The arena starts
//! with a copy of the TOC's string table, so a name stored there once (the
//! writer puts every string used twice in it) is shared by all the entries
//! that use it; inline strings are appended, each with its NUL. The raw TOC
//! section (tags, LEB128 numbers, times, permissions) is dropped after the
//! parse. Parsing allocates nothing per entry: the tables and the arena grow
//! amortised.
//!
//! A directory's descendants directly follow it; `subtree_end` is the index
//! one past its last descendant, so its children are found by hopping from
//! `id + 1` over each child's subtree.
//!
//! The entry and attribute tables are plain old data (`zerocopy`): an index
//! image (`crate::index_image`) stores them as they are in memory and loads
//! them back with one read each, then `Toc::from_tables` checks every
//! bound the parser guarantees.
//!
//! Times: the index keeps the modification time with nanoseconds, which is
//! what Haiku's packagefs shows for every time of a node; access and creation
//! times are validated and dropped. Seconds and nanoseconds share one 64-bit
//! word (34 bits of signed seconds, 30 of nanoseconds, as ext4's extra time
//! fields), so seconds are clamped to the years 1697 to 2242.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::attr::{Attr, AttrReader, Section, Span, Value, MAX_DEPTH, MAX_INLINE_DATA};
use crate::error::{Error, Result};
use crate::ids;

/// Index of an entry in a [`Toc`].
pub type EntryId = u32;

/// Kind of node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum EntryKind {
    /// Regular file.
    File = 0,
    /// Directory.
    Directory = 1,
    /// Symbolic link.
    Symlink = 2,
}

impl EntryKind {
    fn from_code(code: u64) -> Option<EntryKind> {
        match code {
            0 => Some(EntryKind::File),
            1 => Some(EntryKind::Directory),
            2 => Some(EntryKind::Symlink),
            _ => None,
        }
    }

    /// Permission bits a node of this kind has when none are stored.
    pub fn default_mode(self) -> u16 {
        match self {
            EntryKind::File => 0o644,
            EntryKind::Directory => 0o755,
            EntryKind::Symlink => 0o777,
        }
    }

    /// `file`, `dir` or `symlink`.
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::File => "file",
            EntryKind::Directory => "dir",
            EntryKind::Symlink => "symlink",
        }
    }
}

/// Bits of [`Entry::bits`]: the permission bits, then the kind's code,
/// then two flags.
const MODE_MASK: u16 = 0o7777;
const KIND_SHIFT: u16 = 12;
const KIND_MASK: u16 = 0b11 << KIND_SHIFT;
/// The payload (inline data, symlink target) is in the arena.
const FLAG_INLINE: u16 = 1 << 14;
/// Permissions were stored (a later file type keeps them).
const FLAG_MODE_SET: u16 = 1 << 15;
/// The only bit of [`EntryAttr::flags`]: the payload is inline.
const ATTR_INLINE: u8 = 1;
/// Sizes are kept in 48 bits: a payload of 256 TiB or more is refused.
pub const MAX_PAYLOAD: u64 = (1 << 48) - 1;
/// Bits of nanoseconds in a packed modification time.
const NANOS_BITS: u32 = 30;
/// Earliest and latest seconds a packed modification time holds.
const MTIME_MIN: i64 = -(1 << 33);
const MTIME_MAX: i64 = (1 << 33) - 1;

/// Where payload bytes live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Data<'a> {
    /// Stored inline in the TOC (at most 8 bytes).
    Inline(&'a [u8]),
    /// On the heap.
    Heap {
        /// Offset into the uncompressed heap.
        offset: u64,
        /// Length.
        size: u64,
    },
}

impl Data<'_> {
    /// Payload length.
    pub fn len(&self) -> u64 {
        match self {
            Data::Inline(b) => b.len() as u64,
            Data::Heap { size, .. } => *size,
        }
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One node of the archive: 32 bytes, plain old data (any bytes are a
/// value; `Toc::from_tables` checks that they are one the parser makes).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct Entry {
    /// Heap offset of the data, or arena offset of inline data or of the
    /// symlink target.
    data_offset: u64,
    /// Low 32 bits of the payload size.
    size_lo: u32,
    /// High 16 bits of the payload size.
    size_hi: u16,
    /// Permission bits, kind code and flags.
    bits: u16,
    /// Seconds (high 34 bits, signed) and nanoseconds (low 30 bits).
    mtime: u64,
    /// Arena offset of the NUL-terminated name.
    name_off: u32,
    subtree_end: u32,
}

const _: () = assert!(std::mem::size_of::<Entry>() == 32);

impl Entry {
    /// Kind of node.
    pub fn kind(&self) -> EntryKind {
        // Every table is checked (parsed, or `Toc::from_tables`): the code
        // is valid, the fallback is never taken.
        EntryKind::from_code(u64::from((self.bits & KIND_MASK) >> KIND_SHIFT))
            .unwrap_or(EntryKind::File)
    }

    /// Permission bits (including setuid, setgid, sticky), type default applied.
    pub fn mode(&self) -> u16 {
        self.bits & MODE_MASK
    }

    /// Modification time: seconds since the epoch and nanoseconds.
    pub fn mtime(&self) -> (i64, u32) {
        (
            (self.mtime as i64) >> NANOS_BITS,
            (self.mtime & ((1 << NANOS_BITS) - 1)) as u32,
        )
    }

    /// Size as `lstat` reports it: data length of a file, target length of a
    /// symlink, 0 for a directory.
    pub fn size(&self) -> u64 {
        match self.kind() {
            EntryKind::Directory => 0,
            _ => self.payload_size(),
        }
    }

    /// Index one past the last descendant.
    pub fn subtree_end(&self) -> EntryId {
        self.subtree_end
    }

    fn payload_size(&self) -> u64 {
        u64::from(self.size_lo) | u64::from(self.size_hi) << 32
    }

    fn inline(&self) -> bool {
        self.bits & FLAG_INLINE != 0
    }

    fn set_kind(&mut self, kind: EntryKind) {
        self.bits = (self.bits & !KIND_MASK) | (kind as u16) << KIND_SHIFT;
    }

    fn set_mode(&mut self, mode: u16) {
        self.bits = (self.bits & !MODE_MASK) | (mode & MODE_MASK);
    }

    /// Set the payload; `size` is at most [`MAX_PAYLOAD`] (checked by the caller).
    fn set_payload(&mut self, offset: u64, size: u64, inline: bool) {
        self.data_offset = offset;
        self.size_lo = size as u32;
        self.size_hi = (size >> 32) as u16;
        if inline {
            self.bits |= FLAG_INLINE;
        } else {
            self.bits &= !FLAG_INLINE;
        }
    }

    fn set_mtime(&mut self, secs: i64, nanos: u32) {
        let secs = secs.clamp(MTIME_MIN, MTIME_MAX);
        self.mtime = ((secs as u64) << NANOS_BITS) | u64::from(nanos);
    }
}

/// An extended attribute of an entry (Haiku file attribute): 32 bytes,
/// plain old data. The table is sorted by entry; one entry's attributes
/// keep the package's order.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct EntryAttr {
    data_offset: u64,
    data_size: u64,
    /// The entry it belongs to.
    entry: u32,
    type_code: u32,
    /// Arena offset of the NUL-terminated name.
    name_off: u32,
    flags: u8,
    pad: [u8; 3],
}

const _: () = assert!(std::mem::size_of::<EntryAttr>() == 32);

impl EntryAttr {
    /// Haiku type code (e.g. `MIMS`).
    pub fn type_code(&self) -> u32 {
        self.type_code
    }

    /// Payload length.
    pub fn size(&self) -> u64 {
        self.data_size
    }

    fn inline(&self) -> bool {
        self.flags & ATTR_INLINE != 0
    }
}

/// The parsed TOC of one package.
#[derive(Debug)]
pub struct Toc {
    /// Names, symlink targets, inline data and attribute names.
    arena: Vec<u8>,
    entries: Vec<Entry>,
    attrs: Vec<EntryAttr>,
}

/// Why entry and attribute tables loaded from an index image were refused
/// by `Toc::from_tables`: what the parser would never have produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{table} {index}: {reason}")]
pub struct TableError {
    /// `entry` or `attribute`.
    pub table: &'static str,
    /// Its index in its table.
    pub index: u64,
    /// What is wrong.
    pub reason: &'static str,
}

/// An entry being parsed: its id, and the index of the last attribute it
/// was given (its attributes must be contiguous in the package).
struct Open {
    id: EntryId,
    last_attr: Option<usize>,
}

impl Toc {
    /// Parse a TOC section.
    pub fn parse(section: Section) -> Result<Toc> {
        let mut entries: Vec<Entry> = Vec::new();
        let mut attrs: Vec<EntryAttr> = Vec::new();
        let mut stack: Vec<Open> = Vec::new();
        let mut arena = Arena::new(&section);
        {
            let mut r = section.reader();
            loop {
                let Some(a) = r.next_attr()? else {
                    match stack.pop() {
                        Some(e) => finish(&mut entries, e.id, &section)?,
                        None => break,
                    }
                    continue;
                };
                if a.id == ids::DIR_ENTRY {
                    if let Some(parent) = stack.last() {
                        if entries[parent.id as usize].kind() != EntryKind::Directory {
                            return Err(Error::corrupt(
                                section.loc(a.at),
                                "an entry inside a node that is not a directory",
                            ));
                        }
                    }
                    let id = new_entry(&mut entries, &mut arena, &r, &a)?;
                    if a.has_children {
                        if stack.len() >= MAX_DEPTH {
                            return Err(Error::corrupt(
                                section.loc(a.at),
                                format!("directories nested deeper than {MAX_DEPTH}"),
                            ));
                        }
                        stack.push(Open {
                            id,
                            last_attr: None,
                        });
                    } else {
                        finish(&mut entries, id, &section)?;
                    }
                    continue;
                }
                let Some(open) = stack.last_mut() else {
                    return Err(Error::corrupt(
                        section.loc(a.at),
                        format!(
                            "attribute {} ({}) at the TOC top level",
                            a.id,
                            ids::name(a.id).unwrap_or("unknown")
                        ),
                    ));
                };
                entry_attribute(&mut entries, open, &mut attrs, &mut arena, &mut r, &a)?;
            }
            r.expect_end()?;
        }
        // A directory's attributes may follow its children's: order the
        // table by entry, keeping each entry's own order.
        attrs.sort_by_key(|a| a.entry);
        entries.shrink_to_fit();
        attrs.shrink_to_fit();
        Ok(Toc {
            arena: arena.finish(),
            entries,
            attrs,
        })
    }

    /// A TOC from tables stored by an index image: the `arena`, the entries
    /// and the attributes exactly as [`Toc::parse`] made them. They are
    /// checked in one pass for everything the parser guarantees and the
    /// accessors rely on (valid kinds and flags, names and spans inside the
    /// arena, heap references inside a heap of `heap_size` bytes, subtrees
    /// properly nested, attributes sorted by existing entries), so a damaged
    /// or forged image cannot make an accessor panic.
    pub(crate) fn from_tables(
        arena: Vec<u8>,
        entries: Vec<Entry>,
        attrs: Vec<EntryAttr>,
        heap_size: u64,
    ) -> Result<Toc, TableError> {
        check_tables(&arena, &entries, &attrs, heap_size)?;
        Ok(Toc {
            arena,
            entries,
            attrs,
        })
    }

    /// The string arena the entries' names and payloads point into.
    pub(crate) fn arena(&self) -> &[u8] {
        &self.arena
    }

    /// The attribute table, sorted by entry.
    pub(crate) fn all_attrs(&self) -> &[EntryAttr] {
        &self.attrs
    }

    /// All entries in depth-first order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// One entry.
    pub fn entry(&self, id: EntryId) -> &Entry {
        &self.entries[id as usize]
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the archive is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry's name.
    pub fn name(&self, id: EntryId) -> &[u8] {
        cstr_at(&self.arena, self.entries[id as usize].name_off)
    }

    /// The target of a symlink (empty for other kinds).
    pub fn symlink_target(&self, id: EntryId) -> &[u8] {
        let e = &self.entries[id as usize];
        if e.kind() != EntryKind::Symlink {
            return &[];
        }
        self.span_at(e.data_offset, e.payload_size())
    }

    /// Where a regular file's content lives (empty for other kinds).
    pub fn data(&self, id: EntryId) -> Data<'_> {
        let e = &self.entries[id as usize];
        match e.kind() {
            EntryKind::File if e.inline() => {
                Data::Inline(self.span_at(e.data_offset, e.payload_size()))
            }
            EntryKind::File => Data::Heap {
                offset: e.data_offset,
                size: e.payload_size(),
            },
            _ => Data::Inline(&[]),
        }
    }

    /// The extended attributes of an entry.
    pub fn attrs(&self, id: EntryId) -> &[EntryAttr] {
        let start = self.attrs.partition_point(|a| a.entry < id);
        let len = self.attrs[start..].partition_point(|a| a.entry == id);
        &self.attrs[start..start + len]
    }

    /// An attribute's name.
    pub fn attr_name(&self, a: &EntryAttr) -> &[u8] {
        cstr_at(&self.arena, a.name_off)
    }

    /// Where an attribute's payload lives.
    pub fn attr_data(&self, a: &EntryAttr) -> Data<'_> {
        if a.inline() {
            Data::Inline(self.span_at(a.data_offset, a.data_size))
        } else {
            Data::Heap {
                offset: a.data_offset,
                size: a.data_size,
            }
        }
    }

    /// The children of a directory (`None`: the top level).
    pub fn children(&self, dir: Option<EntryId>) -> Children<'_> {
        let (next, end) = match dir {
            None => (0, self.entries.len() as u32),
            Some(d) => (d + 1, self.entries[d as usize].subtree_end),
        };
        Children {
            toc: self,
            next,
            end,
        }
    }

    /// Find a child by name (linear; callers that look up often build their own index).
    pub fn lookup(&self, dir: Option<EntryId>, name: &[u8]) -> Option<EntryId> {
        self.children(dir).find(|&c| self.name(c) == name)
    }

    /// Visit every entry depth-first with its `/`-separated path.
    pub fn walk(&self, mut visit: impl FnMut(&[u8], EntryId)) {
        let mut path: Vec<u8> = Vec::new();
        // (subtree end, path length to restore) of each open directory.
        let mut open: Vec<(u32, usize)> = Vec::new();
        for id in 0..self.entries.len() as u32 {
            while open.last().is_some_and(|&(end, _)| id >= end) {
                if let Some((_, len)) = open.pop() {
                    path.truncate(len);
                }
            }
            let before = path.len();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(self.name(id));
            visit(&path, id);
            let e = &self.entries[id as usize];
            if e.subtree_end > id + 1 {
                open.push((e.subtree_end, before));
            } else {
                path.truncate(before);
            }
        }
    }

    /// Bytes held by the index (arena, entries, attributes).
    pub fn memory_bytes(&self) -> usize {
        self.arena.capacity()
            + self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.attrs.capacity() * std::mem::size_of::<EntryAttr>()
    }

    /// Bytes of the string arena (names, symlink targets, inline data).
    pub fn string_bytes(&self) -> usize {
        self.arena.len()
    }

    fn span_at(&self, off: u64, len: u64) -> &[u8] {
        usize::try_from(off)
            .ok()
            .zip(usize::try_from(len).ok())
            .and_then(|(off, len)| self.arena.get(off..off.checked_add(len)?))
            .unwrap_or(&[])
    }
}

/// The NUL-terminated string at `off` of `arena` (empty when out of range;
/// the tables are checked, so it never is).
fn cstr_at(arena: &[u8], off: u32) -> &[u8] {
    let rest = arena.get(off as usize..).unwrap_or(&[]);
    match memchr(rest) {
        Some(end) => &rest[..end],
        None => &[],
    }
}

/// Index of the first NUL of `bytes`.
fn memchr(bytes: &[u8]) -> Option<usize> {
    memchr::memchr(0, bytes)
}

/// Iterator over the children of a directory.
#[derive(Debug, Clone)]
pub struct Children<'a> {
    toc: &'a Toc,
    next: u32,
    end: u32,
}

impl Iterator for Children<'_> {
    type Item = EntryId;
    fn next(&mut self) -> Option<EntryId> {
        if self.next >= self.end {
            return None;
        }
        let id = self.next;
        self.next = self
            .toc
            .entries
            .get(id as usize)
            .map_or(self.end, |e| e.subtree_end.max(id + 1));
        Some(id)
    }
}

/// The string arena being filled by a parse: a copy of the TOC's string
/// table (its strings keep their section offsets), then the inline strings
/// and payloads of the attribute list as they are met. Every string keeps
/// its NUL, so it is never longer than the section it was copied from.
struct Arena {
    bytes: Vec<u8>,
    table_end: usize,
}

impl Arena {
    fn new(section: &Section) -> Arena {
        let table_end = section.strings_length();
        let mut bytes = Vec::with_capacity(table_end + section.bytes.len() / 8);
        bytes.extend_from_slice(&section.bytes[..table_end]);
        Arena { bytes, table_end }
    }

    /// The arena offset of the string `span` of `sec` (a string-table
    /// string is already there; an inline one is appended with its NUL).
    fn string(&mut self, sec: &Section, span: Span) -> u32 {
        if (span.off as usize) < self.table_end {
            return span.off;
        }
        let off = self.bytes.len() as u32;
        self.bytes.extend_from_slice(sec.span(span));
        self.bytes.push(0);
        off
    }

    /// The arena offset of inline raw bytes `span` of `sec`.
    fn raw(&mut self, sec: &Section, span: Span) -> u32 {
        let off = self.bytes.len() as u32;
        self.bytes.extend_from_slice(sec.span(span));
        off
    }

    fn finish(mut self) -> Vec<u8> {
        self.bytes.shrink_to_fit();
        self.bytes
    }
}

fn new_entry(
    entries: &mut Vec<Entry>,
    arena: &mut Arena,
    r: &AttrReader<'_>,
    a: &Attr,
) -> Result<EntryId> {
    let sec = r.section();
    let name = r.str_span(a)?;
    let bytes = sec.span(name);
    if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') {
        return Err(Error::corrupt(
            sec.loc(a.at),
            format!("invalid entry name {:?}", String::from_utf8_lossy(bytes)),
        ));
    }
    let id = u32::try_from(entries.len())
        .map_err(|_| Error::corrupt(sec.loc(a.at), "more than 4 billion entries"))?;
    let mut entry = Entry {
        data_offset: 0,
        size_lo: 0,
        size_hi: 0,
        bits: 0,
        mtime: 0,
        name_off: arena.string(sec, name),
        subtree_end: id + 1,
    };
    entry.set_kind(EntryKind::File);
    entry.set_mode(EntryKind::File.default_mode());
    entries.push(entry);
    Ok(id)
}

fn finish(entries: &mut [Entry], id: EntryId, section: &Section) -> Result<()> {
    let end = entries.len() as u32;
    let e = &mut entries[id as usize];
    if end > id + 1 && e.kind() != EntryKind::Directory {
        return Err(Error::corrupt(
            section.loc(u64::from(e.name_off)),
            "a node that is not a directory has entries",
        ));
    }
    e.subtree_end = end;
    Ok(())
}

fn nanos(r: &AttrReader<'_>, a: &Attr) -> Result<u32> {
    let v = r.uint(a)?;
    if v > 999_999_999 {
        return Err(Error::corrupt(
            r.section().loc(a.at),
            format!("nanoseconds value {v}"),
        ));
    }
    Ok(v as u32)
}

/// `size` if a payload of that size can be kept.
fn payload_size(sec: &Section, a: &Attr, size: u64) -> Result<u64> {
    if size > MAX_PAYLOAD {
        return Err(Error::corrupt(
            sec.loc(a.at),
            format!("payload of {size} bytes (at most {MAX_PAYLOAD} are supported)"),
        ));
    }
    Ok(size)
}

fn entry_attribute(
    entries: &mut [Entry],
    open: &mut Open,
    attrs: &mut Vec<EntryAttr>,
    arena: &mut Arena,
    r: &mut AttrReader<'_>,
    a: &Attr,
) -> Result<()> {
    let sec = r.section();
    let e = &mut entries[open.id as usize];
    let mut children_read = false;
    match a.id {
        ids::FILE_TYPE => {
            let v = r.uint(a)?;
            let kind = EntryKind::from_code(v)
                .ok_or_else(|| Error::corrupt(sec.loc(a.at), format!("unknown file type {v}")))?;
            e.set_kind(kind);
            if e.bits & FLAG_MODE_SET == 0 {
                e.set_mode(kind.default_mode());
            }
        }
        ids::FILE_PERMISSIONS => {
            e.set_mode((r.uint(a)? & 0o7777) as u16);
            e.bits |= FLAG_MODE_SET;
        }
        ids::FILE_MTIME => {
            let secs = i64::try_from(r.uint(a)?).unwrap_or(i64::MAX);
            e.set_mtime(secs, e.mtime().1);
        }
        ids::FILE_MTIME_NANOS => {
            let nanos = nanos(r, a)?;
            e.set_mtime(e.mtime().0, nanos);
        }
        ids::FILE_ATIME_NANOS | ids::FILE_CRTIME_NANOS => {
            nanos(r, a)?;
        }
        ids::DATA => match a.value {
            Value::RawInline(span) => {
                let off = arena.raw(sec, span);
                e.set_payload(u64::from(off), u64::from(span.len), true);
            }
            Value::RawHeap { offset, size } => {
                e.set_payload(offset, payload_size(sec, a, size)?, false);
            }
            _ => return Err(Error::corrupt(sec.loc(a.at), "data is not raw")),
        },
        ids::SYMLINK_PATH => {
            let span = r.str_span(a)?;
            let off = arena.string(sec, span);
            e.set_payload(u64::from(off), u64::from(span.len), true);
        }
        ids::FILE_ATTRIBUTE => {
            let name = r.str_span(a)?;
            let mut at = EntryAttr {
                data_offset: 0,
                data_size: 0,
                entry: open.id,
                type_code: 0,
                name_off: arena.string(sec, name),
                flags: ATTR_INLINE,
                pad: [0; 3],
            };
            if a.has_children {
                while let Some(c) = r.next_attr()? {
                    match (c.id, c.value) {
                        (ids::FILE_ATTRIBUTE_TYPE, _) => {
                            let v = r.uint(&c)?;
                            at.type_code = u32::try_from(v).map_err(|_| {
                                Error::corrupt(
                                    sec.loc(c.at),
                                    format!("attribute type {v:#x} exceeds 32 bits"),
                                )
                            })?;
                        }
                        (ids::DATA, Value::RawInline(span)) => {
                            at.data_offset = u64::from(arena.raw(sec, span));
                            at.data_size = u64::from(span.len);
                            at.flags = ATTR_INLINE;
                        }
                        (ids::DATA, Value::RawHeap { offset, size }) => {
                            at.data_offset = offset;
                            at.data_size = size;
                            at.flags = 0;
                        }
                        _ => {}
                    }
                    if c.has_children {
                        r.skip_children()?;
                    }
                }
                children_read = true;
            }
            // Attributes of one entry must be contiguous: an entry's
            // attributes come before its child entries (spec §8.2).
            if open.last_attr.is_some_and(|last| last + 1 != attrs.len()) {
                return Err(Error::corrupt(
                    sec.loc(a.at),
                    "file attribute after the entry's child entries",
                ));
            }
            if attrs.len() >= u32::MAX as usize {
                return Err(Error::corrupt(
                    sec.loc(a.at),
                    "more than 4 billion attributes",
                ));
            }
            open.last_attr = Some(attrs.len());
            attrs.push(at);
        }
        // Owner, group, atime, crtime: parsed and ignored, as Haiku does;
        // other known ids inside an entry are ignored with their subtree.
        _ => {}
    }
    if a.has_children && !children_read {
        r.skip_children()?;
    }
    Ok(())
}

/// The checks of `Toc::from_tables`.
fn check_tables(
    arena: &[u8],
    entries: &[Entry],
    attrs: &[EntryAttr],
    heap_size: u64,
) -> Result<(), TableError> {
    let n = entries.len() as u64;
    let fail = |table, index: u64, reason| TableError {
        table,
        index,
        reason,
    };
    if n > u64::from(u32::MAX) || attrs.len() as u64 > u64::from(u32::MAX) {
        return Err(fail(
            "entry",
            n,
            "more than 4 billion entries or attributes",
        ));
    }
    if arena.len() as u64 > u64::from(u32::MAX) {
        return Err(fail("entry", 0, "a string arena beyond 4 GiB"));
    }
    let in_arena = |off: u64, len: u64| {
        off.checked_add(len)
            .is_some_and(|end| end <= arena.len() as u64)
    };
    let in_heap = |off: u64, len: u64| off.checked_add(len).is_some_and(|end| end <= heap_size);
    // A NUL-terminated string inside the arena.
    let string_at = |off: u32| {
        arena
            .get(off as usize..)
            .and_then(|rest| memchr(rest).map(|end| &rest[..end]))
    };
    // Subtree ends of the open directories, innermost last.
    let mut open: Vec<u64> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let i = i as u64;
        let bad = |reason| fail("entry", i, reason);
        let code = u64::from((e.bits & KIND_MASK) >> KIND_SHIFT);
        let kind = EntryKind::from_code(code).ok_or(bad("unknown kind"))?;
        if e.mtime().1 > 999_999_999 {
            return Err(bad("nanoseconds beyond a second"));
        }
        // One scan for the end of the name and a slash in it.
        let rest = arena.get(e.name_off as usize..).unwrap_or(&[]);
        let name = match memchr::memchr2(0, b'/', rest) {
            Some(end) if rest[end] == 0 => &rest[..end],
            Some(_) => return Err(bad("invalid name")),
            None => return Err(bad("name outside the string arena")),
        };
        if name.is_empty() || name == b"." || name == b".." {
            return Err(bad("invalid name"));
        }
        let size = e.payload_size();
        match kind {
            EntryKind::File if e.inline() => {
                if size > MAX_INLINE_DATA || !in_arena(e.data_offset, size) {
                    return Err(bad("inline data outside the string arena"));
                }
            }
            EntryKind::File => {
                if !in_heap(e.data_offset, size) {
                    return Err(bad("data outside the heap"));
                }
            }
            EntryKind::Symlink => {
                if !in_arena(e.data_offset, size) {
                    return Err(bad("symlink target outside the string arena"));
                }
            }
            EntryKind::Directory => {}
        }
        while open.last().is_some_and(|&end| end <= i) {
            open.pop();
        }
        let end = u64::from(e.subtree_end);
        let bound = open.last().copied().unwrap_or(n);
        if end <= i || end > bound {
            return Err(bad("subtree end outside its parent"));
        }
        if end > i + 1 {
            if kind != EntryKind::Directory {
                return Err(bad("a node that is not a directory has entries"));
            }
            if open.len() >= MAX_DEPTH {
                return Err(bad("directories nested too deep"));
            }
            open.push(end);
        }
    }
    let mut previous = 0;
    for (i, a) in attrs.iter().enumerate() {
        let bad = |reason| fail("attribute", i as u64, reason);
        if a.flags & !ATTR_INLINE != 0 || a.pad != [0; 3] {
            return Err(bad("unknown flags"));
        }
        if u64::from(a.entry) >= n || a.entry < previous {
            return Err(bad("not sorted by existing entries"));
        }
        previous = a.entry;
        if string_at(a.name_off).is_none() {
            return Err(bad("name outside the string arena"));
        }
        let data_ok = if a.inline() {
            a.data_size <= MAX_INLINE_DATA && in_arena(a.data_offset, a.data_size)
        } else {
            in_heap(a.data_offset, a.data_size)
        };
        if !data_ok {
            return Err(bad("data outside the string arena or the heap"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The packed fields of [`Entry`], which no package of a test suite
    //! reaches the limits of (payloads of 4 GiB and more, times before
    //! 1970).

    use super::*;

    fn blank() -> Entry {
        Entry {
            data_offset: 0,
            size_lo: 0,
            size_hi: 0,
            bits: 0,
            mtime: 0,
            name_off: 0,
            subtree_end: 1,
        }
    }

    #[test]
    fn payload_sizes_keep_48_bits() {
        let mut e = blank();
        for size in [0, 1, u64::from(u32::MAX), 5 << 30, MAX_PAYLOAD] {
            e.set_payload(7 << 40, size, false);
            assert_eq!(e.payload_size(), size);
            assert_eq!(e.data_offset, 7 << 40);
            assert!(!e.inline());
            e.set_payload(3, size, true);
            assert!(e.inline());
        }
        e.set_kind(EntryKind::File);
        assert_eq!(e.size(), MAX_PAYLOAD);
        e.set_kind(EntryKind::Directory);
        assert_eq!(e.size(), 0);
    }

    #[test]
    fn times_before_1970_and_the_limits_round_trip() {
        let mut e = blank();
        for (secs, nanos) in [
            (-1, 999_999_999),
            (-86_400, 1),
            (MTIME_MIN, 0),
            (MTIME_MAX, 999_999_999),
        ] {
            e.set_mtime(secs, nanos);
            assert_eq!(e.mtime(), (secs, nanos));
        }
        e.set_mtime(i64::MIN, 3);
        assert_eq!(e.mtime(), (MTIME_MIN, 3));
        e.set_mtime(i64::MAX, 4);
        assert_eq!(e.mtime(), (MTIME_MAX, 4));
    }

    #[test]
    fn kind_mode_and_flags_share_a_word_without_touching_each_other() {
        let mut e = blank();
        e.set_mode(0o7777);
        e.bits |= FLAG_MODE_SET;
        e.set_payload(0, 1, true);
        for kind in [EntryKind::Symlink, EntryKind::Directory, EntryKind::File] {
            e.set_kind(kind);
            assert_eq!((e.kind(), e.mode(), e.inline()), (kind, 0o7777, true));
            assert_ne!(e.bits & FLAG_MODE_SET, 0);
        }
        e.set_mode(0o1750);
        assert_eq!(
            (e.kind(), e.mode(), e.inline()),
            (EntryKind::File, 0o1750, true)
        );
        // Only the permission bits of a mode are kept.
        e.set_mode(0o170_644);
        assert_eq!(e.mode(), 0o644);
        assert_eq!(e.kind(), EntryKind::File);
    }
}
