//! The writer against Haiku's own packages: trees unpacked from the fixture
//! tarballs must give packages that list exactly like the golden ones, carry
//! the same metadata, and — where entry order allows — the same bytes.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{
    assert_listing_eq, decode, expected, fixtures, hex, listing, sort_entries, unpack_source_tree,
    Attr, RawPackage,
};
use hpkg_format::{
    create_from_dir, rewrite, Compression, EntryKind, Error, NoCache, Package, PackageInfo,
    WriteOptions,
};

const TREES: [&str; 3] = ["minimal", "metadata", "nested"];
const COMPRESSIONS: [Compression; 3] = [Compression::Zstd, Compression::Zlib, Compression::None];

fn golden(name: &str) -> PathBuf {
    fixtures().join(format!("haiku-tool/{name}-zstd.hpkg"))
}

fn golden_info(name: &str) -> PackageInfo {
    Package::open(golden(name)).unwrap().info().clone()
}

fn opts(compression: Compression) -> WriteOptions {
    WriteOptions {
        compression,
        ..WriteOptions::default()
    }
}

/// Create a package from `dir`, collecting warnings.
fn create(dir: &Path, info: &PackageInfo, out: &Path, o: &WriteOptions) -> Vec<String> {
    let mut warnings = Vec::new();
    create_from_dir(dir, info, out, o, &mut |w| warnings.push(w.to_string()))
        .unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    warnings
}

/// Everything a rewrite must keep, per entry path: kind, mode, mtime,
/// content hash, link target, and every attribute (name, type, size, hash)
/// in order — including those over 64 KiB.
fn full_listing(pkg: &Package) -> BTreeMap<String, String> {
    let toc = pkg.toc();
    let mut out = BTreeMap::new();
    let mut order = 0u32;
    toc.walk(|path, id| {
        let e = toc.entry(id);
        let data = match e.kind() {
            EntryKind::File => hex(&pkg.data_to_vec(toc.data(id), &NoCache).unwrap()),
            _ => String::new(),
        };
        let attrs: Vec<String> = toc
            .attrs(id)
            .iter()
            .map(|a| {
                format!(
                    "{}:{:08x}:{}:{}",
                    String::from_utf8_lossy(toc.attr_name(a)),
                    a.type_code(),
                    a.size(),
                    hex(&pkg.data_to_vec(toc.attr_data(a), &NoCache).unwrap())
                )
            })
            .collect();
        out.insert(
            String::from_utf8_lossy(path).into_owned(),
            format!(
                "#{order} {} {:o} {:?} {} {:?} [{}]",
                e.kind().name(),
                e.mode(),
                e.mtime(),
                data,
                String::from_utf8_lossy(toc.symlink_target(id)),
                attrs.join(", ")
            ),
        );
        order += 1;
    });
    out
}

#[test]
fn created_packages_list_like_haikus() {
    let tmp = tempfile::tempdir().unwrap();
    for name in TREES {
        let root = unpack_source_tree(name, tmp.path());
        let info = golden_info(name);
        let want = expected(&golden(name).with_extension("expected.jsonl"));
        for c in COMPRESSIONS {
            let out = tmp.path().join(format!("{name}-{c}.hpkg"));
            let warnings = create(&root, &info, &out, &opts(c));
            assert!(warnings.is_empty(), "{name}: {warnings:?}");
            let pkg = Package::open(&out).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(pkg.heap().compression(), c);
            assert_eq!(pkg.minor_version(), 1);
            assert_listing_eq(&format!("{name} {c}"), &listing(&pkg), &want);
            assert_eq!(pkg.info(), &info, "{name} {c}: package info");
            // Every entry keeps the tree's modification time.
            let toc = pkg.toc();
            toc.walk(|path, id| {
                let fs_path = root.join(String::from_utf8_lossy(path).as_ref());
                let meta = fs::symlink_metadata(&fs_path).unwrap();
                let mtime = std::os::unix::fs::MetadataExt::mtime(&meta);
                assert_eq!(toc.entry(id).mtime(), (mtime, 0), "{}", fs_path.display());
            });
        }
    }
}

