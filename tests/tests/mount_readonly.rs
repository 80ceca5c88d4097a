//! Read-only the Linux way: every write fails with EROFS, statfs says
//! read-only; extended attributes follow the getxattr/listxattr size-probe
//! rules; inode numbers are stable and link counts are those of a disk.

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::os::unix::fs::{DirEntryExt, MetadataExt, PermissionsExt};
use std::path::Path;

use packagefs_tests::{golden_package, package_label, PackagefsMount};

fn errno_of<T>(r: std::io::Result<T>, what: &str) -> i32 {
    match r {
        Ok(_) => panic!("{what} succeeded on a read-only mount"),
        Err(e) => e.raw_os_error().unwrap_or_else(|| panic!("{what}: {e}")),
    }
}

#[test]
fn every_write_fails_with_erofs() {
    let pkg = golden_package("nested-zstd");
    let mount = PackagefsMount::new(&[&pkg], &[]);
    let m = mount.path();
    let file = m.join("data/sizes/size_7.bin");
    let dir = m.join("data/sub");
    let link = m.join("links/rel_to_file");

    let mut cases: Vec<(&str, i32)> = vec![
        (
            "create",
            errno_of(File::create(m.join("new.txt")), "create"),
        ),
        (
            "open for writing",
            errno_of(File::options().write(true).open(&file), "open rw"),
        ),
        (
            "open for appending",
            errno_of(File::options().append(true).open(&file), "open append"),
        ),
        (
            "truncate",
            errno_of(
                File::options().write(true).truncate(true).open(&file),
                "open trunc",
            ),
        ),
        (
            "mkdir",
            errno_of(std::fs::create_dir(m.join("newdir")), "mkdir"),
        ),
        (
            "rmdir",
            errno_of(std::fs::remove_dir(m.join("empty_top_dir")), "rmdir"),
        ),
        ("unlink", errno_of(std::fs::remove_file(&file), "unlink")),
        (
            "unlink symlink",
            errno_of(std::fs::remove_file(&link), "unlink symlink"),
        ),
        (
            "rename",
            errno_of(std::fs::rename(&file, m.join("data/moved")), "rename"),
        ),
        (
            "symlink",
            errno_of(
                std::os::unix::fs::symlink("x", m.join("newlink")),
                "symlink",
            ),
        ),
        (
            "link",
            errno_of(std::fs::hard_link(&file, m.join("data/hard")), "link"),
        ),
        (
            "chmod",
            errno_of(
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)),
                "chmod",
            ),
        ),
        (
            "chown",
            errno_of(std::os::unix::fs::chown(&file, Some(1), Some(1)), "chown"),
        ),
        (
            "utimes",
            errno_of(
                File::open(&file).and_then(|f| f.set_modified(std::time::SystemTime::now())),
                "utimes",
            ),
        ),
        (
            "setxattr",
            errno_of(xattr::set(&file, "user.new", b"v"), "setxattr"),
        ),
        (
            "removexattr",
            errno_of(
                xattr::remove(m.join("attrs/with_attrs.txt"), "user.BEOS:TYPE"),
                "removexattr",
            ),
        ),
        (
            "mkdir in subdir",
            errno_of(std::fs::create_dir(dir.join("x")), "mkdir"),
        ),
    ];
    let fifo = rustix::fs::mknodat(
        rustix::fs::CWD,
        m.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    );
    cases.push(("mknod", errno_of(fifo.map_err(io::Error::from), "mkfifo")));
    let access = rustix::fs::access(&file, rustix::fs::Access::WRITE_OK);
    cases.push((
        "access(W_OK)",
        errno_of(access.map_err(io::Error::from), "access"),
    ));

    for (what, errno) in cases {
        assert_eq!(errno, libc::EROFS, "{what}");
    }
    // Reading still works.
    assert_eq!(std::fs::read(&file).unwrap().len(), 7);
    mount.unmount();
}

#[test]
fn statfs_says_read_only() {
    let pkg = golden_package("nested-zstd");
    let mount = PackagefsMount::new(&[&pkg], &[]);
    let st = rustix::fs::statvfs(mount.path()).unwrap();
    assert!(
        st.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY),
        "ST_RDONLY"
    );
    assert_eq!(st.f_bfree, 0);
    assert_eq!(st.f_files, 70, "one inode per node: root + 69 entries");
    assert!(st.f_blocks > 0);
    mount.unmount();
}

/// lgetxattr(2) into a buffer of `size` bytes (0: ask for the size), as
/// the C call returns it: (return value, errno, the bytes).
fn getxattr(p: &Path, name: &str, size: usize) -> (isize, i32, Vec<u8>) {
    let mut buf = vec![0u8; size];
    let r = match size {
        0 => rustix::fs::lgetxattr_query(p, name),
        _ => rustix::fs::lgetxattr(p, name, &mut buf[..]),
    };
    as_c_call(r, buf)
}

/// llistxattr(2), like [`getxattr`].
fn listxattr(p: &Path, size: usize) -> (isize, i32, Vec<u8>) {
    let mut buf = vec![0u8; size];
    let r = match size {
        0 => rustix::fs::llistxattr_query(p),
        _ => rustix::fs::llistxattr(p, &mut buf[..]),
    };
    as_c_call(r, buf)
}

