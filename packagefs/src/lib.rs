//! The FUSE union file system over `.hpkg` packages. Not yet filled: see issue 3.
