//! The package-attributes section of a new package (`docs/hpkg-format.md` §9): a
//! [`PackageInfo`] turned into attributes in the order Haiku's writer uses
//! (spec §9.6), and the checks Haiku's package builder makes before it
//! writes anything.

use crate::error::{Error, Result};
use crate::ids;
use crate::info::{PackageInfo, Requirement};
use crate::version::Version;

use super::section::Node;

/// Refuse metadata Haiku's package builder would refuse (spec §9.6).
///
/// Checked: non-empty name (without `-`, `/`, `=`, `!`, `<`, `>` or
/// whitespace, spec §7 id 15), summary, description, vendor and packager; a
/// valid version (non-empty major, no micro without minor, none of
/// `-~<>=!/` or whitespace in a part);
/// at least one copyright, one license and one `provides`; every versioned
/// expression well formed; every group of a user declared in `groups`; a
/// base package that is also required; no NUL byte anywhere.
///
/// Not checked: Haiku's licence policy (a licence unknown to the build
/// system must be shipped under `data/licenses/`), which depends on the
/// build host.
pub(crate) fn validate(info: &PackageInfo) -> Result<()> {
    let bad = |msg: String| Err(Error::InvalidInfo(msg));
    // Every empty required field at once.
    let empty: Vec<&str> = [
        ("name", info.name.is_empty()),
        ("summary", info.summary.is_empty()),
        ("description", info.description.is_empty()),
        ("vendor", info.vendor.is_empty()),
        ("packager", info.packager.is_empty()),
        ("copyrights", info.copyrights.is_empty()),
        ("licenses", info.licenses.is_empty()),
        ("provides", info.provides.is_empty()),
    ]
    .into_iter()
    .filter(|(_, empty)| *empty)
    .map(|(field, _)| field)
    .collect();
    if !empty.is_empty() {
        return bad(format!("empty: {} (each needs a value)", empty.join(", ")));
    }
    check_name("package name", &info.name)?;
    check_version("version", &info.version)?;
    for p in &info.provides {
        check_resolvable_name("provides", &p.name)?;
        if let Some(v) = &p.version {
            check_version(&format!("version of provided {}", p.name), v)?;
        }
        if let Some(v) = &p.compatible {
            check_version(&format!("compat version of provided {}", p.name), v)?;
        }
    }
    for (what, list) in [
        ("requires", &info.requires),
        ("supplements", &info.supplements),
        ("conflicts", &info.conflicts),
        ("freshens", &info.freshens),
    ] {
        for r in list {
            check_requirement(what, r)?;
        }
    }
    for r in &info.replaces {
        check_resolvable_name("replaces", r)?;
    }
    if let Some(base) = &info.base_package {
        if !base.is_empty() && !info.requires.iter().any(|r| &r.name == base) {
            return bad(format!("base package {base:?} is not required"));
        }
    }
    for u in &info.users {
        if u.name.is_empty() {
            return bad("a user has no name".into());
        }
        for g in &u.groups {
            if !info.groups.contains(g) {
                return bad(format!(
                    "group {g:?} of user {:?} is not declared in groups",
                    u.name
                ));
            }
        }
    }
    for (what, list) in [
        ("group", &info.groups),
        ("post-install script", &info.post_install_scripts),
        ("pre-uninstall script", &info.pre_uninstall_scripts),
    ] {
        if list.iter().any(String::is_empty) {
            return bad(format!("an empty {what}"));
        }
    }
    if info.global_writable_files.iter().any(|f| f.path.is_empty())
        || info.user_settings_files.iter().any(|f| f.path.is_empty())
    {
        return bad("a writable or settings file has an empty path".into());
    }
    check_no_nul(info)
}

/// The checks a package read back from a file must still pass to be
/// written again: a name, and no NUL byte in any string.
pub(crate) fn check_encodable(info: &PackageInfo) -> Result<()> {
    if info.name.is_empty() {
        return Err(Error::InvalidInfo("name is empty".into()));
    }
    check_no_nul(info)
}

