//! Staging copies and the retained store `system/state/store/<blake3>.hpkg`:
//! package files that kept generations need but that are no longer in a
//! packages directory. Files move between `packages/` and the store by rename
//! or are copied; they are never hard-linked (a later `cp` over a name in
//! `packages/` would otherwise write through into an old generation).

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::digest::{copy_hashing, Digest};
use crate::error::{io_at, Error, Result};
use crate::fsutil::{create_new, sync_file, temp_path};

/// A staged copy: a fsynced temporary beside its target.
#[derive(Debug)]
pub(crate) struct Staged {
    /// The temporary.
    pub temp: PathBuf,
    /// Bytes copied.
    pub size: u64,
    /// Their hash.
    pub hash: Digest,
}

/// Copy everything `reader` yields into a new temporary beside `target`,
/// hashing on the way, and fsync it. The temporary is removed on failure.
pub(crate) fn stage_copy(
    reader: impl Read,
    source: &Path,
    target: &Path,
    point: &'static str,
) -> Result<Staged> {
    let temp = temp_path(target);
    let result = (|| {
        let mut out = create_new(&temp)?;
        let (size, hash) = copy_hashing(reader, &mut out).map_err(|e| {
            // Name the side that failed: reads name the source.
            match e.kind() {
                io::ErrorKind::WriteZero | io::ErrorKind::StorageFull => {
                    Error::io(&temp, "write", e)
                }
                _ => Error::io(source, "copy", e),
            }
        })?;
        sync_file(&out, &temp, point)?;
        Ok(Staged {
            temp: temp.clone(),
            size,
            hash,
        })
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Stage a copy of the file at `source` beside `target`.
pub(crate) fn stage_copy_of(source: &Path, target: &Path, point: &'static str) -> Result<Staged> {
    let f = File::open(source).map_err(io_at(source, "open"))?;
    stage_copy(f, source, target, point)
}

/// Reads a file from offset 0 with positioned reads, leaving the file
/// description's offset alone (the daemon shares the descriptor).
pub(crate) struct PositionedReader<'a> {
    file: &'a File,
    offset: u64,
}

impl<'a> PositionedReader<'a> {
    /// Read `file` from its start.
    pub fn new(file: &'a File) -> Self {
        PositionedReader { file, offset: 0 }
    }
}

impl Read for PositionedReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.offset)?;
        self.offset += n as u64;
        Ok(n)
    }
}

/// Stage the content of an open file into a temporary for `store/<hash>`,
/// checking that it still has the expected size and hash.
pub(crate) fn stage_retained(
    file: &File,
    what: &str,
    expected_size: u64,
    expected: &Digest,
    store_file: &Path,
) -> Result<Staged> {
    let staged = stage_copy(
        PositionedReader::new(file),
        Path::new(what),
        store_file,
        "store.copy.fsync",
    )?;
    if staged.size != expected_size || staged.hash != *expected {
        let _ = fs::remove_file(&staged.temp);
        return Err(Error::ContentMismatch {
            what: what.to_string(),
            expected_size,
            expected: *expected,
            size: staged.size,
            actual: staged.hash,
        });
    }
    Ok(staged)
}

/// Rename `from` to `to` unless `to` exists (`renameat2(RENAME_NOREPLACE)`;
/// on file systems without it, a check then a rename, which is correct under
/// the root's lock).
pub(crate) fn rename_noreplace(from: &Path, to: &Path, point: &'static str) -> Result<()> {
    let run = || -> io::Result<()> {
        #[cfg(feature = "failpoints")]
        fail::fail_point!(point, |_| Err(io::Error::other(format!(
            "injected failure at failpoint {point}"
        ))));
        let _ = point;
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
            Ok(()) => Ok(()),
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
                if fs::symlink_metadata(to).is_ok() {
                    return Err(io::Error::from(rustix::io::Errno::EXIST));
                }
                fs::rename(from, to)
            }
            Err(e) => Err(e.into()),
        }
    };
    run().map_err(io_at(to, "rename (no replace)"))
}
