//! The compact TOC index on hand-crafted TOCs: attributes found on their
//! entry whatever their order in the package, modification times packed
//! without losing what a file system can show, and names of the string
//! table shared instead of copied. Each case is checked on the parsed
//! package and on the package loaded back from its index image.

mod robust;
use robust as common;

use std::sync::Arc;

use common::{minimal_attrs, simple_package, str_attr, tag, u8_attr, SectionParts};
use hpkg_format::heap::ReadAt;
use hpkg_format::ids::{self, AttrType};
use hpkg_format::index_image::{self, FileStamp};
use hpkg_format::{Compression, Data, EntryKind, Package, Toc};

/// The package built from `toc`, parsed, and loaded from its index image.
fn both(toc: &SectionParts) -> [Package; 2] {
    let bytes = simple_package(Compression::None, &[], toc, &minimal_attrs());
    let source: Arc<dyn ReadAt> = Arc::new(bytes);
    let key = [7; 32];
    let stamp = FileStamp::default();
    let (parsed, image) = index_image::open_and_encode(source.clone(), &key, &stamp).unwrap();
    let loaded = index_image::load(&image, source, &key, &stamp).unwrap();
    [parsed, loaded]
}

fn attr_names(toc: &Toc, id: u32) -> Vec<String> {
    toc.attrs(id)
        .iter()
        .map(|a| String::from_utf8_lossy(toc.attr_name(a)).into_owned())
        .collect()
}

/// A file attribute without payload.
fn file_attr(list: &mut Vec<u8>, name: &[u8]) {
    str_attr(list, ids::FILE_ATTRIBUTE, name, false);
}

fn dir_entry(list: &mut Vec<u8>, name: &[u8]) {
    str_attr(list, ids::DIR_ENTRY, name, true);
    u8_attr(list, ids::FILE_TYPE, 1);
}

#[test]
fn a_directory_attribute_after_its_childrens_is_the_directorys() {
    // d { f { fa }, da }: d's attribute comes after its child's.
    let mut list = Vec::new();
    dir_entry(&mut list, b"d");
    str_attr(&mut list, ids::DIR_ENTRY, b"f", true);
    file_attr(&mut list, b"fa");
    list.push(0);
    file_attr(&mut list, b"da");
    file_attr(&mut list, b"db");
    list.push(0);
    str_attr(&mut list, ids::DIR_ENTRY, b"g", true);
    file_attr(&mut list, b"ga");
    list.push(0);
    list.push(0);
    for pkg in both(&SectionParts::new(list)) {
        let toc = pkg.toc();
        let d = toc.lookup(None, b"d").unwrap();
        let f = toc.lookup(Some(d), b"f").unwrap();
        let g = toc.lookup(None, b"g").unwrap();
        assert_eq!(attr_names(toc, d), ["da", "db"]);
        assert_eq!(attr_names(toc, f), ["fa"]);
        assert_eq!(attr_names(toc, g), ["ga"]);
    }
}

#[test]
fn kinds_modes_and_payloads_whatever_the_attribute_order() {
    let mut list = Vec::new();
    // Permissions before the file type: kept.
    str_attr(&mut list, ids::DIR_ENTRY, b"private", true);
    tag(&mut list, ids::FILE_PERMISSIONS, AttrType::UInt, 1, false);
    list.extend_from_slice(&0o700u16.to_be_bytes());
    u8_attr(&mut list, ids::FILE_TYPE, 1);
    list.push(0);
    // A file type alone: the kind's default permissions.
    dir_entry(&mut list, b"plain");
    list.push(0);
    // A file without data: empty, on the heap, not inline.
    str_attr(&mut list, ids::DIR_ENTRY, b"empty", false);
    list.push(0);
    for pkg in both(&SectionParts::new(list)) {
        let toc = pkg.toc();
        let entry = |name: &[u8]| toc.entry(toc.lookup(None, name).unwrap());
        assert_eq!(
            (entry(b"private").kind(), entry(b"private").mode()),
            (EntryKind::Directory, 0o700)
        );
        assert_eq!(
            (entry(b"plain").kind(), entry(b"plain").mode()),
            (EntryKind::Directory, 0o755)
        );
        let empty = toc.lookup(None, b"empty").unwrap();
        assert_eq!(
            (toc.entry(empty).kind(), toc.entry(empty).mode()),
            (EntryKind::File, 0o644)
        );
        assert_eq!(toc.data(empty), Data::Heap { offset: 0, size: 0 });
    }
}

