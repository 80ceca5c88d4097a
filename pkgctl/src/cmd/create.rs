//! `pkgctl create` and `pkgctl recompress`: build a package from a directory
//! tree, or re-encode an existing one.

use std::path::PathBuf;

use clap::ValueEnum;
use hpkg_format::writer::{create_from_dir, rewrite, WriteOptions, WriteStats};
use hpkg_format::{info_text, Compression, Package};

use crate::error::{CliError, Result, WithPath};
use crate::output::warn;

/// Heap compression, as the command line spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompressionArg {
    /// Zstandard frames per 64 KiB chunk (Haiku since 2018).
    Zstd,
    /// zlib streams per chunk (every Haiku reads these).
    Zlib,
    /// Stored verbatim.
    None,
}

impl From<CompressionArg> for Compression {
    fn from(c: CompressionArg) -> Compression {
        match c {
            CompressionArg::Zstd => Compression::Zstd,
            CompressionArg::Zlib => Compression::Zlib,
            CompressionArg::None => Compression::None,
        }
    }
}

/// How to compress, shared by `create` and `recompress`.
#[derive(Debug, clap::Args)]
pub struct Encoding {
    /// Heap compression.
    #[arg(long, short = 'z', value_enum, default_value = "zstd")]
    pub compression: CompressionArg,
    /// Compression level on Haiku's 0–9 scale (zlib 0–9; zstd level × 22 / 9).
    #[arg(long, short = 'l', default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub level: u32,
}

impl Encoding {
    /// The writer's options (with `SOURCE_DATE_EPOCH` applied).
    pub fn options(&self) -> WriteOptions {
        WriteOptions {
            compression: self.compression.into(),
            level: self.level,
            source_date_epoch: None,
        }
        .from_env()
    }
}

/// Build a package from a directory tree.
///
/// Every file, directory and symlink under DIR goes into the package with
/// its permission bits (setuid included), modification time, and Linux
/// `user.*` extended attributes as Haiku file attributes. Hard links become
/// separate files; device nodes, FIFOs and sockets are refused.
///
/// The package metadata comes from --info FILE, or else from DIR/.PackageInfo,
/// in Haiku's `.PackageInfo` syntax (name, version with revision,
/// architecture, summary, description, packager, vendor, copyrights,
/// licenses, provides, and optionally requires, conflicts, ...). A top-level
/// `.PackageInfo` in DIR is packaged too, as Haiku does.
///
/// The output is reproducible: the same tree, info and options give the same
/// bytes. When SOURCE_DATE_EPOCH is set, times newer than it are clamped to
/// it. The package is written to a temporary file beside PKG, synced, and
/// renamed into place: PKG is never left half-written.
///
/// Example:
///
///   pkgctl create ./hello-1.0 -o hello-1.0-1-x86_64.hpkg --compression zstd --level 9
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct CreateArgs {
    /// The directory tree to package.
    pub dir: PathBuf,
    /// The package file to write.
    #[arg(short, long, value_name = "PKG")]
    pub output: PathBuf,
    /// Package metadata in `.PackageInfo` syntax (default: DIR/.PackageInfo).
    #[arg(long, value_name = "FILE")]
    pub info: Option<PathBuf>,
    #[command(flatten)]
    pub encoding: Encoding,
    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Re-encode a package, e.g. with another compression.
///
/// Every entry and every attribute is kept exactly, including Haiku
/// attributes larger than Linux's 64 KiB limit, which a round trip through
/// `extract` and `create` would lose.
///
/// Example:
///
///   pkgctl recompress app-1.0-1-x86_64.hpkg -o app-zlib.hpkg --compression zlib
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct RecompressArgs {
    /// The package to read.
    pub package: PathBuf,
    /// The package file to write (may be the same file).
    #[arg(short, long, value_name = "PKG")]
    pub output: PathBuf,
    #[command(flatten)]
    pub encoding: Encoding,
    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Run `pkgctl create`.
pub fn create(args: &CreateArgs) -> Result<()> {
    let info_path = args
        .info
        .clone()
        .unwrap_or_else(|| args.dir.join(".PackageInfo"));
    if !args.dir.is_dir() {
        return Err(CliError::refused(&args.dir, "not a directory"));
    }
    let text = std::fs::read_to_string(&info_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound && args.info.is_none() {
            CliError::refused(
                &info_path,
                "no package info: write a .PackageInfo in the tree or pass --info FILE",
            )
        } else {
            CliError::io(&info_path, e)
        }
    })?;
    let info = info_text::parse(&text).map_err(|e| e.in_file(&info_path))?;
    let mut on_warning = |w: &str| warn(format_args!("{}: {w}", args.dir.display()));
    let stats = create_from_dir(
        &args.dir,
        &info,
        &args.output,
        &args.encoding.options(),
        &mut on_warning,
    )
    .map_err(|e| match e {
        // What the info says is wrong: name the info file.
        e @ hpkg_format::Error::InvalidInfo(_) => e.in_file(&info_path),
        e => e,
    })?;
    tracing::info!(
        "wrote {} ({} bytes)",
        args.output.display(),
        stats.file_size
    );
    if !args.quiet {
        report(&args.output, &stats, args.encoding.compression);
    }
    Ok(())
}

/// Run `pkgctl recompress`.
pub fn recompress(args: &RecompressArgs) -> Result<()> {
    let pkg = Package::open(&args.package)?;
    // Make sure the output's directory exists before spending time encoding.
    if let Some(parent) = args.output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::metadata(parent).at(parent)?;
    }
    let stats = rewrite(&pkg, &args.output, &args.encoding.options())?;
    tracing::info!(
        "wrote {} ({} bytes)",
        args.output.display(),
        stats.file_size
    );
    if !args.quiet {
        report(&args.output, &stats, args.encoding.compression);
    }
    Ok(())
}

fn report(out: &std::path::Path, s: &WriteStats, c: CompressionArg) {
    let c: Compression = c.into();
    eprintln!(
        "pkgctl: wrote {}: {} entries ({} files), heap {} bytes, file {} bytes ({c})",
        out.display(),
        s.entries,
        s.files,
        s.heap_size,
        s.file_size
    );
    for skipped in &s.skipped {
        warn(format_args!("{}: skipped {skipped}", out.display()));
    }
}
