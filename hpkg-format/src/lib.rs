//! Read and write Haiku packages (`.hpkg`) and repository indexes (`.hpkr`)
//! exactly as Haiku's tools do. The byte format is specified in
//! `docs/hpkg-format.md` at the root of the repository; "spec §N" in the
//! comments of this crate is section N of that file.
//!
//! - [`Package`] opens a package: [`Package::info`] is its typed metadata,
//!   [`Package::toc`] a compact index of its entries, and
//!   [`Package::read_file`] reads file content, decompressing only the 64 KiB
//!   chunks a read touches, through a pluggable [`ChunkCache`].
//! - Every parser treats its input as hostile: failures are typed [`Error`]s
//!   naming the offset, never panics, never allocations sized by unchecked
//!   fields.
//! - [`index_image`] stores what opening a package computes in one image
//!   and opens the package from it again without parsing its TOC.
//! - [`create_from_dir`] builds a package from a directory tree and
//!   [`rewrite`] re-encodes an opened one (e.g. with another compression);
//!   [`write_repository`] writes an `.hpkr` index that [`Repository`] reads
//!   back exactly.

pub mod attr;
pub mod bmessage;
pub mod codec;
pub mod error;
pub mod header;
pub mod heap;
pub mod ids;
pub mod index_image;
pub mod info;
pub mod info_text;
pub mod package;
pub mod repo;
pub mod sniff;
pub mod toc;
pub mod version;
pub mod writer;

pub use codec::Compression;
pub use error::{Error, Location, Result};
pub use heap::{Cached, Chunk, ChunkCache, ChunkKey, ChunkSource, Heap, NoCache, ReadAt};
pub use info::{
    Architecture, GlobalWritableFile, PackageFlags, PackageInfo, Provides, Requirement, User,
    UserSettingsFile, WritableFileUpdateType,
};
pub use package::Package;
pub use repo::{RepoLicense, Repository, RepositoryInfo};
pub use sniff::{sniff, FileKind};
pub use toc::{Data, Entry, EntryAttr, EntryId, EntryKind, TableError, Toc};
pub use version::{Operator, Version};
pub use writer::{
    create_from_dir, create_from_tree, rewrite, write_repository, Timestamp, TreeBuilder,
    TreeError, WriteOptions, WriteStats,
};
