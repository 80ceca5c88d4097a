//! Chunk read throughput: the whole heap of a golden package read through
//! `Heap::read_at` (no cache; the file read with one positioned read per
//! chunk, or the same bytes from memory) against decompressing the same stored
//! chunks straight with the codec crates from an in-memory copy. Throughput is
//! in uncompressed heap bytes per CPU second of the benchmark thread (see
//! `support/cpu_time.rs`); the ratio of interest is read_at_file / codec_direct.

#[path = "../tests/robust/mod.rs"]
mod common;
#[path = "support/cpu_time.rs"]
mod cpu_time;

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use cpu_time::CpuTime;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hpkg_format::{Compression, Heap, NoCache, Package};

/// Decompress every chunk of `heap` from the file bytes in `file` into `out`,
/// with the codec crates directly and one reused context per codec.
struct Direct {
    zstd: zstd::bulk::Decompressor<'static>,
    zlib: flate2::Decompress,
}

impl Direct {
    fn new() -> Direct {
        Direct {
            zstd: zstd::bulk::Decompressor::new().expect("zstd context"),
            zlib: flate2::Decompress::new(true),
        }
    }

    /// Decompress every chunk; with `copy`, first copy its stored bytes into
    /// a reused buffer (as the reader's positioned read does).
    fn read_heap(&mut self, heap: &Heap, file: &[u8], out: &mut [u8], copy: Option<&mut Vec<u8>>) {
        let mut pos = 0usize;
        let mut copy = copy;
        for index in 0..heap.chunk_count() {
            let (at, stored) = heap.stored_range(index);
            let mut src = &file[at as usize..(at + stored) as usize];
            if let Some(buf) = copy.as_mut() {
                buf.clear();
                buf.extend_from_slice(src);
                src = buf;
            }
            let dst = &mut out[pos..pos + heap.chunk_len(index)];
            pos += dst.len();
            if heap.is_raw(index) {
                dst.copy_from_slice(src);
                continue;
            }
            match heap.compression() {
                Compression::Zstd => {
                    let n = self.zstd.decompress_to_buffer(src, dst).expect("zstd");
                    assert_eq!(n, dst.len());
                }
                Compression::Zlib => {
                    self.zlib.reset(true);
                    let s = self
                        .zlib
                        .decompress(src, dst, flate2::FlushDecompress::Finish)
                        .expect("zlib");
                    assert_eq!(s, flate2::Status::StreamEnd);
                }
                Compression::None => dst.copy_from_slice(src),
            }
        }
    }
}

/// Median over `rounds` of the CPU-time ratio `direct / reader`, the two run
/// back to back in each round, so that load changes on a shared machine hit
/// both alike (the throughput ratio of the reader to direct decoding).
fn interleaved_ratio(rounds: usize, mut reader: impl FnMut(), mut direct: impl FnMut()) -> f64 {
    let time = |f: &mut dyn FnMut()| {
        let start = cpu_time::now_ns();
        f();
        (cpu_time::now_ns() - start) as f64
    };
    let mut ratios: Vec<f64> = (0..rounds)
        .map(|_| {
            let r = time(&mut reader);
            let d = time(&mut direct);
            d / r
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[rounds / 2]
}

fn chunks(c: &mut Criterion<CpuTime>) {
    for name in [
        "haiku-tool/bigfile-zstd.hpkg",
        "haiku-tool/nested-zlib.hpkg",
    ] {
        let path = common::fixtures().join(name);
        let bytes = std::fs::read(&path).expect("fixture");
        let from_file = Package::open(&path).expect("package");
        let from_memory = Package::from_source(Arc::new(bytes.clone())).expect("package");
        let size = from_file.heap().size();
        let mut out = vec![0u8; size as usize];
        let mut want = vec![0u8; size as usize];
        let mut direct = Direct::new();
        direct.read_heap(from_memory.heap(), &bytes, &mut want, None);
        from_file
            .heap()
            .read_at(0, &mut out, &NoCache)
            .expect("read");
        assert!(out == want, "reader and direct decoding disagree");

        let short = name.rsplit('/').next().unwrap_or(name);
        for (what, pkg) in [("file", &from_file), ("memory", &from_memory)] {
            let mut out2 = vec![0u8; size as usize];
            let ratio = interleaved_ratio(
                41,
                || pkg.heap().read_at(0, &mut out, &NoCache).expect("read"),
                || direct.read_heap(from_memory.heap(), &bytes, &mut out2, None),
            );
            println!("{short}: throughput read_at_{what} / codec_direct = {ratio:.3} (median of 41 interleaved rounds)");
        }
        let mut g = c.benchmark_group(format!("chunks/{short}"));
        g.throughput(Throughput::Bytes(size));
        g.sample_size(20);
        g.bench_function("read_at_file", |b| {
            b.iter(|| {
                from_file
                    .heap()
                    .read_at(0, &mut out, &NoCache)
                    .expect("read")
            })
        });
        g.bench_function("read_at_memory", |b| {
            b.iter(|| {
                from_memory
                    .heap()
                    .read_at(0, &mut out, &NoCache)
                    .expect("read")
            })
        });
        g.bench_function("codec_direct", |b| {
            b.iter(|| direct.read_heap(from_memory.heap(), &bytes, &mut out, None))
        });
        let mut stored = Vec::new();
        g.bench_function("codec_direct_copied", |b| {
            b.iter(|| direct.read_heap(from_memory.heap(), &bytes, &mut out, Some(&mut stored)))
        });
        // The positioned reads alone: one per chunk, as the reader makes them.
        let file = std::fs::File::open(&path).expect("fixture");
        let heap = from_file.heap();
        g.bench_function("pread_only", |b| {
            b.iter(|| {
                for index in 0..heap.chunk_count() {
                    let (at, len) = heap.stored_range(index);
                    stored.resize(len as usize, 0);
                    file.read_exact_at(&mut stored, at).expect("pread");
                }
            })
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(CpuTime);
    targets = chunks
}
criterion_main!(benches);
