//! `pkgctl import-deb`: turn Debian packages into Haiku packages, in a
//! batch, with a progress bar on a terminal and a summary line.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use hpkg_format::writer::create_from_tree;
use hpkg_format::Package;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cmd::create::Encoding;
use crate::deb::convert::{self, Loaded, Providers};
use crate::deb::{archive, usrmerge, Error as DebError, ErrorKind};
use crate::error::{CliError, Result};

/// Turn Debian binary packages (.deb) into Haiku packages (.hpkg).
///
/// Each PKG.deb becomes DIR/<name>-<version>-<arch>.hpkg, where <name> is
/// the Debian name with `-` turned into `_`, <version> the Debian version
/// without its epoch, and <arch> the Haiku architecture (e.g.
/// python3.11_minimal-3.11.2-6+deb12u2-x86_64.hpkg). Two .debs of one batch
/// that would write the same file are refused (the later one fails). Each
/// package is written atomically; a .deb that fails is reported on standard
/// error (file and reason) and the batch goes on. At the end one summary line
/// goes to standard error; the exit status is 1 if any .deb failed. A
/// progress bar is shown when standard error is a terminal.
///
/// Contents: the data member as it is (modes with setuid/setgid/sticky,
/// symlinks, modification times in seconds; hard links become separate
/// files with the same content, mode and time; device nodes and FIFOs are refused; `..` and absolute paths are
/// refused). The control member's files (control, md5sums, conffiles,
/// preinst, postinst, prerm, postrm, config, triggers, shlibs, symbols ...)
/// go into a top-level .DEBIAN/ directory with their modes; maintainer
/// scripts are never run. A generated .PackageInfo goes at the top. The
/// mount hides .DEBIAN and .PackageInfo; `pkgctl extract` writes them.
///
/// Metadata:
///   Package       name, `-` -> `_` (one-to-one: Debian names have no `_`)
///   Version       version, mapped so that Haiku's order is dpkg's order:
///                 major = epoch; micro = enc(upstream) enc(revision);
///                 minor = micro's leading number (0 if it starts with `..`,
///                 `_` if with a letter); revision 1. enc writes each
///                 (non-digits, digits) pair as the non-digits then the
///                 number (0 if none) and ends with `._`; non-digits:
///                 `~`->`..`, A-Z->`_a`-`_z`, a-y as is, `z`->`za`,
///                 `+`->`zb`, `-`->`zc`, `.`->`zd`, `:`->`ze`. Examples:
///                   2.36-9+deb12u4     0.2.2zd36._9zbdeb12u4._-1
///                   1:2.0              1.2.2zd0._0._-1
///                   1.0~rc1-1          0.1.1zd0..rc1._1._-1
///                   3.11.2-6+deb12u2   0.3.3zd11zd2._6zbdeb12u2._-1
///                   0.9.8~git20200101  0.0.0zd9zd8..git20200101._0._-1
///                 The Debian version is kept in .DEBIAN/control and shown
///                 by `pkgctl info` as "Debian version".
///   Architecture  amd64->x86_64, i386->x86, arm64->arm64, armhf/armel->arm,
///                 riscv64->riscv64, all->any; others are an error
///   Description   first line -> summary; the rest -> description (` .` is a
///                 blank line, one-space lines are joined into paragraphs,
///                 deeper-indented lines kept); no extended part -> summary
///   Maintainer    packager ("unknown" if absent)
///   Origin        vendor (default "Debian")
///   Homepage      urls
///   (copyright)   copyrights: "see /usr/share/doc/<package>/copyright";
///                 licenses: the License: short names of that file if it is
///                 machine-readable (DEP-5), else the same "see ..." line
///   Depends, Pre-Depends
///                 requires; << -> <, <=, = -> ==, >=, >> -> > (obsolete < and
///                 > as <= and >=); :any/:native/:arch qualifiers dropped;
///                 an alternative whose [arch list] excludes the package's
///                 architecture is dropped; <build profiles> ignored.
///                 Alternatives `a | b`: the first one met by a package of
///                 this batch (by name or Provides), else by an .hpkg
///                 already in DIR, else the first one. The full relation
///                 stays in .DEBIAN/control.
///   Provides      provides (versioned provides keep their version); the
///                 package also provides itself at its version
///   Conflicts, Breaks
///                 conflicts, with operators as above
///   Replaces      replaces (names only)
///   Recommends, Suggests, Enhances and the rest are not mapped (they stay
///   in .DEBIAN/control).
///
/// Merged /usr (--merge-usr; off by default, when the tree is exactly what
/// `dpkg-deb -x` gives): lays the tree out as on a merged-/usr Debian
/// system (every bookworm install). Everything under a top-level bin/,
/// sbin/, lib/, lib32/, lib64/, libx32/, libo32/ moves to usr/<same>;
/// directories present both ways keep usr/'s mode and time; a file or
/// symlink present both ways is kept once if identical (type, contents or
/// target, mode), else that .deb fails naming both paths. Symlink targets
/// are kept (absolute ones work through the top-level links; a relative one
/// that would land elsewhere from its new place, which bookworm's packages
/// do not have, gets one more leading `../`). The top-level links bin ->
/// usr/bin, sbin -> usr/sbin, lib -> usr/lib, lib64 -> usr/lib64 (amd64
/// only, as debootstrap makes them) and a link for any other moved lib*
/// directory a package of the batch ships go into exactly one package:
/// usr-is-merged if it is in the batch, else base-files, else none (the
/// summary then says the root lacks them). So import a whole root in one
/// batch. Each package gets .DEBIAN/packagefs-merge-usr.
///
/// `pkgctl info` on an imported package adds "Debian version",
/// "Maintainer scripts (not run)" and "merged /usr"; with --json, a key
///   "debian": {"version": "2.36-9+deb12u4",
///              "maintainer_scripts": ["postinst", ...],
///              "control_files": ["control", "md5sums", ...],
///              "merged_usr": false}
/// (null for packages without .DEBIAN/control).
///
/// Example:
///
///   pkgctl import-deb /var/cache/apt/archives/*.deb -o /srv/hpkg
///   pkgctl import-deb --merge-usr /srv/debs/*.deb -o /srv/root-hpkg
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The Debian packages.
    #[arg(required = true, value_name = "PKG.deb")]
    pub debs: Vec<PathBuf>,
    /// The directory the packages are written to.
    #[arg(short = 'o', long = "output", value_name = "DIR", default_value = ".")]
    pub output: PathBuf,
    /// Lay the tree out as on a merged-/usr system (see above).
    #[arg(long)]
    pub merge_usr: bool,
    #[command(flatten)]
    pub encoding: Encoding,
}

