//! Publishing and using repositories: `key generate`, `sign`, `repo
//! create|add|list|remove`, `refresh` and `search`.

use std::path::{Path, PathBuf};

use serde::Serialize;
use state::repos::{self, RepoConfig};
use state::signing::PublicKey;

use crate::error::{CliError, Result};
use crate::output::{warn, Out};
use crate::repo::fetch::{Base, Fetcher};
use crate::repo::{index, publish};

/// Manage signing keys.
#[derive(Debug, clap::Args)]
pub struct KeyArgs {
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(Debug, clap::Subcommand)]
enum KeyCommand {
    Generate(KeyGenerateArgs),
}

/// Make a signing key pair: NAME.key (secret) and NAME.pub.
///
/// Both are ed25519 keys in minisign's formats, so `minisign -Vm FILE -p
/// NAME.pub` checks what pkgctl signs. The secret key is unencrypted, so CI
/// can sign without a prompt, unless --password asks for one (read from
/// $PKGCTL_KEY_PASSWORD when set, else asked twice on the terminal). Keep
/// NAME.key secret; give NAME.pub to the users of your repository.
///
/// Example:
///
///   pkgctl key generate -o release
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
struct KeyGenerateArgs {
    /// Path of the key pair without extension.
    #[arg(short = 'o', long = "output", value_name = "NAME")]
    output: PathBuf,
    /// Encrypt the secret key with a password.
    #[arg(long)]
    password: bool,
}

/// Sign a package: writes PKG.hpkg.minisig beside it.
///
/// A root whose trust policy requires vouched packages accepts a package
/// whose detached signature verifies with a key of
/// ROOT/system/settings/trust/. An encrypted key's password is read from
/// $PKGCTL_KEY_PASSWORD, else asked on the terminal.
///
/// Example:
///
///   pkgctl sign tipster-1.1.1-1-x86_64.hpkg --key release.key
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct SignArgs {
    /// The package file.
    #[arg(value_name = "PKG.hpkg")]
    package: PathBuf,
    /// The secret key.
    #[arg(long, value_name = "NAME.key")]
    key: PathBuf,
}

/// Publish or configure repositories.
#[derive(Debug, clap::Args)]
pub struct RepoArgs {
    #[command(subcommand)]
    command: RepoCommand,
}

#[derive(Debug, clap::Subcommand)]
enum RepoCommand {
    Create(RepoCreateArgs),
    Add(RepoAddArgs),
    List(RepoListArgs),
    Remove(RepoRemoveArgs),
}

/// Write a repository's index from DIR/packages/*.hpkg.
///
/// Writes DIR/repo (the HPKR index Haiku's tools read: every package's
/// attributes and SHA-256), DIR/repo.info, DIR/repo.sha256 and, with --key,
/// DIR/repo.minisig. The signature's trusted comment carries the repository
/// name, a version one higher than the signed index already in DIR (or
/// --version), and an expiry --valid-for days ahead. Serve DIR with any
/// static HTTP server. Clients download each package by its canonical
/// name (NAME-VERSION-ARCH.hpkg); a file named otherwise gets a hard link
/// of that name.
///
/// Example:
///
///   pkgctl repo create /srv/repo --name main --key release.key
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
struct RepoCreateArgs {
    /// The repository directory (holding packages/).
    dir: PathBuf,
    /// Repository name (default: the directory's name).
    #[arg(long)]
    name: Option<String>,
    /// Base URL written into the info.
    #[arg(long)]
    url: Option<String>,
    /// Secret key to sign the index with.
    #[arg(long, value_name = "NAME.key")]
    key: Option<PathBuf>,
    /// Days the signed index stays valid.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    valid_for: u64,
    /// Index version (default: one more than the signed index in DIR).
    #[arg(long, value_name = "N")]
    version: Option<u64>,
    /// Vendor (default: the first package's vendor).
    #[arg(long)]
    vendor: Option<String>,
    /// Priority written into repo.info.
    #[arg(long, default_value_t = 0)]
    priority: u8,
    /// Print what was written as JSON.
    #[arg(long)]
    json: bool,
}

/// Use a repository: remember its URL and key under the root.
///
/// URL is an http:// or https:// URL, a file:// URL or a directory. The
/// index is fetched by `pkgctl refresh`, which refuses one whose signature
/// does not verify with KEY, whose version is lower than the last accepted,
/// or that has expired. Without a key, --insecure is required, and every
/// refresh says the index is not verified.
///
/// Example:
///
///   pkgctl -R /srv/root repo add main https://example.org/repo --key release.pub
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
#[command(group(clap::ArgGroup::new("trust").required(true).args(["key", "insecure"])))]
struct RepoAddArgs {
    /// Local name of the repository.
    name: String,
    /// Where it is served.
    url: String,
    /// The repository's public key (minisign format).
    #[arg(long, value_name = "NAME.pub")]
    key: Option<PathBuf>,
    /// Use it without verifying its index.
    #[arg(long)]
    insecure: bool,
    /// Priority: a package in several repositories comes from the highest.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    priority: i32,
}

