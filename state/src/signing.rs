//! Keys and signatures in minisign's formats (ed25519; `minisign -Vm FILE -p
//! KEY.pub` checks what is signed here), through the `minisign` crate, and
//! the trusted comment of a signed repository index ([`IndexStamp`]).
//!
//! * A public key file is minisign's two lines (`untrusted comment: ...`,
//!   then the base64 key); [`PublicKey::parse`] also takes the base64 line
//!   alone, as repository settings store it.
//! * A secret key file is unencrypted unless generated with a password (as
//!   `minisign -G -W` and `minisign -G`).
//! * Signatures are minisign's pre-hashed ones (BLAKE2b of the data, then
//!   ed25519), with a trusted comment that the signature covers.

use std::fmt;
use std::io::{Read, Seek};
use std::path::Path;

use crate::error::{Error, Result};

/// A public key that checks signatures.
#[derive(Clone)]
pub struct PublicKey(minisign::PublicKey);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.id())
    }
}

/// A secret key, decrypted, that makes signatures.
pub struct SecretKey(minisign::SecretKey);

/// A freshly generated key pair, as the texts of its two files.
#[derive(Debug, Clone)]
pub struct GeneratedKeys {
    /// The public key file (`NAME.pub`).
    pub public: String,
    /// The secret key file (`NAME.key`).
    pub secret: String,
    /// The key id (16 hex digits, as minisign prints it).
    pub id: String,
}

fn bad(path: &Path, reason: impl fmt::Display) -> Error {
    Error::Signature {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// minisign's key id: the 8-byte key number as a little-endian integer in
/// upper-case hex.
fn key_id(keynum: &[u8]) -> String {
    keynum.iter().rev().map(|b| format!("{b:02X}")).collect()
}

/// How a new secret key is protected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protection {
    /// Stored unencrypted (as `minisign -G -W`): CI can sign without a prompt.
    Unencrypted,
    /// Encrypted with this password (scrypt, as minisign does).
    Password(String),
    /// Encrypted with a password asked for twice on the terminal.
    Prompt,
}

/// Make a new key pair; `comment` is the untrusted comment of the secret
/// key file.
pub fn generate(protection: Protection, comment: &str) -> Result<GeneratedKeys> {
    let here = Path::new("<new key>");
    let pair = match protection {
        Protection::Password(p) => minisign::KeyPair::generate_encrypted_keypair(Some(p)),
        Protection::Prompt => minisign::KeyPair::generate_encrypted_keypair(None),
        Protection::Unencrypted => minisign::KeyPair::generate_unencrypted_keypair(),
    }
    .map_err(|e| bad(here, e))?;
    let public = pair.pk.to_box().map_err(|e| bad(here, e))?.to_string();
    let secret = pair
        .sk
        .to_box(Some(comment))
        .map_err(|e| bad(here, e))?
        .to_string();
    Ok(GeneratedKeys {
        public,
        secret,
        id: key_id(pair.pk.keynum()),
    })
}

impl PublicKey {
    /// A key from the text of a `.pub` file (two lines) or its base64 line
    /// alone; `path` names where it came from in errors.
    pub fn parse(text: &str, path: &Path) -> Result<PublicKey> {
        let line = text
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
            .ok_or_else(|| bad(path, "no public key in the file"))?;
        minisign::PublicKey::from_base64(line)
            .map(PublicKey)
            .map_err(|e| bad(path, format!("not a minisign public key: {e}")))
    }

    /// Read a `.pub` file.
    pub fn load(path: &Path) -> Result<PublicKey> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))?;
        PublicKey::parse(&text, path)
    }

    /// The base64 line of the key (what `minisign -P` takes).
    pub fn to_base64(&self) -> String {
        self.0.to_base64()
    }

    /// The key id, 16 hex digits.
    pub fn id(&self) -> String {
        key_id(self.0.keynum())
    }

    /// Check `sig` (the text of a `.minisig` file, from `sig_path`) over
    /// `data`. Returns the trusted comment it covers. Legacy (not pre-hashed)
    /// signatures are refused.
    pub fn verify(&self, data: impl Read + Seek, sig: &str, sig_path: &Path) -> Result<String> {
        let sig_box = minisign::SignatureBox::from_string(sig)
            .map_err(|e| bad(sig_path, format!("not a minisign signature: {e}")))?;
        minisign::verify(&self.0, &sig_box, data, true, false, false).map_err(|e| {
            bad(
                sig_path,
                format!("signature does not verify with key {}: {e}", self.id()),
            )
        })?;
        sig_box
            .trusted_comment()
            .map_err(|e| bad(sig_path, format!("unreadable trusted comment: {e}")))
    }
}