#[test]
fn creation_is_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let root = unpack_source_tree("nested", tmp.path());
    let info = golden_info("nested");
    for c in COMPRESSIONS {
        let a = tmp.path().join("a.hpkg");
        let b = tmp.path().join("b.hpkg");
        create(&root, &info, &a, &opts(c));
        // Reading the tree (atime) and touching the top directory change
        // nothing in the output.
        let top = fs::File::open(&root).unwrap();
        top.set_modified(std::time::SystemTime::now()).unwrap();
        create(&root, &info, &b, &opts(c));
        assert!(
            fs::read(&a).unwrap() == fs::read(&b).unwrap(),
            "{c}: two builds differ"
        );
    }
}

#[test]
fn source_date_epoch_clamps_times() {
    let tmp = tempfile::tempdir().unwrap();
    let root = unpack_source_tree("nested", tmp.path());
    let info = golden_info("nested");
    let epoch = 1_000_000_000i64;
    let out = tmp.path().join("clamped.hpkg");
    let o = WriteOptions {
        source_date_epoch: Some(epoch),
        ..WriteOptions::default()
    };
    create(&root, &info, &out, &o);
    let pkg = Package::open(&out).unwrap();
    let mut n = 0;
    pkg.toc().walk(|_, id| {
        assert_eq!(pkg.toc().entry(id).mtime(), (epoch, 0));
        n += 1;
    });
    assert!(n > 50);
    // An older epoch than every time would leave them alone: the tree's
    // times are from 2026, so a later epoch keeps them.
    let later = WriteOptions {
        source_date_epoch: Some(4_000_000_000),
        ..WriteOptions::default()
    };
    let out2 = tmp.path().join("later.hpkg");
    create(&root, &info, &out2, &later);
    let plain = tmp.path().join("plain.hpkg");
    create(&root, &info, &plain, &WriteOptions::default());
    assert_eq!(fs::read(&out2).unwrap(), fs::read(&plain).unwrap());
    // from_env reads the variable (only this test touches it).
    std::env::set_var("SOURCE_DATE_EPOCH", "12345");
    let from_env = WriteOptions::default().from_env();
    std::env::set_var("SOURCE_DATE_EPOCH", "not a number");
    let invalid = WriteOptions::default().from_env();
    std::env::remove_var("SOURCE_DATE_EPOCH");
    assert_eq!(from_env.source_date_epoch, Some(12345));
    assert_eq!(invalid.source_date_epoch, None);
    assert_eq!(WriteOptions::default().from_env().source_date_epoch, None);
}

#[test]
fn rewrite_keeps_every_entry_and_attribute() {
    let tmp = tempfile::tempdir().unwrap();
    let src_path = fixtures().join("haiku-tool/nested-zstd.hpkg");
    let src = Package::open(&src_path).unwrap();
    let want = full_listing(&src);
    // The 100 000-byte attribute is there to be kept.
    let big: Vec<_> = want
        .values()
        .filter(|v| v.contains("ref:big:52415754:100000:"))
        .collect();
    assert_eq!(big.len(), 1, "fixture lost its big attribute");
    for c in COMPRESSIONS {
        let out = tmp.path().join(format!("nested-{c}.hpkg"));
        let stats = rewrite(&src, &out, &opts(c)).unwrap();
        let pkg = Package::open(&out).unwrap();
        assert_eq!(pkg.heap().compression(), c);
        assert_eq!(full_listing(&pkg), want, "{c}");
        assert_eq!(pkg.info(), src.info(), "{c}");
        assert_eq!(stats.entries, src.toc().len() as u64);
        assert_eq!(stats.heap_size, src.heap().size(), "{c}: same heap size");
        assert_eq!(stats.file_size, fs::metadata(&out).unwrap().len());
        // A rewrite of the rewrite is byte-identical.
        let again = tmp.path().join(format!("again-{c}.hpkg"));
        rewrite(&pkg, &again, &opts(c)).unwrap();
        assert_eq!(fs::read(&out).unwrap(), fs::read(&again).unwrap(), "{c}");
    }
}