/// List the configured repositories.
///
/// Example:
///
///   pkgctl -R /srv/root repo list --json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
struct RepoListArgs {
    /// One JSON object per line: name, url, priority, insecure, key_id,
    /// version, expires, packages.
    #[arg(long)]
    json: bool,
}

/// Forget a repository (its settings and cached index).
///
/// Installed packages stay.
///
/// Example:
///
///   pkgctl -R /srv/root repo remove main
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
struct RepoRemoveArgs {
    /// The repository.
    name: String,
}

/// Fetch every repository's index and check it.
///
/// An index is accepted only when its signature verifies with the key the
/// repository was added with, its version is not lower than the last one
/// accepted, and it has not expired. A refusal keeps the last good index,
/// is printed, and makes the exit status non-zero.
///
/// Example:
///
///   pkgctl -R /srv/root refresh
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct RefreshArgs {}

/// Search the repositories' packages.
///
/// TERM is matched, case-insensitively, against names, summaries and
/// provides. Installed packages are marked with `i`.
///
/// Example:
///
///   pkgctl -R /srv/root search lib:libz
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct SearchArgs {
    /// What to look for.
    term: String,
    /// One JSON object per line: name, version, summary, provides,
    /// repository, installed.
    #[arg(long)]
    json: bool,
}

/// `pkgctl key`.
pub fn key(args: &KeyArgs) -> Result<()> {
    match &args.command {
        KeyCommand::Generate(a) => {
            let (secret, public, id) = publish::generate_keys(&a.output, a.password)?;
            let mut out = Out::new();
            out.line(format_args!("key {id}"))?;
            out.line(format_args!("secret key: {}", secret.display()))?;
            out.line(format_args!("public key: {}", public.display()))?;
            out.finish()
        }
    }
}

/// `pkgctl sign`.
pub fn sign(args: &SignArgs) -> Result<()> {
    let out_path = publish::sign_package(&args.package, &args.key)?;
    let mut out = Out::new();
    out.line(out_path.display())?;
    out.finish()
}

/// `pkgctl repo ...`.
pub fn repo(args: &RepoArgs, root: impl Fn() -> Result<PathBuf>) -> Result<()> {
    match &args.command {
        RepoCommand::Create(a) => create(a),
        RepoCommand::Add(a) => add(a, &root()?),
        RepoCommand::List(a) => list(a, &root()?),
        RepoCommand::Remove(a) => {
            let path = root()?;
            let r = crate::cmd::root::open(&path)?;
            repos::remove(r.layout(), &a.name).map_err(CliError::State)?;
            let mut out = Out::new();
            out.line(format_args!("removed repository {}", a.name))?;
            out.finish()
        }
    }
}

fn create(a: &RepoCreateArgs) -> Result<()> {
    let created = publish::create(
        &a.dir,
        &publish::CreateOptions {
            name: a.name.clone(),
            url: a.url.clone(),
            key: a.key.clone(),
            valid_for_days: a.valid_for,
            version: a.version,
            vendor: a.vendor.clone(),
            priority: a.priority,
        },
    )?;
    let mut out = Out::new();
    if a.json {
        out.json_line(&created)?;
    } else {
        match (created.version, created.expires) {
            (Some(v), Some(e)) => out.line(format_args!(
                "{}: repository {} with {} package(s), version {v}, valid until {}",
                a.dir.display(),
                created.name,
                created.packages,
                index::when(e)
            ))?,
            _ => out.line(format_args!(
                "{}: repository {} with {} package(s), NOT signed (no --key)",
                a.dir.display(),
                created.name,
                created.packages
            ))?,
        }
    }
    out.finish()
}

fn add(a: &RepoAddArgs, path: &Path) -> Result<()> {
    let root = crate::cmd::root::open(path)?;
    let layout = root.layout();
    let file = layout.repository_file(&a.name);
    if !repos::valid_name(&a.name) {
        return Err(CliError::refused(
            &file,
            "not a valid repository name (letters, digits, . _ -)",
        ));
    }
    if file.exists() {
        return Err(CliError::refused(
            &file,
            "a repository of that name exists; remove it first",
        ));
    }
    let key = match &a.key {
        Some(k) => Some(PublicKey::load(k).map_err(CliError::State)?),
        None => None,
    };
    // A directory is remembered by its absolute path: later commands may
    // run from anywhere.
    let url = match Base::parse(&a.url) {
        Base::Dir(d) if !a.url.starts_with("file://") => std::path::absolute(&d)
            .map_err(|e| CliError::io(&d, e))?
            .display()
            .to_string(),
        _ => a.url.clone(),
    };
    let config = RepoConfig {
        name: a.name.clone(),
        url,
        key: key.as_ref().map(PublicKey::to_base64),
        priority: a.priority,
    };
    repos::save(layout, &config).map_err(CliError::State)?;
    let mut out = Out::new();
    match key {
        Some(k) => out.line(format_args!(
            "added repository {} (key {}); run pkgctl refresh",
            a.name,
            k.id()
        ))?,
        None => {
            warn(format_args!(
                "{}: added with --insecure: its index will NOT be verified",
                a.name
            ));
            out.line(format_args!(
                "added repository {} (insecure); run pkgctl refresh",
                a.name
            ))?
        }
    }
    out.finish()
}

