//! Publishing: key pairs, detached package signatures, and a repository
//! directory's index files (`repo`, `repo.info`, `repo.sha256`,
//! `repo.minisig`) made from `DIR/packages/*.hpkg`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use hpkg_format::{Architecture, Compression, Package, PackageInfo, RepositoryInfo, WriteOptions};
use state::signing::{self, IndexStamp, Protection, SecretKey};

use crate::error::{CliError, Result};
use crate::repo::fetch::{file_sha256, sha256};

/// The environment variable a key password is read from, when set (so
/// scripts can sign with an encrypted key without a terminal).
pub const PASSWORD_ENV: &str = "PKGCTL_KEY_PASSWORD";

fn password_from_env() -> Option<String> {
    std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty())
}

/// Write `NAME.key` (mode 0600) and `NAME.pub`; refuses to replace either.
/// Returns the key id.
pub fn generate_keys(name: &Path, password: bool) -> Result<(PathBuf, PathBuf, String)> {
    let with = |ext: &str| {
        let mut p = name.as_os_str().to_owned();
        p.push(ext);
        PathBuf::from(p)
    };
    let (secret, public) = (with(".key"), with(".pub"));
    for p in [&secret, &public] {
        if p.exists() {
            return Err(CliError::refused(p, "already exists; not replacing a key"));
        }
    }
    let protection = match (password, password_from_env()) {
        (false, _) => Protection::Unencrypted,
        (true, Some(p)) => Protection::Password(p),
        (true, None) => Protection::Prompt,
    };
    let keys = signing::generate(protection, "pkgctl secret key")
        .map_err(|e| CliError::refused(&secret, e.to_string()))?;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&secret)
        .map_err(|e| CliError::io(&secret, e))?;
    f.write_all(keys.secret.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| CliError::io(&secret, e))?;
    fs::write(&public, keys.public.as_bytes()).map_err(|e| CliError::io(&public, e))?;
    Ok((secret, public, keys.id))
}

/// Load a secret key, decrypting it with `$PKGCTL_KEY_PASSWORD` or a
/// password asked for on the terminal.
pub fn load_secret(path: &Path) -> Result<SecretKey> {
    SecretKey::load(path, password_from_env()).map_err(CliError::State)
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Sign `pkg` into `<pkg>.minisig`; returns that path.
pub fn sign_package(pkg: &Path, key: &Path) -> Result<PathBuf> {
    let sk = load_secret(key)?;
    let file = fs::File::open(pkg).map_err(|e| CliError::io(pkg, e))?;
    let base = pkg
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let comment = format!(
        "timestamp:{} file:{}",
        now(),
        base.replace(char::is_whitespace, "_")
    );
    let mut out = pkg.as_os_str().to_owned();
    out.push(".minisig");
    let out = PathBuf::from(out);
    let sig = sk.sign(file, &comment, &out).map_err(CliError::State)?;
    fs::write(&out, sig).map_err(|e| CliError::io(&out, e))?;
    Ok(out)
}

/// What `repo create` is asked to do.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// Repository name (default: the directory's name).
    pub name: Option<String>,
    /// Base URL written into the info.
    pub url: Option<String>,
    /// Secret key to sign the index with.
    pub key: Option<PathBuf>,
    /// Days the signed index stays valid.
    pub valid_for_days: u64,
    /// Index version (default: one more than the signed index in DIR).
    pub version: Option<u64>,
    /// Vendor (default: the first package's).
    pub vendor: Option<String>,
    /// Priority written into the info.
    pub priority: u8,
}

/// What `repo create` made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Created {
    /// Repository name.
    pub name: String,
    /// Packages listed.
    pub packages: usize,
    /// Signed index version (`None`: not signed).
    pub version: Option<u64>,
    /// Expiry of the signature (seconds since the epoch).
    pub expires: Option<i64>,
}

/// The packages of `DIR/packages`, each with its SHA-256 as checksum, by
/// file name. Clients download a package by its canonical name
/// (`NAME-VERSION-ARCH.hpkg`, spec §9.7): a file named otherwise (as
/// `import-deb` names Debian packages) gets a hard link of that name, and
/// each file is listed once.
fn read_packages(dir: &Path) -> Result<Vec<PackageInfo>> {
    let pkgs = dir.join("packages");
    let mut names: Vec<PathBuf> = fs::read_dir(&pkgs)
        .map_err(|e| CliError::io(&pkgs, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "hpkg"))
        .collect();
    names.sort();
    let mut out: Vec<PackageInfo> = Vec::new();
    for path in &names {
        let pkg = Package::open(path)?;
        let mut info = pkg.info().clone();
        let canonical = pkgs.join(info.file_name());
        if &canonical != path {
            if names.contains(&canonical) {
                // Listed under its canonical name already (a link made before).
                continue;
            }
            fs::hard_link(path, &canonical).map_err(|e| CliError::io(&canonical, e))?;
        }
        info.checksum = Some(file_sha256(path).map_err(|e| CliError::io(path, e))?);
        out.push(info);
    }
    Ok(out)
}

