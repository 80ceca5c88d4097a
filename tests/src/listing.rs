//! Listings of file trees, in the format of the golden `*.expected.jsonl` files.
//!
//! A golden listing has one JSON object per line, sorted by path:
//!
//! ```text
//! {"entry": {"link": null, "mode": "644", "sha256": "…", "size": 553, "type": "file"}, "path": ".PackageInfo"}
//! {"entry": {"link": null, "mode": "755", "sha256": null, "size": 0, "type": "dir", "xattrs": {"BEOS:TYPE": "…"}}, "path": "apps"}
//! {"entry": {"link": "ref_tool", "mode": "777", "sha256": null, "size": 0, "type": "symlink"}, "path": "bin/alias"}
//! ```
//!
//! * `path` is relative to the tree's root (which is not listed), `/`-separated;
//! * `mode` is the permission bits (setuid, setgid and sticky included) in
//!   octal without leading zeros: `"644"`, `"4755"`;
//! * files carry their `size` and the `sha256` of their content; directories
//!   and symlinks have size 0 and no sha256 (a symlink's size is *not* the
//!   length of its target, as `lstat` would say); symlinks have `link` (the
//!   target) and mode `"777"`;
//! * `xattrs` maps each extended attribute of the `user.` namespace, without
//!   that prefix, to the sha256 of its value; the key is left out when there
//!   are none. Symlinks never have any (Linux allows no `user.` attributes on
//!   them) and attributes over 64 KiB are left out (Linux cannot hold them).
//!
//! [`read_expected`] parses such a file and [`list_dir`] lists a directory on
//! disk (a mount point, say) into the same [`Listing`], so that equal trees give
//! equal listings.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A tree: entry path (relative, `/`-separated, root not included) to entry.
/// Sorted by path, byte-wise, which is the order of the golden files.
pub type Listing = BTreeMap<String, EntryInfo>;

/// The name, without the `user.` prefix, of the extended attribute packagefs
/// adds to every node to tell which package provides it.
pub const PACKAGE_XATTR: &str = "packagefs.package";

/// The `type` of a regular file.
pub const KIND_FILE: &str = "file";
/// The `type` of a directory.
pub const KIND_DIR: &str = "dir";
/// The `type` of a symbolic link.
pub const KIND_SYMLINK: &str = "symlink";

/// One entry of a [`Listing`], exactly as a golden `*.expected.jsonl` line
/// carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryInfo {
    /// `"file"`, `"dir"` or `"symlink"`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Permission bits (including setuid/setgid/sticky) in octal without
    /// leading zeros, e.g. `"644"` or `"4755"`.
    pub mode: String,
    /// Content size for files; 0 for directories and symlinks.
    pub size: u64,
    /// Lower-case hex sha256 of a file's content; `None` otherwise.
    pub sha256: Option<String>,
    /// A symlink's target; `None` otherwise.
    pub link: Option<String>,
    /// `user.` extended attributes, without the prefix, to the lower-case hex
    /// sha256 of their value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub xattrs: BTreeMap<String, String>,
}

impl EntryInfo {
    /// A regular file with the given permission bits and content.
    pub fn file(mode: u32, content: &[u8]) -> Self {
        EntryInfo {
            kind: KIND_FILE.to_owned(),
            mode: format!("{:o}", mode & 0o7777),
            size: content.len() as u64,
            sha256: Some(sha256_hex(content)),
            link: None,
            xattrs: BTreeMap::new(),
        }
    }

    /// A directory with the given permission bits.
    pub fn dir(mode: u32) -> Self {
        EntryInfo {
            kind: KIND_DIR.to_owned(),
            mode: format!("{:o}", mode & 0o7777),
            size: 0,
            sha256: None,
            link: None,
            xattrs: BTreeMap::new(),
        }
    }

