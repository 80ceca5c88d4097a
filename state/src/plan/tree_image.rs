//! The union cache: a merged [`Tree`] stored as one checked image, so that
//! mounting the same packages again skips the merge (at 2,300 packages and
//! a million entries the merge is most of a warm mount).
//!
//! ```text
//! header    48 bytes: magic, version, CRC-32 of the rest, counts
//! key       32 bytes: what the tree was merged from (see `key`)
//! nodes     node_count x 16 bytes (package, entry, first child, child count)
//! shadows   shadow_count x 12 bytes (node, package, entry)
//! refused   refused_count x 12 bytes (node, package, entry)
//! shine     shine_count x 4 bytes (node index of each shine-through name)
//! warnings  warnings_len bytes of UTF-8, one warning per line
//! ```
//!
//! All numbers are little-endian `u32`. An image is found by its key, the
//! blake3 of everything the merge depends on: each package's recorded
//! blake3, the stamp (device, inode, size, modification time) of the file
//! it was read from, its layer, owner and shadowing rights, the blocked
//! paths, the shine-through names, and this crate's version. An image is
//! never trusted blindly: the CRC-32 catches damage, and every index is
//! checked against the packages it is applied to (node ranges contiguous
//! and after their parent, packages and entries in range, children only
//! under directories), so a damaged or forged image gives an error and a
//! fresh merge, never a panic or a loop. The name order of children is not
//! checked (a lookup in a misordered forged image finds nothing; it
//! cannot misbehave otherwise).

use std::fmt::Write as _;
use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};

use hpkg_format::EntryKind;

use super::package::MountedPackage;
use super::tree::{Node, Shadow, ROOT_PKG, SHINE_PKG};
use super::union::Built;

/// The first eight bytes of a union image.
const MAGIC: [u8; 8] = *b"pfstree\0";
/// The image layout version.
const VERSION: u32 = 1;
/// Bytes of the fixed header.
const HEADER: usize = 48;
/// Union images kept in the cache directory: the newest ones (a few
/// generations to boot or roll back to); older ones are removed when a new
/// one is written.
pub const KEPT_IMAGES: usize = 4;
/// File name extension of union images.
pub const EXTENSION: &str = "tree";

