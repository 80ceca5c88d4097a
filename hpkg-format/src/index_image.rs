//! The index image of a package: everything [`Package::open`] computes from
//! a package file (its header, its package-attributes section, the TOC
//! section and the entry and attribute tables of its [`Toc`]) in one
//! self-describing byte image. A package indexed once is opened again by
//! reading its image instead of decompressing and parsing its TOC; the heap
//! still reads file data from the package file.
//!
//! ```text
//! ImageHeader        224 bytes: magic, version, byte-order mark, CRC-32,
//!                    the key, the package file's stamp and size, the table
//!                    sizes, the package's 80-byte header
//! entries            entry_count × 32 bytes (toc::Entry, as in memory)
//! attributes         attr_count × 32 bytes (toc::EntryAttr, as in memory)
//! string arena       arena_length bytes (names, symlink targets, inline
//!                    data; never longer than the package's TOC section)
//! package attributes attributes_length bytes (parsed again: it is small)
//! ```
//!
//! The image is a local cache in native byte order and layout; the
//! byte-order mark and the table record sizes refuse one from another
//! machine. Loading reads each table with one positioned read straight into
//! its final vector (no mapping, so a file truncated under the reader is an
//! error, not a `SIGBUS`), checks the CRC-32 over the whole image (with its
//! own field zeroed), then every bound the parser guarantees
//! (`Toc::from_tables`), so a truncated, garbled or forged image is a
//! typed [`ImageError`], never a panic or an allocation larger than the
//! image. CRC-32 rather than blake3: it only has to catch damage (the key is
//! the package's own blake3, which is not recomputed), and crc32fast's
//! carry-less-multiply kernel runs at well over 10 GB/s per core against
//! blake3's few GB/s on one thread, on the path a remount waits for.
//!
//! An image is only valid for the package file it was made from: the
//! caller's key (the package's blake3), the file's [`FileStamp`] (device,
//! inode, size, modification and change times) and the package header must
//! all match, or [`load`] says the image is stale.

use std::io;
use std::sync::Arc;

use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

use crate::error::Error;
use crate::header::{self, HpkgHeader, MAX_ATTRIBUTES_LENGTH, MAX_TOC_LENGTH};
use crate::heap::{Heap, ReadAt};
use crate::package::Package;
use crate::toc::{Entry, EntryAttr, TableError, Toc};

/// The first eight bytes of an index image.
pub const MAGIC: [u8; 8] = *b"hpkgidx\0";
/// The version of the image layout this crate writes and reads.
pub const VERSION: u32 = 2;
/// Written in native byte order: reads back the same only on a machine of
/// the same byte order.
const BYTE_ORDER: u32 = 0x0102_0304;
/// Size of the image header.
pub const HEADER_SIZE: usize = std::mem::size_of::<ImageHeader>();

/// What tells one version of a package file from another: its device,
/// inode, size, and modification and change times in nanoseconds. A file
/// rewritten in place changes its change time, whatever it does to the
/// others.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
#[repr(C)]
pub struct FileStamp {
    /// Device.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Status change time, nanoseconds since the epoch.
    pub ctime_ns: i64,
}

impl FileStamp {
    /// The stamp of a file whose metadata is `m`.
    pub fn of(m: &std::fs::Metadata) -> FileStamp {
        use std::os::unix::fs::MetadataExt;
        let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
        FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            ctime_ns: ns(m.ctime(), m.ctime_nsec()),
        }
    }
}

/// The fixed header of an index image (native byte order).
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
struct ImageHeader {
    magic: [u8; 8],
    version: u32,
    byte_order: u32,
    /// CRC-32 of the whole image with this field zeroed.
    checksum: u32,
    entry_size: u16,
    attr_size: u16,
    /// The caller's key: the blake3 of the package file.
    key: [u8; 32],
    stamp: FileStamp,
    package_size: u64,
    entry_count: u64,
    attr_count: u64,
    toc_length: u64,
    attributes_length: u64,
    /// Length of the TOC's string arena.
    arena_length: u64,
    package_header: HpkgHeader,
}

const _: () = assert!(HEADER_SIZE == 224);
const CHECKSUM_AT: usize = std::mem::offset_of!(ImageHeader, checksum);

