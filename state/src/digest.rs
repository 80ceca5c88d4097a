//! [`Digest`]: the blake3 hash that names a package file's content, and the
//! hashing of files.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use serde::{Serialize, Serializer};

/// The blake3 hash of a package file. Shown and stored as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The hash of `bytes`.
    pub fn of_bytes(bytes: &[u8]) -> Digest {
        Digest(*blake3::hash(bytes).as_bytes())
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        blake3::Hash::from_bytes(self.0).to_hex().to_string()
    }

    /// Parse exactly 64 lowercase hex digits (the only form this crate writes);
    /// `None` for anything else.
    pub fn parse_hex(text: &str) -> Option<Digest> {
        if text.len() != 64
            || !text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return None;
        }
        blake3::Hash::from_hex(text)
            .ok()
            .map(|h| Digest(*h.as_bytes()))
    }
}

impl From<blake3::Hash> for Digest {
    fn from(h: blake3::Hash) -> Digest {
        Digest(*h.as_bytes())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

/// Size and hash of everything `reader` yields.
pub fn hash_reader(mut reader: impl Read) -> io::Result<(u64, Digest)> {
    let mut hasher = blake3::Hasher::new();
    let n = io::copy(&mut reader, &mut hasher)?;
    Ok((n, hasher.finalize().into()))
}

/// Size and hash of the file at `path`.
pub fn hash_file(path: &Path) -> io::Result<(u64, Digest)> {
    hash_reader(File::open(path)?)
}

/// Copy everything from `reader` to `writer`, returning the size and the hash
/// of the bytes copied (one pass).
pub fn copy_hashing(mut reader: impl Read, mut writer: impl Write) -> io::Result<(u64, Digest)> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let chunk = buf.get(..n).unwrap_or_default();
        hasher.update(chunk);
        writer.write_all(chunk)?;
        total += n as u64;
    }
    writer.flush()?;
    Ok((total, hasher.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_is_strict() {
        let d = Digest::of_bytes(b"abc");
        let hex = d.to_hex();
        assert_eq!(hex.len(), 64);
        assert_eq!(Digest::parse_hex(&hex), Some(d));
        assert_eq!(Digest::parse_hex(&hex.to_uppercase()), None);
        assert_eq!(Digest::parse_hex(&hex[1..]), None);
        assert_eq!(Digest::parse_hex(&format!("{hex}0")), None);
        assert_eq!(Digest::parse_hex(&hex.replace(&hex[..1], "g")), None);
    }

    #[test]
    fn copy_hashing_matches_hash_reader() {
        let data: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        let (n, d) = copy_hashing(&data[..], &mut out).unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(out, data);
        assert_eq!(d, Digest::of_bytes(&data));
        assert_eq!(hash_reader(&data[..]).unwrap(), (n, d));
    }
}