    /// A symbolic link to `target` (mode `777`).
    pub fn symlink(target: &str) -> Self {
        EntryInfo {
            kind: KIND_SYMLINK.to_owned(),
            mode: "777".to_owned(),
            size: 0,
            sha256: None,
            link: Some(target.to_owned()),
            xattrs: BTreeMap::new(),
        }
    }

    /// This entry with one more extended attribute (name without `user.`).
    pub fn with_xattr(mut self, name: &str, value: &[u8]) -> Self {
        self.xattrs.insert(name.to_owned(), sha256_hex(value));
        self
    }

    /// Checks that the fields are consistent with each other and well formed
    /// (the kind is known, the mode is octal, a file has a sha256, a symlink a
    /// target, and so on). Returns what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let mode_ok = !self.mode.is_empty()
            && self.mode.bytes().all(|b| (b'0'..=b'7').contains(&b))
            && (self.mode == "0" || !self.mode.starts_with('0'))
            && u32::from_str_radix(&self.mode, 8).is_ok_and(|m| m <= 0o7777);
        if !mode_ok {
            return Err(format!(
                "mode {:?} is not octal permission bits without leading zeros",
                self.mode
            ));
        }
        match self.kind.as_str() {
            KIND_FILE => {
                match &self.sha256 {
                    Some(sha) if is_sha256_hex(sha) => {}
                    Some(sha) => return Err(format!("sha256 {sha:?} is not 64 lower-case hex")),
                    None => return Err("a file without sha256".to_owned()),
                }
                if self.link.is_some() {
                    return Err("a file with a link target".to_owned());
                }
            }
            KIND_DIR | KIND_SYMLINK => {
                if self.size != 0 {
                    return Err(format!(
                        "a {} with size {} (must be 0)",
                        self.kind, self.size
                    ));
                }
                if self.sha256.is_some() {
                    return Err(format!("a {} with a sha256", self.kind));
                }
                match (self.kind.as_str(), &self.link) {
                    (KIND_DIR, Some(_)) => return Err("a dir with a link target".to_owned()),
                    (KIND_SYMLINK, None) => return Err("a symlink without target".to_owned()),
                    _ => {}
                }
            }
            other => return Err(format!("unknown type {other:?} (file, dir or symlink)")),
        }
        for (name, sha) in &self.xattrs {
            if name.is_empty() {
                return Err("an xattr with an empty name".to_owned());
            }
            if !is_sha256_hex(sha) {
                return Err(format!("xattr {name:?}: {sha:?} is not 64 lower-case hex"));
            }
        }
        Ok(())
    }
}

impl fmt::Display for EntryInfo {
    /// A short summary: `file 644, 553 bytes`, `dir 755`, `symlink -> target`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind.as_str() {
            KIND_FILE => write!(f, "file {}, {} bytes", self.mode, self.size)?,
            KIND_SYMLINK => write!(
                f,
                "symlink {} -> {:?}",
                self.mode,
                self.link.as_deref().unwrap_or_default()
            )?,
            _ => write!(f, "{} {}", self.kind, self.mode)?,
        }
        if !self.xattrs.is_empty() {
            let names: Vec<&str> = self.xattrs.keys().map(String::as_str).collect();
            write!(f, ", xattrs {names:?}")?;
        }
        Ok(())
    }
}

