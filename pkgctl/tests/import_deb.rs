//! `pkgctl import-deb` against real Debian packages and against dpkg's own
//! tools: the metadata `pkgctl info --json` shows is compared with what
//! `dpkg-deb -f` says, and `pkgctl extract` of the imported package with
//! `dpkg-deb -x` of the `.deb` (paths, types, all 12 mode bits, symlink
//! targets, contents, modification times). Packages come from
//! `apt-get download` (see `packagefs_tests::debs`); small `.deb`s with zstd,
//! gzip and uncompressed members, device nodes, and broken ones are built
//! here with `dpkg-deb --build`.

use state::debian_version as version;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hpkg_format::Version;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Ordinary packages covering: setuid/setgid files (mount, passwd), symlinks,
/// hard links (gzip), an epoch and `+debNuN` (passwd), `~` (libudev1),
/// alternatives and a versioned Provides (apt, gzip), versioned Provides with
/// an epoch (libgcc-s1), Pre-Depends (mount, gzip), Breaks/Replaces
/// (sysvinit-utils).
const PACKAGES: [&str; 7] = [
    "mount",
    "passwd",
    "gzip",
    "libgcc-s1",
    "libudev1",
    "apt",
    "sysvinit-utils",
];

fn pkgctl(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pkgctl"))
        .args(args)
        .output()
        .expect("run pkgctl")
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `dpkg-deb -f DEB FIELD`, empty when absent.
fn field(deb: &Path, name: &str) -> String {
    let out = run(Command::new("dpkg-deb").arg("-f").arg(deb).arg(name));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// One alternative of a relation: name and `(operator, version)`.
type Alternative = (String, Option<(String, String)>);

/// Groups of alternatives `(name, Some((op, version)))`, parsed here
/// independently of pkgctl: qualifiers `:any` dropped.
fn relations(text: &str) -> Vec<Vec<Alternative>> {
    text.split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(|g| {
            g.split('|')
                .map(|alt| {
                    let alt = alt.trim();
                    let name_end = alt.find([' ', '(', ':']).unwrap_or(alt.len());
                    let name = alt[..name_end].to_string();
                    let constraint = alt.split_once('(').map(|(_, r)| {
                        let inner = r.split(')').next().unwrap().trim();
                        let op_end = inner.find(|c: char| !"<=>".contains(c)).unwrap();
                        (
                            inner[..op_end].trim().to_string(),
                            inner[op_end..].trim().to_string(),
                        )
                    });
                    (name, constraint)
                })
                .collect()
        })
        .collect()
}

fn haiku_name(n: &str) -> String {
    n.replace('-', "_")
}

fn haiku_op(op: &str) -> &'static str {
    match op {
        "<<" => "<",
        "<=" | "<" => "<=",
        "=" => "==",
        ">=" | ">" => ">=",
        ">>" => ">",
        other => panic!("operator {other}"),
    }
}

fn haiku_arch(a: &str) -> &'static str {
    match a {
        "amd64" => "x86_64",
        "i386" => "x86",
        "arm64" => "arm64",
        "armhf" | "armel" => "arm",
        "riscv64" => "riscv64",
        "all" => "any",
        other => panic!("architecture {other}"),
    }
}

fn json_version(v: &Value) -> Version {
    Version::new(
        v["major"].as_str().unwrap(),
        v["minor"].as_str().unwrap(),
        v["micro"].as_str().unwrap(),
        v["prerelease"].as_str().unwrap(),
        v["revision"].as_u64().unwrap() as u32,
    )
}

/// The output file `import-deb` writes for `deb` in `dir`.
fn output_of(deb: &Path, dir: &Path) -> PathBuf {
    let v = field(deb, "Version");
    let v = v.split_once(':').map_or(v.as_str(), |(_, r)| r).to_string();
    dir.join(format!(
        "{}-{}-{}.hpkg",
        haiku_name(&field(deb, "Package")),
        v,
        haiku_arch(&field(deb, "Architecture"))
    ))
}

/// `pkgctl import-deb FLAGS -o DIR DEBS...`.
fn import_with(flags: &[&str], debs: &[PathBuf], dir: &Path) -> Output {
    let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"import-deb"];
    for f in flags {
        args.push(f);
    }
    args.push(&"-o");
    args.push(&dir);
    for d in debs {
        args.push(d);
    }
    pkgctl(&args)
}

