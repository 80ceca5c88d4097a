//! Mounting the FUSE file system with `mount(2)` ourselves, when running as
//! root, so that no one but us ever unmounts it by path.
//!
//! `fuser`'s own mount ([`fuser::Session::new`]) unmounts its mount point
//! *by path* when the session ends, after a check that the kernel has
//! closed the connection. When the kernel ends the session (`umount`,
//! `umount -l`), fuser's loop stops right after answering `DESTROY`, before
//! the kernel closes the connection, so the check passes and the path is
//! unmounted again; if a new file system was mounted there in between (a
//! remount right after `umount -l`), that one goes. A session made with
//! [`fuser::Session::from_fd`] over a descriptor we mounted ourselves has
//! no such unmount: it ends when the kernel says so, and an unmount we want
//! (a signal, a failed set-up) is done by [`unmount`] while our file system
//! is surely still the one at the path.
//!
//! Without root privileges `mount(2)` is refused and [`crate::fuse`] falls
//! back to fuser's mount (through `fusermount3`), race included.

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use fuser::MountOption;
use rustix::mount::{MountFlags, UnmountFlags};

/// Whether this process may mount with `mount(2)` itself.
pub fn can_mount() -> bool {
    rustix::process::geteuid().is_root()
}

/// Mount a read-only FUSE file system named `fsname` of type
/// `fuse.<subtype>` at `mountpoint` and return the `/dev/fuse` descriptor
/// that serves it. `options` are fuser's mount options (kernel flags,
/// `default_permissions`); like libfuse, the mount is `nosuid` and `nodev`
/// unless `suid`/`dev` say otherwise. `allow_other` lets other users in
/// (the kernel knows no `allow_root`: that one is `allow_other` here plus
/// the session's access check, as in libfuse).
pub fn mount_fuse(
    mountpoint: &Path,
    fsname: &str,
    subtype: &str,
    options: &[MountOption],
    allow_other: bool,
) -> io::Result<OwnedFd> {
    let device = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")?;
    let meta = std::fs::metadata(mountpoint)?;
    let mut flags = MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV;
    let mut data = format!(
        "fd={},rootmode={:o},user_id={},group_id={}",
        device.as_raw_fd(),
        meta.mode() & libc::S_IFMT,
        rustix::process::getuid().as_raw(),
        rustix::process::getgid().as_raw(),
    );
    for o in options {
        match o {
            MountOption::Suid => flags.remove(MountFlags::NOSUID),
            MountOption::NoSuid => flags.insert(MountFlags::NOSUID),
            MountOption::Dev => flags.remove(MountFlags::NODEV),
            MountOption::NoDev => flags.insert(MountFlags::NODEV),
            MountOption::NoExec => flags.insert(MountFlags::NOEXEC),
            MountOption::Exec => flags.remove(MountFlags::NOEXEC),
            MountOption::NoAtime => flags.insert(MountFlags::NOATIME),
            MountOption::DefaultPermissions => data.push_str(",default_permissions"),
            // Always read-only; names are given separately.
            MountOption::RO | MountOption::FSName(_) | MountOption::Subtype(_) => {}
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("mount option {other:?} is not supported"),
                ))
            }
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
        flags,
        data.as_c_str(),
    )?;
    Ok(OwnedFd::from(device))
}

/// Unmount `mountpoint` with `umount(2)`.
pub fn unmount(mountpoint: &Path) -> io::Result<()> {
    rustix::mount::unmount(mountpoint, UnmountFlags::empty()).map_err(io::Error::from)
}
