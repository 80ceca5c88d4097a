//! Reading a `.deb`: the `ar` container, `debian-binary`, and the control
//! and data tar members with their compressions.
//!
//! Every member is read to its end and its length checked against the `ar`
//! header, so a truncated file is an error, never a short package.

use std::collections::HashMap;
use std::io::{self, Read};

use super::ErrorKind;

/// A file of the control member (`control`, `md5sums`, `postinst` …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlFile {
    /// Its name (no directory: the control member is flat).
    pub name: String,
    /// Permission bits.
    pub mode: u32,
    /// Modification time, seconds.
    pub mtime: u64,
    /// Contents.
    pub data: Vec<u8>,
}

/// One entry of the data member, path normalised (`usr/bin/x`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DataEntry {
    /// A directory.
    Dir {
        /// Path.
        path: Vec<u8>,
        /// Permission bits.
        mode: u32,
        /// Modification time, seconds.
        mtime: u64,
    },
    /// A regular file; hard links are resolved into files too.
    File {
        /// Path.
        path: Vec<u8>,
        /// Permission bits.
        mode: u32,
        /// Modification time, seconds.
        mtime: u64,
        /// Contents.
        data: Vec<u8>,
    },
    /// A symbolic link.
    Symlink {
        /// Path.
        path: Vec<u8>,
        /// Permission bits.
        mode: u32,
        /// Modification time, seconds.
        mtime: u64,
        /// Target, as stored.
        target: Vec<u8>,
    },
}

/// What a `.deb` holds.
#[derive(Debug, Default)]
pub struct Deb {
    /// The files of the control member, in archive order.
    pub control: Vec<ControlFile>,
    /// The entries of the data member, in archive order.
    pub data: Vec<DataEntry>,
    /// Bytes of the `.deb` members as stored (compressed).
    pub stored_size: u64,
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// The decompressor for a member named `<stem>.tar[.ext]`.
fn decoder<'a, R: Read + 'a>(member: &str, r: R) -> Result<Box<dyn Read + 'a>, ErrorKind> {
    let ext = member.rsplit_once(".tar").map(|(_, e)| e).unwrap_or("?");
    Ok(match ext {
        "" => Box::new(r),
        ".gz" => Box::new(flate2::read::GzDecoder::new(r)),
        ".xz" => Box::new(liblzma::read::XzDecoder::new(r)),
        ".zst" => {
            Box::new(zstd::stream::read::Decoder::new(r).map_err(|e| ErrorKind::member(member, e))?)
        }
        ".bz2" => Box::new(bzip2::read::BzDecoder::new(r)),
        _ => return Err(ErrorKind::UnknownCompression(member.to_string())),
    })
}

/// Read a `.deb` from `reader`; with `control_only`, stop after the
/// control member (the data member is neither read nor required).
pub fn read(reader: impl Read, control_only: bool) -> Result<Deb, ErrorKind> {
    let mut ar = ar::Archive::new(reader);
    let mut deb = Deb::default();
    let mut seen_binary = false;
    let mut seen_control = false;
    let mut seen_data = false;
    while let Some(entry) = ar.next_entry() {
        let mut entry = entry.map_err(|e| ErrorKind::NotAr(e.to_string()))?;
        let name = String::from_utf8_lossy(entry.header().identifier())
            .trim_end_matches('/')
            .to_string();
        let size = entry.header().size();
        deb.stored_size += size;
        let mut counting = Counting {
            inner: &mut entry,
            count: 0,
        };
        if !seen_binary {
            if name != "debian-binary" {
                return Err(ErrorKind::MissingMember("debian-binary (first member)"));
            }
            let mut text = String::new();
            counting
                .read_to_string(&mut text)
                .map_err(|e| ErrorKind::member(&name, e))?;
            let version = text.trim();
            if !version.starts_with("2.") {
                return Err(ErrorKind::FormatVersion(version.to_string()));
            }
            seen_binary = true;
        } else if name.starts_with("control.tar") && !seen_control {
            let r = decoder(&name, &mut counting)?;
            deb.control = read_control(&name, r)?;
            seen_control = true;
            if control_only {
                return Ok(deb);
            }
        } else if name.starts_with("data.tar") && !seen_data {
            if !seen_control {
                return Err(ErrorKind::MissingMember("control.tar (before data.tar)"));
            }
            let r = decoder(&name, &mut counting)?;
            deb.data = read_data(&name, r)?;
            seen_data = true;
        } else if name.starts_with('_') {
            // Members starting with `_` are reserved for local use; dpkg skips them.
        } else {
            return Err(ErrorKind::UnexpectedMember(name));
        }
        // Drain what a decoder left (tar padding) and check the length.
        io::copy(&mut counting, &mut io::sink()).map_err(|e| ErrorKind::member(&name, e))?;
        if counting.count != size {
            return Err(ErrorKind::Truncated {
                member: name,
                expected: size,
                found: counting.count,
            });
        }
    }
    if !seen_binary {
        return Err(ErrorKind::NotAr("an empty archive".into()));
    }
    if !seen_control {
        return Err(ErrorKind::MissingMember("control.tar"));
    }
    if !seen_data {
        return Err(ErrorKind::MissingMember("data.tar"));
    }
    Ok(deb)
}

