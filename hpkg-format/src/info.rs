//! Package metadata: the typed [`PackageInfo`] of the package-attributes section
//! (ids 15–55, `docs/hpkg-format.md` §7, §9), read from the attribute stream.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::attr::{Attr, AttrReader};
use crate::error::{Error, Result};
use crate::ids;
use crate::version::{Operator, Version};

/// Target architecture of a package (spec §9.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Architecture {
    /// Architecture-independent.
    #[default]
    Any = 0,
    /// 32-bit x86.
    X86 = 1,
    /// 32-bit x86 with the legacy gcc2 ABI.
    X86Gcc2 = 2,
    /// A source package.
    Source = 3,
    /// x86-64.
    X86_64 = 4,
    /// PowerPC.
    Ppc = 5,
    /// 32-bit ARM.
    Arm = 6,
    /// Motorola 68k.
    M68k = 7,
    /// SPARC.
    Sparc = 8,
    /// 64-bit ARM.
    Arm64 = 9,
    /// 64-bit RISC-V.
    Riscv64 = 10,
}

const ARCH_NAMES: [(Architecture, &str); 11] = [
    (Architecture::Any, "any"),
    (Architecture::X86, "x86"),
    (Architecture::X86Gcc2, "x86_gcc2"),
    (Architecture::Source, "source"),
    (Architecture::X86_64, "x86_64"),
    (Architecture::Ppc, "ppc"),
    (Architecture::Arm, "arm"),
    (Architecture::M68k, "m68k"),
    (Architecture::Sparc, "sparc"),
    (Architecture::Arm64, "arm64"),
    (Architecture::Riscv64, "riscv64"),
];

impl Architecture {
    /// The architecture for its stored value; `None` for values ≥ 11.
    pub fn from_code(code: u64) -> Option<Architecture> {
        ARCH_NAMES.get(usize::try_from(code).ok()?).map(|(a, _)| *a)
    }

    /// The name used in `.PackageInfo` and file names.
    pub fn name(self) -> &'static str {
        ARCH_NAMES[self as usize].1
    }

    /// Parse an architecture name.
    pub fn parse(name: &str) -> Option<Architecture> {
        ARCH_NAMES.iter().find(|(_, n)| *n == name).map(|(a, _)| *a)
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Architecture {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Package flags (spec §9.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PackageFlags(pub u32);

impl PackageFlags {
    /// The license must be approved before installation.
    pub const APPROVE_LICENSE: u32 = 1;
    /// The package belongs to the system; its nodes win conflicts in Haiku.
    pub const SYSTEM_PACKAGE: u32 = 2;

    /// Whether `approve_license` is set.
    pub fn approve_license(self) -> bool {
        self.0 & Self::APPROVE_LICENSE != 0
    }

    /// Whether `system_package` is set.
    pub fn system_package(self) -> bool {
        self.0 & Self::SYSTEM_PACKAGE != 0
    }

    /// Names of the set flags as `.PackageInfo` writes them; unknown bits as numbers.
    pub fn names(self) -> Vec<String> {
        let mut out = Vec::new();
        if self.approve_license() {
            out.push("approve_license".to_string());
        }
        if self.system_package() {
            out.push("system_package".to_string());
        }
        let rest = self.0 & !(Self::APPROVE_LICENSE | Self::SYSTEM_PACKAGE);
        for bit in 0..32 {
            if rest & (1 << bit) != 0 {
                out.push(format!("0x{:x}", 1u32 << bit));
            }
        }
        out
    }
}

impl Serialize for PackageFlags {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.names().serialize(s)
    }
}

/// Something a package provides: `name [= version] [compat >= version]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Provides {
    /// Resolvable name, optionally typed (`lib:`, `cmd:` ...).
    pub name: String,
    /// The provided version.
    pub version: Option<Version>,
    /// The oldest version this one is backward compatible with.
    pub compatible: Option<Version>,
}

/// A requirement-like expression: `name [op version]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Requirement {
    /// Resolvable name.
    pub name: String,
    /// Operator; present exactly when `version` is.
    pub operator: Option<Operator>,
    /// Version to compare with.
    pub version: Option<Version>,
}