fn import(debs: &[PathBuf], dir: &Path) -> Output {
    import_with(&[], debs, dir)
}

/// `out`, after checking that its command succeeded.
fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn info_json(hpkg: &Path) -> Value {
    let out = ok(pkgctl(&[&"info", &"--json", &hpkg]));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn names(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect()
}

fn dpkg_cmp(a: &str, op: &str, b: &str) -> bool {
    Command::new("dpkg")
        .args(["--compare-versions", a, op, b])
        .status()
        .expect("dpkg")
        .success()
}

#[test]
fn metadata_matches_dpkg_deb() {
    let debs = packagefs_tests::debs::require(&PACKAGES);
    let tmp = tempfile::tempdir().unwrap();
    let out = ok(import(&debs, tmp.path()));
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(
        summary.contains(&format!("imported {} packages", debs.len()))
            && summary.contains("; 0 failed"),
        "{summary}"
    );
    let batch_names: BTreeSet<String> = debs.iter().map(|d| field(d, "Package")).collect();

    let mut versions = Vec::new();
    for deb in &debs {
        let hpkg = output_of(deb, tmp.path());
        let doc = info_json(&hpkg);
        let info = &doc["info"];
        let pkg = field(deb, "Package");
        let what = pkg.as_str();
        assert_eq!(info["name"], haiku_name(&pkg), "{what}");
        assert_eq!(
            info["architecture"],
            haiku_arch(&field(deb, "Architecture")),
            "{what}"
        );
        let description = field(deb, "Description");
        assert_eq!(
            info["summary"],
            description.lines().next().unwrap().trim(),
            "{what}"
        );
        assert_eq!(info["packager"], field(deb, "Maintainer"), "{what}");
        assert_eq!(info["vendor"], "Debian", "{what}");
        let homepage = field(deb, "Homepage");
        let urls: Vec<&str> = info["urls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u.as_str().unwrap())
            .collect();
        assert_eq!(
            urls,
            if homepage.is_empty() {
                vec![]
            } else {
                vec![homepage.as_str()]
            },
            "{what}"
        );

        // The Debian version and the maintainer scripts, from the kept control files.
        assert_eq!(doc["debian"]["version"], field(deb, "Version"), "{what}");
        let ctrl = run(Command::new("sh")
            .arg("-c")
            .arg("dpkg-deb --ctrl-tarfile \"$1\" | tar t")
            .arg("sh")
            .arg(deb));
        let members: BTreeSet<String> = String::from_utf8_lossy(&ctrl.stdout)
            .lines()
            .map(|l| l.trim_start_matches("./").to_string())
            .filter(|l| !l.is_empty())
            .collect();
        let scripts: Vec<String> = ["preinst", "postinst", "prerm", "postrm", "config"]
            .iter()
            .filter(|s| members.contains(**s))
            .map(|s| s.to_string())
            .collect();
        let shown: Vec<String> = doc["debian"]["maintainer_scripts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        assert_eq!(shown, scripts, "{what}");
        let files: BTreeSet<String> = doc["debian"]["control_files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        assert_eq!(files, members, "{what}");

        // Provides: itself at its version, and every Debian Provides.
        let provides = info["provides"].as_array().unwrap();
        let own = provides
            .iter()
            .find(|p| p["name"] == haiku_name(&pkg))
            .unwrap();
        assert_eq!(
            json_version(&own["version"]),
            json_version(&info["version"]),
            "{what}"
        );
        for group in relations(&field(deb, "Provides")) {
            let (name, c) = &group[0];
            let p = provides
                .iter()
                .find(|p| p["name"] == haiku_name(name))
                .unwrap_or_else(|| panic!("{what}: provides {name} missing"));
            assert_eq!(p["version"].is_null(), c.is_none(), "{what}: {name}");
            if let Some((_, v)) = c {
                let mapped = version::DebVersion::parse(v).unwrap().to_haiku();
                assert_eq!(json_version(&p["version"]), mapped, "{what}: {name}");
            }
        }

        // Requires: one per group of Pre-Depends + Depends, on one of its
        // alternatives (the first one in the batch if any), operator mapped.
        let requires = info["requires"].as_array().unwrap();
        let mut groups = relations(&field(deb, "Pre-Depends"));
        groups.extend(relations(&field(deb, "Depends")));
        for group in &groups {
            let r = requires
                .iter()
                .find(|r| group.iter().any(|(n, _)| r["name"] == haiku_name(n)))
                .unwrap_or_else(|| panic!("{what}: no requirement for {group:?}"));
            let (name, c) = group
                .iter()
                .find(|(n, _)| r["name"] == haiku_name(n))
                .unwrap();
            if let Some(first_in_batch) = group.iter().find(|(n, _)| batch_names.contains(n)) {
                assert_eq!(&first_in_batch.0, name, "{what}: alternatives {group:?}");
            } else if group.len() > 1
                && !batch_names
                    .iter()
                    .any(|b| group.iter().any(|(n, _)| n == b))
            {
                // Nothing of the batch provides it by name: the first alternative,
                // unless a Provides in the batch met a later one (not the case
                // for these packages' groups on their first alternative's name).
                assert!(group.iter().any(|(n, _)| n == name), "{what}: {group:?}");
            }
            match c {
                Some((op, v)) => {
                    assert_eq!(r["operator"], haiku_op(op), "{what}: {name}");
                    let mapped = version::DebVersion::parse(v).unwrap().to_haiku();
                    assert_eq!(json_version(&r["version"]), mapped, "{what}: {name}");
                }
                None => assert!(r["operator"].is_null(), "{what}: {name}"),
            }
        }
        assert!(
            requires.len() <= groups.len(),
            "{what}: more requirements than groups"
        );

        // Conflicts = Conflicts + Breaks; Replaces by name.
        let mut want: BTreeSet<String> = BTreeSet::new();
        for f in ["Conflicts", "Breaks"] {
            for g in relations(&field(deb, f)) {
                want.extend(g.iter().map(|(n, _)| haiku_name(n)));
            }
        }
        assert_eq!(names(&info["conflicts"]), want, "{what}");
        let replaces: BTreeSet<String> = relations(&field(deb, "Replaces"))
            .iter()
            .flatten()
            .map(|(n, _)| haiku_name(n))
            .collect();
        let shown: BTreeSet<String> = info["replaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect();
        assert_eq!(shown, replaces, "{what}");
        versions.push((field(deb, "Version"), json_version(&info["version"])));
    }
    // The mapped versions order the packages as dpkg does.
    for (a, ha) in &versions {
        for (b, hb) in &versions {
            let op = match ha.compare(hb) {
                std::cmp::Ordering::Less => "lt",
                std::cmp::Ordering::Equal => "eq",
                std::cmp::Ordering::Greater => "gt",
            };
            assert!(dpkg_cmp(a, op, b), "{a} {op} {b}");
        }
    }
    // The coverage this test is meant to have.
    let all: String = debs.iter().map(|d| field(d, "Version")).collect();
    assert!(
        all.contains(':') && all.contains('~') && all.contains("+deb"),
        "{all}"
    );
}

/// One entry of a tree: kind, 12 mode bits, symlink target or content hash,
/// modification time in seconds, link count.
#[derive(Debug, PartialEq, Eq)]
struct Node {
    kind: char,
    mode: u32,
    payload: String,
    mtime: i64,
}

/// Every path under `root` (without `root` itself), `skip_top` names left out.
fn walk(root: &Path, skip_top: &[&str]) -> (BTreeMap<String, Node>, BTreeMap<String, u64>) {
    let mut out = BTreeMap::new();
    let mut nlinks = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if skip_top.contains(&rel.as_str()) {
                continue;
            }
            let m = fs::symlink_metadata(&p).unwrap();
            let (kind, payload) = if m.file_type().is_symlink() {
                (
                    'l',
                    fs::read_link(&p).unwrap().to_string_lossy().into_owned(),
                )
            } else if m.is_dir() {
                stack.push(p.clone());
                ('d', String::new())
            } else {
                nlinks.insert(rel.clone(), m.nlink());
                ('f', format!("{:x}", Sha256::digest(fs::read(&p).unwrap())))
            };
            out.insert(
                rel,
                Node {
                    kind,
                    mode: m.permissions().mode() & 0o7777,
                    payload,
                    mtime: m.mtime(),
                },
            );
        }
    }
    (out, nlinks)
}

/// What the comparison saw, to prove the test covers what it claims.
#[derive(Debug, Default)]
struct Seen {
    setuid: usize,
    setgid: usize,
    sticky: usize,
    symlinks: usize,
    hard_links: usize,
}

/// `pkgctl extract` of `hpkg` equals `dpkg-deb -x` of `deb`.
fn assert_same_tree(deb: &Path, hpkg: &Path, seen: &mut Seen) {
    let tmp = tempfile::tempdir().unwrap();
    let (ours, theirs) = (tmp.path().join("hpkg"), tmp.path().join("deb"));
    ok(pkgctl(&[&"extract", &hpkg, &ours]));
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&theirs));
    // dpkg-deb -x does not restore the times of directories (nor does GNU
    // tar, whose delayed symlinks touch them): take those from the headers
    // of the data member as `dpkg-deb --fsys-tarfile` decodes it.
    let tarfile = run(Command::new("dpkg-deb").arg("--fsys-tarfile").arg(deb)).stdout;
    let mut dirs = BTreeMap::new();
    for e in tar::Archive::new(&tarfile[..]).entries().unwrap() {
        let e = e.unwrap();
        if e.header().entry_type().is_dir() {
            let p = e
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_start_matches("./")
                .trim_end_matches('/')
                .to_string();
            dirs.insert(p, e.header().mtime().unwrap() as i64);
        }
    }
    let (a, a_links) = walk(&ours, &[".PackageInfo", ".DEBIAN"]);
    let (b, b_links) = walk(&theirs, &[]);
    let a_paths: Vec<_> = a.keys().collect();
    let b_paths: Vec<_> = b.keys().collect();
    assert_eq!(a_paths, b_paths, "{}: paths", deb.display());
    for (path, want) in &b {
        let got = &a[path];
        let what = format!("{}: {path}", deb.display());
        assert_eq!(
            (got.kind, got.mode, &got.payload),
            (want.kind, want.mode, &want.payload),
            "{what}"
        );
        let want_mtime = match want.kind {
            'd' => dirs[path],
            _ => want.mtime,
        };
        assert_eq!(got.mtime, want_mtime, "{what}: mtime");
        seen.setuid += usize::from(want.kind == 'f' && want.mode & 0o4000 != 0);
        seen.setgid += usize::from(want.mode & 0o2000 != 0);
        seen.sticky += usize::from(want.mode & 0o1000 != 0);
        seen.symlinks += usize::from(want.kind == 'l');
        if b_links.get(path).is_some_and(|&n| n > 1) {
            // A hard link of the .deb: a file of its own here, same content.
            assert_eq!(a_links[path], 1, "{what}");
            seen.hard_links += 1;
        }
    }
}

#[test]
fn extracted_trees_match_dpkg_deb_x() {
    let debs = packagefs_tests::debs::require(&PACKAGES);
    let tmp = tempfile::tempdir().unwrap();
    ok(import(&debs, tmp.path()));
    let mut seen = Seen::default();
    for deb in &debs {
        assert_same_tree(deb, &output_of(deb, tmp.path()), &mut seen);
    }
    assert!(
        seen.setuid > 0 && seen.setgid > 0 && seen.symlinks > 0 && seen.hard_links > 0,
        "{seen:?}"
    );
}

/// Build a `.deb` from a tree made by `fill` with `dpkg-deb --build -Z<comp>`.
fn build_deb(dir: &Path, name: &str, comp: &str, fill: impl Fn(&Path)) -> PathBuf {
    let root = dir.join(format!("{name}-{comp}-tree"));
    fs::create_dir_all(root.join("DEBIAN")).unwrap();
    fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: 1:2.0~rc1-3+deb12u1\nArchitecture: all\n\
             Maintainer: Tester <t@example.invalid>\nDepends: libc6 (>= 2.36) | libc6.1, \
             zzz-missing:any (<< 3)\nProvides: virt-{name} (= 2.0)\n\
             Description: a test package\n first paragraph\n .\n second\n"
        ),
    )
    .unwrap();
    fs::write(root.join("DEBIAN/postinst"), "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(
        root.join("DEBIAN/postinst"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    fill(&root);
    let deb = dir.join(format!("{name}-{comp}.deb"));
    run(Command::new("dpkg-deb")
        .arg("--root-owner-group")
        .arg(format!("-Z{comp}"))
        .arg("--build")
        .arg(&root)
        .arg(&deb));
    deb
}

fn small_tree(root: &Path) {
    let set = |p: &Path, m: u32| fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
    fs::create_dir_all(root.join("usr/bin")).unwrap();
    fs::create_dir_all(root.join("var/tmp")).unwrap();
    fs::create_dir_all(root.join("var/mail")).unwrap();
    set(&root.join("var/tmp"), 0o1777);
    set(&root.join("var/mail"), 0o2775);
    fs::write(root.join("usr/bin/tool"), b"#!/bin/sh\necho hi\n").unwrap();
    set(&root.join("usr/bin/tool"), 0o4755);
    fs::hard_link(root.join("usr/bin/tool"), root.join("usr/bin/tool2")).unwrap();
    std::os::unix::fs::symlink("tool", root.join("usr/bin/t")).unwrap();
    fs::write(root.join("usr/big"), vec![7u8; 300_000]).unwrap();
}

#[test]
fn zstd_gzip_and_uncompressed_members_and_hand_built_packages() {
    let tmp = tempfile::tempdir().unwrap();
    let mut debs = Vec::new();
    for comp in ["zstd", "gzip", "xz", "none"] {
        debs.push(build_deb(
            tmp.path(),
            &format!("t-{comp}"),
            comp,
            small_tree,
        ));
    }
    let out_dir = tmp.path().join("out");
    ok(import(&debs, &out_dir));
    let mut seen = Seen::default();
    for (deb, member) in debs
        .iter()
        .zip(["data.tar.zst", "data.tar.gz", "data.tar.xz", "data.tar"])
    {
        let mut archive = ar::Archive::new(fs::File::open(deb).unwrap());
        let mut members = Vec::new();
        while let Some(entry) = archive.next_entry() {
            members
                .push(String::from_utf8_lossy(entry.unwrap().header().identifier()).into_owned());
        }
        assert!(
            members.iter().any(|m| m == member),
            "{}: {members:?}",
            deb.display()
        );
        let hpkg = output_of(deb, &out_dir);
        assert_same_tree(deb, &hpkg, &mut seen);
        let doc = info_json(&hpkg);
        let info = &doc["info"];
        assert_eq!(info["description"], "first paragraph\n\nsecond");
        // No package of the batch or the output directory provides libc6
        // or libc6.1: the first alternative; the :any qualifier is gone.
        let req: Vec<String> = info["requires"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                format!(
                    "{} {}",
                    r["name"].as_str().unwrap(),
                    r["operator"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(req, ["libc6 >=", "zzz_missing <"]);
        assert_eq!(
            doc["debian"]["maintainer_scripts"],
            serde_json::json!(["postinst"])
        );
    }
    assert_eq!(
        (seen.setuid, seen.setgid, seen.sticky, seen.hard_links),
        (8, 4, 4, 8),
        "{seen:?}"
    );

    // Alternatives prefer what the batch provides: libc6.1 is provided by
    // a package of the next batch.
    let provider = build_deb(tmp.path(), "libc6.1", "xz", |_| {});
    let user = build_deb(tmp.path(), "user", "xz", |_| {});
    let dir2 = tmp.path().join("out2");
    ok(import(&[provider, user.clone()], &dir2));
    let doc = info_json(&output_of(&user, &dir2));
    assert_eq!(doc["info"]["requires"][0]["name"], "libc6.1");
    // ... and, in a later batch, what the output directory already has.
    let user2 = build_deb(tmp.path(), "user2", "xz", |_| {});
    ok(import(std::slice::from_ref(&user2), &dir2));
    let doc = info_json(&output_of(&user2, &dir2));
    assert_eq!(doc["info"]["requires"][0]["name"], "libc6.1");
}

/// Nothing but `keep` in `dir`: no output and no temporary file of a failure.
fn assert_only(dir: &Path, keep: &[PathBuf]) {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    found.sort();
    let mut keep = keep.to_vec();
    keep.sort();
    assert_eq!(found, keep);
}

#[test]
fn broken_debs_fail_alone_and_leave_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let good = build_deb(tmp.path(), "good", "xz", small_tree);
    let bytes = fs::read(&good).unwrap();
    let truncated = tmp.path().join("truncated.deb");
    fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let not_ar = tmp.path().join("not-ar.deb");
    fs::write(&not_ar, b"this is not an ar archive at all\n").unwrap();
    // A .deb without its data member.
    let no_data = tmp.path().join("no-data.deb");
    {
        let mut reader = ar::Archive::new(fs::File::open(&good).unwrap());
        let mut builder = ar::Builder::new(fs::File::create(&no_data).unwrap());
        while let Some(entry) = reader.next_entry() {
            let mut entry = entry.unwrap();
            if entry.header().identifier().starts_with(b"data.tar") {
                continue;
            }
            let header = entry.header().clone();
            builder.append(&header, &mut entry).unwrap();
        }
    }
    // A .deb with a device node.
    let device = build_deb(tmp.path(), "device", "xz", |root| {
        let dev = root.join("dev-null");
        let ok = Command::new("mknod")
            .arg(&dev)
            .args(["c", "1", "3"])
            .status()
            .unwrap();
        assert!(ok.success(), "mknod (the tests run as root)");
    });
    let out_dir = tmp.path().join("out");
    let batch = [
        truncated.clone(),
        good.clone(),
        not_ar.clone(),
        no_data.clone(),
        device.clone(),
        good.clone(),
    ];
    let out = import(&batch, &out_dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for (bad, why) in [
        (&truncated, "truncated"),
        (&not_ar, "not a Debian package"),
        (&no_data, "no data.tar member"),
        (&device, "dev-null: a character device"),
        (&good, "would write"),
    ] {
        let line = stderr
            .lines()
            .find(|l| l.starts_with(&format!("pkgctl: {}: ", bad.display())) && l.contains(why))
            .unwrap_or_else(|| panic!("no error for {} ({why}) in:\n{stderr}", bad.display()));
        eprintln!("{line}");
    }
    assert!(
        stderr.contains("imported 1 packages") && stderr.contains("; 5 failed"),
        "{stderr}"
    );
    assert_only(&out_dir, &[output_of(&good, &out_dir)]);
}

fn import_merged(debs: &[PathBuf], dir: &Path) -> Output {
    import_with(&["--merge-usr"], debs, dir)
}

/// `pkgctl extract` of `hpkg` into a new directory of `tmp`, walked
/// without `.PackageInfo` and `.DEBIAN`.
fn extracted(hpkg: &Path, tmp: &Path) -> BTreeMap<String, Node> {
    let dest = tmp.join(format!("x-{}", hpkg.file_name().unwrap().to_string_lossy()));
    ok(pkgctl(&[&"extract", &hpkg, &dest]));
    walk(&dest, &[".PackageInfo", ".DEBIAN"]).0
}

/// `path` as `--merge-usr` places it.
fn merged_path(path: &str) -> String {
    let top = path.split('/').next().unwrap();
    if ["bin", "sbin", "lib", "lib32", "lib64", "libx32", "libo32"].contains(&top) {
        format!("usr/{path}")
    } else {
        path.to_string()
    }
}

/// A tree shipping the same things under /bin, /sbin, /lib and /usr.
fn split_usr_tree(root: &Path) {
    let set = |p: &Path, m: u32| fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
    for d in ["bin", "sbin", "lib/x86_64-linux-gnu", "usr/bin", "usr/sbin"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::write(root.join("bin/x"), b"#!/bin/sh\necho x\n").unwrap();
    set(&root.join("bin/x"), 0o755);
    std::os::unix::fs::symlink("x", root.join("bin/rx")).unwrap();
    std::os::unix::fs::symlink("/sbin/same", root.join("bin/abs")).unwrap();
    std::os::unix::fs::symlink("../lib/x86_64-linux-gnu/libq.so.1", root.join("bin/up")).unwrap();
    fs::write(root.join("lib/x86_64-linux-gnu/libq.so.1.0"), b"ELF?").unwrap();
    std::os::unix::fs::symlink("libq.so.1.0", root.join("lib/x86_64-linux-gnu/libq.so.1")).unwrap();
    for p in ["sbin/same", "usr/sbin/same"] {
        fs::write(root.join(p), b"same\n").unwrap();
        set(&root.join(p), 0o755);
    }
    fs::write(root.join("usr/bin/y"), b"y").unwrap();
    // The top-level directory's mode differs from usr/'s: usr/'s wins.
    set(&root.join("bin"), 0o700);
}

#[test]
fn merge_usr_moves_top_level_dirs_and_keeps_identical_duplicates_once() {
    let tmp = tempfile::tempdir().unwrap();
    let deb = build_deb(tmp.path(), "split-usr", "xz", split_usr_tree);

    // Without the flag the tree is what dpkg-deb -x gives.
    let plain = tmp.path().join("plain");
    ok(import(std::slice::from_ref(&deb), &plain));
    assert_same_tree(&deb, &output_of(&deb, &plain), &mut Seen::default());
    assert_eq!(
        info_json(&output_of(&deb, &plain))["debian"]["merged_usr"],
        false
    );

    let merged = tmp.path().join("merged");
    let out = ok(import_merged(std::slice::from_ref(&deb), &merged));
    // Neither usr-is-merged nor base-files in the batch: said once.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr
            .matches("neither usr-is-merged nor base-files")
            .count(),
        1,
        "{stderr}"
    );
    let hpkg = output_of(&deb, &merged);
    let doc = info_json(&hpkg);
    assert_eq!(doc["debian"]["merged_usr"], true);
    assert!(doc["debian"]["control_files"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("packagefs-merge-usr")));
    let text = String::from_utf8_lossy(&pkgctl(&[&"info", &hpkg]).stdout).into_owned();
    assert!(text.contains("merged /usr: yes"), "{text}");

    // The merged tree is dpkg-deb -x's with every path moved: same kinds,
    // modes (but directories present both ways, which take usr/'s),
    // targets and contents; the identical duplicate is there once.
    let theirs = tmp.path().join("dpkg");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&theirs));
    let (want, _) = walk(&theirs, &[]);
    let got = extracted(&hpkg, tmp.path());
    let mut expected: BTreeMap<String, (char, u32, String)> = BTreeMap::new();
    for (path, n) in &want {
        let to = merged_path(path);
        let item = (n.kind, n.mode, n.payload.clone());
        match expected.get(&to) {
            // usr/'s directory wins.
            Some(_) if path.starts_with("usr/") => {
                expected.insert(to, item);
            }
            Some(prev) => assert_eq!(prev.0, 'd', "{path}"),
            None => {
                expected.insert(to, item);
            }
        }
    }
    let got_items: BTreeMap<String, (char, u32, String)> = got
        .iter()
        .map(|(p, n)| (p.clone(), (n.kind, n.mode, n.payload.clone())))
        .collect();
    assert_eq!(got_items, expected);
    for absent in ["bin", "sbin", "lib"] {
        assert!(!got.contains_key(absent), "{absent}");
    }
    assert_eq!(got["usr/bin"].mode, 0o755);
    assert_eq!(got["usr/bin/abs"].payload, "/sbin/same");
    assert_eq!(
        got["usr/bin/up"].payload,
        "../lib/x86_64-linux-gnu/libq.so.1"
    );
    assert!(got.contains_key("usr/bin/x") && got.contains_key("usr/sbin/same"));
    assert_eq!(got.keys().filter(|p| p.ends_with("/same")).count(), 1);
}

#[test]
fn merge_usr_refuses_differing_files_at_both_paths() {
    let tmp = tempfile::tempdir().unwrap();
    let clash = build_deb(tmp.path(), "clash", "xz", |root| {
        fs::create_dir_all(root.join("sbin")).unwrap();
        fs::create_dir_all(root.join("usr/sbin")).unwrap();
        fs::write(root.join("sbin/tool"), b"one").unwrap();
        fs::write(root.join("usr/sbin/tool"), b"two").unwrap();
    });
    let good = build_deb(tmp.path(), "good", "xz", small_tree);
    let out_dir = tmp.path().join("out");
    let out = import_merged(&[clash.clone(), good.clone()], &out_dir);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains(&*clash.to_string_lossy()))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        line.contains("/sbin/tool and /usr/sbin/tool") && line.contains("cannot merge /usr"),
        "{line}"
    );
    // The clashing .deb left nothing; the other one was imported.
    assert_only(&out_dir, &[output_of(&good, &out_dir)]);
    // Without the flag the same .deb imports (the tree keeps both).
    ok(import(
        std::slice::from_ref(&clash),
        &tmp.path().join("plain"),
    ));
}

