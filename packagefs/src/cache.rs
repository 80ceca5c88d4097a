//! The cache of decompressed heap chunks: bounded in bytes, split into
//! shards (each an LRU list behind its own lock) so concurrent readers rarely
//! contend, with in-flight deduplication: a chunk several threads want at
//! once is decompressed by one of them while the others wait for it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use hpkg_format::{Chunk, ChunkCache, ChunkKey};
use lru::LruCache;

/// Number of shards (a power of two).
const SHARDS: usize = 16;

/// Default capacity: 16 MiB (256 chunks: a 1 MiB read-ahead window for 16
/// readers at once).
///
/// The kernel keeps the pages of files once read (`FOPEN_KEEP_CACHE`), so
/// this cache only has to bridge reads that share a chunk: small files
/// packed together, read-ahead windows that straddle chunks, several readers
/// at once. On the Debian benchmark root a cold read of everything took the
/// same time with 8 MiB, 32 MiB or 256 MiB, while the daemon's peak RSS went
/// from 26 to about 60 to 147 MiB (the allocator's per-thread arenas keep
/// evicted chunks' memory, so the peak is up to twice the capacity).
pub const DEFAULT_CAPACITY: u64 = 16 << 20;

/// Counters of cache use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Chunks found in the cache.
    pub hits: u64,
    /// Chunks not found (decompressed by the caller or a loader).
    pub misses: u64,
    /// Lookups that waited for another thread's decompression.
    pub joined: u64,
    /// Chunks dropped to stay within the capacity.
    pub evictions: u64,
    /// Bytes held now.
    pub bytes: u64,
}

struct Shard {
    lru: LruCache<ChunkKey, Chunk>,
    bytes: usize,
}

/// A load in progress: waiters sleep on `ready` until `result` is set
/// (`Some(None)`: the loader failed).
#[derive(Default)]
struct InFlight {
    result: Mutex<Option<Option<Chunk>>>,
    ready: Condvar,
}

/// The bounded, sharded chunk cache.
pub struct ShardedChunkCache {
    shards: Box<[Mutex<Shard>]>,
    shard_capacity: usize,
    in_flight: Mutex<HashMap<ChunkKey, Arc<InFlight>>>,
    hits: AtomicU64,
    misses: AtomicU64,
    joined: AtomicU64,
    evictions: AtomicU64,
}

