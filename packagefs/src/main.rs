//! The `packagefs` command: mount packages (a root's layers or package
//! files) read-only with FUSE, or unmount them.
//!
//! ```text
//! packagefs mount ROOT|PKG.hpkg... MOUNTPOINT [--layers system,common,user]
//!                 [--generation N|previous] [--cache-size BYTES] [--foreground]
//!                 [--shine-through var,tmp,...] [-o allow_other] [--log-file FILE] [-v]
//!                 [--exec-cache DIR [--exec-cache-size BYTES] [--exec-cache-opens N]]
//! packagefs unmount MOUNTPOINT            the mounts below it, then it
//! packagefs ROOT MOUNTPOINT -o OPTIONS      the form mount.fuse3 uses (fstab)
//! packagefs completions SHELL | man [-o DIR]
//! ```
//!
//! A subcommand name wins over the fstab form's ROOT: a root in a directory
//! literally named `mount`, `unmount`, `completions` or `man` must be given
//! as a path (`./man`, `/srv/man`), as fstab sources are anyway.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::{Args, Parser, Subcommand};

mod cli_error;

use cli_error::CliError;
use packagefs::daemon::{self, Readiness};
use packagefs::exec_cache::{ExecCache, ExecCacheConfig};
use packagefs::fs::{FsConfig, Snapshot};
use packagefs::fuse::{self, MountConfig};
use packagefs::kmount::Mounted;
use packagefs::live;
use packagefs::options::{parse_size, MountOptions};
use packagefs::plan::source::parse_layers;
use packagefs::plan::{GenerationChoice, MountSpec, Request};
use packagefs::volume::Volume;

/// Serve Haiku .hpkg packages as one read-only file system, without extracting them.
///
///   packagefs mount ROOT|PKG.hpkg... MOUNTPOINT [OPTIONS]
///   packagefs unmount MOUNTPOINT
///   packagefs ROOT MOUNTPOINT -o OPTIONS     the form mount.fuse3 uses (fstab)
///   packagefs completions SHELL              shell completion script
///   packagefs man [-o DIR]                   these man pages
///
/// A subcommand name wins over the fstab form's ROOT: give a root that is a
/// directory named mount, unmount, completions or man as a path (./man).
#[derive(Debug, Parser)]
#[command(
    name = "packagefs",
    version,
    args_conflicts_with_subcommands = true,
    verbatim_doc_comment
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// fstab form: the package root (or package file) to mount.
    #[arg(value_name = "ROOT")]
    source: Option<PathBuf>,
    /// fstab form: where to mount it.
    #[arg(value_name = "MOUNTPOINT")]
    mountpoint: Option<PathBuf>,
    #[command(flatten)]
    opts: MountFlags,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Mount a package root or package files at MOUNTPOINT.
    Mount {
        /// A package root, or one or more package files, then the mount point.
        #[arg(value_name = "ROOT|PKG.hpkg... MOUNTPOINT", num_args = 2.., required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        opts: Box<MountFlags>,
    },
    /// Unmount MOUNTPOINT.
    Unmount {
        /// The mount point.
        mountpoint: PathBuf,
    },
    /// Print the shell completion script for SHELL on standard output.
    Completions(cli_docs::CompletionsArgs),
    /// Write the man pages (section 8) of packagefs and its subcommands into DIR.
    Man(cli_docs::ManArgs),
}

