//! packagefs: a read-only FUSE file system serving the union of Haiku
//! `.hpkg` packages straight from the package files, never extracting them.
//!
//! - [`source`] decides what to mount: the packages of a root's layers, or
//!   package files, in ascending priority.
//! - [`package`] opens them (in parallel) and [`tree`] merges them into one
//!   union tree with stable inode numbers, recording the paths one package
//!   hides from another.
//! - [`fs`] holds the file-system operations over the tree, [`cache`] the
//!   decompressed chunks, [`prefetch`] read-ahead, and [`fuse`] the thin
//!   adapter to the kernel.
//! - [`options`] parses `-o` mount options, [`daemon`] starts the daemon in
//!   the background and reports when the mount is ready.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use packagefs::{fs::{FsConfig, PackageFs}, fuse, source::MountSpec};
//!
//! let spec = MountSpec::Files(vec!["hello-1.0-1-x86_64.hpkg".into()]);
//! let tree = packagefs::load_tree(&spec)?;
//! let fs = Arc::new(PackageFs::new(tree, &FsConfig::default())?);
//! let session = fuse::mount(fs, "/mnt/hello".as_ref(), &fuse::MountConfig::default())?;
//! session.run()?; // until unmounted
//! # Ok(()) }
//! ```

pub mod cache;
pub mod daemon;
pub mod fs;
pub mod fuse;
pub mod options;
pub mod package;
pub mod prefetch;
pub mod source;
pub mod tree;

use source::{MountSpec, SourceError};
use tree::{Tree, TreeError};

/// Why a mount could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The packages to mount could not be found.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A package named on the command line could not be opened.
    #[error(transparent)]
    Package(#[from] hpkg_format::Error),
    /// The union tree could not be built.
    #[error(transparent)]
    Tree(#[from] TreeError),
}

/// Open the packages `spec` names and merge them into a tree.
///
/// Package files named one by one must all open. In a root, a package that
/// cannot be opened is left out with an error in the log, and the rest is
/// mounted.
pub fn load_tree(spec: &MountSpec) -> Result<Tree, Error> {
    let started = std::time::Instant::now();
    let sources = source::resolve(spec)?;
    let strict = matches!(spec, MountSpec::Files(_));
    let mut packages = Vec::with_capacity(sources.len());
    for opened in package::open_all(sources) {
        match opened {
            Ok(p) => packages.push(p),
            Err((_, e)) if strict => return Err(Error::Package(e)),
            Err((src, e)) => log::error!("package {} is not mounted: {e}", src.path.display()),
        }
    }
    let opened = started.elapsed();
    let tree = Tree::new(packages)?;
    log::info!(
        "{} packages opened in {:.1} ms, merged in {:.1} ms",
        tree.packages().len(),
        opened.as_secs_f64() * 1e3,
        (started.elapsed() - opened).as_secs_f64() * 1e3
    );
    log::info!("index memory: {}", tree.memory());
    if tree.shadowed_count() > 0 {
        log::info!(
            "{} paths are hidden by higher-priority packages",
            tree.shadowed_count()
        );
        for s in tree.shadowed() {
            log::debug!(
                "/{}: {} {} hidden by {}",
                String::from_utf8_lossy(&s.path),
                s.hidden.label(),
                s.hidden_kind.name(),
                s.shown.label()
            );
        }
    }
    Ok(tree)
}
