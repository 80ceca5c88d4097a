//! The package root on disk: `active.list`, generations, the retained store,
//! locking and crash-safe transactions.
//!
//! ```text
//! ROOT/
//!   system/packages/*.hpkg   common/packages/*.hpkg   user/packages/*.hpkg
//!   system/state/
//!     active.list            the generation in force (format: [`active_list`])
//!     generations/<N>.list   every kept generation
//!     store/<blake3>.hpkg    package files kept generations need that are no
//!                            longer in a packages directory
//!     blocked-entries        optional: paths to hide from the mounted tree
//!     lock                   flock target of transactions ([`lock`])
//!     journal                only while a transaction moves files ([`journal`])
//!   data/
//! ```
//!
//! Use it through [`Root`]:
//!
//! ```no_run
//! use state::{Layer, Root};
//! # fn main() -> state::Result<()> {
//! let root = Root::init("/srv/root")?;                  // or Root::open
//! let commit = root.add(&["foo-1.0-x86_64.hpkg".into()], Layer::User, false, "pkgctl add foo")?;
//! println!("generation {}", commit.generation.number);
//! let loaded = root.current()?;                        // warnings if active.list was corrupt
//! for p in &loaded.generation.packages {
//!     let path = root.resolve_path(p);                  // packages/ or store/
//!     # let _ = path;
//! }
//! root.remove(&["foo"], false, "pkgctl remove foo")?;
//! root.rollback(None, "pkgctl rollback")?;              // foo is back
//! root.gc(5)?;
//! assert!(root.verify()?.is_empty());
//! # Ok(()) }
//! ```
//!
//! Reading (`current`, `generations`, `generation`, `resolve_path`,
//! `blocked_entries`, `package_info`) takes no lock. Every change is one
//! transaction under the root's lock (see [`txn`] for the steps and the crash
//! guarantees); a transaction first finishes the cleanup of any interrupted one.

pub mod active_list;
pub mod deps;
pub mod digest;
pub mod error;
pub mod fsutil;
pub mod gc;
pub mod generation;
pub mod journal;
pub mod layout;
pub mod lock;
pub mod ops;
pub mod root;
pub mod store;
pub mod sync;
pub mod txn;
pub mod verify;

pub use active_list::{ActivePackage, Generation, ListError};
pub use deps::Problem as DepProblem;
pub use digest::Digest;
pub use error::{Error, Result};
pub use gc::GcReport;
pub use generation::{GenerationList, Loaded};
pub use layout::{Layer, Layout};
pub use lock::LockWait;
pub use ops::DependencyReport;
pub use root::Root;
pub use sync::{Rejected, SyncReport};
pub use txn::Commit;
pub use verify::Problem as VerifyProblem;

/// Every failpoint name (cargo feature `failpoints`; configure with
/// `fail::cfg(name, "return")`). Each makes the step it names fail with an
/// I/O error.
pub const FAILPOINTS: &[&str] = &[
    "stage.copy.fsync",
    "store.copy.fsync",
    "journal.fsync",
    "journal.rename",
    "journal.dirsync",
    "stage.retire.rename",
    "stage.retire.unlink",
    "stage.store.rename",
    "stage.place.rename",
    "stage.dirsync",
    "genfile.fsync",
    "genfile.rename",
    "genfile.dirsync",
    "active.fsync",
    "active.rename",
    "active.dirsync",
    "journal.remove",
    "pin.genfile.fsync",
    "pin.genfile.rename",
    "pin.genfile.dirsync",
    "pin.active.fsync",
    "pin.active.rename",
    "pin.active.dirsync",
    "gc.remove",
    "gc.dirsync",
    "store.rename",
    "store.dirsync",
    "repair.fsync",
    "repair.rename",
    "repair.dirsync",
    "init.dirsync",
];
