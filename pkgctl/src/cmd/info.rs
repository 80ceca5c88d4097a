//! `pkgctl info`: a package's metadata and the facts of its file.

use std::path::PathBuf;

use hpkg_format::{Package, PackageInfo};
use serde::Serialize;

use crate::deb::kept::{self, DebianFacts};
use crate::error::Result;
use crate::input::{self, Input};
use crate::output::Out;

/// Show what a package says about itself.
///
/// Prints the package attributes (name, version, architecture, summary,
/// description, vendor, packager, flags, copyrights, licenses, URLs, provides,
/// requires, supplements, conflicts, freshens, replaces, base package, install
/// path, writable files, settings files, users, groups, scripts, checksum),
/// the way Haiku's `package list -i` does, after the facts of the file
/// (format version, compression, heap sizes, entry count). Attributes a
/// package does not have are left out. Packages made by `pkgctl import-deb`
/// also show their Debian version, the maintainer scripts they carry (not
/// run), the files of their .DEBIAN/ directory and whether they were
/// imported with --merge-usr ("merged /usr: yes").
///
/// With --json, prints one JSON object (stable; new keys may be added):
///
///   {
///     "format": {
///       "kind": "hpkg",
///       "version": 2,                     major format version
///       "minor_version": 1,
///       "compression": "zstd",            "none", "zlib" or "zstd"
///       "file_size": 4559,                bytes
///       "heap_size": 5220,                uncompressed heap, bytes
///       "heap_size_stored": 4479,         heap as stored (chunks + table)
///       "chunk_count": 1,                 64 KiB chunks
///       "entries": 15                     files, directories and symlinks
///     },
///     "info": {
///       "name": "ref_metadata",
///       "summary": "...", "description": "...", "vendor": "...", "packager": "...",
///       "flags": ["approve_license", "system_package"],
///       "architecture": "x86_64",
///       "version": {"major": "3", "minor": "14", "micro": "159",
///                   "prerelease": "beta2", "revision": 7},
///       "copyrights": [..], "licenses": [..], "urls": [..], "source_urls": [..],
///       "provides": [{"name": "lib:libfoo", "version": VERSION or null,
///                     "compatible": VERSION or null}],
///       "requires": [{"name": "haiku", "operator": ">=" or null,
///                     "version": VERSION or null}],
///       "supplements": [..], "conflicts": [..], "freshens": [..]   (as requires),
///       "replaces": ["name", ..],
///       "base_package": "name" or null,
///       "install_path": "path" or null,
///       "global_writable_files": [{"path": "..", "update_type": "keep-old",
///           "manual" or "auto-merge" or null, "is_directory": false}],
///       "user_settings_files": [{"path": "..", "template": "path" or null,
///           "is_directory": false}],
///       "users": [{"name": "..", "real_name": .. or null, "home": .. or null,
///                  "shell": .. or null, "groups": [..]}],
///       "groups": [..],
///       "post_install_scripts": [..], "pre_uninstall_scripts": [..],
///       "checksum": "sha256 hex" or null
///     },
///     "debian": null, or for packages made by `pkgctl import-deb`:
///       {"version": "1:4.13+dfsg1-1+deb12u2",   Debian's Version field
///        "maintainer_scripts": ["preinst", "postinst", ..],   never run
///        "control_files": ["control", "md5sums", ..],   in .DEBIAN/
///        "merged_usr": false}          imported with --merge-usr
///   }
///
/// A VERSION is an object as under "info.version"; empty parts are "" and
/// revision 0 means none. Operators are "<", "<=", "==", "!=", ">=", ">".
///
/// Example:
///
///   pkgctl info tipster-1.1.1-1-x86_64.hpkg
///   pkgctl info --json tipster-1.1.1-1-x86_64.hpkg | jq -r .info.version
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The package file.
    pub package: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The facts of a package file, as `--json` shows them under "format".
