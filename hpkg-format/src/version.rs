//! Package versions, resolvable operators and Haiku's version ordering
//! (`docs/hpkg-format.md` §9.1, §9.4).

use std::cmp::Ordering;
use std::fmt;

use serde::Serialize;

/// A package version: `major[.minor[.micro]][~prerelease][-revision]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Version {
    /// Major part (required for a valid version).
    pub major: String,
    /// Minor part; empty when absent.
    pub minor: String,
    /// Micro part (may contain dots); empty when absent.
    pub micro: String,
    /// Pre-release tag; empty when absent. Sorts before the plain version.
    pub prerelease: String,
    /// Revision; 0 means none.
    pub revision: u32,
}

impl Version {
    /// A version from its parts.
    pub fn new(major: &str, minor: &str, micro: &str, prerelease: &str, revision: u32) -> Version {
        Version {
            major: major.into(),
            minor: minor.into(),
            micro: micro.into(),
            prerelease: prerelease.into(),
            revision,
        }
    }

    /// Parse the canonical text form `major[.minor[.micro]][~prerelease][-revision]`.
    pub fn parse(text: &str) -> Result<Version, String> {
        if text.is_empty() {
            return Err("empty version".into());
        }
        let (rest, revision) = match text.rfind('-') {
            Some(i) => {
                let rev = &text[i + 1..];
                let r: u32 = rev
                    .parse()
                    .map_err(|_| format!("invalid revision {rev:?} in version {text:?}"))?;
                if r == 0 {
                    return Err(format!("revision must be positive in version {text:?}"));
                }
                (&text[..i], r)
            }
            None => (text, 0),
        };
        let (rest, prerelease) = match rest.find('~') {
            Some(i) if i + 1 == rest.len() => {
                return Err(format!("empty pre-release in version {text:?}"));
            }
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let mut parts = rest.splitn(3, '.');
        let major = parts.next().unwrap_or_default();
        let minor = parts.next().unwrap_or_default();
        let micro = parts.next().unwrap_or_default();
        if major.is_empty() {
            return Err(format!("empty major part in version {text:?}"));
        }
        let bad = |c: char| c.is_whitespace() || "-~<>=!/".contains(c);
        for part in [major, minor, micro, prerelease] {
            if part.contains(bad) {
                return Err(format!("invalid character in version {text:?}"));
            }
        }
        Ok(Version::new(major, minor, micro, prerelease, revision))
    }

    /// Haiku's ordering of versions: natural comparison of major, minor and
    /// micro; a pre-release sorts before the release; then the revision.
    pub fn compare(&self, other: &Version) -> Ordering {
        natural_cmp(&self.major, &other.major)
            .then_with(|| natural_cmp(&self.minor, &other.minor))
            .then_with(|| natural_cmp(&self.micro, &other.micro))
            .then_with(
                || match (self.prerelease.is_empty(), other.prerelease.is_empty()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => Ordering::Greater,
                    (false, true) => Ordering::Less,
                    (false, false) => natural_cmp(&self.prerelease, &other.prerelease),
                },
            )
            .then_with(|| self.revision.cmp(&other.revision))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.major)?;
        if !self.minor.is_empty() {
            write!(f, ".{}", self.minor)?;
            if !self.micro.is_empty() {
                write!(f, ".{}", self.micro)?;
            }
        }
        if !self.prerelease.is_empty() {
            write!(f, "~{}", self.prerelease)?;
        }
        if self.revision != 0 {
            write!(f, "-{}", self.revision)?;
        }
        Ok(())
    }
}

/// Natural, case-insensitive comparison: runs of digits compare as numbers,
/// everything else byte-wise ignoring ASCII case. An empty string sorts first.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (strip_zeros(&a[..da]), strip_zeros(&b[..db]));
                let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if ord != Ordering::Equal {
                    return ord;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                let ord = x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase());
                if ord != Ordering::Equal {
                    return ord;
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn strip_zeros(digits: &[u8]) -> &[u8] {
    let n = digits.iter().take_while(|&&c| c == b'0').count();
    &digits[n..]
}

/// A version relation in `requires`, `supplements`, `conflicts`, `freshens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Operator {
    /// `<`
    #[serde(rename = "<")]
    Less = 0,
    /// `<=`
    #[serde(rename = "<=")]
    LessEqual = 1,
    /// `==`
    #[serde(rename = "==")]
    Equal = 2,
    /// `!=`
    #[serde(rename = "!=")]
    NotEqual = 3,
    /// `>=`
    #[serde(rename = ">=")]
    GreaterEqual = 4,
    /// `>`
    #[serde(rename = ">")]
    Greater = 5,
}

