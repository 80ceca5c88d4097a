//! Encoding of a structured section (`docs/hpkg-format.md` §5.2, §6): an in-memory attribute
//! tree is turned into a string subsection followed by the attribute list.
//!
//! String table rule (spec §16 step 3): every non-empty string used at least
//! twice in the section goes into the table, ordered by descending use count,
//! ties broken by the string bytes. Haiku breaks ties by the iteration order
//! of its hash table, which is not worth imitating: any order is valid, and
//! this one is deterministic.
//!
//! Integers are written in the smallest width that holds them, raw payloads
//! inline when they are at most 8 bytes and as heap references otherwise —
//! the caller decides which by building the matching [`Value`].

use std::collections::HashMap;

use crate::attr::{encode_tag, write_uleb128, MAX_INLINE_DATA};
use crate::error::{Error, Result};
use crate::ids::{self, AttrType};

/// The value of an attribute to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// Unsigned integer, written in the smallest width that holds it.
    UInt(u64),
    /// String (must not contain a NUL byte).
    Str(Vec<u8>),
    /// Raw bytes stored inline (at most 8).
    RawInline(Vec<u8>),
    /// Raw bytes on the heap.
    RawHeap {
        /// Length.
        size: u64,
        /// Offset into the uncompressed heap.
        offset: u64,
    },
}

/// One attribute with its children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    /// Attribute id (spec §7).
    pub id: u8,
    /// Its value.
    pub value: Value,
    /// Child attributes, written after the value when non-empty.
    pub children: Vec<Node>,
}

impl Node {
    /// A leaf attribute.
    pub fn leaf(id: u8, value: Value) -> Node {
        Node {
            id,
            value,
            children: Vec::new(),
        }
    }

    /// An unsigned-integer leaf.
    pub fn uint(id: u8, v: u64) -> Node {
        Node::leaf(id, Value::UInt(v))
    }

    /// A string leaf.
    pub fn string(id: u8, s: impl Into<Vec<u8>>) -> Node {
        Node::leaf(id, Value::Str(s.into()))
    }
}

/// An encoded section and the header fields describing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Encoded {
    /// String subsection followed by the attribute list.
    pub bytes: Vec<u8>,
    /// Length of the string subsection, terminating 0 included.
    pub strings_length: u64,
    /// Number of strings in the table.
    pub strings_count: u64,
}

/// The string table of one section: which strings get an index.
#[derive(Debug, Default)]
struct StringTable<'a> {
    index: HashMap<&'a [u8], u64>,
}

