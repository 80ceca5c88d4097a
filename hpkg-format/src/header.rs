//! The fixed headers of `.hpkg` (80 bytes) and `.hpkr` (72 bytes) files, as
//! big-endian `zerocopy` structs (`docs/hpkg-format.md` §3, §12.1), and their
//! checks (spec §15).

use zerocopy::byteorder::{BigEndian, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::{Error, Location, Result};
use crate::heap::{truncated_or_io, ReadAt};

/// `hpkg`
pub const HPKG_MAGIC: [u8; 4] = *b"hpkg";
/// `hpkr`
pub const HPKR_MAGIC: [u8; 4] = *b"hpkr";
/// Size of the HPKG header.
pub const HPKG_HEADER_SIZE: usize = 80;
/// Size of the HPKR header.
pub const HPKR_HEADER_SIZE: usize = 72;
/// The only supported major format version.
pub const FORMAT_VERSION: u16 = 2;
/// Cap on the TOC section (spec §5.1).
pub const MAX_TOC_LENGTH: u64 = 64 << 20;
/// Cap on the package-attributes section (spec §5.1).
pub const MAX_ATTRIBUTES_LENGTH: u64 = 1 << 20;
/// Cap on the HPKR packages section (spec §12.1).
pub const MAX_PACKAGES_LENGTH: u64 = 64 << 20;
/// Cap on the HPKR repository-info blob (spec §12.1).
pub const MAX_INFO_LENGTH: u64 = 1 << 20;

/// The 80-byte header of an `.hpkg` file.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct HpkgHeader {
    /// `hpkg`
    pub magic: [u8; 4],
    /// Header size; also where the heap starts.
    pub header_size: U16<BigEndian>,
    /// Major format version (2).
    pub version: U16<BigEndian>,
    /// Size of the whole file.
    pub total_size: U64<BigEndian>,
    /// Minor format version.
    pub minor_version: U16<BigEndian>,
    /// Heap compression id.
    pub heap_compression: U16<BigEndian>,
    /// Heap chunk size (65536).
    pub heap_chunk_size: U32<BigEndian>,
    /// Stored heap size (chunks + chunk table).
    pub heap_size_compressed: U64<BigEndian>,
    /// Uncompressed heap size.
    pub heap_size_uncompressed: U64<BigEndian>,
    /// Length of the package-attributes section.
    pub attributes_length: U32<BigEndian>,
    /// Length of its string subsection.
    pub attributes_strings_length: U32<BigEndian>,
    /// Number of strings in it.
    pub attributes_strings_count: U32<BigEndian>,
    /// Reserved; ignored on read (real files hold garbage), 0 on write.
    pub reserved1: U32<BigEndian>,
    /// Length of the TOC section.
    pub toc_length: U64<BigEndian>,
    /// Length of its string subsection.
    pub toc_strings_length: U64<BigEndian>,
    /// Number of strings in it.
    pub toc_strings_count: U64<BigEndian>,
}

/// The 72-byte header of an `.hpkr` file.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct HpkrHeader {
    /// `hpkr`
    pub magic: [u8; 4],
    /// Header size; also where the heap starts.
    pub header_size: U16<BigEndian>,
    /// Major format version (2).
    pub version: U16<BigEndian>,
    /// Size of the whole file.
    pub total_size: U64<BigEndian>,
    /// Minor format version.
    pub minor_version: U16<BigEndian>,
    /// Heap compression id.
    pub heap_compression: U16<BigEndian>,
    /// Heap chunk size (65536).
    pub heap_chunk_size: U32<BigEndian>,
    /// Stored heap size.
    pub heap_size_compressed: U64<BigEndian>,
    /// Uncompressed heap size.
    pub heap_size_uncompressed: U64<BigEndian>,
    /// Length of the repository-info blob.
    pub info_length: U32<BigEndian>,
    /// Reserved; ignored.
    pub reserved1: U32<BigEndian>,
    /// Length of the packages section.
    pub packages_length: U64<BigEndian>,
    /// Length of its string subsection.
    pub packages_strings_length: U64<BigEndian>,
    /// Number of strings in it.
    pub packages_strings_count: U64<BigEndian>,
}

const _: () = assert!(std::mem::size_of::<HpkgHeader>() == HPKG_HEADER_SIZE);
const _: () = assert!(std::mem::size_of::<HpkrHeader>() == HPKR_HEADER_SIZE);

/// The heap-related fields common to both headers, after validation.
#[derive(Debug, Clone, Copy)]
pub struct HeapGeometry {
    /// File offset of the heap.
    pub offset: u64,
    /// Compression id (validated).
    pub compression: u16,
    /// Stored size.
    pub compressed_size: u64,
    /// Uncompressed size.
    pub uncompressed_size: u64,
}