#[test]
fn rewrite_in_place_replaces_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("nested.hpkg");
    fs::copy(fixtures().join("haiku-tool/nested-zstd.hpkg"), &path).unwrap();
    let before = full_listing(&Package::open(&path).unwrap());
    let pkg = Package::open(&path).unwrap();
    rewrite(&pkg, &path, &opts(Compression::None)).unwrap();
    // The old package still reads from its (now unlinked) file.
    assert_eq!(full_listing(&pkg), before);
    let after = Package::open(&path).unwrap();
    assert_eq!(after.heap().compression(), Compression::None);
    assert_eq!(full_listing(&after), before);
    let leftovers: Vec<_> = fs::read_dir(tmp.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "temporary files left behind");
}

/// The attribute section of `raw`, decoded.
fn attrs_tree(raw: &RawPackage) -> Vec<Attr> {
    decode(&raw.attrs, &raw.heap)
}

#[test]
fn minimal_is_byte_identical_to_haikus() {
    let tmp = tempfile::tempdir().unwrap();
    let root = unpack_source_tree("minimal", tmp.path());
    let out = tmp.path().join("minimal.hpkg");
    create(
        &root,
        &golden_info("minimal"),
        &out,
        &opts(Compression::Zstd),
    );
    let ours = RawPackage::open(&out);
    let theirs = RawPackage::open(&golden("minimal"));
    // The whole uncompressed heap: file data, TOC and package attributes.
    assert!(ours.heap == theirs.heap, "uncompressed heaps differ");
    let (h, g) = (&ours.header, &theirs.header);
    assert_eq!(h.magic, g.magic);
    assert_eq!(h.header_size.get(), g.header_size.get());
    assert_eq!(h.version.get(), g.version.get());
    assert_eq!(h.minor_version.get(), g.minor_version.get());
    assert_eq!(h.heap_compression.get(), g.heap_compression.get());
    assert_eq!(h.heap_chunk_size.get(), g.heap_chunk_size.get());
    assert_eq!(
        h.heap_size_uncompressed.get(),
        g.heap_size_uncompressed.get()
    );
    assert_eq!(h.toc_length.get(), g.toc_length.get());
    assert_eq!(h.toc_strings_length.get(), g.toc_strings_length.get());
    assert_eq!(h.toc_strings_count.get(), g.toc_strings_count.get());
    assert_eq!(h.attributes_length.get(), g.attributes_length.get());
    assert_eq!(
        h.attributes_strings_length.get(),
        g.attributes_strings_length.get()
    );
    assert_eq!(
        h.attributes_strings_count.get(),
        g.attributes_strings_count.get()
    );
    // Haiku leaves reserved1 uninitialised; ours is 0.
    assert_eq!(h.reserved1.get(), 0);
}

#[test]
fn metadata_matches_haiku_but_for_entry_and_string_order() {
    let tmp = tempfile::tempdir().unwrap();
    let root = unpack_source_tree("metadata", tmp.path());
    let out = tmp.path().join("metadata.hpkg");
    create(
        &root,
        &golden_info("metadata"),
        &out,
        &opts(Compression::Zstd),
    );
    let ours = RawPackage::open(&out);
    let theirs = RawPackage::open(&golden("metadata"));

    // Package attributes: the same attributes, values, integer widths and
    // inline/table choices, in the same order ...
    assert_eq!(attrs_tree(&ours), attrs_tree(&theirs));
    // ... and the same string table, but for the order of strings used
    // equally often (Haiku orders those by hash-table iteration).
    let table = |r: &RawPackage| {
        RawPackage::strings(
            &r.attrs,
            u64::from(r.header.attributes_strings_length.get()),
        )
    };
    let (mut a, mut b) = (table(&ours), table(&theirs));
    assert_eq!(
        a,
        [
            "3",
            "1",
            "14",
            "159",
            "0",
            "ref_metadata",
            "2",
            "beta2",
            "ref_base",
            "refgroup"
        ]
    );
    assert_eq!(
        b,
        [
            "3",
            "1",
            "14",
            "159",
            "ref_metadata",
            "0",
            "ref_base",
            "refgroup",
            "beta2",
            "2"
        ]
    );
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert_eq!(ours.attrs.bytes.len(), theirs.attrs.bytes.len());

    // TOC: the same entries with the same attributes and widths once every
    // directory's entries are put in one order (Haiku's follow readdir on
    // the build host; ours are sorted) and data is compared by content.
    assert_eq!(
        sort_entries(decode(&ours.toc, &ours.heap)),
        sort_entries(decode(&theirs.toc, &theirs.heap))
    );
    // The file data are the same bytes in another order, so only the heap
    // offsets (LEB128, 1–3 bytes here) can make the TOCs differ in length.
    let payloads = |r: &RawPackage| {
        let mut v = r.heap[..r.toc_offset()].to_vec();
        v.sort_unstable();
        v
    };
    assert_eq!(payloads(&ours), payloads(&theirs));
}

