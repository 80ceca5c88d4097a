//! An `.hpkr` repository index (`docs/hpkg-format.md` §12): the 72-byte header, the heap, the
//! repository-info blob (a flattened `BMessage`) and the packages section,
//! whose top level holds one `package` attribute per package.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::attr::{Section, SectionKind};
use crate::bmessage::Message;
use crate::codec::Compression;
use crate::error::{Error, Location, Result};
use crate::header::{self, HpkrHeader};
use crate::heap::{Heap, ReadAt};
use crate::ids;
use crate::info::{Architecture, PackageInfo};

/// Message field names of the repository info (spec §12.3).
mod field {
    pub const CLASS: &str = "class";
    pub const NAME: &str = "name";
    pub const IDENTIFIER: &str = "identifier";
    pub const URL: &str = "url";
    pub const BASE_URL: &str = "baseUrl";
    pub const VENDOR: &str = "vendor";
    pub const SUMMARY: &str = "summary";
    pub const PRIORITY: &str = "priority";
    pub const ARCHITECTURE: &str = "architecture";
    pub const LICENSE_NAME: &str = "licenseName";
    pub const LICENSE_TEXT: &str = "licenseText";
}

/// A license whose text must be approved before installing from the repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepoLicense {
    /// License name.
    pub name: String,
    /// License text.
    pub text: String,
}

/// What the repository-info blob says about the repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepositoryInfo {
    /// Repository name (e.g. `HaikuPorts`).
    pub name: String,
    /// Stable identifier; the legacy `url` field when `identifier` is absent.
    pub identifier: String,
    /// Download base URL: the `baseUrl` field, or for legacy blobs without
    /// it, the identifier when that starts with `http` (as Haiku derives it).
    pub base_url: Option<String>,
    /// Vendor; every package's vendor should match it (case-insensitively).
    pub vendor: String,
    /// One-line summary.
    pub summary: String,
    /// Repository priority.
    pub priority: u8,
    /// Architecture of the repository (never `any`).
    pub architecture: Architecture,
    /// Licenses requiring approval.
    pub licenses: Vec<RepoLicense>,
}

fn missing(name: &str) -> Error {
    Error::corrupt(
        Location::RepoInfo(0),
        format!("repository info has no {name:?} field of the right type"),
    )
}

impl RepositoryInfo {
    /// Interpret an unflattened repository-info message.
    pub fn from_message(m: &Message) -> Result<RepositoryInfo> {
        let req = |name: &str| m.string(name).ok_or_else(|| missing(name));
        let identifier = m
            .string(field::IDENTIFIER)
            .or_else(|| m.string(field::URL))
            .ok_or_else(|| missing(field::IDENTIFIER))?;
        // Legacy blobs have no `baseUrl`: Haiku then takes the identifier
        // when it looks like a URL. An empty `baseUrl` means none.
        let base_url = match m.string(field::BASE_URL) {
            Some(b) => Some(b).filter(|b| !b.is_empty()),
            None => Some(identifier.clone()).filter(|i| i.starts_with("http")),
        };
        let arch_code = m
            .uint8(field::ARCHITECTURE)
            .ok_or_else(|| missing(field::ARCHITECTURE))?;
        let architecture = match Architecture::from_code(arch_code.into()) {
            Some(Architecture::Any) | None => {
                return Err(Error::corrupt(
                    Location::RepoInfo(0),
                    format!("repository architecture {arch_code} is not a real architecture"),
                ))
            }
            Some(a) => a,
        };
        // Names and texts pair up by index; like Haiku, stop at the shorter list.
        let names = m.strings(field::LICENSE_NAME).unwrap_or_default();
        let texts = m.strings(field::LICENSE_TEXT).unwrap_or_default();
        Ok(RepositoryInfo {
            name: req(field::NAME)?,
            identifier,
            base_url,
            vendor: req(field::VENDOR)?,
            summary: req(field::SUMMARY)?,
            priority: m
                .uint8(field::PRIORITY)
                .ok_or_else(|| missing(field::PRIORITY))?,
            architecture,
            licenses: names
                .into_iter()
                .zip(texts)
                .map(|(name, text)| RepoLicense { name, text })
                .collect(),
        })
    }

    /// The message a current Haiku archives this info into, fields in its
    /// order: `class` (empty, as in both golden repositories), `baseUrl` (if
    /// any), `name`, `identifier`, `url` (= identifier, for older readers),
    /// `vendor`, `summary`, `priority`, `architecture`, then the license
    /// names and the license texts.
    pub fn to_message(&self) -> Result<Message> {
        let mut m = Message::new();
        m.add_string(field::CLASS, "")?;
        if let Some(b) = self.base_url.as_deref().filter(|b| !b.is_empty()) {
            m.add_string(field::BASE_URL, b)?;
        }
        m.add_string(field::NAME, &self.name)?;
        m.add_string(field::IDENTIFIER, &self.identifier)?;
        m.add_string(field::URL, &self.identifier)?;
        m.add_string(field::VENDOR, &self.vendor)?;
        m.add_string(field::SUMMARY, &self.summary)?;
        m.add_uint8(field::PRIORITY, self.priority)?;
        m.add_uint8(field::ARCHITECTURE, self.architecture as u8)?;
        for l in &self.licenses {
            m.add_string(field::LICENSE_NAME, &l.name)?;
        }
        for l in &self.licenses {
            m.add_string(field::LICENSE_TEXT, &l.text)?;
        }
        Ok(m)
    }
}

/// An opened repository index.
#[derive(Debug, Clone)]
pub struct Repository {
    /// The repository info.
    pub info: RepositoryInfo,
    /// The repository-info blob as a message (every field, including unknown ones).
    pub info_message: Message,
    /// Every package, in file order.
    pub packages: Vec<PackageInfo>,
    /// Minor format version of the file.
    pub minor_version: u16,
    /// Heap compression.
    pub compression: Compression,
    /// Size of the file in bytes.
    pub file_size: u64,
    /// The file this repository was opened from.
    pub path: Option<PathBuf>,
}