impl Requirement {
    /// Whether a provided resolvable satisfies this expression (Haiku's rule:
    /// the name must match; a versioned requirement needs a versioned provide;
    /// `compat` narrows which requested versions a provide can stand for).
    pub fn is_met_by(&self, p: &Provides) -> bool {
        if p.name != self.name {
            return false;
        }
        let (Some(op), Some(want)) = (self.operator, &self.version) else {
            return true;
        };
        let Some(have) = &p.version else {
            return false;
        };
        if !op.matches(have, want) {
            return false;
        }
        match (&p.compatible, op) {
            (Some(compat), Operator::GreaterEqual | Operator::Greater | Operator::Equal) => {
                want.compare(compat) != std::cmp::Ordering::Less
            }
            _ => true,
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let (Some(op), Some(v)) = (self.operator, &self.version) {
            write!(f, " {op} {v}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Provides {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(v) = &self.version {
            write!(f, " = {v}")?;
        }
        if let Some(c) = &self.compatible {
            write!(f, " compat >= {c}")?;
        }
        Ok(())
    }
}

/// How a global writable file is updated (spec §9.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WritableFileUpdateType {
    /// Keep the user's modified file.
    KeepOld = 0,
    /// The user must merge.
    Manual = 1,
    /// A three-way merge is requested.
    AutoMerge = 2,
}

impl WritableFileUpdateType {
    /// The update type for its stored value.
    pub fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            0 => Self::KeepOld,
            1 => Self::Manual,
            2 => Self::AutoMerge,
            _ => return None,
        })
    }

    /// The `.PackageInfo` keyword.
    pub fn name(self) -> &'static str {
        match self {
            Self::KeepOld => "keep-old",
            Self::Manual => "manual",
            Self::AutoMerge => "auto-merge",
        }
    }
}

/// A writable file or directory in the installation location.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GlobalWritableFile {
    /// Path relative to the installation location.
    pub path: String,
    /// Present when the package ships the file (installed on activation).
    pub update_type: Option<WritableFileUpdateType>,
    /// Whether it is a directory.
    pub is_directory: bool,
}

/// A per-user settings file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UserSettingsFile {
    /// Path relative to the user's settings directory.
    pub path: String,
    /// A template inside the package.
    pub template: Option<String>,
    /// Whether it is a directory.
    pub is_directory: bool,
}

/// A Unix user the package wants created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct User {
    /// Login name.
    pub name: String,
    /// Real name (default: the login name).
    pub real_name: Option<String>,
    /// Home directory.
    pub home: Option<String>,
    /// Shell (default `/bin/bash`).
    pub shell: Option<String>,
    /// Groups; the first is the primary group.
    pub groups: Vec<String>,
}

/// Everything the package-attributes section says about a package.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PackageInfo {
    /// Package name.
    pub name: String,
    /// One-line summary.
    pub summary: String,
    /// Longer description.
    pub description: String,
    /// Vendor.
    pub vendor: String,
    /// Packager.
    pub packager: String,
    /// Flags.
    pub flags: PackageFlags,
    /// Architecture.
    pub architecture: Architecture,
    /// Version.
    pub version: Version,
    /// Copyright lines.
    pub copyrights: Vec<String>,
    /// License names.
    pub licenses: Vec<String>,
    /// Home page URLs.
    pub urls: Vec<String>,
    /// Source URLs.
    pub source_urls: Vec<String>,
    /// Provided resolvables.
    pub provides: Vec<Provides>,
    /// Requirements.
    pub requires: Vec<Requirement>,
    /// Packages this one supplements.
    pub supplements: Vec<Requirement>,
    /// Conflicting packages.
    pub conflicts: Vec<Requirement>,
    /// Packages this one freshens.
    pub freshens: Vec<Requirement>,
    /// Packages this one replaces.
    pub replaces: Vec<String>,
    /// Base package (must also be required).
    pub base_package: Option<String>,
    /// Install path override (build packages).
    pub install_path: Option<String>,
    /// Global writable files.
    pub global_writable_files: Vec<GlobalWritableFile>,
    /// User settings files.
    pub user_settings_files: Vec<UserSettingsFile>,
    /// Users to create.
    pub users: Vec<User>,
    /// Groups to create.
    pub groups: Vec<String>,
    /// Post-install scripts (paths in the package).
    pub post_install_scripts: Vec<String>,
    /// Pre-uninstall scripts (paths in the package).
    pub pre_uninstall_scripts: Vec<String>,
    /// SHA-256 of the package file (repositories).
    pub checksum: Option<String>,
}

impl PackageInfo {
    /// The canonical file name `<name>-<version>-<arch>.hpkg` (spec §9.7).
    pub fn file_name(&self) -> String {
        format!("{}-{}-{}.hpkg", self.name, self.version, self.architecture)
    }

    /// Whether this package names itself a provider of `req`.
    pub fn satisfies(&self, req: &Requirement) -> bool {
        self.provides.iter().any(|p| req.is_met_by(p))
    }