#[test]
fn rewriting_haikus_packages_keeps_their_toc_bytes() {
    // With Haiku's own entry order, the TOC comes out byte for byte, and so
    // does every payload; the package attributes differ only in string order.
    let tmp = tempfile::tempdir().unwrap();
    for name in ["minimal", "metadata", "nested", "bigfile"] {
        let src = Package::open(golden(name)).unwrap();
        let out = tmp.path().join(format!("{name}.hpkg"));
        rewrite(&src, &out, &opts(Compression::Zstd)).unwrap();
        let ours = RawPackage::open(&out);
        let theirs = RawPackage::open(&golden(name));
        assert!(
            ours.toc.bytes == theirs.toc.bytes,
            "{name}: TOC bytes differ"
        );
        assert!(
            ours.heap[..ours.toc_offset()] == theirs.heap[..theirs.toc_offset()],
            "{name}: payloads differ"
        );
        assert_eq!(attrs_tree(&ours), attrs_tree(&theirs), "{name}: attributes");
        // Where no two table strings are used equally often, the string
        // table order is Haiku's too and the whole heap is identical.
        let identical = ours.heap == theirs.heap;
        assert_eq!(
            identical,
            ["minimal", "nested"].contains(&name),
            "{name}: whole heap"
        );
    }
}

#[test]
fn attribute_types_are_recovered_where_the_bytes_tell() {
    let tmp = tempfile::tempdir().unwrap();
    let root = unpack_source_tree("nested", tmp.path());
    let out = tmp.path().join("nested.hpkg");
    create(
        &root,
        &golden_info("nested"),
        &out,
        &WriteOptions::default(),
    );
    let types = |pkg: &Package| {
        let toc = pkg.toc();
        let mut m = BTreeMap::new();
        toc.walk(|path, id| {
            for a in toc.attrs(id) {
                let code = a.type_code().to_be_bytes();
                m.insert(
                    format!(
                        "{}@{}",
                        String::from_utf8_lossy(toc.attr_name(a)),
                        String::from_utf8_lossy(path)
                    ),
                    String::from_utf8_lossy(&code).into_owned(),
                );
            }
        });
        m
    };
    let ours = types(&Package::open(&out).unwrap());
    let mut theirs = types(&Package::open(golden("nested")).unwrap());
    // Not in the tar: over Linux's 64 KiB limit.
    assert_eq!(
        theirs.remove("ref:big@attrs/big_attr.txt").as_deref(),
        Some("RAWT")
    );
    let lost: BTreeMap<_, _> = theirs
        .iter()
        .filter(|(k, v)| ours.get(*k) != Some(v))
        .map(|(k, v)| (k.as_str(), (v.as_str(), ours[k].as_str())))
        .collect();
    // Integers and booleans look like any other bytes.
    let want: BTreeMap<&str, (&str, &str)> = [
        ("ref:bool@attrs/with_attrs.txt", ("BOOL", "RAWT")),
        ("ref:int32@attrs/with_attrs.txt", ("LONG", "RAWT")),
        ("ref:int64@attrs/with_attrs.txt", ("LLNG", "RAWT")),
    ]
    .into();
    assert_eq!(lost, want);
    assert_eq!(ours.len(), theirs.len());
}

