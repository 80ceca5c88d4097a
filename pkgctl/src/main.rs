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

/// Inspect, list, extract and create Haiku packages (.hpkg).
///
/// Commands take a package file (or, for create, a directory). Output meant
/// for scripts is available with --json and is stable: keys are only ever
/// added. On failure, pkgctl prints one line `pkgctl: <file>: <reason>` on
/// standard error and exits with status 1.
///
/// Examples:
///
///   pkgctl info tipster-1.1.1-1-x86_64.hpkg
///   pkgctl contents tipster-1.1.1-1-x86_64.hpkg
///   pkgctl extract tipster-1.1.1-1-x86_64.hpkg /tmp/tipster
///   pkgctl create ./tipster -o tipster-1.1.1-1-x86_64.hpkg
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
    Create(cmd::create::CreateArgs),
    Recompress(cmd::create::RecompressArgs),
}

fn run(cli: &Cli) -> Result<()> {
    match &cli.command {
        Command::Info(a) => cmd::info::run(a),
        Command::Contents(a) => cmd::contents::run(a),
        Command::Extract(a) => cmd::extract::run(a),
        Command::Create(a) => cmd::create::create(a),
        Command::Recompress(a) => cmd::create::recompress(a),
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