/// A call's result as C shows it: the length (the buffer cut to it) and
/// errno 0, or -1 and the errno.
fn as_c_call(r: rustix::io::Result<usize>, mut buf: Vec<u8>) -> (isize, i32, Vec<u8>) {
    match r {
        Ok(n) => {
            buf.truncate(n);
            (n as isize, 0, buf)
        }
        Err(e) => (-1, e.raw_os_error(), Vec::new()),
    }
}

#[test]
fn xattrs_follow_the_size_probe_rules() {
    let pkg = golden_package("nested-zstd");
    let mount = PackagefsMount::new(&[&pkg], &[]);
    let m = mount.path();
    let f = m.join("attrs/with_attrs.txt");

    // Value: probe, exact buffer, too small, missing, not user.*. Haiku
    // stores string attributes with their terminating NUL.
    let (len, _, _) = getxattr(&f, "user.ref:string", 0);
    assert_eq!(len, "hello attribute\0".len() as isize);
    let (r, _, v) = getxattr(&f, "user.ref:string", len as usize);
    assert_eq!((r, v.as_slice()), (len, &b"hello attribute\0"[..]));
    let (r, errno, _) = getxattr(&f, "user.ref:string", len as usize - 1);
    assert_eq!((r, errno), (-1, libc::ERANGE));
    let (r, errno, _) = getxattr(&f, "user.no-such-attribute", 100);
    assert_eq!((r, errno), (-1, libc::ENODATA));
    let (r, errno, _) = getxattr(&f, "trusted.ref:string", 100);
    assert_eq!((r, errno), (-1, libc::ENODATA));
    // Binary values come back byte for byte (int32 12345, little-endian).
    assert_eq!(
        getxattr(&f, "user.ref:int32", 64).2,
        12345i32.to_le_bytes().to_vec()
    );

    // The package attribute.
    let label = package_label(&pkg);
    assert_eq!(
        getxattr(&f, "user.packagefs.package", 256).2,
        label.as_bytes()
    );

    // List: probe, exact, too small.
    let (len, _, _) = listxattr(&f, 0);
    let (r, _, names) = listxattr(&f, len as usize);
    assert_eq!(r, len);
    let names: BTreeSet<&[u8]> = names.split(|&b| b == 0).filter(|n| !n.is_empty()).collect();
    let want: BTreeSet<&[u8]> = [
        &b"user.packagefs.package"[..],
        b"user.BEOS:TYPE",
        b"user.ref:bool",
        b"user.ref:int32",
        b"user.ref:int64",
        b"user.ref:ninebytes",
        b"user.ref:string",
        b"user.ref:tiny",
    ]
    .into_iter()
    .collect();
    assert_eq!(names, want);
    let (r, errno, _) = listxattr(&f, len as usize - 1);
    assert_eq!((r, errno), (-1, libc::ERANGE));

    // An attribute over Linux's 64 KiB limit is not listed, and reading it
    // says E2BIG.
    let big = m.join("attrs/big_attr.txt");
    let listed = xattr::list(&big).unwrap().collect::<Vec<_>>();
    assert!(!listed.iter().any(|n| n == "user.ref:big"), "{listed:?}");
    let (r, errno, _) = getxattr(&big, "user.ref:big", 0);
    assert_eq!((r, errno), (-1, libc::E2BIG));

    // Symlinks carry no user.* attributes on Linux.
    let link = m.join("bin/ref_tool_alias");
    assert_eq!(listxattr(&link, 0).0, 0);
    let (r, errno, _) = getxattr(&link, "user.packagefs.package", 256);
    assert_eq!((r, errno), (-1, libc::ENODATA));
    mount.unmount();
}

#[test]
fn inodes_are_stable_and_link_counts_are_those_of_a_disk() {
    let pkg = golden_package("nested-zstd");
    let walk_inodes = |m: &Path| {
        let mut out = Vec::new();
        let mut stack = vec![m.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                let md = std::fs::symlink_metadata(e.path()).unwrap();
                assert_eq!(e.ino(), md.ino(), "readdir and stat agree");
                if md.is_dir() {
                    let subdirs = std::fs::read_dir(e.path())
                        .unwrap()
                        .filter(|c| c.as_ref().unwrap().file_type().unwrap().is_dir())
                        .count() as u64;
                    assert_eq!(md.nlink(), 2 + subdirs, "{}", e.path().display());
                    stack.push(e.path());
                } else {
                    assert_eq!(md.nlink(), 1);
                }
                out.push((e.path().strip_prefix(m).unwrap().to_path_buf(), md.ino()));
            }
        }
        out.sort();
        out
    };
    let first = PackagefsMount::new(&[&pkg], &[]);
    assert_eq!(
        std::fs::metadata(first.path()).unwrap().ino(),
        1,
        "root is inode 1"
    );
    let a = walk_inodes(first.path());
    first.unmount();
    let second = PackagefsMount::new(&[&pkg], &[]);
    let b = walk_inodes(second.path());
    second.unmount();
    assert_eq!(a, b, "same inode numbers on every mount");
    let distinct: BTreeSet<u64> = a.iter().map(|(_, i)| *i).collect();
    assert_eq!(distinct.len(), a.len(), "inode numbers are unique");
}