#[test]
fn empty_files_have_no_data_attribute_and_small_ones_are_inline() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    fs::create_dir(&root).unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    fs::write(root.join("eight"), b"12345678").unwrap();
    fs::write(root.join("nine"), b"123456789").unwrap();
    let out = tmp.path().join("t.hpkg");
    create(
        &root,
        &golden_info("minimal"),
        &out,
        &WriteOptions::default(),
    );
    let raw = RawPackage::open(&out);
    let toc = decode(&raw.toc, &raw.heap);
    let data_of = |name: &str| -> Vec<String> {
        toc.iter()
            .find(|a| a.value.ends_with(&format!(":{name}")))
            .unwrap()
            .children
            .iter()
            .filter(|c| c.id == 13)
            .map(|c| c.value.clone())
            .collect()
    };
    assert_eq!(data_of("empty"), Vec::<String>::new());
    assert_eq!(
        data_of("eight"),
        [format!("inline-data:{}", hex_bytes(b"12345678"))]
    );
    assert_eq!(
        data_of("nine"),
        [format!("heap-data:9:{}", hex(b"123456789"))]
    );
    let pkg = Package::open(&out).unwrap();
    assert_listing_eq(
        "small files",
        &listing(&pkg),
        &[
            ("empty", b"".as_slice()),
            ("eight", b"12345678"),
            ("nine", b"123456789"),
        ]
        .into_iter()
        .map(|(n, d)| {
            (
                n.to_string(),
                serde_json::json!({"type": "file", "mode": "644", "size": d.len(),
                    "sha256": hex(d), "link": null}),
            )
        })
        .collect(),
    );
}

fn hex_bytes(b: &[u8]) -> String {
    hex(b)
}

#[test]
fn multi_chunk_files_and_boundaries_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    fs::create_dir(&root).unwrap();
    let mut x = 0x1234_5678_9abc_def1u64;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    let files: Vec<(String, Vec<u8>)> = vec![
        (
            "a_text".into(),
            (0..300_001).map(|i| (i % 251) as u8).collect(),
        ),
        ("b_noise".into(), noise(200_000)),
        ("c_exact".into(), vec![7u8; 65536]),
        ("d_one_more".into(), noise(65537)),
    ];
    for (n, d) in &files {
        fs::write(root.join(n), d).unwrap();
    }
    for c in COMPRESSIONS {
        let out = tmp.path().join(format!("{c}.hpkg"));
        let mut warn = |w: &str| panic!("{w}");
        let stats =
            create_from_dir(&root, &golden_info("minimal"), &out, &opts(c), &mut warn).unwrap();
        assert_eq!(stats.files, 4);
        assert_eq!(stats.entries, 4);
        let pkg = Package::open(&out).unwrap();
        for (n, d) in &files {
            let id = pkg.toc().lookup(None, n.as_bytes()).unwrap();
            assert!(
                pkg.data_to_vec(pkg.toc().data(id), &NoCache).unwrap() == *d,
                "{c} {n}"
            );
        }
        // Every chunk but the last is 64 KiB; incompressible ones are raw.
        let heap = pkg.heap();
        assert_eq!(heap.chunk_count(), heap.size().div_ceil(65536));
        if c != Compression::None {
            let b_start = 300_001u64;
            let first_noise_chunk = b_start.div_ceil(65536);
            assert!(
                heap.is_raw(first_noise_chunk),
                "{c}: noise chunk stored raw"
            );
            assert!(!heap.is_raw(0), "{c}: text chunk compressed");
        }
    }
}

#[test]
fn device_nodes_fifos_and_sockets_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let info = golden_info("minimal");
    for kind in ["fifo", "socket"] {
        let root = tmp.path().join(kind);
        fs::create_dir(&root).unwrap();
        fs::write(root.join("fine"), b"x").unwrap();
        let special = root.join("special");
        let _listener;
        match kind {
            "fifo" => {
                let c = std::ffi::CString::new(special.to_str().unwrap()).unwrap();
                // SAFETY: a valid NUL-terminated path.
                #[allow(unsafe_code)]
                let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
                assert_eq!(rc, 0);
            }
            _ => _listener = std::os::unix::net::UnixListener::bind(&special).unwrap(),
        }
        let out = tmp.path().join(format!("{kind}.hpkg"));
        let err =
            create_from_dir(&root, &info, &out, &WriteOptions::default(), &mut |_| {}).unwrap_err();
        match err.root() {
            Error::Unpackable { path, reason } => {
                assert_eq!(path, &special);
                assert!(reason.contains(if kind == "fifo" { "FIFO" } else { "socket" }));
            }
            other => panic!("{kind}: {other}"),
        }
        assert!(!out.exists());
    }
}