/// The `.deb` read and checked, and the top-level directories of
/// [`usrmerge::MERGED_DIRS`] it ships; with `identity_only`, its data
/// entries are dropped once read (the first pass only learns what it is and
/// provides). The first pass reads the data member too, although that
/// decompresses each `.deb` twice (about half of the import time at `-l 1`):
/// a `.deb` with a broken data member must fail there, or it would claim an
/// output name and make a good `.deb` of the same name fail as a clash.
fn read_deb(
    path: &Path,
    identity_only: bool,
) -> std::result::Result<(Loaded, BTreeSet<String>), DebError> {
    let file = File::open(path).map_err(|e| ErrorKind::Io(e).at(path))?;
    let mut deb = archive::read(BufReader::new(file), false).map_err(|e| e.at(path))?;
    let shipped = usrmerge::shipped_dirs(&deb.data);
    if identity_only {
        deb.data = Vec::new();
    }
    let loaded = convert::load(deb).map_err(|e| e.at(path))?;
    Ok((loaded, shipped))
}

/// What the packages already in `dir` provide (unreadable files are skipped:
/// they are not this command's business).
fn existing_providers(dir: &Path) -> Vec<hpkg_format::Provides> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "hpkg"))
        .filter_map(|p| Package::open(&p).ok())
        .flat_map(|pkg| pkg.info().provides.clone())
        .collect()
}

/// Totals of the batch.
#[derive(Debug, Default)]
struct Totals {
    imported: usize,
    files: u64,
    deb_bytes: u64,
    hpkg_bytes: u64,
}

/// Import one `.deb` whose identity is known.
fn import_one(
    path: &Path,
    out: &Path,
    providers: &Providers,
    args: &Args,
    merge_usr: Option<&[String]>,
) -> std::result::Result<(u64, u64), DebError> {
    let (loaded, _) = read_deb(path, false)?;
    let info = convert::package_info(&loaded, providers).map_err(|e| e.at(path))?;
    let tree = convert::tree(loaded.deb, &info, merge_usr).map_err(|e| e.at(path))?;
    let stats = create_from_tree(tree, &info, out, &args.encoding.options())
        .map_err(|e| ErrorKind::Write(e).at(path))?;
    Ok((stats.files, stats.file_size))
}

