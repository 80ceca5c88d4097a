//! The exec cache (`--exec-cache DIR`): files that are executed or opened
//! often, decompressed once into plain files of a directory, so that the
//! FUSE adapter can pass later opens through to them ([`crate::passthrough`])
//! and reads and mappings run at the speed of the disk's page cache, across
//! restarts of the daemon and reboots.
//!
//! A cache file holds the content of one entry of one package and is named
//! `<package-blake3>-<entry>-<content-blake3>`: the package's hash as its
//! generation recorded it (packages without one, package files mounted on
//! their own or a root without state, are never cached), the entry's number
//! in the package's table of contents (stable for a given package hash),
//! and the blake3 of the content. A changed package has a new hash, so it
//! never meets the files of the old one; those age out of the cache.
//!
//! Rules:
//!
//! * **What is cached.** An open for execution (the kernel passes
//!   `__FMODE_EXEC`, `0x20`, in the open flags of `execve`) or the
//!   [`ExecCacheConfig::min_opens`]th open of the same file in this run
//!   (default 2) writes the cache file, during that open: the open that
//!   qualifies is then passed through at once, the work is done once per
//!   file and never again (the file survives restarts), and there is no
//!   worker and no window in which the file is in both caches but passed
//!   through by neither. Files larger than the cache are never cached.
//! * **Written atomically.** Into `.tmp-...` in the directory, then renamed;
//!   leftovers of a crash are removed when the cache is opened.
//! * **Verified.** Before its first use in a run, a cache file is checked
//!   against its size and the content hash in its name; a damaged file is
//!   removed and written anew from the package.
//! * **Bounded.** The files' total size stays under
//!   [`ExecCacheConfig::max_bytes`]: before a file is written, the least
//!   recently used ones (by use in this run, and by modification time from
//!   earlier runs: each use touches it) are removed.
//! * **Failure is not fatal.** A file that cannot be written (a full disk,
//!   an unwritable directory) is left out with one warning per run, and the
//!   mount goes on serving from the packages.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use hpkg_format::EntryKind;
use state::digest::Digest;

use crate::fs::{FsError, Snapshot};

/// Default bound of the cache's total size: 1 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;
/// Default number of opens in a run after which a file is cached.
pub const DEFAULT_MIN_OPENS: u32 = 2;
/// The open flag of `execve` (the kernel's `__FMODE_EXEC`), which FUSE
/// passes on in the open flags.
pub const FMODE_EXEC: i32 = 0x20;
/// Names of files being written start with this.
const TMP_PREFIX: &str = ".tmp-";
/// Bytes read from the package per step when writing a cache file.
const FILL_STEP: u32 = 1 << 20;

/// Where the cache is and how it behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecCacheConfig {
    /// The cache directory (created if missing).
    pub dir: PathBuf,
    /// Bound of the total size of the cache files.
    pub max_bytes: u64,
    /// Opens of a file in one run after which it is cached (an open for
    /// execution caches it at once).
    pub min_opens: u32,
}

impl ExecCacheConfig {
    /// The defaults for directory `dir`.
    pub fn new(dir: PathBuf) -> ExecCacheConfig {
        ExecCacheConfig {
            dir,
            max_bytes: DEFAULT_MAX_BYTES,
            min_opens: DEFAULT_MIN_OPENS,
        }
    }
}

