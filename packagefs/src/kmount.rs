//! The mount plumbing, in one place: mounting the FUSE file system with
//! `mount(2)` ourselves as root, unmounting, and reading the mount table
//! (`/proc/self/mountinfo`).
//!
//! - [`mount_fuse`] and [`unmount`]: as root we mount with `mount(2)`, so
//!   that no one but us ever unmounts the mount point by path (below).
//! - [`unmount_fuse`]: `packagefs unmount`'s way, `fusermount3 -u` first,
//!   then `umount(2)`; [`detach`] for a bind mount undone; [`Mounted`], the
//!   session as the daemon serves and unmounts it.
//! - [`mount_table`], [`mounted_at`], [`mounts_below`], [`packagefs_at`]:
//!   what is mounted where, read from `/proc/self/mountinfo` without ever
//!   touching a mount point (a hung FUSE daemon would block a `stat` of it).
//! - [`set_read_ahead`]: the kernel read-ahead of a mount.
//!
//! Why we mount ourselves: `fuser`'s own mount ([`fuser::Session::new`])
//! unmounts its mount point *by path* when the session ends, after a check
//! that the kernel has closed the connection. When the kernel ends the
//! session (`umount`, `umount -l`), fuser's loop stops right after answering
//! `DESTROY`, before the kernel closes the connection, so the check passes
//! and the path is unmounted again; if a new file system was mounted there
//! in between (a remount right after `umount -l`), that one goes. A session
//! made with [`fuser::Session::from_fd`] over a descriptor we mounted
//! ourselves has no such unmount: it ends when the kernel says so, and an
//! unmount we want (a signal, a failed set-up) is done by [`unmount`] while
//! our file system is surely still the one at the path.
//!
//! Without root privileges `mount(2)` is refused and [`crate::fuse`] falls
//! back to fuser's mount (through `fusermount3`), race included.

use std::ffi::{CString, OsStr};
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rustix::mount::{MountFlags, UnmountFlags};

use crate::options::MountFlag;

/// The FUSE subtype packagefs mounts with: the mount table shows the file
/// system as `fuse.packagefs`.
pub const SUBTYPE: &str = "packagefs";

/// Where the kernel lists the mounts this process sees.
pub const MOUNTINFO: &str = "/proc/self/mountinfo";

/// Whether this process may mount with `mount(2)` itself.
pub fn can_mount() -> bool {
    rustix::process::geteuid().is_root()
}

/// Mount a read-only FUSE file system named `fsname` of type
/// `fuse.<subtype>` at `mountpoint` and return the `/dev/fuse` descriptor
/// that serves it, with `default_permissions` (the kernel checks modes).
/// Like libfuse, the mount is `nosuid` and `nodev` unless `flags` say
/// `suid`/`dev`. `allow_other` lets other users in
/// (the kernel knows no `allow_root`: that one is `allow_other` here plus
/// the session's access check, as in libfuse).
pub fn mount_fuse(
    mountpoint: &Path,
    fsname: &str,
    subtype: &str,
    flags: &[MountFlag],
    allow_other: bool,
) -> io::Result<OwnedFd> {
    let device = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")?;
    let meta = std::fs::metadata(mountpoint)?;
    let mut kernel = MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV;
    let mut data = format!(
        "fd={},rootmode={:o},user_id={},group_id={},default_permissions",
        device.as_raw_fd(),
        meta.mode() & libc::S_IFMT,
        rustix::process::getuid().as_raw(),
        rustix::process::getgid().as_raw(),
    );
    for f in flags {
        match f {
            MountFlag::Suid => kernel.remove(MountFlags::NOSUID),
            MountFlag::NoSuid => kernel.insert(MountFlags::NOSUID),
            MountFlag::Dev => kernel.remove(MountFlags::NODEV),
            MountFlag::NoDev => kernel.insert(MountFlags::NODEV),
            MountFlag::Exec => kernel.remove(MountFlags::NOEXEC),
            MountFlag::NoExec => kernel.insert(MountFlags::NOEXEC),
            MountFlag::NoAtime => kernel.insert(MountFlags::NOATIME),
        }
    }
    if allow_other {
        data.push_str(",allow_other");
    }
    let data = CString::new(data).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    rustix::mount::mount(
        fsname,
        mountpoint,
        format!("fuse.{subtype}").as_str(),
        kernel,
        data.as_c_str(),
    )?;
    Ok(OwnedFd::from(device))
}

/// Unmount `mountpoint` with `umount(2)`.
pub fn unmount(mountpoint: &Path) -> io::Result<()> {
    rustix::mount::unmount(mountpoint, UnmountFlags::empty()).map_err(io::Error::from)
}

