//! Which open files the kernel reads itself from a cache file (FUSE
//! passthrough, see [`crate::exec_cache`]) and which through the daemon.
//!
//! The kernel holds one backing file per inode: every open of an inode
//! while one of its opens is passed through must be passed through to the
//! same backing file, and an open cannot be passed through while the inode
//! has opens served the ordinary way (either mistake fails the `open(2)`
//! with `EIO`). So this registry keeps, per inode, the ordinary opens and
//! the backing file (its kernel id, of type `B`) with its opens, and per
//! file handle which kind it is; the backing id is dropped (closed in the
//! kernel) with the last passed-through open of its inode.
//!
//! An inode number always names the same entry of the same package (see
//! [`crate::inodes`]), so all opens of an inode want the same cache file.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::exec_cache::Key;

/// The passed-through opens of one inode.
#[derive(Debug)]
struct Backed<B> {
    key: Key,
    backing: Arc<B>,
    opens: u32,
}

/// The opens of one inode.
#[derive(Debug)]
struct InodeOpens<B> {
    /// Opens served by the daemon.
    ordinary: u32,
    /// The backing file and its opens, while any is open.
    backed: Option<Backed<B>>,
}

#[derive(Debug)]
struct Inner<B> {
    inodes: HashMap<u64, InodeOpens<B>>,
    /// File handle -> (inode, passed through).
    handles: HashMap<u64, (u64, bool)>,
}

/// How an open of an inode must be answered, given its other opens.
#[derive(Debug)]
pub enum Ordinary<B> {
    /// The ordinary way.
    Serve,
    /// Passed through to this backing file, which the inode already uses.
    PassThrough(Arc<B>),
    /// Not at all: the inode is passed through to another file.
    Conflict,
}

/// The registry of open files (see the module comment).
#[derive(Debug)]
pub struct Passthrough<B> {
    inner: Mutex<Inner<B>>,
}

impl<B> Default for Passthrough<B> {
    fn default() -> Passthrough<B> {
        Passthrough {
            inner: Mutex::new(Inner {
                inodes: HashMap::new(),
                handles: HashMap::new(),
            }),
        }
    }
}

