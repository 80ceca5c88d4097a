//! Haiku's flattened `BMessage` ("HMF1" format), as embedded in `.hpkr`
//! repository indexes (`docs/hpkg-format.md` §12.3): read in either byte order, written
//! little-endian with the hash table and `next_field` chains Haiku uses for
//! lookups.
//!
//! Every count, size and offset is checked against the input before use; no
//! allocation is sized by an unchecked field.

use crate::error::{Error, Location, Result};

/// The `format` word of a flattened message, read in its own byte order.
pub const FORMAT: u32 = 0x3146_4D48;
/// Size of the message header with a 5-bucket hash table.
pub const HEADER_SIZE: usize = 48 + 4 * HASH_TABLE_SIZE;
/// Size of one field header.
pub const FIELD_HEADER_SIZE: usize = 24;
/// Number of hash buckets Haiku writes.
pub const HASH_TABLE_SIZE: usize = 5;
/// Message flag: the message is valid (always set when flattened).
pub const MESSAGE_FLAG_VALID: u32 = 1;
/// Field flag: the field is valid.
pub const FIELD_FLAG_VALID: u16 = 1;
/// Field flag: all items have the same size and are stored without length prefixes.
pub const FIELD_FLAG_FIXED_SIZE: u16 = 2;

/// Haiku type code of a NUL-terminated string (`CSTR`).
pub const TYPE_STRING: u32 = u32::from_be_bytes(*b"CSTR");
/// Haiku type code of an `int8` (`BYTE`).
pub const TYPE_INT8: u32 = u32::from_be_bytes(*b"BYTE");
/// Haiku type code of a `uint8` (`UBYT`).
pub const TYPE_UINT8: u32 = u32::from_be_bytes(*b"UBYT");
/// Haiku type code of an `int16` (`SHRT`).
pub const TYPE_INT16: u32 = u32::from_be_bytes(*b"SHRT");
/// Haiku type code of a `uint16` (`USHT`).
pub const TYPE_UINT16: u32 = u32::from_be_bytes(*b"USHT");
/// Haiku type code of an `int32` (`LONG`).
pub const TYPE_INT32: u32 = u32::from_be_bytes(*b"LONG");
/// Haiku type code of a `uint32` (`ULNG`).
pub const TYPE_UINT32: u32 = u32::from_be_bytes(*b"ULNG");
/// Haiku type code of an `int64` (`LLNG`).
pub const TYPE_INT64: u32 = u32::from_be_bytes(*b"LLNG");
/// Haiku type code of a `uint64` (`ULLG`).
pub const TYPE_UINT64: u32 = u32::from_be_bytes(*b"ULLG");
/// Haiku type code of a `bool` (`BOOL`).
pub const TYPE_BOOL: u32 = u32::from_be_bytes(*b"BOOL");
/// Haiku type code of a `float` (`FLOT`).
pub const TYPE_FLOAT: u32 = u32::from_be_bytes(*b"FLOT");
/// Haiku type code of a `double` (`DBLE`).
pub const TYPE_DOUBLE: u32 = u32::from_be_bytes(*b"DBLE");

/// Which scalar width items of a type have, for byte swapping: `(word size)`.
/// Types not listed are opaque and never swapped.
fn swap_word(type_code: u32) -> Option<usize> {
    Some(match &type_code.to_be_bytes() {
        b"SHRT" | b"USHT" => 2,
        b"LONG" | b"ULNG" | b"FLOT" | b"BPNT" | b"RECT" | b"SIZE" => 4,
        b"LLNG" | b"ULLG" | b"DBLE" | b"OFFT" | b"SIZT" | b"SSZT" | b"TIME" => 8,
        _ => return None,
    })
}

/// Haiku's hash of a field name (`_HashName` of `Message.cpp`).
///
/// Haiku iterates a `char`, which is signed on x86: bytes ≥ 0x80 are
/// sign-extended before the XOR. We do the same so non-ASCII names land in
/// the bucket an x86 Haiku looks in.
pub fn hash_name(name: &[u8]) -> u32 {
    let mut h: u32 = 0;
    for &b in name {
        h = (h << 7) ^ (h >> 24);
        h ^= b as i8 as i32 as u32;
    }
    h ^ (h << 12)
}

