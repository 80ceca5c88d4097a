//! Writing an `.hpkr` repository index (spec §12): a 72-byte header, then a
//! heap holding the repository-info blob (a flattened `BMessage`) followed by
//! the packages section, whose top level has one `package` attribute per
//! package with that package's attributes (spec §9.6 order, `package:name`
//! first and `package:checksum` included) as children.
//!
//! The mirror image of [`crate::repo::Repository`]: what is written here
//! reads back through it to the same [`RepositoryInfo`] and the same
//! [`PackageInfo`]s, in the same order.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use zerocopy::byteorder::{U16, U32, U64};
use zerocopy::IntoBytes;

use crate::error::{Error, Result};
use crate::header::{
    HpkrHeader, FORMAT_VERSION, HPKR_HEADER_SIZE, HPKR_MAGIC, MAX_INFO_LENGTH, MAX_PACKAGES_LENGTH,
};
use crate::heap::CHUNK_SIZE;
use crate::ids;
use crate::info::PackageInfo;
use crate::repo::RepositoryInfo;

use super::heap::HeapWriter;
use super::package_attrs;
use super::section::{self, Node};
use super::WriteOptions;

/// Write the index of `packages` described by `info` to `out`, atomically
/// (a temporary file beside `out` renamed over it). Returns the size of the
/// file written.
///
/// Refused with [`Error::InvalidInfo`]: two packages of the same name, a
/// package without a checksum, or a checksum that is not 64 lowercase hex
/// digits (the SHA-256 of the package file, spec §12.2), and anything a
/// package read back from a file could not be written with (no name, a NUL
/// byte). The compression and level come from `opts` (Haiku's repository
/// writer uses zlib).
pub fn write_repository(
    info: &RepositoryInfo,
    packages: &[PackageInfo],
    out: &Path,
    opts: &WriteOptions,
) -> Result<u64> {
    let blob = info.to_message()?.flatten()?;
    let section = section::encode(&package_list(packages)?, "repository packages")?;
    for (what, value, limit) in [
        ("repository info length", blob.len() as u64, MAX_INFO_LENGTH),
        (
            "packages section length",
            section.bytes.len() as u64,
            MAX_PACKAGES_LENGTH,
        ),
    ] {
        if value > limit {
            return Err(Error::LimitExceeded { what, value, limit });
        }
    }
    super::persist_atomically(out, ".hpkr-", |file| encode(file, &blob, &section, opts))
}