impl Operator {
    /// The operator for its stored value (spec §9.4).
    pub fn from_code(code: u64) -> Option<Operator> {
        Some(match code {
            0 => Operator::Less,
            1 => Operator::LessEqual,
            2 => Operator::Equal,
            3 => Operator::NotEqual,
            4 => Operator::GreaterEqual,
            5 => Operator::Greater,
            _ => return None,
        })
    }

    /// The operator's text.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Less => "<",
            Operator::LessEqual => "<=",
            Operator::Equal => "==",
            Operator::NotEqual => "!=",
            Operator::GreaterEqual => ">=",
            Operator::Greater => ">",
        }
    }

    /// Parse an operator's text.
    pub fn parse(text: &str) -> Option<Operator> {
        Some(match text {
            "<" => Operator::Less,
            "<=" => Operator::LessEqual,
            "==" => Operator::Equal,
            "!=" => Operator::NotEqual,
            ">=" => Operator::GreaterEqual,
            ">" => Operator::Greater,
            _ => return None,
        })
    }

    /// Whether `have OP want` holds.
    pub fn matches(self, have: &Version, want: &Version) -> bool {
        let ord = have.compare(want);
        match self {
            Operator::Less => ord == Ordering::Less,
            Operator::LessEqual => ord != Ordering::Greater,
            Operator::Equal => ord == Ordering::Equal,
            Operator::NotEqual => ord != Ordering::Equal,
            Operator::GreaterEqual => ord != Ordering::Less,
            Operator::Greater => ord == Ordering::Greater,
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn parse_and_display_round_trip() {
        for s in [
            "1",
            "1.2",
            "1.2.3",
            "1.2.3.4",
            "3.14.159~beta2-7",
            "r1~beta4_hrev57000-1",
            "2-3",
        ] {
            assert_eq!(v(s).to_string(), s);
        }
        let x = v("3.14.159~beta2-7");
        assert_eq!(
            (x.major.as_str(), x.minor.as_str(), x.micro.as_str()),
            ("3", "14", "159")
        );
        assert_eq!((x.prerelease.as_str(), x.revision), ("beta2", 7));
        assert!(Version::parse("").is_err());
        assert!(Version::parse("1-x").is_err());
        assert!(Version::parse("1-0").is_err());
    }

    #[test]
    fn ordering_follows_haiku() {
        let order = [
            "1~alpha", "1~beta", "1", "1-1", "1-2", "1.0", "1.2~rc1", "1.2", "1.10", "1.10.1", "2",
            "10",
        ];
        for w in order.windows(2) {
            assert_eq!(
                v(w[0]).compare(&v(w[1])),
                Ordering::Less,
                "{} < {}",
                w[0],
                w[1]
            );
            assert_eq!(v(w[1]).compare(&v(w[0])), Ordering::Greater);
        }
        assert_eq!(v("1.A").compare(&v("1.a")), Ordering::Equal);
        assert_eq!(v("01.2").compare(&v("1.2")), Ordering::Equal);
        assert_eq!(natural_cmp("hrev100", "hrev99"), Ordering::Greater);
    }

    #[test]
    fn operators() {
        assert!(Operator::GreaterEqual.matches(&v("1.2"), &v("1.2")));
        assert!(!Operator::Greater.matches(&v("1.2"), &v("1.2")));
        assert!(Operator::Less.matches(&v("1.2~b1"), &v("1.2")));
        assert!(Operator::NotEqual.matches(&v("2.1.1"), &v("2.1")));
        assert_eq!(Operator::from_code(4), Some(Operator::GreaterEqual));
        assert_eq!(Operator::from_code(6), None);
    }
}
