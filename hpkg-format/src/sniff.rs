//! Tell a package from a repository index by its magic bytes.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::error::{Error, Location, Result};
use crate::header::{HPKG_MAGIC, HPKR_MAGIC};

/// What kind of file a path holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// An `.hpkg` package.
    Package,
    /// An `.hpkr` repository index.
    Repository,
}

/// Read the first four bytes of `path` and say whether it is a package or a
/// repository. Errors name the file.
pub fn sniff(path: impl AsRef<Path>) -> Result<FileKind> {
    let path = path.as_ref();
    let mut magic = [0u8; 4];
    let mut n = 0;
    let mut f = File::open(path).map_err(|e| Error::Io(e).in_file(path))?;
    while n < magic.len() {
        match f.read(&mut magic[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Io(e).in_file(path)),
        }
    }
    if n < magic.len() {
        return Err(Error::Truncated {
            what: "magic",
            at: Location::File(0),
            needed: 4,
            available: n as u64,
        }
        .in_file(path));
    }
    match magic {
        HPKG_MAGIC => Ok(FileKind::Package),
        HPKR_MAGIC => Ok(FileKind::Repository),
        found => Err(Error::BadMagic {
            expected: "hpkg or hpkr",
            found,
        }
        .in_file(path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn tells_kinds_apart() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            File::create(&p).unwrap().write_all(bytes).unwrap();
            p
        };
        assert_eq!(sniff(write("a", b"hpkg\0P")).unwrap(), FileKind::Package);
        assert_eq!(sniff(write("b", b"hpkr\0H")).unwrap(), FileKind::Repository);
        let bad = write("c", b"nope");
        let e = sniff(&bad).unwrap_err();
        assert!(matches!(e.root(), Error::BadMagic { .. }));
        assert!(e.to_string().contains("nope") || e.to_string().contains(&*bad.to_string_lossy()));
        assert!(matches!(
            sniff(write("d", b"hp")).unwrap_err().root(),
            Error::Truncated { .. }
        ));
    }
}