impl<'a> StringTable<'a> {
    /// Count every string of `list`, keep those used at least twice.
    fn build(list: &'a [Node]) -> (StringTable<'a>, Vec<&'a [u8]>) {
        let mut counts: HashMap<&'a [u8], u64> = HashMap::new();
        let mut stack: Vec<&'a Node> = list.iter().collect();
        while let Some(n) = stack.pop() {
            if let Value::Str(s) = &n.value {
                if !s.is_empty() {
                    *counts.entry(s.as_slice()).or_default() += 1;
                }
            }
            stack.extend(n.children.iter());
        }
        let mut table: Vec<(&'a [u8], u64)> = counts.into_iter().filter(|&(_, c)| c >= 2).collect();
        table.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let order: Vec<&'a [u8]> = table.iter().map(|&(s, _)| s).collect();
        let index = order
            .iter()
            .enumerate()
            .map(|(i, &s)| (s, i as u64))
            .collect();
        (StringTable { index }, order)
    }
}

/// Encode a top-level attribute list as a section. `what` names the section
/// in errors.
pub(crate) fn encode(list: &[Node], what: &str) -> Result<Encoded> {
    let (table, order) = StringTable::build(list);
    let mut bytes = Vec::new();
    for s in &order {
        bytes.extend_from_slice(s);
        bytes.push(0);
    }
    bytes.push(0);
    let strings_length = bytes.len() as u64;
    write_list(&mut bytes, list, &table, what)?;
    Ok(Encoded {
        bytes,
        strings_length,
        strings_count: order.len() as u64,
    })
}

/// Write a list and its terminating 0. Iterative, so deep trees cannot
/// exhaust the stack.
fn write_list(out: &mut Vec<u8>, list: &[Node], table: &StringTable<'_>, what: &str) -> Result<()> {
    let mut stack: Vec<std::slice::Iter<'_, Node>> = vec![list.iter()];
    while let Some(iter) = stack.last_mut() {
        match iter.next() {
            Some(node) => {
                write_attr(out, node, table, what)?;
                if !node.children.is_empty() {
                    stack.push(node.children.iter());
                }
            }
            None => {
                out.push(0);
                stack.pop();
            }
        }
    }
    Ok(())
}

/// Smallest integer encoding (0: 1 byte … 3: 8 bytes) that holds `v`.
pub(crate) fn int_encoding(v: u64) -> u8 {
    if v <= 0xff {
        0
    } else if v <= 0xffff {
        1
    } else if v <= 0xffff_ffff {
        2
    } else {
        3
    }
}

fn write_attr(out: &mut Vec<u8>, node: &Node, table: &StringTable<'_>, what: &str) -> Result<()> {
    let has_children = !node.children.is_empty();
    let name = ids::name(node.id).unwrap_or("?");
    let (ty, encoding) = match &node.value {
        Value::UInt(v) => (AttrType::UInt, int_encoding(*v)),
        Value::Str(s) => {
            if s.contains(&0) {
                return Err(Error::InvalidInfo(format!(
                    "{what}: {name} {:?} contains a NUL byte",
                    String::from_utf8_lossy(s)
                )));
            }
            (
                AttrType::String,
                u8::from(table.index.contains_key(s.as_slice())),
            )
        }
        Value::RawInline(b) => {
            if b.len() as u64 > MAX_INLINE_DATA {
                return Err(Error::InvalidInfo(format!(
                    "{what}: inline {name} of {} bytes (at most {MAX_INLINE_DATA})",
                    b.len()
                )));
            }
            (AttrType::Raw, 0)
        }
        Value::RawHeap { .. } => (AttrType::Raw, 1),
    };
    if ids::expected_type(node.id) != Some(ty) {
        return Err(Error::InvalidInfo(format!(
            "{what}: attribute {name} ({}) cannot hold a {ty:?} value",
            node.id
        )));
    }
    write_uleb128(out, encode_tag(node.id, ty, encoding, has_children));
    match &node.value {
        Value::UInt(v) => {
            let width = 1usize << encoding;
            out.extend_from_slice(&v.to_be_bytes()[8 - width..]);
        }
        Value::Str(s) => match table.index.get(s.as_slice()) {
            Some(&i) => write_uleb128(out, i),
            None => {
                out.extend_from_slice(s);
                out.push(0);
            }
        },
        Value::RawInline(b) => {
            write_uleb128(out, b.len() as u64);
            out.extend_from_slice(b);
        }
        Value::RawHeap { size, offset } => {
            write_uleb128(out, *size);
            write_uleb128(out, *offset);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr::{Section, SectionKind, Value as ReadValue};

    #[test]
    fn integers_take_the_smallest_width() {
        for (v, enc) in [
            (0u64, 0u8),
            (0xff, 0),
            (0x100, 1),
            (0xffff, 1),
            (0x1_0000, 2),
            (0xffff_ffff, 2),
            (0x1_0000_0000, 3),
            (u64::MAX, 3),
        ] {
            assert_eq!(int_encoding(v), enc, "{v:#x}");
        }
    }

    #[test]
    fn strings_used_twice_go_to_the_table_in_a_stable_order() {
        let list = vec![
            Node::string(ids::PACKAGE_NAME, "b"),
            Node::string(ids::PACKAGE_SUMMARY, "once"),
            Node::string(ids::PACKAGE_COPYRIGHT, "a"),
            Node::string(ids::PACKAGE_LICENSE, "b"),
            Node::string(ids::PACKAGE_LICENSE, "a"),
            Node::string(ids::PACKAGE_LICENSE, "c"),
            Node::string(ids::PACKAGE_LICENSE, "c"),
            Node::string(ids::PACKAGE_LICENSE, "c"),
            Node::string(ids::PACKAGE_URL, ""),
            Node::string(ids::PACKAGE_URL, ""),
        ];
        let enc = encode(&list, "test").unwrap();
        // "c" (3 uses) first, then "a" and "b" (2 uses) by bytes; the empty
        // string and the single-use string stay inline.
        assert_eq!(&enc.bytes[..enc.strings_length as usize], b"c\0a\0b\0\0");
        assert_eq!(enc.strings_count, 3);
        let sec = Section::new(
            enc.bytes.clone(),
            SectionKind::Attributes,
            enc.strings_length,
            enc.strings_count,
            0,
            1,
        )
        .unwrap();
        let mut r = sec.reader();
        let mut got = Vec::new();
        while let Some(a) = r.next_attr().unwrap() {
            got.push((a.id, r.string(&a).unwrap()));
        }
        r.expect_end().unwrap();
        let want: Vec<(u8, String)> = list
            .iter()
            .map(|n| match &n.value {
                Value::Str(s) => (n.id, String::from_utf8(s.clone()).unwrap()),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn nested_values_round_trip() {
        let list = vec![Node {
            id: ids::DIR_ENTRY,
            value: Value::Str(b"f".to_vec()),
            children: vec![
                Node::uint(ids::FILE_PERMISSIONS, 0o4755),
                Node::uint(ids::FILE_MTIME, 0x1_0000_0000),
                Node::leaf(ids::DATA, Value::RawInline(b"12345678".to_vec())),
                Node {
                    id: ids::FILE_ATTRIBUTE,
                    value: Value::Str(b"f".to_vec()),
                    children: vec![Node::leaf(
                        ids::DATA,
                        Value::RawHeap {
                            size: 9,
                            offset: 300,
                        },
                    )],
                },
            ],
        }];
        let enc = encode(&list, "test").unwrap();
        let sec = Section::new(
            enc.bytes,
            SectionKind::Toc,
            enc.strings_length,
            enc.strings_count,
            1000,
            1,
        )
        .unwrap();
        let mut r = sec.reader();
        let e = r.next_attr().unwrap().unwrap();
        assert!(e.has_children);
        assert_eq!(r.string(&e).unwrap(), "f");
        assert_eq!(
            r.next_attr().unwrap().unwrap().value,
            ReadValue::UInt(0o4755)
        );
        assert_eq!(
            r.next_attr().unwrap().unwrap().value,
            ReadValue::UInt(0x1_0000_0000)
        );
        assert!(matches!(
            r.next_attr().unwrap().unwrap().value,
            ReadValue::RawInline(s) if s.len == 8
        ));
        let a = r.next_attr().unwrap().unwrap();
        assert_eq!(r.string(&a).unwrap(), "f");
        assert_eq!(
            r.next_attr().unwrap().unwrap().value,
            ReadValue::RawHeap {
                offset: 300,
                size: 9
            }
        );
        assert!(r.next_attr().unwrap().is_none());
        assert!(r.next_attr().unwrap().is_none());
        assert!(r.next_attr().unwrap().is_none());
        r.expect_end().unwrap();
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(encode(&[Node::string(ids::PACKAGE_NAME, "a\0b")], "t").is_err());
        assert!(encode(&[Node::uint(ids::PACKAGE_NAME, 1)], "t").is_err());
        assert!(encode(&[Node::leaf(ids::DATA, Value::RawInline(vec![0; 9]))], "t").is_err());
    }
}
