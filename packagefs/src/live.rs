//! Live changes: a mount of the current generation of a root with state
//! follows the root while mounted.
//!
//! [`watch`] starts a thread that watches the three `packages/` directories
//! (files closed after writing, moved in or out, deleted) and
//! `system/state/` (`active.list` or `blocked-entries` replaced, as `pkgctl`
//! does). A change in a packages directory makes the state follow it
//! (`state::Root::sync_from_dirs`, handing over the mount's open descriptor
//! of a deleted package so its content can be retained); an invalid or
//! half-written file is refused with a log line and looked at again on the
//! next event. Whenever the generation in force (or the blocked entries)
//! then differs from the one served, the planner plans the new one, the
//! [`Volume`] swaps its tree in (paths that stay keep their inode numbers),
//! and the kernel is told exactly what changed.
//!
//! Packages that did not change are reused (not re-opened), so their
//! decompressed chunks stay cached.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use inotify::{Inotify, WatchDescriptor, WatchMask};
use state::plan::{self, GenerationChoice, MountSpec};
use state::Layer;

use crate::volume::{self, Notify, Volume};

/// How long to wait for more events before acting on a change.
const SETTLE: Duration = Duration::from_millis(100);

/// Why watching could not start.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The root has no state to follow.
    #[error("{}: not a package root with state: {source}", path.display())]
    NoState {
        /// The root.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<state::Error>,
    },
    /// inotify failed.
    #[error("cannot watch {}: {source}", path.display())]
    Watch {
        /// What was to be watched.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// What the served tree was built from, to tell whether a reload changes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Served {
    generation: Option<u64>,
    blocked: Vec<String>,
}

/// Follow the root of `spec` (current generation) from a background
/// thread, swapping new trees into `volume` and invalidating the kernel's
/// caches through `notify`. `on_swap` is called with each generation
/// served from then on (the mount's registration with the root follows it).
/// `index_cache`: packages of new generations open through the root's index
/// cache (`packagefs mount` without `--no-index-cache`).
pub fn watch(
    volume: Arc<Volume>,
    notify: Box<dyn Notify + Send>,
    spec: MountSpec,
    index_cache: bool,
    root: &Path,
    mut on_swap: Box<dyn FnMut(Option<u64>) + Send>,
) -> Result<(), LiveError> {
    let state_root = state::Root::open(root).map_err(|source| LiveError::NoState {
        path: root.to_path_buf(),
        source: Box::new(source),
    })?;
    let mut inotify = Inotify::init().map_err(|source| LiveError::Watch {
        path: root.to_path_buf(),
        source,
    })?;
    let mut packages_wds: Vec<WatchDescriptor> = Vec::new();
    for layer in Layer::ALL {
        let dir = root.join(layer.name()).join("packages");
        if !dir.is_dir() {
            continue;
        }
        let wd = inotify
            .watches()
            .add(
                &dir,
                WatchMask::CLOSE_WRITE
                    | WatchMask::MOVED_TO
                    | WatchMask::MOVED_FROM
                    | WatchMask::DELETE,
            )
            .map_err(|source| LiveError::Watch { path: dir, source })?;
        packages_wds.push(wd);
    }
    let state_dir = state_root.layout().state_dir();
    inotify
        .watches()
        .add(&state_dir, WatchMask::CLOSE_WRITE | WatchMask::MOVED_TO)
        .map_err(|source| LiveError::Watch {
            path: state_dir.clone(),
            source,
        })?;
    let initial = plan::source::resolve_with(&spec, GenerationChoice::Current)
        .map(|r| Served {
            generation: r.generation,
            blocked: r.blocked,
        })
        .unwrap_or(Served {
            generation: None,
            blocked: Vec::new(),
        });
    let thread = move || {
        let mut served = initial;
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let (mut packages, mut state_changed) = (false, false);
            let mut classify = |wd: &WatchDescriptor, name: Option<OsString>| {
                let name = name.unwrap_or_default();
                let name = name.to_string_lossy();
                if packages_wds.contains(wd) {
                    packages |= name.ends_with(".hpkg") && !name.starts_with('.');
                } else {
                    state_changed |= name == "active.list" || name == "blocked-entries";
                }
            };
            match inotify.read_events_blocking(&mut buf) {
                Ok(events) => {
                    for e in events {
                        classify(&e.wd, e.name.map(|n| n.to_os_string()));
                    }
                }
                Err(e) => {
                    tracing::error!("live changes: reading inotify events failed: {e}; no longer following the root");
                    return;
                }
            }
            // Let a burst of events settle, then take them all.
            std::thread::sleep(SETTLE);
            while let Ok(events) = inotify.read_events(&mut buf) {
                let mut any = false;
                for e in events {
                    any = true;
                    classify(&e.wd, e.name.map(|n| n.to_os_string()));
                }
                if !any {
                    break;
                }
            }
            if !packages && !state_changed {
                continue;
            }
            if packages {
                sync(&state_root, &volume);
            }
            let before = served.generation;
            served = reload(&spec, index_cache, &volume, notify.as_ref(), served);
            if served.generation != before {
                on_swap(served.generation);
            }
        }
    };
    std::thread::Builder::new()
        .name("live".into())
        .spawn(thread)
        .map_err(|source| LiveError::Watch {
            path: root.to_path_buf(),
            source,
        })?;
    Ok(())
}

