//! The attribute stream shared by the TOC, the package-attributes section and the
//! HPKR packages section (`docs/hpkg-format.md` §5.2, §6): string tables,
//! LEB128, tags and values, read and written with the same definitions.

use crate::error::{Error, Location, Result};
use crate::ids::{self, AttrType};

/// Largest tag value with a meaning (spec §6.1).
pub const MAX_TAG: u64 = 8192;
/// Longest LEB128 encoding accepted (a `u64` needs at most 10 bytes).
pub const MAX_LEB128_BYTES: usize = 10;
/// Deepest nesting of attribute lists accepted (directory depth in a TOC is
/// bounded by it too). Linux paths are at most 4096 bytes, so no real tree
/// nests deeper than 2048 directories; 4096 leaves room and bounds the stack.
pub const MAX_DEPTH: usize = 4096;
/// Longest inline RAW payload (spec §6.2).
pub const MAX_INLINE_DATA: u64 = 8;

/// A byte range inside a section buffer.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    zerocopy::FromBytes,
    zerocopy::IntoBytes,
    zerocopy::KnownLayout,
    zerocopy::Immutable,
)]
#[repr(C)]
pub struct Span {
    /// Offset from the start of the section.
    pub off: u32,
    /// Length in bytes.
    pub len: u32,
}

impl Span {
    /// The bytes of this span in `buf`.
    ///
    /// Spans are only made by the parser over the same buffer, so they are in
    /// bounds; an out-of-range span yields an empty slice rather than a panic.
    pub fn get<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        let start = self.off as usize;
        buf.get(start..start + self.len as usize).unwrap_or(&[])
    }
}

/// A decoded attribute value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// Signed integer (sign-extended from its stored width).
    Int(i64),
    /// Unsigned integer.
    UInt(u64),
    /// String bytes inside the section (inline or from the string table).
    Str(Span),
    /// Raw bytes stored inline in the section.
    RawInline(Span),
    /// Raw bytes on the heap.
    RawHeap {
        /// Offset into the uncompressed heap.
        offset: u64,
        /// Length in bytes.
        size: u64,
    },
}

/// One attribute as read from a stream.
#[derive(Debug, Clone, Copy)]
pub struct Attr {
    /// The attribute id (0–127).
    pub id: u8,
    /// Its value.
    pub value: Value,
    /// Whether a child list follows the value.
    pub has_children: bool,
    /// Section offset of its tag.
    pub at: u64,
}

/// Which section is being read, for error locations and the rules that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    /// The TOC.
    Toc,
    /// The package-attributes section of an HPKG, or the packages section of an HPKR.
    Attributes,
}

impl SectionKind {
    fn loc(self, off: u64) -> Location {
        match self {
            SectionKind::Toc => Location::Toc(off),
            SectionKind::Attributes => Location::Attributes(off),
        }
    }
}

/// A section buffer with its parsed string table.
#[derive(Debug)]
pub struct Section {
    /// The whole section: string subsection then attribute list.
    pub bytes: Vec<u8>,
    /// String table: spans into `bytes`.
    strings: Vec<Span>,
    /// Offset of the attribute list.
    list_start: usize,
    /// Which section this is.
    pub kind: SectionKind,
    /// Uncompressed heap size, bound for heap references.
    heap_size: u64,
    /// Minor version of the file (unknown ids are tolerated when > ours).
    minor: u16,
}