/// What went wrong while reading or making a listing.
#[derive(Debug, thiserror::Error)]
pub enum ListingError {
    /// A file system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path operated on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A line of a `*.expected.jsonl` file is malformed, out of order or a
    /// duplicate.
    #[error("{origin}:{line}: {message}")]
    Parse {
        /// The file (or other origin) the text came from.
        origin: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A name, link target or attribute name on disk is not UTF-8 (listings
    /// hold strings).
    #[error("{}: {what} is not valid UTF-8", path.display())]
    NotUtf8 {
        /// The entry concerned.
        path: PathBuf,
        /// Which part: "file name", "symlink target", "xattr name".
        what: &'static str,
    },
    /// An entry that is neither a file, a directory nor a symlink.
    #[error("{}: unsupported file type {kind} (listings hold files, dirs and symlinks)", path.display())]
    Unsupported {
        /// The entry concerned.
        path: PathBuf,
        /// The type found (fifo, socket, …).
        kind: &'static str,
    },
    /// A file's content is not as long as `stat` says.
    #[error("{}: stat says {stat} bytes but reading gave {read}", path.display())]
    SizeMismatch {
        /// The file concerned.
        path: PathBuf,
        /// Size from `lstat`.
        stat: u64,
        /// Bytes actually read.
        read: u64,
    },
    /// An extended attribute listed by `llistxattr` could not be read back.
    #[error("{}: xattr {name:?} was listed but has no value", path.display())]
    XattrVanished {
        /// The entry concerned.
        path: PathBuf,
        /// Full attribute name (with `user.`).
        name: String,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ListingError + '_ {
    move |source| ListingError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Checks a listing path: relative, `/`-separated, no empty, `.` or `..`
/// component.
fn validate_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("empty path".to_owned());
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(format!(
            "path {path:?} is not relative with non-empty components other than . and .."
        ));
    }
    Ok(())
}

/// One line of a golden listing.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    entry: EntryInfo,
    path: String,
}

/// Parses the text of a `*.expected.jsonl` listing.
///
/// Every line must be a well-formed entry (see [`EntryInfo::validate`]) and
/// paths must be strictly increasing (sorted, no duplicates), as the golden
/// files are. `origin` names the text in error messages (usually its file).
pub fn parse_expected(text: &str, origin: &str) -> Result<Listing, ListingError> {
    let mut listing = Listing::new();
    let mut previous: Option<String> = None;
    for (index, raw) in text.lines().enumerate() {
        let parse_error = |message: String| ListingError::Parse {
            origin: origin.to_owned(),
            line: index + 1,
            message,
        };
        let line: Line = serde_json::from_str(raw).map_err(|e| parse_error(e.to_string()))?;
        validate_path(&line.path).map_err(&parse_error)?;
        line.entry
            .validate()
            .map_err(|m| parse_error(format!("{:?}: {m}", line.path)))?;
        if let Some(prev) = &previous {
            if line.path.as_str() <= prev.as_str() {
                return Err(parse_error(format!(
                    "path {:?} does not come after {prev:?} (listings are sorted by path, \
                     without duplicates)",
                    line.path
                )));
            }
        }
        previous = Some(line.path.clone());
        listing.insert(line.path, line.entry);
    }
    Ok(listing)
}

/// Reads and parses a `*.expected.jsonl` file (see [`parse_expected`]).
pub fn read_expected(path: &Path) -> Result<Listing, ListingError> {
    let text = fs::read_to_string(path).map_err(io_error(path))?;
    parse_expected(&text, &path.display().to_string())
}

/// Every `*.expected.jsonl` file under `dir`, recursively, sorted.
pub fn expected_listing_files(dir: &Path) -> Result<Vec<PathBuf>, ListingError> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in fs::read_dir(&current).map_err(io_error(&current))? {
            let entry = entry.map_err(io_error(&current))?;
            let path = entry.path();
            let file_type = entry.file_type().map_err(io_error(&path))?;
            if file_type.is_dir() {
                pending.push(path);
            } else if entry.file_name().as_bytes().ends_with(b".expected.jsonl") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// How [`list_dir`] lists a tree.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Leave out the `user.packagefs.package` attribute that packagefs adds to
    /// every node (golden listings do not have it).
    pub skip_package_xattr: bool,
}

/// Lists the tree under `root` (which itself is not listed), without following
/// symlinks, into the golden listing format.
///
/// File contents are hashed while streaming. A file whose content is not as
/// long as `lstat` says, a name that is not UTF-8 or an entry other than a
/// file, directory or symlink is an error.
pub fn list_dir(root: &Path, options: ListOptions) -> Result<Listing, ListingError> {
    let mut listing = Listing::new();
    walk(root, "", options, &mut listing)?;
    Ok(listing)
}

fn walk(
    dir: &Path,
    prefix: &str,
    options: ListOptions,
    listing: &mut Listing,
) -> Result<(), ListingError> {
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let path = entry.path();
        let file_name = entry.file_name();
        let name = file_name.to_str().ok_or_else(|| ListingError::NotUtf8 {
            path: path.clone(),
            what: "file name",
        })?;
        let relative = if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}/{name}")
        };
        let info = entry_info(&path, options)?;
        let is_dir = info.kind == KIND_DIR;
        listing.insert(relative.clone(), info);
        if is_dir {
            walk(&path, &relative, options, listing)?;
        }
    }
    Ok(())
}

