//! Debian versions (`[epoch:]upstream[-revision]`) and their order-keeping
//! mapping onto Haiku versions.
//!
//! dpkg compares the epoch as a number, then the upstream version, then the
//! revision, the last two with `verrevcmp`: a string is a sequence of
//! *(non-digit run, digit run)* pairs, the first run possibly empty; runs of
//! non-digits compare character by character with `~` < end of run <
//! letters (ASCII) < every other character (ASCII), digit runs compare as
//! numbers, and a missing pair counts as *(empty, 0)*.
//!
//! Haiku compares `major`, `minor`, `micro` with
//! [`natural_cmp`](hpkg_format::version::natural_cmp) (ASCII case folded,
//! digit runs as numbers, end of string first), then the pre-release, then
//! the numeric revision. The mapping is:
//!
//! - `major` = the epoch (`0` when absent);
//! - `micro` = `enc(upstream)` followed by `enc(revision)` (an empty
//!   revision is the same as `0`, as in dpkg);
//! - `minor` = the leading number of `micro` when it starts with a digit,
//!   `0` when it starts with `..` (a `~`), `_` otherwise — a coarser copy of
//!   `micro`'s order, there only to keep the first number readable;
//! - no pre-release, revision `1` (Haiku's package version needs one).
//!
//! `enc` writes each (non-digit run, digit run) pair as the run's characters
//! followed by the number (`0` when the run has no digits; leading zeros
//! kept, `natural_cmp` ignores them), and ends the part with `._`. In
//! dpkg's order, from lowest:
//!
//! | dpkg's order | written as |
//! |--------------|------------|
//! | `~`          | `..`       |
//! | end of the part | `._` (below digits) |
//! | end of a run followed by digits | the digits (always there: `0` when the run has none) |
//! | `A`…`Z`      | `_a`…`_z`  |
//! | `a`…`y`      | `a`…`y`    |
//! | `z`          | `za`       |
//! | `+`          | `zb`       |
//! | `-`          | `zc`       |
//! | `.`          | `zd`       |
//! | `:`          | `ze`       |
//!
//! An empty part is written as the number `0` (dpkg treats `""` and `"0"`
//! alike). Where dpkg puts "end of run" between `~` and letters, the
//! encoding has a digit or `._`, both between `..` and `_a`.
//!
//! Under `natural_cmp` the bytes order `.` < digits < `_` < letters, these
//! tokens are prefix-free, and every run is followed by digits, so
//! comparing two encodings meets the first differing token at the same
//! place in both and orders it as dpkg orders the characters: the mapping
//! keeps the order of every pair of versions by construction (and
//! `pkgctl`'s tests check it against `dpkg --compare-versions`). Examples:
//!
//! | Debian             | Haiku                              |
//! |--------------------|------------------------------------|
//! | `2.36-9+deb12u4`   | `0.2.2zd36._9zbdeb12u4._-1`         |
//! | `1:2.0`            | `1.2.2zd0._0._-1`                  |
//! | `1.0~rc1-1`        | `0.1.1zd0..rc1._1._-1`             |
//! | `3.11.2-6+deb12u2` | `0.3.3zd11zd2._6zbdeb12u2._-1`      |
//! | `0.9.8~git20200101`| `0.0.0zd9zd8..git20200101._0._-1`   |
//!
//! [`DebVersion::from_haiku`] reads the mapping back, for display. It is
//! exact but for the `0` written for a run without digits: a part's last
//! `0` is taken for that filler when the run before it ends in a letter
//! (`1.2+dfsg`, not `1.2+dfsg0`), and a revision `0` for no revision. Where
//! it guesses, both readings are equal to dpkg, and the exact text is in the
//! package's `.DEBIAN/control` (`pkgctl info`).

use std::fmt;

use hpkg_format::Version;

/// A parsed Debian version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebVersion {
    /// Epoch (0 when absent).
    pub epoch: u64,
    /// Upstream version (never empty).
    pub upstream: String,
    /// Debian revision (empty when absent).
    pub revision: String,
}

