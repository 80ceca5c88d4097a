//! From a read `.deb` to a Haiku package: the metadata mapping of the
//! module comment of [`super`], the alternatives rule over a batch, and the
//! package tree (data, `.DEBIAN/`, `.PackageInfo`).

use hpkg_format::{
    info_text, Architecture, PackageInfo, Provides, Requirement, Timestamp, TreeBuilder,
};

use super::archive::{DataEntry, Deb};
use super::control::{self, Control};
use super::relations::{self, Relation};
use super::usrmerge;
use super::version::DebVersion;
use super::ErrorKind;

/// The top-level directory holding the control member's files.
pub const DEBIAN_DIR: &str = ".DEBIAN";

/// The control files that are maintainer scripts (never run).
pub const MAINTAINER_SCRIPTS: [&str; 5] = ["preinst", "postinst", "prerm", "postrm", "config"];

/// A `.deb` read and its identity worked out, before its requirements are
/// resolved against the batch.
#[derive(Debug)]
pub struct Loaded {
    /// Its contents.
    pub deb: Deb,
    /// Its control paragraph.
    pub control: Control,
    /// Debian package name.
    pub deb_name: String,
    /// Debian version.
    pub version: DebVersion,
    /// Debian architecture.
    pub deb_arch: String,
    /// Haiku architecture.
    pub arch: Architecture,
    /// What it provides, itself included (Haiku names and versions).
    pub provides: Vec<Provides>,
}

/// The Haiku name of a Debian package name (`-` → `_`).
pub fn haiku_name(deb_name: &str) -> String {
    deb_name.replace('-', "_")
}

/// The Haiku architecture of a Debian one.
pub fn architecture(deb_arch: &str) -> Result<Architecture, ErrorKind> {
    Ok(match deb_arch {
        "amd64" => Architecture::X86_64,
        "i386" => Architecture::X86,
        "arm64" => Architecture::Arm64,
        "armhf" | "armel" => Architecture::Arm,
        "riscv64" => Architecture::Riscv64,
        "all" => Architecture::Any,
        other => return Err(ErrorKind::Architecture(other.to_string())),
    })
}

fn field<'a>(c: &'a Control, name: &str) -> Result<&'a str, ErrorKind> {
    c.get(name)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| ErrorKind::Control(format!("no {name} field")))
}

fn relation_field(l: &Loaded, name: &str) -> Result<Vec<Vec<Relation>>, ErrorKind> {
    match l.control.folded(name) {
        Some(v) => relations::parse(&v, &l.deb_arch).map_err(|reason| ErrorKind::Relation {
            field: name.to_string(),
            reason,
        }),
        None => Ok(Vec::new()),
    }
}

/// Read the control paragraph and work out name, version, architecture and
/// provides.
pub fn load(deb: Deb) -> Result<Loaded, ErrorKind> {
    let text = deb
        .control
        .iter()
        .find(|f| f.name == "control")
        .ok_or(ErrorKind::Control("no control file in control.tar".into()))?;
    let control =
        Control::parse(&String::from_utf8_lossy(&text.data)).map_err(ErrorKind::Control)?;
    let deb_name = field(&control, "Package")?.to_string();
    let valid_name = deb_name.len() >= 2
        && deb_name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
        && deb_name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if !valid_name {
        return Err(ErrorKind::Control(format!(
            "invalid package name {deb_name:?}"
        )));
    }
    let version = DebVersion::parse(field(&control, "Version")?).map_err(ErrorKind::Control)?;
    let deb_arch = field(&control, "Architecture")?.trim().to_string();
    let arch = architecture(&deb_arch)?;
    let mut loaded = Loaded {
        deb,
        control,
        deb_name,
        version,
        deb_arch,
        arch,
        provides: Vec::new(),
    };
    let mut provides = vec![Provides {
        name: haiku_name(&loaded.deb_name),
        version: Some(loaded.version.to_haiku()),
        compatible: None,
    }];
    for group in relation_field(&loaded, "Provides")? {
        for rel in group {
            let version = match rel.constraint {
                Some((hpkg_format::Operator::Equal, v)) => Some(v.to_haiku()),
                Some(_) => {
                    return Err(ErrorKind::Relation {
                        field: "Provides".into(),
                        reason: format!("{}: only `=` versions can be provided", rel.name),
                    })
                }
                None => None,
            };
            let p = Provides {
                name: haiku_name(&rel.name),
                version,
                compatible: None,
            };
            if !provides.contains(&p) {
                provides.push(p);
            }
        }
    }
    loaded.provides = provides;
    Ok(loaded)
}

fn requirement(rel: &Relation) -> Requirement {
    let (operator, version) = match &rel.constraint {
        Some((op, v)) => (Some(*op), Some(v.to_haiku())),
        None => (None, None),
    };
    Requirement {
        name: haiku_name(&rel.name),
        operator,
        version,
    }
}

