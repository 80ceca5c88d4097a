//! The HPKR reader against Haiku-built repository indexes: package counts,
//! known packages, and the invariants Haiku's repository builder enforces.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hpkg_format::{sniff, Architecture, Error, FileKind, Repository};

fn fixture(name: &str) -> PathBuf {
    std::env::var_os("PACKAGEFS_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"))
        .join(name)
}

/// Counts and names were cross-checked with an independent Python walk of
/// the decompressed heap (top-level `package` attributes).
#[test]
fn golden_repositories() {
    let cases = [
        (
            "haiku/repo.hpkr",
            235,
            Architecture::X86,
            [("apr", "1.4.6-7"), ("apr_source", "1.4.6-7")],
        ),
        (
            "haiku/sample-repo.hpkr",
            2333,
            Architecture::X86_64,
            [("2048", "1.0.0-3"), ("a52dec", "0.7.4-5")],
        ),
    ];
    for (name, count, arch, known) in cases {
        let path = fixture(name);
        assert_eq!(sniff(&path).unwrap(), FileKind::Repository);
        let repo = Repository::open(&path).unwrap();
        assert_eq!(repo.packages.len(), count, "{name}");
        assert_eq!(repo.info.name, "HaikuPorts");
        assert_eq!(repo.info.vendor, "Haiku Project");
        assert_eq!(repo.info.architecture, arch);
        assert_eq!(repo.info.priority, 1);
        assert!(repo.info.identifier.starts_with("http://"));
        // Legacy blobs have only `url`; Haiku derives the base URL from it.
        assert_eq!(repo.info.base_url.as_deref(), Some(&*repo.info.identifier));
        assert!(repo.info.licenses.is_empty());
        for (pkg, version) in known {
            let p = repo
                .package(pkg)
                .unwrap_or_else(|| panic!("{name}: no {pkg}"));
            assert_eq!(p.version.to_string(), version, "{name}: {pkg}");
        }

        let mut names = HashSet::new();
        for p in &repo.packages {
            assert!(!p.name.is_empty() && !p.version.major.is_empty(), "{p:?}");
            assert!(
                names.insert(&p.name),
                "{name}: duplicate package {}",
                p.name
            );
            assert!(
                p.architecture == arch
                    || matches!(p.architecture, Architecture::Any | Architecture::Source),
                "{name}: {} is {}",
                p.name,
                p.architecture
            );
            assert!(
                p.vendor.eq_ignore_ascii_case(&repo.info.vendor),
                "{name}: {} has vendor {:?}",
                p.name,
                p.vendor
            );
            let sum = p.checksum.as_deref().unwrap_or_default();
            assert!(
                sum.len() == 64 && sum.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
                "{name}: {} checksum {sum:?}",
                p.name
            );
            assert!(
                !p.provides.is_empty(),
                "{name}: {} provides nothing",
                p.name
            );
        }
    }
}

#[test]
fn packages_are_sniffed_too() {
    let p = fixture("haiku/tipster-1.1.1-1-x86_64.hpkg");
    assert_eq!(sniff(&p).unwrap(), FileKind::Package);
    let e = Repository::open(&p).unwrap_err();
    assert!(matches!(e.root(), Error::BadMagic { .. }), "{e}");
    assert!(
        e.to_string().contains("tipster"),
        "error names the file: {e}"
    );
}

fn open_bytes(bytes: Vec<u8>) -> Result<Repository, Error> {
    Repository::from_source(Arc::new(bytes))
}

#[test]
fn hostile_headers_and_truncation() {
    let good = std::fs::read(fixture("haiku/repo.hpkr")).unwrap();
    assert!(open_bytes(good.clone()).is_ok());
    // Every truncation is an error, never a panic.
    for n in (0..good.len()).step_by(97).chain([71, 72, good.len() - 1]) {
        assert!(open_bytes(good[..n].to_vec()).is_err(), "prefix {n}");
    }
    let patch = |at: usize, value: &[u8]| {
        let mut b = good.clone();
        b[at..at + value.len()].copy_from_slice(value);
        open_bytes(b)
    };
    // info_length over the 1 MiB cap.
    assert!(matches!(
        patch(40, &(2u32 << 20).to_be_bytes()),
        Err(Error::LimitExceeded { .. })
    ));
    // packages_length over the 64 MiB cap, then larger than the heap.
    assert!(matches!(
        patch(48, &(65u64 << 20).to_be_bytes()),
        Err(Error::LimitExceeded { .. })
    ));
    assert!(matches!(
        patch(48, &(1u64 << 20).to_be_bytes()),
        Err(Error::BadHeader(_))
    ));
    // An info blob cut one byte short: the message no longer parses.
    let info_len = u32::from_be_bytes(good[40..44].try_into().unwrap());
    assert!(matches!(
        patch(40, &(info_len - 1).to_be_bytes()),
        Err(Error::Truncated { .. } | Error::Corrupt { .. })
    ));
    // Wrong string count for the packages section.
    assert!(patch(64, &0u64.to_be_bytes()).is_err());
    // Version 1 and unknown versions.
    assert!(matches!(
        patch(6, &1u16.to_be_bytes()),
        Err(Error::Version1)
    ));
    assert!(matches!(
        patch(6, &3u16.to_be_bytes()),
        Err(Error::UnsupportedVersion(3))
    ));
    // Flipping bytes yields an error or a repository, never a panic: every
    // header byte, the tail (the last, raw-stored chunk holding the end of
    // the packages section, and the chunk table), and a sample elsewhere.
    let tail = good.len() - 256;
    for at in (0..72)
        .chain((72..tail).step_by(997))
        .chain(tail..good.len())
    {
        let mut b = good.clone();
        b[at] ^= 0x5a;
        let _ = open_bytes(b);
    }
}