impl DebVersion {
    /// Parse a version as dpkg does, refusing what dpkg refuses: an empty
    /// version or upstream part, white space, a non-numeric epoch, and
    /// characters outside `[A-Za-z0-9.+~-:]` (upstream; `-` only with a
    /// revision, `:` only with an epoch) and `[A-Za-z0-9.+~]` (revision).
    pub fn parse(text: &str) -> Result<DebVersion, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty version".into());
        }
        if text.contains(char::is_whitespace) {
            return Err(format!("version {text:?} contains white space"));
        }
        let (epoch, rest) = match text.split_once(':') {
            Some((e, rest)) => {
                let epoch = if e.bytes().all(|b| b.is_ascii_digit()) && !e.is_empty() {
                    e.parse::<u64>().ok()
                } else {
                    None
                };
                let epoch = epoch.ok_or_else(|| format!("bad epoch {e:?} in version {text:?}"))?;
                (epoch, rest)
            }
            None => (0, text),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((u, r)) => (u, r),
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err(format!("empty upstream version in {text:?}"));
        }
        if rest.ends_with('-') {
            return Err(format!("empty revision in {text:?}"));
        }
        let up_ok = |c: char| c.is_ascii_alphanumeric() || ".+~-:".contains(c);
        if let Some(c) = upstream.chars().find(|&c| !up_ok(c)) {
            return Err(format!("invalid character {c:?} in version {text:?}"));
        }
        let rev_ok = |c: char| c.is_ascii_alphanumeric() || ".+~".contains(c);
        if let Some(c) = revision.chars().find(|&c| !rev_ok(c)) {
            return Err(format!("invalid character {c:?} in revision of {text:?}"));
        }
        Ok(DebVersion {
            epoch,
            upstream: upstream.to_string(),
            revision: revision.to_string(),
        })
    }

    /// The version without its epoch (`upstream[-revision]`), for file names.
    pub fn without_epoch(&self) -> String {
        if self.revision.is_empty() {
            self.upstream.clone()
        } else {
            format!("{}-{}", self.upstream, self.revision)
        }
    }

    /// The Haiku version with the same order (see the module comment).
    pub fn to_haiku(&self) -> Version {
        let mut micro = String::new();
        encode(&self.upstream, &mut micro);
        encode(&self.revision, &mut micro);
        let bytes = micro.as_bytes();
        let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
        let minor = match (digits, bytes.first()) {
            (n, _) if n > 0 => micro.get(..n).unwrap_or("0").to_string(),
            (_, Some(b'.')) => "0".to_string(),
            _ => "_".to_string(),
        };
        Version::new(&self.epoch.to_string(), &minor, &micro, "", 1)
    }
}

impl DebVersion {
    /// The Debian version a Haiku version made by [`DebVersion::to_haiku`]
    /// stands for, or `None` when `v` is not such a version (see the module
    /// comment for the one ambiguity). Checked by mapping the result back:
    /// it always gives `v` again.
    pub fn from_haiku(v: &Version) -> Option<DebVersion> {
        if v.revision != 1 || !v.prerelease.is_empty() || !v.micro.ends_with("._") {
            return None;
        }
        let epoch: u64 = v.major.parse().ok()?;
        let mut parts = decode(&v.micro)?.into_iter();
        let (upstream, revision) = (parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let revision = if revision == "0" {
            String::new()
        } else {
            revision
        };
        let deb = DebVersion {
            epoch,
            upstream,
            revision,
        };
        // Only what parses as dpkg would and maps back to `v` exactly.
        let text = deb.to_string();
        (DebVersion::parse(&text).ok()? == deb && deb.to_haiku() == *v).then_some(deb)
    }
}

/// The parts `enc(...)` wrote into `micro`, each ended by `._` (module
/// comment), or `None` when `micro` is not such a text.
fn decode(micro: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut part = String::new();
    // Where the current run of non-digits started in `part`.
    let mut run_start = 0;
    let mut rest = micro.as_bytes();
    while let Some((&c, after)) = rest.split_first() {
        let next = after.first().copied();
        rest = after;
        match c {
            b'0'..=b'9' => {
                let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
                let (digits, after) = rest.split_at(n);
                rest = after;
                let run_ends_in_letter = part
                    .as_bytes()
                    .get(run_start..)
                    .and_then(<[u8]>::last)
                    .is_some_and(u8::is_ascii_alphabetic);
                let at_end = rest.starts_with(b"._");
                // The filler `0` of a final run without digits.
                if !(c == b'0' && digits.is_empty() && at_end && run_ends_in_letter) {
                    part.push(char::from(c));
                    part.extend(digits.iter().map(|&b| char::from(b)));
                }
                run_start = part.len();
            }
            b'.' => {
                rest = rest.get(1..)?;
                match next? {
                    b'.' => part.push('~'),
                    b'_' => {
                        parts.push(std::mem::take(&mut part));
                        run_start = 0;
                    }
                    _ => return None,
                }
            }
            b'_' => {
                rest = rest.get(1..)?;
                part.push(char::from(
                    next.filter(u8::is_ascii_lowercase)?.to_ascii_uppercase(),
                ));
            }
            b'z' => {
                rest = rest.get(1..)?;
                part.push(match next? {
                    b'a' => 'z',
                    b'b' => '+',
                    b'c' => '-',
                    b'd' => '.',
                    b'e' => ':',
                    _ => return None,
                });
            }
            b'a'..=b'y' => part.push(char::from(c)),
            _ => return None,
        }
    }
    part.is_empty().then_some(parts)
}

impl fmt::Display for DebVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch != 0 {
            write!(f, "{}:", self.epoch)?;
        }
        f.write_str(&self.without_epoch())
    }
}

