//! The intent journal `system/state/journal`: written (atomically, fsynced)
//! before a transaction moves any package file, removed after the commit.
//!
//! It lists every move in execution order so that the next transaction can
//! undo an interrupted one exactly (see [`crate::txn`]). Same framing as the
//! lists: a versioned first line and a final checksum line.
//!
//! ```text
//! packagefs-journal 1
//! target 8                                  the generation being committed
//! retire user <blake3> moved a.hpkg         packages/ -> store/<blake3>.hpkg by rename
//! retire user <blake3> unlinked b.hpkg      removed; store/<blake3>.hpkg already held it
//! store <blake3>                            a new store file (retained content)
//! place user <blake3> copy c.hpkg           a staged copy renamed into packages/
//! place user <blake3> store d.hpkg          store/<blake3>.hpkg renamed into packages/
//! checksum blake3 <hex>
//! ```

use std::fmt::Write as _;

use crate::active_list::{frame, unframe, ListError};
use crate::digest::Digest;
use crate::layout::{file_name_problem, Layer};

/// First line of a journal.
pub const JOURNAL_MAGIC: &str = "packagefs-journal 1";

/// One recorded move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JournalOp {
    /// A package file left `packages/`.
    Retire {
        /// Its layer.
        layer: Layer,
        /// Its file name.
        name: String,
        /// Its content hash.
        hash: Digest,
        /// `true`: renamed into the store; `false`: unlinked (the store held it).
        moved: bool,
    },
    /// A new file in the store.
    Store {
        /// Its content hash.
        hash: Digest,
    },
    /// A package file entered `packages/`.
    Place {
        /// Its layer.
        layer: Layer,
        /// Its file name.
        name: String,
        /// Its content hash.
        hash: Digest,
        /// `true`: renamed out of the store; `false`: a staged copy.
        from_store: bool,
    },
}

/// A parsed journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Journal {
    /// The generation the transaction commits.
    pub target: u64,
    /// The moves, in execution order.
    pub ops: Vec<JournalOp>,
}

impl Journal {
    /// The journal text.
    pub fn encode(&self) -> Vec<u8> {
        let mut s = String::new();
        let _ = writeln!(s, "{JOURNAL_MAGIC}\ntarget {}", self.target);
        for op in &self.ops {
            let _ = match op {
                JournalOp::Retire {
                    layer,
                    name,
                    hash,
                    moved,
                } => {
                    let how = if *moved { "moved" } else { "unlinked" };
                    writeln!(s, "retire {layer} {hash} {how} {name}")
                }
                JournalOp::Store { hash } => writeln!(s, "store {hash}"),
                JournalOp::Place {
                    layer,
                    name,
                    hash,
                    from_store,
                } => {
                    let how = if *from_store { "store" } else { "copy" };
                    writeln!(s, "place {layer} {hash} {how} {name}")
                }
            };
        }
        frame(s.into_bytes())
    }

    /// Parse and check a journal.
    pub fn parse(bytes: &[u8]) -> Result<Journal, ListError> {
        let (body, _) = unframe(bytes)?;
        let bad = |n: usize, m: String| ListError {
            line: n,
            message: m,
        };
        let mut lines = body
            .split_terminator('\n')
            .enumerate()
            .map(|(i, l)| (i + 1, l));
        match lines.next() {
            Some((_, JOURNAL_MAGIC)) => {}
            other => {
                return Err(bad(
                    1,
                    format!("expected {JOURNAL_MAGIC:?}, found {other:?}"),
                ))
            }
        }
        let target = match lines.next() {
            Some((_, l)) => l
                .strip_prefix("target ")
                .and_then(|v| v.parse::<u64>().ok())
                .filter(|v| *v > 0)
                .ok_or_else(|| bad(2, format!("bad target line {l:?}")))?,
            None => return Err(bad(2, "missing target line".into())),
        };
        let mut ops = Vec::new();
        for (n, line) in lines {
            let parts: Vec<&str> = line.splitn(5, ' ').collect();
            let hash = |i: usize| {
                parts
                    .get(i)
                    .and_then(|h| Digest::parse_hex(h))
                    .ok_or_else(|| bad(n, format!("bad hash in {line:?}")))
            };
            let entry = |i: usize| -> Result<(Layer, String), ListError> {
                let layer = parts.get(1).and_then(|l| Layer::parse(l));
                let name = parts.get(i).filter(|n| file_name_problem(n).is_none());
                match (layer, name) {
                    (Some(l), Some(n)) => Ok((l, n.to_string())),
                    _ => Err(bad(n, format!("bad layer or file name in {line:?}"))),
                }
            };
            let op = match (parts.first().copied(), parts.get(3).copied()) {
                (Some("retire"), Some(how @ ("moved" | "unlinked"))) => {
                    let (layer, name) = entry(4)?;
                    JournalOp::Retire {
                        layer,
                        name,
                        hash: hash(2)?,
                        moved: how == "moved",
                    }
                }
                (Some("place"), Some(how @ ("store" | "copy"))) => {
                    let (layer, name) = entry(4)?;
                    JournalOp::Place {
                        layer,
                        name,
                        hash: hash(2)?,
                        from_store: how == "store",
                    }
                }
                (Some("store"), None) if parts.len() == 2 => JournalOp::Store { hash: hash(1)? },
                _ => return Err(bad(n, format!("unknown journal line {line:?}"))),
            };
            ops.push(op);
        }
        Ok(Journal { target, ops })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let h = Digest::of_bytes(b"x");
        let j = Journal {
            target: 8,
            ops: vec![
                JournalOp::Retire {
                    layer: Layer::User,
                    name: "a b.hpkg".into(),
                    hash: h,
                    moved: true,
                },
                JournalOp::Retire {
                    layer: Layer::System,
                    name: "c.hpkg".into(),
                    hash: h,
                    moved: false,
                },
                JournalOp::Store { hash: h },
                JournalOp::Place {
                    layer: Layer::Common,
                    name: "d.hpkg".into(),
                    hash: h,
                    from_store: false,
                },
                JournalOp::Place {
                    layer: Layer::User,
                    name: "e.hpkg".into(),
                    hash: h,
                    from_store: true,
                },
            ],
        };
        let bytes = j.encode();
        assert_eq!(Journal::parse(&bytes).unwrap(), j);
        for len in 0..bytes.len() {
            assert!(Journal::parse(&bytes[..len]).is_err());
        }
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert!(Journal::parse(&bad).is_err(), "byte {i}");
        }
    }
}