/// The raw parts of an HPKR, before interpretation.
struct Raw {
    minor: u16,
    compression: Compression,
    file_size: u64,
    info: Vec<u8>,
    packages: Section,
}

impl Repository {
    /// Open and parse a repository file. Errors name the file.
    pub fn open(path: &Path) -> Result<Repository> {
        let file = File::open(path).map_err(|e| Error::Io(e).in_file(path))?;
        let mut repo = Repository::from_source(Arc::new(file)).map_err(|e| e.in_file(path))?;
        repo.path = Some(path.to_path_buf());
        Ok(repo)
    }

    /// Parse a repository from any byte source.
    pub fn from_source(src: Arc<dyn ReadAt>) -> Result<Repository> {
        let raw = read_raw(src)?;
        let info_message = Message::unflatten(&raw.info)?;
        let info = RepositoryInfo::from_message(&info_message)?;
        let packages = parse_packages(&raw.packages)?;
        Ok(Repository {
            info,
            info_message,
            packages,
            minor_version: raw.minor,
            compression: raw.compression,
            file_size: raw.file_size,
            path: None,
        })
    }

    /// The package named `name`.
    pub fn package(&self, name: &str) -> Option<&PackageInfo> {
        self.packages.iter().find(|p| p.name == name)
    }
}

/// Read and check the header, open the heap and cut out the two sections.
fn read_raw(src: Arc<dyn ReadAt>) -> Result<Raw> {
    let file_size = src.len()?;
    let (h, geo) = header::read_header::<HpkrHeader>(src.as_ref())?;
    let minor = h.minor_version.get();
    let heap = Heap::open(src, geo)?;
    let size = heap.size();

    let info_len = u64::from(h.info_length.get());
    let packages_len = h.packages_length.get();
    for (what, value, limit) in [
        (
            "packages section length",
            packages_len,
            header::MAX_PACKAGES_LENGTH,
        ),
        ("repository info length", info_len, header::MAX_INFO_LENGTH),
    ] {
        if value > limit {
            return Err(Error::LimitExceeded { what, value, limit });
        }
    }
    if packages_len > size {
        return Err(Error::BadHeader(format!(
            "packages section of {packages_len} bytes exceeds the heap of {size}"
        )));
    }
    let packages_off = size - packages_len;
    if info_len > packages_off {
        return Err(Error::BadHeader(format!(
            "repository info of {info_len} bytes does not fit before the packages section at {packages_off}"
        )));
    }
    let info_off = packages_off - info_len;
    let info = heap.read_vec(info_off, info_len)?;
    let packages = Section::new(
        heap.read_vec(packages_off, packages_len)?,
        SectionKind::Attributes,
        h.packages_strings_length.get(),
        h.packages_strings_count.get(),
        size,
        minor,
    )?;
    Ok(Raw {
        minor,
        compression: heap.compression(),
        file_size,
        info,
        packages,
    })
}

/// Parse the packages section: top-level `package` attributes, each with
/// the package attributes as children (spec §12.2).
fn parse_packages(section: &Section) -> Result<Vec<PackageInfo>> {
    let mut out = Vec::new();
    let mut r = section.reader();
    while let Some(a) = r.next_attr()? {
        if a.id != ids::PACKAGE {
            if section.minor() > ids::READER_MINOR_VERSION {
                if a.has_children {
                    r.skip_children()?;
                }
                continue;
            }
            return Err(Error::corrupt(
                section.loc(a.at),
                format!(
                    "attribute {} ({}) at the top level of a repository's packages",
                    a.id,
                    ids::name(a.id).unwrap_or("unknown")
                ),
            ));
        }
        let name = r.string(&a)?;
        let mut info = PackageInfo::default();
        if a.has_children {
            while let Some(c) = r.next_attr()? {
                if c.id == ids::PACKAGE || c.id == ids::DIR_ENTRY {
                    return Err(Error::corrupt(
                        section.loc(c.at),
                        format!(
                            "attribute {} inside package {name:?}",
                            ids::name(c.id).unwrap_or("?")
                        ),
                    ));
                }
                info.apply(&mut r, &c)?;
            }
        }
        if info.name.is_empty() {
            info.name = name;
        } else if info.name != name {
            return Err(Error::corrupt(
                section.loc(a.at),
                format!(
                    "package attribute names {name:?} but its package:name is {:?}",
                    info.name
                ),
            ));
        }
        if info.name.is_empty() {
            return Err(Error::corrupt(section.loc(a.at), "package has no name"));
        }
        out.push(info);
    }
    r.expect_end()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        let dir = std::env::var_os("PACKAGEFS_FIXTURES")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"));
        dir.join("haiku").join(name)
    }

    /// The info blobs of both golden repositories re-flatten to the same
    /// bytes: field order, data layout, hash table and chains all match.
    #[test]
    fn info_blobs_reflatten_identically() {
        for name in ["repo.hpkr", "sample-repo.hpkr"] {
            let file = File::open(fixture(name)).unwrap();
            let raw = read_raw(Arc::new(file)).unwrap();
            let m = Message::unflatten(&raw.info).unwrap();
            assert_eq!(m.flatten().unwrap(), raw.info, "{name}");
            // The typed view re-archives to a message that reads back the same.
            let info = RepositoryInfo::from_message(&m).unwrap();
            let again = Message::unflatten(&info.to_message().unwrap().flatten().unwrap()).unwrap();
            assert_eq!(RepositoryInfo::from_message(&again).unwrap(), info);
        }
    }
}