#[derive(Debug, Serialize)]
struct Format {
    kind: &'static str,
    version: u16,
    minor_version: u16,
    compression: &'static str,
    file_size: u64,
    heap_size: u64,
    heap_size_stored: u64,
    chunk_count: u64,
    entries: usize,
}

impl Format {
    fn of(pkg: &Package) -> Format {
        let heap = pkg.heap();
        Format {
            kind: "hpkg",
            version: hpkg_format::header::FORMAT_VERSION,
            minor_version: pkg.minor_version(),
            compression: heap.compression().name(),
            file_size: pkg.file_size(),
            heap_size: heap.size(),
            heap_size_stored: heap.compressed_size(),
            chunk_count: heap.chunk_count(),
            entries: pkg.toc().len(),
        }
    }
}

/// Run `pkgctl info`.
pub fn run(args: &Args) -> Result<()> {
    let mut out = Out::new();
    match input::open(&args.package)? {
        Input::Package(pkg) => {
            let format = Format::of(&pkg);
            if args.json {
                #[derive(Serialize)]
                struct Doc<'a> {
                    format: &'a Format,
                    info: &'a PackageInfo,
                    debian: Option<DebianFacts>,
                }
                out.json_pretty(&Doc {
                    format: &format,
                    info: pkg.info(),
                    debian: kept::of(&pkg),
                })?;
            } else {
                write_format(&mut out, &args.package, &format)?;
                write_info(&mut out, pkg.info())?;
                if let Some(d) = kept::of(&pkg) {
                    out.line("debian:")?;
                    out.line(format_args!("	Debian version: {}", d.version))?;
                    if !d.maintainer_scripts.is_empty() {
                        out.line(format_args!(
                            "	Maintainer scripts (not run): {}",
                            d.maintainer_scripts.join(" ")
                        ))?;
                    }
                    out.line(format_args!(
                        "	control files: {}",
                        d.control_files.join(" ")
                    ))?;
                    out.line(format_args!(
                        "	merged /usr: {}",
                        if d.merged_usr { "yes" } else { "no" }
                    ))?;
                }
            }
        }
        Input::Repository(repo) => {
            if args.json {
                #[derive(Serialize)]
                struct Doc<'a> {
                    repository: &'a hpkg_format::repo::RepositoryInfo,
                    minor_version: u16,
                    compression: &'static str,
                    file_size: u64,
                    packages: usize,
                }
                out.json_pretty(&Doc {
                    repository: &repo.info,
                    minor_version: repo.minor_version,
                    compression: repo.compression.name(),
                    file_size: repo.file_size,
                    packages: repo.packages.len(),
                })?;
            } else {
                let i = &repo.info;
                out.line(format_args!("repository file: {}", args.package.display()))?;
                out.line(format_args!(
                    "\tformat: hpkr 2.{}, {}",
                    repo.minor_version, repo.compression
                ))?;
                out.line(format_args!("\tname: {}", i.name))?;
                out.line(format_args!("\tidentifier: {}", i.identifier))?;
                if let Some(base) = &i.base_url {
                    out.line(format_args!("\tbase url: {base}"))?;
                }
                out.line(format_args!("\tvendor: {}", i.vendor))?;
                out.line(format_args!("\tsummary: {}", i.summary))?;
                out.line(format_args!("\tpriority: {}", i.priority))?;
                out.line(format_args!("\tarchitecture: {}", i.architecture))?;
                for l in &i.licenses {
                    out.line(format_args!("\tlicense: {}", l.name))?;
                }
                out.line(format_args!("\tpackages: {}", repo.packages.len()))?;
            }
        }
    }
    out.finish()
}

fn write_format(out: &mut Out, path: &std::path::Path, f: &Format) -> Result<()> {
    out.line(format_args!("package file: {}", path.display()))?;
    out.line(format_args!(
        "\tformat: {} {}.{}",
        f.kind, f.version, f.minor_version
    ))?;
    out.line(format_args!("\tcompression: {}", f.compression))?;
    out.line(format_args!("\tfile size: {}", f.file_size))?;
    out.line(format_args!(
        "\theap: {} bytes, {} stored, {} chunk{}",
        f.heap_size,
        f.heap_size_stored,
        f.chunk_count,
        if f.chunk_count == 1 { "" } else { "s" }
    ))?;
    out.line(format_args!("\tentries: {}", f.entries))
}