#[derive(Debug, Args, Clone, Default)]
struct MountFlags {
    /// Layers of a root to mount (comma-separated).
    #[arg(long, value_name = "system,common,user")]
    layers: Option<String>,
    /// Mount this generation of a root with state (a number, or `previous`:
    /// the parent of the current one), read-only; nothing on disk changes.
    #[arg(long, value_name = "N|previous")]
    generation: Option<String>,
    /// Bytes of decompressed chunks to cache (K, M, G suffixes allowed; default 16M).
    #[arg(long, value_name = "BYTES")]
    cache_size: Option<String>,
    /// Stay in the foreground instead of returning once mounted.
    #[arg(short = 'f', long)]
    foreground: bool,
    /// Mount options, comma-separated (allow_other, nosuid, layers=..., cache_size=...,
    /// shine_through=var:tmp, entry_ttl=SECONDS, exec_cache=DIR, exec_cache_size=BYTES,
    /// no_index_cache).
    #[arg(short = 'o', value_name = "OPTIONS")]
    options: Vec<String>,
    /// Append log lines to FILE (in the background the log goes nowhere otherwise).
    #[arg(long, value_name = "FILE")]
    log_file: Option<PathBuf>,
    /// Threads serving requests.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Kernel read-ahead in KiB (as root; 0: keep the kernel's 128 KiB).
    #[arg(long, value_name = "KIB", default_value_t = 1024)]
    read_ahead_kb: u32,
    /// More log output (-v: info, with index memory use; -vv: debug).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    verbose: u8,
    /// Top-level directories where ROOT/data/<name> is bind-mounted over
    /// the read-only tree (comma-separated; `-o shine_through=var:tmp`).
    #[arg(long, value_name = "var,tmp,...")]
    shine_through: Option<String>,
    /// Fail instead of mounting without a package the plan refuses (a
    /// damaged file, unmet requirements). Without it such packages are left
    /// out, each named on standard error, and the rest is mounted: a system
    /// must boot.
    #[arg(long)]
    strict: bool,
    /// Parse every package instead of opening it from its index image in
    /// ROOT/system/state/index/ (a root with state only; images are neither
    /// read nor written, also for the packages of later generations;
    /// `-o no_index_cache`).
    #[arg(long)]
    no_index_cache: bool,
    /// Keep decompressed copies of executed and often opened files in DIR
    /// and let the kernel read them directly (FUSE passthrough; as root, on
    /// a kernel with CONFIG_FUSE_PASSTHROUGH). Only packages of a root with
    /// state are cached; `-o exec_cache=DIR`.
    #[arg(long, value_name = "DIR")]
    exec_cache: Option<PathBuf>,
    /// Bound of the exec cache's size (K, M, G suffixes allowed; default 1G;
    /// `-o exec_cache_size=BYTES`).
    #[arg(long, value_name = "BYTES")]
    exec_cache_size: Option<String>,
    /// Opens of a file in one run after which it is cached (an execution
    /// caches it at once; default 2).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    exec_cache_opens: Option<u32>,
    /// Internal: report readiness on standard output (a pipe to the
    /// `packagefs mount` that started this daemon).
    #[arg(long, hide = true)]
    report_ready: bool,
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Unmount { mountpoint }) => {
            daemon::unmount(&mountpoint).map_err(CliError::from)
        }
        Some(Command::Completions(a)) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            cli_docs::write_completions(&mut cmd, a.shell, &mut std::io::stdout())
                .map_err(CliError::Completions)
        }
        Some(Command::Man(a)) => {
            let cmd = <Cli as clap::CommandFactory>::command();
            cli_docs::write_man_pages(&cmd, "8", &a.dir)
                .map(|_| ())
                .map_err(CliError::from)
        }
        Some(Command::Mount { mut paths, opts }) => match paths.pop() {
            Some(mountpoint) => mount(&paths, &mountpoint, &opts),
            None => Err(CliError::Usage("missing MOUNTPOINT")),
        },
        None => match (cli.source, cli.mountpoint) {
            (Some(source), Some(mountpoint)) => mount(&[source], &mountpoint, &cli.opts),
            _ => Err(CliError::Usage(
                "usage: packagefs mount ROOT|PKG.hpkg... MOUNTPOINT, \
                 packagefs ROOT MOUNTPOINT -o OPTIONS, or packagefs unmount MOUNTPOINT \
                 (see --help)",
            )),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("packagefs: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One malloc arena per core (at least 2) instead of glibc's eight: the
/// indexes are allocated by the threads that open the packages, and every
/// arena that grows takes the process's memory-map lock for writing,
/// stalling the page faults of the others. Measured on a remount of 2,300
/// packages on 2 cores: opening took about 180 ms with the default and
/// 130 ms with 2 or 4 arenas, for the same memory. `MALLOC_ARENA_MAX` in
/// the environment still decides.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arenas = libc::c_int::try_from(cores.max(2)).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only sets a tunable of the allocator; it is
        // called before this process has a second thread.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}

fn init_logging(flags: &MountFlags) -> Result<(), CliError> {
    use tracing_subscriber::EnvFilter;
    let level = match flags.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    // fuser warns when its own unmount at exit finds the file system
    // already unmounted by `packagefs unmount`: noise, not news.
    let default = if flags.verbose < 2 {
        format!("{level},fuser::session=error")
    } else {
        level.to_string()
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => {
            EnvFilter::try_new(&spec).map_err(|source| CliError::LogFilter {
                spec: spec.clone(),
                source,
            })?
        }
        _ => EnvFilter::new(default),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // In the background the log file is already our standard error.
    let result = match (&flags.log_file, flags.report_ready) {
        (Some(path), false) => {
            let file = std::fs::File::options()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| CliError::LogFile {
                    path: path.clone(),
                    source,
                })?;
            builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .try_init()
        }
        (Some(_), true) => builder.with_ansi(false).try_init(),
        (None, _) => {
            use std::io::IsTerminal;
            builder
                .with_ansi(std::io::stderr().is_terminal())
                .try_init()
        }
    };
    result.map_err(CliError::Logging)
}

fn mount(sources: &[PathBuf], mountpoint: &Path, flags: &MountFlags) -> Result<(), CliError> {
    let mut options = MountOptions::default();
    for o in &flags.options {
        options.parse_into(o)?;
    }
    if !flags.foreground {
        // Check what we can before starting the daemon, then let it do the rest.
        // (The daemon reports its warnings and refused packages through
        // the readiness pipe; they are printed on standard error.)
        prepare(sources, mountpoint, flags, &options)?;
        let args: Vec<OsString> = std::env::args_os().skip(1).collect();
        return match daemon::fork_background(&args, flags.log_file.as_deref())? {
            daemon::Forked::Parent(reported) => Ok(reported?),
            daemon::Forked::Daemon => {
                let daemon_flags = MountFlags {
                    foreground: true,
                    report_ready: true,
                    ..flags.clone()
                };
                serve_mount(sources, mountpoint, &daemon_flags, &options)
            }
        };
    }
    serve_mount(sources, mountpoint, flags, &options)
}

/// Mount in this process and serve until unmounted (a foreground run, or
/// the daemon).
fn serve_mount(
    sources: &[PathBuf],
    mountpoint: &Path,
    flags: &MountFlags,
    options: &MountOptions,
) -> Result<(), CliError> {
    let mut readiness = if flags.report_ready {
        Readiness::on_stdout()
    } else {
        Readiness::none()
    };
    let (session, p, registration) = match init_logging(flags)
        .and_then(|()| start(sources, mountpoint, flags, options, &mut readiness))
    {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            readiness.failed(&e.to_string());
            return Err(e);
        }
    };
    tracing::info!("mounted at {}", p.mountpoint.display());
    if flags.read_ahead_kb > 0 {
        if let Err(e) = packagefs::kmount::set_read_ahead(&p.mountpoint, flags.read_ahead_kb) {
            tracing::debug!("read-ahead left at the kernel's default: {e}");
        }
    }
    // Keep no directory busy.
    let _ = std::env::set_current_dir("/");
    let at = p.mountpoint.clone();
    let setup = move || {
        if let (Some(root), false) = (p.spec.root(), p.shine.is_empty()) {
            let bound = packagefs::shine::bind_all(root, &p.mountpoint, &p.shine);
            if let Err(e) = bound {
                let e = e.to_string();
                readiness.failed(&e);
                return Err(e);
            }
        }
        readiness.ready();
        packagefs::write_index_images(p.index_writes);
        Ok(())
    };
    let served = daemon::serve(session, &at, setup);
    // Unmounted: the root may forget this mount (gc may take its generation).
    drop(registration);
    Ok(served?)
}

/// The mount's registration with its root (`system/state/mounts/`), so that
/// gc spares the generation it serves; shared with the live thread, which
/// moves it to each generation swapped in.
type Registration = Option<Arc<Mutex<state::mounts::MountRegistration>>>;

/// Register a mount of generation `generation` of a root with state (a
/// failure is a warning: the mount goes on, unprotected from gc).
fn register(p: &Prepared, generation: Option<u64>) -> Registration {
    let (MountSpec::Root { root, .. }, Some(n)) = (&p.spec, generation) else {
        return None;
    };
    match state::Root::open(root).and_then(|r| r.register_mount(n, &p.mountpoint)) {
        Ok(r) => Some(Arc::new(Mutex::new(r))),
        Err(e) => {
            tracing::warn!(
                "cannot register the mount with {}: gc may remove generation {n} \
                 while it is mounted: {e}",
                root.display()
            );
            None
        }
    }
}

/// What the mount needs, checked and resolved to absolute paths.
struct Prepared {
    spec: MountSpec,
    generation: GenerationChoice,
    mountpoint: PathBuf,
    fs_config: FsConfig,
    mount_config: MountConfig,
    /// Shine-through names (empty: none).
    shine: Vec<String>,
    /// The exec cache asked for.
    exec_cache: Option<ExecCacheConfig>,
    /// Index images to write once the mount is ready.
    index_writes: packagefs::plan::IndexWrites,
}

fn prepare(
    sources: &[PathBuf],
    mountpoint: &Path,
    flags: &MountFlags,
    options: &MountOptions,
) -> Result<Prepared, CliError> {
    let layers = match (&flags.layers, &options.layers) {
        (Some(l), _) => parse_layers(l)?,
        (None, Some(l)) => l.clone(),
        (None, None) => Vec::new(),
    };
    let sources: Vec<PathBuf> = sources
        .iter()
        .map(|p| {
            std::fs::canonicalize(p).map_err(|source| CliError::NoSource {
                path: p.clone(),
                source,
            })
        })
        .collect::<Result<_, _>>()?;
    let spec = MountSpec::from_sources(&sources, &layers)?;
    let generation = match (&flags.generation, options.generation) {
        (Some(g), _) => g.parse()?,
        (None, Some(g)) => g,
        (None, None) => GenerationChoice::Current,
    };
    // Read from the mount table, so that a hung daemon there cannot block us.
    if let Ok(at) = packagefs::kmount::table_path(mountpoint) {
        if packagefs::kmount::packagefs_at(&at).unwrap_or(false) {
            return Err(CliError::AlreadyMounted { path: at });
        }
    }
    let mountpoint =
        std::fs::canonicalize(mountpoint).map_err(|source| CliError::NoMountPoint {
            path: mountpoint.to_path_buf(),
            source,
        })?;
    if !mountpoint.is_dir() {
        return Err(CliError::NotADirectory(mountpoint));
    }
    let shine = match (&flags.shine_through, &options.shine_through) {
        (Some(s), _) => packagefs::shine::parse_list(s, ',')?,
        (None, Some(s)) => s.clone(),
        (None, None) => Vec::new(),
    };
    if !shine.is_empty() && spec.root().is_none() {
        return Err(packagefs::shine::ShineError::NotARoot.into());
    }
    let mut fs_config = FsConfig::default();
    if let Some(size) = options.cache_size {
        fs_config.cache_size = size;
    }
    if let Some(size) = &flags.cache_size {
        fs_config.cache_size = parse_size(size)?;
    }
    let mut mount_config = MountConfig {
        allow_other: options.allow_other,
        allow_root: options.allow_root,
        flags: options.flags.clone(),
        ..MountConfig::default()
    };
    mount_config.fsname = options.fsname.clone().unwrap_or_else(|| match &spec {
        MountSpec::Root { root, .. } => root.display().to_string(),
        MountSpec::Files(f) => f
            .first()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "packagefs".into()),
    });
    if let Some(ttl) = options.entry_ttl {
        mount_config.ttl = ttl;
    }
    if let Some(n) = flags.threads {
        mount_config.threads = n.max(1);
    }
    let exec_cache = match (&flags.exec_cache, &options.exec_cache) {
        (Some(d), _) | (None, Some(d)) => {
            // Absolute: the daemon leaves its working directory.
            let dir = std::path::absolute(d).map_err(|source| CliError::NoSource {
                path: d.clone(),
                source,
            })?;
            let mut c = ExecCacheConfig::new(dir);
            if let Some(size) = options.exec_cache_size {
                c.max_bytes = size;
            }
            if let Some(size) = &flags.exec_cache_size {
                c.max_bytes = parse_size(size)?;
            }
            if let Some(n) = flags.exec_cache_opens {
                c.min_opens = n;
            }
            Some(c)
        }
        (None, None) => None,
    };
    Ok(Prepared {
        spec,
        generation,
        mountpoint,
        fs_config,
        mount_config,
        shine,
        exec_cache,
        index_writes: Default::default(),
    })
}