/// Why an index image cannot be used. [`ImageError::is_stale`] tells an
/// image of another version of the package file from a damaged one.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Reading the image failed.
    #[error("reading the index image: {0}")]
    Io(#[from] io::Error),
    /// The image is shorter than its header.
    #[error("index image of {len} bytes is shorter than its {HEADER_SIZE}-byte header")]
    Truncated {
        /// Its length.
        len: u64,
    },
    /// The magic is not [`MAGIC`].
    #[error("not an index image (magic {0:02x?})")]
    BadMagic([u8; 8]),
    /// An image layout version this crate does not read.
    #[error("index image version {0}, expected {VERSION}")]
    Version(u32),
    /// Written on a machine of another byte order or table layout.
    #[error("index image written with another byte order or table layout")]
    Layout,
    /// The sizes in the header do not add up to the image's length.
    #[error("index image of {actual} bytes, its header describes {expected:?}")]
    Length {
        /// What the header describes (`None`: more than 2^64 bytes).
        expected: Option<u64>,
        /// The image's length.
        actual: u64,
    },
    /// A section longer than the package format allows.
    #[error("index image: {what} of {value} bytes exceeds the limit of {limit}")]
    Limit {
        /// Which section.
        what: &'static str,
        /// Its length.
        value: u64,
        /// The limit.
        limit: u64,
    },
    /// More table records or arena bytes than the TOC section has bytes:
    /// no parse makes that (every entry and attribute takes bytes of the
    /// section, and the arena holds strings copied from it).
    #[error(
        "index image: {entries} entries, {attrs} attributes and {arena} arena bytes for a TOC of {toc_length} bytes"
    )]
    Counts {
        /// Entries claimed.
        entries: u64,
        /// Attributes claimed.
        attrs: u64,
        /// Arena bytes claimed.
        arena: u64,
        /// The TOC section's length.
        toc_length: u64,
    },
    /// The image's section lengths are not those of the package's header.
    #[error("index image sections disagree with the package header")]
    Sections,
    /// The image was made for another package (another key).
    #[error("index image of another package (key mismatch)")]
    Key,
    /// The package file changed since the image was made.
    #[error("the package file changed since it was indexed ({0})")]
    Stale(&'static str),
    /// The CRC-32 does not match: the image is damaged.
    #[error("index image checksum {stored:08x}, computed {computed:08x}")]
    Checksum {
        /// The stored CRC-32.
        stored: u32,
        /// The CRC-32 of the bytes read.
        computed: u32,
    },
    /// A table holds what the parser never makes.
    #[error("index image: {0}")]
    Table(#[from] TableError),
    /// The package file (header, chunk table) or the stored
    /// package-attributes section could not be read.
    #[error("{0}")]
    Package(#[from] Error),
}

impl ImageError {
    /// Whether the image is of another version of the package file (its
    /// stamp, size or header differ) or was written in another image
    /// layout version (by an older or newer packagefs): an image to
    /// replace, not a damaged one.
    pub fn is_stale(&self) -> bool {
        matches!(self, ImageError::Stale(_) | ImageError::Version(_))
    }
}

/// What an index image holds beyond the package's index: the header and
/// the package-attributes section as read from the file. Kept from the
/// parse until the image is written, so that the image can be encoded
/// later (after the mount is ready) from the package as it is in memory.
#[derive(Debug, Clone)]
pub struct ImageParts {
    header: HpkgHeader,
    attributes: Vec<u8>,
}

/// Open and index the package in `source`, as [`Package::from_source`],
/// keeping what its index image needs besides the package ([`encode`]).
pub fn open_for_image(source: Arc<dyn ReadAt>) -> crate::Result<(Package, ImageParts)> {
    let parsed = Package::parse(source)?;
    Ok((
        parsed.package,
        ImageParts {
            header: parsed.header,
            attributes: parsed.attributes,
        },
    ))
}

/// The index image of `package` (opened by [`open_for_image`], which gave
/// `parts`) under `key`, for a file with stamp `stamp`.
pub fn encode(package: &Package, parts: &ImageParts, key: &[u8; 32], stamp: &FileStamp) -> Vec<u8> {
    let toc = package.toc();
    let entries = toc.entries().as_bytes();
    let attrs = toc.all_attrs().as_bytes();
    let arena = toc.arena();
    let attributes = &parts.attributes;
    let header = ImageHeader {
        magic: MAGIC,
        version: VERSION,
        byte_order: BYTE_ORDER,
        checksum: 0,
        entry_size: std::mem::size_of::<Entry>() as u16,
        attr_size: std::mem::size_of::<EntryAttr>() as u16,
        key: *key,
        stamp: *stamp,
        package_size: package.file_size(),
        entry_count: toc.entries().len() as u64,
        attr_count: toc.all_attrs().len() as u64,
        toc_length: parts.header.toc_length.get(),
        attributes_length: attributes.len() as u64,
        arena_length: arena.len() as u64,
        package_header: parts.header.clone(),
    };
    let mut image = Vec::with_capacity(
        HEADER_SIZE + entries.len() + attrs.len() + arena.len() + attributes.len(),
    );
    for part in [
        header.as_bytes(),
        entries,
        attrs,
        arena,
        attributes.as_slice(),
    ] {
        image.extend_from_slice(part);
    }
    let crc = crc32fast::hash(&image);
    image[CHECKSUM_AT..CHECKSUM_AT + 4].copy_from_slice(&crc.to_ne_bytes());
    image
}

/// Open and index the package in `source`, as [`Package::from_source`],
/// and encode its index image under `key`, for a file with stamp `stamp`
/// ([`open_for_image`], then [`encode`]).
pub fn open_and_encode(
    source: Arc<dyn ReadAt>,
    key: &[u8; 32],
    stamp: &FileStamp,
) -> crate::Result<(Package, Vec<u8>)> {
    let (package, parts) = open_for_image(source)?;
    let image = encode(&package, &parts, key, stamp);
    Ok((package, image))
}

/// Open the package in `package` from its index image `image`: valid only
/// if it was made under `key` for a file with stamp `stamp` whose header is
/// the one `package` has now. Any other image is an [`ImageError`]
/// ([`ImageError::is_stale`] when the package file changed), never a panic.
pub fn load(
    image: &dyn ReadAt,
    package: Arc<dyn ReadAt>,
    key: &[u8; 32],
    stamp: &FileStamp,
) -> Result<Package, ImageError> {
    let len = image.len()?;
    if len < HEADER_SIZE as u64 {
        return Err(ImageError::Truncated { len });
    }
    let mut raw = [0u8; HEADER_SIZE];
    image.read_exact_at(&mut raw, 0)?;
    let h = ImageHeader::read_from_bytes(&raw).map_err(|_| ImageError::Truncated { len })?;
    if h.magic != MAGIC {
        return Err(ImageError::BadMagic(h.magic));
    }
    if h.version != VERSION {
        return Err(ImageError::Version(h.version));
    }
    if h.byte_order != BYTE_ORDER
        || usize::from(h.entry_size) != std::mem::size_of::<Entry>()
        || usize::from(h.attr_size) != std::mem::size_of::<EntryAttr>()
    {
        return Err(ImageError::Layout);
    }
    for (what, value, limit) in [
        ("TOC section", h.toc_length, MAX_TOC_LENGTH),
        (
            "package-attributes section",
            h.attributes_length,
            MAX_ATTRIBUTES_LENGTH,
        ),
    ] {
        if value > limit {
            return Err(ImageError::Limit { what, value, limit });
        }
    }
    if h.entry_count > h.toc_length || h.attr_count > h.toc_length || h.arena_length > h.toc_length
    {
        return Err(ImageError::Counts {
            entries: h.entry_count,
            attrs: h.attr_count,
            arena: h.arena_length,
            toc_length: h.toc_length,
        });
    }
    let expected = h
        .entry_count
        .checked_mul(std::mem::size_of::<Entry>() as u64)
        .zip(
            h.attr_count
                .checked_mul(std::mem::size_of::<EntryAttr>() as u64),
        )
        .and_then(|(e, a)| e.checked_add(a))
        .and_then(|t| t.checked_add(h.arena_length))
        .and_then(|t| t.checked_add(h.attributes_length))
        .and_then(|t| t.checked_add(HEADER_SIZE as u64));
    if expected != Some(len) {
        return Err(ImageError::Length {
            expected,
            actual: len,
        });
    }
    // Every count is now bounded by the image's real length and by the
    // TOC limit: the allocations below are too. The whole image is read and
    // its checksum checked before anything in it is believed, so that a
    // damaged image is always told from a stale one.
    let mut entries = Entry::new_vec_zeroed(h.entry_count as usize)
        .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    let mut attrs = EntryAttr::new_vec_zeroed(h.attr_count as usize)
        .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    let mut arena = vec![0u8; h.arena_length as usize];
    let mut attributes = vec![0u8; h.attributes_length as usize];
    let mut crc = crc32fast::Hasher::new();
    let mut zeroed = raw;
    zeroed[CHECKSUM_AT..CHECKSUM_AT + 4].fill(0);
    crc.update(&zeroed);
    let mut at = HEADER_SIZE as u64;
    for part in [
        entries.as_mut_bytes(),
        attrs.as_mut_bytes(),
        arena.as_mut_slice(),
        attributes.as_mut_slice(),
    ] {
        image.read_exact_at(part, at)?;
        crc.update(part);
        at += part.len() as u64;
    }
    let computed = crc.finalize();
    if computed != h.checksum {
        return Err(ImageError::Checksum {
            stored: h.checksum,
            computed,
        });
    }

    // An intact image: is it of this package file as it is now?
    if &h.key != key {
        return Err(ImageError::Key);
    }
    if h.stamp != *stamp {
        return Err(ImageError::Stale("its size, times or inode differ"));
    }
    let file_size = package.len().map_err(Error::Io)?;
    if h.package_size != file_size {
        return Err(ImageError::Stale("its size differs"));
    }
    let (now, geo) = header::read_header::<HpkgHeader>(package.as_ref())?;
    if now.as_bytes() != h.package_header.as_bytes() {
        return Err(ImageError::Stale("its header differs"));
    }
    if h.toc_length != now.toc_length.get()
        || h.attributes_length != u64::from(now.attributes_length.get())
    {
        return Err(ImageError::Sections);
    }

    let heap = Heap::open(package, geo)?;
    let toc = Toc::from_tables(arena, entries, attrs, heap.size())?;
    Ok(Package::from_parts(file_size, &now, heap, attributes, toc)?)
}