impl std::fmt::Debug for ShardedChunkCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedChunkCache")
            .field("capacity", &(self.shard_capacity * SHARDS))
            .field("stats", &self.stats())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a cache lock leaves consistent data behind (every
    // critical section is a single map or counter update): keep going.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ShardedChunkCache {
    /// A cache holding at most `capacity` bytes of chunks (0: keep nothing).
    pub fn new(capacity: u64) -> ShardedChunkCache {
        let capacity = usize::try_from(capacity).unwrap_or(usize::MAX);
        ShardedChunkCache {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        lru: LruCache::unbounded(),
                        bytes: 0,
                    })
                })
                .collect(),
            shard_capacity: capacity / SHARDS,
            in_flight: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            joined: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: &ChunkKey) -> &Mutex<Shard> {
        let h = (key.heap.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ key.index)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        &self.shards[(h >> 60) as usize % SHARDS]
    }

    /// Whether a chunk is cached or being loaded (does not touch the LRU order).
    pub fn contains(&self, key: ChunkKey) -> bool {
        // One lock at a time: `claim` takes the in-flight lock first.
        let cached = lock(self.shard(&key)).lru.contains(&key);
        cached || lock(&self.in_flight).contains_key(&key)
    }

    /// Find a chunk, or the load in progress of it, or else take the job of
    /// loading it: other threads asking for it meanwhile wait for the
    /// [`ClaimGuard`] to publish it.
    pub fn claim(&self, key: ChunkKey) -> Claim<'_> {
        if let Some(c) = self.lookup(key) {
            return Claim::Cached(c);
        }
        let mut map = lock(&self.in_flight);
        if let Some(f) = map.get(&key) {
            self.joined.fetch_add(1, Ordering::Relaxed);
            return Claim::Loading(Loading { flight: f.clone() });
        }
        // Inserted while we looked? (A load finishing between the lookup and
        // taking the map lock inserts before unregistering.)
        if let Some(c) = lock(self.shard(&key)).lru.get(&key).cloned() {
            return Claim::Cached(c);
        }
        let flight = Arc::new(InFlight::default());
        map.insert(key, flight.clone());
        Claim::Mine(ClaimGuard {
            cache: self,
            key,
            flight,
            result: None,
        })
    }

    /// A cached chunk, or one loaded by `load` and cached; if another thread
    /// is loading the same chunk, wait for it instead of loading twice.
    pub fn get_or_load<E>(
        &self,
        key: ChunkKey,
        load: impl FnOnce() -> Result<Chunk, E>,
    ) -> Result<Chunk, E> {
        match self.claim(key) {
            Claim::Cached(c) => Ok(c),
            Claim::Loading(l) => match l.wait() {
                Some(c) => Ok(c),
                // The other load failed or was not shared: load ourselves.
                None => {
                    let c = load()?;
                    self.insert(key, c.clone());
                    Ok(c)
                }
            },
            Claim::Mine(guard) => {
                let c = load()?;
                guard.publish(c.clone(), true);
                Ok(c)
            }
        }
    }

    /// Load a chunk into the cache unless it is there or being loaded.
    pub fn load_if_absent<E>(
        &self,
        key: ChunkKey,
        load: impl FnOnce() -> Result<Chunk, E>,
    ) -> Result<(), E> {
        if let Claim::Mine(guard) = self.claim(key) {
            guard.publish(load()?, true);
        }
        Ok(())
    }

    fn lookup(&self, key: ChunkKey) -> Option<Chunk> {
        let found = lock(self.shard(&key)).lru.get(&key).cloned();
        match found {
            Some(_) => self.hits.fetch_add(1, Ordering::Relaxed),
            None => self.misses.fetch_add(1, Ordering::Relaxed),
        };
        found
    }

    /// Counters and current size.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            joined: self.joined.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            bytes: self.shards.iter().map(|s| lock(s).bytes as u64).sum(),
        }
    }

    /// The capacity in bytes.
    pub fn capacity(&self) -> u64 {
        (self.shard_capacity * SHARDS) as u64
    }
}

/// What [`ShardedChunkCache::claim`] found.
pub enum Claim<'a> {
    /// The chunk was cached.
    Cached(Chunk),
    /// Another thread is loading it.
    Loading(Loading),
    /// Nobody has it: the caller loads it and publishes it with the guard.
    Mine(ClaimGuard<'a>),
}

/// A load in progress by another thread.
pub struct Loading {
    flight: Arc<InFlight>,
}

impl Loading {
    /// Wait for the load: the chunk, or `None` if the loader failed or did
    /// not share it.
    pub fn wait(self) -> Option<Chunk> {
        let mut result = lock(&self.flight.result);
        loop {
            if let Some(r) = result.as_ref() {
                return r.clone();
            }
            result = self
                .flight
                .ready
                .wait(result)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// The duty to load a chunk. Dropping it without publishing (an error, a
/// panic) wakes the waiters with nothing, and they load it themselves.
pub struct ClaimGuard<'a> {
    cache: &'a ShardedChunkCache,
    key: ChunkKey,
    flight: Arc<InFlight>,
    result: Option<Chunk>,
}

impl ClaimGuard<'_> {
    /// Hand the loaded chunk to the waiters, and to the cache if `keep`.
    pub fn publish(mut self, chunk: Chunk, keep: bool) {
        if keep {
            self.cache.insert(self.key, chunk.clone());
        }
        self.result = Some(chunk);
    }
}

impl Drop for ClaimGuard<'_> {
    fn drop(&mut self) {
        lock(&self.cache.in_flight).remove(&self.key);
        *lock(&self.flight.result) = Some(self.result.take());
        self.flight.ready.notify_all();
    }
}

