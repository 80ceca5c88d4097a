//! A small chunk cache for reading a package front to back: a read that covers
//! only part of a 64 KiB chunk (the start or end of a file, a small file) keeps
//! the decompressed chunk, so the next read of its neighbour does not
//! decompress it again.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use hpkg_format::{Chunk, ChunkCache, ChunkKey};
use lru::LruCache;

/// How many decompressed chunks are kept (each at most 64 KiB).
const CHUNKS: NonZeroUsize = NonZeroUsize::new(4).unwrap();

/// The last few decompressed chunks.
#[derive(Debug)]
pub struct RecentChunks(Mutex<LruCache<ChunkKey, Chunk>>);

impl RecentChunks {
    /// An empty cache.
    pub fn new() -> RecentChunks {
        RecentChunks(Mutex::new(LruCache::new(CHUNKS)))
    }
}

impl Default for RecentChunks {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkCache for RecentChunks {
    fn get(&self, key: ChunkKey) -> Option<Chunk> {
        let mut lru = self.0.lock().unwrap_or_else(|p| p.into_inner());
        lru.get(&key).cloned()
    }

    fn insert(&self, key: ChunkKey, chunk: Chunk) {
        let mut lru = self.0.lock().unwrap_or_else(|p| p.into_inner());
        lru.put(key, chunk);
    }
}
