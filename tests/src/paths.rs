//! Where things are: the workspace, the golden fixtures and the built binaries.

use std::path::{Path, PathBuf};

/// Environment variable naming the golden fixtures directory (the one holding
/// `haiku/` and `haiku-tool/`).
pub const FIXTURES_ENV: &str = "PACKAGEFS_FIXTURES";

/// Environment variable naming a directory that holds the `packagefs` and
/// `pkgctl` binaries, overriding the search next to the test executable.
pub const BIN_DIR_ENV: &str = "PACKAGEFS_BIN_DIR";

/// The workspace root: the directory holding the top-level `Cargo.toml`.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// Where the golden fixtures are expected: `$PACKAGEFS_FIXTURES` when set and
/// not empty, otherwise `<workspace root>/../shared/fixtures` (CI checks the
/// repository out with `shared/` beside it).
fn fixtures_candidate() -> PathBuf {
    match std::env::var_os(FIXTURES_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join("../shared/fixtures"),
    }
}

/// The golden fixtures directory, if it exists.
///
/// Taken from `$PACKAGEFS_FIXTURES`, or `<workspace root>/../shared/fixtures`
/// by default. The path is canonicalized when possible so that messages show
/// it without `..`.
pub fn fixtures_dir() -> Option<PathBuf> {
    let dir = fixtures_candidate();
    if !dir.is_dir() {
        return None;
    }
    Some(dir.canonicalize().unwrap_or(dir))
}

/// The golden fixtures directory.
///
/// # Panics
///
/// When the directory does not exist, with a message telling where it was
/// looked for and how to point the tests at it.
pub fn require_fixtures() -> PathBuf {
    match fixtures_dir() {
        Some(dir) => dir,
        None => panic!(
            "golden fixtures not found at {}; set {FIXTURES_ENV}=/path/to/shared/fixtures \
             (CI has ../shared beside the checkout)",
            fixtures_candidate().display()
        ),
    }
}

/// The path of a built workspace binary (`packagefs` or `pkgctl`).
///
/// Looked for in `$PACKAGEFS_BIN_DIR` when set, otherwise in the directory of
/// the cargo profile the tests were built with (`target/<profile>/`, the parent
/// of the `deps/` directory holding the test executable).
///
/// `cargo test` does not build the binaries of other workspace members for an
/// integration test of this crate, so build them first:
/// `cargo build --workspace --release --bins` (`make test` does).
///
/// # Panics
///
/// When the binary is not there, naming the path and the command that builds
/// it.
pub fn bin_path(name: &str) -> PathBuf {
    let dir = match std::env::var_os(BIN_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => {
            let exe = std::env::current_exe()
                .unwrap_or_else(|e| panic!("cannot find the test executable's path: {e}"));
            match exe.parent().and_then(Path::parent) {
                Some(dir) => dir.to_path_buf(),
                None => panic!(
                    "test executable {} has no grandparent directory to look for `{name}` in",
                    exe.display()
                ),
            }
        }
    };
    let path = dir.join(name);
    if !path.is_file() {
        panic!(
            "binary `{name}` is not built: expected it at {}. Build the workspace binaries with \
             the same profile as the tests first (`cargo build --workspace --release --bins`; \
             `make test` does), or set {BIN_DIR_ENV}",
            path.display()
        );
    }
    path
}