    /// Apply one top-level package attribute (ids 15–55 except 54) read from `r`.
    /// Unknown ids are skipped when the file's minor version is newer than ours
    /// (the reader refuses them otherwise).
    pub(crate) fn apply(&mut self, r: &mut AttrReader<'_>, a: &Attr) -> Result<()> {
        let mut children_read = false;
        match a.id {
            ids::PACKAGE_NAME => self.name = r.string(a)?,
            ids::PACKAGE_SUMMARY => self.summary = r.string(a)?,
            ids::PACKAGE_DESCRIPTION => self.description = r.string(a)?,
            ids::PACKAGE_VENDOR => self.vendor = r.string(a)?,
            ids::PACKAGE_PACKAGER => self.packager = r.string(a)?,
            ids::PACKAGE_FLAGS => {
                let v = r.uint(a)?;
                self.flags = PackageFlags(u32::try_from(v).map_err(|_| {
                    Error::corrupt(
                        r.section().loc(a.at),
                        format!("package flags {v:#x} exceed 32 bits"),
                    )
                })?);
            }
            ids::PACKAGE_ARCHITECTURE => {
                let v = r.uint(a)?;
                self.architecture = Architecture::from_code(v).ok_or_else(|| {
                    Error::corrupt(r.section().loc(a.at), format!("unknown architecture {v}"))
                })?;
            }
            ids::VERSION_MAJOR => {
                self.version = read_version(r, a)?;
                children_read = true;
            }
            ids::PACKAGE_COPYRIGHT => self.copyrights.push(r.string(a)?),
            ids::PACKAGE_LICENSE => self.licenses.push(r.string(a)?),
            ids::PACKAGE_URL => self.urls.push(r.string(a)?),
            ids::PACKAGE_SOURCE_URL => self.source_urls.push(r.string(a)?),
            ids::PACKAGE_PROVIDES => {
                let mut p = Provides {
                    name: r.string(a)?,
                    ..Provides::default()
                };
                if a.has_children {
                    while let Some(c) = r.next_attr()? {
                        match c.id {
                            ids::VERSION_MAJOR => p.version = Some(read_version(r, &c)?),
                            ids::PROVIDES_COMPATIBLE => p.compatible = Some(read_version(r, &c)?),
                            _ => unexpected(r, &c, "package:provides")?,
                        }
                    }
                    children_read = true;
                }
                self.provides.push(p);
            }
            ids::PACKAGE_REQUIRES
            | ids::PACKAGE_SUPPLEMENTS
            | ids::PACKAGE_CONFLICTS
            | ids::PACKAGE_FRESHENS => {
                let req = read_requirement(r, a)?;
                children_read = a.has_children;
                match a.id {
                    ids::PACKAGE_REQUIRES => self.requires.push(req),
                    ids::PACKAGE_SUPPLEMENTS => self.supplements.push(req),
                    ids::PACKAGE_CONFLICTS => self.conflicts.push(req),
                    _ => self.freshens.push(req),
                }
            }
            ids::PACKAGE_REPLACES => self.replaces.push(r.string(a)?),
            ids::PACKAGE_CHECKSUM => self.checksum = Some(r.string(a)?),
            ids::PACKAGE_INSTALL_PATH => self.install_path = Some(r.string(a)?),
            ids::PACKAGE_BASE_PACKAGE => self.base_package = Some(r.string(a)?),
            ids::PACKAGE_GLOBAL_WRITABLE_FILE => {
                let mut f = GlobalWritableFile {
                    path: r.string(a)?,
                    ..Default::default()
                };
                if a.has_children {
                    while let Some(c) = r.next_attr()? {
                        match c.id {
                            ids::WRITABLE_FILE_UPDATE_TYPE => {
                                let v = r.uint(&c)?;
                                f.update_type = Some(
                                    WritableFileUpdateType::from_code(v).ok_or_else(|| {
                                        Error::corrupt(
                                            r.section().loc(c.at),
                                            format!("unknown writable-file update type {v}"),
                                        )
                                    })?,
                                );
                            }
                            ids::IS_WRITABLE_DIRECTORY => f.is_directory = r.uint(&c)? != 0,
                            _ => unexpected(r, &c, "package:global-writable-file")?,
                        }
                    }
                    children_read = true;
                }
                self.global_writable_files.push(f);
            }
            ids::PACKAGE_USER_SETTINGS_FILE => {
                let mut f = UserSettingsFile {
                    path: r.string(a)?,
                    ..Default::default()
                };
                if a.has_children {
                    while let Some(c) = r.next_attr()? {
                        match c.id {
                            ids::SETTINGS_FILE_TEMPLATE => f.template = Some(r.string(&c)?),
                            ids::IS_WRITABLE_DIRECTORY => f.is_directory = r.uint(&c)? != 0,
                            _ => unexpected(r, &c, "package:user-settings-file")?,
                        }
                    }
                    children_read = true;
                }
                self.user_settings_files.push(f);
            }
            ids::PACKAGE_USER => {
                let mut u = User {
                    name: r.string(a)?,
                    ..Default::default()
                };
                if a.has_children {
                    while let Some(c) = r.next_attr()? {
                        match c.id {
                            ids::USER_REAL_NAME => u.real_name = Some(r.string(&c)?),
                            ids::USER_HOME => u.home = Some(r.string(&c)?),
                            ids::USER_SHELL => u.shell = Some(r.string(&c)?),
                            ids::USER_GROUP => u.groups.push(r.string(&c)?),
                            _ => unexpected(r, &c, "package:user")?,
                        }
                    }
                    children_read = true;
                }
                self.users.push(u);
            }
            ids::PACKAGE_GROUP => self.groups.push(r.string(a)?),
            ids::PACKAGE_POST_INSTALL_SCRIPT => self.post_install_scripts.push(r.string(a)?),
            ids::PACKAGE_PRE_UNINSTALL_SCRIPT => self.pre_uninstall_scripts.push(r.string(a)?),
            _ => {
                unexpected(r, a, "the package attributes")?;
                children_read = true;
            }
        }
        if a.has_children && !children_read {
            r.skip_children()?;
        }
        Ok(())
    }
}

