//! The list format of `active.list` and `generations/<N>.list`: a [`Generation`]
//! and its [`ActivePackage`]s as checksummed plain text.
//!
//! ```text
//! packagefs-active-list 1
//! generation 7
//! parent 6                      (or: parent none)
//! time 2026-01-02T03:04:05Z     (RFC 3339, UTC, whole seconds)
//! reason pkgctl add foo.hpkg    (control characters become spaces)
//! pinned                        (optional)
//! system 4535776 <64 hex digits> haiku-r1.hpkg
//! user 563 <64 hex digits> my package 1.0.hpkg
//! checksum blake3 <64 hex digits: blake3 of every byte before this line>
//! ```
//!
//! One line per active package: `<layer> <size> <blake3> <file name>`. The file
//! name is last and may contain spaces; names with control characters are
//! refused (see [`crate::layout::file_name_problem`]), so nothing is escaped.
//! The order of package lines is the activation order, which decides conflicts
//! inside a layer (later wins). Parsing is strict: every field canonical, every
//! line in its place, the whole file covered by the checksum, so a torn or
//! corrupt list is always detected.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};

use crate::digest::Digest;
use crate::layout::{file_name_problem, Layer};

/// First line of every list: the format and its version.
pub const MAGIC_LINE: &str = "packagefs-active-list 1";
/// Largest list accepted, in bytes (about 150 000 packages).
pub const MAX_LIST_SIZE: u64 = 32 << 20;

/// One active package of a generation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ActivePackage {
    /// The layer whose `packages/` directory holds it.
    pub layer: Layer,
    /// Its file name in that directory.
    pub file_name: String,
    /// Size of the file in bytes.
    pub size: u64,
    /// blake3 of the file's content.
    pub hash: Digest,
}

impl ActivePackage {
    /// `layer/file_name`: how it is shown and how `remove` can name it.
    pub fn display_name(&self) -> String {
        format!("{}/{}", self.layer, self.file_name)
    }
}

/// One generation: a package set with its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Generation {
    /// Its number; numbers strictly increase with every commit.
    pub number: u64,
    /// The generation that was current when this one was made (none for the first).
    pub parent: Option<u64>,
    /// When it was committed (whole seconds; serialized as RFC 3339 UTC).
    #[serde(serialize_with = "serialize_time")]
    pub time: SystemTime,
    /// The command that made it.
    pub reason: String,
    /// Pinned generations are never removed by `gc`.
    pub pinned: bool,
    /// The active packages in activation order.
    pub packages: Vec<ActivePackage>,
}

/// A list that could not be parsed or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ListError {
    /// 1-based line number; 0 for the file as a whole.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

fn err(line: usize, message: impl Into<String>) -> ListError {
    ListError {
        line,
        message: message.into(),
    }
}

fn serialize_time<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_time(*t))
}

/// `t` as RFC 3339 UTC with whole seconds, e.g. `2026-01-02T03:04:05Z`.
pub fn format_time(t: SystemTime) -> String {
    timestamp(t)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_string()
}

/// `t` (whole seconds) as a jiff timestamp; `None` outside years 1970–9999.
fn timestamp(t: SystemTime) -> Option<jiff::Timestamp> {
    let secs = t.duration_since(UNIX_EPOCH).ok()?.as_secs();
    jiff::Timestamp::from_second(i64::try_from(secs).ok()?).ok()
}

