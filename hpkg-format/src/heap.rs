//! The heap: a byte stream cut into 64 KiB chunks, each stored raw or
//! compressed, with the chunk-size table at its end (`docs/hpkg-format.md`
//! §4). Random access decompresses only the chunks a read touches: one read
//! loop ([`Heap::read_with`]) walks the chunks of a range, and a
//! [`ChunkSource`] supplies the compressed ones, [`Cached`] through a
//! pluggable [`ChunkCache`] ([`Heap::read_at`]) or a caller's own policy
//! (the FUSE daemon shares chunks between its readers and its prefetch
//! workers).
//!
//! Bytes come from a [`ReadAt`] source with positioned reads, never from a
//! mapping: a package file truncated under a reader must give an I/O error,
//! not a `SIGBUS`.

use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::codec::{self, Compression};
use crate::error::{Error, Location, Result};
use crate::header::HeapGeometry;

/// Uncompressed size of every chunk but the last.
pub const CHUNK_SIZE: usize = 65536;

/// A source of bytes read at absolute offsets.
pub trait ReadAt: Send + Sync {
    /// Fill `buf` from `offset`; an error if the source is shorter.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// The current length of the source.
    fn len(&self) -> io::Result<u64>;
    /// Whether the source is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
}

impl ReadAt for File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
}

impl ReadAt for Vec<u8> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.as_slice().read_exact_at(buf, offset)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.as_slice().len() as u64)
    }
}

impl ReadAt for [u8] {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let src = usize::try_from(offset)
            .ok()
            .and_then(|o| self.get(o..)?.get(..buf.len()))
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"))?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn len(&self) -> io::Result<u64> {
        Ok(<[u8]>::len(self) as u64)
    }
}

/// Identifies a decompressed chunk in a cache shared by many heaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChunkKey {
    /// The heap's process-unique id ([`Heap::id`]).
    pub heap: u64,
    /// Chunk index.
    pub index: u64,
}

/// A decompressed chunk.
pub type Chunk = Arc<[u8]>;

/// A cache of decompressed chunks. The FUSE daemon plugs in its own bounded,
/// sharded one; [`NoCache`] keeps nothing.
pub trait ChunkCache: Send + Sync {
    /// A cached chunk.
    fn get(&self, key: ChunkKey) -> Option<Chunk>;
    /// Offer a freshly decompressed chunk.
    fn insert(&self, key: ChunkKey, chunk: Chunk);
}

/// A cache that keeps nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoCache;

impl ChunkCache for NoCache {
    fn get(&self, _: ChunkKey) -> Option<Chunk> {
        None
    }
    fn insert(&self, _: ChunkKey, _: Chunk) {}
}

/// Where [`Heap::read_with`] gets the compressed chunks a read touches.
/// Stored (raw) chunks never come here: the loop reads them straight from
/// the file.
pub trait ChunkSource {
    /// Fill `out`, exactly [`Heap::chunk_len`] long, with chunk `index`,
    /// which the read covers whole. Without a copy at hand, decompressing
    /// straight into `out` ([`Heap::decompress_chunk`]) saves a copy.
    fn fill(&self, heap: &Heap, index: u64, out: &mut [u8]) -> Result<()>;
    /// The decompressed chunk `index`, of which the read needs a part.
    fn chunk(&self, heap: &Heap, index: u64) -> Result<Chunk>;
}

/// A [`ChunkCache`] as a [`ChunkSource`]: a chunk read whole is
/// decompressed straight into the caller's buffer, and a chunk read in part
/// goes through the cache.
#[derive(Clone, Copy)]
pub struct Cached<'a>(pub &'a dyn ChunkCache);

impl ChunkSource for Cached<'_> {
    fn fill(&self, heap: &Heap, index: u64, out: &mut [u8]) -> Result<()> {
        heap.decompress_chunk(index, out)
    }

    fn chunk(&self, heap: &Heap, index: u64) -> Result<Chunk> {
        heap.chunk(index, self.0)
    }
}

/// Stored chunk offsets relative to the heap start, `N + 1` of them (the last
/// is the end of the chunk data). 32-bit while they fit, as Haiku does.
#[derive(Debug)]
enum Offsets {
    /// Compression none: chunk `i` starts at `i * CHUNK_SIZE`.
    Uniform,
    Narrow(Vec<u32>),
    Wide(Vec<u64>),
}

static NEXT_HEAP_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static STORED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Random access to the uncompressed heap of one file.
pub struct Heap {
    source: Arc<dyn ReadAt>,
    id: u64,
    base: u64,
    compression: Compression,
    size: u64,
    compressed_size: u64,
    chunks: u64,
    offsets: Offsets,
}