/// Detach the mount at `mountpoint` now (`umount2(MNT_DETACH)`): it goes
/// once nothing uses it any more.
pub fn detach(mountpoint: &Path) -> io::Result<()> {
    rustix::mount::unmount(mountpoint, UnmountFlags::DETACH).map_err(io::Error::from)
}

/// Something that unmounts a mounted file system, from any thread.
pub type Unmounter = Box<dyn FnMut() -> io::Result<()> + Send>;

/// A mounted FUSE session as the daemon ([`crate::daemon::serve`]) runs
/// it, so that the daemon needs no fuser types.
pub trait Mounted {
    /// Something that unmounts this file system at `mountpoint`: with
    /// `umount(2)` when we mounted it ourselves (as root), else through
    /// fuser's mount (`fusermount3 -u`).
    fn unmounter(&mut self, mountpoint: &Path) -> Unmounter;
    /// Serve requests until the file system is unmounted.
    fn serve(self) -> io::Result<()>;
}

impl<FS: fuser::Filesystem> Mounted for fuser::Session<FS> {
    fn unmounter(&mut self, mountpoint: &Path) -> Unmounter {
        let mut fuser_mount = self.unmount_callable();
        let at = mountpoint.to_path_buf();
        Box::new(move || {
            if can_mount() {
                unmount(&at)
            } else {
                fuser_mount.unmount()
            }
        })
    }

    fn serve(self) -> io::Result<()> {
        self.run()
    }
}

/// Why [`unmount_fuse`] left a mount in place: every attempt, in order.
#[derive(Debug, thiserror::Error)]
#[error("{}", attempts.join("; "))]
pub struct UnmountError {
    /// One line per attempt: the tool (or `umount`) and its answer.
    pub attempts: Vec<String>,
}

/// Unmount the FUSE file system at `mountpoint` with `fusermount3 -u`
/// (`fusermount -u` for old installations), falling back to `umount(2)`
/// when that is missing or fails and we may unmount ourselves.
pub fn unmount_fuse(mountpoint: &Path) -> Result<(), UnmountError> {
    let mut attempts = Vec::new();
    for tool in ["fusermount3", "fusermount"] {
        match Command::new(tool)
            .arg("-u")
            .arg("--")
            .arg(mountpoint)
            .stdin(Stdio::null())
            .output()
        {
            Ok(out) if out.status.success() => return Ok(()),
            Ok(out) => {
                attempts.push(format!(
                    "{tool}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => attempts.push(format!("{tool}: {e}")),
        }
    }
    match unmount(mountpoint) {
        Ok(()) => Ok(()),
        Err(e) => {
            attempts.push(format!("umount: {e}"));
            Err(UnmountError { attempts })
        }
    }
}

/// One mount of the mount table (a line of `/proc/self/mountinfo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// The device, `major:minor` (FUSE mounts get an anonymous one).
    pub device: String,
    /// Where it is mounted, unescaped.
    pub mount_point: PathBuf,
    /// The file-system type (`ext4`, `fuse.packagefs`).
    pub fs_type: String,
}

/// The mounts in a `mountinfo` text, in its order (the order they were
/// mounted). Lines too short to be mounts are left out.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let device = fields.get(2)?;
            let mount_point = fields.get(4)?;
            // Optional fields follow the sixth, up to a lone "-"; then the
            // file-system type.
            let dash = fields.iter().skip(6).position(|f| *f == "-")? + 6;
            let fs_type = fields.get(dash + 1)?;
            Some(MountEntry {
                device: (*device).to_owned(),
                mount_point: PathBuf::from(OsStr::from_bytes(&unescape(mount_point))),
                fs_type: String::from_utf8_lossy(&unescape(fs_type)).into_owned(),
            })
        })
        .collect()
}