#[test]
fn invalid_info_is_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let root = unpack_source_tree("minimal", tmp.path());
    let out = tmp.path().join("bad.hpkg");
    let mut info = golden_info("minimal");
    info.licenses.clear();
    let err =
        create_from_dir(&root, &info, &out, &WriteOptions::default(), &mut |_| {}).unwrap_err();
    assert!(
        matches!(err.root(), Error::InvalidInfo(m) if m.contains("license")),
        "{err}"
    );
    assert!(!out.exists());
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 1);
}

#[test]
fn a_failed_write_leaves_the_old_package_alone() {
    // A package whose index is sound but whose file data is corrupt opens
    // fine and fails half-way through a rewrite.
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("src").join("broken.hpkg");
    fs::create_dir(broken.parent().unwrap()).unwrap();
    let good = fixtures().join("haiku-tool/nested-zstd.hpkg");
    let mut bytes = fs::read(&good).unwrap();
    {
        // The first compressed chunk, well before the TOC's chunks.
        let heap = Package::open(&good).unwrap();
        let heap = heap.heap();
        let index = (0..heap.chunk_count() - 2)
            .find(|&i| !heap.is_raw(i))
            .expect("a compressed data chunk");
        let (at, len) = heap.stored_range(index);
        for b in &mut bytes[(at + len / 2) as usize..(at + len / 2 + 64) as usize] {
            *b ^= 0x5a;
        }
    }
    fs::write(&broken, &bytes).unwrap();
    let pkg = Package::open(&broken).unwrap();
    let out_dir = tmp.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("p.hpkg");
    fs::write(&out, b"old package").unwrap();
    let err = rewrite(&pkg, &out, &WriteOptions::default()).unwrap_err();
    assert!(
        matches!(&err, Error::InFile { path, source }
            if path == &broken && matches!(**source, Error::BadChunk { .. })),
        "{err}"
    );
    assert_eq!(fs::read(&out).unwrap(), b"old package");
    assert_eq!(
        fs::read_dir(&out_dir).unwrap().count(),
        1,
        "temporary file left"
    );
}

#[test]
fn the_output_inside_the_tree_is_left_out() {
    let tmp = tempfile::tempdir().unwrap();
    let root = unpack_source_tree("minimal", tmp.path());
    let out = root.join("self.hpkg");
    let info = golden_info("minimal");
    create(&root, &info, &out, &WriteOptions::default());
    let first = fs::read(&out).unwrap();
    // Now the package exists inside the tree: a second build skips it.
    let mut warnings = Vec::new();
    let stats = create_from_dir(&root, &info, &out, &WriteOptions::default(), &mut |w| {
        warnings.push(w.to_string())
    })
    .unwrap();
    assert_eq!(stats.skipped, ["self.hpkg"]);
    assert_eq!(warnings.len(), 1);
    assert_eq!(fs::read(&out).unwrap(), first);
    let pkg = Package::open(&out).unwrap();
    assert!(pkg.toc().lookup(None, b"self.hpkg").is_none());
}

#[test]
fn bigfile_tree_round_trips() {
    // There is no source tarball for bigfile: extract the golden package.
    let tmp = tempfile::tempdir().unwrap();
    let src = Package::open(fixtures().join("haiku-tool/bigfile-zstd.hpkg")).unwrap();
    let root = tmp.path().join("bigfile");
    extract(&src, &root);
    let want = expected(&fixtures().join("haiku-tool/bigfile-zstd.expected.jsonl"));
    for c in COMPRESSIONS {
        let out = tmp.path().join(format!("big-{c}.hpkg"));
        let stats = {
            let mut warn = |w: &str| panic!("{w}");
            create_from_dir(&root, src.info(), &out, &opts(c), &mut warn).unwrap()
        };
        let pkg = Package::open(&out).unwrap();
        assert_listing_eq(&format!("bigfile {c}"), &listing(&pkg), &want);
        println!(
            "bigfile {c}: heap {} bytes, file {} bytes ({:.1}%)",
            stats.heap_size,
            stats.file_size,
            100.0 * stats.file_size as f64 / stats.heap_size as f64
        );
    }
}

