//! The one seam where heap compression lives: per-chunk compress and
//! decompress for none, zlib and zstd (`docs/hpkg-format.md` §4.2, §4.5).
//!
//! Decompression always writes into a buffer of exactly the expected chunk
//! length, so a hostile chunk can never expand beyond 64 KiB (no bombs).
//! Codec contexts are kept per thread and reused.

use std::cell::RefCell;

/// Heap compression of a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Stored verbatim.
    None = 0,
    /// Each chunk a zlib stream (RFC 1950).
    Zlib = 1,
    /// Each chunk a Zstandard frame.
    Zstd = 2,
}

impl Compression {
    /// The compression for its header id.
    pub fn from_id(id: u16) -> Option<Compression> {
        match id {
            0 => Some(Compression::None),
            1 => Some(Compression::Zlib),
            2 => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// Its name as the command line spells it.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Zlib => "zlib",
            Compression::Zstd => "zstd",
        }
    }

    /// Parse a name as the command line spells it.
    pub fn parse(name: &str) -> Option<Compression> {
        match name {
            "none" => Some(Compression::None),
            "zlib" => Some(Compression::Zlib),
            "zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// The codec's own level for Haiku's 0–9 scale (spec §4.2: zlib `L`,
    /// zstd `L/9 × 22`).
    pub fn native_level(self, level: u32) -> i32 {
        let level = level.min(9) as i32;
        match self {
            Compression::None => 0,
            Compression::Zlib => level,
            Compression::Zstd => (level * 22 / 9).max(1),
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

thread_local! {
    static ZLIB_IN: RefCell<flate2::Decompress> = RefCell::new(flate2::Decompress::new(true));
    static ZSTD_IN: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// Decompress one stored chunk into `out`, which must be exactly the chunk's
/// uncompressed length. Fails (with a reason) unless the stream is valid and
/// decodes to exactly `out.len()` bytes.
pub fn decompress(compression: Compression, input: &[u8], out: &mut [u8]) -> Result<(), String> {
    match compression {
        Compression::None => {
            if input.len() != out.len() {
                return Err(format!(
                    "stored {} bytes for a {}-byte chunk",
                    input.len(),
                    out.len()
                ));
            }
            out.copy_from_slice(input);
            Ok(())
        }
        Compression::Zlib => ZLIB_IN.with(|cell| {
            let mut z = cell.borrow_mut();
            z.reset(true);
            let status = z
                .decompress(input, out, flate2::FlushDecompress::Finish)
                .map_err(|e| format!("zlib: {e}"))?;
            let produced = z.total_out();
            match status {
                flate2::Status::StreamEnd if produced == out.len() as u64 => Ok(()),
                flate2::Status::StreamEnd => Err(format!(
                    "zlib stream decodes to {produced} bytes, expected {}",
                    out.len()
                )),
                _ => Err(format!(
                    "zlib stream does not end within the {}-byte chunk",
                    out.len()
                )),
            }
        }),
        Compression::Zstd => ZSTD_IN.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                *slot = Some(zstd::bulk::Decompressor::new().map_err(|e| format!("zstd: {e}"))?);
            }
            let z = slot.as_mut().ok_or("zstd context unavailable")?;
            let n = z
                .decompress_to_buffer(input, out)
                .map_err(|e| format!("zstd: {e}"))?;
            if n != out.len() {
                return Err(format!(
                    "zstd frame decodes to {n} bytes, expected {}",
                    out.len()
                ));
            }
            Ok(())
        }),
    }
}

/// Compress one chunk. Appends the compressed form to `out` and returns
/// `true`, or returns `false` (leaving `out` as it was) when the chunk must be
/// stored raw: it is shorter than 64 bytes, or the codec cannot make it
/// strictly smaller (spec §4.3, §4.5).
pub fn compress(compression: Compression, level: u32, input: &[u8], out: &mut Vec<u8>) -> bool {
    const MIN_COMPRESS: usize = 64;
    if compression == Compression::None || input.len() < MIN_COMPRESS {
        return false;
    }
    let start = out.len();
    // Room for at most input.len() - 1 bytes: equal size must be stored raw.
    out.resize(start + input.len() - 1, 0);
    let produced = match compression {
        Compression::None => None,
        Compression::Zlib => {
            let mut z = flate2::Compress::new(
                flate2::Compression::new(compression.native_level(level) as u32),
                true,
            );
            match z.compress(input, &mut out[start..], flate2::FlushCompress::Finish) {
                Ok(flate2::Status::StreamEnd) => Some(z.total_out() as usize),
                _ => None,
            }
        }
        Compression::Zstd => zstd::bulk::Compressor::new(compression.native_level(level))
            .and_then(|mut c| c.compress_to_buffer(input, &mut out[start..]))
            .ok(),
    };
    match produced {
        Some(n) if n < input.len() => {
            out.truncate(start + n);
            true
        }
        _ => {
            out.truncate(start);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_raw_fallback() {
        let text: Vec<u8> = (0..65536u32)
            .map(|i| b"abcdefgh"[(i % 8) as usize])
            .collect();
        for c in [Compression::Zlib, Compression::Zstd] {
            let mut packed = Vec::new();
            assert!(compress(c, 9, &text, &mut packed));
            assert!(packed.len() < text.len());
            let mut back = vec![0; text.len()];
            decompress(c, &packed, &mut back).unwrap();
            assert_eq!(back, text);
            // Wrong expected size is an error, never a larger output.
            let mut short = vec![0; text.len() - 1];
            assert!(decompress(c, &packed, &mut short).is_err());
            let mut long = vec![0; text.len() + 1];
            assert!(decompress(c, &packed, &mut long).is_err());
            // Incompressible and tiny chunks are stored raw.
            let mut x = 0x9E37_79B9_7F4A_7C15u64;
            let noise: Vec<u8> = (0..4096)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let mut out = Vec::new();
            assert!(!compress(c, 9, &noise, &mut out));
            assert!(out.is_empty());
            assert!(!compress(c, 9, &[0; 63], &mut out));
            // Garbage is an error.
            assert!(decompress(c, &[1, 2, 3, 4], &mut back).is_err());
        }
    }
}
