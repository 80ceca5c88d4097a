//! How many FUSE requests of each kind a mount has answered, so that a
//! benchmark can explain a walk's cost in round trips instead of guessing
//! it. The FUSE adapter counts every request it receives; the counts are
//! logged at unmount and read at any time from the root's hidden extended
//! attribute [`REQUESTS_XATTR`] (`getfattr -n user.packagefs.requests MNT`),
//! which no listing shows.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// The root's hidden attribute whose value is the counts so far.
pub const REQUESTS_XATTR: &[u8] = b"user.packagefs.requests";

/// A kind of FUSE request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// LOOKUP.
    Lookup,
    /// FORGET (and each entry of BATCH_FORGET).
    Forget,
    /// GETATTR.
    Getattr,
    /// READLINK.
    Readlink,
    /// OPEN.
    Open,
    /// READ.
    Read,
    /// RELEASE.
    Release,
    /// OPENDIR.
    Opendir,
    /// READDIR.
    Readdir,
    /// READDIRPLUS.
    Readdirplus,
    /// GETXATTR.
    Getxattr,
    /// LISTXATTR.
    Listxattr,
    /// ACCESS.
    Access,
    /// STATFS.
    Statfs,
    /// Anything else (flush, fsync, and the writes refused with EROFS).
    Other,
}

impl Op {
    /// Every kind, in the order the counts are shown.
    pub const ALL: [Op; 15] = [
        Op::Lookup,
        Op::Forget,
        Op::Getattr,
        Op::Readlink,
        Op::Open,
        Op::Read,
        Op::Release,
        Op::Opendir,
        Op::Readdir,
        Op::Readdirplus,
        Op::Getxattr,
        Op::Listxattr,
        Op::Access,
        Op::Statfs,
        Op::Other,
    ];

    /// Its name, as the counts show it.
    pub fn name(self) -> &'static str {
        match self {
            Op::Lookup => "lookup",
            Op::Forget => "forget",
            Op::Getattr => "getattr",
            Op::Readlink => "readlink",
            Op::Open => "open",
            Op::Read => "read",
            Op::Release => "release",
            Op::Opendir => "opendir",
            Op::Readdir => "readdir",
            Op::Readdirplus => "readdirplus",
            Op::Getxattr => "getxattr",
            Op::Listxattr => "listxattr",
            Op::Access => "access",
            Op::Statfs => "statfs",
            Op::Other => "other",
        }
    }
}

/// The counts of one mount.
#[derive(Debug, Default)]
pub struct RequestCounts {
    counts: [AtomicU64; Op::ALL.len()],
}

impl RequestCounts {
    /// Count one request of kind `op`.
    pub fn count(&self, op: Op) {
        if let Some(c) = self.counts.get(op as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The count of `op` so far.
    pub fn get(&self, op: Op) -> u64 {
        self.counts
            .get(op as usize)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Every request so far.
    pub fn total(&self) -> u64 {
        Op::ALL.iter().map(|&op| self.get(op)).sum()
    }
}

/// `total N: lookup N, getattr N, ...`, the kinds never seen left out.
impl fmt::Display for RequestCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "total {}", self.total())?;
        let mut sep = ": ";
        for op in Op::ALL {
            let n = self.get(op);
            if n > 0 {
                write!(f, "{sep}{} {n}", op.name())?;
                sep = ", ";
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_by_kind_and_in_total() {
        let c = RequestCounts::default();
        assert_eq!(c.to_string(), "total 0");
        for _ in 0..3 {
            c.count(Op::Lookup);
        }
        c.count(Op::Readdirplus);
        c.count(Op::Other);
        assert_eq!(c.get(Op::Lookup), 3);
        assert_eq!(c.total(), 5);
        assert_eq!(c.to_string(), "total 5: lookup 3, readdirplus 1, other 1");
    }

    #[test]
    fn every_kind_has_its_own_slot() {
        let c = RequestCounts::default();
        for (i, op) in Op::ALL.into_iter().enumerate() {
            assert_eq!(op as usize, i);
            c.count(op);
            assert_eq!(c.get(op), 1, "{}", op.name());
        }
        assert_eq!(c.total(), Op::ALL.len() as u64);
    }
}
