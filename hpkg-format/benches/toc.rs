//! TOC indexing cost per entry: `Toc::parse` of a synthetic 100 000-entry TOC
//! section held in memory (throughput in entries), and a full `walk` of it.
//! Times are the benchmark thread's CPU time (see `support/cpu_time.rs`).

#[path = "../tests/robust/mod.rs"]
mod common;
#[path = "support/cpu_time.rs"]
mod cpu_time;

use cpu_time::CpuTime;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use hpkg_format::Toc;

fn toc(c: &mut Criterion<CpuTime>) {
    let synth = common::synth::synth_toc(100_000);
    let mut g = c.benchmark_group("toc");
    g.throughput(Throughput::Elements(synth.entries as u64));
    g.bench_function("parse_100k", |b| {
        b.iter_batched(
            || synth.section(),
            |s| Toc::parse(s).expect("synthetic TOC"),
            BatchSize::LargeInput,
        )
    });
    let parsed = Toc::parse(synth.section()).expect("synthetic TOC");
    g.bench_function("walk_100k", |b| {
        b.iter(|| {
            let mut bytes = 0usize;
            parsed.walk(|path, _| bytes += path.len());
            bytes
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().with_measurement(CpuTime);
    targets = toc
}
criterion_main!(benches);