/// One named field: a type code and one or more items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Field name.
    pub name: String,
    /// Haiku type code (e.g. [`TYPE_STRING`]).
    pub type_code: u32,
    /// Whether items are fixed-size (stored back to back without length prefixes).
    pub fixed_size: bool,
    /// The items, in little-endian representation. String items include
    /// their terminating NUL, as Haiku stores them.
    pub items: Vec<Vec<u8>>,
}

impl Field {
    /// The items as strings (the trailing NUL removed, invalid UTF-8 replaced);
    /// `None` if the field is not a string field.
    pub fn strings(&self) -> Option<Vec<String>> {
        if self.type_code != TYPE_STRING {
            return None;
        }
        Some(
            self.items
                .iter()
                .map(|i| {
                    let s = i.strip_suffix(&[0]).unwrap_or(i);
                    String::from_utf8_lossy(s).into_owned()
                })
                .collect(),
        )
    }
}

/// A message: its `what` code, header words and fields in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The `what` code.
    pub what: u32,
    /// Message flags; [`MESSAGE_FLAG_VALID`] is always set on a flattened message.
    pub flags: u32,
    /// `target`, `current_specifier`, `message_area`, `reply_port`,
    /// `reply_target`, `reply_team`: −1 in a message that was never delivered.
    pub routing: [i32; 6],
    /// The fields, in the order they were added.
    pub fields: Vec<Field>,
}

impl Default for Message {
    fn default() -> Message {
        Message {
            what: 0,
            flags: MESSAGE_FLAG_VALID,
            routing: [-1; 6],
            fields: Vec::new(),
        }
    }
}

/// Reads 32/16-bit words of the blob in its byte order, with bounds checks.
struct Cursor<'a> {
    buf: &'a [u8],
    big_endian: bool,
}

