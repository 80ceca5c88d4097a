//! Shared helpers for the end-to-end tests of packagefs.
//!
//! The integration tests under `tests/tests/` build packages, mount them with
//! the real `packagefs` binary and look through the mount. This library holds
//! what they all need:
//!
//! * [`paths`]: where the golden fixtures and the built binaries are
//!   ([`fixtures_dir`], [`require_fixtures`], [`bin_path`]);
//! * [`listing`]: a [`Listing`] of a tree (type, mode, size, sha256, symlink
//!   target, `user.` extended attributes), read either from a golden
//!   `*.expected.jsonl` file ([`read_expected`]) or from a real directory such
//!   as a mount point ([`list_dir`]), compared with [`diff`] and
//!   [`assert_listing_eq`];
//! * [`mount`]: FUSE plumbing: [`fuse_available`], [`wait_for_mount`] and a
//!   [`MountGuard`] that always unmounts, even when a test panics;
//! * [`packagefs`]: a [`PackagefsMount`] made with the real `packagefs`
//!   binary, the golden packages ([`golden_package`]), and [`walk_nodes`] for
//!   the owners and package attributes a listing does not show, and
//!   [`write_package`] to make packages from directory trees;
//! * [`nginx`]: a real HTTP server ([`nginx::Nginx`]) serving a directory
//!   on a loopback port, stopped when dropped;
//! * [`mapping`]: a file mapped into memory ([`mapping::Mapping`]);
//! * [`debs`]: real Debian packages fetched with `apt-get download` into a
//!   cache under the target directory ([`debs::require`]).
//!
//! Library code returns errors instead of panicking, except where a function
//! says it panics (helpers such as [`require_fixtures`] exist to stop a test
//! with a clear message).

pub mod debs;
pub mod listing;
pub mod mapping;
pub mod mount;
pub mod nginx;
pub mod packagefs;
pub mod paths;

pub use listing::{
    assert_listing_eq, diff, expected_listing_files, list_dir, parse_expected, read_expected,
    sha256_hex, EntryInfo, ListOptions, Listing, ListingError, PACKAGE_XATTR,
};
pub use mount::{
    fuse_available, is_mounted, mounts_below, wait_for, wait_for_mount, wait_for_unmount,
    MountGuard,
};
pub use packagefs::{
    golden_mount_listing, golden_package, golden_packages, package_info_text, package_label,
    walk_nodes, write_package, NodeMeta, PackagefsMount, PACKAGE_XATTR_FULL, XATTR_MAX,
};
pub use paths::{bin_path, fixtures_dir, require_fixtures, workspace_root};