/// The listing entry of one path on disk (not following a symlink).
fn entry_info(path: &Path, options: ListOptions) -> Result<EntryInfo, ListingError> {
    let meta = fs::symlink_metadata(path).map_err(io_error(path))?;
    let file_type = meta.file_type();
    let mode = format!("{:o}", meta.mode() & 0o7777);
    let (kind, size, sha256, link) = if file_type.is_file() {
        let (sha, read) = hash_file(path)?;
        if read != meta.len() {
            return Err(ListingError::SizeMismatch {
                path: path.to_path_buf(),
                stat: meta.len(),
                read,
            });
        }
        (KIND_FILE, meta.len(), Some(sha), None)
    } else if file_type.is_dir() {
        (KIND_DIR, 0, None, None)
    } else if file_type.is_symlink() {
        let target = fs::read_link(path).map_err(io_error(path))?;
        let target = target
            .into_os_string()
            .into_string()
            .map_err(|_| ListingError::NotUtf8 {
                path: path.to_path_buf(),
                what: "symlink target",
            })?;
        (KIND_SYMLINK, 0, None, Some(target))
    } else {
        let kind = if file_type.is_fifo() {
            "fifo"
        } else if file_type.is_socket() {
            "socket"
        } else if file_type.is_block_device() {
            "block device"
        } else if file_type.is_char_device() {
            "char device"
        } else {
            "unknown"
        };
        return Err(ListingError::Unsupported {
            path: path.to_path_buf(),
            kind,
        });
    };
    Ok(EntryInfo {
        kind: kind.to_owned(),
        mode,
        size,
        sha256,
        link,
        xattrs: user_xattrs(path, options)?,
    })
}

/// Streams a file through sha256; returns the hex digest and the bytes read.
fn hash_file(path: &Path) -> Result<(String, u64), ListingError> {
    let mut file = fs::File::open(path).map_err(io_error(path))?;
    let mut hasher = Sha256::new();
    // Large reads, as a FUSE mount is best read in big requests.
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_error(path)(e)),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex(&hasher.finalize()), total))
}

/// The `user.` extended attributes of `path` (not following a symlink),
/// without the prefix, to the sha256 of their values.
fn user_xattrs(
    path: &Path,
    options: ListOptions,
) -> Result<BTreeMap<String, String>, ListingError> {
    let mut xattrs = BTreeMap::new();
    for name in xattr::list(path).map_err(io_error(path))? {
        let Some(short) = name.as_bytes().strip_prefix(b"user.") else {
            continue;
        };
        let short = std::str::from_utf8(short).map_err(|_| ListingError::NotUtf8 {
            path: path.to_path_buf(),
            what: "xattr name",
        })?;
        if options.skip_package_xattr && short == PACKAGE_XATTR {
            continue;
        }
        let value = xattr::get(path, &name)
            .map_err(io_error(path))?
            .ok_or_else(|| ListingError::XattrVanished {
                path: path.to_path_buf(),
                name: name.to_string_lossy().into_owned(),
            })?;
        xattrs.insert(short.to_owned(), sha256_hex(&value));
    }
    Ok(xattrs)
}