impl std::fmt::Debug for Heap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Heap")
            .field("id", &self.id)
            .field("compression", &self.compression)
            .field("size", &self.size)
            .field("chunks", &self.chunks)
            .finish()
    }
}

impl Heap {
    /// Open the heap described by a validated header: read and check the
    /// chunk-size table (spec §4.4).
    pub fn open(source: Arc<dyn ReadAt>, geo: HeapGeometry) -> Result<Heap> {
        let compression = Compression::from_id(geo.compression)
            .ok_or(Error::UnknownCompression(geo.compression))?;
        let size = geo.uncompressed_size;
        let chunks = size.div_ceil(CHUNK_SIZE as u64);
        let offsets = if compression == Compression::None || chunks == 0 {
            if geo.compressed_size != size {
                return Err(Error::BadHeader(format!(
                    "uncompressed heap stores {} bytes for {size}",
                    geo.compressed_size
                )));
            }
            Offsets::Uniform
        } else {
            let table_len = 2 * (chunks - 1);
            if geo.compressed_size <= table_len {
                return Err(Error::BadHeader(format!(
                    "heap of {} stored bytes cannot hold a chunk table of {table_len} bytes",
                    geo.compressed_size
                )));
            }
            let data_end = geo.compressed_size - table_len;
            // table_len < compressed_size <= file size: the allocation is bounded.
            let mut table = vec![0u8; table_len as usize];
            source
                .read_exact_at(&mut table, geo.offset + data_end)
                .map_err(|e| {
                    truncated_or_io(e, "chunk-size table", geo.offset + data_end, table_len)
                })?;
            let mut offs = Vec::with_capacity(chunks as usize + 1);
            let mut pos = 0u64;
            offs.push(0);
            for pair in table.chunks_exact(2) {
                pos += u64::from(u16::from_be_bytes([pair[0], pair[1]])) + 1;
                offs.push(pos);
            }
            let last_len = size - (chunks - 1) * CHUNK_SIZE as u64;
            if pos >= data_end {
                return Err(Error::BadHeader(format!(
                    "chunk table sums to {pos} bytes, past the chunk data end {data_end}"
                )));
            }
            if data_end - pos > last_len {
                return Err(Error::BadHeader(format!(
                    "last chunk stores {} bytes for {last_len} uncompressed",
                    data_end - pos
                )));
            }
            offs.push(data_end);
            if data_end <= u64::from(u32::MAX) {
                Offsets::Narrow(offs.into_iter().map(|o| o as u32).collect())
            } else {
                Offsets::Wide(offs)
            }
        };
        Ok(Heap {
            source,
            id: NEXT_HEAP_ID.fetch_add(1, Ordering::Relaxed),
            base: geo.offset,
            compression,
            size,
            compressed_size: geo.compressed_size,
            chunks,
            offsets,
        })
    }

    /// Process-unique id, for cache keys.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Uncompressed size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Stored size (chunks and table).
    pub fn compressed_size(&self) -> u64 {
        self.compressed_size
    }

    /// Compression of the heap.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Number of chunks.
    pub fn chunk_count(&self) -> u64 {
        self.chunks
    }

    /// Uncompressed length of chunk `index`.
    pub fn chunk_len(&self, index: u64) -> usize {
        if index + 1 < self.chunks {
            CHUNK_SIZE
        } else {
            (self.size - index * CHUNK_SIZE as u64) as usize
        }
    }

    /// File offset and stored length of chunk `index`.
    pub fn stored_range(&self, index: u64) -> (u64, u64) {
        let i = index as usize;
        let (start, end) = match &self.offsets {
            Offsets::Uniform => (
                index * CHUNK_SIZE as u64,
                index * CHUNK_SIZE as u64 + self.chunk_len(index) as u64,
            ),
            Offsets::Narrow(o) => (u64::from(o[i]), u64::from(o[i + 1])),
            Offsets::Wide(o) => (o[i], o[i + 1]),
        };
        (self.base + start, end - start)
    }

    /// Whether chunk `index` is stored uncompressed.
    pub fn is_raw(&self, index: u64) -> bool {
        self.stored_range(index).1 == self.chunk_len(index) as u64
    }

