//! The repository client and publisher behind `pkgctl key`, `sign`,
//! `repo`, `refresh`, `search`, `install`, `update`, `uninstall` and
//! `full-sync`:
//!
//! * [`publish`]: key pairs, detached signatures, a repository's index files;
//! * [`fetch`]: HTTP(S), `file://` and directories, resumable checked downloads;
//! * [`index`]: refreshing and checking indexes, the accepted ones;
//! * [`solve`]: the resolvo dependency provider;
//! * [`apply`]: from a solution to one new generation.

pub mod apply;
pub mod fetch;
pub mod index;
pub mod publish;
pub mod solve;
