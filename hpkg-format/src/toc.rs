//! The TOC as a compact index (`docs/hpkg-format.md` §8): one fixed 48-byte [`Entry`] per node
//! in depth-first order, names and symlink targets as spans into the TOC
//! section buffer, extended attributes in one side table. Parsing allocates
//! nothing per entry: the entry and attribute vectors grow amortised, strings
//! are never copied.
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
//! times are validated and dropped.

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

const FLAG_INLINE: u8 = 1;
const FLAG_MODE_SET: u8 = 2;
/// The only bit of [`EntryAttr::flags`]: the payload is inline.
const ATTR_INLINE: u8 = 1;

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

/// One node of the archive: 48 bytes, plain old data (the kind is stored as
/// its code so that any bytes are a value; `Toc::from_tables` checks it).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct Entry {
    /// Heap offset of the data, section offset of inline data or of the
    /// symlink target.
    data_offset: u64,
    data_size: u64,
    mtime: i64,
    mtime_nanos: u32,
    name_off: u32,
    subtree_end: u32,
    attrs_start: u32,
    name_len: u16,
    attrs_len: u16,
    mode: u16,
    kind: u8,
    flags: u8,
}

const _: () = assert!(std::mem::size_of::<Entry>() == 48);

impl Entry {
    /// Kind of node.
    pub fn kind(&self) -> EntryKind {
        // Every table is checked (parsed, or `Toc::from_tables`): the code
        // is valid, the fallback is never taken.
        EntryKind::from_code(u64::from(self.kind)).unwrap_or(EntryKind::File)
    }

    /// Permission bits (including setuid, setgid, sticky), type default applied.
    pub fn mode(&self) -> u16 {
        self.mode
    }

    /// Modification time: seconds since the epoch and nanoseconds.
    pub fn mtime(&self) -> (i64, u32) {
        (self.mtime, self.mtime_nanos)
    }

    /// Size as `lstat` reports it: data length of a file, target length of a
    /// symlink, 0 for a directory.
    pub fn size(&self) -> u64 {
        match self.kind() {
            EntryKind::Directory => 0,
            _ => self.data_size,
        }
    }

    /// Index one past the last descendant.
    pub fn subtree_end(&self) -> EntryId {
        self.subtree_end
    }
}

/// An extended attribute of an entry (Haiku file attribute): 32 bytes,
/// plain old data.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct EntryAttr {
    data_offset: u64,
    data_size: u64,
    type_code: u32,
    name: Span,
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
    /// The TOC section (names, symlink targets and inline data are spans of it).
    bytes: Vec<u8>,
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

impl Toc {
    /// Parse a TOC section.
    pub fn parse(section: Section) -> Result<Toc> {
        let mut entries: Vec<Entry> = Vec::new();
        let mut attrs: Vec<EntryAttr> = Vec::new();
        let mut stack: Vec<EntryId> = Vec::new();
        {
            let mut r = section.reader();
            loop {
                let Some(a) = r.next_attr()? else {
                    match stack.pop() {
                        Some(e) => finish(&mut entries, e, &section)?,
                        None => break,
                    }
                    continue;
                };
                if a.id == ids::DIR_ENTRY {
                    if let Some(&parent) = stack.last() {
                        if entries[parent as usize].kind() != EntryKind::Directory {
                            return Err(Error::corrupt(
                                section.loc(a.at),
                                "an entry inside a node that is not a directory",
                            ));
                        }
                    }
                    let id = new_entry(&mut entries, &r, &a)?;
                    if a.has_children {
                        if stack.len() >= MAX_DEPTH {
                            return Err(Error::corrupt(
                                section.loc(a.at),
                                format!("directories nested deeper than {MAX_DEPTH}"),
                            ));
                        }
                        stack.push(id);
                    } else {
                        finish(&mut entries, id, &section)?;
                    }
                    continue;
                }
                let Some(&e) = stack.last() else {
                    return Err(Error::corrupt(
                        section.loc(a.at),
                        format!(
                            "attribute {} ({}) at the TOC top level",
                            a.id,
                            ids::name(a.id).unwrap_or("unknown")
                        ),
                    ));
                };
                entry_attribute(&mut entries[e as usize], &mut attrs, &mut r, &a)?;
            }
            r.expect_end()?;
        }
        entries.shrink_to_fit();
        attrs.shrink_to_fit();
        Ok(Toc {
            bytes: section.bytes,
            entries,
            attrs,
        })
    }

