//! Writer throughput on the golden `bigfile` package (9.5 MB: text, random
//! and zero data), extracted to a temporary tree: `create_from_dir` with each
//! compression at the default level, and `rewrite` of the golden package.
//! Prints the compressed size of each variant once.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hpkg_format::{
    create_from_dir, rewrite, Compression, EntryKind, NoCache, Package, WriteOptions,
};

fn fixtures() -> PathBuf {
    std::env::var_os("PACKAGEFS_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"))
}

/// Files and directories of `pkg` under `dest`.
fn extract(pkg: &Package, dest: &Path) {
    let toc = pkg.toc();
    fs::create_dir(dest).unwrap();
    toc.walk(|path, id| {
        let p = dest.join(String::from_utf8_lossy(path).as_ref());
        let e = toc.entry(id);
        match e.kind() {
            EntryKind::Directory => fs::create_dir(&p).unwrap(),
            EntryKind::File => {
                fs::write(&p, pkg.data_to_vec(toc.data(id), &NoCache).unwrap()).unwrap()
            }
            EntryKind::Symlink => return,
        }
        fs::set_permissions(&p, fs::Permissions::from_mode(u32::from(e.mode()))).unwrap();
    });
}

fn bench(c: &mut Criterion) {
    let golden = fixtures().join("haiku-tool/bigfile-zstd.hpkg");
    let src = Package::open(&golden).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    extract(&src, &tree);
    let out = tmp.path().join("out.hpkg");
    let mut group = c.benchmark_group("bigfile");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(src.heap().size()));
    for (compression, level) in [
        (Compression::Zstd, 5),
        (Compression::Zstd, 1),
        (Compression::Zstd, 9),
        (Compression::Zlib, 5),
        (Compression::Zlib, 9),
        (Compression::None, 0),
    ] {
        let opts = WriteOptions {
            compression,
            level,
            source_date_epoch: None,
        };
        let stats = create_from_dir(&tree, src.info(), &out, &opts, &mut |_| {}).unwrap();
        eprintln!(
            "bigfile {compression} level {level}: heap {} -> file {} bytes ({:.1}%)",
            stats.heap_size,
            stats.file_size,
            100.0 * stats.file_size as f64 / stats.heap_size as f64
        );
        group.bench_function(format!("create {compression} {level}"), |b| {
            b.iter(|| create_from_dir(&tree, src.info(), &out, &opts, &mut |_| {}).unwrap())
        });
    }
    let zlib = WriteOptions {
        compression: Compression::Zlib,
        ..WriteOptions::default()
    };
    group.bench_function("rewrite zstd->zlib 5", |b| {
        b.iter(|| rewrite(&src, &out, &zlib).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