/// Undo the octal escapes (`\040` for a space, `\011`, `\012`, `\134`)
/// of `mountinfo` fields. A backslash not followed by three octal digits
/// of a byte stays as it is.
fn unescape(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// The mounts this process sees, from [`MOUNTINFO`].
pub fn mount_table() -> io::Result<Vec<MountEntry>> {
    std::fs::read_to_string(MOUNTINFO).map(|text| parse_mountinfo(&text))
}

/// The absolute form of a mount point as the mount table shows it, found
/// without touching the mount point itself: the parent directory is
/// canonicalized and the last component appended.
pub fn table_path(mountpoint: &Path) -> io::Result<PathBuf> {
    let absolute = std::path::absolute(mountpoint)?;
    match (absolute.parent(), absolute.file_name()) {
        (Some(parent), Some(name)) => Ok(parent.canonicalize()?.join(name)),
        // "/" or a path ending in "..": canonicalize the whole.
        _ => absolute.canonicalize(),
    }
}

/// The mounts stacked on `mountpoint` (see [`table_path`]), the last
/// mounted last; empty when nothing is mounted there.
pub fn mounted_at(mountpoint: &Path) -> io::Result<Vec<MountEntry>> {
    let wanted = table_path(mountpoint)?;
    let mut table = mount_table()?;
    table.retain(|m| m.mount_point == wanted);
    Ok(table)
}

/// Whether a packagefs (`fuse.packagefs`) is mounted on `mountpoint`.
pub fn packagefs_at(mountpoint: &Path) -> io::Result<bool> {
    let fs_type = format!("fuse.{SUBTYPE}");
    Ok(mounted_at(mountpoint)?.iter().any(|m| m.fs_type == fs_type))
}

/// The mount points strictly below `mountpoint` (as the mount table spells
/// it: absolute and canonical), in the order to unmount them: deepest
/// first, and of mounts stacked on one point the last mounted first.
pub fn mounts_below(mountpoint: &Path) -> io::Result<Vec<PathBuf>> {
    Ok(below(&mount_table()?, mountpoint))
}

/// [`mounts_below`] over a given table.
fn below(table: &[MountEntry], mountpoint: &Path) -> Vec<PathBuf> {
    let mut prefix = mountpoint.as_os_str().as_bytes().to_vec();
    if prefix.last() != Some(&b'/') {
        prefix.push(b'/');
    }
    let mut found: Vec<(usize, usize, &Path)> = table
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let point = m.mount_point.as_os_str().as_bytes();
            let depth = point.iter().filter(|&&b| b == b'/').count();
            point
                .starts_with(&prefix)
                .then_some((depth, i, m.mount_point.as_path()))
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    found.into_iter().map(|(_, _, p)| p.to_path_buf()).collect()
}

/// Let the kernel read ahead `kib` KiB at once on the mount at `mountpoint`
/// (it offers FUSE 128 KiB by default; one request carries up to 1 MiB).
/// Writes the mount's `/sys/class/bdi/<major>:<minor>/read_ahead_kb`, which
/// lives and dies with the mount; needs root. The device is found in the
/// mount table, never by a `stat` the daemon would have to answer.
pub fn set_read_ahead(mountpoint: &Path, kib: u32) -> io::Result<()> {
    let device = mount_table()?
        .into_iter()
        .rfind(|m| m.mount_point == mountpoint)
        .map(|m| m.device)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "mount not in mountinfo"))?;
    std::fs::write(
        format!("/sys/class/bdi/{device}/read_ahead_kb"),
        format!("{kib}\n"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "36 35 98:0 /mnt1 /mnt\\040two rw,noatime master:1 - ext3 /dev/root rw\n\
                         37 35 0:5 / / rw - ext4 /dev/vda rw\n\
                         40 36 0:51 / /srv/pfs ro,nosuid shared:2 master:3 - fuse.packagefs /r ro\n\
                         41 40 0:52 / /srv/pfs/var rw - ext4 /dev/vda rw\n\
                         42 40 0:53 / /srv/pfs/var/tmp rw - tmpfs tmpfs rw\n\
                         43 40 0:54 / /srv/pfs/run rw - tmpfs tmpfs rw\n\
                         44 40 0:55 / /srv/pfsx rw - tmpfs tmpfs rw\n\
                         short line\n";

    #[test]
    fn unescapes_octal() {
        assert_eq!(unescape(r"/mnt/a\040b"), b"/mnt/a b");
        assert_eq!(unescape(r"/x\011y\012z\134w"), b"/x\ty\nz\\w");
        // Not an escape: left alone.
        assert_eq!(unescape(r"/a\09"), br"/a\09");
        assert_eq!(unescape(r"/a\"), br"/a\");
        assert_eq!(unescape(r"/a\777"), br"/a\777");
    }

    #[test]
    fn parses_the_fields_past_optional_ones() {
        let t = parse_mountinfo(TABLE);
        assert_eq!(t.len(), 7, "{t:?}");
        assert_eq!(t[0].mount_point, Path::new("/mnt two"));
        assert_eq!(
            (t[0].device.as_str(), t[0].fs_type.as_str()),
            ("98:0", "ext3")
        );
        assert_eq!(t[1].fs_type, "ext4");
        assert_eq!(t[2].fs_type, "fuse.packagefs");
        assert_eq!(t[2].device, "0:51");
    }

    #[test]
    fn below_is_deepest_first_and_strictly_below() {
        let t = parse_mountinfo(TABLE);
        let found = below(&t, Path::new("/srv/pfs"));
        let want: Vec<PathBuf> = ["/srv/pfs/var/tmp", "/srv/pfs/run", "/srv/pfs/var"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(found, want);
        assert_eq!(below(&t, Path::new("/srv/pfs/")), want);
    }
}
