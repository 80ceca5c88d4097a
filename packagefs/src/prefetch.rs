//! Read-ahead inside the daemon: when a file is read sequentially, the next
//! compressed chunks are decompressed into the chunk cache by background
//! workers while the kernel is still busy with the current reply.
//!
//! A read spanning several compressed chunks also hands all but its first
//! chunk to the workers, so they decompress in parallel while the reader
//! does the first (it then takes the others from the cache, waits for one
//! in progress, or does one not yet started itself).
//!
//! Requests go through a small bounded queue and are dropped when it is
//! full: prefetching is a hint, never a reason to block a reader.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use hpkg_format::{ChunkKey, NoCache};

use crate::cache::ShardedChunkCache;
use state::plan::Tree;

/// Pending requests at most.
const QUEUE: usize = 128;

struct Job {
    tree: Arc<Tree>,
    pkg: usize,
    chunk: u64,
}

/// Handle to the prefetch workers; dropping it stops them.
#[derive(Debug)]
pub struct Prefetcher {
    tx: SyncSender<Job>,
    cache: Arc<ShardedChunkCache>,
}

impl Prefetcher {
    /// Start `threads` workers filling `cache`.
    pub fn start(cache: Arc<ShardedChunkCache>, threads: usize) -> std::io::Result<Prefetcher> {
        let (tx, rx) = sync_channel::<Job>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let cache = cache.clone();
            std::thread::Builder::new()
                .name(format!("prefetch-{i}"))
                .spawn(move || worker(&rx, &cache))?;
        }
        Ok(Prefetcher { tx, cache })
    }

    /// Ask for chunk `chunk` of package `pkg`'s heap to be decompressed into
    /// the cache, unless it is there already or being loaded.
    pub fn request(&self, tree: &Arc<Tree>, pkg: usize, chunk: u64) {
        let Some(mp) = tree.packages().get(pkg) else {
            return;
        };
        let heap = mp.package().heap();
        if chunk >= heap.chunk_count() || heap.is_raw(chunk) {
            return;
        }
        let key = ChunkKey {
            heap: heap.id(),
            index: chunk,
        };
        if self.cache.contains(key) {
            return;
        }
        let job = Job {
            tree: tree.clone(),
            pkg,
            chunk,
        };
        match self.tx.try_send(job) {
            Ok(()) | Err(TrySendError::Full(_)) => {}
            Err(TrySendError::Disconnected(_)) => tracing::debug!("prefetch workers are gone"),
        }
    }
}

fn worker(rx: &Mutex<Receiver<Job>>, cache: &ShardedChunkCache) {
    loop {
        let job = match rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let Some(mp) = job.tree.packages().get(job.pkg) else {
            continue;
        };
        let heap = mp.package().heap();
        let key = ChunkKey {
            heap: heap.id(),
            index: job.chunk,
        };
        // Errors are reported by the read that needs the chunk.
        if let Err(e) = cache.load_if_absent(key, || heap.chunk(job.chunk, &NoCache)) {
            tracing::debug!(
                "prefetch of chunk {} of {}: {e}",
                job.chunk,
                mp.path().display()
            );
        }
    }
}
