//! The chunking heap writer (spec §4.3, §4.5): uncompressed bytes are
//! gathered into 64 KiB chunks, each chunk is compressed on its own (or
//! stored raw when that does not make it strictly smaller, and always when it
//! is shorter than 64 bytes — both decided by [`codec::compress`]), and the
//! chunk-size table follows the last chunk.
//!
//! Only one chunk is ever held in memory; stored chunks go straight to the
//! output.

use std::io::{self, Write};

use crate::codec::{self, Compression};
use crate::heap::CHUNK_SIZE;

/// Final sizes of a written heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeapSizes {
    /// Uncompressed heap size.
    pub uncompressed: u64,
    /// Stored size: chunk bytes plus the chunk-size table.
    pub compressed: u64,
}

/// Writes a heap to `out` (positioned where the heap starts).
#[derive(Debug)]
pub(crate) struct HeapWriter<W: Write> {
    out: W,
    compression: Compression,
    level: u32,
    /// Bytes of the chunk being gathered (< 64 KiB between calls).
    pending: Vec<u8>,
    /// Compression output buffer, reused.
    scratch: Vec<u8>,
    /// Stored size − 1 of every chunk emitted so far.
    table: Vec<u16>,
    /// Uncompressed bytes in emitted chunks.
    flushed: u64,
    /// Stored bytes of emitted chunks.
    stored: u64,
}

impl<W: Write> HeapWriter<W> {
    /// A heap writer with Haiku's 0–9 `level` scale.
    pub fn new(out: W, compression: Compression, level: u32) -> Self {
        HeapWriter {
            out,
            compression,
            level,
            pending: Vec::with_capacity(CHUNK_SIZE),
            scratch: Vec::with_capacity(CHUNK_SIZE),
            table: Vec::new(),
            flushed: 0,
            stored: 0,
        }
    }

    /// Current uncompressed size: the heap offset the next byte will get.
    pub fn offset(&self) -> u64 {
        self.flushed + self.pending.len() as u64
    }