/// Make the state follow the packages directories, handing over the
/// mount's descriptors of packages that were deleted.
fn sync(root: &state::Root, volume: &Volume) {
    let served = volume.current();
    let layout = root.layout().clone();
    let open_file = |p: &state::ActivePackage| -> Option<File> {
        let in_dir = layout.package_file(p.layer, &p.file_name);
        let stored = layout.store_file(&p.hash);
        served
            .tree()
            .packages()
            .iter()
            .find(|m| m.path() == in_dir || m.path() == stored)
            .and_then(|m| m.file())
            .and_then(|f| f.try_clone().ok())
    };
    match root.sync_from_dirs("packagefs: packages directory changed", &open_file) {
        Ok(report) => {
            for r in &report.rejected {
                tracing::warn!(
                    file = %r.path.display(),
                    "package {} ({}) is not activated: {}",
                    r.path.display(),
                    r.layer,
                    r.reason
                );
            }
            for w in &report.commit.warnings {
                tracing::warn!("{w}");
            }
            if report.commit.changed {
                tracing::info!(
                    "packages directories changed: generation {}",
                    report.commit.generation.number
                );
            }
        }
        Err(e) => tracing::error!("following the packages directories failed: {e}"),
    }
}

/// Plan and swap in the tree of the current generation if it differs from
/// `served`; returns what is served afterwards. Without `index_cache` the
/// new packages are parsed, not opened from their index images.
fn reload(
    spec: &MountSpec,
    index_cache: bool,
    volume: &Volume,
    notify: &dyn Notify,
    served: Served,
) -> Served {
    let mut resolved = match plan::source::resolve_with(spec, GenerationChoice::Current) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("reloading the root failed: {e}; the mount stays as it was");
            return served;
        }
    };
    if !index_cache {
        resolved.index_dir = None;
    }
    let now = Served {
        generation: resolved.generation,
        blocked: resolved.blocked.clone(),
    };
    if now == served {
        return served;
    }
    let current = volume.current();
    let shine = current.tree().shine_through().to_vec();
    let mut plan = match plan::plan_resolved(&resolved, false, &shine, Some(current.tree())) {
        Ok(p) => {
            crate::log_plan(&p, Some(current.tree()));
            p
        }
        Err(e) => {
            tracing::error!("planning the new tree failed: {e}; the mount stays as it was");
            return served;
        }
    };
    drop(current);
    let writes = std::mem::take(&mut plan.index_writes);
    let started = std::time::Instant::now();
    let invalidations = volume.swap(plan.tree, plan.generation);
    let stats = volume.stats();
    tracing::info!(
        "now serving generation {} ({} packages; numbered in {:.1} ms; \
         {} entries and {} inodes to invalidate; {} nodes of replaced trees held by the kernel, \
         {} of them files)",
        now.generation.unwrap_or(0),
        volume.current().tree().packages().len(),
        started.elapsed().as_secs_f64() * 1e3,
        invalidations.entries.len(),
        invalidations.inodes.len(),
        stats.orphans,
        stats.orphan_files,
    );
    volume::send(notify, &invalidations);
    // The new packages' images, now that they are served.
    crate::write_index_images(writes);
    now
}