fn start(
    sources: &[PathBuf],
    mountpoint: &Path,
    flags: &MountFlags,
    options: &MountOptions,
    readiness: &mut Readiness,
) -> Result<(impl Mounted, Prepared, Registration), CliError> {
    let started = std::time::Instant::now();
    let mut p = prepare(sources, mountpoint, flags, options)?;
    let request = Request {
        spec: &p.spec,
        choice: p.generation,
        shine: &p.shine,
        index_cache: !(flags.no_index_cache || options.no_index_cache),
        write_caches: true,
    };
    let mut plan = packagefs::load(&request, None)?;
    // Written once the mount is ready (by the set-up thread).
    p.index_writes = std::mem::take(&mut plan.index_writes);
    // Nothing left out silently: on the caller's standard error before
    // `packagefs mount` returns (they are in the log too).
    for w in &plan.warnings {
        readiness.warn(w);
    }
    if flags.strict && !plan.refused.is_empty() {
        return Err(CliError::Strict(
            plan.refused.iter().map(|r| r.to_string()).collect(),
        ));
    }
    for r in &plan.refused {
        readiness.warn(&r.to_string());
    }
    let loaded = started.elapsed();
    let fs = Snapshot::new(plan.tree, plan.generation, &p.fs_config).map_err(CliError::Workers)?;
    let volume = Arc::new(Volume::new(fs));
    // The current generation of a root with state follows the root live;
    // an older generation and a root without state stay as mounted.
    let live_root = match (&p.spec, p.generation) {
        (MountSpec::Root { root, .. }, GenerationChoice::Current)
            if packagefs::plan::source::has_state(root) =>
        {
            Some(root.clone())
        }
        _ => None,
    };
    if let Some(config) = p.exec_cache.clone() {
        // Not fatal: the mount serves without the cache.
        match ExecCache::open(config) {
            Ok(cache) => p.mount_config.exec_cache = Some(Arc::new(cache)),
            Err(e) => {
                tracing::warn!("{e}; mounting without it");
                readiness.warn(&format!("{e}; mounting without it"));
            }
        }
    }
    let session =
        fuse::mount_volume(volume.clone(), &p.mountpoint, &p.mount_config).map_err(|source| {
            CliError::Mount {
                path: p.mountpoint.clone(),
                source,
            }
        })?;
    tracing::info!(
        "packages loaded in {:.1} ms, mounted after {:.1} ms",
        loaded.as_secs_f64() * 1e3,
        started.elapsed().as_secs_f64() * 1e3
    );
    let registration = register(&p, volume.current().generation());
    if let Some(root) = live_root {
        let notify = Box::new(fuse::KernelNotify(session.notifier()));
        let follow = registration.clone();
        let on_swap = Box::new(move |generation: Option<u64>| {
            let (Some(reg), Some(n)) = (&follow, generation) else {
                return;
            };
            let mut reg = reg
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Err(e) = reg.update(n) {
                tracing::warn!("cannot record generation {n} in the mount's registration: {e}");
            }
        });
        let index_cache = !(flags.no_index_cache || options.no_index_cache);
        match live::watch(volume, notify, p.spec.clone(), index_cache, &root, on_swap) {
            Ok(()) => tracing::info!("following {} live", root.display()),
            Err(e) => tracing::error!("{e}; the mount will not follow changes"),
        }
    }
    Ok((session, p, registration))
}
