//! The Debian → Haiku version mapping keeps dpkg's order, with dpkg itself
//! as the oracle: over (a) every version and versioned relation of the
//! `.deb`s in `/work/corpus/debs` (or `$PKGCTL_DEB_CORPUS`) when that
//! directory exists, (b) the checked-in list `data/tricky-versions.txt`,
//! and (c) a few thousand deterministic pseudo-random versions.
//!
//! All versions are sorted by their mapped Haiku version; every adjacent
//! pair is then confirmed by `dpkg --compare-versions` (`lt` where the
//! mapping says less, `eq` where it says equal) — with dpkg's order total,
//! that confirms the order of every pair. A sample of random pairs is
//! checked directly too.

use state::debian_version as version;

use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::process::Command;

use version::DebVersion;

/// Ask dpkg whether `a OP b` holds.
fn dpkg(a: &str, op: &str, b: &str) -> bool {
    let status = Command::new("dpkg")
        .args(["--compare-versions", a, op, b])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run dpkg ({e}): this test needs dpkg (apt-get install dpkg)")
        });
    match status.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!("dpkg --compare-versions {a} {op} {b}: exit {other:?}"),
    }
}

/// Run `check` over `items` on two threads.
fn parallel<T: Sync>(items: &[T], check: impl Fn(&T) + Sync) {
    let half = items.len() / 2;
    std::thread::scope(|s| {
        let (a, b) = items.split_at(half);
        let check = &check;
        s.spawn(move || a.iter().for_each(check));
        b.iter().for_each(check);
    });
}

fn corpus_dir() -> PathBuf {
    std::env::var_os("PKGCTL_DEB_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/corpus/debs"))
}

/// Every version in the control files of the `.deb`s under `dir`: the
/// `Version` field and every `(op version)` of a relation field.
fn corpus_versions(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "deb") {
            continue;
        }
        let o = Command::new("dpkg-deb")
            .arg("-f")
            .arg(&p)
            .output()
            .expect("dpkg-deb");
        let text = String::from_utf8_lossy(&o.stdout);
        let relations = [
            "Depends",
            "Pre-Depends",
            "Provides",
            "Conflicts",
            "Breaks",
            "Replaces",
            "Recommends",
            "Suggests",
            "Enhances",
        ];
        let mut field = String::new();
        for line in text.lines() {
            if !line.starts_with([' ', '\t']) {
                field = line.split(':').next().unwrap_or_default().to_string();
            }
            if let Some(v) = line.strip_prefix("Version:") {
                out.push(v.trim().to_string());
            }
            if !relations.contains(&field.as_str()) {
                continue;
            }
            for part in line.split('(').skip(1) {
                let inner = part.split(')').next().unwrap_or_default();
                let v = inner.trim_start_matches(['<', '>', '=', ' ']).trim();
                if !v.is_empty() {
                    out.push(v.to_string());
                }
            }
        }
    }
    out
}

fn tricky_versions() -> Vec<String> {
    include_str!("data/tricky-versions.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Deterministic pseudo-random versions over a small alphabet that reaches
/// every case of dpkg's comparison.
fn random_versions(n: usize) -> Vec<String> {
    let mut rng = fastrand::Rng::with_seed(0x6465_6276_6572);
    let atoms = [
        "0", "1", "2", "9", "10", "01", "a", "b", "z", "A", "Z", "~", "~", ".", "+", "",
    ];
    let part = |rng: &mut fastrand::Rng, first_digit: bool| {
        let mut s = String::new();
        if first_digit {
            s.push_str(["0", "1", "2", "10"][rng.usize(..4)]);
        }
        for _ in 0..rng.usize(0..5) {
            s.push_str(atoms[rng.usize(..atoms.len())]);
        }
        s
    };
    (0..n)
        .map(|_| {
            let mut v = String::new();
            if rng.u8(..8) == 0 {
                v.push_str(["0:", "1:", "2:"][rng.usize(..3)]);
            }
            v.push_str(&part(&mut rng, true));
            if rng.bool() {
                let rev = part(&mut rng, false);
                let rev = if rev.is_empty() { "1".to_string() } else { rev };
                v.push('-');
                v.push_str(&rev);
            }
            v
        })
        .collect()
}

#[test]
fn the_mapping_keeps_dpkgs_order() {
    let mut texts = tricky_versions();
    assert!(texts.len() >= 60, "the tricky list has {}", texts.len());
    let corpus = corpus_versions(&corpus_dir());
    eprintln!("{} versions from the corpus", corpus.len());
    texts.extend(corpus);
    texts.extend(random_versions(2500));
    texts.sort();
    texts.dedup();
    let mut versions: Vec<(String, hpkg_format::Version)> = texts
        .iter()
        .map(|t| {
            let v = DebVersion::parse(t).unwrap_or_else(|e| panic!("{t}: {e}"));
            let h = v.to_haiku();
            // The Haiku text form round-trips and passes the parser's checks.
            assert_eq!(
                hpkg_format::Version::parse(&h.to_string()).as_ref(),
                Ok(&h),
                "{t}"
            );
            (t.clone(), h)
        })
        .collect();
    versions.sort_by(|a, b| a.1.compare(&b.1));

    let pairs: Vec<(&str, &str, Ordering)> = versions
        .windows(2)
        .map(|w| (w[0].0.as_str(), w[1].0.as_str(), w[0].1.compare(&w[1].1)))
        .collect();
    parallel(&pairs, |(a, b, ord)| {
        let op = if *ord == Ordering::Equal { "eq" } else { "lt" };
        assert!(
            dpkg(a, op, b),
            "mapped order says {a} {op} {b}, dpkg disagrees ({} vs {})",
            DebVersion::parse(a).unwrap().to_haiku(),
            DebVersion::parse(b).unwrap().to_haiku()
        );
    });

    // And a direct sample of random pairs, every sign.
    let mut rng = fastrand::Rng::with_seed(7);
    let sample: Vec<(usize, usize)> = (0..1500)
        .map(|_| (rng.usize(..versions.len()), rng.usize(..versions.len())))
        .collect();
    parallel(&sample, |&(i, j)| {
        let (a, b) = (&versions[i], &versions[j]);
        let op = match a.1.compare(&b.1) {
            Ordering::Less => "lt",
            Ordering::Equal => "eq",
            Ordering::Greater => "gt",
        };
        assert!(
            dpkg(&a.0, op, &b.0),
            "{} {op} {} per the mapping; dpkg disagrees",
            a.0,
            b.0
        );
    });
}

#[test]
fn the_oracle_can_disagree() {
    // The check above is not vacuous: a naive mapping (the Debian text as a
    // Haiku micro part, `~` and `+` dropped) breaks dpkg's order somewhere.
    let naive = |t: &str| {
        let clean: String = t
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
            .collect();
        hpkg_format::Version::new("0", "0", &clean, "", 1)
    };
    let (a, b) = ("1.2a", "1.2.1");
    assert_eq!(naive(a).compare(&naive(b)), Ordering::Greater);
    assert!(dpkg(a, "lt", b));
    let (ma, mb) = (
        DebVersion::parse(a).unwrap().to_haiku(),
        DebVersion::parse(b).unwrap().to_haiku(),
    );
    assert_eq!(ma.compare(&mb), Ordering::Less);
}
