//! `pkgctl completions SHELL` and `pkgctl man [-o DIR]`: the shell
//! completion script and the man pages, generated from pkgctl's own clap
//! definition by the `cli-docs` crate (shared with `packagefs`).
//!
//! pkgctl's pages are in section 1 (user commands): it works on package
//! files as any user, and on package roots as whoever owns them.

use cli_docs::{self, CliDocsError, CompletionsArgs, ManArgs};

use crate::error::{CliError, Result};

/// The man section of pkgctl's pages.
pub const MAN_SECTION: &str = "1";

/// Run `pkgctl completions`: print the script for `cmd` on standard output.
pub fn completions(args: &CompletionsArgs, mut cmd: clap::Command) -> Result<()> {
    cli_docs::write_completions(&mut cmd, args.shell, &mut std::io::stdout().lock())
        .map_err(CliError::Stdout)
}

/// Run `pkgctl man`: write pkgctl.1 and pkgctl-SUB.1 into the directory.
pub fn man(args: &ManArgs, cmd: &clap::Command) -> Result<()> {
    let written = cli_docs::write_man_pages(cmd, MAN_SECTION, &args.dir).map_err(|e| match e {
        CliDocsError::CreateDir { path, source } | CliDocsError::Write { path, source } => {
            CliError::io(path, source)
        }
    })?;
    for path in &written {
        tracing::info!("wrote {}", path.display());
    }
    Ok(())
}