    /// Append bytes to the heap.
    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.pending.is_empty() && data.len() >= CHUNK_SIZE {
                // A whole chunk straight from the caller's buffer.
                let (chunk, rest) = data.split_at(CHUNK_SIZE);
                self.emit(chunk)?;
                data = rest;
                continue;
            }
            let n = (CHUNK_SIZE - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.pending.len() == CHUNK_SIZE {
                let chunk = std::mem::take(&mut self.pending);
                let result = self.emit(&chunk);
                self.pending = chunk;
                self.pending.clear();
                result?;
            }
        }
        Ok(())
    }

    /// Store one chunk, compressed if that makes it strictly smaller.
    fn emit(&mut self, chunk: &[u8]) -> io::Result<()> {
        debug_assert!(!chunk.is_empty() && chunk.len() <= CHUNK_SIZE);
        self.scratch.clear();
        let stored: &[u8] =
            if codec::compress(self.compression, self.level, chunk, &mut self.scratch) {
                &self.scratch
            } else {
                chunk
            };
        self.out.write_all(stored)?;
        // 1 ≤ stored.len() ≤ 65536, so the entry fits in a u16.
        self.table.push((stored.len() - 1) as u16);
        self.flushed += chunk.len() as u64;
        self.stored += stored.len() as u64;
        Ok(())
    }

    /// Emit the last, partial chunk and the chunk-size table; hand back the
    /// output and the final sizes.
    pub fn finish(mut self) -> io::Result<(W, HeapSizes)> {
        if !self.pending.is_empty() {
            let chunk = std::mem::take(&mut self.pending);
            self.emit(&chunk)?;
        }
        if self.compression != Compression::None && self.table.len() > 1 {
            let entries = &self.table[..self.table.len() - 1];
            let mut bytes = Vec::with_capacity(entries.len() * 2);
            for e in entries {
                bytes.extend_from_slice(&e.to_be_bytes());
            }
            self.out.write_all(&bytes)?;
            self.stored += bytes.len() as u64;
        }
        Ok((
            self.out,
            HeapSizes {
                uncompressed: self.flushed,
                compressed: self.stored,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::header::HeapGeometry;
    use crate::heap::{Heap, NoCache};

    /// Deterministic incompressible bytes.
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn text(len: usize) -> Vec<u8> {
        (0..len).map(|i| b"hello heap "[i % 11]).collect()
    }

    /// Write `parts` through a heap writer, reopen with the reader.
    fn round_trip(c: Compression, parts: &[&[u8]]) -> (Heap, HeapSizes, Vec<u8>) {
        let mut w = HeapWriter::new(Vec::new(), c, 9);
        let mut want = Vec::new();
        for p in parts {
            assert_eq!(w.offset(), want.len() as u64);
            w.write(p).unwrap();
            want.extend_from_slice(p);
        }
        let (bytes, sizes) = w.finish().unwrap();
        assert_eq!(sizes.uncompressed, want.len() as u64);
        assert_eq!(sizes.compressed, bytes.len() as u64);
        let heap = Heap::open(
            Arc::new(bytes),
            HeapGeometry {
                offset: 0,
                compression: c as u16,
                compressed_size: sizes.compressed,
                uncompressed_size: sizes.uncompressed,
            },
        )
        .unwrap();
        let mut back = vec![0; want.len()];
        heap.read_at(0, &mut back, &NoCache).unwrap();
        assert!(back == want, "{c}: heap content differs");
        (heap, sizes, want)
    }

    #[test]
    fn chunks_are_cut_at_exactly_64_kib() {
        for c in [Compression::None, Compression::Zlib, Compression::Zstd] {
            // Odd-sized writes straddling boundaries, and a 10-byte tail.
            let data = text(2 * CHUNK_SIZE + 10);
            let (a, b) = data.split_at(1000);
            let (b, rest) = b.split_at(CHUNK_SIZE + 7);
            let (heap, _, _) = round_trip(c, &[a, b, rest]);
            assert_eq!(heap.chunk_count(), 3);
            assert_eq!(heap.chunk_len(0), CHUNK_SIZE);
            assert_eq!(heap.chunk_len(1), CHUNK_SIZE);
            assert_eq!(heap.chunk_len(2), 10);
            if c != Compression::None {
                // Compressible full chunks are compressed ...
                assert!(heap.stored_range(0).1 < CHUNK_SIZE as u64);
                // ... the tail under 64 bytes is stored raw.
                assert_eq!(heap.stored_range(2).1, 10);
            }
        }
    }

    #[test]
    fn exact_multiple_has_no_empty_tail() {
        let data = text(2 * CHUNK_SIZE);
        let (heap, sizes, _) = round_trip(Compression::Zstd, &[&data]);
        assert_eq!(heap.chunk_count(), 2);
        // Two chunks, one table entry.
        let (at, len) = heap.stored_range(1);
        assert_eq!(sizes.compressed, at + len + 2);
    }

    #[test]
    fn incompressible_chunks_are_stored_raw() {
        for c in [Compression::Zlib, Compression::Zstd] {
            let mut data = noise(CHUNK_SIZE, 7);
            data.extend(text(CHUNK_SIZE));
            data.extend(noise(100, 9));
            let (heap, _, _) = round_trip(c, &[&data]);
            let stored = |i| heap.stored_range(i).1;
            assert_eq!(stored(0), CHUNK_SIZE as u64, "{c}: noise chunk raw");
            assert!(stored(1) < CHUNK_SIZE as u64, "{c}: text chunk compressed");
            assert_eq!(stored(2), 100, "{c}: incompressible tail raw");
        }
    }

    #[test]
    fn short_tail_is_raw_even_when_compressible() {
        for c in [Compression::Zlib, Compression::Zstd] {
            let mut data = text(CHUNK_SIZE);
            data.extend(vec![0u8; 63]);
            let (heap, _, _) = round_trip(c, &[&data]);
            assert_eq!(heap.stored_range(1).1, 63);
            // 64 zero bytes do compress.
            let mut data = text(CHUNK_SIZE);
            data.extend(vec![0u8; 64]);
            let (heap, _, _) = round_trip(c, &[&data]);
            assert!(heap.stored_range(1).1 < 64);
        }
    }

    #[test]
    fn uncompressed_heap_is_verbatim() {
        let data = noise(3 * CHUNK_SIZE + 5, 3);
        let mut w = HeapWriter::new(Vec::new(), Compression::None, 9);
        w.write(&data).unwrap();
        let (bytes, sizes) = w.finish().unwrap();
        assert_eq!(bytes, data);
        assert_eq!(sizes.compressed, sizes.uncompressed);
    }
}