/// Human-readable differences between two listings, in path order; empty when
/// they are equal.
///
/// Each line names the path and what differs: `missing: "a/b" (file 644, 3
/// bytes)`, `unexpected: …`, `"a/b": mode: expected 644, got 755`,
/// `"a/b": xattr "BEOS:TYPE": missing`, and so on.
pub fn diff(expected: &Listing, actual: &Listing) -> Vec<String> {
    let mut out = Vec::new();
    let mut exp = expected.iter().peekable();
    let mut act = actual.iter().peekable();
    loop {
        match (exp.peek(), act.peek()) {
            (None, None) => break,
            (Some((path, e)), None) => {
                out.push(format!("missing: {path:?} ({e})"));
                exp.next();
            }
            (None, Some((path, a))) => {
                out.push(format!("unexpected: {path:?} ({a})"));
                act.next();
            }
            (Some((ep, e)), Some((ap, a))) => match ep.cmp(ap) {
                std::cmp::Ordering::Less => {
                    out.push(format!("missing: {ep:?} ({e})"));
                    exp.next();
                }
                std::cmp::Ordering::Greater => {
                    out.push(format!("unexpected: {ap:?} ({a})"));
                    act.next();
                }
                std::cmp::Ordering::Equal => {
                    diff_entry(ep, e, a, &mut out);
                    exp.next();
                    act.next();
                }
            },
        }
    }
    out
}

fn show(value: Option<&str>) -> String {
    match value {
        Some(v) => format!("{v:?}"),
        None => "none".to_owned(),
    }
}

fn diff_entry(path: &str, e: &EntryInfo, a: &EntryInfo, out: &mut Vec<String>) {
    if e.kind != a.kind {
        out.push(format!(
            "{path:?}: type: expected {}, got {}",
            e.kind, a.kind
        ));
    }
    if e.mode != a.mode {
        out.push(format!(
            "{path:?}: mode: expected {}, got {}",
            e.mode, a.mode
        ));
    }
    if e.size != a.size {
        out.push(format!(
            "{path:?}: size: expected {}, got {}",
            e.size, a.size
        ));
    }
    if e.sha256 != a.sha256 {
        out.push(format!(
            "{path:?}: sha256: expected {}, got {}",
            show(e.sha256.as_deref()),
            show(a.sha256.as_deref())
        ));
    }
    if e.link != a.link {
        out.push(format!(
            "{path:?}: link: expected {}, got {}",
            show(e.link.as_deref()),
            show(a.link.as_deref())
        ));
    }
    for (name, sha) in &e.xattrs {
        match a.xattrs.get(name) {
            None => out.push(format!("{path:?}: xattr {name:?}: missing")),
            Some(got) if got != sha => out.push(format!(
                "{path:?}: xattr {name:?}: value differs (sha256 expected {sha}, got {got})"
            )),
            Some(_) => {}
        }
    }
    for name in a.xattrs.keys() {
        if !e.xattrs.contains_key(name) {
            out.push(format!("{path:?}: xattr {name:?}: unexpected"));
        }
    }
}

/// How many differences [`assert_listing_eq`] shows.
const SHOWN_DIFFERENCES: usize = 50;

/// Asserts that two listings are equal.
///
/// # Panics
///
/// When they differ, with the first 50 differences from [`diff`] and the
/// number of all of them.
#[track_caller]
pub fn assert_listing_eq(expected: &Listing, actual: &Listing) {
    let differences = diff(expected, actual);
    if differences.is_empty() {
        return;
    }
    let shown = differences.len().min(SHOWN_DIFFERENCES);
    let mut message = format!(
        "listings differ: {} difference(s) between {} expected and {} actual entries",
        differences.len(),
        expected.len(),
        actual.len()
    );
    if shown < differences.len() {
        message.push_str(&format!(", first {shown} shown"));
    }
    message.push(':');
    for line in &differences[..shown] {
        message.push_str("\n  ");
        message.push_str(line);
    }
    panic!("{message}");
}
