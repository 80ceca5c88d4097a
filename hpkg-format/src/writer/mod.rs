//! Writing `.hpkg` packages (`docs/hpkg-format.md` §16): from a directory tree
//! ([`create_from_dir`]), from a tree built in memory ([`TreeBuilder`],
//! [`create_from_tree`]) or by re-encoding an opened package ([`rewrite`]);
//! and writing `.hpkr` repository indexes ([`write_repository`]).
//!
//! Both build an in-memory tree whose payloads are *sources* (bytes, a file
//! on disk, a range of the old package's heap) and hand it to one encoder.
//! File contents are streamed one 64 KiB chunk at a time. The package is
//! written to a temporary file in the destination directory, synced and
//! renamed over `out`, so `out` is never seen half-written (the new file
//! has mode 0644; a crash can leave a `.hpkg-*.partial` file beside `out`).
//!
//! What a written package looks like:
//! - header: version 2, minor version 1, chunk size 65536, `reserved1` = 0;
//! - heap: every payload larger than 8 bytes, in tree order, then the TOC,
//!   then the package attributes; 64 KiB chunks, each compressed only when
//!   that makes it strictly smaller and never when shorter than 64 bytes;
//! - entries: sorted by name bytes (a top-level `.PackageInfo` last, as
//!   Haiku's `package create` adds it), attributes in spec §8.2 order;
//!   integers in the smallest width that holds them; times as whole seconds
//!   (32-bit until 2106, 64-bit after), access and creation time equal to the
//!   modification time;
//! - string tables: every string used twice or more, by descending use then
//!   by bytes (Haiku orders ties by hash-table iteration, so its tables can
//!   differ in order — never in content).
//!
//! Output is a function of the tree's names, types, modes, modification
//! times, contents and `user.*` extended attributes, plus the options: the
//! same input gives the same bytes.
//!
//! Linux extended attributes have no Haiku type code; see [`attr_type`] for
//! how one is chosen.

pub mod attr_type;
mod builder;
mod encode;
mod heap;
mod package_attrs;
mod repo;
mod section;
mod tree;

use std::fs::{self, File, Permissions};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::codec::Compression;
use crate::error::{Error, Result};
use crate::info::PackageInfo;
use crate::package::Package;

pub use builder::{Timestamp, TreeBuilder, TreeError};
pub use repo::write_repository;

/// How to write a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// Heap compression.
    pub compression: Compression,
    /// Compression level on Haiku's 0–9 scale (zlib `L`, zstd `L × 22 / 9`,
    /// see [`Compression::native_level`]); values above 9 mean 9.
    pub level: u32,
    /// Reproducible builds: modification times later than this (seconds
    /// since the epoch) are set to it.
    pub source_date_epoch: Option<i64>,
}

impl Default for WriteOptions {
    /// zstd at level 5 (zstd's own level 12): close to the best ratio at a
    /// fraction of the time of level 9 (zstd 22). `SOURCE_DATE_EPOCH` is not
    /// read here; see [`WriteOptions::from_env`].
    fn default() -> Self {
        WriteOptions {
            compression: Compression::Zstd,
            level: 5,
            source_date_epoch: None,
        }
    }
}

impl WriteOptions {
    /// Take `source_date_epoch` from the `SOURCE_DATE_EPOCH` environment
    /// variable (decimal seconds) when it is set and valid; otherwise keep
    /// what `self` has.
    pub fn from_env(self) -> Self {
        let epoch = std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok());
        WriteOptions {
            source_date_epoch: epoch.or(self.source_date_epoch),
            ..self
        }
    }
}

/// What writing a package did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Entries in the package (files, directories, symlinks).
    pub entries: u64,
    /// Regular files among them.
    pub files: u64,
    /// Uncompressed heap size.
    pub heap_size: u64,
    /// Size of the package file.
    pub file_size: u64,
    /// Paths of the source tree left out (the output file itself, when it
    /// lies inside the tree).
    pub skipped: Vec<String>,
}

