//! Helpers shared by the integration tests: the golden fixtures, the listing
//! format of `*.expected.jsonl`, unpacking the fixture source trees, and raw
//! access to a package's sections.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use hpkg_format::attr::{Section, SectionKind, Value as RawValue};
use hpkg_format::header::HpkgHeader;
use hpkg_format::{EntryKind, NoCache, Package};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use zerocopy::FromBytes;

/// Linux's limit for one extended attribute; listings leave larger ones out.
pub const XATTR_MAX: u64 = 65536;

/// The golden fixtures directory.
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

/// Lowercase hex SHA-256.
pub fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The listing of a package in the `expected.jsonl` format, keyed by path.
pub fn listing(pkg: &Package) -> BTreeMap<String, Value> {
    let toc = pkg.toc();
    let mut out = BTreeMap::new();
    toc.walk(|path, id| {
        let e = toc.entry(id);
        let mut xattrs = serde_json::Map::new();
        for a in toc.attrs(id) {
            // Linux has no user.* attributes on symlinks, nor any over 64 KiB.
            if a.size() > XATTR_MAX || e.kind() == EntryKind::Symlink {
                continue;
            }
            let data = pkg.data_to_vec(toc.attr_data(a), &NoCache).unwrap();
            xattrs.insert(
                String::from_utf8_lossy(toc.attr_name(a)).into_owned(),
                json!(hex(&data)),
            );
        }
        let (sha, link) = match e.kind() {
            EntryKind::File => (
                json!(hex(&pkg.data_to_vec(toc.data(id), &NoCache).unwrap())),
                Value::Null,
            ),
            EntryKind::Symlink => (
                Value::Null,
                json!(String::from_utf8_lossy(toc.symlink_target(id))),
            ),
            EntryKind::Directory => (Value::Null, Value::Null),
        };
        let mut entry = json!({
            "type": e.kind().name(),
            "mode": format!("{:o}", e.mode()),
            "size": if e.kind() == EntryKind::File { e.size() } else { 0 },
            "sha256": sha,
            "link": link,
        });
        if !xattrs.is_empty() {
            entry["xattrs"] = Value::Object(xattrs);
        }
        out.insert(String::from_utf8_lossy(path).into_owned(), entry);
    });
    out
}

/// An `expected.jsonl` file, keyed by path.
pub fn expected(path: &Path) -> BTreeMap<String, Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["path"].as_str().unwrap().to_string(), v["entry"].clone())
        })
        .collect()
}

/// Assert that a listing equals an expected one, naming the first difference.
pub fn assert_listing_eq(
    what: &str,
    got: &BTreeMap<String, Value>,
    want: &BTreeMap<String, Value>,
) {
    for (path, w) in want {
        assert_eq!(got.get(path), Some(w), "{what}: {path}");
    }
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(extra.is_empty(), "{what}: unexpected entries {extra:?}");
}

/// Unpack `src/<name>.tar` of the Haiku-tool fixtures into `dest` with its
/// `user.*` extended attributes; returns the tree's root (`dest/<name>`).
pub fn unpack_source_tree(name: &str, dest: &Path) -> PathBuf {
    let tar = fixtures()
        .join("haiku-tool/src")
        .join(format!("{name}.tar"));
    let status = Command::new("tar")
        .args(["--xattrs", "--xattrs-include=user.*", "-xf"])
        .arg(&tar)
        .arg("-C")
        .arg(dest)
        .status()
        .expect("run tar");
    assert!(status.success(), "tar -xf {} failed", tar.display());
    let root = dest.join(name);
    assert!(
        root.is_dir(),
        "{} has no top directory {name}",
        tar.display()
    );
    root
}

/// The header and the uncompressed TOC and package-attributes sections of a
/// package file, as parsed sections.
pub struct RawPackage {
    pub header: HpkgHeader,
    pub heap: Vec<u8>,
    pub toc: Section,
    pub attrs: Section,
}

