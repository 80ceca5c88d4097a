//! `pkgctl contents`: the entries of a package, one per line.

use std::path::PathBuf;

use hpkg_format::{EntryId, EntryKind, Package};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::chunk_cache::RecentChunks;
use crate::error::Result;
use crate::input::{self, Input};
use crate::output::{lossy, mode_string, time_string, type_code, Out};
use crate::stream::{self, PieceBuf};

/// List the files, directories and symlinks in a package.
///
/// Prints one line per entry in package order (a directory before its
/// contents), like `ls -l`: mode, size in bytes (a symlink's is the length of
/// its target), modification time in UTC, path, and `-> target` for
/// symlinks. Paths are relative to the package root; bytes that are not UTF-8
/// show as U+FFFD.
///
/// With --json, prints one JSON object per line (stable; new keys may be
/// added), in the shape of the golden `*.expected.jsonl` listings:
///
///   {"path": "bin/tool",
///    "entry": {"type": "file",          "file", "dir" or "symlink"
///              "mode": "755",           permission bits in octal (with setuid,
///                                       setgid, sticky), type defaults applied
///              "size": 3000,            content bytes of a file; 0 otherwise
///              "link": null,            a symlink's target; null otherwise
///              "mtime": 1767323045,     seconds since 1970-01-01 UTC
///              "mtime_nsec": 0,
///              "xattrs": {              only when the entry has attributes
///                "BEOS:TYPE": {"type": "MIMS", "size": 31}}}}
///
/// An attribute's "type" is its Haiku type code: four characters when they
/// are printable, else "0x" and 8 hex digits. Attributes are listed whatever
/// their size and on any kind of entry, as the package holds them.
///
/// --sha256 (with --json) also reads every payload and adds "sha256" (hex
/// SHA-256 of the content) to each entry (null for directories and symlinks)
/// and to each attribute. This decompresses the whole package.
///
/// Examples:
///
///   pkgctl contents tipster-1.1.1-1-x86_64.hpkg
///   pkgctl contents --json --sha256 tipster-1.1.1-1-x86_64.hpkg | jq -r .entry.sha256
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The package file.
    pub package: PathBuf,
    /// Print one JSON object per entry instead of text.
    #[arg(long)]
    pub json: bool,
    /// With --json: add SHA-256 hashes of file and attribute contents.
    #[arg(long, requires = "json")]
    pub sha256: bool,
}

/// Run `pkgctl contents`.
pub fn run(args: &Args) -> Result<()> {
    let mut out = Out::new();
    match input::open(&args.package)? {
        Input::Package(pkg) => {
            if args.json {
                list_json(&mut out, &pkg, args.sha256)?;
            } else {
                list_text(&mut out, &pkg)?;
            }
        }
        Input::Repository(repo) => {
            for p in &repo.packages {
                if args.json {
                    #[derive(Serialize)]
                    struct Line<'a> {
                        name: &'a str,
                        version: String,
                        architecture: &'static str,
                        summary: &'a str,
                        checksum: Option<&'a str>,
                    }
                    out.json_line(&Line {
                        name: &p.name,
                        version: p.version.to_string(),
                        architecture: p.architecture.name(),
                        summary: &p.summary,
                        checksum: p.checksum.as_deref(),
                    })?;
                } else {
                    out.line(format_args!(
                        "{}-{}-{}\t{}",
                        p.name, p.version, p.architecture, p.summary
                    ))?;
                }
            }
        }
    }
    out.finish()
}

/// Visit every entry with its path; stops at the first error.
fn walk(pkg: &Package, mut visit: impl FnMut(&[u8], EntryId) -> Result<()>) -> Result<()> {
    let mut result = Ok(());
    pkg.toc().walk(|path, id| {
        if result.is_ok() {
            result = visit(path, id);
        }
    });
    result
}

fn list_text(out: &mut Out, pkg: &Package) -> Result<()> {
    let toc = pkg.toc();
    walk(pkg, |path, id| {
        let e = toc.entry(id);
        let (secs, nanos) = e.mtime();
        let mut line = format!(
            "{} {:>10} {} {}",
            mode_string(e.kind(), e.mode()),
            e.size(),
            time_string(secs, nanos),
            lossy(path)
        );
        if e.kind() == EntryKind::Symlink {
            line += " -> ";
            line += &lossy(toc.symlink_target(id));
        }
        out.line(line)
    })
}

fn list_json(out: &mut Out, pkg: &Package, sha256: bool) -> Result<()> {
    let toc = pkg.toc();
    let cache = RecentChunks::new();
    let mut buf = PieceBuf::new();
    walk(pkg, |path, id| {
        let e = toc.entry(id);
        let (secs, nanos) = e.mtime();
        let mut entry = json!({
            "type": e.kind().name(),
            "mode": format!("{:o}", e.mode()),
            "size": if e.kind() == EntryKind::File { e.size() } else { 0 },
            "link": match e.kind() {
                EntryKind::Symlink => json!(lossy(toc.symlink_target(id))),
                _ => Value::Null,
            },
            "mtime": secs,
            "mtime_nsec": nanos,
        });
        if sha256 {
            entry["sha256"] = match e.kind() {
                EntryKind::File => json!(stream::sha256(pkg, toc.data(id), &cache, &mut buf)?),
                _ => Value::Null,
            };
        }
        let attrs = toc.attrs(id);
        if !attrs.is_empty() {
            let mut map = Map::new();
            for a in attrs {
                let mut v = json!({"type": type_code(a.type_code()), "size": a.size()});
                if sha256 {
                    v["sha256"] = json!(stream::sha256(pkg, toc.attr_data(a), &cache, &mut buf)?);
                }
                map.insert(lossy(toc.attr_name(a)).into_owned(), v);
            }
            entry["xattrs"] = Value::Object(map);
        }
        out.json_line(&json!({"path": lossy(path), "entry": entry}))
    })
}
