//! Loads a package root (or package files) the way a mount does, without
//! mounting, and prints how long it took and what the indexes hold:
//! `cargo run --release -p packagefs --example index_memory -- ROOT [RUNS]`.
//!
//! The figure to watch is bytes per TOC entry of the TOC indexes plus the
//! union tree: the memory that grows with the number of files.

use std::path::PathBuf;
use std::time::Instant;

use packagefs::plan::{self, GenerationChoice, MountSpec, Request};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let source = PathBuf::from(args.next().ok_or("usage: index_memory ROOT|PKG [RUNS]")?);
    let runs: usize = match args.next() {
        Some(n) => n.to_str().ok_or("RUNS is not a number")?.parse()?,
        None => 5,
    };
    let spec = MountSpec::from_sources(&[source], &[])?;
    let mut times = Vec::new();
    let mut memory = None;
    let mut strings = 0usize;
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let tree = plan::plan(&Request::new(&spec, GenerationChoice::Current), None)?.tree;
        times.push(start.elapsed().as_secs_f64() * 1e3);
        memory = Some(tree.memory());
        // The bytes of the section buffers an index cannot do without.
        strings = tree
            .packages()
            .iter()
            .map(|p| {
                let toc = p.package().toc();
                (0..toc.len() as u32)
                    .map(|id| toc.name(id).len() + toc.symlink_target(id).len())
                    .sum::<usize>()
            })
            .sum();
    }
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    println!("plan: median {median:.1} ms over {} runs", times.len());
    if let Some(m) = memory {
        println!("{m}");
        println!(
            "per entry: TOC entry table {:.1} + attribute table {:.1} + section buffers {:.1} \
             + union tree {:.1} = {:.1} bytes",
            (m.entries * std::mem::size_of::<hpkg_format::Entry>()) as f64 / m.entries as f64,
            (m.toc_table_bytes - m.entries * std::mem::size_of::<hpkg_format::Entry>()) as f64
                / m.entries as f64,
            (m.toc_bytes - m.toc_table_bytes) as f64 / m.entries as f64,
            m.tree_bytes as f64 / m.entries as f64,
            m.bytes_per_entry()
        );
        println!(
            "of the section buffers, names and symlink targets: {:.1} bytes per entry",
            strings as f64 / m.entries as f64
        );
    }
    Ok(())
}
