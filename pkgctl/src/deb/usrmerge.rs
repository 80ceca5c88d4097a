//! `import-deb --merge-usr`: the data tree laid out as on a merged-/usr
//! Debian system.
//!
//! A merged-/usr system (every Debian bookworm install) has the top-level
//! symlinks `bin -> usr/bin`, `sbin -> usr/sbin`, `lib -> usr/lib` (and
//! `lib64 -> usr/lib64` on amd64), made by debootstrap; dpkg writes a
//! package's `/bin/x` through them to `/usr/bin/x`. No package ships the
//! links, so a union of imported packages would get separate `/bin` and
//! `/usr/bin` directories. With the flag:
//!
//! - Every entry under a top-level [`MERGED_DIRS`] directory moves to
//!   `usr/<same path>`. A directory present both ways keeps `usr/`'s mode
//!   and time. A non-directory present both ways (`/X/p` and `/usr/X/p`) is
//!   kept once when both are identical (type, contents or target, mode; the
//!   time of the `usr/` one is kept); otherwise the `.deb` fails with
//!   [`ErrorKind::UsrMergeClash`] naming both paths (dpkg with usrmerge
//!   refuses such a package too).
//! - Symlink targets are kept as they are: absolute ones (`/lib/…`) work
//!   through the top-level links, relative ones inside a moved directory
//!   move with it, and one that climbs to the root and into another moved
//!   directory (`bin/x -> ../lib/y`: `/usr/bin/../lib/y` is `/usr/lib/y`,
//!   where `/lib/y` went) still lands on the same file. The only relative
//!   target that would land elsewhere climbs to the root and then goes
//!   somewhere that did not move (`bin/x -> ../usr/bin/y` from `/usr/bin`
//!   is `/usr/usr/bin/y`) or above the root; exactly those get one more
//!   leading `../` (checked lexically, [`fix_target`]). Bookworm's minbase
//!   set has none.
//! - The top-level links ([`links`]: `bin`, `sbin`, `lib`, plus `lib64` on
//!   amd64, as in a bookworm debootstrap tree, plus any other `lib*` of
//!   [`MERGED_DIRS`] a package of the batch ships) go into exactly one
//!   package so the union has no clash: Debian's `usr-is-merged` (the
//!   package that asserts the merged layout) when it is in the batch, else
//!   `base-files`, else none and the summary says the root lacks them.
//! - The package records the merge as `.DEBIAN/`[`MARKER`]; `pkgctl info`
//!   shows "merged /usr: yes" and `--json` `debian.merged_usr`.

use std::collections::{BTreeSet, HashMap};

use super::archive::DataEntry;
use super::ErrorKind;

/// The top-level directories that move under `usr/`.
pub const MERGED_DIRS: [&str; 7] = ["bin", "sbin", "lib", "lib32", "lib64", "libx32", "libo32"];

/// The file in `.DEBIAN/` that marks a package imported with `--merge-usr`.
pub const MARKER: &str = "packagefs-merge-usr";

/// The Debian packages that get the top-level links, in order of choice.
pub const LINK_HOLDERS: [&str; 2] = ["usr-is-merged", "base-files"];

/// Whether the first component of `path` is one of [`MERGED_DIRS`].
fn top_is_merged(path: &[u8]) -> bool {
    let top = path.split(|&b| b == b'/').next().unwrap_or_default();
    MERGED_DIRS.iter().any(|d| d.as_bytes() == top)
}

/// `path` under `usr/` if its top directory is one of [`MERGED_DIRS`].
pub fn moved_path(path: &[u8]) -> Option<Vec<u8>> {
    top_is_merged(path).then(|| [b"usr/".as_slice(), path].concat())
}

/// The [`MERGED_DIRS`] that are top-level directories of `data`.
pub fn shipped_dirs(data: &[DataEntry]) -> BTreeSet<String> {
    data.iter()
        .filter_map(|e| {
            let top = entry_path(e).split(|&b| b == b'/').next()?;
            MERGED_DIRS
                .iter()
                .find(|d| d.as_bytes() == top)
                .map(|d| d.to_string())
        })
        .collect()
}

/// The top-level links of a merged root for Debian architecture `deb_arch`
/// (`None`: only `all` packages): `bin`, `sbin`, `lib`, `lib64` on amd64
/// (what bookworm's debootstrap makes), and any other of [`MERGED_DIRS`] in
/// `shipped` (a moved directory must stay reachable by its old name).
pub fn links(deb_arch: Option<&str>, shipped: &BTreeSet<String>) -> Vec<String> {
    MERGED_DIRS
        .iter()
        .filter(|d| {
            matches!(**d, "bin" | "sbin" | "lib")
                || (**d == "lib64" && deb_arch == Some("amd64"))
                || shipped.contains(**d)
        })
        .map(|d| d.to_string())
        .collect()
}