impl ChunkCache for ShardedChunkCache {
    fn get(&self, key: ChunkKey) -> Option<Chunk> {
        self.lookup(key)
    }

    fn insert(&self, key: ChunkKey, chunk: Chunk) {
        let len = chunk.len();
        if len > self.shard_capacity {
            return;
        }
        let mut shard = lock(self.shard(&key));
        if let Some(old) = shard.lru.put(key, chunk) {
            shard.bytes -= old.len();
        }
        shard.bytes += len;
        while shard.bytes > self.shard_capacity {
            match shard.lru.pop_lru() {
                Some((_, old)) => {
                    shard.bytes -= old.len();
                    self.evictions.fetch_add(1, Ordering::Relaxed);
                }
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(index: u64) -> ChunkKey {
        ChunkKey { heap: 1, index }
    }

    fn chunk(len: usize, byte: u8) -> Chunk {
        Arc::from(vec![byte; len])
    }

    #[test]
    fn stays_within_capacity_and_evicts_least_recently_used() {
        let cache = ShardedChunkCache::new((SHARDS * 1000) as u64);
        for i in 0..2000 {
            cache.insert(key(i), chunk(300, i as u8));
        }
        let stats = cache.stats();
        assert!(stats.bytes <= cache.capacity(), "{stats:?}");
        assert!(stats.evictions > 0);
        // The newest chunk is still there; the oldest is gone.
        assert!(cache.get(key(1999)).is_some());
        assert!(cache.get(key(0)).is_none());
    }

    #[test]
    fn zero_capacity_keeps_nothing() {
        let cache = ShardedChunkCache::new(0);
        cache.insert(key(1), chunk(10, 1));
        assert!(cache.get(key(1)).is_none());
    }

    #[test]
    fn concurrent_loads_of_one_chunk_decompress_once() {
        let cache = ShardedChunkCache::new(1 << 20);
        let loads = AtomicU64::new(0);
        let barrier = std::sync::Barrier::new(8);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    barrier.wait();
                    let c = cache
                        .get_or_load(key(7), || {
                            loads.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(50));
                            Ok::<_, ()>(chunk(100, 7))
                        })
                        .unwrap();
                    assert_eq!(&c[..], &[7u8; 100][..]);
                });
            }
        });
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_failed_load_is_not_cached() {
        let cache = ShardedChunkCache::new(1 << 20);
        assert!(cache
            .get_or_load(key(3), || Err::<Chunk, _>("bad"))
            .is_err());
        assert!(!cache.contains(key(3)));
        let c = cache
            .get_or_load(key(3), || Ok::<_, ()>(chunk(4, 3)))
            .unwrap();
        assert_eq!(c.len(), 4);
    }

    #[test]
    fn a_claim_is_shared_with_waiters_or_released_empty() {
        let cache = ShardedChunkCache::new(1 << 20);
        let Claim::Mine(guard) = cache.claim(key(9)) else {
            panic!("first claim is ours")
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let cache_ref = &cache;
        std::thread::scope(|s| {
            let waiter = s.spawn(move || match cache_ref.claim(key(9)) {
                Claim::Loading(l) => {
                    tx.send(()).unwrap();
                    l.wait()
                }
                _ => panic!("second claim must wait"),
            });
            rx.recv().unwrap();
            guard.publish(chunk(5, 9), false);
            assert_eq!(waiter.join().unwrap().unwrap().len(), 5);
        });
        // Not kept: the next claim is ours again; dropping it releases empty.
        let Claim::Mine(guard) = cache.claim(key(9)) else {
            panic!("not cached")
        };
        drop(guard);
        assert!(!cache.contains(key(9)));
        assert!(cache
            .load_if_absent(key(9), || Ok::<_, ()>(chunk(3, 9)))
            .is_ok());
        assert!(matches!(cache.claim(key(9)), Claim::Cached(c) if c.len() == 3));
    }
}