fn check_name(what: &str, name: &str) -> Result<()> {
    if let Some(c) = name
        .chars()
        .find(|&c| c.is_whitespace() || "-/=!<>".contains(c))
    {
        return Err(Error::InvalidInfo(format!(
            "{what} {name:?} contains {c:?}"
        )));
    }
    Ok(())
}

/// Resolvable names (`provides`, `requires` …) only need to be non-empty:
/// the format puts no rule on their characters.
fn check_resolvable_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::InvalidInfo(format!("an empty name in {what}")));
    }
    Ok(())
}

fn check_version(what: &str, v: &Version) -> Result<()> {
    if v.major.is_empty() {
        return Err(Error::InvalidInfo(format!("{what} has no major part")));
    }
    if v.minor.is_empty() && !v.micro.is_empty() {
        return Err(Error::InvalidInfo(format!(
            "{what} has a micro part but no minor part"
        )));
    }
    for part in [&v.major, &v.minor, &v.micro, &v.prerelease] {
        if let Some(c) = part
            .chars()
            .find(|&c| c.is_whitespace() || "-~<>=!/".contains(c))
        {
            return Err(Error::InvalidInfo(format!("{what} {v} contains {c:?}")));
        }
    }
    Ok(())
}

fn check_requirement(what: &str, r: &Requirement) -> Result<()> {
    check_resolvable_name(what, &r.name)?;
    match (&r.operator, &r.version) {
        (Some(_), Some(v)) => check_version(&format!("version in {what} {}", r.name), v),
        (None, None) => Ok(()),
        _ => Err(Error::InvalidInfo(format!(
            "{what} {}: an operator needs a version and a version an operator",
            r.name
        ))),
    }
}

fn check_no_nul(info: &PackageInfo) -> Result<()> {
    let mut found = None;
    visit_strings(info, &mut |s| {
        if found.is_none() && s.contains('\0') {
            found = Some(s.to_string());
        }
    });
    match found {
        Some(s) => Err(Error::InvalidInfo(format!("{s:?} contains a NUL byte"))),
        None => Ok(()),
    }
}

fn visit_strings(info: &PackageInfo, f: &mut dyn FnMut(&str)) {
    let version = |v: &Version, f: &mut dyn FnMut(&str)| {
        for s in [&v.major, &v.minor, &v.micro, &v.prerelease] {
            f(s);
        }
    };
    for s in [
        &info.name,
        &info.summary,
        &info.description,
        &info.vendor,
        &info.packager,
    ] {
        f(s);
    }
    version(&info.version, f);
    for s in info
        .copyrights
        .iter()
        .chain(&info.licenses)
        .chain(&info.urls)
        .chain(&info.source_urls)
        .chain(&info.replaces)
        .chain(&info.groups)
        .chain(&info.post_install_scripts)
        .chain(&info.pre_uninstall_scripts)
        .chain(&info.base_package)
        .chain(&info.install_path)
        .chain(&info.checksum)
    {
        f(s);
    }
    for p in &info.provides {
        f(&p.name);
        for v in p.version.iter().chain(&p.compatible) {
            version(v, f);
        }
    }
    for r in info
        .requires
        .iter()
        .chain(&info.supplements)
        .chain(&info.conflicts)
        .chain(&info.freshens)
    {
        f(&r.name);
        if let Some(v) = &r.version {
            version(v, f);
        }
    }
    for w in &info.global_writable_files {
        f(&w.path);
    }
    for u in &info.user_settings_files {
        f(&u.path);
        if let Some(t) = &u.template {
            f(t);
        }
    }
    for u in &info.users {
        f(&u.name);
        for s in u
            .real_name
            .iter()
            .chain(&u.home)
            .chain(&u.shell)
            .chain(&u.groups)
        {
            f(s);
        }
    }
}

/// A version: `major` with id `id`, its other parts as children (spec §9.1).
/// The micro part is written whenever it is non-empty (Haiku's writer drops
/// it without a minor part; [`validate`] refuses that combination for new
/// packages, and a package read back keeps what it had).
fn version(id: u8, v: &Version) -> Node {
    let mut n = Node::string(id, v.major.as_str());
    if !v.minor.is_empty() {
        n.children
            .push(Node::string(ids::VERSION_MINOR, v.minor.as_str()));
    }
    if !v.micro.is_empty() {
        n.children
            .push(Node::string(ids::VERSION_MICRO, v.micro.as_str()));
    }
    if !v.prerelease.is_empty() {
        n.children
            .push(Node::string(ids::VERSION_PRERELEASE, v.prerelease.as_str()));
    }
    if v.revision != 0 {
        n.children
            .push(Node::uint(ids::VERSION_REVISION, u64::from(v.revision)));
    }
    n
}

