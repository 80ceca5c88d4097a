//! The chunking heap writer (`docs/hpkg-format.md` §4.3, §4.5): uncompressed bytes are
//! gathered into 64 KiB chunks, each chunk is compressed on its own (or
//! stored raw when that does not make it strictly smaller, and always when it
//! is shorter than 64 bytes — both decided by [`codec::compress`]), and the
//! chunk-size table follows the last chunk.
//!
//! Chunks are independent, so they are compressed on several threads: full
//! chunks are gathered into a batch of one chunk per thread (at most
//! [`MAX_THREADS`], so memory stays bounded at a few 64 KiB buffers),
//! compressed in parallel, and written in order. The output does not depend
//! on the number of threads.

use std::io::{self, Write};

use crate::codec::{self, Compression};
use crate::heap::CHUNK_SIZE;

/// Most threads compressing at once.
pub(crate) const MAX_THREADS: usize = 8;

/// Final sizes of a written heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeapSizes {
    /// Uncompressed heap size.
    pub uncompressed: u64,
    /// Stored size: chunk bytes plus the chunk-size table.
    pub compressed: u64,
}

/// One chunk of a batch: its bytes and, once compressed, the stored form.
#[derive(Debug, Default)]
struct Slot {
    raw: Vec<u8>,
    packed: Vec<u8>,
    compressed: bool,
}

impl Slot {
    fn compress(&mut self, compression: Compression, level: u32) {
        self.packed.clear();
        self.compressed = codec::compress(compression, level, &self.raw, &mut self.packed);
    }

    fn stored(&self) -> &[u8] {
        if self.compressed {
            &self.packed
        } else {
            &self.raw
        }
    }
}

/// Writes a heap to `out` (positioned where the heap starts).
#[derive(Debug)]
pub(crate) struct HeapWriter<W: Write> {
    out: W,
    compression: Compression,
    level: u32,
    /// Chunks gathered for the next parallel step; all but the last are
    /// full, the last is the one being filled.
    batch: Vec<Slot>,
    /// Chunks per batch (= threads).
    batch_len: usize,
    /// Stored size − 1 of every chunk written so far.
    table: Vec<u16>,
    /// Uncompressed bytes in written chunks.
    flushed: u64,
    /// Stored bytes of written chunks.
    stored: u64,
}

impl<W: Write> HeapWriter<W> {
    /// A heap writer with Haiku's 0–9 `level` scale, compressing on as many
    /// threads as the machine has cores (at most [`MAX_THREADS`]).
    pub fn new(out: W, compression: Compression, level: u32) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_threads(out, compression, level, threads)
    }

    /// A heap writer compressing on `threads` threads.
    pub fn with_threads(out: W, compression: Compression, level: u32, threads: usize) -> Self {
        let batch_len = if compression == Compression::None {
            1
        } else {
            threads.clamp(1, MAX_THREADS)
        };
        HeapWriter {
            out,
            compression,
            level,
            batch: vec![Slot {
                raw: Vec::with_capacity(CHUNK_SIZE),
                ..Slot::default()
            }],
            batch_len,
            table: Vec::new(),
            flushed: 0,
            stored: 0,
        }
    }

    /// Current uncompressed size: the heap offset the next byte will get.
    pub fn offset(&self) -> u64 {
        self.flushed + self.batch.iter().map(|s| s.raw.len() as u64).sum::<u64>()
    }

    /// Append bytes to the heap.
    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let Some(slot) = self.batch.last_mut() else {
                self.batch.push(Slot::default());
                continue;
            };
            let n = (CHUNK_SIZE - slot.raw.len()).min(data.len());
            slot.raw.extend_from_slice(&data[..n]);
            data = &data[n..];
            if slot.raw.len() == CHUNK_SIZE {
                if self.batch.len() >= self.batch_len {
                    self.flush_batch()?;
                }
                self.batch.push(Slot {
                    raw: Vec::with_capacity(CHUNK_SIZE),
                    ..Slot::default()
                });
            }
        }
        Ok(())
    }

    /// Compress every non-empty chunk of the batch, in parallel when there
    /// are several, and write them in order.
    fn flush_batch(&mut self) -> io::Result<()> {
        self.batch.retain(|s| !s.raw.is_empty());
        let (compression, level) = (self.compression, self.level);
        match self.batch.as_mut_slice() {
            [] => {}
            [one] => one.compress(compression, level),
            [first, rest @ ..] => std::thread::scope(|scope| {
                for slot in rest.iter_mut() {
                    scope.spawn(move || slot.compress(compression, level));
                }
                first.compress(compression, level);
            }),
        }
        for slot in self.batch.drain(..) {
            let stored = slot.stored();
            self.out.write_all(stored)?;
            // 1 ≤ stored.len() ≤ 65536, so the entry fits in a u16.
            self.table.push((stored.len() - 1) as u16);
            self.flushed += slot.raw.len() as u64;
            self.stored += stored.len() as u64;
        }
        Ok(())
    }

    /// Write the remaining chunks (the last one partial) and the chunk-size
    /// table; hand back the output and the final sizes.
    pub fn finish(mut self) -> io::Result<(W, HeapSizes)> {
        self.flush_batch()?;
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
    fn output_does_not_depend_on_threads() {
        let mut data = text(5 * CHUNK_SIZE + 3);
        data.extend(noise(3 * CHUNK_SIZE, 11));
        for c in [Compression::Zlib, Compression::Zstd] {
            let outs: Vec<(Vec<u8>, HeapSizes)> = [1, 2, 3, 8]
                .into_iter()
                .map(|t| {
                    let mut w = HeapWriter::with_threads(Vec::new(), c, 5, t);
                    for piece in data.chunks(40_000) {
                        w.write(piece).unwrap();
                    }
                    assert_eq!(w.offset(), data.len() as u64);
                    w.finish().unwrap()
                })
                .collect();
            for o in &outs[1..] {
                assert!(o == &outs[0], "{c}: thread count changes the output");
            }
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