    /// Read the stored bytes of a chunk and decompress them into `out`, which
    /// must be exactly [`Heap::chunk_len`] long.
    pub fn decompress_chunk(&self, index: u64, out: &mut [u8]) -> Result<()> {
        let (at, stored) = self.stored_range(index);
        if stored == out.len() as u64 {
            return self
                .source
                .read_exact_at(out, at)
                .map_err(|e| truncated_or_io(e, "heap chunk", at, stored));
        }
        STORED.with(|cell| {
            let mut buf = cell.borrow_mut();
            buf.resize(stored as usize, 0);
            self.source
                .read_exact_at(&mut buf, at)
                .map_err(|e| truncated_or_io(e, "heap chunk", at, stored))?;
            codec::decompress(self.compression, &buf, out).map_err(|reason| Error::BadChunk {
                index,
                at: Location::File(at),
                reason,
            })
        })
    }

    /// The decompressed chunk `index`, from `cache` or freshly decompressed
    /// (and offered to `cache`).
    pub fn chunk(&self, index: u64, cache: &dyn ChunkCache) -> Result<Chunk> {
        let key = ChunkKey {
            heap: self.id,
            index,
        };
        if let Some(c) = cache.get(key) {
            return Ok(c);
        }
        // Allocated in place (not a vector copied into an `Arc`).
        let mut data: Arc<[u8]> = std::iter::repeat_n(0u8, self.chunk_len(index)).collect();
        let out = Arc::get_mut(&mut data).ok_or_else(|| Error::BadChunk {
            index,
            at: Location::Heap(index * CHUNK_SIZE as u64),
            reason: "chunk buffer is shared".into(),
        })?;
        self.decompress_chunk(index, out)?;
        cache.insert(key, data.clone());
        Ok(data)
    }

    /// Fill `buf` with the uncompressed heap bytes at `offset`.
    ///
    /// Only the chunks the range touches are read. A chunk covered whole is
    /// decompressed straight into `buf`; raw chunks are read straight from the
    /// file; partial compressed chunks go through `cache`.
    pub fn read_at(&self, offset: u64, buf: &mut [u8], cache: &dyn ChunkCache) -> Result<()> {
        self.read_with(offset, buf, &Cached(cache))
    }

    /// Fill `buf` with the uncompressed heap bytes at `offset`, the
    /// compressed chunks from `source`: the one loop over the chunks of a
    /// range. Raw chunks are read straight from the file; a compressed chunk
    /// the range covers whole is [filled](ChunkSource::fill) into `buf`, one
    /// covered in part is [taken](ChunkSource::chunk) and copied from. A
    /// chunk from `source` of the wrong length is an error, never a panic.
    pub fn read_with(&self, offset: u64, buf: &mut [u8], source: &dyn ChunkSource) -> Result<()> {
        let len = buf.len() as u64;
        if offset > self.size || len > self.size - offset {
            return Err(Error::OutOfHeap {
                offset,
                len,
                heap_size: self.size,
            });
        }
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let index = pos / CHUNK_SIZE as u64;
            let in_chunk = (pos % CHUNK_SIZE as u64) as usize;
            let chunk_len = self.chunk_len(index);
            // pos < size, so the chunk holds at least the byte at pos.
            let n = (chunk_len - in_chunk).min(buf.len() - done);
            let dst = &mut buf[done..done + n];
            if self.is_raw(index) {
                let (at, _) = self.stored_range(index);
                self.source
                    .read_exact_at(dst, at + in_chunk as u64)
                    .map_err(|e| truncated_or_io(e, "heap chunk", at, n as u64))?;
            } else if n == chunk_len {
                source.fill(self, index, dst)?;
            } else {
                let chunk = source.chunk(self, index)?;
                let src = chunk
                    .get(in_chunk..in_chunk + n)
                    .ok_or_else(|| Error::BadChunk {
                        index,
                        at: Location::Heap(pos),
                        reason: format!(
                            "the chunk source gave {} bytes for a chunk of {chunk_len}",
                            chunk.len()
                        ),
                    })?;
                dst.copy_from_slice(src);
            }
            done += n;
        }
        Ok(())
    }

    /// Read `len` uncompressed heap bytes at `offset` into a new buffer. `len`
    /// must already be checked against a sanity cap by the caller.
    pub fn read_vec(&self, offset: u64, len: u64) -> Result<Vec<u8>> {
        if offset > self.size || len > self.size - offset {
            return Err(Error::OutOfHeap {
                offset,
                len,
                heap_size: self.size,
            });
        }
        let mut buf = vec![0u8; len as usize];
        self.read_at(offset, &mut buf, &NoCache)?;
        Ok(buf)
    }
}

/// Map an I/O error from a positioned read: a short file is reported as
/// truncation at that offset.
pub(crate) fn truncated_or_io(e: io::Error, what: &'static str, at: u64, needed: u64) -> Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        Error::Truncated {
            what,
            at: Location::File(at),
            needed,
            available: 0,
        }
    } else {
        Error::Io(e)
    }
}