fn strings(out: &mut Vec<Node>, id: u8, list: &[String]) {
    out.extend(list.iter().map(|s| Node::string(id, s.as_str())));
}

fn optional(out: &mut Vec<Node>, id: u8, value: &Option<String>) {
    if let Some(s) = value.as_deref().filter(|s| !s.is_empty()) {
        out.push(Node::string(id, s));
    }
}

fn requirements(out: &mut Vec<Node>, id: u8, list: &[Requirement]) {
    for r in list {
        let mut n = Node::string(id, r.name.as_str());
        if let (Some(op), Some(v)) = (r.operator, &r.version) {
            n.children
                .push(Node::uint(ids::RESOLVABLE_OPERATOR, op as u64));
            n.children.push(version(ids::VERSION_MAJOR, v));
        }
        out.push(n);
    }
}

/// The top-level attribute list of the package-attributes section, in the
/// order of Haiku's writer (spec §9.6).
pub(crate) fn attributes(info: &PackageInfo) -> Vec<Node> {
    let mut out = vec![
        Node::string(ids::PACKAGE_NAME, info.name.as_str()),
        Node::string(ids::PACKAGE_SUMMARY, info.summary.as_str()),
        Node::string(ids::PACKAGE_DESCRIPTION, info.description.as_str()),
        Node::string(ids::PACKAGE_VENDOR, info.vendor.as_str()),
        Node::string(ids::PACKAGE_PACKAGER, info.packager.as_str()),
    ];
    optional(&mut out, ids::PACKAGE_BASE_PACKAGE, &info.base_package);
    out.push(Node::uint(ids::PACKAGE_FLAGS, u64::from(info.flags.0)));
    out.push(Node::uint(
        ids::PACKAGE_ARCHITECTURE,
        info.architecture as u64,
    ));
    out.push(version(ids::VERSION_MAJOR, &info.version));
    strings(&mut out, ids::PACKAGE_COPYRIGHT, &info.copyrights);
    strings(&mut out, ids::PACKAGE_LICENSE, &info.licenses);
    strings(&mut out, ids::PACKAGE_URL, &info.urls);
    strings(&mut out, ids::PACKAGE_SOURCE_URL, &info.source_urls);
    for p in &info.provides {
        let mut n = Node::string(ids::PACKAGE_PROVIDES, p.name.as_str());
        if let Some(v) = &p.version {
            n.children.push(version(ids::VERSION_MAJOR, v));
        }
        if let Some(v) = &p.compatible {
            n.children.push(version(ids::PROVIDES_COMPATIBLE, v));
        }
        out.push(n);
    }
    requirements(&mut out, ids::PACKAGE_REQUIRES, &info.requires);
    requirements(&mut out, ids::PACKAGE_SUPPLEMENTS, &info.supplements);
    requirements(&mut out, ids::PACKAGE_CONFLICTS, &info.conflicts);
    requirements(&mut out, ids::PACKAGE_FRESHENS, &info.freshens);
    strings(&mut out, ids::PACKAGE_REPLACES, &info.replaces);
    for f in &info.global_writable_files {
        let mut n = Node::string(ids::PACKAGE_GLOBAL_WRITABLE_FILE, f.path.as_str());
        if f.is_directory {
            n.children.push(Node::uint(ids::IS_WRITABLE_DIRECTORY, 1));
        }
        if let Some(t) = f.update_type {
            n.children
                .push(Node::uint(ids::WRITABLE_FILE_UPDATE_TYPE, t as u64));
        }
        out.push(n);
    }
    for f in &info.user_settings_files {
        let mut n = Node::string(ids::PACKAGE_USER_SETTINGS_FILE, f.path.as_str());
        if f.is_directory {
            n.children.push(Node::uint(ids::IS_WRITABLE_DIRECTORY, 1));
        }
        optional(&mut n.children, ids::SETTINGS_FILE_TEMPLATE, &f.template);
        out.push(n);
    }
    for u in &info.users {
        let mut n = Node::string(ids::PACKAGE_USER, u.name.as_str());
        optional(&mut n.children, ids::USER_REAL_NAME, &u.real_name);
        optional(&mut n.children, ids::USER_HOME, &u.home);
        optional(&mut n.children, ids::USER_SHELL, &u.shell);
        strings(&mut n.children, ids::USER_GROUP, &u.groups);
        out.push(n);
    }
    strings(&mut out, ids::PACKAGE_GROUP, &info.groups);
    strings(
        &mut out,
        ids::PACKAGE_POST_INSTALL_SCRIPT,
        &info.post_install_scripts,
    );
    strings(
        &mut out,
        ids::PACKAGE_PRE_UNINSTALL_SCRIPT,
        &info.pre_uninstall_scripts,
    );
    optional(&mut out, ids::PACKAGE_CHECKSUM, &info.checksum);
    optional(&mut out, ids::PACKAGE_INSTALL_PATH, &info.install_path);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::info::{Provides, User};
    use crate::version::Operator;

    fn valid() -> PackageInfo {
        PackageInfo {
            name: "pkg".into(),
            summary: "s".into(),
            description: "d".into(),
            vendor: "v".into(),
            packager: "p".into(),
            version: Version::parse("1.2-1").unwrap(),
            copyrights: vec!["c".into()],
            licenses: vec!["MIT".into()],
            provides: vec![Provides {
                name: "pkg".into(),
                ..Provides::default()
            }],
            ..PackageInfo::default()
        }
    }

    #[test]
    fn a_complete_info_is_valid() {
        validate(&valid()).unwrap();
    }

    #[test]
    fn incomplete_info_is_refused() {
        type Change = Box<dyn Fn(&mut PackageInfo)>;
        let cases: Vec<(&str, Change)> = vec![
            ("empty name", Box::new(|i| i.name.clear())),
            ("empty summary", Box::new(|i| i.summary.clear())),
            ("empty description", Box::new(|i| i.description.clear())),
            ("empty vendor", Box::new(|i| i.vendor.clear())),
            ("empty packager", Box::new(|i| i.packager.clear())),
            ("bad name", Box::new(|i| i.name = "a-b".into())),
            ("no version", Box::new(|i| i.version = Version::default())),
            ("no copyright", Box::new(|i| i.copyrights.clear())),
            ("no license", Box::new(|i| i.licenses.clear())),
            ("no provides", Box::new(|i| i.provides.clear())),
            (
                "undeclared group",
                Box::new(|i| {
                    i.users.push(User {
                        name: "u".into(),
                        groups: vec!["g".into()],
                        ..User::default()
                    })
                }),
            ),
            (
                "operator without version",
                Box::new(|i| {
                    i.requires.push(Requirement {
                        name: "x".into(),
                        operator: Some(Operator::Less),
                        version: None,
                    })
                }),
            ),
            (
                "base package not required",
                Box::new(|i| i.base_package = Some("base".into())),
            ),
            ("NUL", Box::new(|i| i.urls.push("a\0b".into()))),
        ];
        for (what, change) in cases {
            let mut info = valid();
            change(&mut info);
            match validate(&info) {
                Err(Error::InvalidInfo(_)) => {}
                other => panic!("{what}: {other:?}"),
            }
        }
        // Every empty field is named at once.
        let mut info = valid();
        info.summary.clear();
        info.licenses.clear();
        info.provides.clear();
        match validate(&info) {
            Err(Error::InvalidInfo(m)) => {
                assert_eq!(m, "empty: summary, licenses, provides (each needs a value)")
            }
            other => panic!("{other:?}"),
        }
        // Declared groups are fine.
        let mut info = valid();
        info.groups.push("g".into());
        info.users.push(User {
            name: "u".into(),
            groups: vec!["g".into()],
            ..User::default()
        });
        validate(&info).unwrap();
    }
}
