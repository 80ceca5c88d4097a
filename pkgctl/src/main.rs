//! `pkgctl`: the command line for Haiku packages. Parses the arguments,
//! runs one command, and reports failure as exactly one line
//! `pkgctl: <file>: <reason>` on standard error with exit status 1
//! (usage errors exit with 2, as clap does).

mod chunk_cache;
mod cmd;
mod error;
mod input;
mod output;
mod stream;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::Result;

/// Inspect, list and extract Haiku packages (.hpkg).
///
/// Every command takes the package file as its first argument. Output meant
/// for scripts is available with --json and is stable: keys are only ever
/// added. On failure, pkgctl prints one line `pkgctl: <file>: <reason>` on
/// standard error and exits with status 1.
///
/// Examples:
///
///   pkgctl info tipster-1.1.1-1-x86_64.hpkg
///   pkgctl contents tipster-1.1.1-1-x86_64.hpkg
///   pkgctl extract tipster-1.1.1-1-x86_64.hpkg /tmp/tipster
///
/// Run `pkgctl help <command>` for the details of a command.
#[derive(Debug, Parser)]
#[command(name = "pkgctl", version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Info(cmd::info::Args),
    Contents(cmd::contents::Args),
    Extract(cmd::extract::Args),
}

fn run(cli: &Cli) -> Result<()> {
    match &cli.command {
        Command::Info(a) => cmd::info::run(a),
        Command::Contents(a) => cmd::contents::run(a),
        Command::Extract(a) => cmd::extract::run(a),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            // File names and reasons may hold line breaks; the report stays one line.
            let message = e.to_string().replace('\n', "\\n");
            eprintln!("pkgctl: {message}");
            ExitCode::FAILURE
        }
    }
}