    /// A TOC from tables stored by an index image: the section `bytes`, the
    /// entries and the attributes exactly as [`Toc::parse`] made them. They
    /// are checked in one pass for everything the parser guarantees and the
    /// accessors rely on (valid kinds and flags, names and spans inside
    /// `bytes`, heap references inside a heap of `heap_size` bytes, subtrees
    /// properly nested, attribute ranges inside the table), so a damaged or
    /// forged image cannot make an accessor panic.
    pub(crate) fn from_tables(
        bytes: Vec<u8>,
        entries: Vec<Entry>,
        attrs: Vec<EntryAttr>,
        heap_size: u64,
    ) -> Result<Toc, TableError> {
        check_tables(&bytes, &entries, &attrs, heap_size)?;
        Ok(Toc {
            bytes,
            entries,
            attrs,
        })
    }

    /// The TOC section bytes the entries' spans point into.
    pub(crate) fn section_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The attribute table, in entry order.
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
        let e = &self.entries[id as usize];
        Span {
            off: e.name_off,
            len: u32::from(e.name_len),
        }
        .get(&self.bytes)
    }

    /// The target of a symlink (empty for other kinds).
    pub fn symlink_target(&self, id: EntryId) -> &[u8] {
        let e = &self.entries[id as usize];
        if e.kind() != EntryKind::Symlink {
            return &[];
        }
        self.span_at(e.data_offset, e.data_size)
    }

    /// Where a regular file's content lives (empty for other kinds).
    pub fn data(&self, id: EntryId) -> Data<'_> {
        let e = &self.entries[id as usize];
        match e.kind() {
            EntryKind::File if e.flags & FLAG_INLINE != 0 => {
                Data::Inline(self.span_at(e.data_offset, e.data_size))
            }
            EntryKind::File => Data::Heap {
                offset: e.data_offset,
                size: e.data_size,
            },
            _ => Data::Inline(&[]),
        }
    }

    /// The extended attributes of an entry.
    pub fn attrs(&self, id: EntryId) -> &[EntryAttr] {
        let e = &self.entries[id as usize];
        let start = e.attrs_start as usize;
        &self.attrs[start..start + usize::from(e.attrs_len)]
    }

    /// An attribute's name.
    pub fn attr_name(&self, a: &EntryAttr) -> &[u8] {
        a.name.get(&self.bytes)
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

    /// Bytes held by the index (section buffer, entries, attributes).
    pub fn memory_bytes(&self) -> usize {
        self.bytes.capacity()
            + self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.attrs.capacity() * std::mem::size_of::<EntryAttr>()
    }

    fn span_at(&self, off: u64, len: u64) -> &[u8] {
        Span {
            off: off as u32,
            len: len as u32,
        }
        .get(&self.bytes)
    }
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
        self.next = self.toc.entries[id as usize].subtree_end.max(id + 1);
        Some(id)
    }
}

fn new_entry(entries: &mut Vec<Entry>, r: &AttrReader<'_>, a: &Attr) -> Result<EntryId> {
    let sec = r.section();
    let name = r.str_span(a)?;
    let bytes = sec.span(name);
    if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') {
        return Err(Error::corrupt(
            sec.loc(a.at),
            format!("invalid entry name {:?}", String::from_utf8_lossy(bytes)),
        ));
    }
    let name_len = u16::try_from(name.len)
        .map_err(|_| Error::corrupt(sec.loc(a.at), format!("entry name of {} bytes", name.len)))?;
    let id = u32::try_from(entries.len())
        .map_err(|_| Error::corrupt(sec.loc(a.at), "more than 4 billion entries"))?;
    entries.push(Entry {
        data_offset: 0,
        data_size: 0,
        mtime: 0,
        mtime_nanos: 0,
        name_off: name.off,
        subtree_end: id + 1,
        attrs_start: 0,
        name_len,
        attrs_len: 0,
        mode: EntryKind::File.default_mode(),
        kind: EntryKind::File as u8,
        flags: 0,
    });
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

