//! Rendering helpers shared by the commands: a buffered standard output whose
//! errors are typed, JSON lines, `ls`-style mode strings, times and hashes.

use std::borrow::Cow;
use std::io::{self, BufWriter, StdoutLock, Write};

use hpkg_format::EntryKind;
use serde::Serialize;

use crate::error::{CliError, Result};

/// Buffered standard output.
pub struct Out(BufWriter<StdoutLock<'static>>);

impl Out {
    /// Lock standard output for the life of the command.
    pub fn new() -> Out {
        Out(BufWriter::with_capacity(64 * 1024, io::stdout().lock()))
    }

    /// Write one line of text.
    pub fn line(&mut self, text: impl std::fmt::Display) -> Result<()> {
        writeln!(self.0, "{text}").map_err(CliError::Stdout)
    }

    /// Write a value as one line of compact JSON.
    pub fn json_line(&mut self, value: &impl Serialize) -> Result<()> {
        serde_json::to_writer(&mut self.0, value)
            .map_err(|e| CliError::Stdout(io::Error::other(e)))?;
        self.line("")
    }

    /// Write a value as indented JSON followed by a newline.
    pub fn json_pretty(&mut self, value: &impl Serialize) -> Result<()> {
        serde_json::to_writer_pretty(&mut self.0, value)
            .map_err(|e| CliError::Stdout(io::Error::other(e)))?;
        self.line("")
    }

    /// Flush what is buffered; call once at the end of a command.
    pub fn finish(mut self) -> Result<()> {
        self.0.flush().map_err(CliError::Stdout)
    }
}

impl Default for Out {
    fn default() -> Self {
        Self::new()
    }
}

/// Print `pkgctl: warning: <message>` on standard error.
pub fn warn(message: impl std::fmt::Display) {
    eprintln!("pkgctl: warning: {message}");
}

/// Bytes from a package (names, link targets) as text; invalid UTF-8 becomes
/// U+FFFD.
pub fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// Lower-case hex of the SHA-256 state `digest` produced.
pub fn hex(digest: &[u8]) -> String {
    use std::fmt::Write as _;
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// `ls -l` style mode: type letter and `rwx` triplets with setuid, setgid and
/// sticky bits (`drwxr-xr-x`, `-rwsr-xr-x`, `lrwxrwxrwx`).
pub fn mode_string(kind: EntryKind, mode: u16) -> String {
    let mut s = String::with_capacity(10);
    s.push(match kind {
        EntryKind::File => '-',
        EntryKind::Directory => 'd',
        EntryKind::Symlink => 'l',
    });
    let special = [(0o4000, 's', 'S'), (0o2000, 's', 'S'), (0o1000, 't', 'T')];
    for (i, (bit, with_x, without_x)) in special.into_iter().enumerate() {
        let shift = 6 - 3 * i;
        let rwx = (mode >> shift) & 0o7;
        s.push(if rwx & 4 != 0 { 'r' } else { '-' });
        s.push(if rwx & 2 != 0 { 'w' } else { '-' });
        let x = rwx & 1 != 0;
        s.push(match (mode & bit != 0, x) {
            (true, true) => with_x,
            (true, false) => without_x,
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// A modification time in UTC, `2026-01-02 03:04:05`; times outside what a
/// calendar shows (beyond year 9999) as `@<seconds>`.
pub fn time_string(secs: i64, nanos: u32) -> String {
    match jiff::Timestamp::new(secs, nanos as i32) {
        Ok(t) => t.strftime("%Y-%m-%d %H:%M:%S").to_string(),
        Err(_) => format!("@{secs}"),
    }
}

/// A Haiku attribute type code: its four characters when they are printable
/// ASCII (`MIMS`), else `0x` and eight hex digits.
pub fn type_code(code: u32) -> String {
    let bytes = code.to_be_bytes();
    if bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        bytes.iter().map(|&b| char::from(b)).collect()
    } else {
        format!("0x{code:08x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_strings_follow_ls() {
        assert_eq!(mode_string(EntryKind::Directory, 0o755), "drwxr-xr-x");
        assert_eq!(mode_string(EntryKind::File, 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string(EntryKind::File, 0o2644), "-rw-r-Sr--");
        assert_eq!(mode_string(EntryKind::Directory, 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string(EntryKind::Symlink, 0o777), "lrwxrwxrwx");
        assert_eq!(mode_string(EntryKind::File, 0o1000), "---------T");
    }

    #[test]
    fn times_and_codes() {
        assert_eq!(time_string(1_767_323_045, 0), "2026-01-02 03:04:05");
        assert_eq!(time_string(0, 0), "1970-01-01 00:00:00");
        assert_eq!(time_string(i64::MAX, 0), format!("@{}", i64::MAX));
        assert_eq!(type_code(0x4d49_4d53), "MIMS");
        assert_eq!(type_code(1), "0x00000001");
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
    }
}