/// Write the files, directories and symlinks of `pkg` under `dest` (no
/// attributes; enough for trees without them), with the package's modes and
/// times.
fn extract(pkg: &Package, dest: &Path) {
    let toc = pkg.toc();
    fs::create_dir(dest).unwrap();
    let mut dirs = Vec::new();
    toc.walk(|path, id| {
        let p = dest.join(String::from_utf8_lossy(path).as_ref());
        let e = toc.entry(id);
        match e.kind() {
            EntryKind::Directory => {
                fs::create_dir(&p).unwrap();
                dirs.push((p.clone(), id));
            }
            EntryKind::File => {
                fs::write(&p, pkg.data_to_vec(toc.data(id), &NoCache).unwrap()).unwrap();
            }
            EntryKind::Symlink => {
                std::os::unix::fs::symlink(
                    String::from_utf8_lossy(toc.symlink_target(id)).as_ref(),
                    &p,
                )
                .unwrap();
                return;
            }
        }
        fs::set_permissions(&p, fs::Permissions::from_mode(u32::from(e.mode()))).unwrap();
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(e.mtime().0 as u64);
        fs::File::open(&p).unwrap().set_modified(t).unwrap();
    });
    for (p, id) in dirs.into_iter().rev() {
        let t =
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(toc.entry(id).mtime().0 as u64);
        fs::File::open(&p).unwrap().set_modified(t).unwrap();
    }
}

#[test]
fn hard_links_become_files_and_foreign_xattrs_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    fs::create_dir(&root).unwrap();
    let a = root.join("a.txt");
    fs::write(&a, b"shared content, longer than eight").unwrap();
    fs::hard_link(&a, root.join("b.txt")).unwrap();
    xattr::set(&a, "user.note", b"kept\0").unwrap();
    // Root can set trusted.* attributes; they have no Haiku counterpart.
    xattr::set(&a, "trusted.secret", b"dropped").unwrap();
    let out = tmp.path().join("t.hpkg");
    let mut warnings = Vec::new();
    let stats = create_from_dir(
        &root,
        &golden_info("minimal"),
        &out,
        &WriteOptions::default(),
        &mut |w| warnings.push(w.to_string()),
    )
    .unwrap();
    assert_eq!((stats.entries, stats.files), (2, 2));
    // One warning per file name (both names are the same inode).
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].starts_with("a.txt: ") && warnings[0].contains("trusted.secret"));
    let pkg = Package::open(&out).unwrap();
    let toc = pkg.toc();
    let ids: Vec<_> = toc.children(None).collect();
    assert_eq!(ids.len(), 2);
    for id in ids {
        assert_eq!(toc.entry(id).kind(), EntryKind::File);
        assert_eq!(
            pkg.data_to_vec(toc.data(id), &NoCache).unwrap(),
            b"shared content, longer than eight"
        );
        let attrs = toc.attrs(id);
        assert_eq!(attrs.len(), 1);
        assert_eq!(toc.attr_name(&attrs[0]), b"note");
        assert_eq!(attrs[0].type_code(), u32::from_be_bytes(*b"CSTR"));
    }
}