#[test]
fn an_entrys_attributes_split_by_a_childs_are_refused() {
    // d { da, f { fa }, db }: d's attributes are not contiguous.
    let mut list = Vec::new();
    dir_entry(&mut list, b"d");
    file_attr(&mut list, b"da");
    str_attr(&mut list, ids::DIR_ENTRY, b"f", true);
    file_attr(&mut list, b"fa");
    list.push(0);
    file_attr(&mut list, b"db");
    list.push(0);
    list.push(0);
    let bytes = simple_package(
        Compression::None,
        &[],
        &SectionParts::new(list),
        &minimal_attrs(),
    );
    let e = Package::from_source(Arc::new(bytes)).unwrap_err();
    assert!(
        e.to_string()
            .contains("file attribute after the entry's child entries"),
        "{e}"
    );
}

/// An entry `name` with modification time `secs` and `nanos`.
fn timed_entry(list: &mut Vec<u8>, name: &[u8], secs: u64, nanos: u32) {
    str_attr(list, ids::DIR_ENTRY, name, true);
    tag(list, ids::FILE_MTIME, AttrType::UInt, 3, false);
    list.extend_from_slice(&secs.to_be_bytes());
    tag(list, ids::FILE_MTIME_NANOS, AttrType::UInt, 2, false);
    list.extend_from_slice(&nanos.to_be_bytes());
    list.push(0);
}

#[test]
fn modification_times_keep_seconds_and_nanoseconds_within_range() {
    let mut list = Vec::new();
    timed_entry(&mut list, b"epoch", 0, 5);
    timed_entry(&mut list, b"now", 1_765_000_000, 999_999_999);
    timed_entry(&mut list, b"last", (1 << 33) - 1, 1);
    timed_entry(&mut list, b"far", 1 << 40, 7);
    timed_entry(&mut list, b"max", u64::MAX, 0);
    list.push(0);
    for pkg in both(&SectionParts::new(list)) {
        let toc = pkg.toc();
        let mtime = |name: &[u8]| toc.entry(toc.lookup(None, name).unwrap()).mtime();
        assert_eq!(mtime(b"epoch"), (0, 5));
        assert_eq!(mtime(b"now"), (1_765_000_000, 999_999_999));
        assert_eq!(mtime(b"last"), ((1 << 33) - 1, 1));
        // Beyond the year 2242: the last second kept, as ext4 clamps.
        assert_eq!(mtime(b"far"), ((1 << 33) - 1, 7));
        assert_eq!(mtime(b"max"), ((1 << 33) - 1, 0));
    }
}

#[test]
fn string_table_names_are_shared_not_copied() {
    // a { lib }, b { lib } with `lib` from the string table; `x` inline.
    let mut list = Vec::new();
    for dir in [b"a", b"b"] {
        dir_entry(&mut list, dir);
        tag(&mut list, ids::DIR_ENTRY, AttrType::String, 1, false);
        list.push(0);
        list.push(0);
    }
    str_attr(&mut list, ids::DIR_ENTRY, b"x", false);
    list.push(0);
    let toc = SectionParts {
        strings: vec![b"lib".to_vec()],
        list,
    };
    for pkg in both(&toc) {
        let toc = pkg.toc();
        for dir in [b"a", b"b"] {
            let d = toc.lookup(None, dir).unwrap();
            assert_eq!(toc.children(Some(d)).count(), 1);
            assert!(toc.lookup(Some(d), b"lib").is_some());
        }
        assert!(toc.lookup(None, b"x").is_some());
        // The table ("lib\0" and its closing "\0") once, then "a\0",
        // "b\0" and "x\0".
        assert_eq!(toc.string_bytes(), 5 + 6);
    }
}
