//! How packages and versions are shown to people.
//!
//! A package imported from Debian carries an order-keeping encoding of its
//! Debian version (`2.36-9+deb12u4` is `0.2.2zd36._9zbdeb12u4._-1`, see
//! [`crate::debian_version`]). Everything shown to people — dependency
//! errors, `pkgctl status` and `list`, the daemon's `user.packagefs.package`
//! attribute and log — shows the Debian version instead, through
//! [`version`]; any other version is shown as it is.

use hpkg_format::{PackageInfo, Requirement, Version};

use crate::debian_version::DebVersion;

/// `v` for people: the Debian version it encodes, else `v` itself.
pub fn version(v: &Version) -> String {
    match DebVersion::from_haiku(v) {
        Some(deb) => deb.to_string(),
        None => v.to_string(),
    }
}

/// The version of a package for people (see [`version`]).
pub fn display_version(info: &PackageInfo) -> String {
    version(&info.version)
}

/// `name-version` of a package for people (see [`version`]): what
/// dependency errors, `pkgctl status` and `user.packagefs.package` show.
pub fn label(info: &PackageInfo) -> String {
    format!("{}-{}", info.name, display_version(info))
}

/// A requirement as text for people (`lib:libc6 >= 2.36`): as
/// `Requirement`'s own `Display`, with the version through [`version`].
pub fn requirement(r: &Requirement) -> String {
    match (&r.operator, &r.version) {
        (Some(op), Some(v)) => format!("{} {op} {}", r.name, version(v)),
        _ => r.name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hpkg_format::Operator;

    #[test]
    fn debian_versions_are_shown_decoded_and_others_as_they_are() {
        let deb = DebVersion::parse("1:2.36-9+deb12u4").unwrap().to_haiku();
        let info = PackageInfo {
            name: "libc6".into(),
            version: deb.clone(),
            ..PackageInfo::default()
        };
        assert_eq!(display_version(&info), "1:2.36-9+deb12u4");
        assert_eq!(label(&info), "libc6-1:2.36-9+deb12u4");
        let plain = PackageInfo {
            name: "tipster".into(),
            version: Version::parse("1.1.1-1").unwrap(),
            ..PackageInfo::default()
        };
        assert_eq!(label(&plain), "tipster-1.1.1-1");
        let req = Requirement {
            name: "libc6".into(),
            operator: Some(Operator::GreaterEqual),
            version: Some(deb),
        };
        assert_eq!(requirement(&req), "libc6 >= 1:2.36-9+deb12u4");
        let unversioned = Requirement {
            name: "cmd:sh".into(),
            ..Requirement::default()
        };
        assert_eq!(requirement(&unversioned), unversioned.to_string());
    }
}
