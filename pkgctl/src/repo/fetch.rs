//! Getting repository files: over HTTP(S) with `ureq` (rustls, redirects
//! followed, timeouts, downloads resumed with `Range`), from `file://` URLs
//! and from plain directories. Every failure names the URL.

use std::fs::{self, File, OpenOptions};
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};

use crate::error::{CliError, Result};
use crate::output::hex;

/// Largest index-side file fetched into memory (`repo`, signatures, info).
pub const MAX_INDEX: u64 = 256 << 20;

/// Where a repository lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// An `http://` or `https://` URL (no trailing slash).
    Http(String),
    /// A directory (a plain path or a `file://` URL).
    Dir(PathBuf),
}

impl Base {
    /// Parse a repository URL: `http(s)://...`, `file:///dir`, or a path.
    pub fn parse(url: &str) -> Base {
        if url.starts_with("http://") || url.starts_with("https://") {
            Base::Http(url.trim_end_matches('/').to_string())
        } else if let Some(path) = url.strip_prefix("file://") {
            Base::Dir(PathBuf::from(path))
        } else {
            Base::Dir(PathBuf::from(url))
        }
    }

    /// The URL (or path) of `rel` below the base, for messages and requests.
    pub fn join(&self, rel: &str) -> String {
        match self {
            Base::Http(u) => format!("{u}/{rel}"),
            Base::Dir(d) => d.join(rel).display().to_string(),
        }
    }
}

/// A failure about `url`.
pub fn url_error(url: &str, reason: impl std::fmt::Display) -> CliError {
    CliError::Url {
        url: url.to_string(),
        reason: reason.to_string(),
    }
}

/// Fetches files, with one HTTP agent for all requests.
pub struct Fetcher {
    agent: ureq::Agent,
}

impl Default for Fetcher {
    fn default() -> Self {
        Self::new()
    }
}

impl Fetcher {
    /// An agent that follows up to 10 redirects, gives up connecting after
    /// 15 s and a stalled read after 30 s.
    pub fn new() -> Fetcher {
        let agent = ureq::Agent::config_builder()
            .max_redirects(10)
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_recv_response(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .user_agent(concat!("pkgctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Fetcher { agent }
    }

    /// The whole of `rel` below `base`, at most [`MAX_INDEX`] bytes.
    /// `Ok(None)` when it does not exist (HTTP 404, no such file).
    pub fn get(&self, base: &Base, rel: &str) -> Result<Option<Vec<u8>>> {
        let url = base.join(rel);
        match base {
            Base::Dir(_) => match fs::read(&url) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(url_error(&url, e)),
            },
            Base::Http(_) => {
                let mut resp = self
                    .agent
                    .get(&url)
                    .call()
                    .map_err(|e| url_error(&url, e))?;
                match resp.status().as_u16() {
                    200 => resp
                        .body_mut()
                        .with_config()
                        .limit(MAX_INDEX)
                        .read_to_vec()
                        .map(Some)
                        .map_err(|e| url_error(&url, e)),
                    404 | 410 => Ok(None),
                    s => Err(url_error(&url, format!("HTTP status {s}"))),
                }
            }
        }
    }

    /// Download `rel` below `base` into `dest`, checking that its SHA-256 is
    /// `sha256` (lowercase hex). A partial download is kept as
    /// `<dest>.part` and resumed with a `Range` request. A file already at
    /// `dest` with the right checksum is not fetched again. On a checksum
    /// mismatch nothing is left behind and the error names the URL.
    pub fn download(&self, base: &Base, rel: &str, dest: &Path, sha256: &str) -> Result<()> {
        let url = base.join(rel);
        if dest.is_file() && file_sha256(dest).ok().as_deref() == Some(sha256) {
            return Ok(());
        }
        if let Some(dir) = dest.parent() {
            fs::create_dir_all(dir).map_err(|e| CliError::io(dir, e))?;
        }
        let mut part = dest.as_os_str().to_owned();
        part.push(".part");
        let part = PathBuf::from(part);
        match base {
            Base::Dir(_) => {
                fs::copy(&url, &part).map_err(|e| url_error(&url, e))?;
            }
            Base::Http(_) => self.http_download(&url, &part)?,
        }
        let actual = file_sha256(&part).map_err(|e| CliError::io(&part, e))?;
        if actual != sha256 {
            let _ = fs::remove_file(&part);
            return Err(url_error(
                &url,
                format!(
                    "SHA-256 mismatch: the verified index says {sha256}, the download is {actual}; nothing was installed"
                ),
            ));
        }
        fs::rename(&part, dest).map_err(|e| CliError::io(dest, e))
    }

    /// GET `url` into `part`, appending to what it already holds when the
    /// server honours a `Range` request.
    fn http_download(&self, url: &str, part: &Path) -> Result<()> {
        let have = fs::metadata(part).map(|m| m.len()).unwrap_or(0);
        let mut req = self.agent.get(url);
        if have > 0 {
            req = req.header("Range", format!("bytes={have}-"));
        }
        let mut resp = req.call().map_err(|e| url_error(url, e))?;
        let (mut file, start) = match resp.status().as_u16() {
            206 => (
                OpenOptions::new()
                    .append(true)
                    .open(part)
                    .map_err(|e| CliError::io(part, e))?,
                have,
            ),
            200 => (File::create(part).map_err(|e| CliError::io(part, e))?, 0),
            // The partial file is complete (or longer than the file): start over.
            416 => {
                let _ = fs::remove_file(part);
                return self.http_download(url, part);
            }
            s => return Err(url_error(url, format!("HTTP status {s}"))),
        };
        let total = resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(|n| n + start);
        let bar = progress(url, total, start);
        let mut reader = resp.body_mut().as_reader();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    bar.abandon();
                    return Err(url_error(
                        url,
                        format!("{e} (the partial download is kept and resumed next time)"),
                    ));
                }
            };
            file.write_all(&buf[..n])
                .map_err(|e| CliError::io(part, e))?;
            bar.inc(n as u64);
        }
        bar.finish_and_clear();
        file.sync_all().map_err(|e| CliError::io(part, e))
    }
}

/// A progress bar on standard error when it is a terminal, else a hidden one.
fn progress(url: &str, total: Option<u64>, start: u64) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(t) => ProgressBar::new(t),
        None => ProgressBar::no_length(),
    };
    if let Ok(style) = ProgressStyle::with_template(
        "{bytes:>10}/{total_bytes:10} {bar:30} {bytes_per_sec:>11} {wide_msg}",
    ) {
        bar.set_style(style);
    }
    bar.set_message(url.rsplit('/').next().unwrap_or(url).to_string());
    bar.set_position(start);
    bar
}

/// SHA-256 of a file, lowercase hex.
pub fn file_sha256(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    io::copy(&mut f, &mut h)?;
    Ok(hex(&h.finalize()))
}

/// SHA-256 of bytes, lowercase hex.
pub fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}
