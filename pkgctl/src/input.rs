//! Opening a file named on the command line: a package (`.hpkg`) or a
//! repository index (`.hpkr`), told apart by its magic bytes, not its name.

use std::path::Path;

use hpkg_format::repo::Repository;
use hpkg_format::{sniff, FileKind, Package};

use crate::error::{CliError, Result};

/// An opened input file.
#[derive(Debug)]
pub enum Input {
    /// A package.
    Package(Box<Package>),
    /// A repository index.
    Repository(Box<Repository>),
}

/// Open `path` as whatever kind of file it is.
pub fn open(path: &Path) -> Result<Input> {
    Ok(match sniff(path)? {
        FileKind::Package => Input::Package(Box::new(Package::open(path)?)),
        FileKind::Repository => Input::Repository(Box::new(Repository::open(path)?)),
    })
}

/// Open `path`, which must be a package.
pub fn open_package(path: &Path, command: &str) -> Result<Package> {
    match open(path)? {
        Input::Package(p) => Ok(*p),
        Input::Repository(_) => Err(CliError::refused(
            path,
            format!("`pkgctl {command}` needs a package (.hpkg), not a repository index"),
        )),
    }
}
