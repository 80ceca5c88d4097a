//! Reading file and attribute payloads piece by piece, so no command ever
//! holds a whole big file in memory.

use hpkg_format::{ChunkCache, Data, Package};
use sha2::{Digest, Sha256};

use crate::error::{CliError, Result};
use crate::output::hex;

/// Size of one piece: 16 heap chunks.
pub const PIECE: usize = 1 << 20;

/// A reusable buffer of one piece.
pub struct PieceBuf(Vec<u8>);

impl PieceBuf {
    /// A fresh buffer.
    pub fn new() -> PieceBuf {
        PieceBuf(vec![0u8; PIECE])
    }
}

impl Default for PieceBuf {
    fn default() -> Self {
        Self::new()
    }
}

/// Call `sink` with the payload `data` of `pkg`, in pieces of at most
/// [`PIECE`] bytes, in order.
pub fn for_each_piece(
    pkg: &Package,
    data: Data<'_>,
    cache: &dyn ChunkCache,
    buf: &mut PieceBuf,
    mut sink: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let len = data.len();
    let mut offset = 0u64;
    while offset < len {
        let n = pkg
            .read_data(data, offset, &mut buf.0, cache)
            .map_err(|e| {
                CliError::from(match pkg.path() {
                    Some(p) => e.in_file(p),
                    None => e,
                })
            })?;
        let piece = buf.0.get(..n).unwrap_or_default();
        if piece.is_empty() {
            break;
        }
        sink(piece)?;
        offset += n as u64;
    }
    Ok(())
}

/// SHA-256 of a payload, as lower-case hex.
pub fn sha256(
    pkg: &Package,
    data: Data<'_>,
    cache: &dyn ChunkCache,
    buf: &mut PieceBuf,
) -> Result<String> {
    let mut h = Sha256::new();
    for_each_piece(pkg, data, cache, buf, |piece| {
        h.update(piece);
        Ok(())
    })?;
    Ok(hex(&h.finalize()))
}