/// Run `pkgctl import-deb`.
pub fn run(args: &Args) -> Result<()> {
    let start = Instant::now();
    fs::create_dir_all(&args.output).map_err(|e| CliError::io(&args.output, e))?;
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(args.debs.len() as u64 * 2);
        if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} {wide_msg}") {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let failed = AtomicUsize::new(0);
    let report = |e: &DebError| {
        failed.fetch_add(1, Ordering::Relaxed);
        bar.suspend(|| eprintln!("pkgctl: {e}"));
    };

    // Pass 1: what each .deb is and provides, and where it goes; a .deb that
    // cannot be read fails here, before it can claim an output name.
    let mut providers = Providers {
        batch: Vec::new(),
        existing: existing_providers(&args.output),
    };
    let mut jobs: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut outputs: HashMap<PathBuf, PathBuf> = HashMap::new();
    // For --merge-usr: the Debian name of each job, the batch's first
    // architecture other than `all`, and the merged directories shipped.
    let mut job_names: Vec<String> = Vec::new();
    let mut batch_arch: Option<String> = None;
    let mut shipped_dirs: BTreeSet<String> = BTreeSet::new();
    for path in &args.debs {
        bar.set_message(path.display().to_string());
        match read_deb(path, true) {
            Ok((l, shipped)) => {
                let name = format!(
                    "{}-{}-{}.hpkg",
                    convert::haiku_name(&l.deb_name),
                    l.version.without_epoch(),
                    l.arch
                );
                let out = args.output.join(name);
                if let Some(other) = outputs.get(&out) {
                    report(
                        &ErrorKind::OutputClash {
                            output: out,
                            other: other.clone(),
                        }
                        .at(path),
                    );
                } else {
                    outputs.insert(out.clone(), path.clone());
                    providers.batch.extend(l.provides);
                    jobs.push((path.clone(), out));
                    if batch_arch.is_none() && l.deb_arch != "all" {
                        batch_arch = Some(l.deb_arch.clone());
                    }
                    shipped_dirs.extend(shipped);
                    job_names.push(l.deb_name);
                }
            }
            Err(e) => report(&e),
        }
        bar.inc(1);
    }
    bar.set_length(args.debs.len() as u64 + jobs.len() as u64);

    // --merge-usr: which job carries the top-level links (module comment
    // of `deb::usrmerge`).
    let links = usrmerge::links(batch_arch.as_deref(), &shipped_dirs);
    let holder: Option<usize> = usrmerge::LINK_HOLDERS
        .iter()
        .find_map(|h| job_names.iter().position(|n| n == h));
    let no_links: &[String] = &[];
    let merge_usr = |i: usize| -> Option<&[String]> {
        args.merge_usr.then_some(if Some(i) == holder {
            links.as_slice()
        } else {
            no_links
        })
    };

    // Pass 2: convert and write, one package per worker thread at a time.
    let totals = Mutex::new(Totals::default());
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(jobs.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((path, out)) = jobs.get(i) else {
                    break;
                };
                bar.set_message(path.display().to_string());
                match import_one(path, out, &providers, args, merge_usr(i)) {
                    Ok((files, size)) => {
                        let deb_size = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
                        if let Ok(mut t) = totals.lock() {
                            t.imported += 1;
                            t.files += files;
                            t.deb_bytes += deb_size;
                            t.hpkg_bytes += size;
                        }
                    }
                    Err(e) => report(&e),
                }
                bar.inc(1);
            });
        }
    });
    bar.finish_and_clear();
    let t = totals.into_inner().unwrap_or_default();
    let failed = failed.into_inner();
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    eprintln!(
        "imported {} packages ({} files, {:.1} MiB → {:.1} MiB) in {:.1} s; {} failed",
        t.imported,
        t.files,
        mib(t.deb_bytes),
        mib(t.hpkg_bytes),
        start.elapsed().as_secs_f64(),
        failed
    );
    if args.merge_usr {
        match holder.and_then(|i| job_names.get(i)) {
            Some(name) => eprintln!(
                "merged /usr: top-level links {} in {}",
                links
                    .iter()
                    .map(|l| format!("{l} -> usr/{l}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                convert::haiku_name(name)
            ),
            None => eprintln!(
                "pkgctl: warning: merged /usr without the top-level links: neither {} is in \
                 the batch, so a root of these packages lacks /bin -> usr/bin and the others",
                usrmerge::LINK_HOLDERS.join(" nor ")
            ),
        }
    }
    if failed > 0 {
        return Err(CliError::ImportFailed {
            failed,
            total: args.debs.len(),
        });
    }
    Ok(())
}