impl Section {
    /// Parse the string subsection of `bytes` (spec §5.2).
    pub fn new(
        bytes: Vec<u8>,
        kind: SectionKind,
        strings_length: u64,
        strings_count: u64,
        heap_size: u64,
        minor: u16,
    ) -> Result<Section> {
        let loc = |o| kind.loc(o);
        if strings_length > bytes.len() as u64 {
            return Err(Error::corrupt(
                loc(0),
                format!(
                    "string subsection of {strings_length} bytes is longer than the section ({} bytes)",
                    bytes.len()
                ),
            ));
        }
        if (strings_length <= 1) != (strings_count == 0) {
            return Err(Error::corrupt(
                loc(0),
                format!("string subsection length {strings_length} disagrees with count {strings_count}"),
            ));
        }
        // A string needs at least two bytes (one char and its NUL), so the count
        // is bounded by the length; this bounds the allocation below.
        if strings_count > strings_length / 2 {
            return Err(Error::corrupt(
                loc(0),
                format!("{strings_count} strings cannot fit in {strings_length} bytes"),
            ));
        }
        let table = &bytes[..strings_length as usize];
        let mut strings = Vec::with_capacity(strings_count as usize);
        if strings_count > 0 {
            let mut pos = 0usize;
            loop {
                let rest = &table[pos..];
                let nul = rest.iter().position(|&b| b == 0).ok_or_else(|| {
                    Error::corrupt(loc(pos as u64), "unterminated string in string table")
                })?;
                if nul == 0 {
                    // The empty string ends the table; it must be its last byte.
                    if pos + 1 != table.len() {
                        return Err(Error::corrupt(
                            loc(pos as u64),
                            format!(
                                "{} excess bytes after the string table's terminator",
                                table.len() - pos - 1
                            ),
                        ));
                    }
                    break;
                }
                if strings.len() as u64 == strings_count {
                    return Err(Error::corrupt(
                        loc(pos as u64),
                        format!(
                            "string table holds more than the {strings_count} strings declared"
                        ),
                    ));
                }
                strings.push(Span {
                    off: pos as u32,
                    len: nul as u32,
                });
                pos += nul + 1;
            }
            if strings.len() as u64 != strings_count {
                return Err(Error::corrupt(
                    loc(0),
                    format!(
                        "string table holds {} strings, header says {strings_count}",
                        strings.len()
                    ),
                ));
            }
        }
        Ok(Section {
            bytes,
            strings,
            list_start: strings_length as usize,
            kind,
            heap_size,
            minor,
        })
    }

    /// A reader positioned at the start of the attribute list.
    pub fn reader(&self) -> AttrReader<'_> {
        AttrReader {
            sec: self,
            pos: self.list_start,
        }
    }

    /// The bytes of a span of this section.
    pub fn span(&self, span: Span) -> &[u8] {
        span.get(&self.bytes)
    }

    /// The string of a span, with invalid UTF-8 replaced (the format does not
    /// promise UTF-8).
    pub fn string(&self, span: Span) -> String {
        String::from_utf8_lossy(self.span(span)).into_owned()
    }

    /// The location of a section offset, for errors.
    pub fn loc(&self, off: u64) -> Location {
        self.kind.loc(off)
    }

    /// Minor format version of the file this section came from.
    pub fn minor(&self) -> u16 {
        self.minor
    }

    /// Length of the string subsection at the start of [`Section::bytes`]
    /// (the string table; the attribute list follows it).
    pub fn strings_length(&self) -> usize {
        self.list_start
    }

    /// Number of strings in the table.
    pub fn string_count(&self) -> usize {
        self.strings.len()
    }
}

/// Reads attributes one at a time from a [`Section`].
#[derive(Debug)]
pub struct AttrReader<'a> {
    sec: &'a Section,
    pos: usize,
}

impl<'a> AttrReader<'a> {
    /// Current offset in the section.
    pub fn pos(&self) -> u64 {
        self.pos as u64
    }