fn entry_path(e: &DataEntry) -> &[u8] {
    match e {
        DataEntry::Dir { path, .. }
        | DataEntry::File { path, .. }
        | DataEntry::Symlink { path, .. } => path,
    }
}

fn entry_path_mut(e: &mut DataEntry) -> &mut Vec<u8> {
    match e {
        DataEntry::Dir { path, .. }
        | DataEntry::File { path, .. }
        | DataEntry::Symlink { path, .. } => path,
    }
}

/// Whether two entries are the same but for path and time.
fn identical(a: &DataEntry, b: &DataEntry) -> bool {
    match (a, b) {
        (
            DataEntry::File {
                mode: m1, data: d1, ..
            },
            DataEntry::File {
                mode: m2, data: d2, ..
            },
        ) => m1 == m2 && d1 == d2,
        (
            DataEntry::Symlink {
                mode: m1,
                target: t1,
                ..
            },
            DataEntry::Symlink {
                mode: m2,
                target: t2,
                ..
            },
        ) => m1 == m2 && t1 == t2,
        _ => false,
    }
}

/// Lexically resolve `target` from directory `dir` (components from the
/// root); `..` at the root stays at the root, as the kernel does.
fn resolve(dir: &[Vec<u8>], target: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = if target.first() == Some(&b'/') {
        Vec::new()
    } else {
        dir.to_vec()
    };
    for part in target.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            p => out.push(p.to_vec()),
        }
    }
    out
}

/// Where `components` is in the merged root (through the top-level links).
fn merged_place(mut components: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    if components.first().is_some_and(|c| top_is_merged(c)) {
        components.insert(0, b"usr".to_vec());
    }
    components
}

/// The target a symlink moved from `old_path` (which starts with one of
/// [`MERGED_DIRS`]) to `usr/old_path` needs so that it lands on the same
/// file of the merged root: `target` itself unless it is relative and
/// climbs out to somewhere that did not move (module comment), then
/// `../target`.
pub fn fix_target(old_path: &[u8], target: &[u8]) -> Vec<u8> {
    if target.first() == Some(&b'/') {
        return target.to_vec();
    }
    let old_dir: Vec<Vec<u8>> = {
        let mut c: Vec<Vec<u8>> = old_path.split(|&b| b == b'/').map(<[u8]>::to_vec).collect();
        c.pop();
        c
    };
    let mut new_dir = old_dir.clone();
    new_dir.insert(0, b"usr".to_vec());
    let want = merged_place(resolve(&old_dir, target));
    if merged_place(resolve(&new_dir, target)) == want {
        return target.to_vec();
    }
    // One more `..` climbs the added `usr/` level.
    [b"../".as_slice(), target].concat()
}

/// What [`merge`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Merged {
    /// The data entries, moved.
    pub data: Vec<DataEntry>,
    /// Entries moved under `usr/`.
    pub moved: usize,
    /// Identical non-directories kept once.
    pub duplicates: usize,
    /// Symlinks whose relative target got a leading `../`.
    pub fixed_targets: usize,
}

