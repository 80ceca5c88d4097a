//! Where a path lies under a FUSE mount: the mount point found by the
//! device numbers of the path's ancestors, so that `pkgctl owner` can take
//! a path under a mounted packagefs (without linking the packagefs crate).

use std::path::{Component, Path, PathBuf};

/// `statfs`'s `f_type` of a FUSE file system (`FUSE_SUPER_MAGIC`).
const FUSE_SUPER_MAGIC: u64 = 0x6573_5546;

/// `path` taken from `/` (a relative path as if it were absolute) with `.`
/// and `..` resolved lexically: symbolic links are not followed (inside a
/// mount they are the tree's own).
pub fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// `path` made absolute against the working directory, then [`lexical`].
pub fn lexical_absolute(path: &Path) -> std::io::Result<PathBuf> {
    Ok(lexical(&std::env::current_dir()?.join(path)))
}

/// The innermost FUSE mount point among the ancestors of `path` (itself
/// included), made absolute by [`lexical_absolute`]: the longest ancestor
/// whose device differs from its parent's and whose file system is FUSE.
/// Returns it with the rest of `path` below it.
pub fn split(path: &Path) -> Option<(PathBuf, PathBuf)> {
    let abs = lexical_absolute(path).ok()?;
    let point = abs.ancestors().find(|a| is_fuse_mount_point(a))?;
    let rest = abs.strip_prefix(point).ok()?.to_path_buf();
    Some((point.to_path_buf(), rest))
}

/// Whether `dir` is the root of a FUSE mount.
fn is_fuse_mount_point(dir: &Path) -> bool {
    let Some(parent) = dir.parent() else {
        return false;
    };
    let (Ok(here), Ok(above)) = (rustix::fs::stat(dir), rustix::fs::stat(parent)) else {
        return false;
    };
    here.st_dev != above.st_dev
        && rustix::fs::statfs(dir)
            .is_ok_and(|s| u64::try_from(s.f_type).is_ok_and(|t| t == FUSE_SUPER_MAGIC))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_absolute_resolves_dots_without_the_file_system() {
        assert_eq!(
            lexical_absolute(Path::new("/a/./b/../c/")).unwrap(),
            PathBuf::from("/a/c")
        );
        assert_eq!(
            lexical_absolute(Path::new("/../x")).unwrap(),
            PathBuf::from("/x")
        );
        assert_eq!(
            lexical(Path::new("etc/../usr/bin")),
            PathBuf::from("/usr/bin")
        );
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(lexical_absolute(Path::new("y")).unwrap(), cwd.join("y"));
    }

    #[test]
    fn a_path_on_an_ordinary_file_system_is_under_no_fuse_mount() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(split(&dir.path().join("missing/file")), None);
        assert_eq!(split(Path::new("/")), None);
    }
}
