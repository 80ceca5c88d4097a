//! `pkgctl`: the command line for Haiku packages. Parses the arguments,
//! runs one command, and reports failure as exactly one line
//! `pkgctl: <file>: <reason>` on standard error with exit status 1
//! (usage errors exit with 2, as clap does).

mod chunk_cache;
mod cmd;
mod deb;
mod error;
mod fuse_mount;
mod input;
mod logging;
mod output;
mod repo;
mod stream;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::error::{CliError, Result};

/// Inspect, list, extract and create Haiku packages (.hpkg), and manage
/// package roots.
///
/// Package commands take a package file (or, for create, a directory; for
/// import-deb, Debian packages). Root commands (init, add, remove, list,
/// status, owner, generations, diff, deps, rollback, gc, pin, unpin, verify, and
/// the repository commands repo add|list|remove, refresh, search, install,
/// update, uninstall, full-sync) work on the package root given with
/// -R ROOT, or else in the environment variable PACKAGEFS_ROOT. Publishing
/// commands (key generate, sign, repo create) work on files. Output meant for scripts is available with --json and is
/// stable: keys are only ever added. On failure, pkgctl prints one line
/// `pkgctl: <file>: <reason>` on standard error and exits with status 1.
///
/// Examples:
///
///   pkgctl info tipster-1.1.1-1-x86_64.hpkg
///   pkgctl contents tipster-1.1.1-1-x86_64.hpkg
///   pkgctl extract tipster-1.1.1-1-x86_64.hpkg /tmp/tipster
///   pkgctl create ./tipster -o tipster-1.1.1-1-x86_64.hpkg
///   pkgctl import-deb bash_5.2.15-2+b7_amd64.deb -o /srv/hpkg
///   pkgctl init /srv/root
///   pkgctl -R /srv/root add --layer user tipster-1.1.1-1-x86_64.hpkg
///   pkgctl -R /srv/root status
///   pkgctl -R /srv/root owner /usr/bin/env
///   pkgctl repo create /srv/repo --name main --key release.key
///   pkgctl -R /srv/root repo add main https://example.org/repo --key release.pub
///   pkgctl -R /srv/root refresh
///   pkgctl -R /srv/root install app
///
/// Shell completions: `pkgctl completions bash` (zsh, fish, elvish,
/// powershell); man pages: `pkgctl man -o DIR`. More diagnostics on
/// standard error with -v (info: what changed on disk), -vv, or RUST_LOG.
///
/// Run `pkgctl help <command>` for the details of a command.
#[derive(Debug, Parser)]
#[command(name = "pkgctl", version, verbatim_doc_comment)]
struct Cli {
    /// The package root of root commands (default: $PACKAGEFS_ROOT).
    #[arg(short = 'R', long = "root", global = true, value_name = "ROOT")]
    root: Option<PathBuf>,
    /// More diagnostics on standard error (-v: info, what changed on disk;
    /// -vv: debug; -vvv: trace). RUST_LOG directives apply on top.
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    verbose: u8,
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
    ImportDeb(cmd::import_deb::Args),
    Init(cmd::root::InitArgs),
    Add(cmd::root::AddArgs),
    Remove(cmd::root::RemoveArgs),
    List(cmd::listing::ListArgs),
    Status(cmd::status::Args),
    Owner(cmd::owner::Args),
    Generations(cmd::listing::GenerationsArgs),
    Rollback(cmd::root::RollbackArgs),
    Gc(cmd::root::GcArgs),
    Pin(cmd::root::PinArgs),
    Unpin(cmd::root::UnpinArgs),
    Verify(cmd::listing::VerifyArgs),
    Deps(cmd::deps::Args),
    Diff(cmd::diff::Args),
    Key(cmd::repo::KeyArgs),
    Sign(cmd::repo::SignArgs),
    Repo(cmd::repo::RepoArgs),
    Refresh(cmd::repo::RefreshArgs),
    Search(cmd::repo::SearchArgs),
    Install(cmd::install::InstallArgs),
    Update(cmd::install::UpdateArgs),
    Uninstall(cmd::install::UninstallArgs),
    FullSync(cmd::install::FullSyncArgs),
    /// Print the shell completion script for SHELL on standard output.
    Completions(cli_docs::CompletionsArgs),
    /// Write the man pages (section 1) of pkgctl and its subcommands into DIR.
    Man(cli_docs::ManArgs),
}

fn run(cli: &Cli) -> Result<()> {
    match &cli.command {
        Command::Info(a) => cmd::info::run(a),
        Command::Contents(a) => cmd::contents::run(a),
        Command::Extract(a) => cmd::extract::run(a),
        Command::Create(a) => cmd::create::create(a),
        Command::Recompress(a) => cmd::create::recompress(a),
        Command::ImportDeb(a) => cmd::import_deb::run(a),
        Command::Init(a) => cmd::root::init(a, cli.root.as_deref()),
        Command::Add(a) => cmd::root::add(a, &root_path(cli)?),
        Command::Remove(a) => cmd::root::remove(a, &root_path(cli)?),
        Command::List(a) => cmd::listing::list(a, &root_path(cli)?),
        Command::Status(a) => cmd::status::run(a, &root_path(cli)?),
        Command::Owner(a) => cmd::owner::run(a, &root_path(cli)?),
        Command::Generations(a) => cmd::listing::generations(a, &root_path(cli)?),
        Command::Rollback(a) => cmd::root::rollback(a, &root_path(cli)?),
        Command::Gc(a) => cmd::root::gc(a, &root_path(cli)?),
        Command::Pin(a) => cmd::root::pin(a.generation, true, &root_path(cli)?),
        Command::Unpin(a) => cmd::root::pin(a.generation, false, &root_path(cli)?),
        Command::Verify(a) => cmd::listing::verify(a, &root_path(cli)?),
        Command::Deps(a) => cmd::deps::run(a, &root_path(cli)?),
        Command::Diff(a) => cmd::diff::run(a, &root_path(cli)?),
        Command::Key(a) => cmd::repo::key(a),
        Command::Sign(a) => cmd::repo::sign(a),
        Command::Repo(a) => cmd::repo::repo(a, || root_path(cli)),
        Command::Refresh(a) => cmd::repo::refresh(a, &root_path(cli)?),
        Command::Search(a) => cmd::repo::search(a, &root_path(cli)?),
        Command::Install(a) => cmd::install::install(a, &root_path(cli)?),
        Command::Update(a) => cmd::install::update(a, &root_path(cli)?),
        Command::Uninstall(a) => cmd::install::uninstall(a, &root_path(cli)?),
        Command::FullSync(a) => cmd::install::full_sync(a, &root_path(cli)?),
        Command::Completions(a) => cmd::docs::completions(a, Cli::command()),
        Command::Man(a) => cmd::docs::man(a, &Cli::command()),
    }
}

/// The package root of a root command: `-R ROOT`, else `$PACKAGEFS_ROOT`.
fn root_path(cli: &Cli) -> Result<PathBuf> {
    cli.root
        .clone()
        .or_else(|| {
            std::env::var_os("PACKAGEFS_ROOT")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .ok_or(CliError::NoRoot)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.verbose);
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            for line in e.details() {
                eprintln!("pkgctl: {}", line.replace('\n', "\\n"));
            }
            // File names and reasons may hold line breaks; the report stays one line.
            let message = e.to_string().replace('\n', "\\n");
            eprintln!("pkgctl: {message}");
            ExitCode::FAILURE
        }
    }
}