/// Check magic and version of the first bytes of a file.
pub(crate) fn check_magic_version(bytes: &[u8], magic: [u8; 4], what: &'static str) -> Result<()> {
    let found: [u8; 4] =
        bytes
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .ok_or(Error::Truncated {
                what: "magic",
                at: Location::File(0),
                needed: 4,
                available: bytes.len() as u64,
            })?;
    if found != magic {
        return Err(Error::BadMagic {
            expected: what,
            found,
        });
    }
    if let Some(v) = bytes.get(6..8) {
        match u16::from_be_bytes([v[0], v[1]]) {
            FORMAT_VERSION => {}
            1 => return Err(Error::Version1),
            other => return Err(Error::UnsupportedVersion(other)),
        }
    }
    Ok(())
}

/// The container fields shared by the HPKG and HPKR headers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Container {
    pub header_size: u16,
    pub total_size: u64,
    pub compression: u16,
    pub compressed: u64,
    pub uncompressed: u64,
    pub chunk_size: u32,
}

/// Validate the container fields shared by HPKG and HPKR (spec §15 items 2–5).
pub(crate) fn check_container(
    c: Container,
    min_header: usize,
    file_size: u64,
) -> Result<HeapGeometry> {
    let Container {
        header_size,
        total_size,
        compression,
        compressed,
        uncompressed,
        chunk_size,
    } = c;
    if usize::from(header_size) < min_header {
        return Err(Error::BadHeader(format!(
            "header size {header_size} is smaller than {min_header}"
        )));
    }
    if total_size != file_size {
        return Err(Error::BadHeader(format!(
            "header says the file is {total_size} bytes, but it is {file_size}"
        )));
    }
    if compressed > total_size || u64::from(header_size) > total_size - compressed {
        return Err(Error::BadHeader(format!(
            "heap of {compressed} bytes after a {header_size}-byte header does not fit in {total_size} bytes"
        )));
    }
    if compression > 2 {
        return Err(Error::UnknownCompression(compression));
    }
    if chunk_size != crate::heap::CHUNK_SIZE as u32 {
        return Err(Error::BadHeader(format!(
            "heap chunk size {chunk_size} is not 65536"
        )));
    }
    if uncompressed == 0 && compressed != 0 {
        return Err(Error::BadHeader(
            "empty heap with a non-zero stored size".into(),
        ));
    }
    Ok(HeapGeometry {
        offset: u64::from(header_size),
        compression,
        compressed_size: compressed,
        uncompressed_size: uncompressed,
    })
}

/// A fixed file header that carries the container fields both formats share.
pub(crate) trait FileHeader: FromBytes + KnownLayout + Immutable + Sized {
    /// Its magic bytes.
    const MAGIC: [u8; 4];
    /// The format's name in errors (`hpkg`, `hpkr`).
    const NAME: &'static str;
    /// Its size in bytes.
    const SIZE: usize;
    /// The container fields.
    fn container(&self) -> Container;
}

/// Both headers name their container fields alike.
macro_rules! file_header {
    ($ty:ty, $magic:expr, $name:literal, $size:expr) => {
        impl FileHeader for $ty {
            const MAGIC: [u8; 4] = $magic;
            const NAME: &'static str = $name;
            const SIZE: usize = $size;
            fn container(&self) -> Container {
                Container {
                    header_size: self.header_size.get(),
                    total_size: self.total_size.get(),
                    compression: self.heap_compression.get(),
                    compressed: self.heap_size_compressed.get(),
                    uncompressed: self.heap_size_uncompressed.get(),
                    chunk_size: self.heap_chunk_size.get(),
                }
            }
        }
    };
}

file_header!(HpkgHeader, HPKG_MAGIC, "hpkg", HPKG_HEADER_SIZE);
file_header!(HpkrHeader, HPKR_MAGIC, "hpkr", HPKR_HEADER_SIZE);

/// Read the header at the start of `src` and check it (spec §15 items 1–5):
/// the header and the heap geometry it describes.
pub(crate) fn read_header<H: FileHeader>(src: &dyn ReadAt) -> Result<(H, HeapGeometry)> {
    let file_size = src.len()?;
    let mut raw = [0u8; HPKG_HEADER_SIZE];
    let avail = file_size.min(H::SIZE as u64) as usize;
    src.read_exact_at(&mut raw[..avail], 0)
        .map_err(|e| truncated_or_io(e, "header", 0, H::SIZE as u64))?;
    check_magic_version(&raw[..avail], H::MAGIC, H::NAME)?;
    if avail < H::SIZE {
        return Err(Error::Truncated {
            what: "header",
            at: Location::File(0),
            needed: H::SIZE as u64,
            available: avail as u64,
        });
    }
    let h = H::read_from_bytes(&raw[..H::SIZE])
        .map_err(|_| Error::BadHeader("unreadable header".into()))?;
    let geo = check_container(h.container(), H::SIZE, file_size)?;
    Ok((h, geo))
}