/// `t` without its fraction of a second (what a list can hold).
pub fn whole_seconds(t: SystemTime) -> SystemTime {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// `text` with every control character replaced by a space (a reason is one line).
pub fn sanitize_reason(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

impl Generation {
    /// A new generation stamped now, reason sanitized.
    pub fn new(
        number: u64,
        parent: Option<u64>,
        reason: &str,
        packages: Vec<ActivePackage>,
    ) -> Generation {
        Generation {
            number,
            parent,
            time: whole_seconds(SystemTime::now()),
            reason: sanitize_reason(reason),
            pinned: false,
            packages,
        }
    }

    /// The package at `layer/file_name`, if active.
    pub fn find(&self, layer: Layer, file_name: &str) -> Option<&ActivePackage> {
        self.packages
            .iter()
            .find(|p| p.layer == layer && p.file_name == file_name)
    }

    /// Whether any package of this generation has content `hash`.
    pub fn references(&self, hash: &Digest) -> bool {
        self.packages.iter().any(|p| p.hash == *hash)
    }

    /// The list text. Fails when a field cannot be written so that it reads
    /// back identically (a bad file name, a reason with control characters,
    /// a time before 1970, a parent not below the number, a duplicate entry).
    pub fn encode(&self) -> Result<Vec<u8>, ListError> {
        self.validate()?;
        let mut s = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(s, "{MAGIC_LINE}");
        let _ = writeln!(s, "generation {}", self.number);
        match self.parent {
            Some(p) => {
                let _ = writeln!(s, "parent {p}");
            }
            None => s.push_str("parent none\n"),
        }
        let _ = writeln!(s, "time {}", format_time(self.time));
        let _ = writeln!(s, "reason {}", self.reason);
        if self.pinned {
            s.push_str("pinned\n");
        }
        for p in &self.packages {
            let _ = writeln!(s, "{} {} {} {}", p.layer, p.size, p.hash, p.file_name);
        }
        Ok(frame(s.into_bytes()))
    }

    fn validate(&self) -> Result<(), ListError> {
        if self.number == 0 {
            return Err(err(0, "generation numbers start at 1"));
        }
        if let Some(p) = self.parent {
            if p >= self.number {
                return Err(err(
                    0,
                    format!("parent {p} is not below generation {}", self.number),
                ));
            }
        }
        if self.reason.chars().any(char::is_control) {
            return Err(err(0, "reason contains a control character"));
        }
        if timestamp(self.time).is_none() || whole_seconds(self.time) != self.time {
            return Err(err(0, "time is not whole seconds between 1970 and 9999"));
        }
        let mut seen = std::collections::HashSet::new();
        for p in &self.packages {
            if let Some(why) = file_name_problem(&p.file_name) {
                return Err(err(0, format!("file name {:?}: {why}", p.file_name)));
            }
            if !seen.insert((p.layer, p.file_name.as_str())) {
                return Err(err(0, format!("{} listed twice", p.display_name())));
            }
        }
        Ok(())
    }

    /// Parse and check a list. Every deviation from the exact form
    /// [`Generation::encode`] writes is an error.
    pub fn parse(bytes: &[u8]) -> Result<Generation, ListError> {
        let (body, lines_in_body) = unframe(bytes)?;
        let mut lines = body
            .split_terminator('\n')
            .enumerate()
            .map(|(i, l)| (i + 1, l));
        let mut next = |what: &str| {
            lines
                .next()
                .ok_or_else(|| err(lines_in_body + 1, format!("missing {what} line")))
        };
        let (n, magic) = next("format")?;
        if magic != MAGIC_LINE {
            return Err(err(n, format!("expected {MAGIC_LINE:?}, found {magic:?}")));
        }
        let (n, line) = next("generation")?;
        let number = field(line, "generation ", n).and_then(|v| parse_u64(v, n))?;
        if number == 0 {
            return Err(err(n, "generation numbers start at 1"));
        }
        let (n, line) = next("parent")?;
        let parent = match field(line, "parent ", n)? {
            "none" => None,
            v => {
                let p = parse_u64(v, n)?;
                if p >= number {
                    return Err(err(
                        n,
                        format!("parent {p} is not below generation {number}"),
                    ));
                }
                Some(p)
            }
        };
        let (n, line) = next("time")?;
        let text = field(line, "time ", n)?;
        let time = text
            .parse::<jiff::Timestamp>()
            .ok()
            .map(SystemTime::from)
            .filter(|t| format_time(*t) == text)
            .ok_or_else(|| {
                err(
                    n,
                    format!("time {text:?} is not RFC 3339 UTC in whole seconds"),
                )
            })?;
        let (n, line) = next("reason")?;
        let reason = field(line, "reason ", n)?.to_string();
        if reason.chars().any(char::is_control) {
            return Err(err(n, "reason contains a control character"));
        }
        let mut generation = Generation {
            number,
            parent,
            time,
            reason,
            pinned: false,
            packages: Vec::new(),
        };
        let mut seen = std::collections::HashSet::new();
        for (i, (n, line)) in lines.enumerate() {
            if i == 0 && line == "pinned" {
                generation.pinned = true;
                continue;
            }
            let p = parse_package_line(line, n)?;
            if !seen.insert((p.layer, p.file_name.clone())) {
                return Err(err(n, format!("{} is listed twice", p.display_name())));
            }
            generation.packages.push(p);
        }
        Ok(generation)
    }
}

fn field<'a>(line: &'a str, key: &str, n: usize) -> Result<&'a str, ListError> {
    line.strip_prefix(key)
        .ok_or_else(|| err(n, format!("expected \"{}...\", found {line:?}", key)))
}