impl RawPackage {
    pub fn open(path: &Path) -> RawPackage {
        let pkg = Package::open(path).unwrap();
        let raw = std::fs::read(path).unwrap();
        let header = HpkgHeader::read_from_bytes(&raw[..80]).unwrap();
        let size = pkg.heap().size();
        let heap = pkg.heap().read_vec(0, size).unwrap();
        let attrs_len = u64::from(header.attributes_length.get());
        let toc_len = header.toc_length.get();
        let attrs_off = (size - attrs_len) as usize;
        let toc_off = attrs_off - toc_len as usize;
        let toc = Section::new(
            heap[toc_off..attrs_off].to_vec(),
            SectionKind::Toc,
            header.toc_strings_length.get(),
            header.toc_strings_count.get(),
            size,
            header.minor_version.get(),
        )
        .unwrap();
        let attrs = Section::new(
            heap[attrs_off..].to_vec(),
            SectionKind::Attributes,
            u64::from(header.attributes_strings_length.get()),
            u64::from(header.attributes_strings_count.get()),
            size,
            header.minor_version.get(),
        )
        .unwrap();
        RawPackage {
            header,
            heap,
            toc,
            attrs,
        }
    }

    /// Where the TOC starts in the uncompressed heap.
    pub fn toc_offset(&self) -> usize {
        self.heap.len() - self.attrs.bytes.len() - self.toc.bytes.len()
    }

    /// The string table of a section, in order.
    pub fn strings(section: &Section, strings_length: u64) -> Vec<String> {
        let table = &section.bytes[..strings_length as usize];
        table
            .split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    }
}

/// One attribute decoded without reference to how strings were stored:
/// `(id, value, children)` where the value shows the integer width, whether
/// a string was in the table, and heap data by size and content hash.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Attr {
    pub id: u8,
    pub value: String,
    pub children: Vec<Attr>,
}

/// Decode a whole section into [`Attr`] trees. `heap` resolves heap data.
pub fn decode(section: &Section, heap: &[u8]) -> Vec<Attr> {
    fn list(r: &mut hpkg_format::attr::AttrReader<'_>, heap: &[u8], sec: &Section) -> Vec<Attr> {
        let mut out = Vec::new();
        while let Some(a) = r.next_attr().unwrap() {
            let at = a.at as usize;
            // Tag bytes: read the encoding bits back from the section.
            let (tag, _) = hpkg_format::attr::read_uleb128(&sec.bytes[at..]).unwrap();
            let encoding = ((tag - 1) >> 11) & 3;
            let value = match a.value {
                RawValue::UInt(v) => format!("u{}:{v}", 8 << encoding),
                RawValue::Int(v) => format!("i{}:{v}", 8 << encoding),
                RawValue::Str(s) => format!(
                    "{}:{}",
                    if encoding == 1 { "table" } else { "inline" },
                    String::from_utf8_lossy(s.get(&sec.bytes))
                ),
                RawValue::RawInline(s) => format!("inline-data:{}", hex(s.get(&sec.bytes))),
                RawValue::RawHeap { offset, size } => format!(
                    "heap-data:{size}:{}",
                    hex(&heap[offset as usize..(offset + size) as usize])
                ),
            };
            let children = if a.has_children {
                list(r, heap, sec)
            } else {
                Vec::new()
            };
            out.push(Attr {
                id: a.id,
                value,
                children,
            });
        }
        out
    }
    let mut r = section.reader();
    let out = list(&mut r, heap, section);
    r.expect_end().unwrap();
    out
}

/// A TOC tree with the entries of every directory sorted by name, so that
/// trees written in different directory orders compare equal.
pub fn sort_entries(mut attrs: Vec<Attr>) -> Vec<Attr> {
    for a in &mut attrs {
        a.children = sort_entries(std::mem::take(&mut a.children));
    }
    // Only dir:entry (id 0) siblings are reordered; other attributes keep
    // their place before the entries.
    let (mut entries, rest): (Vec<Attr>, Vec<Attr>) = attrs.into_iter().partition(|a| a.id == 0);
    entries.sort();
    rest.into_iter().chain(entries).collect()
}
