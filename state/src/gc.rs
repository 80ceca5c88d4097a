//! Garbage collection: drop old unpinned generations, then the store files
//! and the index images no kept generation references.

use std::collections::{BTreeSet, HashSet};
use std::fs;

use serde::Serialize;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::fsutil::{is_temp_name, list_dir, remove_file, sync_dir};
use crate::layout::{INDEX_EXTENSION, PACKAGE_EXTENSION};
use crate::mounts::LiveMount;
use crate::root::Root;
use crate::txn;

/// What `gc` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Generations whose files were removed, ascending.
    pub removed_generations: Vec<u64>,
    /// Store files removed (by content hash).
    pub removed_store_files: Vec<Digest>,
    /// Bytes of store files removed.
    pub freed_bytes: u64,
    /// Index images removed (by the content hash of their package); their
    /// bytes are not in `freed_bytes`.
    pub removed_index_files: Vec<Digest>,
    /// Messages (recovery, unknown files in the store).
    pub warnings: Vec<String>,
    /// Live mounts whose generation was kept only because they serve it
    /// (it is neither among the newest `keep`, nor pinned, nor current).
    pub kept_mounted: Vec<LiveMount>,
}

impl Root {
    /// Keep the newest `keep` generations, every pinned one, the current one
    /// and every one a live mount serves (see [`crate::mounts`]; listed in
    /// [`GcReport::kept_mounted`] when nothing else kept it); remove the other
    /// generation files, then every store file that no kept generation
    /// references, and every index image (`system/state/index/`) of a
    /// package no kept generation references. One locked transaction; a crash midway leaves a valid root
    /// that the next `gc` finishes. `keep` below 1 is [`Error::KeepTooFew`].
    pub fn gc(&self, keep: usize) -> Result<GcReport> {
        if keep < 1 {
            return Err(Error::KeepTooFew(keep));
        }
        let mut txn = txn::begin(self)?;
        let mut report = GcReport {
            warnings: txn.take_warnings(),
            ..GcReport::default()
        };
        let layout = &self.layout;
        let kept = txn.kept()?;
        let mut newest_first: Vec<u64> = kept.iter().map(|g| g.number).collect();
        newest_first.sort_unstable_by(|a, b| b.cmp(a));
        let mut keep_set: BTreeSet<u64> = newest_first.iter().take(keep).copied().collect();
        keep_set.insert(txn.current.number);
        keep_set.extend(kept.iter().filter(|g| g.pinned).map(|g| g.number));
        // Read under the transaction's lock, which registrations also take.
        report.kept_mounted = self
            .live_mounts()?
            .into_iter()
            .filter(|m| !keep_set.contains(&m.generation))
            .filter(|m| kept.iter().any(|g| g.number == m.generation))
            .collect();
        keep_set.extend(report.kept_mounted.iter().map(|m| m.generation));
        for g in kept {
            if !keep_set.contains(&g.number) {
                remove_file(&layout.generation_file(g.number), "gc.remove")?;
                report.removed_generations.push(g.number);
            }
        }
        if !report.removed_generations.is_empty() {
            sync_dir(&layout.generations_dir(), "gc.dirsync")?;
        }
        let referenced: HashSet<Digest> = kept
            .iter()
            .filter(|g| keep_set.contains(&g.number))
            .flat_map(|g| g.packages.iter().map(|p| p.hash))
            .collect();
        for (name, path) in list_dir(&layout.store_dir())? {
            let hash = name
                .strip_suffix(PACKAGE_EXTENSION)
                .and_then(Digest::parse_hex);
            match hash {
                Some(h) if !referenced.contains(&h) => {
                    let size = fs::symlink_metadata(&path).map(|m| m.len()).unwrap_or(0);
                    remove_file(&path, "gc.remove")?;
                    report.removed_store_files.push(h);
                    report.freed_bytes += size;
                }
                Some(_) => {}
                None if is_temp_name(&name) => {}
                None => report.warnings.push(format!(
                    "{}: unknown file in the store, left alone",
                    path.display()
                )),
            }
        }
        if !report.removed_store_files.is_empty() {
            sync_dir(&layout.store_dir(), "gc.dirsync")?;
        }
        remove_unreferenced_images(&layout.index_dir(), &referenced, &mut report)?;
        Ok(report)
    }
}

/// How old a temporary of the index directory must be to be a leftover of a
/// crashed writer rather than an image being written by a mount.
const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(3600);

/// Remove the index images in `dir` of packages not in `referenced`, and
/// temporaries left there by writers that died. The images are derived data:
/// no directory sync.
fn remove_unreferenced_images(
    dir: &std::path::Path,
    referenced: &HashSet<Digest>,
    report: &mut GcReport,
) -> Result<()> {
    let entries = match list_dir(dir) {
        Ok(e) => e,
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(e),
    };
    for (name, path) in entries {
        let hash = name
            .strip_suffix(INDEX_EXTENSION)
            .and_then(Digest::parse_hex);
        match hash {
            Some(h) if !referenced.contains(&h) => {
                remove_file(&path, "gc.remove")?;
                report.removed_index_files.push(h);
            }
            Some(_) => {}
            // Union images prune themselves (the newest few are kept).
            None if name.ends_with(&format!(".{}", crate::plan::tree_image::EXTENSION)) => {}
            None if is_temp_name(&name) => {
                let old = fs::symlink_metadata(&path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > STALE_TEMP);
                if old {
                    remove_file(&path, "gc.remove")?;
                }
            }
            None => report.warnings.push(format!(
                "{}: unknown file in the index directory, left alone",
                path.display()
            )),
        }
    }
    Ok(())
}