/// A canonical decimal number: digits only, no leading zero (except `0`).
fn parse_u64(text: &str, n: usize) -> Result<u64, ListError> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical
        .then(|| text.parse::<u64>().ok())
        .flatten()
        .ok_or_else(|| err(n, format!("{text:?} is not a canonical decimal number")))
}

fn parse_package_line(line: &str, n: usize) -> Result<ActivePackage, ListError> {
    let mut parts = line.splitn(4, ' ');
    let (Some(layer), Some(size), Some(hash), Some(name)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(err(
            n,
            format!("expected \"<layer> <size> <blake3> <file name>\", found {line:?}"),
        ));
    };
    let layer = Layer::parse(layer).ok_or_else(|| err(n, format!("unknown layer {layer:?}")))?;
    let size = parse_u64(size, n)?;
    let hash = Digest::parse_hex(hash)
        .ok_or_else(|| err(n, format!("{hash:?} is not 64 lowercase hex digits")))?;
    if let Some(why) = file_name_problem(name) {
        return Err(err(n, format!("file name {name:?}: {why}")));
    }
    Ok(ActivePackage {
        layer,
        file_name: name.to_string(),
        size,
        hash,
    })
}

/// Append the checksum line to `body` (which ends in a newline or is empty).
pub(crate) fn frame(mut body: Vec<u8>) -> Vec<u8> {
    let sum = Digest::of_bytes(&body);
    body.extend_from_slice(format!("checksum blake3 {sum}\n").as_bytes());
    body
}