#[test]
fn merge_usr_links_go_into_usr_is_merged_else_base_files() {
    let debs = packagefs_tests::debs::require(&["usr-is-merged", "base-files", "bash"]);
    let tmp = tempfile::tempdir().unwrap();
    let arch = field(&debs[2], "Architecture");
    let mut links = vec!["bin", "lib", "sbin"];
    if arch == "amd64" {
        links.push("lib64");
    }
    links.sort();
    let top_links = |tree: &BTreeMap<String, Node>| -> Vec<(String, String)> {
        tree.iter()
            .filter(|(p, n)| !p.contains('/') && n.kind == 'l')
            .map(|(p, n)| (p.clone(), n.payload.clone()))
            .collect()
    };
    let want: Vec<(String, String)> = links
        .iter()
        .map(|l| (l.to_string(), format!("usr/{l}")))
        .collect();

    let all = tmp.path().join("all");
    ok(import_merged(&debs, &all));
    let usr_is_merged = extracted(&output_of(&debs[0], &all), tmp.path());
    assert_eq!(top_links(&usr_is_merged), want);
    let base_files = extracted(&output_of(&debs[1], &all), tmp.path());
    assert_eq!(top_links(&base_files), []);
    let bash = extracted(&output_of(&debs[2], &all), tmp.path());
    assert_eq!(top_links(&bash), []);
    // bash ships /bin/bash and /bin/rbash -> bash.
    assert!(!bash.contains_key("bin"));
    assert_eq!(bash["usr/bin/bash"].kind, 'f');
    assert_eq!(bash["usr/bin/rbash"].payload, "bash");

    // Without usr-is-merged, base-files carries them.
    let some = tmp.path().join("some");
    ok(import_merged(&debs[1..], &some));
    let base_files = extracted(&output_of(&debs[1], &some), tmp.path().join("b").as_path());
    assert_eq!(top_links(&base_files), want);
}