impl<B> Passthrough<B> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<B>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `ino` is passed through to another file than `key`'s.
    pub fn conflicts(&self, ino: u64, key: &Key) -> bool {
        self.lock()
            .inodes
            .get(&ino)
            .and_then(|i| i.backed.as_ref())
            .is_some_and(|b| b.key != *key)
    }

    /// Pass open `fh` of `ino` through to the cache file of `key`: to the
    /// inode's backing file if it has one for `key`, else to a new one made
    /// by `make` (the kernel's id of the cache file). `None`, with nothing
    /// recorded, when the inode has ordinary opens, another backing file,
    /// or `make` fails: serve it with [`Passthrough::open_ordinary`].
    pub fn open_passthrough(
        &self,
        fh: u64,
        ino: u64,
        key: Key,
        make: impl FnOnce() -> Option<B>,
    ) -> Option<Arc<B>> {
        let mut inner = self.lock();
        let opens = inner.inodes.entry(ino).or_insert(InodeOpens {
            ordinary: 0,
            backed: None,
        });
        let backing = match &mut opens.backed {
            Some(b) if b.key == key => {
                b.opens += 1;
                b.backing.clone()
            }
            Some(_) => return None,
            None if opens.ordinary > 0 => return None,
            None => {
                let Some(made) = make() else {
                    // No open of it is recorded.
                    inner.inodes.remove(&ino);
                    return None;
                };
                let backing = Arc::new(made);
                opens.backed = Some(Backed {
                    key,
                    backing: backing.clone(),
                    opens: 1,
                });
                backing
            }
        };
        inner.handles.insert(fh, (ino, true));
        Some(backing)
    }

    /// Record open `fh` of `ino` served the ordinary way, unless the inode
    /// is passed through: then to the same file if it is `key`'s (or with
    /// no key), else not at all.
    pub fn open_ordinary(&self, fh: u64, ino: u64, key: Option<&Key>) -> Ordinary<B> {
        let mut inner = self.lock();
        let opens = inner.inodes.entry(ino).or_insert(InodeOpens {
            ordinary: 0,
            backed: None,
        });
        let answer = match &mut opens.backed {
            Some(b) if key.is_none_or(|k| *k == b.key) => {
                b.opens += 1;
                Ordinary::PassThrough(b.backing.clone())
            }
            Some(_) => return Ordinary::Conflict,
            None => {
                opens.ordinary += 1;
                Ordinary::Serve
            }
        };
        let through = matches!(answer, Ordinary::PassThrough(_));
        inner.handles.insert(fh, (ino, through));
        answer
    }

    /// File handle `fh` was released; its inode's backing id goes with its
    /// last passed-through open.
    pub fn release(&self, fh: u64) {
        let mut inner = self.lock();
        let Some((ino, through)) = inner.handles.remove(&fh) else {
            return;
        };
        let Some(opens) = inner.inodes.get_mut(&ino) else {
            return;
        };
        if through {
            if let Some(b) = &mut opens.backed {
                b.opens = b.opens.saturating_sub(1);
                if b.opens == 0 {
                    opens.backed = None;
                }
            }
        } else {
            opens.ordinary = opens.ordinary.saturating_sub(1);
        }
        if opens.ordinary == 0 && opens.backed.is_none() {
            inner.inodes.remove(&ino);
        }
    }

    /// Inodes with open files, those of them with a backing file, and open
    /// handles.
    pub fn counts(&self) -> (usize, usize, usize) {
        let inner = self.lock();
        let backed = inner.inodes.values().filter(|i| i.backed.is_some()).count();
        (inner.inodes.len(), backed, inner.handles.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use state::digest::Digest;

    fn key(n: u8) -> Key {
        Key {
            package: Digest([n; 32]),
            entry: 1,
        }
    }

    /// A backing id that counts its drops.
    #[derive(Debug)]
    struct Id(u32, Arc<std::sync::atomic::AtomicU32>);

    impl Drop for Id {
        fn drop(&mut self) {
            self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[test]
    fn one_backing_per_inode_dropped_with_its_last_open() {
        let drops = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let p: Passthrough<Id> = Passthrough::default();
        let a = p
            .open_passthrough(1, 10, key(1), || Some(Id(7, drops.clone())))
            .unwrap();
        assert_eq!(a.0, 7);
        let b = p
            .open_passthrough(2, 10, key(1), || panic!("made twice"))
            .unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        // An ordinary open of a passed-through inode is passed through too.
        assert!(matches!(
            p.open_ordinary(3, 10, Some(&key(1))),
            Ordinary::PassThrough(c) if c.0 == 7
        ));
        // Another file for the same inode: refused.
        assert!(p.conflicts(10, &key(2)));
        assert!(!p.conflicts(10, &key(1)));
        assert!(p.open_passthrough(4, 10, key(2), || panic!()).is_none());
        assert!(matches!(
            p.open_ordinary(4, 10, Some(&key(2))),
            Ordinary::Conflict
        ));
        drop((a, b));
        assert_eq!(p.counts(), (1, 1, 3));
        p.release(1);
        p.release(3);
        assert_eq!(drops.load(std::sync::atomic::Ordering::Relaxed), 0);
        p.release(2);
        assert_eq!(drops.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(p.counts(), (0, 0, 0));
        p.release(2);
    }

    #[test]
    fn no_passthrough_while_ordinary_opens_are_open() {
        let p: Passthrough<u32> = Passthrough::default();
        assert!(matches!(p.open_ordinary(1, 10, None), Ordinary::Serve));
        assert!(p.open_passthrough(2, 10, key(1), || Some(5)).is_none());
        p.release(1);
        assert_eq!(*p.open_passthrough(2, 10, key(1), || Some(5)).unwrap(), 5);
        // A failed make records nothing.
        assert!(p.open_passthrough(3, 11, key(1), || None).is_none());
        assert_eq!(p.counts(), (1, 1, 1));
        assert!(matches!(p.open_ordinary(3, 11, None), Ordinary::Serve));
        p.release(3);
        p.release(2);
        assert_eq!(p.counts(), (0, 0, 0));
    }
}