/// Why the cache directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ExecCacheError {
    /// The directory cannot be created.
    #[error("exec cache {}: cannot create the directory: {source}", dir.display())]
    Create {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The directory cannot be listed.
    #[error("exec cache {}: cannot list the directory: {source}", dir.display())]
    List {
        /// The directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// What a cache file holds: one entry of one package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    /// The blake3 of the package file, as its generation recorded it.
    pub package: Digest,
    /// The entry's number in the package's table of contents.
    pub entry: u32,
}

impl Key {
    /// The name of the cache file of this key whose content hashes to
    /// `content`.
    pub fn file_name(&self, content: &Digest) -> String {
        format!(
            "{}-{}-{}",
            self.package.to_hex(),
            self.entry,
            content.to_hex()
        )
    }

    /// The key and content hash a cache file name gives (`None`: not a
    /// cache file's name).
    pub fn parse_name(name: &str) -> Option<(Key, Digest)> {
        let mut parts = name.splitn(3, '-');
        let package = Digest::parse_hex(parts.next()?)?;
        let entry_text = parts.next()?;
        if entry_text.is_empty()
            || !entry_text.bytes().all(|b| b.is_ascii_digit())
            || (entry_text.len() > 1 && entry_text.starts_with('0'))
        {
            return None;
        }
        let entry = entry_text.parse().ok()?;
        let content = Digest::parse_hex(parts.next()?)?;
        Some((Key { package, entry }, content))
    }
}

/// The cache key and content length of file `ino` of `fs`: `None` for
/// anything but a file of a package with a recorded hash.
pub fn key_of(fs: &Snapshot, ino: u64) -> Option<(Key, u64)> {
    let node = fs.node(ino).ok()?;
    if node.kind() != EntryKind::File {
        return None;
    }
    let (toc, entry) = node.toc_entry()?;
    let (_, package) = node.package()?.source().recorded?;
    Some((Key { package, entry }, toc.data(entry).len()))
}

/// One cache file.
#[derive(Debug, Clone, Copy)]
struct Stored {
    /// The blake3 of its content (in its name).
    content: Digest,
    /// Its size.
    size: u64,
    /// When it was last used: a tick of [`State::clock`].
    last_used: u64,
    /// Whether it was checked (or written) in this run.
    verified: bool,
}

/// The index of the cache and the opens of this run.
#[derive(Debug, Default)]
struct State {
    files: HashMap<Key, Stored>,
    /// The total size of `files`, and of the files being written.
    total: u64,
    /// The next tick to hand out.
    clock: u64,
    /// Opens of each file in this run.
    opens: HashMap<Key, u32>,
    /// Files being written or checked (never removed meanwhile).
    busy: HashSet<Key>,
    /// Files that could not be written in this run (not tried again).
    failed: HashSet<Key>,
}

impl State {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Drop the least recently used files not in use until `need` more
    /// bytes fit under `max`; returns the names to delete.
    fn make_room(&mut self, need: u64, max: u64) -> Vec<String> {
        let mut out = Vec::new();
        while self.total.saturating_add(need) > max {
            let victim = self
                .files
                .iter()
                .filter(|(k, _)| !self.busy.contains(k))
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, s)| (*k, *s));
            let Some((key, stored)) = victim else {
                break;
            };
            self.files.remove(&key);
            self.total = self.total.saturating_sub(stored.size);
            out.push(key.file_name(&stored.content));
        }
        out
    }
}

/// What a file's open found in the index.
enum Found {
    /// A file checked in this run: use it.
    Ready(String),
    /// A file not checked yet: check it.
    Unchecked(Stored),
    /// No file: write it.
    Missing,
}

/// The cache directory and its index (see the module comment).
#[derive(Debug)]
pub struct ExecCache {
    config: ExecCacheConfig,
    state: Mutex<State>,
    /// Whether a failure to write was reported in this run.
    warned: AtomicBool,
    /// Numbers the temporary files of this run.
    tmp_counter: AtomicU64,
}