/// What alternatives are resolved against: the provides of the batch, then
/// of the packages already in the output directory.
#[derive(Debug, Default)]
pub struct Providers {
    /// Provides of the `.deb`s of this batch.
    pub batch: Vec<Provides>,
    /// Provides of the `.hpkg` files already in the output directory.
    pub existing: Vec<Provides>,
}

impl Providers {
    /// One requirement for a group of alternatives (module comment).
    fn choose(&self, group: &[Relation]) -> Option<Requirement> {
        let reqs: Vec<Requirement> = group.iter().map(requirement).collect();
        let met_by = |set: &[Provides]| {
            reqs.iter()
                .find(|r| set.iter().any(|p| r.is_met_by(p)))
                .cloned()
        };
        met_by(&self.batch)
            .or_else(|| met_by(&self.existing))
            .or_else(|| reqs.first().cloned())
    }
}

/// The licenses of a DEP-5 copyright file: the distinct first words of its
/// `License:` fields, or `None` if it is not machine-readable.
fn dep5_licenses(text: &str) -> Option<Vec<String>> {
    let first = text.lines().next()?;
    if !first.starts_with("Format:") {
        return None;
    }
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("License:") {
            let v = v.trim();
            if !v.is_empty() && !out.iter().any(|o| o == v) {
                out.push(v.to_string());
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The package metadata of `l`.
pub fn package_info(l: &Loaded, providers: &Providers) -> Result<PackageInfo, ErrorKind> {
    let c = &l.control;
    let (summary, mut description) = control::description(field(c, "Description")?);
    if description.is_empty() {
        description = summary.clone();
    }
    let copyright_path = format!("usr/share/doc/{}/copyright", l.deb_name);
    let pointer = format!("see /{copyright_path}");
    let licenses = l
        .deb
        .data
        .iter()
        .find_map(|e| match e {
            DataEntry::File { path, data, .. } if path == copyright_path.as_bytes() => {
                dep5_licenses(&String::from_utf8_lossy(data))
            }
            _ => None,
        })
        .unwrap_or_else(|| vec![pointer.clone()]);
    let mut requires = Vec::new();
    for f in ["Pre-Depends", "Depends"] {
        for group in relation_field(l, f)? {
            if let Some(r) = providers.choose(&group) {
                if !requires.contains(&r) {
                    requires.push(r);
                }
            }
        }
    }
    let mut conflicts = Vec::new();
    for f in ["Conflicts", "Breaks"] {
        for group in relation_field(l, f)? {
            for rel in &group {
                let r = requirement(rel);
                if !conflicts.contains(&r) {
                    conflicts.push(r);
                }
            }
        }
    }
    let mut replaces = Vec::new();
    for group in relation_field(l, "Replaces")? {
        for rel in group {
            let n = haiku_name(&rel.name);
            if !replaces.contains(&n) {
                replaces.push(n);
            }
        }
    }
    let info = PackageInfo {
        name: haiku_name(&l.deb_name),
        summary,
        description,
        vendor: c
            .get("Origin")
            .filter(|o| !o.trim().is_empty())
            .unwrap_or("Debian")
            .to_string(),
        packager: c
            .get("Maintainer")
            .filter(|o| !o.trim().is_empty())
            .unwrap_or("unknown")
            .to_string(),
        architecture: l.arch,
        version: l.version.to_haiku(),
        copyrights: vec![pointer],
        licenses,
        urls: c
            .get("Homepage")
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(|h| vec![h.to_string()])
            .unwrap_or_default(),
        provides: l.provides.clone(),
        requires,
        conflicts,
        replaces,
        ..PackageInfo::default()
    };
    hpkg_format::writer::validate_info(&info).map_err(|e| ErrorKind::Control(e.to_string()))?;
    // The .PackageInfo written into the package must read back as `info`.
    match info_text::parse(&info_text::format(&info)) {
        Ok(back) if back == info => Ok(info),
        Ok(_) => Err(ErrorKind::Control(
            "the generated .PackageInfo does not read back the same".into(),
        )),
        Err(e) => Err(ErrorKind::Control(format!(
            "the generated .PackageInfo does not parse: {e}"
        ))),
    }
}

/// The package tree: the data member, `.DEBIAN/` and `.PackageInfo`.
/// Consumes the `.deb`'s contents (they move into the tree).
///
/// With `merge_usr` (`--merge-usr`), the data is moved by
/// [`usrmerge::merge`], `.DEBIAN/`[`usrmerge::MARKER`] is added, and the
/// given top-level links (`bin` → `usr/bin` …; empty but for the one
/// package that carries them) are added.
pub fn tree(
    deb: Deb,
    info: &PackageInfo,
    merge_usr: Option<&[String]>,
) -> Result<TreeBuilder, ErrorKind> {
    let mut t = TreeBuilder::new();
    let ts = Timestamp::from_secs;
    let mut newest = 0;
    let data = match merge_usr {
        Some(_) => usrmerge::merge(deb.data)?.data,
        None => deb.data,
    };
    for e in data {
        match e {
            DataEntry::Dir { path, mode, mtime } => t.add_dir(&path, mode, ts(mtime))?,
            DataEntry::File {
                path,
                mode,
                mtime,
                data,
            } => t.add_file(&path, mode, ts(mtime), data)?,
            DataEntry::Symlink {
                path,
                mode,
                mtime,
                target,
            } => t.add_symlink(&path, mode, ts(mtime), &target)?,
        }
    }
    for f in deb.control {
        newest = newest.max(f.mtime);
        let path = format!("{DEBIAN_DIR}/{}", f.name);
        t.add_file(path.as_bytes(), f.mode, ts(f.mtime), f.data)?;
    }
    if let Some(links) = merge_usr {
        let mut marker = format!(
            "Imported by pkgctl import-deb --merge-usr: /{{{}}} moved to /usr.\n",
            usrmerge::MERGED_DIRS.join(",")
        );
        for l in links {
            marker.push_str(&format!("Top-level link: {l} -> usr/{l}\n"));
            t.add_symlink(
                l.as_bytes(),
                0o777,
                ts(newest),
                format!("usr/{l}").as_bytes(),
            )?;
        }
        let path = format!("{DEBIAN_DIR}/{}", usrmerge::MARKER);
        t.add_file(path.as_bytes(), 0o644, ts(newest), marker.into_bytes())?;
    }
    t.add_dir(DEBIAN_DIR.as_bytes(), 0o755, ts(newest))?;
    t.add_file(
        b".PackageInfo",
        0o644,
        ts(newest),
        info_text::format(info).into_bytes(),
    )?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_architectures() {
        assert_eq!(haiku_name("python3.11-minimal"), "python3.11_minimal");
        assert_eq!(haiku_name("libstdc++6"), "libstdc++6");
        assert_eq!(architecture("all").unwrap(), Architecture::Any);
        assert!(matches!(
            architecture("s390x"),
            Err(ErrorKind::Architecture(a)) if a == "s390x"
        ));
    }

    fn loaded(control: &str) -> Loaded {
        use super::super::archive::ControlFile;
        let deb = Deb {
            control: vec![ControlFile {
                name: "control".into(),
                mode: 0o644,
                mtime: 1,
                data: control.as_bytes().to_vec(),
            }],
            data: Vec::new(),
            stored_size: 0,
        };
        load(deb).unwrap()
    }

    #[test]
    fn infos_validate_and_read_back_from_package_info_text() {
        for (name, version) in [
            ("libstdc++6", "12.2.0-14+deb12u1"),
            ("python3.11-minimal", "3.11.2-6+deb12u2"),
            ("x-y", "1:0.9.8~git20200101"),
        ] {
            let l = loaded(&format!(
                "Package: {name}\nVersion: {version}\nArchitecture: amd64\n\
                 Maintainer: M <m@example.invalid>\n\
                 Pre-Depends: libc6:any (>= 2.36)\n\
                 Depends: a-b | c (<< 1~x), d [!amd64], e:native (= 1.0-1)\n\
                 Provides: v-1 (= 2), w\nBreaks: old (<< 1)\nReplaces: old (<< 1)\n\
                 Description: s\n"
            ));
            let info = package_info(&l, &Providers::default()).unwrap();
            assert_eq!(info.name, name.replace('-', "_"));
            assert_eq!(info_text::parse(&info_text::format(&info)).unwrap(), info);
            let reqs: Vec<String> = info.requires.iter().map(|r| r.to_string()).collect();
            assert_eq!(reqs.len(), 3, "{reqs:?}");
            assert!(reqs[0].starts_with("libc6 >= "), "{reqs:?}");
            assert!(reqs[1].starts_with("a_b"), "{reqs:?}");
            assert!(reqs[2].starts_with("e == "), "{reqs:?}");
            assert_eq!(info.provides.len(), 3);
            assert_eq!(info.replaces, ["old"]);
            assert_eq!(info.description, "s");
        }
        // The batch decides between alternatives.
        let l =
            loaded("Package: pp\nVersion: 1\nArchitecture: all\nDepends: a | c\nDescription: s\n");
        let providers = Providers {
            batch: vec![Provides {
                name: "c".into(),
                version: None,
                compatible: None,
            }],
            existing: Vec::new(),
        };
        let info = package_info(&l, &providers).unwrap();
        assert_eq!(info.requires[0].name, "c");
        assert_eq!(info.packager, "unknown");
    }

    #[test]
    fn dep5() {
        let t = "Format: https://x\n\nFiles: *\nLicense: GPL-2+\n\nFiles: a\nLicense: MIT\n text\n\nLicense: GPL-2+\n";
        assert_eq!(dep5_licenses(t).unwrap(), ["GPL-2+", "MIT"]);
        assert!(dep5_licenses("This is free software").is_none());
    }
}
