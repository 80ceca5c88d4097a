//! packagefs: a read-only FUSE file system serving the union of Haiku
//! `.hpkg` packages straight from the package files, never extracting them.
//!
//! What a mount shows is decided by the planner of the `state` crate
//! ([`state::plan`]): which packages, in which order, which are refused and
//! why, the winner of every path. `pkgctl status` reports the same plan.
//! This crate serves it:
//!
//! - [`load`] plans a mount and logs what the plan decided.
//! - [`fs`] holds the file-system operations over one [`fs::Snapshot`] (a
//!   tree with its inode numbers), [`inodes`] numbers trees so that a path
//!   keeps its inode number across live changes, [`cache`] holds the
//!   decompressed chunks, [`prefetch`] reads ahead, and [`fuse`] is the thin
//!   adapter to the kernel, counting the requests it answers by kind
//!   ([`requests`]).
//! - [`exec_cache`] keeps decompressed copies of executed and often opened
//!   files (`--exec-cache DIR`), to which [`fuse`] passes opens through
//!   (FUSE passthrough), keeping the kernel's rules with [`passthrough`].
//! - [`volume`] is the whole mount across live changes: the served
//!   snapshot, the nodes the kernel still holds of replaced ones, and the
//!   snapshots open files read; [`live`] watches a root with state and
//!   swaps in the new tree of each generation.
//! - [`options`] parses `-o` mount options, [`daemon`] starts the daemon in
//!   the background and reports when the mount is ready (and to systemd),
//!   and [`kmount`] holds the mount plumbing: `mount(2)` of the FUSE file
//!   system, the mount table, unmounting, read-ahead. Only [`fuse`] and
//!   [`kmount`] know the `fuser` crate.
//! - [`shine`] makes the shine-through directories: the data directories
//!   bind-mounted over top-level directories of the read-only tree.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use packagefs::fs::{FsConfig, Snapshot};
//! use packagefs::{fuse, plan::{GenerationChoice, MountSpec, Request}};
//!
//! let spec = MountSpec::Files(vec!["hello-1.0-1-x86_64.hpkg".into()]);
//! let plan = packagefs::load(&Request::new(&spec, GenerationChoice::Current), None)?;
//! let fs = Snapshot::new(plan.tree, plan.generation, &FsConfig::default())?;
//! let session = fuse::mount(fs, "/mnt/hello".as_ref(), &fuse::MountConfig::default())?;
//! session.run()?; // until unmounted
//! # Ok(()) }
//! ```

pub mod cache;
pub mod daemon;
pub mod exec_cache;
pub mod fs;
pub mod fuse;
pub mod inodes;
pub mod kmount;
pub mod live;
pub mod options;
pub mod passthrough;
pub mod prefetch;
pub mod requests;
pub mod shine;
pub mod volume;

/// The planner, re-exported: what a mount shows.
pub use state::plan;

use plan::{MountedPackage, Plan, PlanError, Request, Tree};

/// Plan the mount `request` asks for (see [`state::plan::plan`]), taking
/// over the unchanged packages of `previous`, and log what was decided:
/// warnings and refused packages (warnings), the packages mounted or, when
/// replacing `previous`, activated and deactivated (info), shadowed paths
/// (debug) and the memory of the indexes.
pub fn load(request: &Request<'_>, previous: Option<&Tree>) -> Result<Plan, PlanError> {
    let plan = plan::plan(request, previous)?;
    log_plan(&plan, previous);
    Ok(plan)
}