impl ExecCache {
    /// Open (creating it if needed) the cache at `config.dir`: index its
    /// files, oldest use first, remove leftover temporary files, and keep
    /// the total under `config.max_bytes`.
    pub fn open(config: ExecCacheConfig) -> Result<ExecCache, ExecCacheError> {
        let dir = &config.dir;
        fs::create_dir_all(dir).map_err(|source| ExecCacheError::Create {
            dir: dir.clone(),
            source,
        })?;
        let list = |source| ExecCacheError::List {
            dir: dir.clone(),
            source,
        };
        let mut found: Vec<(SystemTime, Key, Digest, u64)> = Vec::new();
        for e in fs::read_dir(dir).map_err(list)? {
            let e = e.map_err(list)?;
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with(TMP_PREFIX) {
                if let Err(err) = fs::remove_file(e.path()) {
                    tracing::debug!("exec cache: cannot remove {name}: {err}");
                }
                continue;
            }
            let Some((key, content)) = Key::parse_name(name) else {
                continue;
            };
            let Ok(meta) = e.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            found.push((mtime, key, content, meta.len()));
        }
        // Oldest first: later uses (and later duplicates) win.
        found.sort_by_key(|f| f.0);
        let mut state = State::default();
        let mut stale = Vec::new();
        for (_, key, content, size) in found {
            let last_used = state.tick();
            let stored = Stored {
                content,
                size,
                last_used,
                verified: false,
            };
            if let Some(old) = state.files.insert(key, stored) {
                state.total = state.total.saturating_sub(old.size);
                stale.push(key.file_name(&old.content));
            }
            state.total = state.total.saturating_add(size);
        }
        stale.extend(state.make_room(0, config.max_bytes));
        let cache = ExecCache {
            state: Mutex::new(state),
            warned: AtomicBool::new(false),
            tmp_counter: AtomicU64::new(0),
            config,
        };
        cache.remove_files(&stale);
        Ok(cache)
    }

    /// The configuration.
    pub fn config(&self) -> &ExecCacheConfig {
        &self.config
    }

    /// Files indexed and their total size.
    pub fn usage(&self) -> (usize, u64) {
        let st = self.lock();
        (st.files.len(), st.total)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.config.dir.join(name)
    }

    fn remove_files(&self, names: &[String]) {
        for name in names {
            match fs::remove_file(self.path(name)) {
                Ok(()) => tracing::debug!("exec cache: removed {name}"),
                Err(e) => tracing::debug!("exec cache: cannot remove {name}: {e}"),
            }
        }
    }

    /// Count an open of the file `key`, whose content is `size` bytes long
    /// (`exec`: an open for execution), and return its cache file, opened
    /// for reading, if it has one or this open makes it qualify: then the
    /// file is checked or written now, its content read with `read(offset,
    /// len)` from the package. `None`: serve the open from the package.
    pub fn file_for_open(
        &self,
        key: Key,
        size: u64,
        exec: bool,
        read: &mut dyn FnMut(u64, u32) -> Result<Vec<u8>, FsError>,
    ) -> Option<File> {
        let found = {
            let mut guard = self.lock();
            let st = &mut *guard;
            let n = st.opens.entry(key).or_insert(0);
            *n = n.saturating_add(1);
            let qualifies = exec || *n >= self.config.min_opens;
            if st.busy.contains(&key) {
                return None;
            }
            let tick = st.tick();
            match st.files.get_mut(&key) {
                Some(s) if s.verified => {
                    s.last_used = tick;
                    Found::Ready(key.file_name(&s.content))
                }
                Some(s) => {
                    let s = *s;
                    st.busy.insert(key);
                    Found::Unchecked(s)
                }
                None if qualifies && size <= self.config.max_bytes && !st.failed.contains(&key) => {
                    st.busy.insert(key);
                    Found::Missing
                }
                None => return None,
            }
        };
        let held = !matches!(found, Found::Ready(_));
        let name = match found {
            Found::Ready(name) => name,
            Found::Unchecked(stored) => match self.check(key, stored, size) {
                Some(name) => name,
                None => match self.fill(key, size, read) {
                    Some(name) => name,
                    None => {
                        self.lock().busy.remove(&key);
                        return None;
                    }
                },
            },
            Found::Missing => match self.fill(key, size, read) {
                Some(name) => name,
                None => {
                    self.lock().busy.remove(&key);
                    return None;
                }
            },
        };
        let file = File::open(self.path(&name));
        if held {
            self.lock().busy.remove(&key);
        }
        match file {
            Ok(f) => {
                // The use, for the order of removal in later runs.
                let _ = f.set_modified(SystemTime::now());
                Some(f)
            }
            Err(e) => {
                // Removed meanwhile to make room for another.
                tracing::debug!("exec cache: cannot open {name}: {e}");
                None
            }
        }
    }