/// What is wrong with a union image.
#[derive(Debug, thiserror::Error)]
pub enum TreeImageError {
    /// Shorter than its header or its counts say.
    #[error("truncated: {len} bytes, {needed} needed")]
    Truncated {
        /// Bytes present.
        len: usize,
        /// Bytes the header calls for.
        needed: usize,
    },
    /// Not a union image of this version.
    #[error("not a union image of version {VERSION}")]
    NotAnImage,
    /// The CRC-32 does not match.
    #[error("checksum mismatch (damaged)")]
    Checksum,
    /// Made from other packages or options.
    #[error("made from other packages or options")]
    OtherKey,
    /// An index out of range or a broken structure.
    #[error("inconsistent: {0}")]
    Inconsistent(&'static str),
}

/// The key of the union of `packages` (ascending priority) with `blocked`
/// paths (normalized) and shine-through names `shine`; `None` when a
/// package has no recorded blake3 or stamp (files mounted on their own).
pub fn key(
    packages: &[MountedPackage],
    blocked: &std::collections::HashSet<Vec<u8>>,
    shine: &[String],
) -> Option<[u8; 32]> {
    let mut text = format!(
        "packagefs union image {VERSION} state {}\n",
        env!("CARGO_PKG_VERSION")
    );
    for p in packages {
        let (size, digest) = p.source().recorded?;
        let stamp = p.stamp_words()?;
        let s = p.source();
        let _ = writeln!(
            text,
            "{} {size} {stamp:?} {:?} {} {} {} {}",
            digest.to_hex(),
            s.layer,
            s.uid,
            s.gid,
            s.strip_setid,
            s.may_shadow
        );
    }
    let mut blocked: Vec<&Vec<u8>> = blocked.iter().collect();
    blocked.sort();
    text.push_str("blocked\n");
    for b in blocked {
        let _ = writeln!(text, "{}", b.escape_ascii());
    }
    text.push_str("shine\n");
    for s in shine {
        let _ = writeln!(text, "{s}");
    }
    Some(*blake3::hash(text.as_bytes()).as_bytes())
}

/// The file of the image with `key` in `dir`.
pub fn path(dir: &Path, key: &[u8; 32]) -> PathBuf {
    dir.join(format!(
        "{}.{EXTENSION}",
        blake3::Hash::from_bytes(*key).to_hex()
    ))
}

/// Bytes written at a time when storing an image.
const WRITE_BATCH: usize = 64 * 1024;

/// Write a merge result under `key` to `out`, which is at the start of an
/// empty file: the header with a zero CRC, then the body in batches of
/// [`WRITE_BATCH`] bytes (so that storing holds no copy of the image: at a
/// million entries it would be 17 MB more at the mount's peak), then the
/// header again with the body's CRC-32.
fn write_image(built: &Built, key: &[u8; 32], out: &mut std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let warnings = built.warnings.join("\n");
    let mut header = Vec::with_capacity(HEADER);
    header.extend_from_slice(&MAGIC);
    put(&mut header, VERSION);
    put(&mut header, 0); // CRC-32, filled in at the end
    for n in [
        built.nodes.len(),
        built.shadows.len(),
        built.refused.len(),
        built.shine_nodes.len(),
        warnings.len(),
    ] {
        // Counts come from a tree whose indexes are u32 already.
        put(&mut header, u32::try_from(n).unwrap_or(u32::MAX));
    }
    header.resize(HEADER, 0);
    out.write_all(&header)?;
    let mut crc = crc32fast::Hasher::new();
    let mut buf: Vec<u8> = Vec::with_capacity(WRITE_BATCH + 64);
    let mut flush = |buf: &mut Vec<u8>, at_least: usize| -> std::io::Result<()> {
        if buf.len() >= at_least {
            crc.update(buf);
            out.write_all(buf)?;
            buf.clear();
        }
        Ok(())
    };
    buf.extend_from_slice(key);
    for n in &built.nodes {
        for v in [n.pkg, n.entry, n.first_child, n.child_count] {
            put(&mut buf, v);
        }
        flush(&mut buf, WRITE_BATCH)?;
    }
    for s in built.shadows.iter().chain(&built.refused) {
        for v in [s.node, s.pkg, s.entry] {
            put(&mut buf, v);
        }
        flush(&mut buf, WRITE_BATCH)?;
    }
    for &i in &built.shine_nodes {
        put(&mut buf, i);
    }
    buf.extend_from_slice(warnings.as_bytes());
    flush(&mut buf, 0)?;
    header[12..16].copy_from_slice(&crc.finalize().to_le_bytes());
    out.write_all_at(&header, 0)
}

fn put(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Little-endian u32s of `bytes` (a multiple of 4 long).
fn words(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
}

/// Little-endian u32 number `i` of `record` (a record of the image, whose
/// length the caller has checked).
fn word(record: &[u8], i: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&record[i * 4..i * 4 + 4]);
    u32::from_le_bytes(w)
}

/// Records decoded per read: a batch of the image is read, checksummed and
/// decoded at a time, so that loading holds no copy of the image.
const BATCH: usize = 4096;

/// Read `count` records of `size` bytes from `r` into values, in batches,
/// feeding their bytes to `crc`.
fn read_records<T>(
    r: &mut impl Read,
    crc: &mut crc32fast::Hasher,
    count: usize,
    size: usize,
    decode: impl Fn(&[u8]) -> T,
) -> std::io::Result<Vec<T>> {
    let mut out = Vec::with_capacity(count);
    let mut buf = vec![0u8; BATCH.min(count) * size];
    let mut left = count;
    while left > 0 {
        let n = left.min(BATCH);
        let batch = &mut buf[..n * size];
        r.read_exact(batch)?;
        crc.update(batch);
        out.extend(batch.chunks_exact(size).map(&decode));
        left -= n;
    }
    Ok(out)
}

/// Load and check the image at `path`, made under `key` for `packages` and
/// `shine`; `Ok(None)` when there is none. The file's length must be what
/// its header's counts say before anything is allocated for them.
pub(super) fn load(
    path: &Path,
    key: &[u8; 32],
    packages: &[MountedPackage],
    shine: &[String],
) -> Result<Option<Built>, LoadError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LoadError::Io(e)),
    };
    let len = usize::try_from(file.metadata().map_err(LoadError::Io)?.len()).unwrap_or(usize::MAX);
    let mut r = std::io::BufReader::with_capacity(1 << 16, file);
    let truncated = |needed| LoadError::Image(TreeImageError::Truncated { len, needed });
    let mut head_bytes = [0u8; HEADER + 32];
    if len < head_bytes.len() {
        return Err(truncated(head_bytes.len()));
    }
    r.read_exact(&mut head_bytes).map_err(LoadError::Io)?;
    let head: Vec<u32> = words(&head_bytes[8..HEADER]).collect();
    if head_bytes[..8] != MAGIC || head[0] != VERSION {
        return Err(LoadError::Image(TreeImageError::NotAnImage));
    }
    let count = |i: usize| head[i] as usize;
    let (nodes_n, shadows_n, refused_n, shine_n, warnings_n) =
        (count(2), count(3), count(4), count(5), count(6));
    let needed = (HEADER + 32)
        .saturating_add(nodes_n.saturating_mul(16))
        .saturating_add(shadows_n.saturating_add(refused_n).saturating_mul(12))
        .saturating_add(shine_n.saturating_mul(4))
        .saturating_add(warnings_n);
    if len != needed {
        return Err(truncated(needed));
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head_bytes[HEADER..]);
    let io = LoadError::Io;
    let nodes = read_records(&mut r, &mut crc, nodes_n, 16, |c| Node {
        pkg: word(c, 0),
        entry: word(c, 1),
        first_child: word(c, 2),
        child_count: word(c, 3),
    })
    .map_err(io)?;
    let shadow = |c: &[u8]| Shadow {
        node: word(c, 0),
        pkg: word(c, 1),
        entry: word(c, 2),
    };
    let shadows = read_records(&mut r, &mut crc, shadows_n, 12, shadow).map_err(io)?;
    let refused = read_records(&mut r, &mut crc, refused_n, 12, shadow).map_err(io)?;
    let shine_nodes = read_records(&mut r, &mut crc, shine_n, 4, |c| word(c, 0)).map_err(io)?;
    let mut text = vec![0u8; warnings_n];
    r.read_exact(&mut text).map_err(io)?;
    crc.update(&text);
    if crc.finalize() != head[1] {
        return Err(LoadError::Image(TreeImageError::Checksum));
    }
    if head_bytes[HEADER..] != key[..] {
        return Err(LoadError::Image(TreeImageError::OtherKey));
    }
    let warnings = String::from_utf8(text)
        .map_err(|_| LoadError::Image(TreeImageError::Inconsistent("warnings are not UTF-8")))?;
    let warnings = if warnings.is_empty() {
        Vec::new()
    } else {
        warnings.split('\n').map(str::to_owned).collect()
    };
    check(&nodes, &shadows, &refused, &shine_nodes, packages, shine).map_err(LoadError::Image)?;
    Ok(Some(Built {
        nodes,
        shadows,
        shine_nodes,
        warnings,
        refused,
    }))
}