/// An attribute where it does not belong: skipped (with its subtree) when the
/// file is newer than this reader, an error otherwise (spec §13).
fn unexpected(r: &mut AttrReader<'_>, a: &Attr, context: &str) -> Result<()> {
    if r.section().minor() > ids::READER_MINOR_VERSION {
        if a.has_children {
            r.skip_children()?;
        }
        return Ok(());
    }
    Err(Error::corrupt(
        r.section().loc(a.at),
        format!(
            "unexpected attribute {} ({}) in {context}",
            a.id,
            ids::name(a.id).unwrap_or("unknown")
        ),
    ))
}

/// Read a version whose `major` is `a` and whose other parts are its children.
fn read_version(r: &mut AttrReader<'_>, a: &Attr) -> Result<Version> {
    let mut v = Version {
        major: r.string(a)?,
        ..Version::default()
    };
    if a.has_children {
        while let Some(c) = r.next_attr()? {
            match c.id {
                ids::VERSION_MINOR => v.minor = r.string(&c)?,
                ids::VERSION_MICRO => v.micro = r.string(&c)?,
                ids::VERSION_PRERELEASE => v.prerelease = r.string(&c)?,
                ids::VERSION_REVISION => {
                    let rev = r.uint(&c)?;
                    v.revision = u32::try_from(rev).map_err(|_| {
                        Error::corrupt(
                            r.section().loc(c.at),
                            format!("revision {rev} exceeds 32 bits"),
                        )
                    })?;
                }
                _ => unexpected(r, &c, "a version")?,
            }
            let is_part = matches!(
                c.id,
                ids::VERSION_MINOR
                    | ids::VERSION_MICRO
                    | ids::VERSION_PRERELEASE
                    | ids::VERSION_REVISION
            );
            if is_part && c.has_children {
                // Version parts never have children; a list here is skipped.
                r.skip_children()?;
            }
        }
    }
    Ok(v)
}

/// Read a `requires`-like attribute with its operator and version children.
fn read_requirement(r: &mut AttrReader<'_>, a: &Attr) -> Result<Requirement> {
    let mut req = Requirement {
        name: r.string(a)?,
        ..Requirement::default()
    };
    if a.has_children {
        while let Some(c) = r.next_attr()? {
            match c.id {
                ids::RESOLVABLE_OPERATOR => {
                    let v = r.uint(&c)?;
                    req.operator = Some(Operator::from_code(v).ok_or_else(|| {
                        Error::corrupt(r.section().loc(c.at), format!("unknown operator {v}"))
                    })?);
                }
                ids::VERSION_MAJOR => req.version = Some(read_version(r, &c)?),
                _ => unexpected(r, &c, "a requirement")?,
            }
        }
    }
    if req.operator.is_some() != req.version.is_some() {
        return Err(Error::corrupt(
            r.section().loc(a.at),
            format!(
                "requirement {:?} has an operator without a version or the reverse",
                req.name
            ),
        ));
    }
    Ok(req)
}
