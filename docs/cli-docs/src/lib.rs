//! Shell completions and man pages generated from a clap command: the one
//! home of this code for both binaries, `packagefs` and `pkgctl`, each of
//! which passes its own `Cli::command()` here. A crate of its own so that
//! neither binary links the other's library for it.
//!
//! Both binaries offer the same two subcommands, built from
//! [`CompletionsArgs`] and [`ManArgs`]:
//!
//! ```text
//! BIN completions SHELL     the completion script on standard output
//! BIN man [-o DIR]          BIN.SECTION and BIN-SUB.SECTION for each subcommand
//! ```

use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub use clap_complete::Shell;

/// Why man pages could not be written.
#[derive(Debug, thiserror::Error)]
pub enum CliDocsError {
    /// The output directory could not be created.
    #[error("{}: cannot create the directory: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
    /// A page could not be rendered or written.
    #[error("{}: cannot write the man page: {source}", path.display())]
    Write {
        /// The page (or, while rendering, the page it was to become).
        path: PathBuf,
        /// What went wrong.
        source: io::Error,
    },
}

/// `BIN completions SHELL`: print the completion script of a shell.
#[derive(Debug, Clone, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Shell,
}

/// `BIN man [-o DIR]`: write the man pages of the command and each
/// subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct ManArgs {
    /// The directory to write the pages into (created if missing).
    #[arg(short = 'o', long = "output", value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
}

/// Write the completion script of `shell` for `cmd` to `out`.
///
/// The script is rendered in memory first, so a failed write is an error
/// here rather than a panic inside clap_complete. A reader that stops early
/// (`| head`, a closed pipe) is not an error.
pub fn write_completions(
    cmd: &mut clap::Command,
    shell: Shell,
    out: &mut dyn Write,
) -> io::Result<()> {
    let bin = cmd
        .get_bin_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_owned();
    let mut script = Vec::new();
    clap_complete::generate(shell, cmd, bin, &mut script);
    match out.write_all(&script).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Write one man page per command into `dir` (created if missing): `NAME.SECTION` for
/// `cmd` itself and `NAME-SUB.SECTION` for every visible subcommand, at any
/// depth, leaving out clap's `help` subcommand. Each page is written to a
/// temporary file and renamed into place, so none is left half-written.
///
/// Returns the paths written, `cmd`'s own page first.
pub fn write_man_pages(
    cmd: &clap::Command,
    section: &str,
    dir: &Path,
) -> Result<Vec<PathBuf>, CliDocsError> {
    std::fs::create_dir_all(dir).map_err(|source| CliDocsError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut cmd = cmd.clone().disable_help_subcommand(true);
    // Gives subcommands their display names (`pkgctl-add`).
    cmd.build();
    let mut written = Vec::new();
    write_tree(&cmd, section, dir, &mut written)?;
    Ok(written)
}

fn write_tree(
    cmd: &clap::Command,
    section: &str,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<(), CliDocsError> {
    let man = clap_mangen::Man::new(cmd.clone()).section(section);
    let path = dir.join(man.get_filename());
    let write_err = |source| CliDocsError::Write {
        path: path.clone(),
        source,
    };
    let mut page = Vec::new();
    man.render(&mut page).map_err(write_err)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(write_err)?;
    tmp.write_all(&page).map_err(write_err)?;
    tmp.persist(&path).map_err(|e| write_err(e.error))?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_tree(sub, section, dir, written)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> clap::Command {
        clap::Command::new("tool")
            .about("A tool")
            .arg(clap::Arg::new("flag").long("flag").help("A flag"))
            .subcommand(clap::Command::new("one").about("The first"))
            .subcommand(clap::Command::new("secret").hide(true))
    }

    #[test]
    fn pages_for_visible_subcommands_only() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("new");
        let paths = write_man_pages(&sample(), "8", &out).unwrap();
        let names: Vec<_> = paths
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["tool.8", "tool-one.8"]);
        let page = std::fs::read_to_string(&paths[0]).unwrap();
        assert!(page.contains(".TH tool 8"), "{page}");
        assert!(page.contains("\\-\\-flag"), "{page}");
        let mut entries: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        entries.sort();
        assert_eq!(entries, ["tool-one.8", "tool.8"], "no temporary files left");
    }

    #[test]
    fn unwritable_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let err = write_man_pages(&sample(), "1", &file.join("sub")).unwrap_err();
        assert!(err.to_string().contains("file/sub"), "{err}");
    }

    #[test]
    fn completions_name_the_subcommands() {
        let mut out = Vec::new();
        write_completions(&mut sample(), Shell::Bash, &mut out).unwrap();
        let script = String::from_utf8(out).unwrap();
        assert!(
            script.contains("tool__one") || script.contains("tool,one"),
            "{script}"
        );
    }
}
