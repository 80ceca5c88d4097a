//! Inflate the zlib heap chunks of the golden zlib packages (ctags, tipster)
//! with whichever flate2 backend this build enables (`run.sh` builds it once
//! per backend). Each chunk decompresses into a reused 64 KiB buffer with a
//! reused, reset `Decompress`, as the reader does. Throughput is uncompressed
//! bytes per CPU second of the benchmark thread.

#[path = "../../../hpkg-format/benches/support/cpu_time.rs"]
mod cpu_time;

use std::path::{Path, PathBuf};

use cpu_time::CpuTime;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flate2::{Decompress, FlushDecompress, Status};

const CHUNK: u64 = 65536;

fn backend() -> &'static str {
    if cfg!(feature = "zlib-ng") {
        "zlib-ng"
    } else if cfg!(feature = "zlib-rs") {
        "zlib-rs"
    } else if cfg!(feature = "zlib") {
        "zlib"
    } else {
        "miniz_oxide"
    }
}

fn fixtures() -> PathBuf {
    let dir = std::env::var_os("PACKAGEFS_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"));
    assert!(
        dir.is_dir(),
        "golden fixtures not found at {}; set PACKAGEFS_FIXTURES",
        dir.display()
    );
    dir
}

fn be(b: &[u8], at: usize, width: usize) -> u64 {
    b[at..at + width]
        .iter()
        .fold(0, |acc, &x| (acc << 8) | u64::from(x))
}

/// The compressed chunks of a zlib package: (stored bytes, uncompressed length).
fn zlib_chunks(file: &[u8]) -> Vec<(Vec<u8>, usize)> {
    assert_eq!(&file[..4], b"hpkg");
    assert_eq!(be(file, 18, 2), 1, "not a zlib package");
    let base = be(file, 4, 2);
    let stored = be(file, 24, 8);
    let size = be(file, 32, 8);
    let chunks = size.div_ceil(CHUNK);
    let table_at = base + stored - 2 * (chunks - 1);
    let mut out = Vec::new();
    let mut pos = base;
    for i in 0..chunks {
        let len = if i + 1 < chunks {
            be(file, (table_at + 2 * i) as usize, 2) + 1
        } else {
            table_at - pos
        };
        let ulen = CHUNK.min(size - i * CHUNK);
        if len < ulen {
            out.push((
                file[pos as usize..(pos + len) as usize].to_vec(),
                ulen as usize,
            ));
        }
        pos += len;
    }
    out
}

fn inflate(c: &mut Criterion<CpuTime>) {
    let mut chunks = Vec::new();
    for name in [
        "haiku/ctags_source-5.8-5-source.hpkg",
        "haiku/tipster-1.1.1-1-x86_64.hpkg",
    ] {
        let file = std::fs::read(fixtures().join(name)).expect("fixture");
        chunks.extend(zlib_chunks(&file));
    }
    let total: usize = chunks.iter().map(|(_, u)| u).sum();
    let mut out = vec![0u8; CHUNK as usize];
    let mut z = Decompress::new(true);
    let mut run = |z: &mut Decompress| {
        for (src, ulen) in &chunks {
            z.reset(true);
            let s = z
                .decompress(src, &mut out[..*ulen], FlushDecompress::Finish)
                .expect("inflate");
            assert!(s == Status::StreamEnd && z.total_out() == *ulen as u64);
        }
    };
    run(&mut z);
    let mut g = c.benchmark_group("inflate");
    g.throughput(Throughput::Bytes(total as u64));
    eprintln!("{} zlib chunks, {total} bytes uncompressed", chunks.len());
    g.bench_function(backend(), |b| b.iter(|| run(&mut z)));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(CpuTime);
    targets = inflate
}
criterion_main!(benches);