/// Log what `plan` decided (see [`load`]).
pub fn log_plan(plan: &Plan, previous: Option<&Tree>) {
    for w in &plan.warnings {
        tracing::warn!("{w}");
    }
    for r in &plan.refused {
        tracing::warn!(
            package = %r.package.as_deref().unwrap_or("-"),
            file = %r.path.display(),
            "{r}"
        );
    }
    if let Some(n) = plan.generation {
        tracing::info!(
            "generation {n}: {} packages mounted, {} refused",
            plan.tree.packages().len(),
            plan.refused.len()
        );
    }
    if previous.is_some() {
        tracing::info!(
            "{} packages reused, {} opened",
            plan.reused,
            plan.tree.packages().len().saturating_sub(plan.reused)
        );
    }
    log_activations(previous, &plan.tree);
    tracing::info!(
        "{} packages opened in {:.1} ms, merged in {:.1} ms",
        plan.tree.packages().len(),
        plan.open_time.as_secs_f64() * 1e3,
        plan.merge_time.as_secs_f64() * 1e3
    );
    log_index(&plan.index);
    log_union(&plan.union);
    if !plan.blocked.is_empty() {
        tracing::info!("{} blocked entries hidden", plan.blocked.len());
    }
    tracing::info!("index memory: {}", plan.tree.memory());
    if plan.tree.shadowed_count() > 0 {
        tracing::info!(
            "{} paths are hidden by higher-priority packages",
            plan.tree.shadowed_count()
        );
        for s in plan.tree.shadowed() {
            tracing::debug!(
                "/{}: {} {} hidden by {}",
                String::from_utf8_lossy(&s.path),
                s.hidden.label(),
                s.hidden_kind.name(),
                s.shown.map_or("the shine-through directory", |p| p.label())
            );
        }
    }
}

/// Log what the index cache did: one info line, and a warning for each
/// damaged image and for the first image that could not be written.
fn log_index(index: &plan::IndexStats) {
    for w in &index.warnings {
        tracing::warn!("{w}");
    }
    if index.is_used() {
        tracing::info!(
            "index cache: {} hits, {} missing, {} stale, {} damaged; {} to write",
            index.hits,
            index.missing,
            index.stale,
            index.damaged,
            index.pending,
        );
    }
}

/// Write the index images a plan did not find (see
/// [`plan::IndexWrites::write`]) and log how it went: an info line, and a
/// warning naming the first image that could not be written. The daemon
/// calls it once the mount is ready, so that a first mount does not wait
/// for its images.
pub fn write_index_images(writes: plan::IndexWrites) -> plan::IndexWritten {
    if writes.is_empty() {
        return plan::IndexWritten::default();
    }
    let started = std::time::Instant::now();
    let done = writes.write();
    if let Some(e) = &done.first_failure {
        tracing::warn!("{}", plan::index_cache::index_write_warning(e));
    }
    tracing::info!(
        "index cache: {} written, {} not written, in {:.1} ms",
        done.written,
        done.failures,
        started.elapsed().as_secs_f64() * 1e3
    );
    done
}

/// Log what the union cache did: an info line, and a warning for an image
/// refused or not written.
fn log_union(union: &plan::UnionCache) {
    match union {
        plan::UnionCache::Unused => {}
        plan::UnionCache::Hit => tracing::info!("union cache: the merge was taken from its image"),
        plan::UnionCache::Merged { rejected, stored } => {
            if let Some(why) = rejected {
                tracing::warn!("union cache: image refused, merged again: {why}");
            }
            match stored {
                Some(Ok(())) => tracing::info!("union cache: merged, image stored"),
                Some(Err(e)) => tracing::warn!("union cache: merged, image not stored: {e}"),
                None => tracing::info!("union cache: merged (read-only: no image stored)"),
            }
        }
    }
}

/// Log (info) each package of `tree` as mounted, or, when it replaces
/// `previous`, each package activated or deactivated by the change.
fn log_activations(previous: Option<&Tree>, tree: &Tree) {
    let layer = |p: &MountedPackage| p.source().layer.map_or("-", |l| l.name());
    let Some(previous) = previous else {
        for p in tree.packages() {
            tracing::info!(
                package = %p.package().info().name,
                layer = %layer(p),
                file = %p.path().display(),
                "mounted {}",
                p.label()
            );
        }
        return;
    };
    let has = |t: &Tree, p: &MountedPackage| {
        t.packages()
            .iter()
            .any(|q| q.path() == p.path() && q.label() == p.label())
    };
    for p in tree.packages().iter().filter(|p| !has(previous, p)) {
        tracing::info!(
            package = %p.package().info().name,
            layer = %layer(p),
            file = %p.path().display(),
            "activated {}",
            p.label()
        );
    }
    for p in previous.packages().iter().filter(|p| !has(tree, p)) {
        tracing::info!(
            package = %p.package().info().name,
            layer = %layer(p),
            file = %p.path().display(),
            "deactivated {}",
            p.label()
        );
    }
}