/// A tree built in memory reads back exactly: names, kinds, modes (with the
/// setuid, setgid and sticky bits), times with nanoseconds, symlink targets
/// and contents; and the bytes do not depend on the order entries were added.
#[test]
fn a_tree_built_in_memory_reads_back_exactly() {
    use hpkg_format::{create_from_tree, Timestamp, TreeBuilder};
    let ts = |s: u64, n: u32| Timestamp { secs: s, nanos: n };
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    // (path, kind, mode, time, payload)
    let entries: Vec<(&str, char, u32, Timestamp, Vec<u8>)> = vec![
        ("usr", 'd', 0o755, ts(1_600_000_000, 0), vec![]),
        (
            "usr/bin/passwd",
            'f',
            0o4755,
            ts(1_600_000_001, 5),
            b"suid".to_vec(),
        ),
        (
            "usr/bin/wall",
            'f',
            0o2755,
            ts(1_600_000_002, 0),
            b"sgid".to_vec(),
        ),
        ("tmp", 'd', 0o1777, ts(1_600_000_003, 999_999_999), vec![]),
        (
            "usr/bin/sh",
            'l',
            0o777,
            ts(1_600_000_004, 0),
            b"dash".to_vec(),
        ),
        ("usr/lib/big", 'f', 0o600, ts(0, 0), big.clone()),
        ("usr/lib/empty", 'f', 0o644, ts(7, 0), vec![]),
        ("etc/odd name\u{e9}", 'f', 0o640, ts(8, 1), b"x".to_vec()),
        (".PackageInfo", 'f', 0o644, ts(9, 0), b"info".to_vec()),
        ("a", 'f', 0o644, ts(10, 0), b"first".to_vec()),
    ];
    let build = |order: &mut dyn Iterator<Item = &(&str, char, u32, Timestamp, Vec<u8>)>| {
        let mut t = TreeBuilder::new();
        for (path, kind, mode, time, data) in order {
            match kind {
                'd' => t.add_dir(path.as_bytes(), *mode, *time).unwrap(),
                'f' => t
                    .add_file(path.as_bytes(), *mode, *time, data.clone())
                    .unwrap(),
                _ => t.add_symlink(path.as_bytes(), *mode, *time, data).unwrap(),
            }
        }
        t
    };
    let info = golden_info("minimal");
    let tmp = tempfile::tempdir().unwrap();
    let (one, two) = (tmp.path().join("one.hpkg"), tmp.path().join("two.hpkg"));
    let o = WriteOptions::default();
    create_from_tree(build(&mut entries.iter()), &info, &one, &o).unwrap();
    create_from_tree(build(&mut entries.iter().rev()), &info, &two, &o).unwrap();
    assert_eq!(fs::read(&one).unwrap(), fs::read(&two).unwrap());

    let pkg = Package::open(&one).unwrap();
    assert_eq!(pkg.info(), &info);
    let toc = pkg.toc();
    let mut seen = BTreeMap::new();
    toc.walk(|path, id| {
        let e = toc.entry(id);
        let payload = match e.kind() {
            EntryKind::File => pkg.data_to_vec(toc.data(id), &NoCache).unwrap(),
            EntryKind::Symlink => toc.symlink_target(id).to_vec(),
            EntryKind::Directory => vec![],
        };
        seen.insert(
            String::from_utf8_lossy(path).into_owned(),
            (e.kind(), e.mode(), e.mtime(), payload),
        );
    });
    for (path, kind, mode, time, data) in &entries {
        let (k, m, (secs, nanos), payload) = seen
            .remove(*path)
            .unwrap_or_else(|| panic!("{path} missing"));
        let want = match kind {
            'd' => EntryKind::Directory,
            'f' => EntryKind::File,
            _ => EntryKind::Symlink,
        };
        assert_eq!(k, want, "{path}");
        assert_eq!(u32::from(m), *mode, "{path}");
        assert_eq!((secs as u64, nanos), (time.secs, time.nanos), "{path}");
        assert_eq!(&payload, data, "{path}");
    }
    // Implicit parents: 0755 directories at time 0.
    let implicit: Vec<_> = seen.keys().cloned().collect();
    assert_eq!(implicit, ["etc", "usr/bin", "usr/lib"]);
    for (k, m, t, _) in seen.values() {
        assert_eq!((*k, *m, *t), (EntryKind::Directory, 0o755, (0, 0)));
    }
    // .PackageInfo comes last at the top, as create_from_dir puts it.
    let top: Vec<_> = toc
        .children(None)
        .map(|id| String::from_utf8_lossy(toc.name(id)).into_owned())
        .collect();
    assert_eq!(top.last().map(String::as_str), Some(".PackageInfo"));
}