    /// The section being read.
    pub fn section(&self) -> &'a Section {
        self.sec
    }

    fn truncated(&self, what: &'static str, needed: u64) -> Error {
        Error::Truncated {
            what,
            at: self.sec.loc(self.pos as u64),
            needed,
            available: (self.sec.bytes.len() - self.pos) as u64,
        }
    }

    fn uleb(&mut self, what: &'static str) -> Result<u64> {
        let start = self.pos;
        let (value, len) = read_uleb128(&self.sec.bytes[self.pos..]).map_err(|e| match e {
            LebError::Truncated => self.truncated(what, 1),
            LebError::TooLong => Error::corrupt(
                self.sec.loc(start as u64),
                format!("{what}: LEB128 overflows 64 bits"),
            ),
        })?;
        self.pos += len;
        Ok(value)
    }

    fn fixed(&mut self, width: usize, what: &'static str) -> Result<u64> {
        let bytes = self
            .sec
            .bytes
            .get(self.pos..self.pos + width)
            .ok_or_else(|| self.truncated(what, width as u64))?;
        self.pos += width;
        Ok(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    /// Read the next attribute; `None` at the tag 0 that ends the current list.
    pub fn next_attr(&mut self) -> Result<Option<Attr>> {
        let at = self.pos as u64;
        let tag = self.uleb("attribute tag")?;
        if tag == 0 {
            return Ok(None);
        }
        if tag > MAX_TAG {
            return Err(Error::corrupt(
                self.sec.loc(at),
                format!("attribute tag {tag} is out of range"),
            ));
        }
        let t = tag - 1;
        let id = (t & 0x7f) as u8;
        let type_code = ((t >> 7) & 0x7) as u8;
        let has_children = (t >> 10) & 1 == 1;
        let encoding = ((t >> 11) & 0x3) as u8;
        let ty = AttrType::from_code(type_code).ok_or_else(|| {
            Error::corrupt(
                self.sec.loc(at),
                format!("attribute {id} has invalid type {type_code}"),
            )
        })?;
        match ids::expected_type(id) {
            Some(expected) if expected != ty => {
                return Err(Error::corrupt(
                    self.sec.loc(at),
                    format!(
                        "attribute {} has type {ty:?}, expected {expected:?}",
                        ids::name(id).unwrap_or("?")
                    ),
                ));
            }
            None if self.sec.minor <= ids::READER_MINOR_VERSION => {
                return Err(Error::corrupt(
                    self.sec.loc(at),
                    format!(
                        "attribute id {id} is not supported by format minor version {}",
                        self.sec.minor
                    ),
                ));
            }
            _ => {}
        }
        let value = match (ty, encoding) {
            (AttrType::Int | AttrType::UInt, 0..=3) => {
                let width = 1usize << encoding;
                let raw = self.fixed(width, "integer value")?;
                if ty == AttrType::Int {
                    let shift = 64 - 8 * width as u32;
                    Value::Int(((raw << shift) as i64) >> shift)
                } else {
                    Value::UInt(raw)
                }
            }
            (AttrType::String, 0) => {
                let start = self.pos;
                let nul = self.sec.bytes[start..]
                    .iter()
                    .position(|&b| b == 0)
                    .ok_or_else(|| {
                        Error::corrupt(self.sec.loc(start as u64), "unterminated inline string")
                    })?;
                self.pos += nul + 1;
                Value::Str(Span {
                    off: start as u32,
                    len: nul as u32,
                })
            }
            (AttrType::String, 1) => {
                let idx_at = self.pos as u64;
                let index = self.uleb("string index")?;
                let span = usize::try_from(index)
                    .ok()
                    .and_then(|i| self.sec.strings.get(i))
                    .ok_or_else(|| {
                        Error::corrupt(
                            self.sec.loc(idx_at),
                            format!(
                                "string index {index} out of range (table has {})",
                                self.sec.strings.len()
                            ),
                        )
                    })?;
                Value::Str(*span)
            }
            (AttrType::Raw, 0) => {
                let size_at = self.pos as u64;
                let size = self.uleb("inline data size")?;
                if size > MAX_INLINE_DATA {
                    return Err(Error::corrupt(
                        self.sec.loc(size_at),
                        format!("inline data of {size} bytes (at most {MAX_INLINE_DATA} allowed)"),
                    ));
                }
                let start = self.pos;
                if self.sec.bytes.len() - start < size as usize {
                    return Err(self.truncated("inline data", size));
                }
                self.pos += size as usize;
                Value::RawInline(Span {
                    off: start as u32,
                    len: size as u32,
                })
            }
            (AttrType::Raw, 1) => {
                let ref_at = self.pos as u64;
                let size = self.uleb("heap data size")?;
                let offset = self.uleb("heap data offset")?;
                if offset > self.sec.heap_size || size > self.sec.heap_size - offset {
                    return Err(Error::corrupt(
                        self.sec.loc(ref_at),
                        format!(
                            "heap data of {size} bytes at {offset} lies outside the heap of {} bytes",
                            self.sec.heap_size
                        ),
                    ));
                }
                Value::RawHeap { offset, size }
            }
            (ty, enc) => {
                return Err(Error::corrupt(
                    self.sec.loc(at),
                    format!("attribute {id}: encoding {enc} is invalid for type {ty:?}"),
                ));
            }
        };
        Ok(Some(Attr {
            id,
            value,
            has_children,
            at,
        }))
    }

    /// Skip the child list of an attribute that has children, with its subtrees.
    pub fn skip_children(&mut self) -> Result<()> {
        let mut depth = 1usize;
        while depth > 0 {
            match self.next_attr()? {
                None => depth -= 1,
                Some(a) if a.has_children => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(Error::corrupt(
                            self.sec.loc(a.at),
                            format!("attributes nested deeper than {MAX_DEPTH}"),
                        ));
                    }
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Check that the list just ended was the section's last byte (spec §5.2).
    pub fn expect_end(&self) -> Result<()> {
        let rest = self.sec.bytes.len() - self.pos;
        if rest != 0 {
            return Err(Error::corrupt(
                self.sec.loc(self.pos as u64),
                format!("{rest} excess bytes after the attribute list"),
            ));
        }
        Ok(())
    }

    /// The value of `a` as an unsigned integer (its type was checked on read).
    pub fn uint(&self, a: &Attr) -> Result<u64> {
        match a.value {
            Value::UInt(v) => Ok(v),
            Value::Int(v) if v >= 0 => Ok(v as u64),
            _ => Err(Error::corrupt(
                self.sec.loc(a.at),
                "expected an unsigned integer",
            )),
        }
    }

    /// The value of `a` as a string span.
    pub fn str_span(&self, a: &Attr) -> Result<Span> {
        match a.value {
            Value::Str(s) => Ok(s),
            _ => Err(Error::corrupt(self.sec.loc(a.at), "expected a string")),
        }
    }

    /// The value of `a` as an owned string (lossy UTF-8).
    pub fn string(&self, a: &Attr) -> Result<String> {
        Ok(self.sec.string(self.str_span(a)?))
    }
}

/// Why a LEB128 could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LebError {
    /// The input ended inside the number.
    Truncated,
    /// More than 10 bytes, or a value over 64 bits.
    TooLong,
}

/// Decode an unsigned LEB128 from the start of `buf`: `(value, bytes used)`.
pub fn read_uleb128(buf: &[u8]) -> Result<(u64, usize), LebError> {
    let mut value = 0u64;
    for (i, &b) in buf.iter().enumerate() {
        if i >= MAX_LEB128_BYTES {
            return Err(LebError::TooLong);
        }
        let bits = u64::from(b & 0x7f);
        if i == 9 && bits > 1 {
            return Err(LebError::TooLong);
        }
        value |= bits << (7 * i);
        if b & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(LebError::Truncated)
}

/// Append the minimal unsigned LEB128 encoding of `value`.
pub fn write_uleb128(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let b = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// The tag of an attribute (spec §6.1).
pub fn encode_tag(id: u8, ty: AttrType, encoding: u8, has_children: bool) -> u64 {
    ((u64::from(encoding) << 11)
        | (u64::from(has_children) << 10)
        | ((ty as u64) << 7)
        | u64::from(id))
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb128_round_trip_and_bounds() {
        for v in [0u64, 1, 127, 128, 300, 8192, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            write_uleb128(&mut out, v);
            assert_eq!(read_uleb128(&out), Ok((v, out.len())));
        }
        assert_eq!(read_uleb128(&[0x80, 0x80]), Err(LebError::Truncated));
        assert_eq!(read_uleb128(&[0xff; 11]), Err(LebError::TooLong));
        // 10th byte may only carry the top bit of a u64.
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert_eq!(read_uleb128(&over), Err(LebError::TooLong));
    }

    #[test]
    fn tags_match_the_spec_table() {
        let cases: [(u8, AttrType, u8, bool, u64); 8] = [
            (ids::DIR_ENTRY, AttrType::String, 1, true, 3457),
            (ids::DIR_ENTRY, AttrType::String, 0, true, 1409),
            (ids::FILE_TYPE, AttrType::UInt, 0, false, 258),
            (ids::FILE_PERMISSIONS, AttrType::UInt, 1, false, 2307),
            (ids::DATA, AttrType::Raw, 1, false, 2574),
            (ids::DATA, AttrType::Raw, 0, false, 526),
            (ids::SYMLINK_PATH, AttrType::String, 0, false, 399),
            (ids::PACKAGE, AttrType::String, 1, true, 3511),
        ];
        for (id, ty, enc, ch, tag) in cases {
            assert_eq!(encode_tag(id, ty, enc, ch), tag, "id {id}");
        }
    }

    #[test]
    fn string_table_rules() {
        let ok = Section::new(b"ab\0c\0\0\x00".to_vec(), SectionKind::Toc, 6, 2, 0, 1).unwrap();
        assert_eq!(ok.string_count(), 2);
        // Count disagrees.
        assert!(Section::new(b"ab\0c\0\0\x00".to_vec(), SectionKind::Toc, 6, 3, 0, 1).is_err());
        // Excess bytes after the terminator.
        assert!(Section::new(b"ab\0\0x\x00".to_vec(), SectionKind::Toc, 5, 1, 0, 1).is_err());
        // Empty table.
        assert!(Section::new(b"\0\0".to_vec(), SectionKind::Toc, 1, 0, 0, 1).is_ok());
        assert!(Section::new(b"\0\0".to_vec(), SectionKind::Toc, 2, 0, 0, 1).is_err());
    }

    #[test]
    fn string_index_must_be_below_count() {
        // One string, then a dir:entry (tag 3457) with index 1 == count.
        let mut bytes = b"x\0\0".to_vec();
        write_uleb128(&mut bytes, 3457);
        bytes.push(1);
        let sec = Section::new(bytes, SectionKind::Toc, 3, 1, 0, 1).unwrap();
        assert!(sec.reader().next_attr().is_err());
    }
}
