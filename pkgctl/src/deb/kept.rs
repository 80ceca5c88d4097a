//! What an imported package keeps of its `.deb`, read back from the package:
//! the Debian version (from `.DEBIAN/control`) and the maintainer scripts it
//! carries and whether it was imported with `--merge-usr`, for `pkgctl info`.

use hpkg_format::{EntryKind, NoCache, Package};
use serde::Serialize;

use super::control::Control;
use super::convert::{DEBIAN_DIR, MAINTAINER_SCRIPTS};
use super::usrmerge;

/// The Debian facts of an imported package (`--json` key `debian`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DebianFacts {
    /// The `Version` field of `.DEBIAN/control`, as Debian writes it.
    pub version: String,
    /// The maintainer scripts in `.DEBIAN/` (never run), in the order
    /// `preinst postinst prerm postrm config`.
    pub maintainer_scripts: Vec<String>,
    /// Every file of `.DEBIAN/`, sorted.
    pub control_files: Vec<String>,
    /// Whether it was imported with `--merge-usr` (`.DEBIAN/` holds
    /// [`usrmerge::MARKER`]).
    pub merged_usr: bool,
}

/// The facts of `pkg`, or `None` when it has no readable `.DEBIAN/control`
/// with a `Version` field (not an imported package).
pub fn of(pkg: &Package) -> Option<DebianFacts> {
    let toc = pkg.toc();
    let dir = toc
        .children(None)
        .find(|&id| toc.name(id) == DEBIAN_DIR.as_bytes())
        .filter(|&id| toc.entry(id).kind() == EntryKind::Directory)?;
    let mut control_files: Vec<String> = toc
        .children(Some(dir))
        .filter(|&id| toc.entry(id).kind() == EntryKind::File)
        .map(|id| String::from_utf8_lossy(toc.name(id)).into_owned())
        .collect();
    control_files.sort();
    let control = toc
        .children(Some(dir))
        .find(|&id| toc.name(id) == b"control")?;
    let text = pkg.data_to_vec(toc.data(control), &NoCache).ok()?;
    let control = Control::parse(&String::from_utf8_lossy(&text)).ok()?;
    let version = control.get("Version")?.trim().to_string();
    let maintainer_scripts = MAINTAINER_SCRIPTS
        .iter()
        .filter(|s| control_files.iter().any(|f| f == *s))
        .map(|s| s.to_string())
        .collect();
    let merged_usr = control_files.iter().any(|f| f == usrmerge::MARKER);
    Some(DebianFacts {
        merged_usr,
        version,
        maintainer_scripts,
        control_files,
    })
}