/// One repository in `repo list --json`.
#[derive(Debug, Serialize)]
struct Listed {
    name: String,
    url: String,
    priority: i32,
    insecure: bool,
    key_id: Option<String>,
    version: Option<u64>,
    expires: Option<String>,
    packages: Option<usize>,
}

fn list(a: &RepoListArgs, path: &Path) -> Result<()> {
    let root = crate::cmd::root::open(path)?;
    let layout = root.layout();
    let mut out = Out::new();
    for config in repos::list(layout).map_err(CliError::State)? {
        let key_id = config.public_key(layout).ok().flatten().map(|k| k.id());
        let accepted = repos::accepted(layout, &config).ok().flatten();
        let listed = Listed {
            name: config.name.clone(),
            url: config.url.clone(),
            priority: config.priority,
            insecure: config.key.is_none(),
            key_id,
            version: accepted
                .as_ref()
                .and_then(|a| a.stamp.as_ref())
                .map(|s| s.version),
            expires: accepted
                .as_ref()
                .and_then(|a| a.stamp.as_ref())
                .map(|s| index::when(s.expires)),
            packages: accepted.as_ref().map(|a| a.repository.packages.len()),
        };
        if a.json {
            out.json_line(&listed)?;
        } else {
            let state = match (&listed.packages, listed.version) {
                (None, _) => "not refreshed".to_string(),
                (Some(n), Some(v)) => format!("{n} package(s), version {v}"),
                (Some(n), None) => format!("{n} package(s)"),
            };
            out.line(format_args!(
                "{}\t{}\tpriority {}\t{}\t{}",
                listed.name,
                listed.url,
                listed.priority,
                listed
                    .key_id
                    .as_deref()
                    .map(|k| format!("key {k}"))
                    .unwrap_or_else(|| "INSECURE".into()),
                state
            ))?;
        }
    }
    out.finish()
}

/// `pkgctl refresh`.
pub fn refresh(_args: &RefreshArgs, path: &Path) -> Result<()> {
    let root = crate::cmd::root::open(path)?;
    let layout = root.layout();
    let fetcher = Fetcher::new();
    let mut out = Out::new();
    let mut refused = 0;
    let configs = repos::list(layout).map_err(CliError::State)?;
    for config in &configs {
        match index::refresh(layout, &fetcher, config) {
            Ok(r) => {
                let version = r
                    .version
                    .map(|v| format!(", version {v}"))
                    .unwrap_or_default();
                let what = if r.changed { "updated" } else { "unchanged" };
                out.line(format_args!(
                    "{}: {what}, {} package(s){version}",
                    r.name, r.packages
                ))?;
            }
            Err(e) => {
                refused += 1;
                eprintln!("pkgctl: {}: {e}", config.name);
            }
        }
    }
    out.finish()?;
    if refused > 0 {
        return Err(CliError::refused(
            path,
            format!("{refused} of {} repositories not refreshed", configs.len()),
        ));
    }
    Ok(())
}

/// One package in `search --json`.
#[derive(Debug, Serialize)]
struct Found {
    name: String,
    version: String,
    summary: String,
    provides: Vec<String>,
    repository: String,
    installed: bool,
}

/// `pkgctl search`.
pub fn search(args: &SearchArgs, path: &Path) -> Result<()> {
    let root = crate::cmd::root::open(path)?;
    let repos = index::available(root.layout())?;
    let installed = crate::repo::apply::installed(&root, path)?;
    let term = args.term.to_lowercase();
    let mut out = Out::new();
    for a in &repos {
        for p in &a.index.repository.packages {
            let provides: Vec<String> = p.provides.iter().map(|x| x.to_string()).collect();
            let hit = p.name.to_lowercase().contains(&term)
                || p.summary.to_lowercase().contains(&term)
                || provides.iter().any(|x| x.to_lowercase().contains(&term));
            if !hit {
                continue;
            }
            let found = Found {
                name: p.name.clone(),
                version: p.version.to_string(),
                summary: p.summary.clone(),
                provides,
                repository: a.config.name.clone(),
                installed: installed
                    .iter()
                    .any(|c| c.info.name == p.name && c.info.version == p.version),
            };
            if args.json {
                out.json_line(&found)?;
            } else {
                out.line(format_args!(
                    "{} {} {} ({}) - {}",
                    if found.installed { "i" } else { " " },
                    found.name,
                    found.version,
                    found.repository,
                    found.summary
                ))?;
            }
        }
    }
    out.finish()
}
