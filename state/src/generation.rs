//! Reading generations: `active.list`, `generations/<N>.list`, and the fallback
//! to the newest valid generation when `active.list` is corrupt or missing.

use std::path::Path;

use serde::Serialize;

use crate::active_list::{Generation, MAX_LIST_SIZE};
use crate::error::{Error, Result};
use crate::fsutil::{list_dir, read_limited};
use crate::layout::{Layout, ACTIVE_LIST};

/// The current generation and what had to be done to find it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Loaded {
    /// The generation in force.
    pub generation: Generation,
    /// Loud warnings for the user (for example: `active.list` is corrupt and
    /// an older generation file is used instead). Empty in the normal case.
    pub warnings: Vec<String>,
    /// Whether `active.list` was unusable and a generation file was used.
    pub fallback: bool,
}

/// Every kept generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GenerationList {
    /// Number of the current generation.
    pub current: u64,
    /// Every valid kept generation, oldest first.
    pub generations: Vec<Generation>,
    /// Corrupt generation files and fallbacks, as messages.
    pub warnings: Vec<String>,
}

/// Read and check one list file.
pub fn read_list(path: &Path) -> Result<Generation> {
    let bytes = read_limited(path, MAX_LIST_SIZE)?;
    Generation::parse(&bytes).map_err(|e| Error::Corrupt {
        path: path.to_path_buf(),
        line: e.line,
        message: e.message,
    })
}

/// Number of a generation file name: `<N>.list` with canonical `N` ≥ 1.
pub fn generation_file_number(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".list")?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Numbers of every generation file, ascending (nothing is parsed).
pub fn numbers(layout: &Layout) -> Result<Vec<u64>> {
    let mut out: Vec<u64> = list_dir(&layout.generations_dir())?
        .iter()
        .filter_map(|(name, _)| generation_file_number(name))
        .collect();
    out.sort_unstable();
    Ok(out)
}

/// Every generation file, by number (ascending), parsed or with its error.
pub fn scan(layout: &Layout) -> Result<Vec<(u64, Result<Generation>)>> {
    scan_up_to(layout, u64::MAX)
}

/// Every generation file numbered up to `max`, parsed or with its error.
pub fn scan_up_to(layout: &Layout, max: u64) -> Result<Vec<(u64, Result<Generation>)>> {
    let dir = layout.generations_dir();
    let mut out = Vec::new();
    for (name, path) in list_dir(&dir)? {
        if let Some(n) = generation_file_number(&name).filter(|n| *n <= max) {
            let parsed = read_list(&path).and_then(|g| {
                if g.number == n {
                    Ok(g)
                } else {
                    Err(Error::Corrupt {
                        path: path.clone(),
                        line: 2,
                        message: format!("holds generation {} instead of {n}", g.number),
                    })
                }
            });
            out.push((n, parsed));
        }
    }
    out.sort_by_key(|(n, _)| *n);
    Ok(out)
}

/// The current generation: `active.list`, or else the newest valid
/// generation file with a warning.
pub fn load_current(layout: &Layout) -> Result<Loaded> {
    let active = layout.active_list();
    let problem = match read_list(&active) {
        Ok(generation) => {
            return Ok(Loaded {
                generation,
                warnings: Vec::new(),
                fallback: false,
            })
        }
        Err(e) if e.is_not_found() => format!("{} is missing", active.display()),
        Err(e) => e.to_string(),
    };
    let mut details = vec![problem.clone()];
    let mut scanned = scan(layout)?;
    while let Some((n, parsed)) = scanned.pop() {
        match parsed {
            Ok(generation) => {
                let mut warnings = vec![format!(
                    "WARNING: {ACTIVE_LIST} is unusable ({problem}); using generation {n}, the newest valid generation file"
                )];
                warnings.extend(
                    details
                        .into_iter()
                        .skip(1)
                        .map(|d| format!("WARNING: skipped {d}")),
                );
                return Ok(Loaded {
                    generation,
                    warnings,
                    fallback: true,
                });
            }
            Err(e) => details.push(e.to_string()),
        }
    }
    Err(Error::NoValidGeneration {
        root: layout.root().to_path_buf(),
        details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_file_names() {
        assert_eq!(generation_file_number("12.list"), Some(12));
        for bad in [
            "0.list",
            "012.list",
            ".list",
            "1.list.tmp-1",
            "a.list",
            "1.lst",
            ".1.list.tmp-3-4",
        ] {
            assert_eq!(generation_file_number(bad), None, "{bad}");
        }
    }
}