impl Cursor<'_> {
    fn bytes(&self, at: usize, len: usize, what: &'static str) -> Result<&[u8]> {
        at.checked_add(len)
            .and_then(|end| self.buf.get(at..end))
            .ok_or(Error::Truncated {
                what,
                at: Location::RepoInfo(at as u64),
                needed: len as u64,
                available: self.buf.len().saturating_sub(at) as u64,
            })
    }

    fn u32(&self, at: usize, what: &'static str) -> Result<u32> {
        let b = self.bytes(at, 4, what)?;
        let b = [b[0], b[1], b[2], b[3]];
        Ok(if self.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn u16(&self, at: usize, what: &'static str) -> Result<u16> {
        let b = self.bytes(at, 2, what)?;
        let b = [b[0], b[1]];
        Ok(if self.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }
}

fn corrupt(at: usize, reason: impl Into<String>) -> Error {
    Error::corrupt(Location::RepoInfo(at as u64), reason)
}

/// Check a hash-table or chain link: −1 or a field index.
fn check_link(value: u32, field_count: usize, at: usize, what: &str) -> Result<()> {
    let v = value as i32;
    if v < -1 || (v >= 0 && v as usize >= field_count) {
        return Err(corrupt(
            at,
            format!("{what} {v} is neither -1 nor a field index below {field_count}"),
        ));
    }
    Ok(())
}

impl Message {
    /// An empty message with `what` = 0.
    pub fn new() -> Message {
        Message::default()
    }

    /// Parse a flattened message. The whole of `buf` must be the message
    /// (no trailing bytes). Offsets in errors are relative to `buf`.
    pub fn unflatten(buf: &[u8]) -> Result<Message> {
        let magic = buf.get(..4).ok_or(Error::Truncated {
            what: "message format",
            at: Location::RepoInfo(0),
            needed: 4,
            available: buf.len() as u64,
        })?;
        let magic = [magic[0], magic[1], magic[2], magic[3]];
        let big_endian = if u32::from_le_bytes(magic) == FORMAT {
            false
        } else if u32::from_be_bytes(magic) == FORMAT {
            true
        } else {
            return Err(corrupt(
                0,
                format!("not a flattened message (format bytes {magic:02x?})"),
            ));
        };
        let c = Cursor { buf, big_endian };
        let what = c.u32(4, "message header")?;
        let flags = c.u32(8, "message header")?;
        if flags & MESSAGE_FLAG_VALID == 0 {
            return Err(corrupt(8, "message is not marked valid"));
        }
        let mut routing = [0i32; 6];
        for (i, r) in routing.iter_mut().enumerate() {
            *r = c.u32(12 + 4 * i, "message header")? as i32;
        }
        let data_size = c.u32(36, "message header")? as usize;
        let field_count = c.u32(40, "message header")? as usize;
        let hash_size = c.u32(44, "message header")? as usize;
        if hash_size == 0 && field_count > 0 {
            return Err(corrupt(44, "empty hash table for a message with fields"));
        }
        // Every bound below is checked against the input before anything is
        // allocated, so huge counts fail here rather than in the allocator.
        let table_len = hash_size
            .checked_mul(4)
            .filter(|&n| n <= buf.len())
            .ok_or_else(|| corrupt(44, format!("hash table of {hash_size} buckets")))?;
        let fields_at = 48 + table_len;
        c.bytes(48, table_len, "hash table")?;
        for i in 0..hash_size {
            let at = 48 + 4 * i;
            check_link(c.u32(at, "hash table")?, field_count, at, "hash bucket")?;
        }
        let headers_len = field_count
            .checked_mul(FIELD_HEADER_SIZE)
            .filter(|&n| n <= buf.len())
            .ok_or_else(|| corrupt(40, format!("{field_count} fields cannot fit")))?;
        c.bytes(fields_at, headers_len, "field headers")?;
        let data_at = fields_at + headers_len;
        let data = c.bytes(data_at, data_size, "message data")?;
        let end = data_at + data_size;
        if end != buf.len() {
            return Err(corrupt(
                end,
                format!("{} excess bytes after the message", buf.len() - end),
            ));
        }

        let mut fields = Vec::with_capacity(field_count);
        for i in 0..field_count {
            let h = fields_at + i * FIELD_HEADER_SIZE;
            fields.push(read_field(&c, h, data, data_at, field_count)?);
        }
        Ok(Message {
            what,
            flags,
            routing,
            fields,
        })
    }

    /// Flatten little-endian, laying the data out in field order and filling
    /// the hash table and `next_field` chains as Haiku does (each field
    /// appended at the tail of its bucket's chain).
    pub fn flatten(&self) -> Result<Vec<u8>> {
        let field_count = self.fields.len();
        let mut headers = Vec::with_capacity(field_count * FIELD_HEADER_SIZE);
        let mut data = Vec::new();
        let mut table = [-1i32; HASH_TABLE_SIZE];
        let mut next = vec![-1i32; field_count];
        let mut tails: [Option<usize>; HASH_TABLE_SIZE] = [None; HASH_TABLE_SIZE];
        let too_big = |what: &'static str, value: usize| Error::LimitExceeded {
            what,
            value: value as u64,
            limit: u32::MAX as u64,
        };
        for (i, f) in self.fields.iter().enumerate() {
            let name = f.name.as_bytes();
            if name.contains(&0) {
                return Err(Error::InvalidInfo(format!(
                    "message field name {:?} contains a NUL",
                    f.name
                )));
            }
            let name_len = u16::try_from(name.len() + 1).map_err(|_| Error::LimitExceeded {
                what: "message field name length",
                value: name.len() as u64 + 1,
                limit: u16::MAX as u64,
            })?;
            let idx = i32::try_from(i).map_err(|_| too_big("message field count", i))?;
            let bucket = (hash_name(name) % HASH_TABLE_SIZE as u32) as usize;
            match tails[bucket] {
                None => table[bucket] = idx,
                Some(t) => next[t] = idx,
            }
            tails[bucket] = Some(i);

            let offset = data.len();
            data.extend_from_slice(name);
            data.push(0);
            let items_at = data.len();
            if f.fixed_size {
                let size = f.items.first().map_or(0, Vec::len);
                if f.items.iter().any(|it| it.len() != size) {
                    return Err(Error::InvalidInfo(format!(
                        "fixed-size message field {:?} has items of different sizes",
                        f.name
                    )));
                }
                for it in &f.items {
                    data.extend_from_slice(it);
                }
            } else {
                for it in &f.items {
                    let len = u32::try_from(it.len())
                        .map_err(|_| too_big("message item size", it.len()))?;
                    data.extend_from_slice(&len.to_le_bytes());
                    data.extend_from_slice(it);
                }
            }
            let item_bytes = data.len() - items_at;
            let mut flags = FIELD_FLAG_VALID;
            if f.fixed_size {
                flags |= FIELD_FLAG_FIXED_SIZE;
            }
            headers.extend_from_slice(&flags.to_le_bytes());
            headers.extend_from_slice(&name_len.to_le_bytes());
            headers.extend_from_slice(&f.type_code.to_le_bytes());
            for v in [f.items.len(), item_bytes, offset] {
                let v = u32::try_from(v).map_err(|_| too_big("message field size", v))?;
                headers.extend_from_slice(&v.to_le_bytes());
            }
            headers.extend_from_slice(&[0; 4]); // next_field, patched below
        }
        for (i, n) in next.iter().enumerate() {
            let at = i * FIELD_HEADER_SIZE + 20;
            headers[at..at + 4].copy_from_slice(&n.to_le_bytes());
        }
        let data_size =
            u32::try_from(data.len()).map_err(|_| too_big("message data", data.len()))?;
        let count =
            u32::try_from(field_count).map_err(|_| too_big("message field count", field_count))?;
        let mut out = Vec::with_capacity(HEADER_SIZE + headers.len() + data.len());
        out.extend_from_slice(&FORMAT.to_le_bytes());
        out.extend_from_slice(&self.what.to_le_bytes());
        out.extend_from_slice(&(self.flags | MESSAGE_FLAG_VALID).to_le_bytes());
        for r in self.routing {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out.extend_from_slice(&data_size.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&(HASH_TABLE_SIZE as u32).to_le_bytes());
        for t in table {
            out.extend_from_slice(&t.to_le_bytes());
        }
        out.extend_from_slice(&headers);
        out.extend_from_slice(&data);
        Ok(out)
    }

    /// The first field named `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The first item of string field `name`.
    pub fn string(&self, name: &str) -> Option<String> {
        self.strings(name)?.into_iter().next()
    }

    /// All items of string field `name`; `None` if there is no such string field.
    pub fn strings(&self, name: &str) -> Option<Vec<String>> {
        self.field(name)?.strings()
    }

    /// The first item of `uint8` field `name`.
    pub fn uint8(&self, name: &str) -> Option<u8> {
        let f = self.field(name)?;
        if f.type_code != TYPE_UINT8 {
            return None;
        }
        match f.items.first()?.as_slice() {
            [b] => Some(*b),
            _ => None,
        }
    }

    /// The field named `name` of type `type_code`, created at the end if missing.
    fn field_mut(&mut self, name: &str, type_code: u32, fixed_size: bool) -> Result<&mut Field> {
        let pos = match self.fields.iter().position(|f| f.name == name) {
            Some(p) => {
                let f = &self.fields[p];
                if f.type_code != type_code {
                    return Err(Error::InvalidInfo(format!(
                        "message field {name:?} already holds another type"
                    )));
                }
                p
            }
            None => {
                self.fields.push(Field {
                    name: name.to_string(),
                    type_code,
                    fixed_size,
                    items: Vec::new(),
                });
                self.fields.len() - 1
            }
        };
        Ok(&mut self.fields[pos])
    }

    /// Append a string item to field `name` (`BMessage::AddString`).
    pub fn add_string(&mut self, name: &str, value: &str) -> Result<()> {
        if value.contains('\0') {
            return Err(Error::InvalidInfo(format!(
                "message string for {name:?} contains a NUL"
            )));
        }
        let mut item = Vec::with_capacity(value.len() + 1);
        item.extend_from_slice(value.as_bytes());
        item.push(0);
        self.field_mut(name, TYPE_STRING, false)?.items.push(item);
        Ok(())
    }

    /// Append a `uint8` item to field `name` (`BMessage::AddUInt8`).
    pub fn add_uint8(&mut self, name: &str, value: u8) -> Result<()> {
        self.field_mut(name, TYPE_UINT8, true)?
            .items
            .push(vec![value]);
        Ok(())
    }
}

/// Read field header `i` at blob offset `h`; `data` is the data area, which
/// starts at blob offset `data_at`.
fn read_field(
    c: &Cursor<'_>,
    h: usize,
    data: &[u8],
    data_at: usize,
    field_count: usize,
) -> Result<Field> {
    let flags = c.u16(h, "field header")?;
    let name_len = usize::from(c.u16(h + 2, "field header")?);
    let type_code = c.u32(h + 4, "field header")?;
    let count = c.u32(h + 8, "field header")? as usize;
    let size = c.u32(h + 12, "field header")? as usize;
    let offset = c.u32(h + 16, "field header")? as usize;
    check_link(
        c.u32(h + 20, "field header")?,
        field_count,
        h + 20,
        "next field",
    )?;
    if flags & FIELD_FLAG_VALID == 0 {
        return Err(corrupt(h, "field is not marked valid"));
    }
    let fixed_size = flags & FIELD_FLAG_FIXED_SIZE != 0;
    // Name then items must lie inside the data area.
    let region = offset
        .checked_add(name_len)
        .and_then(|n| n.checked_add(size))
        .filter(|&end| end <= data.len())
        .map(|end| &data[offset..end])
        .ok_or_else(|| {
            corrupt(
                h + 16,
                format!(
                    "field data ({name_len}-byte name and {size} bytes at {offset}) outside the {}-byte data area",
                    data.len()
                ),
            )
        })?;
    let (name, items) = region.split_at(name_len);
    let name_at = data_at + offset;
    let name = match name.split_last() {
        Some((0, n)) if !n.is_empty() && !n.contains(&0) => std::str::from_utf8(n)
            .map_err(|_| corrupt(name_at, "field name is not UTF-8"))?
            .to_string(),
        _ => {
            return Err(corrupt(
                name_at,
                "field name is empty or not NUL-terminated",
            ))
        }
    };
    let items_at = name_at + name_len;
    let mut out = Vec::new();
    if fixed_size {
        if count == 0 || size == 0 {
            if count != 0 || size != 0 {
                return Err(corrupt(
                    h + 8,
                    format!("fixed-size field {name:?}: {count} items in {size} bytes"),
                ));
            }
        } else {
            if size % count != 0 {
                return Err(corrupt(
                    h + 8,
                    format!(
                        "fixed-size field {name:?}: {size} bytes do not split into {count} items"
                    ),
                ));
            }
            // count <= size here, and size is bounded by the input.
            let item = size / count;
            let word = swap_word(type_code).filter(|w| c.big_endian && item % w == 0);
            out.reserve(count);
            for chunk in items.chunks_exact(item) {
                let mut v = chunk.to_vec();
                if let Some(w) = word {
                    v.chunks_exact_mut(w).for_each(<[u8]>::reverse);
                }
                out.push(v);
            }
        }
    } else {
        let mut pos = 0usize;
        for _ in 0..count {
            let len_at = items_at + pos;
            let len = items
                .get(pos..pos + 4)
                .map(|b| {
                    let b = [b[0], b[1], b[2], b[3]];
                    if c.big_endian {
                        u32::from_be_bytes(b)
                    } else {
                        u32::from_le_bytes(b)
                    }
                })
                .ok_or_else(|| {
                    corrupt(len_at, format!("field {name:?}: item size beyond its data"))
                })? as usize;
            pos += 4;
            let item = pos
                .checked_add(len)
                .and_then(|end| items.get(pos..end))
                .ok_or_else(|| {
                    corrupt(
                        len_at,
                        format!("field {name:?}: item of {len} bytes runs past its data"),
                    )
                })?;
            out.push(item.to_vec());
            pos += len;
        }
        if pos != items.len() {
            return Err(corrupt(
                items_at + pos,
                format!(
                    "field {name:?}: {} bytes left after its {count} items",
                    items.len() - pos
                ),
            ));
        }
    }
    Ok(Field {
        name,
        type_code,
        fixed_size,
        items: out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Message {
        let mut m = Message::new();
        m.add_string("class", "").unwrap();
        m.add_string("name", "HaikuPorts").unwrap();
        m.add_string("url", "http://example.com/repo").unwrap();
        m.add_string("licenseName", "A").unwrap();
        m.add_string("licenseName", "B").unwrap();
        m.add_uint8("priority", 1).unwrap();
        m.add_uint8("architecture", 4).unwrap();
        m.fields.push(Field {
            name: "words".into(),
            type_code: TYPE_UINT32,
            fixed_size: true,
            items: vec![
                1u32.to_le_bytes().to_vec(),
                0x0102_0304u32.to_le_bytes().to_vec(),
            ],
        });
        m
    }

    #[test]
    fn round_trip() {
        let m = sample();
        let flat = m.flatten().unwrap();
        assert_eq!(&flat[..4], b"HMF1");
        let back = Message::unflatten(&flat).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.flatten().unwrap(), flat);
        assert_eq!(back.string("name").as_deref(), Some("HaikuPorts"));
        assert_eq!(
            back.strings("licenseName").unwrap(),
            vec!["A".to_string(), "B".to_string()]
        );
        assert_eq!(back.uint8("architecture"), Some(4));
        assert_eq!(back.uint8("name"), None);
    }

    #[test]
    fn hash_chains_find_every_field() {
        let m = sample();
        let flat = m.flatten().unwrap();
        let le = |at: usize| i32::from_le_bytes(flat[at..at + 4].try_into().unwrap());
        for (i, f) in m.fields.iter().enumerate() {
            let bucket = hash_name(f.name.as_bytes()) as usize % HASH_TABLE_SIZE;
            let mut link = le(48 + 4 * bucket);
            let mut seen = Vec::new();
            while link >= 0 {
                seen.push(link as usize);
                link = le(HEADER_SIZE + link as usize * FIELD_HEADER_SIZE + 20);
            }
            assert!(seen.contains(&i), "field {} not in its chain", f.name);
            assert!(seen.windows(2).all(|w| w[0] < w[1]), "chain in index order");
        }
    }

    /// Byte-swap a little-endian flattened message into Haiku's big-endian form.
    fn swap(flat: &[u8], m: &Message) -> Vec<u8> {
        let mut out = flat.to_vec();
        let rev4 = |b: &mut [u8], at: usize| b[at..at + 4].reverse();
        for at in (0..48 + 4 * HASH_TABLE_SIZE).step_by(4) {
            rev4(&mut out, at);
        }
        let data_at = HEADER_SIZE + m.fields.len() * FIELD_HEADER_SIZE;
        for (i, f) in m.fields.iter().enumerate() {
            let h = HEADER_SIZE + i * FIELD_HEADER_SIZE;
            out[h..h + 2].reverse();
            out[h + 2..h + 4].reverse();
            for k in 1..6 {
                rev4(&mut out, h + 4 * k);
            }
            let off = u32::from_le_bytes(flat[h + 16..h + 20].try_into().unwrap()) as usize;
            let mut p = data_at + off + f.name.len() + 1;
            for it in &f.items {
                if f.fixed_size {
                    if f.type_code == TYPE_UINT32 {
                        rev4(&mut out, p);
                    }
                } else {
                    rev4(&mut out, p);
                    p += 4;
                }
                p += it.len();
            }
        }
        out
    }

    #[test]
    fn reads_the_swapped_byte_order() {
        let m = sample();
        let flat = m.flatten().unwrap();
        let swapped = swap(&flat, &m);
        assert_eq!(&swapped[..4], b"1FMH");
        assert_eq!(Message::unflatten(&swapped).unwrap(), m);
    }

    #[test]
    fn hostile_input_is_an_error_not_a_panic() {
        let flat = sample().flatten().unwrap();
        // Every truncation fails cleanly.
        for n in 0..flat.len() {
            assert!(Message::unflatten(&flat[..n]).is_err(), "prefix {n}");
        }
        // Every single-byte corruption either parses or fails cleanly.
        for at in 0..flat.len() {
            for v in [0u8, 0x7f, 0x80, 0xff] {
                let mut b = flat.clone();
                b[at] = v;
                let _ = Message::unflatten(&b);
            }
        }
        // A huge count with no data is rejected before allocating.
        let mut b = flat.clone();
        b[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            Message::unflatten(&b),
            Err(Error::Corrupt {
                at: Location::RepoInfo(40),
                ..
            })
        ));
        // Trailing bytes are refused.
        let mut b = flat.clone();
        b.push(0);
        assert!(Message::unflatten(&b).is_err());
    }

    #[test]
    fn hash_matches_the_spec_formula() {
        // "name": computed by hand from the spec's formula.
        let mut h: u32 = 0;
        for b in b"name" {
            h = (h << 7) ^ (h >> 24);
            h ^= u32::from(*b);
        }
        h ^= h << 12;
        assert_eq!(hash_name(b"name"), h);
        // Bytes >= 0x80 are sign-extended as on x86 Haiku.
        assert_eq!(hash_name(&[0x80]), {
            let h = 0xffff_ff80u32;
            h ^ (h << 12)
        });
    }
}