/// Normalise a tar path: `./usr/bin/x` → `usr/bin/x`, `.` components and
/// trailing slashes dropped; `..` components and absolute paths refused.
/// `None` for the root itself.
pub fn normalize(path: &[u8]) -> Result<Option<Vec<u8>>, ErrorKind> {
    if path.first() == Some(&b'/') {
        return Err(ErrorKind::UnsafePath(String::from_utf8_lossy(path).into()));
    }
    let mut parts: Vec<&[u8]> = Vec::new();
    for p in path.split(|&b| b == b'/') {
        match p {
            b"" | b"." => {}
            b".." => return Err(ErrorKind::UnsafePath(String::from_utf8_lossy(path).into())),
            p => parts.push(p),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join(&b'/')))
}

fn tar_err(member: &str, e: io::Error) -> ErrorKind {
    ErrorKind::member(member, e)
}

/// Read the entry's contents, checking its length against the header.
fn contents<R: Read>(member: &str, entry: &mut tar::Entry<'_, R>) -> Result<Vec<u8>, ErrorKind> {
    let size = entry.header().size().map_err(|e| tar_err(member, e))?;
    let mut data = Vec::with_capacity(usize::try_from(size.min(1 << 26)).unwrap_or(0));
    entry
        .read_to_end(&mut data)
        .map_err(|e| tar_err(member, e))?;
    if data.len() as u64 != size {
        return Err(ErrorKind::Truncated {
            member: member.to_string(),
            expected: size,
            found: data.len() as u64,
        });
    }
    Ok(data)
}

fn read_control(member: &str, r: impl Read) -> Result<Vec<ControlFile>, ErrorKind> {
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(r);
    for entry in archive.entries().map_err(|e| tar_err(member, e))? {
        let mut entry = entry.map_err(|e| tar_err(member, e))?;
        let header = entry.header().clone();
        let path = normalize(&entry.path_bytes())?;
        match header.entry_type() {
            tar::EntryType::Directory => continue,
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            _ => {
                return Err(ErrorKind::SpecialFile {
                    path: format!("{member}/{}", String::from_utf8_lossy(&entry.path_bytes())),
                    what: "not a regular file in the control member",
                })
            }
        }
        let Some(path) = path else { continue };
        let name = String::from_utf8_lossy(&path).into_owned();
        if name.contains('/') {
            return Err(ErrorKind::UnsafePath(format!("{member}/{name}")));
        }
        let data = contents(member, &mut entry)?;
        out.push(ControlFile {
            name,
            mode: header.mode().map_err(|e| tar_err(member, e))? & 0o7777,
            mtime: header.mtime().map_err(|e| tar_err(member, e))?,
            data,
        });
    }
    Ok(out)
}

fn read_data(member: &str, r: impl Read) -> Result<Vec<DataEntry>, ErrorKind> {
    let mut out: Vec<DataEntry> = Vec::new();
    let mut files: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut archive = tar::Archive::new(r);
    for entry in archive.entries().map_err(|e| tar_err(member, e))? {
        let mut entry = entry.map_err(|e| tar_err(member, e))?;
        let header = entry.header().clone();
        let kind = header.entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
        ) {
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        let Some(path) = normalize(&raw)? else {
            continue;
        };
        let mode = header.mode().map_err(|e| tar_err(member, e))? & 0o7777;
        let mtime = header.mtime().map_err(|e| tar_err(member, e))?;
        let item = match kind {
            tar::EntryType::Directory => DataEntry::Dir { path, mode, mtime },
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let data = contents(member, &mut entry)?;
                files.insert(path.clone(), out.len());
                DataEntry::File {
                    path,
                    mode,
                    mtime,
                    data,
                }
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .map(|t| t.into_owned())
                    .ok_or_else(|| ErrorKind::member(member, "a symlink without a target"))?;
                DataEntry::Symlink {
                    path,
                    mode,
                    mtime,
                    target,
                }
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| ErrorKind::member(member, "a hard link without a target"))?;
                let target = normalize(&target)?.unwrap_or_default();
                // A hard link shares the inode of its target: same content,
                // mode and time.
                let (data, mode, mtime) = match files.get(&target).and_then(|&i| out.get(i)) {
                    Some(DataEntry::File {
                        data, mode, mtime, ..
                    }) => (data.clone(), *mode, *mtime),
                    _ => {
                        return Err(ErrorKind::member(
                            member,
                            format!(
                                "hard link {} to {}, which is not an earlier regular file",
                                String::from_utf8_lossy(&path),
                                String::from_utf8_lossy(&target)
                            ),
                        ))
                    }
                };
                files.insert(path.clone(), out.len());
                DataEntry::File {
                    path,
                    mode,
                    mtime,
                    data,
                }
            }
            other => {
                let what = match other {
                    tar::EntryType::Char => "a character device",
                    tar::EntryType::Block => "a block device",
                    tar::EntryType::Fifo => "a FIFO",
                    _ => "of an unsupported tar entry type",
                };
                return Err(ErrorKind::SpecialFile {
                    path: String::from_utf8_lossy(&path).into_owned(),
                    what,
                });
            }
        };
        out.push(item);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_refuses_escapes() {
        assert_eq!(
            normalize(b"./usr/bin/x").unwrap(),
            Some(b"usr/bin/x".to_vec())
        );
        assert_eq!(normalize(b"./usr/lib/").unwrap(), Some(b"usr/lib".to_vec()));
        assert_eq!(normalize(b"./").unwrap(), None);
        assert!(normalize(b"./usr/../../etc").is_err());
        assert!(normalize(b"/etc/passwd").is_err());
    }
}