/// The top-level `package` attributes, checked.
fn package_list(packages: &[PackageInfo]) -> Result<Vec<Node>> {
    let mut seen = HashSet::new();
    let mut list = Vec::with_capacity(packages.len());
    for p in packages {
        package_attrs::check_encodable(p)?;
        if !seen.insert(p.name.as_str()) {
            return Err(Error::InvalidInfo(format!(
                "package {:?} is listed twice in the repository",
                p.name
            )));
        }
        match p.checksum.as_deref() {
            Some(c) if is_sha256_hex(c) => {}
            Some(c) => {
                return Err(Error::InvalidInfo(format!(
                    "checksum {c:?} of package {:?} is not a SHA-256 in lowercase hex",
                    p.name
                )))
            }
            None => {
                return Err(Error::InvalidInfo(format!(
                    "package {:?} has no checksum",
                    p.name
                )))
            }
        }
        let mut node = Node::string(ids::PACKAGE, p.name.as_str());
        node.children = package_attrs::attributes(p);
        list.push(node);
    }
    Ok(list)
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Header placeholder, heap (info blob, then packages section), then the
/// real header at offset 0. Returns the file size.
fn encode(
    file: &File,
    blob: &[u8],
    section: &section::Encoded,
    opts: &WriteOptions,
) -> Result<u64> {
    let mut out = BufWriter::with_capacity(CHUNK_SIZE, file);
    out.write_all(&[0u8; HPKR_HEADER_SIZE])?;
    let mut heap = HeapWriter::new(out, opts.compression, opts.level);
    heap.write(blob)?;
    heap.write(&section.bytes)?;
    let (mut out, sizes) = heap.finish()?;
    out.flush()?;
    drop(out);
    let total = HPKR_HEADER_SIZE as u64 + sizes.compressed;
    let header = HpkrHeader {
        magic: HPKR_MAGIC,
        header_size: U16::new(HPKR_HEADER_SIZE as u16),
        version: U16::new(FORMAT_VERSION),
        total_size: U64::new(total),
        minor_version: U16::new(ids::READER_MINOR_VERSION),
        heap_compression: U16::new(opts.compression as u16),
        heap_chunk_size: U32::new(CHUNK_SIZE as u32),
        heap_size_compressed: U64::new(sizes.compressed),
        heap_size_uncompressed: U64::new(sizes.uncompressed),
        // Both lengths were checked against their (32-bit sized) caps.
        info_length: U32::new(blob.len() as u32),
        reserved1: U32::new(0),
        packages_length: U64::new(section.bytes.len() as u64),
        packages_strings_length: U64::new(section.strings_length),
        packages_strings_count: U64::new(section.strings_count),
    };
    file.write_all_at(header.as_bytes(), 0)?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Compression;
    use crate::info::{Architecture, Provides, Requirement};
    use crate::repo::{RepoLicense, Repository};
    use crate::version::{Operator, Version};

    fn info() -> RepositoryInfo {
        RepositoryInfo {
            name: "test".into(),
            identifier: "https://example.invalid/test".into(),
            base_url: Some("https://example.invalid/test".into()),
            vendor: "Vendor".into(),
            summary: "A test repository".into(),
            priority: 3,
            architecture: Architecture::X86_64,
            licenses: vec![RepoLicense {
                name: "EULA".into(),
                text: "Be nice.".into(),
            }],
        }
    }

    fn package(name: &str, version: &str, n: u8) -> PackageInfo {
        PackageInfo {
            name: name.into(),
            summary: format!("{name} summary"),
            description: "d".into(),
            vendor: "Vendor".into(),
            packager: "p".into(),
            architecture: Architecture::X86_64,
            version: Version::parse(version).unwrap(),
            copyrights: vec!["c".into()],
            licenses: vec!["MIT".into()],
            provides: vec![
                Provides {
                    name: name.into(),
                    version: Some(Version::parse(version).unwrap()),
                    compatible: None,
                },
                Provides {
                    name: format!("lib:lib{name}"),
                    version: Some(Version::parse("1.0").unwrap()),
                    compatible: Some(Version::parse("1").unwrap()),
                },
            ],
            requires: vec![Requirement {
                name: "base".into(),
                operator: Some(Operator::GreaterEqual),
                version: Some(Version::parse("1.2").unwrap()),
            }],
            conflicts: vec![Requirement {
                name: "other".into(),
                operator: None,
                version: None,
            }],
            checksum: Some(format!("{n:02x}").repeat(32)),
            ..PackageInfo::default()
        }
    }

    /// Every field of the info and of each package reads back unchanged,
    /// in every compression, including a packages section longer than one
    /// heap chunk.
    #[test]
    fn reads_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let packages: Vec<_> = (0..400u32)
            .map(|i| package(&format!("pkg{i}"), &format!("1.{i}-{}", i % 7 + 1), i as u8))
            .collect();
        for compression in [Compression::None, Compression::Zlib, Compression::Zstd] {
            let out = dir.path().join(format!("repo-{compression:?}"));
            let opts = WriteOptions {
                compression,
                ..WriteOptions::default()
            };
            let size = write_repository(&info(), &packages, &out, &opts).unwrap();
            assert_eq!(size, std::fs::metadata(&out).unwrap().len());
            let repo = Repository::open(&out).unwrap();
            assert_eq!(repo.info, info());
            assert_eq!(repo.packages, packages);
            assert_eq!(repo.compression, compression);
            assert_eq!(repo.file_size, size);
        }
    }

    /// HaikuPorts' own index, rewritten, reads back to the same content.
    #[test]
    fn golden_repositories_rewrite_to_the_same_content() {
        let fixtures = std::env::var_os("PACKAGEFS_FIXTURES")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"));
        let dir = tempfile::tempdir().unwrap();
        for name in ["repo.hpkr", "sample-repo.hpkr"] {
            let golden = Repository::open(&fixtures.join("haiku").join(name)).unwrap();
            let out = dir.path().join(name);
            let opts = WriteOptions {
                compression: golden.compression,
                ..WriteOptions::default()
            };
            write_repository(&golden.info, &golden.packages, &out, &opts).unwrap();
            let again = Repository::open(&out).unwrap();
            assert_eq!(again.info, golden.info, "{name}");
            assert_eq!(again.packages, golden.packages, "{name}");
        }
    }

    #[test]
    fn an_empty_repository_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("repo");
        write_repository(&info(), &[], &out, &WriteOptions::default()).unwrap();
        assert!(Repository::open(&out).unwrap().packages.is_empty());
    }

    #[test]
    fn duplicates_and_bad_checksums_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("repo");
        let opts = WriteOptions::default();
        let twice = [package("a", "1", 1), package("a", "2", 2)];
        let mut unsummed = package("b", "1", 1);
        unsummed.checksum = None;
        let mut upper = package("c", "1", 1);
        upper.checksum = Some("AB".repeat(32));
        for bad in [&twice[..], &[unsummed], &[upper]] {
            match write_repository(&info(), bad, &out, &opts) {
                Err(Error::InvalidInfo(_)) => {}
                other => panic!("{other:?}"),
            }
        }
        assert!(!out.exists(), "nothing is written on refusal");
    }
}
