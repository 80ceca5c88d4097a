//! Time sequential `add` transactions on a scratch root (a rough figure for
//! the report; `cargo run --release -p state --example txn_timing -- PKG N`).

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let pkg = args.next().ok_or("usage: txn_timing PKG.hpkg [N]")?;
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(100);
    let dir = tempfile::tempdir()?;
    let root = state::Root::init(dir.path().join("root"))?;
    let incoming = dir.path().join("in");
    std::fs::create_dir(&incoming)?;
    let start = Instant::now();
    for i in 0..n {
        let file = incoming.join(format!("p{i}.hpkg"));
        std::fs::copy(&pkg, &file)?;
        root.add(&[&file], state::Layer::User, true, "timing")?;
    }
    let adds = start.elapsed();
    let start = Instant::now();
    let problems = root.verify()?;
    println!(
        "{n} adds: {:.2} ms each; verify of {} generations: {:?} ({} problems)",
        adds.as_secs_f64() * 1000.0 / n as f64,
        n + 1,
        start.elapsed(),
        problems.len()
    );
    Ok(())
}