/// Check the size, final newline and checksum line of a framed file; return
/// the body before the checksum line as text and how many lines it has.
pub(crate) fn unframe(bytes: &[u8]) -> Result<(&str, usize), ListError> {
    if bytes.len() as u64 > MAX_LIST_SIZE {
        return Err(err(0, format!("larger than {MAX_LIST_SIZE} bytes")));
    }
    let Some(content) = bytes.strip_suffix(b"\n") else {
        return Err(err(0, "does not end with a newline: torn or truncated"));
    };
    let (body, last) = match content.iter().rposition(|&b| b == b'\n') {
        Some(i) => (
            bytes.get(..=i).unwrap_or_default(),
            content.get(i + 1..).unwrap_or_default(),
        ),
        None => (&b""[..], content),
    };
    let lines_in_body = body.iter().filter(|&&b| b == b'\n').count();
    let checksum_line = lines_in_body + 1;
    let last = std::str::from_utf8(last)
        .ok()
        .and_then(|l| l.strip_prefix("checksum blake3 "))
        .ok_or_else(|| {
            err(
                checksum_line,
                "the last line is not \"checksum blake3 <hex>\": torn or corrupt",
            )
        })?;
    let want = Digest::parse_hex(last)
        .ok_or_else(|| err(checksum_line, "checksum is not 64 lowercase hex digits"))?;
    if Digest::of_bytes(body) != want {
        return Err(err(checksum_line, "checksum mismatch: the file is corrupt"));
    }
    let text = std::str::from_utf8(body).map_err(|e| err(0, format!("not UTF-8: {e}")))?;
    Ok((text, lines_in_body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(pinned: bool) -> Generation {
        let pkg = |layer, name: &str, size, data: &[u8]| ActivePackage {
            layer,
            file_name: name.into(),
            size,
            hash: Digest::of_bytes(data),
        };
        Generation {
            number: 12,
            parent: Some(9),
            time: UNIX_EPOCH + Duration::from_secs(1_767_323_045),
            reason: "pkgctl add --layer user my pkg.hpkg".into(),
            pinned,
            packages: vec![
                pkg(Layer::System, "haiku-r1~beta5-x86_64.hpkg", 4_535_776, b"a"),
                pkg(Layer::User, "my pkg 1.0 .hpkg", 0, b"b"),
                pkg(Layer::User, " lead.hpkg", 18_446_744_073_709_551_615, b"c"),
                pkg(Layer::Common, "ünï.hpkg", 1, b"a"),
            ],
        }
    }

    #[test]
    fn round_trip() {
        for g in [
            sample(false),
            sample(true),
            Generation {
                packages: vec![],
                parent: None,
                ..sample(false)
            },
        ] {
            let bytes = g.encode().unwrap();
            assert_eq!(Generation::parse(&bytes).unwrap(), g);
        }
        let text = String::from_utf8(sample(true).encode().unwrap()).unwrap();
        assert!(text.starts_with("packagefs-active-list 1\ngeneration 12\nparent 9\ntime 2026-01-02T03:04:05Z\nreason pkgctl add --layer user my pkg.hpkg\npinned\nsystem 4535776 "), "{text}");
        assert!(text.lines().last().unwrap().starts_with("checksum blake3 "));
    }

    #[test]
    fn every_single_byte_corruption_is_detected() {
        let bytes = sample(true).encode().unwrap();
        for i in 0..bytes.len() {
            for delta in [1u8, 0x20, 0x80, 0xff] {
                let mut bad = bytes.clone();
                bad[i] ^= delta;
                assert!(
                    Generation::parse(&bad).is_err(),
                    "byte {i} ^ {delta:#x} not detected"
                );
            }
        }
    }

    #[test]
    fn every_truncation_is_detected() {
        let bytes = sample(false).encode().unwrap();
        for len in 0..bytes.len() {
            assert!(
                Generation::parse(&bytes[..len]).is_err(),
                "truncation to {len} not detected"
            );
        }
        let mut longer = bytes.clone();
        longer.extend_from_slice(b"x\n");
        assert!(Generation::parse(&longer).is_err());
    }

    /// Lists with a valid checksum but a bad structure are refused with the line.
    #[test]
    fn strict_structure() {
        let cases: &[(&str, usize)] = &[
            ("packagefs-active-list 2\n", 1),
            ("packagefs-active-list 1\ngeneration 01\n", 2),
            ("packagefs-active-list 1\ngeneration 0\n", 2),
            ("packagefs-active-list 1\ngeneration 3\nparent 3\n", 3),
            ("packagefs-active-list 1\ngeneration 3\nparent none\ntime 2026-01-02T03:04:05.5Z\nreason x\n", 4),
            ("packagefs-active-list 1\ngeneration 3\nparent none\ntime 2026-01-02T03:04:05Z\nreason x\nuser 1 ab x.hpkg\n", 6),
            ("packagefs-active-list 1\ngeneration 3\nparent none\ntime 2026-01-02T03:04:05Z\nreason x\nusr 1 ab x.hpkg\n", 6),
            ("packagefs-active-list 1\ngeneration 3\nparent none\ntime 2026-01-02T03:04:05Z\nreason x\nuser 1\n", 6),
            ("packagefs-active-list 1\ngeneration 3\nparent none\ntime 2026-01-02T03:04:05Z\n", 5),
        ];
        for (body, line) in cases {
            let e = Generation::parse(&frame(body.as_bytes().to_vec())).unwrap_err();
            assert_eq!(e.line, *line, "{body:?}: {e}");
        }
        let h = Digest::of_bytes(b"");
        let dup = format!("packagefs-active-list 1\ngeneration 3\nparent none\ntime 2026-01-02T03:04:05Z\nreason x\npinned\nuser 1 {h} x.hpkg\nuser 1 {h} x.hpkg\n");
        assert_eq!(
            Generation::parse(&frame(dup.into_bytes()))
                .unwrap_err()
                .line,
            8
        );
        let pinned_late = format!("packagefs-active-list 1\ngeneration 3\nparent none\ntime 2026-01-02T03:04:05Z\nreason x\nuser 1 {h} x.hpkg\npinned\n");
        assert_eq!(
            Generation::parse(&frame(pinned_late.into_bytes()))
                .unwrap_err()
                .line,
            7
        );
    }

    #[test]
    fn encode_refuses_what_would_not_read_back() {
        let mut g = sample(false);
        g.packages[0].file_name = "bad\nname.hpkg".into();
        assert!(g.encode().is_err());
        let mut g = sample(false);
        g.reason = "two\nlines".into();
        assert!(g.encode().is_err());
        assert_eq!(Generation::new(1, None, "a\nb", vec![]).reason, "a b");
        let mut g = sample(false);
        g.packages.push(g.packages[0].clone());
        assert!(g.encode().is_err());
        // Times a list cannot hold: a fraction of a second (each check alone
        // refuses), after the year 9999, before 1970.
        for time in [
            UNIX_EPOCH + Duration::from_millis(1_767_323_045_500),
            UNIX_EPOCH + Duration::from_secs(400_000_000_000),
            UNIX_EPOCH - Duration::from_secs(1),
        ] {
            let g = Generation {
                time,
                ..sample(false)
            };
            assert!(g.encode().is_err(), "{time:?}");
        }
    }

    #[test]
    fn frame_errors_name_the_checksum_line_and_the_size_limit() {
        let bytes = sample(false).encode().unwrap();
        let lines = bytes.iter().filter(|&&b| b == b'\n').count();
        let mut bad = bytes.clone();
        let last_digit = bad.len() - 2;
        bad[last_digit] = if bad[last_digit] == b'0' { b'1' } else { b'0' };
        let e = Generation::parse(&bad).unwrap_err();
        assert_eq!(
            (e.line, e.message.contains("mismatch")),
            (lines, true),
            "{e}"
        );
        // Exactly the limit is accepted; one byte more is refused as such.
        let limit = usize::try_from(MAX_LIST_SIZE).unwrap();
        let checksum_line = 16 + 64 + 1;
        let body = "x".repeat(limit - checksum_line - 1) + "\n";
        let framed = frame(body.into_bytes());
        assert_eq!(framed.len(), limit);
        assert_eq!(unframe(&framed).unwrap().1, 1);
        let body = "x".repeat(limit - checksum_line) + "\n";
        let e = unframe(&frame(body.into_bytes())).unwrap_err();
        assert!(e.message.starts_with("larger than"), "{e}");
    }

    #[test]
    fn references_is_about_content() {
        let g = sample(false);
        for p in &g.packages {
            assert!(g.references(&p.hash));
        }
        assert!(!g.references(&Digest::of_bytes(b"elsewhere")));
        let empty = Generation {
            packages: vec![],
            ..sample(false)
        };
        assert!(!empty.references(&g.packages[0].hash));
    }
}
