//! An opened `.hpkg` file: header, heap, metadata and TOC index, and reads of
//! file and attribute data (`docs/hpkg-format.md` §3, §5, §10, §11).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::attr::{Section, SectionKind};
use crate::error::{Error, Result};
use crate::header::{self, HpkgHeader};
use crate::heap::{ChunkCache, Heap, ReadAt};
use crate::ids;
use crate::info::PackageInfo;
use crate::toc::{Data, EntryId, Toc};

/// An opened package.
#[derive(Debug)]
pub struct Package {
    path: Option<PathBuf>,
    minor_version: u16,
    file_size: u64,
    heap: Heap,
    info: PackageInfo,
    toc: Toc,
}

impl Package {
    /// Open and index a package file. Errors name the file.
    pub fn open(path: impl AsRef<Path>) -> Result<Package> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::Io(e).in_file(path))?;
        let mut pkg = Package::from_source(Arc::new(file)).map_err(|e| e.in_file(path))?;
        pkg.path = Some(path.to_path_buf());
        Ok(pkg)
    }

    /// Index a package from any byte source (a file, a buffer).
    pub fn from_source(source: Arc<dyn ReadAt>) -> Result<Package> {
        Package::parse(source).map(|parsed| parsed.package)
    }

    /// Index a package and keep what an index image needs besides the
    /// package: its header and its package-attributes section.
    pub(crate) fn parse(source: Arc<dyn ReadAt>) -> Result<Parsed> {
        let file_size = source.len()?;
        let (h, geo) = header::read_header::<HpkgHeader>(source.as_ref())?;
        let minor = h.minor_version.get();
        let heap = Heap::open(source, geo)?;
        let size = heap.size();

        let attrs_len = u64::from(h.attributes_length.get());
        let toc_len = h.toc_length.get();
        if attrs_len > size {
            return Err(Error::BadHeader(format!(
                "package attributes of {attrs_len} bytes exceed the heap of {size}"
            )));
        }
        let attrs_off = size - attrs_len;
        if toc_len > attrs_off {
            return Err(Error::BadHeader(format!(
                "TOC of {toc_len} bytes does not fit before the package attributes at {attrs_off}"
            )));
        }
        for (what, value, limit) in [
            ("TOC length", toc_len, header::MAX_TOC_LENGTH),
            (
                "package attributes length",
                attrs_len,
                header::MAX_ATTRIBUTES_LENGTH,
            ),
        ] {
            if value > limit {
                return Err(Error::LimitExceeded { what, value, limit });
            }
        }
        let toc_off = attrs_off - toc_len;

        // TOC and attributes sit back to back at the end of the heap: one
        // read decompresses their shared chunks once.
        let mut toc_bytes = heap.read_vec(toc_off, toc_len + attrs_len)?;
        let attrs_bytes = toc_bytes.split_off(toc_len as usize);

        // Metadata first (spec §10).
        let attrs_section = Section::new(
            attrs_bytes,
            SectionKind::Attributes,
            u64::from(h.attributes_strings_length.get()),
            u64::from(h.attributes_strings_count.get()),
            size,
            minor,
        )?;
        let info = parse_package_attributes(&attrs_section)?;

        let toc_section = Section::new(
            toc_bytes,
            SectionKind::Toc,
            h.toc_strings_length.get(),
            h.toc_strings_count.get(),
            size,
            minor,
        )?;
        let toc = Toc::parse(toc_section)?;
        Ok(Parsed {
            package: Package {
                path: None,
                minor_version: minor,
                file_size,
                heap,
                info,
                toc,
            },
            header: h,
            attributes: attrs_section.bytes,
        })
    }

    /// A package from its parts, checked by the caller (an index image).
    pub(crate) fn from_parts(
        file_size: u64,
        header: &HpkgHeader,
        heap: Heap,
        attributes: Vec<u8>,
        toc: Toc,
    ) -> Result<Package> {
        let minor = header.minor_version.get();
        let section = Section::new(
            attributes,
            SectionKind::Attributes,
            u64::from(header.attributes_strings_length.get()),
            u64::from(header.attributes_strings_count.get()),
            heap.size(),
            minor,
        )?;
        let info = parse_package_attributes(&section)?;
        Ok(Package {
            path: None,
            minor_version: minor,
            file_size,
            heap,
            info,
            toc,
        })
    }

    /// This package, opened from the file at `path` (named in
    /// [`Package::path`]).
    pub fn with_path(mut self, path: impl Into<PathBuf>) -> Package {
        self.path = Some(path.into());
        self
    }

    /// The file this package was opened from.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Minor format version of the file.
    pub fn minor_version(&self) -> u16 {
        self.minor_version
    }

    /// Size of the file in bytes.
    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    /// The heap.
    pub fn heap(&self) -> &Heap {
        &self.heap
    }

    /// The package metadata.
    pub fn info(&self) -> &PackageInfo {
        &self.info
    }

    /// The archive index.
    pub fn toc(&self) -> &Toc {
        &self.toc
    }

    /// Read payload bytes at `offset` into `buf`; returns how many were read
    /// (short only at the end of the payload).
    pub fn read_data(
        &self,
        data: Data<'_>,
        offset: u64,
        buf: &mut [u8],
        cache: &dyn ChunkCache,
    ) -> Result<usize> {
        let len = data.len();
        if offset >= len {
            return Ok(0);
        }
        let n = buf.len().min((len - offset) as usize);
        match data {
            Data::Inline(bytes) => {
                buf[..n].copy_from_slice(&bytes[offset as usize..offset as usize + n])
            }
            Data::Heap { offset: base, .. } => {
                self.heap.read_at(base + offset, &mut buf[..n], cache)?
            }
        }
        Ok(n)
    }

    /// Read the content of regular file `id` at `offset`.
    pub fn read_file(
        &self,
        id: EntryId,
        offset: u64,
        buf: &mut [u8],
        cache: &dyn ChunkCache,
    ) -> Result<usize> {
        self.read_data(self.toc.data(id), offset, buf, cache)
    }

    /// The whole payload in a new buffer. `data` comes from this package's
    /// TOC, whose parser bounded it by the heap size.
    pub fn data_to_vec(&self, data: Data<'_>, cache: &dyn ChunkCache) -> Result<Vec<u8>> {
        match data {
            Data::Inline(b) => Ok(b.to_vec()),
            Data::Heap { offset, size } => {
                let mut out = vec![0u8; size as usize];
                self.heap.read_at(offset, &mut out, cache)?;
                Ok(out)
            }
        }
    }
}

/// A package as [`Package::parse`] indexed it, with what an index image
/// stores besides the tables.
pub(crate) struct Parsed {
    /// The package.
    pub package: Package,
    /// Its header, as read.
    pub header: HpkgHeader,
    /// Its package-attributes section (decompressed).
    pub attributes: Vec<u8>,
}

/// Parse the package-attributes section of an HPKG.
fn parse_package_attributes(section: &Section) -> Result<PackageInfo> {
    let mut info = PackageInfo::default();
    let mut r = section.reader();
    while let Some(a) = r.next_attr()? {
        if a.id == ids::DIR_ENTRY || a.id == ids::PACKAGE {
            return Err(Error::corrupt(
                section.loc(a.at),
                format!(
                    "attribute {} in the package attributes",
                    ids::name(a.id).unwrap_or("?")
                ),
            ));
        }
        info.apply(&mut r, &a)?;
    }
    r.expect_end()?;
    if info.name.is_empty() {
        return Err(Error::corrupt(section.loc(0), "package has no name"));
    }
    Ok(info)
}
