//! Diagnostics on standard error through `tracing`: warnings by default,
//! more with each `-v` (info, debug, trace), and `RUST_LOG` directives
//! (env-filter syntax, e.g. `RUST_LOG=pkgctl=debug`) on top. Standard output
//! stays what the commands print for people and scripts.

use std::io::IsTerminal;

use tracing_subscriber::filter::{EnvFilter, LevelFilter};

/// Send `tracing` events to standard error: at the level `verbose` (the
/// count of `-v`) asks for, with `RUST_LOG` directives winning where given.
pub fn init(verbose: u8) {
    let level = match verbose {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    let filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .from_env_lossy();
    // Only fails if a subscriber is already set, which nothing else does.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .with_target(false)
        .try_init();
}