impl SecretKey {
    /// Read a secret key file. An encrypted key is decrypted with `password`
    /// (when `None`, minisign asks for it on the terminal).
    pub fn load(path: &Path, password: Option<String>) -> Result<SecretKey> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, "read", e))?;
        let sk_box = minisign::SecretKeyBox::from_string(&text)
            .map_err(|e| bad(path, format!("not a minisign secret key: {e}")))?;
        match minisign::SecretKey::from_unencrypted_box(sk_box.clone()) {
            Ok(k) => Ok(SecretKey(k)),
            Err(plain) => match minisign::SecretKey::from_box(sk_box, password) {
                Ok(k) => Ok(SecretKey(k)),
                Err(e) => Err(bad(
                    path,
                    format!("unusable secret key: {e} (unencrypted: {plain})"),
                )),
            },
        }
    }

    /// Sign `data`, covering `trusted_comment` too. Returns the text of the
    /// `.minisig` file.
    pub fn sign(&self, data: impl Read, trusted_comment: &str, path: &Path) -> Result<String> {
        if trusted_comment.contains('\n') {
            return Err(bad(path, "a trusted comment cannot hold a line break"));
        }
        minisign::sign(
            None,
            &self.0,
            data,
            Some(trusted_comment),
            Some("signature from pkgctl secret key"),
        )
        .map(|s| s.into_string())
        .map_err(|e| bad(path, e))
    }
}

/// What the trusted comment of a repository index signature says:
/// `timestamp:<secs> file:repo name:<name> version:<n> expires:<secs>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexStamp {
    /// When it was signed (seconds since the epoch).
    pub timestamp: i64,
    /// The repository name.
    pub name: String,
    /// The index version; a client never accepts a lower one than it has.
    pub version: u64,
    /// When the index stops being accepted (seconds since the epoch).
    pub expires: i64,
}

impl fmt::Display for IndexStamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timestamp:{} file:repo name:{} version:{} expires:{}",
            self.timestamp, self.name, self.version, self.expires
        )
    }
}

impl IndexStamp {
    /// Parse a trusted comment; `None` when a field is missing or malformed.
    pub fn parse(comment: &str) -> Option<IndexStamp> {
        let field = |key: &str| {
            comment
                .split_whitespace()
                .find_map(|t| t.strip_prefix(key)?.strip_prefix(':'))
        };
        Some(IndexStamp {
            timestamp: field("timestamp")?.parse().ok()?,
            name: field("name")?.to_string(),
            version: field("version")?.parse().ok()?,
            expires: field("expires")?.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn keys(dir: &Path, password: Option<&str>) -> (PublicKey, SecretKey) {
        let protection = match password {
            Some(p) => Protection::Password(p.into()),
            None => Protection::Unencrypted,
        };
        let g = generate(protection, "test key").unwrap();
        let (p, s) = (dir.join("k.pub"), dir.join("k.key"));
        std::fs::write(&p, &g.public).unwrap();
        std::fs::write(&s, &g.secret).unwrap();
        let pk = PublicKey::load(&p).unwrap();
        assert_eq!(pk.id(), g.id);
        (pk, SecretKey::load(&s, password.map(String::from)).unwrap())
    }

    #[test]
    fn signatures_verify_and_carry_their_comment() {
        let dir = tempfile::tempdir().unwrap();
        for password in [None, Some("pw")] {
            let (pk, sk) = keys(dir.path(), password);
            let here = Path::new("x.minisig");
            let sig = sk.sign(&b"data"[..], "hello there", here).unwrap();
            assert_eq!(
                pk.verify(Cursor::new(b"data"), &sig, here).unwrap(),
                "hello there"
            );
            assert!(
                pk.verify(Cursor::new(b"dat4"), &sig, here).is_err(),
                "changed data"
            );
            let forged = sig.replace("hello there", "hello thera");
            assert!(
                pk.verify(Cursor::new(b"data"), &forged, here).is_err(),
                "changed comment"
            );
            let (other, _) = keys(dir.path(), None);
            assert!(
                other.verify(Cursor::new(b"data"), &sig, here).is_err(),
                "other key"
            );
            // The bare base64 line is a key too.
            PublicKey::parse(&pk.to_base64(), here).unwrap();
        }
    }

    #[test]
    fn index_stamps_round_trip() {
        let s = IndexStamp {
            timestamp: 5,
            name: "main".into(),
            version: 7,
            expires: 99,
        };
        let text = s.to_string();
        assert_eq!(IndexStamp::parse(&text), Some(s));
        assert_eq!(
            IndexStamp::parse("timestamp:5 name:x version:x expires:1"),
            None
        );
        assert_eq!(IndexStamp::parse("timestamp:5 file:repo"), None);
    }
}
