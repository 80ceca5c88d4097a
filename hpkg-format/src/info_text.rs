//! The textual `.PackageInfo` format (Haiku's driver-settings-like syntax):
//! [`parse`] reads it into a [`PackageInfo`] with the rules of Haiku's
//! `PackageInfoParser`, [`format`] writes one back so that
//! `parse(&format(&x)) == x` for every valid `x`.
//!
//! Syntax summary:
//! - `key value` pairs; keys are case-insensitive; each key at most once;
//!   `name summary description vendor packager architecture version
//!   copyrights licenses provides` are mandatory ([`REQUIRED_FIELDS`]; a
//!   file missing some is refused with [`Error::PackageInfoMissing`] naming
//!   them all). Other errors name the line of the offending token.
//! - Items are separated by new lines or `;`; `#` starts a comment (only
//!   where a token may start); `\` before a new line continues the line.
//! - A token is a run of characters up to white space or one of `{ } < = ! >`;
//!   `"…"` or `'…'` segments inside it may hold anything (escapes `\n`, `\t`,
//!   `\x` → `x`); outside quotes `\x` is `x`.
//! - Lists are a single value or a `{ … }` block (resolvable and file lists
//!   always need the block).
//!
//! As in Haiku's data model, the package name and the names in `provides`,
//! `requires`, `supplements`, `conflicts` and `freshens` are lower-cased
//! (ASCII); the base package and `replaces` keep their spelling.
//!
//! Two keys are extensions Haiku's parser does not accept: `checksum` and
//! `install-path` (single string values), so that every [`PackageInfo`] can
//! be written. Differences from Haiku: URLs are not validated, and a
//! revision of `0` (`1.0-0`) is refused by [`Version::parse`].

use std::fmt::Write as _;

use crate::error::{Error, Result};
use crate::info::{
    Architecture, GlobalWritableFile, PackageFlags, PackageInfo, Provides, Requirement, User,
    UserSettingsFile, WritableFileUpdateType,
};
use crate::version::{Operator, Version};

/// The keys, in the order of Haiku's attribute enumeration (the first ten are mandatory).
const KEYS: [&str; 27] = [
    "name",
    "summary",
    "description",
    "vendor",
    "packager",
    "architecture",
    "version",
    "copyrights",
    "licenses",
    "provides",
    "requires",
    "supplements",
    "conflicts",
    "freshens",
    "replaces",
    "flags",
    "urls",
    "source-urls",
    "checksum",
    "global-writable-files",
    "user-settings-files",
    "users",
    "groups",
    "post-install-scripts",
    "base-package",
    "install-path",
    "pre-uninstall-scripts",
];
/// Keys `KEYS[..MANDATORY]` must be present.
const MANDATORY: usize = 10;

/// The keys every `.PackageInfo` must set, in Haiku's order.
pub const REQUIRED_FIELDS: [&str; MANDATORY] = [
    KEYS[0], KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9],
];

/// Parse the text of a `.PackageInfo` file.
pub fn parse(text: &str) -> Result<PackageInfo> {
    let mut p = Parser {
        src: text.as_bytes(),
        pos: 0,
    };
    p.parse_all()
}

/// A token and where it starts.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Str(String),
    Open,
    Close,
    Assign,
    Op(Operator),
    Sep,
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    at: usize,
}

impl Token {
    fn str(&self) -> Option<&str> {
        match &self.tok {
            Tok::Str(s) => Some(s),
            _ => None,
        }
    }

    fn is_end_of_item(&self) -> bool {
        matches!(self.tok, Tok::Sep | Tok::Close)
    }
}

struct Parser<'a> {
    src: &'a [u8],
    pos: usize,
}

/// C `isspace` in the "C" locale.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Haiku's resolvable-name rule: no white space and none of `- / < > = !`.
fn valid_resolvable_name(s: &str) -> Option<usize> {
    s.bytes()
        .position(|b| is_space(b) || b"-/<>=!".contains(&b))
}

/// Haiku's user/group name rule.
fn valid_user_name(s: &str) -> bool {
    !s.is_empty() && !s.contains(':')
}

fn alnum_underscore(s: &str, extra: &[u8]) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || extra.contains(&b))
}