/// Why a union image could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// It could not be read (or changed length while read).
    #[error("{0}")]
    Io(std::io::Error),
    /// It is not a good image for these packages.
    #[error("{0}")]
    Image(TreeImageError),
}

/// The kind of a package node, or `None` if its package or entry is out of
/// range.
fn kind_of(packages: &[MountedPackage], pkg: u32, entry: u32) -> Option<EntryKind> {
    let toc = packages.get(pkg as usize)?.package().toc();
    (usize::try_from(entry).ok()? < toc.len()).then(|| toc.entry(entry).kind())
}

/// Every structural rule the tree's readers rely on.
fn check(
    nodes: &[Node],
    shadows: &[Shadow],
    refused: &[Shadow],
    shine_nodes: &[u32],
    packages: &[MountedPackage],
    shine: &[String],
) -> Result<(), TreeImageError> {
    use TreeImageError::Inconsistent;
    let root = nodes.first().ok_or(Inconsistent("no root"))?;
    if root.pkg != ROOT_PKG || root.first_child != 1 {
        return Err(Inconsistent("node 0 is not the root"));
    }
    let mut end = 1u64;
    for (i, n) in nodes.iter().enumerate() {
        let kind = match n.pkg {
            ROOT_PKG if i == 0 => EntryKind::Directory,
            ROOT_PKG => return Err(Inconsistent("a second root")),
            SHINE_PKG if (n.entry as usize) < shine.len() => EntryKind::Directory,
            SHINE_PKG => return Err(Inconsistent("shine-through name out of range")),
            pkg => kind_of(packages, pkg, n.entry)
                .ok_or(Inconsistent("package or entry out of range"))?,
        };
        // Children ranges follow each other without gaps and come after
        // their parent: every node but the root has exactly one parent,
        // which precedes it.
        if u64::from(n.first_child) != end {
            return Err(Inconsistent("children ranges are not contiguous"));
        }
        if n.child_count > 0 {
            if kind != EntryKind::Directory {
                return Err(Inconsistent("children under a non-directory"));
            }
            if u64::from(n.first_child) <= i as u64 {
                return Err(Inconsistent("a child before its parent"));
            }
        }
        end = u64::from(n.first_child) + u64::from(n.child_count);
    }
    if end != nodes.len() as u64 {
        return Err(Inconsistent("children ranges do not cover the nodes"));
    }
    for s in shadows.iter().chain(refused) {
        if s.node as usize >= nodes.len() || kind_of(packages, s.pkg, s.entry).is_none() {
            return Err(Inconsistent("hidden node out of range"));
        }
    }
    if shine_nodes.len() != shine.len() || shine_nodes.iter().any(|&i| i as usize >= nodes.len()) {
        return Err(Inconsistent("shine-through nodes out of range"));
    }
    Ok(())
}

/// Write the image of merge result `built` under `key` as `path`
/// atomically (a temporary file in the same directory, renamed over), then
/// remove all but the newest [`KEPT_IMAGES`] images of the directory. Not
/// synced: a torn image fails its checks and is merged again.
pub(super) fn store(path: &Path, built: &Built, key: &[u8; 32]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let temp = crate::fsutil::temp_path(path);
    let result = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .and_then(|mut f| write_image(built, key, &mut f))
        .and_then(|()| std::fs::rename(&temp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result?;
    prune(dir, path);
    Ok(())
}

/// Remove all but the newest [`KEPT_IMAGES`] union images of `dir` (never
/// `keep`, just written).
fn prune(dir: &Path, keep: &Path) {
    let Ok(list) = std::fs::read_dir(dir) else {
        return;
    };
    let mut images: Vec<(std::time::SystemTime, PathBuf)> = list
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == EXTENSION) && p != keep)
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    images.sort();
    let excess = (images.len() + 1).saturating_sub(KEPT_IMAGES);
    for (_, p) in images.into_iter().take(excess) {
        let _ = std::fs::remove_file(p);
    }
}