/// Haiku's `repo.info` text.
fn info_text(info: &RepositoryInfo) -> String {
    let q = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let mut t = format!(
        "name {}\nvendor {}\nsummary {}\npriority {}\narchitecture {}\nidentifier {}\n",
        q(&info.name),
        q(&info.vendor),
        q(&info.summary),
        info.priority,
        info.architecture,
        q(&info.identifier)
    );
    if let Some(b) = &info.base_url {
        t.push_str(&format!("baseUrl {}\n", q(b)));
    }
    t
}

/// The version of the signed index already in `dir`, if any (read from
/// its trusted comment; it is the publisher's own directory).
fn previous_version(dir: &Path) -> Option<u64> {
    let text = fs::read_to_string(dir.join("repo.minisig")).ok()?;
    let comment = text
        .lines()
        .find_map(|l| l.strip_prefix("trusted comment: "))?;
    IndexStamp::parse(comment).map(|s| s.version)
}

/// Write the index files of the repository in `dir`.
pub fn create(dir: &Path, opts: &CreateOptions) -> Result<Created> {
    let packages = read_packages(dir)?;
    let name = match &opts.name {
        Some(n) => n.clone(),
        None => fs::canonicalize(dir)
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "repository".into()),
    };
    if !state::repos::valid_name(&name) {
        return Err(CliError::refused(
            dir,
            format!("{name:?} is not a valid repository name (letters, digits, . _ -)"),
        ));
    }
    let architecture = packages
        .iter()
        .map(|p| p.architecture)
        .find(|a| !matches!(a, Architecture::Any | Architecture::Source))
        .unwrap_or(Architecture::X86_64);
    let vendor = opts
        .vendor
        .clone()
        .or_else(|| packages.first().map(|p| p.vendor.clone()))
        .unwrap_or_else(|| name.clone());
    let info = RepositoryInfo {
        name: name.clone(),
        identifier: opts.url.clone().unwrap_or_else(|| name.clone()),
        base_url: opts.url.clone(),
        vendor,
        summary: format!("{name} package repository"),
        priority: opts.priority,
        architecture,
        licenses: Vec::new(),
    };
    let repo = dir.join("repo");
    let write = WriteOptions {
        compression: Compression::Zlib,
        ..WriteOptions::default()
    };
    hpkg_format::write_repository(&info, &packages, &repo, &write)
        .map_err(|e| CliError::Format(e.in_file(&repo)))?;
    let bytes = fs::read(&repo).map_err(|e| CliError::io(&repo, e))?;
    let sum = dir.join("repo.sha256");
    fs::write(&sum, sha256(&bytes)).map_err(|e| CliError::io(&sum, e))?;
    let sig_path = dir.join("repo.minisig");
    let mut created = Created {
        name: name.clone(),
        packages: packages.len(),
        version: None,
        expires: None,
    };
    match &opts.key {
        Some(key) => {
            let sk = load_secret(key)?;
            let version = opts
                .version
                .unwrap_or_else(|| previous_version(dir).unwrap_or(0) + 1);
            let timestamp = now();
            let valid =
                i64::try_from(opts.valid_for_days.saturating_mul(86_400)).unwrap_or(i64::MAX);
            let stamp = IndexStamp {
                timestamp,
                name,
                version,
                expires: timestamp.saturating_add(valid),
            };
            let sig = sk
                .sign(&bytes[..], &stamp.to_string(), &sig_path)
                .map_err(CliError::State)?;
            fs::write(&sig_path, sig).map_err(|e| CliError::io(&sig_path, e))?;
            created.version = Some(version);
            created.expires = Some(stamp.expires);
        }
        None => {
            // A signature of an older index would only make clients refuse this one.
            if sig_path.exists() {
                fs::remove_file(&sig_path).map_err(|e| CliError::io(&sig_path, e))?;
            }
        }
    }
    let info_path = dir.join("repo.info");
    fs::write(&info_path, info_text(&info)).map_err(|e| CliError::io(&info_path, e))?;
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        std::env::var_os("PACKAGEFS_FIXTURES")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"))
            .join("haiku")
            .join(name)
    }

    /// A package under another name gets a link of its canonical name, and
    /// is listed once however often the index is made.
    #[test]
    fn odd_names_get_a_canonical_link_and_are_listed_once() {
        let dir = tempfile::tempdir().unwrap();
        let pkgs = dir.path().join("packages");
        fs::create_dir(&pkgs).unwrap();
        fs::copy(
            fixture("tipster-1.1.1-1-x86_64.hpkg"),
            pkgs.join("tip.hpkg"),
        )
        .unwrap();
        let opts = CreateOptions {
            name: Some("t".into()),
            url: None,
            key: None,
            valid_for_days: 30,
            version: None,
            vendor: None,
            priority: 0,
        };
        for _ in 0..2 {
            let made = create(dir.path(), &opts).unwrap();
            assert_eq!(made.packages, 1);
            assert_eq!(made.version, None, "not signed without a key");
        }
        assert!(pkgs.join("tipster-1.1.1-1-x86_64.hpkg").is_file());
        let repo = hpkg_format::Repository::open(&dir.path().join("repo")).unwrap();
        let sum = file_sha256(&pkgs.join("tip.hpkg")).unwrap();
        assert_eq!(repo.packages[0].checksum.as_deref(), Some(sum.as_str()));
        let listed = fs::read_to_string(dir.path().join("repo.sha256")).unwrap();
        assert_eq!(listed, sha256(&fs::read(dir.path().join("repo")).unwrap()));
    }
}