/// `pkgctl -R ROOT args...`, for the root commands.
fn in_root(root: &Path, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut all: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"-R", &root];
    all.extend_from_slice(args);
    pkgctl(&all)
}

#[test]
fn an_imported_package_shows_its_debian_version_in_a_root() {
    let tmp = tempfile::tempdir().unwrap();
    let deb = build_deb(tmp.path(), "shown", "zstd", small_tree);
    let out_dir = tmp.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    ok(import(std::slice::from_ref(&deb), &out_dir));
    let hpkg = output_of(&deb, &out_dir);
    let debian = "1:2.0~rc1-3+deb12u1";
    let encoded = json_version(&info_json(&hpkg)["info"]["version"]).to_string();
    assert!(encoded.contains("._"), "{encoded}");
    let root = tmp.path().join("root");
    ok(pkgctl(&[&"init", &root]));

    // Dependency errors name it with its Debian version, and the versions
    // of its requirements too.
    let out = in_root(&root, &[&"add", &hpkg]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains(&format!("shown-{debian} requires")), "{err}");
    assert!(err.contains(">= 2.36"), "{err}");
    assert!(!err.contains("._"), "encoded version shown: {err}");
    ok(in_root(&root, &[&"add", &"--force", &hpkg]));

    // list: the text shows the Debian version; --json has both.
    let text = String::from_utf8(ok(in_root(&root, &[&"list"])).stdout).unwrap();
    assert!(text.contains(&format!(" {debian} ")), "{text}");
    assert!(!text.contains("._"), "{text}");
    let json: Value =
        serde_json::from_slice(&ok(in_root(&root, &[&"list", &"--json"])).stdout).unwrap();
    assert_eq!(json["packages"][0]["version"], encoded.as_str());
    assert_eq!(json["packages"][0]["display_version"], debian);

    // status: its unmet requirements, named the same way.
    let out = in_root(&root, &[&"status"]);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains(&format!("shown-{debian}")), "{text}");
    assert!(!text.contains("._"), "{text}");
}