/// Append `enc(part)` (module comment) to `out`.
fn encode(part: &str, out: &mut String) {
    let mut rest = part.as_bytes();
    loop {
        let n = rest.iter().take_while(|b| !b.is_ascii_digit()).count();
        let (run, after) = rest.split_at(n);
        for &c in run {
            match c {
                b'~' => out.push_str(".."),
                b'A'..=b'Z' => {
                    out.push('_');
                    out.push(char::from(c.to_ascii_lowercase()));
                }
                b'a'..=b'y' => out.push(char::from(c)),
                b'z' => out.push_str("za"),
                b'+' => out.push_str("zb"),
                b'-' => out.push_str("zc"),
                b'.' => out.push_str("zd"),
                // ':' and, defensively, anything else sorts as the highest
                // character dpkg accepts.
                _ => out.push_str("ze"),
            }
        }
        let d = after.iter().take_while(|b| b.is_ascii_digit()).count();
        let (digits, after) = after.split_at(d);
        if digits.is_empty() {
            out.push('0');
        } else {
            out.extend(digits.iter().map(|&b| char::from(b)));
        }
        rest = after;
        if rest.is_empty() {
            break;
        }
    }
    out.push_str("._");
}

/// dpkg's `verrevcmp`-based comparison, written after dpkg's source: a
/// second opinion for the unit tests (the property test asks dpkg itself).
#[cfg(test)]
pub fn dpkg_cmp_reference(a: &DebVersion, b: &DebVersion) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn order(c: Option<u8>) -> i32 {
        match c {
            None => 0,
            Some(c) if c.is_ascii_digit() => 0,
            Some(c) if c.is_ascii_alphabetic() => i32::from(c),
            Some(b'~') => -1,
            Some(c) => i32::from(c) + 256,
        }
    }
    fn verrevcmp(a: &str, b: &str) -> Ordering {
        let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
        while !a.is_empty() || !b.is_empty() {
            while a.first().is_some_and(|c| !c.is_ascii_digit())
                || b.first().is_some_and(|c| !c.is_ascii_digit())
            {
                let (ac, bc) = (order(a.first().copied()), order(b.first().copied()));
                if ac != bc {
                    return ac.cmp(&bc);
                }
                a = a.get(1..).unwrap_or_default();
                b = b.get(1..).unwrap_or_default();
            }
            while a.first() == Some(&b'0') {
                a = &a[1..];
            }
            while b.first() == Some(&b'0') {
                b = &b[1..];
            }
            let mut first_diff = Ordering::Equal;
            while a.first().is_some_and(u8::is_ascii_digit)
                && b.first().is_some_and(u8::is_ascii_digit)
            {
                if first_diff == Ordering::Equal {
                    first_diff = a[0].cmp(&b[0]);
                }
                a = &a[1..];
                b = &b[1..];
            }
            if a.first().is_some_and(u8::is_ascii_digit) {
                return Ordering::Greater;
            }
            if b.first().is_some_and(u8::is_ascii_digit) {
                return Ordering::Less;
            }
            if first_diff != Ordering::Equal {
                return first_diff;
            }
        }
        Ordering::Equal
    }
    a.epoch
        .cmp(&b.epoch)
        .then_with(|| verrevcmp(&a.upstream, &b.upstream))
        .then_with(|| verrevcmp(&a.revision, &b.revision))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_examples() {
        for (deb, haiku) in [
            ("2.36-9+deb12u4", "0.2.2zd36._9zbdeb12u4._-1"),
            ("1:2.0", "1.2.2zd0._0._-1"),
            ("1.0~rc1-1", "0.1.1zd0..rc1._1._-1"),
            ("3.11.2-6+deb12u2", "0.3.3zd11zd2._6zbdeb12u2._-1"),
            ("0.9.8~git20200101", "0.0.0zd9zd8..git20200101._0._-1"),
        ] {
            let v = DebVersion::parse(deb).unwrap();
            assert_eq!(v.to_string(), deb);
            let h = v.to_haiku();
            assert_eq!(h.to_string(), haiku, "{deb}");
            assert_eq!(Version::parse(haiku).unwrap(), h, "{deb}");
        }
    }

    #[test]
    fn haiku_versions_read_back() {
        for deb in [
            "2.36-9+deb12u4",
            "1:2.0",
            "1.0~rc1-1",
            "3.11.2-6+deb12u2",
            "0.9.8~git20200101",
            "1.2+dfsg-1",
            "2.0.0~beta",
            "1:9.18.24-1",
            "1.0-0.1",
            "7.88.1-10+deb12u5",
            "0",
            "1.0",
            "10-ABC.z+Z",
            "2:1.2-3-4",
            "1.0-0ubuntu1",
        ] {
            let v = DebVersion::parse(deb).unwrap();
            assert_eq!(
                DebVersion::from_haiku(&v.to_haiku()).map(|d| d.to_string()),
                Some(deb.to_string()),
                "{deb}"
            );
        }
        // The ambiguous ones read back as their dpkg-equal twin.
        for (deb, shown) in [("1.0a0", "1.0a"), ("1.0-0", "1.0"), ("1.+", "1.+0")] {
            let v = DebVersion::parse(deb).unwrap();
            let back = DebVersion::from_haiku(&v.to_haiku()).unwrap();
            assert_eq!(back.to_string(), shown);
            assert_eq!(dpkg_cmp_reference(&v, &back), std::cmp::Ordering::Equal);
        }
        // Plain Haiku versions are not Debian ones.
        for haiku in [
            "1.0-1",
            "5.8-5",
            "42.17-12",
            "0.2.2zd36._9zbdeb12u4._-2",
            "0.2.2zd36._-1",
            "1.0.x._0._-1",
            "0.1.1zd0._1._x._-1",
        ] {
            let v = Version::parse(haiku).unwrap();
            assert_eq!(DebVersion::from_haiku(&v), None, "{haiku}");
        }
    }

    #[test]
    fn refuses_what_dpkg_refuses() {
        for bad in ["", "a:1", ":1", "1 2", "1-", "1_2", "-1", "1-a_b", "1-a:b"] {
            assert!(DebVersion::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_reference_agrees_with_the_mapping_on_a_grid() {
        let alphabet = ["", "0", "1", "a", "A", "~", "+", ".", "z", "10", "~~"];
        let mut all = Vec::new();
        for x in alphabet {
            for y in alphabet {
                for z in ["", "1", "~", "b"] {
                    all.push(format!("1{x}{y}{z}"));
                }
            }
        }
        let vs: Vec<DebVersion> = all.iter().map(|s| DebVersion::parse(s).unwrap()).collect();
        for a in &vs {
            for b in &vs {
                assert_eq!(
                    dpkg_cmp_reference(a, b),
                    a.to_haiku().compare(&b.to_haiku()),
                    "{a} vs {b}"
                );
            }
        }
    }
}