    /// Drop `key` from the index (its file is gone or unusable).
    fn forget(&self, key: Key) {
        let mut st = self.lock();
        if let Some(s) = st.files.remove(&key) {
            st.total = st.total.saturating_sub(s.size);
        }
    }

    /// Check the unchecked cache file of `key` (its content must be `size`
    /// bytes hashing to the name's hash); returns its name when it is
    /// sound, else removes it and forgets it.
    fn check(&self, key: Key, stored: Stored, size: u64) -> Option<String> {
        let name = key.file_name(&stored.content);
        let path = self.path(&name);
        let verdict = match hash_file(&path) {
            Ok((n, _)) if n != size => Err(format!("{n} bytes instead of {size}")),
            Ok((_, hash)) if hash != stored.content => Err(format!("its content hashes to {hash}")),
            Ok(_) => Ok(()),
            Err(e) => Err(e.to_string()),
        };
        match verdict {
            Ok(()) => {
                let mut st = self.lock();
                let tick = st.tick();
                if let Some(s) = st.files.get_mut(&key) {
                    s.verified = true;
                    s.last_used = tick;
                }
                Some(name)
            }
            Err(why) => {
                tracing::warn!("exec cache: {name} is damaged ({why}); writing it anew");
                self.forget(key);
                if let Err(e) = fs::remove_file(&path) {
                    tracing::debug!("exec cache: cannot remove {name}: {e}");
                }
                None
            }
        }
    }

    /// Write the cache file of `key` (`size` bytes, read with `read`);
    /// returns its name. `key` is busy meanwhile.
    fn fill(
        &self,
        key: Key,
        size: u64,
        read: &mut dyn FnMut(u64, u32) -> Result<Vec<u8>, FsError>,
    ) -> Option<String> {
        // Room is made and the size reserved at once, so that files
        // written side by side stay under the bound together.
        let victims = {
            let mut st = self.lock();
            let victims = st.make_room(size, self.config.max_bytes);
            st.total = st.total.saturating_add(size);
            victims
        };
        self.remove_files(&victims);
        let tmp = self.path(&format!(
            "{TMP_PREFIX}{}-{}-{}-{}",
            key.package.to_hex(),
            key.entry,
            std::process::id(),
            self.tmp_counter.fetch_add(1, Ordering::Relaxed)
        ));
        let written = write_file(&tmp, size, read).and_then(|content| {
            let name = key.file_name(&content);
            fs::rename(&tmp, self.path(&name)).map_err(Failure::Write)?;
            Ok((name, content))
        });
        match written {
            Ok((name, content)) => {
                let mut st = self.lock();
                let last_used = st.tick();
                let stored = Stored {
                    content,
                    size,
                    last_used,
                    verified: true,
                };
                if let Some(old) = st.files.insert(key, stored) {
                    st.total = st.total.saturating_sub(old.size);
                }
                tracing::debug!("exec cache: wrote {name} ({size} bytes)");
                Some(name)
            }
            Err(failure) => {
                let _ = fs::remove_file(&tmp);
                {
                    let mut st = self.lock();
                    st.failed.insert(key);
                    st.total = st.total.saturating_sub(size);
                }
                match failure {
                    Failure::Read(e) => {
                        tracing::debug!("exec cache: reading {key:?} from its package: {e}");
                    }
                    Failure::Write(e) => {
                        if !self.warned.swap(true, Ordering::Relaxed) {
                            tracing::warn!(
                                "exec cache {}: cannot write a file ({e}); \
                                 serving such files from their packages",
                                self.config.dir.display()
                            );
                        } else {
                            tracing::debug!("exec cache: cannot write {key:?}: {e}");
                        }
                    }
                }
                None
            }
        }
    }
}