/// Build a package from a directory tree. `.PackageInfo` at the top of
/// `dir`, if present, is included as a file (Haiku does); `info` is what
/// goes into the attributes section.
///
/// `info` must be complete (spec §9.6), otherwise [`Error::InvalidInfo`].
/// Device nodes, FIFOs and sockets are refused with [`Error::Unpackable`].
/// `warn` receives one line per thing left out (non-`user.` extended
/// attributes, the output file if it lies in `dir`, times before 1970).
pub fn create_from_dir(
    dir: &Path,
    info: &PackageInfo,
    out: &Path,
    opts: &WriteOptions,
    warn: &mut dyn FnMut(&str),
) -> Result<WriteStats> {
    package_attrs::validate(info)?;
    let attributes = section::encode(&package_attrs::attributes(info), "package attributes")?;
    let exclude = fs::metadata(out).ok().map(|m| (m.dev(), m.ino()));
    let mut skipped = Vec::new();
    let nodes = tree::scan_dir(
        dir,
        &mut tree::ScanOptions {
            epoch: opts.source_date_epoch,
            exclude,
            warn,
            skipped: &mut skipped,
        },
    )?;
    let mut stats = write_atomically(out, &nodes, &attributes, None, opts)?;
    stats.skipped = skipped;
    Ok(stats)
}

/// Build a package from a tree assembled in memory with [`TreeBuilder`].
///
/// All file contents are held in memory (the builder owns them), which suits
/// packages of tens of megabytes such as Debian packages; for large trees on
/// disk use [`create_from_dir`], which streams. `info` must be complete
/// (spec §9.6), otherwise [`Error::InvalidInfo`]. The same tree, info and
/// options give the same bytes, whatever order the entries were added in.
/// Written atomically like [`create_from_dir`].
pub fn create_from_tree(
    tree: TreeBuilder,
    info: &PackageInfo,
    out: &Path,
    opts: &WriteOptions,
) -> Result<WriteStats> {
    package_attrs::validate(info)?;
    let attributes = section::encode(&package_attrs::attributes(info), "package attributes")?;
    let nodes = tree.into_nodes(opts.source_date_epoch);
    write_atomically(out, &nodes, &attributes, None, opts)
}

/// Check `info` the way [`create_from_dir`] and [`create_from_tree`] do
/// before writing anything: complete (spec §9.6) and encodable.
pub fn validate_info(info: &PackageInfo) -> Result<()> {
    package_attrs::validate(info)
}

/// Rewrite an existing package (e.g. to change compression) keeping every
/// entry and every attribute intact, including attributes larger than
/// 64 KiB.
///
/// Kept: entry order, names, types, modes, modification times (with
/// nanoseconds, clamped by `source_date_epoch` if set), contents, symlink
/// targets, attribute names, type codes, data and order, and the package
/// metadata. Not kept, because the reader does not keep them: owner and
/// group names (ignored by Haiku) and access/creation times (written as the
/// modification time). `out` may be the file `pkg` was opened from.
pub fn rewrite(pkg: &Package, out: &Path, opts: &WriteOptions) -> Result<WriteStats> {
    package_attrs::check_encodable(pkg.info())?;
    let attributes = section::encode(&package_attrs::attributes(pkg.info()), "package attributes")?;
    let nodes = tree::from_package(pkg, opts.source_date_epoch);
    write_atomically(out, &nodes, &attributes, Some(pkg), opts)
}

/// Encode into a temporary file beside `out`, sync it, rename it to `out`
/// and sync the directory.
fn write_atomically(
    out: &Path,
    nodes: &[tree::Node],
    attributes: &section::Encoded,
    pkg: Option<&Package>,
    opts: &WriteOptions,
) -> Result<WriteStats> {
    let written = persist_atomically(out, ".hpkg-", |file| {
        encode::encode(file, nodes, attributes, pkg, opts.compression, opts.level)
    })?;
    Ok(WriteStats {
        entries: written.counts.entries,
        files: written.counts.files,
        heap_size: written.heap.uncompressed,
        file_size: written.file_size,
        skipped: Vec::new(),
    })
}

/// Run `fill` on a new temporary file (named `<prefix>*.partial`) beside
/// `out`, then make it mode 0644, sync it, rename it to `out` and sync the
/// directory: `out` is never seen half-written. Errors name `out`.
fn persist_atomically<T>(
    out: &Path,
    prefix: &str,
    fill: impl FnOnce(&File) -> Result<T>,
) -> Result<T> {
    let in_out = |e: Error| e.in_file(out);
    let io_out = |e: std::io::Error| Error::Io(e).in_file(out);
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(prefix)
        .suffix(".partial")
        .tempfile_in(dir)
        .map_err(io_out)?;
    let value = fill(tmp.as_file()).map_err(in_out)?;
    let file = tmp.as_file();
    file.set_permissions(Permissions::from_mode(0o644))
        .map_err(io_out)?;
    file.sync_all().map_err(io_out)?;
    tmp.persist(out).map_err(|e| io_out(e.error))?;
    // Make the rename itself durable.
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_out)?;
    Ok(value)
}