fn entry_attribute(
    e: &mut Entry,
    attrs: &mut Vec<EntryAttr>,
    r: &mut AttrReader<'_>,
    a: &Attr,
) -> Result<()> {
    let sec = r.section();
    let mut children_read = false;
    match a.id {
        ids::FILE_TYPE => {
            let v = r.uint(a)?;
            let kind = EntryKind::from_code(v)
                .ok_or_else(|| Error::corrupt(sec.loc(a.at), format!("unknown file type {v}")))?;
            e.kind = kind as u8;
            if e.flags & FLAG_MODE_SET == 0 {
                e.mode = kind.default_mode();
            }
        }
        ids::FILE_PERMISSIONS => {
            e.mode = (r.uint(a)? & 0o7777) as u16;
            e.flags |= FLAG_MODE_SET;
        }
        ids::FILE_MTIME => e.mtime = i64::try_from(r.uint(a)?).unwrap_or(i64::MAX),
        ids::FILE_MTIME_NANOS => e.mtime_nanos = nanos(r, a)?,
        ids::FILE_ATIME_NANOS | ids::FILE_CRTIME_NANOS => {
            nanos(r, a)?;
        }
        ids::DATA => match a.value {
            Value::RawInline(span) => {
                e.data_offset = u64::from(span.off);
                e.data_size = u64::from(span.len);
                e.flags |= FLAG_INLINE;
            }
            Value::RawHeap { offset, size } => {
                e.data_offset = offset;
                e.data_size = size;
                e.flags &= !FLAG_INLINE;
            }
            _ => return Err(Error::corrupt(sec.loc(a.at), "data is not raw")),
        },
        ids::SYMLINK_PATH => {
            let span = r.str_span(a)?;
            e.data_offset = u64::from(span.off);
            e.data_size = u64::from(span.len);
            e.flags |= FLAG_INLINE;
        }
        ids::FILE_ATTRIBUTE => {
            let mut at = EntryAttr {
                data_offset: 0,
                data_size: 0,
                type_code: 0,
                name: r.str_span(a)?,
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
                            at.data_offset = u64::from(span.off);
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
            if e.attrs_len == 0 {
                e.attrs_start = u32::try_from(attrs.len())
                    .map_err(|_| Error::corrupt(sec.loc(a.at), "more than 4 billion attributes"))?;
            } else if e.attrs_start as usize + usize::from(e.attrs_len) != attrs.len() {
                // Attributes of one entry must be contiguous: an entry's
                // attributes come before its child entries (spec §8.2).
                return Err(Error::corrupt(
                    sec.loc(a.at),
                    "file attribute after the entry's child entries",
                ));
            }
            e.attrs_len = e.attrs_len.checked_add(1).ok_or_else(|| {
                Error::corrupt(sec.loc(a.at), "more than 65535 attributes on one entry")
            })?;
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
    bytes: &[u8],
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
    if bytes.len() as u64 > u64::from(u32::MAX) {
        return Err(fail("entry", 0, "a TOC section beyond 4 GiB"));
    }
    let in_section = |off: u64, len: u64| {
        off.checked_add(len)
            .is_some_and(|end| end <= bytes.len() as u64)
    };
    let in_heap = |off: u64, len: u64| off.checked_add(len).is_some_and(|end| end <= heap_size);
    // Subtree ends of the open directories, innermost last.
    let mut open: Vec<u64> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let i = i as u64;
        let bad = |reason| fail("entry", i, reason);
        let kind = EntryKind::from_code(u64::from(e.kind)).ok_or(bad("unknown kind"))?;
        if e.flags & !(FLAG_INLINE | FLAG_MODE_SET) != 0 {
            return Err(bad("unknown flags"));
        }
        if e.mode > 0o7777 {
            return Err(bad("mode beyond the permission bits"));
        }
        if e.mtime_nanos > 999_999_999 {
            return Err(bad("nanoseconds beyond a second"));
        }
        let name_off = u64::from(e.name_off);
        let name_len = u64::from(e.name_len);
        if !in_section(name_off, name_len) {
            return Err(bad("name outside the TOC section"));
        }
        let name = &bytes[name_off as usize..(name_off + name_len) as usize];
        if name.is_empty()
            || name == b"."
            || name == b".."
            || name.contains(&b'/')
            || name.contains(&0)
        {
            return Err(bad("invalid name"));
        }
        match kind {
            EntryKind::File if e.flags & FLAG_INLINE != 0 => {
                if e.data_size > MAX_INLINE_DATA || !in_section(e.data_offset, e.data_size) {
                    return Err(bad("inline data outside the TOC section"));
                }
            }
            EntryKind::File => {
                if !in_heap(e.data_offset, e.data_size) {
                    return Err(bad("data outside the heap"));
                }
            }
            EntryKind::Symlink => {
                if !in_section(e.data_offset, e.data_size) {
                    return Err(bad("symlink target outside the TOC section"));
                }
            }
            EntryKind::Directory => {}
        }
        let attrs_end = u64::from(e.attrs_start) + u64::from(e.attrs_len);
        if attrs_end > attrs.len() as u64 {
            return Err(bad("attributes outside the attribute table"));
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
    for (i, a) in attrs.iter().enumerate() {
        let bad = |reason| fail("attribute", i as u64, reason);
        if a.flags & !ATTR_INLINE != 0 || a.pad != [0; 3] {
            return Err(bad("unknown flags"));
        }
        if !in_section(u64::from(a.name.off), u64::from(a.name.len)) {
            return Err(bad("name outside the TOC section"));
        }
        let data_ok = if a.inline() {
            in_section(a.data_offset, a.data_size)
        } else {
            in_heap(a.data_offset, a.data_size)
        };
        if !data_ok {
            return Err(bad("data outside the TOC section or the heap"));
        }
    }
    Ok(())
}