/// Print package attributes in the layout of Haiku's `package list -i`.
pub fn write_info(out: &mut Out, info: &PackageInfo) -> Result<()> {
    out.line("package-attributes:")?;
    out.line(format_args!("\tname: {}", info.name))?;
    out.line(format_args!("\tversion: {}", info.version))?;
    out.line(format_args!("\tarchitecture: {}", info.architecture))?;
    for (label, value) in [
        ("summary", &info.summary),
        ("description", &info.description),
        ("vendor", &info.vendor),
        ("packager", &info.packager),
    ] {
        if !value.is_empty() {
            out.line(format_args!("\t{label}: {value}"))?;
        }
    }
    if let Some(b) = &info.base_package {
        out.line(format_args!("\tbase package: {b}"))?;
    }
    if let Some(p) = &info.install_path {
        out.line(format_args!("\tinstall path: {p}"))?;
    }
    let flags = info.flags.names();
    if !flags.is_empty() {
        out.line("\tflags:")?;
        for f in flags {
            out.line(format_args!("\t\t{f}"))?;
        }
    }
    for (label, list) in [
        ("copyright", &info.copyrights),
        ("license", &info.licenses),
        ("URL", &info.urls),
        ("source URL", &info.source_urls),
    ] {
        for v in list {
            out.line(format_args!("\t{label}: {v}"))?;
        }
    }
    for p in &info.provides {
        let mut line = format!("\tprovides: {}", p.name);
        if let Some(v) = &p.version {
            line += &format!(" = {v}");
        }
        if let Some(c) = &p.compatible {
            line += &format!(" (compatible >= {c})");
        }
        out.line(line)?;
    }
    for (label, list) in [
        ("requires", &info.requires),
        ("supplements", &info.supplements),
        ("conflicts", &info.conflicts),
        ("freshens", &info.freshens),
    ] {
        for r in list {
            out.line(format_args!("\t{label}: {r}"))?;
        }
    }
    for r in &info.replaces {
        out.line(format_args!("\treplaces: {r}"))?;
    }
    for f in &info.global_writable_files {
        let mut line = format!("\tglobal writable file: {}", f.path);
        if f.is_directory {
            line.push('/');
        }
        if let Some(u) = f.update_type {
            line += &format!(" ({})", u.name());
        }
        out.line(line)?;
    }
    for f in &info.user_settings_files {
        let mut line = format!("\tuser settings file: {}", f.path);
        if f.is_directory {
            line.push('/');
        }
        if let Some(t) = &f.template {
            line += &format!(" (template: {t})");
        }
        out.line(line)?;
    }
    for u in &info.users {
        out.line(format_args!("\tuser: {}", u.name))?;
        for (label, value) in [
            ("real name", &u.real_name),
            ("home", &u.home),
            ("shell", &u.shell),
        ] {
            if let Some(v) = value {
                out.line(format_args!("\t\t{label}: {v}"))?;
            }
        }
        if !u.groups.is_empty() {
            out.line("\t\tgroups:")?;
            for g in &u.groups {
                out.line(format_args!("\t\t\t{g}"))?;
            }
        }
    }
    for g in &info.groups {
        out.line(format_args!("\tgroup: {g}"))?;
    }
    for s in &info.post_install_scripts {
        out.line(format_args!("\tpost-install script: {s}"))?;
    }
    for s in &info.pre_uninstall_scripts {
        out.line(format_args!("\tpre-uninstall script: {s}"))?;
    }
    if let Some(c) = &info.checksum {
        out.line(format_args!("\tchecksum: {c}"))?;
    }
    Ok(())
}
