//! `Heap::read_with`, the one read loop over a heap's chunks: it asks its
//! `ChunkSource` for exactly the compressed chunks a range touches (those
//! covered whole are filled in place, those covered in part are taken and
//! copied from), reads raw chunks itself, and turns a chunk of the wrong
//! length into an error instead of a panic.

mod common;

use std::cell::RefCell;

use hpkg_format::heap::CHUNK_SIZE;
use hpkg_format::{Chunk, ChunkSource, Error, Heap, NoCache, Package};

/// Records what the loop asked for; `short` hands out half chunks.
#[derive(Default)]
struct Recording {
    filled: RefCell<Vec<u64>>,
    taken: RefCell<Vec<u64>>,
    short: bool,
}

impl ChunkSource for Recording {
    fn fill(&self, heap: &Heap, index: u64, out: &mut [u8]) -> Result<(), Error> {
        self.filled.borrow_mut().push(index);
        heap.decompress_chunk(index, out)
    }

    fn chunk(&self, heap: &Heap, index: u64) -> Result<Chunk, Error> {
        self.taken.borrow_mut().push(index);
        let c = heap.chunk(index, &NoCache)?;
        Ok(if self.short {
            Chunk::from(&c[..c.len() / 2])
        } else {
            c
        })
    }
}

fn big_package() -> Package {
    Package::open(common::fixtures().join("haiku-tool/bigfile-zstd.hpkg")).unwrap()
}

#[test]
fn whole_chunks_are_filled_and_partial_ones_taken() {
    let pkg = big_package();
    let heap = pkg.heap();
    assert!(heap.chunk_count() >= 4, "the fixture needs four chunks");
    let chunk = CHUNK_SIZE as u64;
    // From the middle of chunk 0 to the middle of chunk 3.
    let (offset, end) = (chunk / 2, 3 * chunk + chunk / 2);
    let mut buf = vec![0u8; (end - offset) as usize];
    let source = Recording::default();
    heap.read_with(offset, &mut buf, &source).unwrap();

    let compressed = |i: &u64| !heap.is_raw(*i);
    let want_taken: Vec<u64> = [0, 3].iter().copied().filter(compressed).collect();
    let want_filled: Vec<u64> = [1, 2].iter().copied().filter(compressed).collect();
    assert!(!want_taken.is_empty() && !want_filled.is_empty());
    assert_eq!(*source.taken.borrow(), want_taken);
    assert_eq!(*source.filled.borrow(), want_filled);

    let mut whole = Vec::new();
    for i in 0..4 {
        whole.extend_from_slice(&heap.chunk(i, &NoCache).unwrap());
    }
    assert!(buf == whole[offset as usize..end as usize], "bytes differ");
}

#[test]
fn a_short_chunk_from_the_source_is_an_error() {
    let pkg = big_package();
    let heap = pkg.heap();
    let index = (0..heap.chunk_count())
        .find(|&i| !heap.is_raw(i))
        .expect("a compressed chunk");
    let chunk = CHUNK_SIZE as u64;
    // The last bytes of the chunk: past the half the source hands out.
    let mut buf = vec![0u8; 16];
    let source = Recording {
        short: true,
        ..Recording::default()
    };
    let err = heap
        .read_with(index * chunk + chunk - 16, &mut buf, &source)
        .unwrap_err();
    assert!(
        matches!(err, Error::BadChunk { index: i, .. } if i == index),
        "{err}"
    );
}