/// Move the entries of `data` under [`MERGED_DIRS`] to `usr/` (module
/// comment); fails on a non-directory present both ways and different.
pub fn merge(data: Vec<DataEntry>) -> Result<Merged, ErrorKind> {
    let mut m = Merged::default();
    // New path → (index in m.data, whether that entry was moved).
    let mut seen: HashMap<Vec<u8>, (usize, bool)> = HashMap::new();
    for mut e in data {
        let was_moved = match moved_path(entry_path(&e)) {
            Some(new) => {
                if let DataEntry::Symlink { path, target, .. } = &mut e {
                    let fixed = fix_target(path, target);
                    if fixed != *target {
                        *target = fixed;
                        m.fixed_targets += 1;
                    }
                }
                *entry_path_mut(&mut e) = new;
                m.moved += 1;
                true
            }
            None => false,
        };
        let path = entry_path(&e).to_vec();
        let Some(&(i, other_moved)) = seen.get(&path) else {
            seen.insert(path, (m.data.len(), was_moved));
            m.data.push(e);
            continue;
        };
        if other_moved == was_moved {
            // The same path twice in the tar itself: left for the tree
            // builder to refuse, as without the flag.
            m.data.push(e);
            continue;
        }
        let Some(other) = m.data.get_mut(i) else {
            continue;
        };
        let both_dirs = matches!(
            (&*other, &e),
            (DataEntry::Dir { .. }, DataEntry::Dir { .. })
        );
        if !both_dirs {
            if !identical(other, &e) {
                let usr = String::from_utf8_lossy(&path).into_owned();
                let top = usr.strip_prefix("usr/").unwrap_or(&usr).to_string();
                return Err(ErrorKind::UsrMergeClash {
                    path: format!("/{top}"),
                    usr_path: format!("/{usr}"),
                });
            }
            m.duplicates += 1;
        }
        // usr/'s entry wins (mode and time).
        if other_moved {
            *other = e;
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, mode: u32, data: &str) -> DataEntry {
        DataEntry::File {
            path: path.as_bytes().to_vec(),
            mode,
            mtime: 1,
            data: data.as_bytes().to_vec(),
        }
    }

    fn dir(path: &str, mode: u32, mtime: u64) -> DataEntry {
        DataEntry::Dir {
            path: path.as_bytes().to_vec(),
            mode,
            mtime,
        }
    }

    fn link(path: &str, target: &str) -> DataEntry {
        DataEntry::Symlink {
            path: path.as_bytes().to_vec(),
            mode: 0o777,
            mtime: 1,
            target: target.as_bytes().to_vec(),
        }
    }

    #[test]
    fn moves_and_merges_directories_usr_winning() {
        let m = merge(vec![
            dir("bin", 0o700, 5),
            file("bin/x", 0o755, "x"),
            dir("usr", 0o755, 1),
            dir("usr/bin", 0o755, 2),
            file("usr/bin/y", 0o755, "y"),
            file("libfoo/z", 0o644, "z"),
            file("lib64/ld", 0o644, "ld"),
        ])
        .unwrap();
        assert_eq!(m.moved, 3);
        assert_eq!(
            m.data,
            vec![
                dir("usr/bin", 0o755, 2),
                file("usr/bin/x", 0o755, "x"),
                dir("usr", 0o755, 1),
                file("usr/bin/y", 0o755, "y"),
                file("libfoo/z", 0o644, "z"),
                file("usr/lib64/ld", 0o644, "ld"),
            ]
        );
    }

    #[test]
    fn identical_kept_once_different_refused() {
        let m = merge(vec![
            file("usr/sbin/a", 0o755, "a"),
            file("sbin/a", 0o755, "a"),
        ])
        .unwrap();
        assert_eq!((m.data.len(), m.duplicates), (1, 1));
        for other in [
            file("sbin/a", 0o700, "a"),
            file("sbin/a", 0o755, "b"),
            link("sbin/a", "b"),
            dir("sbin/a", 0o755, 1),
        ] {
            let err = merge(vec![file("usr/sbin/a", 0o755, "a"), other]).unwrap_err();
            assert!(
                matches!(&err, ErrorKind::UsrMergeClash { path, usr_path }
                    if path == "/sbin/a" && usr_path == "/usr/sbin/a"),
                "{err}"
            );
        }
    }

    #[test]
    fn relative_targets_land_on_the_same_file() {
        // Stays inside the moved directory, or climbs into another moved one.
        assert_eq!(fix_target(b"bin/rbash", b"bash"), b"bash");
        assert_eq!(fix_target(b"lib/a/b", b"../c"), b"../c");
        assert_eq!(fix_target(b"bin/foo", b"../lib/x"), b"../lib/x");
        assert_eq!(
            fix_target(b"bin/pidof", b"/sbin/killall5"),
            b"/sbin/killall5"
        );
        // Climbs to the root and into something that did not move, or
        // above the root.
        assert_eq!(fix_target(b"bin/foo", b"../usr/bin/y"), b"../../usr/bin/y");
        assert_eq!(fix_target(b"lib/a/x", b"../../etc/y"), b"../../../etc/y");
        assert_eq!(fix_target(b"bin/x", b"../../etc/y"), b"../../etc/y");
        let m = merge(vec![link("bin/foo", "../usr/bin/y")]).unwrap();
        assert_eq!(m.fixed_targets, 1);
    }

    #[test]
    fn links_mirror_debootstrap() {
        let none = BTreeSet::new();
        assert_eq!(links(Some("amd64"), &none), ["bin", "sbin", "lib", "lib64"]);
        assert_eq!(links(Some("arm64"), &none), ["bin", "sbin", "lib"]);
        let shipped: BTreeSet<String> = ["lib32".to_string()].into();
        assert_eq!(links(None, &shipped), ["bin", "sbin", "lib", "lib32"]);
        assert_eq!(
            shipped_dirs(&[file("lib32/x", 0o644, ""), file("usr/lib64/y", 0o644, "")]),
            shipped
        );
    }
}