impl Parser<'_> {
    fn byte(&self, at: usize) -> u8 {
        self.src.get(at).copied().unwrap_or(0)
    }

    fn err(&self, at: usize, reason: impl Into<String>) -> Error {
        let at = at.min(self.src.len());
        let line = self.src[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        Error::PackageInfoSyntax {
            line,
            reason: reason.into(),
        }
    }

    fn rewind(&mut self, t: &Token) {
        self.pos = t.at;
    }

    fn next(&mut self) -> Result<Token> {
        // Skip white space, comments and escaped new lines; remember the
        // last item separator (new line or ';') passed.
        let mut sep = None;
        let mut in_comment = false;
        loop {
            let b = self.byte(self.pos);
            if self.pos >= self.src.len() {
                break;
            }
            if in_comment {
                if b == b'\n' {
                    sep = Some(self.pos);
                    in_comment = false;
                }
                self.pos += 1;
                continue;
            }
            match b {
                b'#' => in_comment = true,
                b'\\' => {
                    if self.byte(self.pos + 1) != b'\n' {
                        break;
                    }
                    self.pos += 1;
                }
                b'\n' | b';' => sep = Some(self.pos),
                b if is_space(b) => {}
                _ => break,
            }
            self.pos += 1;
        }
        if let Some(at) = sep {
            return Ok(Token { tok: Tok::Sep, at });
        }
        let at = self.pos;
        let b = self.byte(at);
        let next = self.byte(at + 1);
        let (tok, len) = match b {
            _ if at >= self.src.len() => (Tok::Eof, 0),
            b'{' => (Tok::Open, 1),
            b'}' => (Tok::Close, 1),
            b'<' if next == b'=' => (Tok::Op(Operator::LessEqual), 2),
            b'<' => (Tok::Op(Operator::Less), 1),
            b'=' if next == b'=' => (Tok::Op(Operator::Equal), 2),
            b'=' => (Tok::Assign, 1),
            b'!' if next == b'=' => (Tok::Op(Operator::NotEqual), 2),
            b'!' => return Err(self.err(at, "unknown token '!' encountered")),
            b'>' if next == b'=' => (Tok::Op(Operator::GreaterEqual), 2),
            b'>' => (Tok::Op(Operator::Greater), 1),
            _ => return self.word(),
        };
        self.pos += len;
        Ok(Token { tok, at })
    }

    /// A string token: unquoted and quoted segments up to white space or a
    /// separator character.
    fn word(&mut self) -> Result<Token> {
        let at = self.pos;
        let mut out = Vec::new();
        let mut quote = None;
        while self.pos < self.src.len() {
            let c = self.src[self.pos];
            if let Some(q) = quote {
                if c == q {
                    quote = None;
                } else if c == b'\\' {
                    self.pos += 1;
                    match self.src.get(self.pos) {
                        None => return Err(self.err(at, "unterminated quoted-string")),
                        Some(b'n') => out.push(b'\n'),
                        Some(b't') => out.push(b'\t'),
                        Some(&e) => out.push(e),
                    }
                } else {
                    out.push(c);
                }
            } else {
                match c {
                    b'"' | b'\'' => quote = Some(c),
                    b'{' | b'}' | b'<' | b'=' | b'!' | b'>' => break,
                    b'\\' => {
                        self.pos += 1;
                        match self.src.get(self.pos) {
                            None => return Err(self.err(at, "'\\' at end of string")),
                            Some(&e) => out.push(e),
                        }
                    }
                    c if is_space(c) => break,
                    c => out.push(c),
                }
            }
            self.pos += 1;
        }
        if quote.is_some() {
            return Err(self.err(at, "unterminated quoted-string"));
        }
        Ok(Token {
            tok: Tok::Str(String::from_utf8_lossy(&out).into_owned()),
            at,
        })
    }

    fn string_value(&mut self) -> Result<(String, usize)> {
        let t = self.next()?;
        match t.tok {
            Tok::Str(s) => Ok((s, t.at)),
            _ => Err(self.err(t.at, "expected string")),
        }
    }

    /// A list: `{ items }`, or (when `single` is allowed) one item.
    fn list(
        &mut self,
        single: bool,
        mut item: impl FnMut(&mut Self, Token) -> Result<()>,
    ) -> Result<()> {
        let open = self.next()?;
        if open.tok != Tok::Open {
            if !single {
                return Err(self.err(open.at, "expected start of list ('{')"));
            }
            return item(self, open);
        }
        loop {
            let t = self.next()?;
            match t.tok {
                Tok::Close => return Ok(()),
                Tok::Sep => continue,
                _ => item(self, t)?,
            }
        }
    }

    fn string_list(&mut self, out: &mut Vec<String>, resolvable: bool) -> Result<()> {
        self.list(true, |p, t| {
            let Some(s) = t.str() else {
                return Err(p.err(t.at, "expected string"));
            };
            if resolvable {
                if let Some(i) = valid_resolvable_name(s) {
                    return Err(p.err(t.at + i, "invalid character in resolvable name"));
                }
            }
            out.push(s.to_string());
            Ok(())
        })
    }

    fn version_token(&mut self, t: &Token, revision_required: bool) -> Result<Version> {
        let Some(text) = t.str() else {
            return Err(self.err(t.at, "expected string (a version)"));
        };
        let v = Version::parse(text).map_err(|e| self.err(t.at, e))?;
        if revision_required && v.revision == 0 {
            return Err(self.err(t.at, "expected revision number (-<number> suffix)"));
        }
        let checks: [(&str, &[u8], &str); 4] = [
            (&v.major, b"", "major version"),
            (&v.minor, b"", "minor version"),
            (&v.micro, b".", "micro version"),
            (&v.prerelease, b".", "pre-release"),
        ];
        for (part, extra, what) in checks {
            if !alnum_underscore(part, extra) {
                return Err(self.err(t.at, format!("invalid character in {what} string")));
            }
        }
        if v.minor.is_empty() && !v.micro.is_empty() {
            return Err(self.err(t.at, "expected minor version"));
        }
        Ok(v)
    }

    fn version(&mut self, revision_required: bool) -> Result<Version> {
        let t = self.next()?;
        self.version_token(&t, revision_required)
    }

    /// A resolvable name, lower-cased as Haiku's resolvable objects store it.
    fn resolvable_name(&self, t: &Token) -> Result<String> {
        let Some(s) = t.str() else {
            return Err(self.err(t.at, "expected word (a resolvable name)"));
        };
        if let Some(i) = valid_resolvable_name(s) {
            return Err(self.err(t.at + i, "invalid character in resolvable name"));
        }
        Ok(s.to_ascii_lowercase())
    }

    fn provides(&mut self, out: &mut Vec<Provides>) -> Result<()> {
        self.list(false, |p, t| {
            let name = p.resolvable_name(&t)?;
            let op = p.next()?;
            let version = match op.tok {
                Tok::Assign => Some(p.version(false)?),
                _ if op.is_end_of_item() => {
                    p.rewind(&op);
                    None
                }
                _ => return Err(p.err(op.at, "expected '=', comma or '}'")),
            };
            let mut compatible = None;
            let compat = p.next()?;
            if matches!(compat.str(), Some("compat" | "compatible")) {
                let op = p.next()?;
                if op.tok == Tok::Op(Operator::GreaterEqual) {
                    compatible = Some(p.version(false)?);
                } else {
                    p.rewind(&compat);
                }
            } else {
                p.rewind(&compat);
            }
            out.push(Provides {
                name,
                version,
                compatible,
            });
            Ok(())
        })
    }

    fn requirements(
        &mut self,
        out: &mut Vec<Requirement>,
        mut base: Option<&mut Option<String>>,
    ) -> Result<()> {
        self.list(false, |p, t| {
            let name = p.resolvable_name(&t)?;
            let op = p.next()?;
            let mut req = Requirement {
                name,
                ..Requirement::default()
            };
            match op.tok {
                Tok::Op(o) => {
                    req.operator = Some(o);
                    req.version = Some(p.version(false)?);
                    if let Some(base) = base.as_deref_mut() {
                        let b = p.next()?;
                        if b.str() == Some("base") {
                            if base.is_some() {
                                return Err(p.err(t.at, "multiple packages marked as base package"));
                            }
                            // Haiku keeps the base package's spelling as written.
                            *base = t.str().map(str::to_string);
                        } else {
                            p.rewind(&b);
                        }
                    }
                }
                _ if op.is_end_of_item() => p.rewind(&op),
                _ => {
                    return Err(p.err(
                        op.at,
                        "expected '<', '<=', '==', '!=', '>=', '>', comma or '}'",
                    ))
                }
            }
            out.push(req);
            Ok(())
        })
    }

    fn global_writable_files(&mut self, out: &mut Vec<GlobalWritableFile>) -> Result<()> {
        self.list(false, |p, t| {
            let Some(path) = t.str() else {
                return Err(p.err(t.at, "expected string (a file path)"));
            };
            let mut f = GlobalWritableFile {
                path: path.to_string(),
                ..Default::default()
            };
            let mut n = p.next()?;
            if n.str() == Some("directory") {
                f.is_directory = true;
                n = p.next()?;
            }
            if let Some(s) = n.str() {
                f.update_type = Some(match s {
                    "keep-old" => WritableFileUpdateType::KeepOld,
                    "manual" => WritableFileUpdateType::Manual,
                    "auto-merge" => WritableFileUpdateType::AutoMerge,
                    _ => return Err(p.err(n.at, "expected an update type")),
                });
            } else if n.is_end_of_item() {
                p.rewind(&n);
            } else {
                return Err(p.err(
                    n.at,
                    "expected 'directory', an update type, semicolon, new line or '}'",
                ));
            }
            out.push(f);
            Ok(())
        })
    }

    fn user_settings_files(&mut self, out: &mut Vec<UserSettingsFile>) -> Result<()> {
        self.list(false, |p, t| {
            let Some(path) = t.str() else {
                return Err(p.err(t.at, "expected string (a settings file path)"));
            };
            let mut f = UserSettingsFile {
                path: path.to_string(),
                ..Default::default()
            };
            let n = p.next()?;
            match n.str() {
                Some("directory") => f.is_directory = true,
                Some("template") => {
                    let (tpl, _) = p.string_value().map_err(|_| {
                        p.err(n.at, "expected string (a settings template file path)")
                    })?;
                    f.template = Some(tpl).filter(|s| !s.is_empty());
                }
                _ if n.is_end_of_item() => p.rewind(&n),
                _ => return Err(p.err(n.at, "expected 'template', semicolon, new line or '}'")),
            }
            out.push(f);
            Ok(())
        })
    }

    fn users(&mut self, out: &mut Vec<User>) -> Result<()> {
        self.list(false, |p, t| {
            let name = t
                .str()
                .filter(|s| valid_user_name(s))
                .ok_or_else(|| p.err(t.at, "expected a user name"))?;
            let mut u = User {
                name: name.to_string(),
                ..Default::default()
            };
            loop {
                let n = p.next()?;
                let Some(key) = n.str() else {
                    p.rewind(&n);
                    break;
                };
                let slot = match key {
                    "real-name" => &mut u.real_name,
                    "home" => &mut u.home,
                    "shell" => &mut u.shell,
                    "groups" => {
                        loop {
                            let g = p.next()?;
                            match g.str() {
                                Some(s) if valid_user_name(s) => u.groups.push(s.to_string()),
                                _ if g.is_end_of_item() => {
                                    p.rewind(&g);
                                    break;
                                }
                                _ => return Err(p.err(g.at, "expected a group name")),
                            }
                        }
                        break;
                    }
                    _ => {
                        return Err(
                            p.err(n.at, "expected 'real-name', 'home', 'shell', or 'groups'")
                        )
                    }
                };
                let v = p.next()?;
                let Some(s) = v.str() else {
                    return Err(p.err(v.at, format!("expected string (the user's {key})")));
                };
                *slot = Some(s.to_string()).filter(|s| !s.is_empty());
            }
            // The attribute loop stops at the end of the item, so what follows
            // must end it.
            let n = p.next()?;
            if !n.is_end_of_item() {
                return Err(p.err(n.at, "expected semicolon, new line or '}'"));
            }
            p.rewind(&n);
            out.push(u);
            Ok(())
        })
    }

    fn flags(&mut self) -> Result<PackageFlags> {
        let mut flags = 0u32;
        self.list(true, |p, t| {
            flags |= match t.str().map(str::to_ascii_lowercase).as_deref() {
                Some("approve_license") => PackageFlags::APPROVE_LICENSE,
                Some("system_package") => PackageFlags::SYSTEM_PACKAGE,
                _ => {
                    return Err(p.err(t.at, "expected 'approve_license' or 'system_package'"));
                }
            };
            Ok(())
        })?;
        Ok(PackageFlags(flags))
    }

    fn parse_all(&mut self) -> Result<PackageInfo> {
        let mut info = PackageInfo::default();
        let mut seen = [false; KEYS.len()];
        loop {
            let t = self.next()?;
            let key = match &t.tok {
                Tok::Eof => break,
                Tok::Sep => continue,
                Tok::Str(s) => s.to_ascii_lowercase(),
                _ => return Err(self.err(t.at, "expected string (a variable name)")),
            };
            let Some(index) = KEYS.iter().position(|k| *k == key) else {
                return Err(self.err(t.at, format!("unknown attribute {key:?}")));
            };
            if seen[index] {
                return Err(self.err(t.at, format!("{} already seen", KEYS[index])));
            }
            seen[index] = true;
            match KEYS[index] {
                "name" => {
                    let (name, at) = self.string_value()?;
                    if let Some(i) = valid_resolvable_name(&name) {
                        return Err(self.err(at + i, "invalid character in package name"));
                    }
                    info.name = name.to_ascii_lowercase();
                }
                "summary" => {
                    let (s, _) = self.string_value()?;
                    if s.contains('\n') {
                        return Err(self.err(t.at, "the summary contains linebreaks"));
                    }
                    info.summary = s;
                }
                "description" => info.description = self.string_value()?.0,
                "vendor" => info.vendor = self.string_value()?.0,
                "packager" => info.packager = self.string_value()?.0,
                "base-package" => info.base_package = Some(self.string_value()?.0),
                "checksum" => info.checksum = Some(self.string_value()?.0),
                "install-path" => info.install_path = Some(self.string_value()?.0),
                "architecture" => {
                    let a = self.next()?;
                    info.architecture = a
                        .str()
                        .and_then(|s| Architecture::parse(&s.to_ascii_lowercase()))
                        .ok_or_else(|| {
                            let names: Vec<_> = (0..)
                                .map_while(Architecture::from_code)
                                .map(Architecture::name)
                                .collect();
                            self.err(
                                a.at,
                                format!("architecture must be one of: [{}]", names.join(",")),
                            )
                        })?;
                }
                "version" => info.version = self.version(true)?,
                "copyrights" => self.string_list(&mut info.copyrights, false)?,
                "licenses" => self.string_list(&mut info.licenses, false)?,
                "urls" => self.string_list(&mut info.urls, false)?,
                "source-urls" => self.string_list(&mut info.source_urls, false)?,
                "groups" => self.string_list(&mut info.groups, false)?,
                "post-install-scripts" => {
                    self.string_list(&mut info.post_install_scripts, false)?
                }
                "pre-uninstall-scripts" => {
                    self.string_list(&mut info.pre_uninstall_scripts, false)?
                }
                "replaces" => self.string_list(&mut info.replaces, true)?,
                "provides" => self.provides(&mut info.provides)?,
                "requires" => {
                    // As in Haiku, `requires` decides the base package anew.
                    info.base_package = None;
                    self.requirements(&mut info.requires, Some(&mut info.base_package))?;
                }
                "supplements" => self.requirements(&mut info.supplements, None)?,
                "conflicts" => self.requirements(&mut info.conflicts, None)?,
                "freshens" => self.requirements(&mut info.freshens, None)?,
                "flags" => info.flags = self.flags()?,
                "global-writable-files" => {
                    self.global_writable_files(&mut info.global_writable_files)?
                }
                "user-settings-files" => self.user_settings_files(&mut info.user_settings_files)?,
                "users" => self.users(&mut info.users)?,
                other => return Err(self.err(t.at, format!("unhandled attribute {other:?}"))),
            }
        }
        let missing: Vec<&'static str> = REQUIRED_FIELDS
            .iter()
            .zip(seen)
            .filter(|(_, seen)| !seen)
            .map(|(key, _)| *key)
            .collect();
        if !missing.is_empty() {
            return Err(Error::PackageInfoMissing { fields: missing });
        }
        Ok(info)
    }
}

