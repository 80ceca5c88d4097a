//! The package root on disk: `active.list`, generations, the retained store,
//! locking and crash-safe transactions; and the planner ([`plan`]) that
//! decides what a mount of a generation shows, for the daemon and
//! `pkgctl status` alike.
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
//!     mounts/<pid>-<n>.mount one per live mount, held locked ([`mounts`])
//!     index/<blake3>.idx     index image of a package ([`plan::index_cache`])
//!   system/settings/         policy, trust/*.pub ([`trust`]); repositories/<name> ([`repos`])
//!   system/cache/            repositories/<name>/ accepted indexes; packages/ downloads
//!   data/
//! ```
//!
//! Use it through [`Root`]:
//!
//! ```no_run
//! use state::{Layer, Root};
//! # fn main() -> state::Result<()> {
//! let root = Root::init("/srv/root")?;                  // or Root::open
//! let commit = root.add(&["foo-1.0-x86_64.hpkg"], Layer::User, false, "pkgctl add foo")?;
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
//! # API at a glance
//!
//! | call | does |
//! |---|---|
//! | [`Root::init`]`(path) -> Result<Root>` | create a root (idempotent), commit generation 1 |
//! | [`Root::open`]`(path) -> Result<Root>` | open an initialised root |
//! | [`Root::with_lock_wait`]`(LockWait) -> Root` | block (default) or time out waiting for the lock |
//! | [`Root::current`]`() -> Result<Loaded>` | generation in force, with loud warnings on fallback |
//! | [`Root::generations`]`() -> Result<GenerationList>` | every kept generation |
//! | [`Root::generation`]`(n) -> Result<Generation>` | one kept generation |
//! | [`Root::add`]`(&[path], Layer, force, reason) -> Result<Commit>` | activate package files |
//! | [`Root::remove`]`(&[spec], force, reason) -> Result<Commit>` | deactivate by name, file name, or `layer/…` |
//! | [`Root::rollback`]`(Option<n>, reason) -> Result<Commit>` | new generation with n's set (default: parent) |
//! | [`Root::gc`]`(keep) -> Result<GcReport>` | drop old unpinned generations and unused store files |
//! | [`Root::register_mount`]`(n, &mountpoint) -> Result<MountRegistration>` | a mount serving n: gc keeps n while it is held |
//! | [`Root::live_mounts`]`() -> Result<Vec<LiveMount>>` | the registrations whose lock is held (stale ones removed) |
//! | [`Root::pin`]`(n)`, [`Root::unpin`]`(n) -> Result<Vec<String>>` | protect a generation from gc |
//! | [`Root::verify`]`() -> Result<Vec<VerifyProblem>>` | every package of every kept generation present and intact |
//! | [`Root::sync_from_dirs`]`(reason, &open_file) -> Result<SyncReport>` | the daemon: follow the packages directories |
//! | [`Root::retain_from_fd`]`(&File, Digest, size) -> Result<bool>` | copy an open file into the store |
//! | [`Root::resolve_path`]`(&ActivePackage) -> PathBuf` | where a package's file is (store or packages/) |
//! | [`Root::package_info`]`(&ActivePackage) -> Result<Arc<PackageInfo>>` | its metadata (cached) |
//! | [`display::label`]`(&PackageInfo) -> String` | `name-version` for people (Debian versions decoded) |
//! | [`Root::check_dependencies`]`(&Generation) -> DependencyReport` | unmet requirements and conflicts |
//! | [`Root::blocked_entries`]`() -> Result<Vec<String>>` | paths to hide from the mount |
//! | [`Root::change`]`(&[ActivePackage], &[path], Layer, force, reason) -> Result<Commit>` | remove and add in one generation (install, update) |
//! | [`Root::policy`]`() -> Result<Policy>` | the trust policy; [`Policy::may_shadow`]`(layer)` for the planner |
//! | [`Root::check_trust`]`(Layer, &path) -> Result<Option<Voucher>>` | refuse a file its layer's policy does not accept |
//! | [`Root::untrusted_files`]`() -> Result<Vec<Rejected>>` | files in packages directories the policy refuses |
//! | [`repos`]`::{list, load, save, remove, accepted, accept}` | configured repositories and their accepted indexes |
//! | [`signing`]`::{generate, PublicKey, SecretKey, IndexStamp}` | minisign keys and signatures |
//! | [`deps::check`]`(&[PackageInfo]) -> Vec<DepProblem>` | dependency check of any set |
//! | [`deps::mountable`]`(&[&PackageInfo]) -> Vec<bool>` | what the daemon may mount |
//! | [`plan::plan`]`(&Request, previous) -> Result<Plan, PlanError>` | what a mount shows: packages, refusals, the union tree |
//! | [`plan::unactivated`]`(&Root, &Generation) -> Result<Vec<Refusal>>` | files of the packages directories the generation does not hold |
//!
//! # JSON
//!
//! Every result type is `serde::Serialize`, for `--json` output:
//!
//! * [`Generation`]: `{"number": 7, "parent": 6 | null, "time": "2026-01-02T03:04:05Z",
//!   "reason": "...", "pinned": false, "packages": [ActivePackage...]}`
//! * [`ActivePackage`]: `{"layer": "system" | "common" | "user", "file_name": "...",
//!   "size": 123, "hash": "<64 lowercase hex digits of blake3>"}`
//! * [`Commit`]: `{"generation", "changed", "added", "removed", "forced", "warnings"}`
//! * [`Loaded`]: `{"generation", "warnings", "fallback"}`;
//!   [`GenerationList`]: `{"current", "generations", "warnings"}`
//! * [`DepProblem`]: `{"kind": "unmet", "package", "name", "requirement"}` or
//!   `{"kind": "conflict", "package", "name", "requirement", "other", "other_name"}`
//!   (`package`/`other` index the checked list)
//! * [`VerifyProblem`]: `{"kind": "missing" | "mismatch" | "corrupt-list" | "warning", ...}`
//! * [`GcReport`]: `{"removed_generations", "removed_store_files", "freed_bytes",
//!   "removed_index_files", "warnings",
//!   "kept_mounted": [LiveMount...]}`; [`LiveMount`]: `{"generation", "mountpoint", "pid"}`
//! * [`SyncReport`]: `{"commit", "rejected": [{"layer", "path", "reason"}]}`
//!
//! Reading (`current`, `generations`, `generation`, `resolve_path`,
//! `blocked_entries`, `package_info`) takes no lock. Every change is one
//! transaction under the root's lock (see [`txn`] for the steps and the crash
//! guarantees); a transaction first finishes the cleanup of any interrupted one.

pub mod active_list;
pub mod debian_version;
pub mod deps;
pub mod digest;
pub mod display;
pub mod error;
pub mod fsutil;
pub mod gc;
pub mod generation;
pub mod journal;
pub mod layout;
pub mod lock;
pub mod mounts;
pub mod ops;
pub mod plan;
pub mod repos;
pub mod root;
pub mod signing;
pub mod store;
pub mod sync;
pub mod trust;
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
pub use mounts::{LiveMount, MountRegistration};
pub use ops::DependencyReport;
pub use root::Root;
pub use sync::{Rejected, SyncReport};
pub use trust::{Policy, Voucher, Vouchers};
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
    "mount.rename",
];
