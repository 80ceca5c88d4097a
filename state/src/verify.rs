//! Verification: every package of every kept generation is present (in its
//! packages directory or in the store) with its recorded size and blake3.

use std::path::PathBuf;

use serde::Serialize;

use crate::active_list::ActivePackage;
use crate::digest::Digest;
use crate::error::Result;
use crate::fsutil::exists;
use crate::generation;
use crate::root::Root;
use crate::txn;

/// Something `verify` found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Problem {
    /// A generation file (or `active.list`) that does not parse or check.
    CorruptList {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A package of a kept generation is neither in its packages directory
    /// nor in the store.
    Missing {
        /// The generation.
        generation: u64,
        /// The package.
        package: ActivePackage,
    },
    /// A package's file exists but has other content.
    Mismatch {
        /// The generation.
        generation: u64,
        /// The package.
        package: ActivePackage,
        /// The file examined.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// Its blake3.
        hash: Digest,
    },
    /// What recovery or loading had to warn about (a repaired `active.list` ...).
    Warning {
        /// The message.
        message: String,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::CorruptList { path, message } => write!(f, "{}: {message}", path.display()),
            Problem::Missing { generation, package } => write!(
                f,
                "generation {generation}: {} is missing (neither in its packages directory nor in the store)",
                package.display_name()
            ),
            Problem::Mismatch { generation, package, path, size, hash } => write!(
                f,
                "generation {generation}: {}: {} has {size} bytes with blake3 {hash}, expected {} bytes with blake3 {}",
                package.display_name(),
                path.display(),
                package.size,
                package.hash
            ),
            Problem::Warning { message } => f.write_str(message),
        }
    }
}

impl Root {
    /// Check every package of every kept generation: its content (size and
    /// blake3) must be in `store/<blake3>.hpkg` or at its packages path. Runs
    /// under the lock, after recovery, so it never sees a transaction midway.
    /// An empty list means all is well.
    pub fn verify(&self) -> Result<Vec<Problem>> {
        let mut txn = txn::begin(self)?;
        let mut problems: Vec<Problem> = txn
            .take_warnings()
            .into_iter()
            .filter(|w| w.starts_with("WARNING"))
            .map(|message| Problem::Warning { message })
            .collect();
        for (n, parsed) in generation::scan(&self.layout)? {
            if let Err(e) = parsed {
                if n <= txn.current.number {
                    problems.push(Problem::CorruptList {
                        path: self.layout.generation_file(n),
                        message: e.to_string(),
                    });
                }
            }
        }
        for g in txn.kept()? {
            for p in &g.packages {
                let candidates = [
                    self.layout.store_file(&p.hash),
                    self.layout.package_file(p.layer, &p.file_name),
                ];
                let mut first_mismatch = None;
                let mut found = false;
                for path in candidates {
                    if !exists(&path)? {
                        continue;
                    }
                    let (size, hash) = self.hash_file(&path)?;
                    if size == p.size && hash == p.hash {
                        found = true;
                        break;
                    }
                    first_mismatch.get_or_insert(Problem::Mismatch {
                        generation: g.number,
                        package: p.clone(),
                        path,
                        size,
                        hash,
                    });
                }
                if !found {
                    problems.push(first_mismatch.unwrap_or(Problem::Missing {
                        generation: g.number,
                        package: p.clone(),
                    }));
                }
            }
        }
        Ok(problems)
    }
}