/// Whether `s` can be written without quotes and read back as itself.
fn is_bare(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| !is_space(b) && !b"{}<=!>\"'\\".contains(&b))
        && !s.starts_with(['#', ';'])
}

/// Quote `s` for the text format.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `s` bare if possible, quoted otherwise.
fn word(s: &str) -> String {
    if is_bare(s) {
        s.to_string()
    } else {
        quote(s)
    }
}

fn block(out: &mut String, key: &str, items: impl IntoIterator<Item = String>, always: bool) {
    let items: Vec<String> = items.into_iter().collect();
    if items.is_empty() && !always {
        return;
    }
    out.push_str(key);
    out.push_str(" {\n");
    for i in items {
        out.push('\t');
        out.push_str(&i);
        out.push('\n');
    }
    out.push_str("}\n");
}

fn requirement(r: &Requirement, base: bool) -> String {
    let mut s = word(&r.name);
    if let (Some(op), Some(v)) = (r.operator, &r.version) {
        let _ = write!(s, " {op} {v}");
        if base {
            s.push_str(" base");
        }
    }
    s
}

/// Write `info` in the `.PackageInfo` syntax. Free text is always quoted;
/// the base package is marked with `base` on its versioned `requires`
/// item, or written as `base-package` when it has none.
///
/// Not expressible, hence not preserved by a round trip: unknown flag bits,
/// a settings file that is both a directory and has a template (Haiku's model
/// has no such thing; the template is dropped), and empty optional strings
/// (`Some("")` reads back as `None`, as Haiku treats them).
pub fn format(info: &PackageInfo) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "name\t\t\t{}", word(&info.name));
    let _ = writeln!(out, "version\t\t\t{}", info.version);
    let _ = writeln!(out, "architecture\t{}", info.architecture);
    let _ = writeln!(out, "summary\t\t\t{}", quote(&info.summary));
    let _ = writeln!(out, "description\t\t{}", quote(&info.description));
    let _ = writeln!(out, "packager\t\t{}", quote(&info.packager));
    let _ = writeln!(out, "vendor\t\t\t{}", quote(&info.vendor));
    let quoted = |v: &[String]| v.iter().map(|s| quote(s)).collect::<Vec<_>>();
    block(&mut out, "copyrights", quoted(&info.copyrights), true);
    block(&mut out, "licenses", quoted(&info.licenses), true);
    block(&mut out, "urls", quoted(&info.urls), false);
    block(&mut out, "source-urls", quoted(&info.source_urls), false);
    block(&mut out, "flags", info.flags.names(), false);
    block(
        &mut out,
        "provides",
        info.provides.iter().map(|p| {
            let mut s = word(&p.name);
            if let Some(v) = &p.version {
                let _ = write!(s, " = {v}");
            }
            if let Some(c) = &p.compatible {
                let _ = write!(s, " compat >= {c}");
            }
            s
        }),
        true,
    );
    let base_marked = info.base_package.as_ref().and_then(|b| {
        info.requires
            .iter()
            .position(|r| &r.name == b && r.version.is_some() && r.operator.is_some())
    });
    block(
        &mut out,
        "requires",
        info.requires
            .iter()
            .enumerate()
            .map(|(i, r)| requirement(r, Some(i) == base_marked)),
        false,
    );
    if let (Some(b), None) = (&info.base_package, base_marked) {
        let _ = writeln!(out, "base-package\t{}", word(b));
    }
    for (key, list) in [
        ("supplements", &info.supplements),
        ("conflicts", &info.conflicts),
        ("freshens", &info.freshens),
    ] {
        block(
            &mut out,
            key,
            list.iter().map(|r| requirement(r, false)),
            false,
        );
    }
    block(
        &mut out,
        "replaces",
        info.replaces.iter().map(|s| word(s)),
        false,
    );
    block(
        &mut out,
        "global-writable-files",
        info.global_writable_files.iter().map(|f| {
            let mut s = quote(&f.path);
            if f.is_directory {
                s.push_str(" directory");
            }
            if let Some(t) = f.update_type {
                let _ = write!(s, " {}", t.name());
            }
            s
        }),
        false,
    );
    block(
        &mut out,
        "user-settings-files",
        info.user_settings_files.iter().map(|f| {
            let mut s = quote(&f.path);
            if f.is_directory {
                s.push_str(" directory");
            } else if let Some(t) = f.template.as_deref().filter(|t| !t.is_empty()) {
                let _ = write!(s, " template {}", quote(t));
            }
            s
        }),
        false,
    );
    block(
        &mut out,
        "users",
        info.users.iter().map(|u| {
            let mut s = word(&u.name);
            for (key, v) in [
                ("real-name", &u.real_name),
                ("home", &u.home),
                ("shell", &u.shell),
            ] {
                if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                    let _ = write!(s, " {key} {}", quote(v));
                }
            }
            if !u.groups.is_empty() {
                s.push_str(" groups");
                for g in &u.groups {
                    let _ = write!(s, " {}", word(g));
                }
            }
            s
        }),
        false,
    );
    block(
        &mut out,
        "groups",
        info.groups.iter().map(|g| word(g)),
        false,
    );
    block(
        &mut out,
        "post-install-scripts",
        quoted(&info.post_install_scripts),
        false,
    );
    block(
        &mut out,
        "pre-uninstall-scripts",
        quoted(&info.pre_uninstall_scripts),
        false,
    );
    if let Some(c) = &info.checksum {
        let _ = writeln!(out, "checksum\t\t{}", quote(c));
    }
    if let Some(p) = &info.install_path {
        let _ = writeln!(out, "install-path\t{}", quote(p));
    }
    out
}