/// Why a cache file was not written.
#[derive(Debug)]
enum Failure {
    /// The package could not be read.
    Read(String),
    /// The cache directory could not be written.
    Write(io::Error),
}

/// Write `size` bytes read with `read` into a new file at `path`; returns
/// the blake3 of the bytes.
fn write_file(
    path: &Path,
    size: u64,
    read: &mut dyn FnMut(u64, u32) -> Result<Vec<u8>, FsError>,
) -> Result<Digest, Failure> {
    let mut file = File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(Failure::Write)?;
    let mut hasher = blake3::Hasher::new();
    let mut offset = 0;
    while offset < size {
        let step = u32::try_from((size - offset).min(u64::from(FILL_STEP))).unwrap_or(FILL_STEP);
        let data = read(offset, step).map_err(|e| Failure::Read(e.to_string()))?;
        if data.is_empty() {
            return Err(Failure::Read(format!(
                "the file ends at {offset} of {size}"
            )));
        }
        file.write_all(&data).map_err(Failure::Write)?;
        hasher.update(&data);
        offset += data.len() as u64;
    }
    // No fsync: a file left torn or empty by a crash fails its check
    // before its first use in the next run and is written anew.
    Ok(hasher.finalize().into())
}

/// Size and blake3 of the file at `path`.
fn hash_file(path: &Path) -> io::Result<(u64, Digest)> {
    let mut file = File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let got = file.read(&mut buf)?;
        if got == 0 {
            return Ok((n, hasher.finalize().into()));
        }
        hasher.update(buf.get(..got).unwrap_or_default());
        n += got as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8, entry: u32) -> Key {
        Key {
            package: Digest([n; 32]),
            entry,
        }
    }

    fn reader(content: Vec<u8>) -> impl FnMut(u64, u32) -> Result<Vec<u8>, FsError> {
        move |offset, len| {
            let start = usize::try_from(offset).unwrap().min(content.len());
            let end = (start + len as usize).min(content.len());
            Ok(content[start..end].to_vec())
        }
    }

    fn cache(dir: &Path, max_bytes: u64, min_opens: u32) -> ExecCache {
        ExecCache::open(ExecCacheConfig {
            dir: dir.to_path_buf(),
            max_bytes,
            min_opens,
        })
        .unwrap()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn read_all(mut f: File) -> Vec<u8> {
        let mut v = Vec::new();
        f.read_to_end(&mut v).unwrap();
        v
    }

    #[test]
    fn names_round_trip_and_strangers_are_refused() {
        let k = key(7, 42);
        let c = Digest([9; 32]);
        let name = k.file_name(&c);
        assert_eq!(Key::parse_name(&name), Some((k, c)));
        assert_eq!(Key::parse_name(&name.replace("-42-", "-042-")), None);
        assert_eq!(Key::parse_name(&name.replace("-42-", "--")), None);
        assert_eq!(Key::parse_name(&name.replace("-42-", "-4x-")), None);
        assert_eq!(Key::parse_name(&name.replace("-42-", "-+42-")), None);
        let defaults = ExecCacheConfig::new("/var/cache/exec".into());
        assert_eq!((defaults.max_bytes, defaults.min_opens), (1 << 30, 2));
        assert_eq!(Key::parse_name(&format!("{name}0")), None);
        assert_eq!(Key::parse_name("notes.txt"), None);
        assert_eq!(Key::parse_name(&format!(".tmp-{name}")), None);
    }

    #[test]
    fn the_second_open_writes_the_file_and_later_ones_use_it() {
        let dir = tempfile::tempdir().unwrap();
        let c = cache(dir.path(), 1 << 20, 2);
        let content = b"hello, cached world\n".repeat(100);
        let mut read = reader(content.clone());
        assert!(c
            .file_for_open(key(1, 3), content.len() as u64, false, &mut read)
            .is_none());
        assert!(names(dir.path()).is_empty());
        let f = c
            .file_for_open(key(1, 3), content.len() as u64, false, &mut read)
            .unwrap();
        assert_eq!(read_all(f), content);
        let content_hash = Digest::of_bytes(&content);
        assert_eq!(names(dir.path()), vec![key(1, 3).file_name(&content_hash)]);
        let f = c
            .file_for_open(key(1, 3), content.len() as u64, false, &mut |_, _| {
                panic!("read again")
            })
            .unwrap();
        assert_eq!(read_all(f), content);
        assert_eq!(c.usage(), (1, content.len() as u64));
    }

    #[test]
    fn an_open_for_execution_writes_the_file_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let c = cache(dir.path(), 1 << 20, 5);
        let f = c
            .file_for_open(key(1, 1), 3, true, &mut reader(b"abc".to_vec()))
            .unwrap();
        assert_eq!(read_all(f), b"abc");
        assert!(c
            .file_for_open(key(1, 2), 3, false, &mut reader(b"abc".to_vec()))
            .is_none());
    }

    #[test]
    fn a_file_survives_a_restart_and_damage_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let content = vec![5u8; 3000];
        {
            let c = cache(dir.path(), 1 << 20, 1);
            c.file_for_open(key(2, 0), 3000, false, &mut reader(content.clone()))
                .unwrap();
        }
        let name = key(2, 0).file_name(&Digest::of_bytes(&content));
        // Sound: used without reading the package.
        let c = cache(dir.path(), 1 << 20, 1);
        let f = c
            .file_for_open(key(2, 0), 3000, false, &mut |_, _| panic!("read"))
            .unwrap();
        assert_eq!(read_all(f), content);
        drop(c);
        // A flipped byte, then a cut: found, removed, written anew.
        for damage in [0, 1] {
            let path = dir.path().join(&name);
            let mut bytes = fs::read(&path).unwrap();
            if damage == 0 {
                bytes[1234] ^= 0x40;
            } else {
                bytes.truncate(1000);
            }
            fs::write(&path, bytes).unwrap();
            let c = cache(dir.path(), 1 << 20, 1);
            let f = c
                .file_for_open(key(2, 0), 3000, false, &mut reader(content.clone()))
                .unwrap();
            assert_eq!(read_all(f), content);
            assert_eq!(fs::read(&path).unwrap(), content);
        }
        // Damaged, and the package cannot be read: forgotten altogether.
        fs::write(dir.path().join(&name), b"junk").unwrap();
        let c = cache(dir.path(), 1 << 20, 1);
        assert_eq!(c.usage(), (1, 4));
        assert!(c
            .file_for_open(key(2, 0), 3000, false, &mut |_, _| Err(FsError::Io))
            .is_none());
        assert_eq!(c.usage(), (0, 0));
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn the_least_recently_used_files_go_first() {
        let dir = tempfile::tempdir().unwrap();
        let c = cache(dir.path(), 2500, 1);
        let body = |n: u8| vec![n; 1000];
        for n in 1..=2 {
            c.file_for_open(key(n, 0), 1000, false, &mut reader(body(n)))
                .unwrap();
        }
        // 1 is used again: 2 is now the oldest.
        c.file_for_open(key(1, 0), 1000, false, &mut reader(body(1)))
            .unwrap();
        c.file_for_open(key(3, 0), 1000, false, &mut reader(body(3)))
            .unwrap();
        let left = names(dir.path());
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left.contains(&key(1, 0).file_name(&Digest::of_bytes(&body(1)))));
        assert!(left.contains(&key(3, 0).file_name(&Digest::of_bytes(&body(3)))));
        assert_eq!(c.usage(), (2, 2000));
        // Exactly at the bound: nothing goes.
        let c2dir = tempfile::tempdir().unwrap();
        let c2 = cache(c2dir.path(), 3000, 1);
        for n in 1..=3 {
            c2.file_for_open(key(n, 0), 1000, false, &mut reader(body(n)))
                .unwrap();
        }
        assert_eq!(c2.usage(), (3, 3000));
        // Too big for the cache: never written.
        assert!(c
            .file_for_open(key(4, 0), 3000, false, &mut reader(vec![4; 3000]))
            .is_none());
        // A smaller bound on the next run evicts down to it.
        drop(c);
        let c = cache(dir.path(), 1500, 1);
        assert_eq!(c.usage().0, 1);
        assert_eq!(names(dir.path()).len(), 1);
    }

    #[test]
    fn eviction_follows_the_order_of_use_across_runs() {
        let dir = tempfile::tempdir().unwrap();
        let body = |n: u8| vec![n; 100];
        let file = |n: u8| key(n, 0).file_name(&Digest::of_bytes(&body(n)));
        let c = cache(dir.path(), 1000, 1);
        for n in 1..=10 {
            c.file_for_open(key(n, 0), 100, false, &mut reader(body(n)))
                .unwrap();
        }
        // Used again, in this order: 9 7 5 3 1 (1 is now the newest).
        for n in [9, 7, 5, 3, 1] {
            c.file_for_open(key(n, 0), 100, false, &mut reader(body(n)))
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // Five new files push out the five unused ones, oldest first.
        for n in 11..=15 {
            c.file_for_open(key(n, 0), 100, false, &mut reader(body(n)))
                .unwrap();
        }
        let left = names(dir.path());
        for n in [1, 3, 5, 7, 9, 11, 12, 13, 14, 15] {
            assert!(left.contains(&file(n)), "{n} is gone");
        }
        drop(c);
        // The next run knows the order from the files' times: 9 is the
        // oldest used of them, then 7.
        for n in 11..=15 {
            let f = File::options()
                .write(true)
                .open(dir.path().join(file(n)))
                .unwrap();
            f.set_modified(SystemTime::now()).unwrap();
        }
        let c = cache(dir.path(), 1000, 1);
        for n in 16..=17 {
            c.file_for_open(key(n, 0), 100, false, &mut reader(body(n)))
                .unwrap();
        }
        let left = names(dir.path());
        assert!(
            !left.contains(&file(9)) && !left.contains(&file(7)),
            "{left:?}"
        );
        assert!(left.contains(&file(5)) && left.contains(&file(1)));
    }

    #[test]
    fn leftovers_are_removed_and_strangers_kept() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(".tmp-whatever"), b"x").unwrap();
        fs::write(dir.path().join("README"), b"x").unwrap();
        let _c = cache(dir.path(), 1 << 20, 1);
        assert_eq!(names(dir.path()), vec!["README".to_string()]);
    }

    #[test]
    fn a_file_that_cannot_be_read_or_written_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let c = cache(dir.path(), 1 << 20, 1);
        let mut failing = |_, _| Err(FsError::Io);
        assert!(c
            .file_for_open(key(1, 0), 10, false, &mut failing)
            .is_none());
        assert!(names(dir.path()).is_empty());
        // Its reserved room is given back.
        assert_eq!(c.usage(), (0, 0));
        // Not tried again in this run.
        assert!(c
            .file_for_open(key(1, 0), 10, false, &mut |_, _| panic!("tried again"))
            .is_none());
        // A directory that is gone: nothing written, nothing fails.
        let gone = dir.path().join("gone");
        let c = cache(&gone, 1 << 20, 1);
        fs::remove_dir(&gone).unwrap();
        assert!(c
            .file_for_open(key(1, 0), 3, false, &mut reader(b"abc".to_vec()))
            .is_none());
        assert!(c.warned.load(Ordering::Relaxed));
    }
}