/// Build an uncompressed HPKR around `info` and a packages attribute list.
fn build_hpkr(info: &[u8], attrs: &[u8]) -> Vec<u8> {
    let mut section = vec![0u8]; // empty string table
    section.extend_from_slice(attrs);
    let heap_len = (info.len() + section.len()) as u64;
    let mut out = Vec::new();
    out.extend_from_slice(b"hpkr");
    out.extend_from_slice(&72u16.to_be_bytes());
    out.extend_from_slice(&2u16.to_be_bytes());
    out.extend_from_slice(&(72 + heap_len).to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes()); // minor
    out.extend_from_slice(&0u16.to_be_bytes()); // no compression
    out.extend_from_slice(&65536u32.to_be_bytes());
    out.extend_from_slice(&heap_len.to_be_bytes());
    out.extend_from_slice(&heap_len.to_be_bytes());
    out.extend_from_slice(&(info.len() as u32).to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&(section.len() as u64).to_be_bytes());
    out.extend_from_slice(&1u64.to_be_bytes()); // strings length
    out.extend_from_slice(&0u64.to_be_bytes()); // strings count
    out.extend_from_slice(info);
    out.extend_from_slice(&section);
    out
}

fn string_attr(out: &mut Vec<u8>, id: u8, value: &str, children: bool) {
    use hpkg_format::attr::{encode_tag, write_uleb128};
    use hpkg_format::ids::AttrType;
    write_uleb128(out, encode_tag(id, AttrType::String, 0, children));
    out.extend_from_slice(value.as_bytes());
    out.push(0);
}

#[test]
fn hand_built_repository() {
    use hpkg_format::{ids, RepoLicense, RepositoryInfo};
    let info = RepositoryInfo {
        name: "Test".into(),
        identifier: "tag:example.com,2026:test".into(),
        base_url: Some("https://example.com/repo".into()),
        vendor: "Vendor".into(),
        summary: "A test repository".into(),
        priority: 7,
        architecture: Architecture::Riscv64,
        licenses: vec![RepoLicense {
            name: "EULA".into(),
            text: "Be nice.".into(),
        }],
    };
    let blob = info.to_message().unwrap().flatten().unwrap();

    let package = |name: &str, inner_name: Option<&str>| {
        let mut a = Vec::new();
        string_attr(&mut a, ids::PACKAGE, name, true);
        if let Some(n) = inner_name {
            string_attr(&mut a, ids::PACKAGE_NAME, n, false);
        }
        string_attr(&mut a, ids::PACKAGE_VENDOR, "vendor", false);
        string_attr(&mut a, ids::VERSION_MAJOR, "2", false);
        a.push(0);
        a
    };
    let mut attrs = package("one", Some("one"));
    attrs.extend(package("two", None));
    attrs.push(0);
    let repo = open_bytes(build_hpkr(&blob, &attrs)).unwrap();
    assert_eq!(repo.info, info);
    assert_eq!(repo.minor_version, 1);
    let names: Vec<_> = repo.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["one", "two"]);
    assert_eq!(repo.packages[1].version.to_string(), "2");

    // The package attribute and its package:name disagree.
    let mut bad = package("one", Some("other"));
    bad.push(0);
    assert!(matches!(
        open_bytes(build_hpkr(&blob, &bad)),
        Err(Error::Corrupt { .. })
    ));
    // A package attribute at the top level of the packages section.
    let mut bad = Vec::new();
    string_attr(&mut bad, ids::PACKAGE_NAME, "loose", false);
    bad.push(0);
    assert!(matches!(
        open_bytes(build_hpkr(&blob, &bad)),
        Err(Error::Corrupt { .. })
    ));
    // An info blob without the architecture.
    let mut m = info.to_message().unwrap();
    m.fields.retain(|f| f.name != "architecture");
    assert!(matches!(
        open_bytes(build_hpkr(&m.flatten().unwrap(), &attrs)),
        Err(Error::Corrupt { .. })
    ));
}
