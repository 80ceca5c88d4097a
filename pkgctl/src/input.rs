//! Opening a file named on the command line: a package (`.hpkg`) or a
//! repository index (`.hpkr`), told apart by its magic bytes, not its name.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use hpkg_format::Package;

use crate::error::{CliError, Result, WithPath};

/// An opened input file.
#[derive(Debug)]
pub enum Input {
    /// A package.
    Package(Package),
}

/// Open `path` as whatever kind of file it is.
pub fn open(path: &Path) -> Result<Input> {
    let mut magic = [0u8; 4];
    let mut file = File::open(path).at(path)?;
    let n = file.read(&mut magic).at(path)?;
    if magic.get(..n) == Some(b"hpkr".as_slice()) && n == 4 {
        return Err(CliError::refused(
            path,
            "repository indexes (.hpkr) are not supported by this pkgctl yet",
        ));
    }
    Ok(Input::Package(Package::open(path)?))
}

/// Open `path`, which must be a package.
pub fn open_package(path: &Path, command: &str) -> Result<Package> {
    match open(path)? {
        Input::Package(p) => Ok(p),
        #[allow(unreachable_patterns)]
        _ => Err(CliError::refused(
            path,
            format!("`pkgctl {command}` needs a package (.hpkg), not a repository index"),
        )),
    }
}
