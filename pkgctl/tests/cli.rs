//! The `pkgctl` binary end to end: `info`, `contents` and `extract` against the
//! golden packages built by Haiku's tools, error reports, help, and a hostile
//! package that tries to write through its own symlink.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output};

use hpkg_format::attr::{encode_tag, write_uleb128};
use hpkg_format::ids::{self, AttrType};
use serde_json::{json, Value};

use common::{expected, fixtures, golden_packages, list_tree};

fn pkgctl(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pkgctl"))
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .expect("run pkgctl")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "pkgctl failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A failure: exit status 1, nothing on stdout, one line `pkgctl: <file>: ...`
/// on stderr. Returns that line.
fn one_line_failure(out: &Output, file: &Path) -> String {
    assert_eq!(out.status.code(), Some(1), "status of {out:?}");
    assert!(out.stdout.is_empty(), "stdout: {out:?}");
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    assert!(err.ends_with('\n'), "stderr not a line: {err:?}");
    assert_eq!(err.lines().count(), 1, "stderr not one line: {err:?}");
    let prefix = format!("pkgctl: {}: ", file.display());
    assert!(
        err.starts_with(&prefix),
        "stderr {err:?} does not start with {prefix:?}"
    );
    err.trim_end().to_string()
}

/// A version object as `info --json` shows it.
fn ver(major: &str, minor: &str, micro: &str, pre: &str, rev: u32) -> Value {
    json!({"major": major, "minor": minor, "micro": micro, "prerelease": pre, "revision": rev})
}

fn req(name: &str, op: &str, v: Value) -> Value {
    json!({"name": name, "operator": op, "version": v})
}

#[test]
fn info_json_shows_every_attribute_of_the_package_info() {
    let f = fixtures().join("haiku-tool");
    // What src/metadata.tar's .PackageInfo says, attribute by attribute.
    let want = json!({
        "name": "ref_metadata",
        "summary": "Package with rich metadata",
        "description": "Exercises provides/requires with version operators, supplements, \
    conflicts, freshens, replaces, urls, flags, writable files, users, groups and scripts.",
        "vendor": "Reference Corpus Vendor",
        "packager": "Ref Corpus <ref@example.com>",
        "flags": ["approve_license", "system_package"],
        "architecture": "x86_64",
        "version": ver("3", "14", "159", "beta2", 7),
        "copyrights": ["2026 Nobody"],
        "licenses": ["MIT"],
        "urls": ["https://example.com/ref_metadata", "https://example.org/project?x=1&y=2#frag"],
        "source_urls": ["https://example.com/src/ref_metadata-3.14.159.tar.gz"],
        "provides": [
            {"name": "ref_metadata", "version": ver("3", "14", "159", "beta2", 7),
             "compatible": ver("3", "", "", "", 0)},
            {"name": "lib:libref_metadata", "version": ver("3", "14", "159", "", 0),
             "compatible": ver("3", "0", "", "", 0)},
            {"name": "cmd:refmeta", "version": ver("3", "14", "", "", 0), "compatible": null},
            // The text says app:RefMeta; Haiku's `package create` stores
            // resolvable names lower-cased (the package bytes hold app:refmeta).
            {"name": "app:refmeta", "version": null, "compatible": null},
            {"name": "add_on:ref_addon", "version": ver("1", "", "", "", 0), "compatible": null},
            {"name": "web_browser", "version": null, "compatible": null},
        ],
        "requires": [
            req("haiku", ">=", ver("r1", "", "", "beta4_hrev57000", 1)),
            req("lib:libfoo", "==", ver("1", "0", "", "", 0)),
            req("lib:libbar", "!=", ver("2", "1", "", "", 0)),
            req("lib:libbaz", "<", ver("3", "", "", "", 0)),
            req("lib:libqux", "<=", ver("4", "5", "6", "", 0)),
            req("lib:libquux", ">", ver("0", "1", "", "", 0)),
            {"name": "cmd:bash", "operator": null, "version": null},
            req("ref_base", ">=", ver("1", "", "", "", 0)),
        ],
        "supplements": [req("ref_nested", ">=", ver("1", "2", "", "", 0))],
        "conflicts": [req("ref_old_metadata", "<", ver("3", "", "", "", 0))],
        "freshens": [req("ref_metadata", "<", ver("3", "14", "159", "", 0))],
        "replaces": ["ref_metadata_legacy"],
        "base_package": "ref_base",
        "install_path": null,
        "global_writable_files": [
            {"path": "settings/ref_metadata/config", "update_type": "keep-old", "is_directory": false},
            {"path": "settings/ref_metadata/cache", "update_type": null, "is_directory": true},
            {"path": "settings/ref_metadata/merge.txt", "update_type": "auto-merge", "is_directory": false},
        ],
        "user_settings_files": [
            {"path": "settings/ref_metadata/user.conf",
             "template": "data/ref_metadata/user.conf.template", "is_directory": false},
            {"path": "settings/ref_metadata/userdir", "template": null, "is_directory": true},
        ],
        "users": [{"name": "refuser", "real_name": "Ref User", "home": "/boot/home/refuser",
                   "shell": "/bin/sh", "groups": ["refgroup"]}],
        "groups": ["refgroup"],
        "post_install_scripts": ["boot/post-install/ref_metadata_setup.sh"],
        "pre_uninstall_scripts": ["boot/pre-uninstall/ref_metadata_teardown.sh"],
        "checksum": null,
    });
    for (file, compression) in [
        ("metadata-zstd.hpkg", "zstd"),
        ("metadata-zlib.hpkg", "zlib"),
    ] {
        let path = f.join(file);
        let doc: Value = serde_json::from_str(&stdout(&pkgctl(&[&"info", &"--json", &path])))
            .unwrap_or_else(|e| panic!("{file}: not JSON: {e}"));
        let got = &doc["info"];
        let (got_map, want_map) = (got.as_object().unwrap(), want.as_object().unwrap());
        for (key, w) in want_map {
            assert_eq!(got_map.get(key), Some(w), "{file}: info.{key}");
        }
        let extra: Vec<_> = got_map
            .keys()
            .filter(|k| !want_map.contains_key(*k))
            .collect();
        assert!(extra.is_empty(), "{file}: unexpected keys {extra:?}");

        let fmt = &doc["format"];
        assert_eq!(fmt["kind"], "hpkg");
        assert_eq!(fmt["version"], 2);
        assert_eq!(fmt["minor_version"], 1);
        assert_eq!(fmt["compression"], compression);
        assert_eq!(fmt["file_size"], fs::metadata(&path).unwrap().len());
        assert_eq!(fmt["entries"], expected(&path).len());
        let heap = fmt["heap_size"].as_u64().unwrap();
        assert!(heap > 0);
        assert_eq!(fmt["chunk_count"], heap.div_ceil(65536));
        assert!(fmt["heap_size_stored"].as_u64().unwrap() < fmt["file_size"].as_u64().unwrap());
    }
}

#[test]
fn info_text_reads_like_haiku_package_list() {
    let path = fixtures().join("haiku-tool/metadata-zstd.hpkg");
    let text = stdout(&pkgctl(&[&"info", &path]));
    for line in [
        "\tformat: hpkg 2.1",
        "\tcompression: zstd",
        "\tentries: 15",
        "\tname: ref_metadata",
        "\tversion: 3.14.159~beta2-7",
        "\tarchitecture: x86_64",
        "\t\tapprove_license",
        "\t\tsystem_package",
        "\tprovides: ref_metadata = 3.14.159~beta2-7 (compatible >= 3)",
        "\trequires: haiku >= r1~beta4_hrev57000-1",
        "\trequires: lib:libbar != 2.1",
        "\trequires: cmd:bash",
        "\tconflicts: ref_old_metadata < 3",
        "\tbase package: ref_base",
        "\tglobal writable file: settings/ref_metadata/cache/",
        "\tglobal writable file: settings/ref_metadata/merge.txt (auto-merge)",
        "\tuser settings file: settings/ref_metadata/user.conf (template: data/ref_metadata/user.conf.template)",
        "\tuser: refuser",
        "\t\treal name: Ref User",
        "\t\t\trefgroup",
        "\tpre-uninstall script: boot/pre-uninstall/ref_metadata_teardown.sh",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing line {line:?} in:\n{text}"
        );
    }
}

#[test]
fn contents_text_lists_like_ls() {
    let path = fixtures().join("haiku-tool/nested-zstd.hpkg");
    let text = stdout(&pkgctl(&[&"contents", &path]));
    let want = expected(&path);
    assert_eq!(text.lines().count(), want.len());
    let line = |suffix: &str| {
        text.lines()
            .find(|l| l.ends_with(suffix))
            .unwrap_or_else(|| panic!("no line ending {suffix:?} in:\n{text}"))
            .to_string()
    };
    assert!(line(" bin/ref_tool_alias -> ref_tool").starts_with("lrwxrwxrwx "));
    assert!(line(" bin/readonly.txt").starts_with("-r--r--r-- "));
    assert!(line(" bin/private_exec").starts_with("-rwx------ "));
    assert!(line(" empty_top_dir").starts_with("drwxr-xr-x "));
    assert!(line(" bin/readonly.txt").contains(" 2026-01-02 03:04:05 "));
}

#[test]
fn contents_json_with_hashes_matches_every_golden_listing() {
    for path in golden_packages() {
        let text = stdout(&pkgctl(&[&"contents", &"--json", &"--sha256", &path]));
        let mut got = BTreeMap::new();
        for l in text.lines() {
            let v: Value = serde_json::from_str(l).unwrap();
            let mut e = v["entry"].clone();
            for key in [
                "mtime",
                "mtime_nsec",
                "sha256",
                "type",
                "mode",
                "size",
                "link",
            ] {
                assert!(
                    e.get(key).is_some(),
                    "{}: {key} missing in {l}",
                    path.display()
                );
            }
            let is_symlink = e["type"] == "symlink";
            let obj = e.as_object_mut().unwrap();
            obj.remove("mtime");
            obj.remove("mtime_nsec");
            // The listings keep only what Linux can hold: attributes up to
            // 64 KiB, none on symlinks, as name -> sha256.
            if let Some(Value::Object(attrs)) = obj.remove("xattrs") {
                let kept: serde_json::Map<_, _> = attrs
                    .into_iter()
                    .filter(|(_, a)| !is_symlink && a["size"].as_u64().unwrap() <= 65536)
                    .map(|(k, a)| (k, a["sha256"].clone()))
                    .collect();
                if !kept.is_empty() {
                    obj.insert("xattrs".into(), Value::Object(kept));
                }
            }
            got.insert(v["path"].as_str().unwrap().to_string(), e);
        }
        assert_eq!(got, expected(&path), "{}", path.display());
    }
}

#[test]
fn contents_json_without_hashes_reads_no_data() {
    let path = fixtures().join("haiku-tool/nested-zstd.hpkg");
    let text = stdout(&pkgctl(&[&"contents", &"--json", &path]));
    let big = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["path"] == "attrs/big_attr.txt")
        .unwrap();
    assert!(big["entry"].get("sha256").is_none());
    assert_eq!(
        big["entry"]["xattrs"]["ref:big"],
        json!({"type": "RAWT", "size": 100000})
    );
    assert_eq!(big["entry"]["mtime"], 1_767_323_045);
}

/// mtime (seconds) of every entry as `contents --json` reports it.
fn package_mtimes(pkg: &Path) -> BTreeMap<String, i64> {
    stdout(&pkgctl(&[&"contents", &"--json", &pkg]))
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["path"].as_str().unwrap().to_string(),
                v["entry"]["mtime"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn extract_restores_every_golden_package_exactly() {
    let packages = golden_packages();
    assert_eq!(packages.len(), 11, "expected 11 golden packages");
    for pkg in packages {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("out");
        let out = pkgctl(&[&"extract", &pkg, &dest]);
        stdout(&out);
        // Warnings only for what Linux cannot hold, each one line.
        for w in String::from_utf8_lossy(&out.stderr).lines() {
            assert!(
                w.starts_with("pkgctl: warning: ")
                    && (w.contains("larger than Linux allows")
                        || w.contains("Linux symlinks cannot hold user attributes")),
                "{}: unexpected stderr line {w:?}",
                pkg.display()
            );
        }
        assert_eq!(
            list_tree(&dest),
            expected(&pkg),
            "{}: extracted tree differs from its listing",
            pkg.display()
        );
        // Modification times of files, directories and symlinks.
        for (path, mtime) in package_mtimes(&pkg) {
            let meta = fs::symlink_metadata(dest.join(&path)).unwrap();
            assert_eq!(meta.mtime(), mtime, "{}: mtime of {path}", pkg.display());
        }
    }
}

#[test]
fn extract_warns_about_an_attribute_linux_cannot_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("out");
    let out = pkgctl(&[
        &"extract",
        &fixtures().join("haiku-tool/nested-zstd.hpkg"),
        &dest,
    ]);
    stdout(&out);
    let err = String::from_utf8(out.stderr).unwrap();
    let want = format!(
        "pkgctl: warning: {}: attribute \"ref:big\" (100000 bytes) is larger than Linux allows (64 KiB); skipped",
        dest.join("attrs/big_attr.txt").display()
    );
    assert_eq!(err.lines().collect::<Vec<_>>(), [want.as_str()]);
}

#[test]
fn extract_refuses_a_non_empty_directory_and_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let pkg = fixtures().join("haiku-tool/minimal-zstd.hpkg");
    fs::write(tmp.path().join("keep"), b"mine").unwrap();
    let msg = one_line_failure(&pkgctl(&[&"extract", &pkg, &tmp.path()]), tmp.path());
    assert!(msg.contains("not empty"), "{msg}");
    assert_eq!(fs::read(tmp.path().join("keep")).unwrap(), b"mine");
    let file = tmp.path().join("keep");
    let msg = one_line_failure(&pkgctl(&[&"extract", &pkg, &file]), &file);
    assert!(msg.contains("not a directory"), "{msg}");
    // An existing empty directory is fine.
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    stdout(&pkgctl(&[&"extract", &pkg, &empty]));
    assert!(empty.join(".PackageInfo").is_file());
}

#[test]
fn a_file_that_is_not_a_package_fails_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk.hpkg");
    fs::write(&junk, b"this is not a package, just some text\n").unwrap();
    for cmd in ["info", "contents"] {
        let msg = one_line_failure(&pkgctl(&[&cmd, &junk]), &junk);
        assert!(msg.contains("not a hpkg"), "{msg}");
    }
    let dest = tmp.path().join("out");
    let msg = one_line_failure(&pkgctl(&[&"extract", &junk, &dest]), &junk);
    assert!(msg.contains("not a hpkg"), "{msg}");
    assert!(
        !dest.exists(),
        "extract created its directory for a bad package"
    );

    let missing = tmp.path().join("missing.hpkg");
    let msg = one_line_failure(&pkgctl(&[&"info", &missing]), &missing);
    assert!(msg.contains("No such file"), "{msg}");
}

#[test]
fn a_truncated_package_fails_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = fs::read(fixtures().join("haiku-tool/nested-zstd.hpkg")).unwrap();
    for len in [2, 40, 80, whole.len() / 2, whole.len() - 1] {
        let cut = tmp.path().join(format!("cut-{len}.hpkg"));
        fs::write(&cut, &whole[..len]).unwrap();
        for cmd in ["info", "contents"] {
            let msg = one_line_failure(&pkgctl(&[&cmd, &cut]), &cut);
            assert!(
                msg.contains("truncated") || msg.contains("bad header"),
                "{len} bytes, {cmd}: {msg}"
            );
        }
    }
}

#[test]
fn help_teaches_every_command() {
    let top = stdout(&pkgctl(&[&"--help"]));
    for cmd in ["info", "contents", "extract"] {
        assert!(
            top.lines().any(|l| l.trim_start().starts_with(cmd)),
            "{cmd} not in:\n{top}"
        );
        let long = stdout(&pkgctl(&[&cmd, &"--help"]));
        assert!(
            long.contains(&format!("pkgctl {cmd} ")),
            "no example in {cmd} --help:\n{long}"
        );
        let short = stdout(&pkgctl(&[&cmd, &"-h"]));
        assert!(short.lines().count() < long.lines().count());
    }
    let info = stdout(&pkgctl(&[&"info", &"--help"]));
    assert!(info.contains("\"provides\"") && info.contains("\"heap_size\""));
    let usage = pkgctl(&[&"frobnicate"]);
    assert_eq!(usage.status.code(), Some(2));
}

// A hand-made package (compression none) to show that extract never writes
// through a symlink the package itself created.

fn tag(id: u8, ty: AttrType, has_children: bool) -> Vec<u8> {
    let mut out = Vec::new();
    write_uleb128(&mut out, encode_tag(id, ty, 0, has_children));
    out
}

fn cstr(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(s);
    out.push(0);
}

/// A TOC entry with inline name, a `file:type` and extra attributes.
fn entry(name: &str, kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = tag(ids::DIR_ENTRY, AttrType::String, true);
    cstr(&mut out, name.as_bytes());
    out.extend(tag(ids::FILE_TYPE, AttrType::UInt, false));
    out.push(kind);
    out.extend_from_slice(body);
    out.push(0);
    out
}

fn symlink(name: &str, target: &Path) -> Vec<u8> {
    let mut body = tag(ids::SYMLINK_PATH, AttrType::String, false);
    cstr(&mut body, target.as_os_str().as_encoded_bytes());
    entry(name, 2, &body)
}

fn file(name: &str, data: &[u8]) -> Vec<u8> {
    assert!(data.len() <= 8, "inline data only");
    let mut body = tag(ids::DATA, AttrType::Raw, false);
    write_uleb128(&mut body, data.len() as u64);
    body.extend_from_slice(data);
    entry(name, 0, &body)
}

/// A whole package file holding `entries` as its TOC.
fn package(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut toc = vec![0u8]; // empty string table
    for e in entries {
        toc.extend_from_slice(e);
    }
    toc.push(0);
    let mut attrs = vec![0u8];
    attrs.extend(tag(ids::PACKAGE_NAME, AttrType::String, false));
    cstr(&mut attrs, b"evil");
    attrs.push(0);
    let heap = [toc.as_slice(), attrs.as_slice()].concat();
    let heap_len = heap.len() as u64;
    let mut h = Vec::with_capacity(80);
    h.extend_from_slice(b"hpkg");
    h.extend_from_slice(&80u16.to_be_bytes());
    h.extend_from_slice(&2u16.to_be_bytes());
    h.extend_from_slice(&(80 + heap_len).to_be_bytes());
    h.extend_from_slice(&1u16.to_be_bytes()); // minor version
    h.extend_from_slice(&0u16.to_be_bytes()); // compression none
    h.extend_from_slice(&65536u32.to_be_bytes());
    h.extend_from_slice(&heap_len.to_be_bytes());
    h.extend_from_slice(&heap_len.to_be_bytes());
    h.extend_from_slice(&(attrs.len() as u32).to_be_bytes());
    h.extend_from_slice(&1u32.to_be_bytes()); // attribute strings length
    h.extend_from_slice(&0u32.to_be_bytes()); // attribute strings count
    h.extend_from_slice(&0u32.to_be_bytes()); // reserved
    h.extend_from_slice(&(toc.len() as u64).to_be_bytes());
    h.extend_from_slice(&1u64.to_be_bytes()); // TOC strings length
    h.extend_from_slice(&0u64.to_be_bytes()); // TOC strings count
    assert_eq!(h.len(), 80);
    [h, heap].concat()
}

#[test]
fn extract_never_writes_through_a_symlink_from_the_package() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();

    // Control: the hand-made format is valid; a link and a directory beside it extract.
    let good = tmp.path().join("good.hpkg");
    fs::write(
        &good,
        package(&[
            symlink("a", &outside),
            entry("b", 1, &file("passwd", b"owned")),
        ]),
    )
    .unwrap();
    let dest = tmp.path().join("good");
    stdout(&pkgctl(&[&"extract", &good, &dest]));
    assert_eq!(fs::read_link(dest.join("a")).unwrap(), outside);
    assert_eq!(fs::read(dest.join("b/passwd")).unwrap(), b"owned");

    // Hostile: link `a` to a directory outside, then `a/passwd`, or a file `a`.
    let hostile = [
        entry("a", 1, &file("passwd", b"owned")),
        file("a", b"owned"),
    ];
    for (i, second) in hostile.into_iter().enumerate() {
        let evil = tmp.path().join(format!("evil-{i}.hpkg"));
        fs::write(&evil, package(&[symlink("a", &outside), second])).unwrap();
        let dest = tmp.path().join(format!("evil-{i}"));
        let out = pkgctl(&[&"extract", &evil, &dest]);
        assert!(
            fs::read_dir(&outside).unwrap().next().is_none(),
            "case {i}: something was written outside the destination"
        );
        // Refused, either when the package is read (duplicate names) or
        // when `a` is created a second time.
        assert_eq!(out.status.code(), Some(1), "case {i}: {out:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "case {i}: {err}");
        assert!(err.starts_with("pkgctl: "), "case {i}: {err}");
        // The link itself may have been extracted, unchanged.
        if let Ok(m) = fs::symlink_metadata(dest.join("a")) {
            assert!(m.file_type().is_symlink(), "case {i}: `a` was replaced");
            assert_eq!(fs::read_link(dest.join("a")).unwrap(), outside, "case {i}");
        }
    }
}

#[test]
fn repositories_list_all_their_packages() {
    for (file, count, arch) in [
        ("repo.hpkr", 235, "x86"),
        ("sample-repo.hpkr", 2333, "x86_64"),
    ] {
        let path = fixtures().join("haiku").join(file);
        let out = pkgctl(&[&"contents", &"--json", &path]);
        let lines: Vec<Value> = stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), count, "{file}");
        let mut names = std::collections::BTreeSet::new();
        for p in &lines {
            let name = p["name"].as_str().unwrap();
            assert!(!name.is_empty());
            assert!(names.insert(name.to_string()), "{file}: duplicate {name}");
            let version = p["version"].as_str().unwrap();
            assert!(
                hpkg_format::Version::parse(version).is_ok(),
                "{file}: {name} {version}"
            );
            assert!(["any", "source", arch].contains(&p["architecture"].as_str().unwrap()));
        }
        let info: Value =
            serde_json::from_str(&stdout(&pkgctl(&[&"info", &"--json", &path]))).unwrap();
        assert_eq!(info["packages"], count);
        assert_eq!(info["repository"]["name"], "HaikuPorts");
        assert_eq!(info["repository"]["architecture"], arch);
        if file == "repo.hpkr" {
            assert_eq!(lines[0]["name"], "apr");
            assert_eq!(lines[0]["version"], "1.4.6-7");
        }
        let text = stdout(&pkgctl(&[&"contents", &path]));
        let first = &lines[0];
        let want = format!(
            "{}-{}-{}\t",
            first["name"].as_str().unwrap(),
            first["version"].as_str().unwrap(),
            first["architecture"].as_str().unwrap()
        );
        assert!(text.lines().next().unwrap().starts_with(&want), "{file}");
    }
    // A repository is not something to extract.
    let tmp = tempfile::tempdir().unwrap();
    let repo = fixtures().join("haiku/repo.hpkr");
    let out = pkgctl(&[&"extract", &repo, &tmp.path().join("x")]);
    one_line_failure(&out, &repo);
}

/// Unpack a golden source tree the way the fixtures' README says.
fn unpack_source(tar: &Path, into: &Path) -> std::path::PathBuf {
    let status = Command::new("tar")
        .args(["--xattrs", "--xattrs-include=user.*", "-xf"])
        .arg(tar)
        .arg("-C")
        .arg(into)
        .status()
        .unwrap();
    assert!(status.success(), "tar failed on {}", tar.display());
    into.join(tar.file_stem().unwrap())
}

#[test]
fn create_then_extract_reproduces_each_source_tree() {
    let src = fixtures().join("haiku-tool/src");
    for name in ["minimal", "metadata", "nested"] {
        let tmp = tempfile::tempdir().unwrap();
        let tree = unpack_source(&src.join(format!("{name}.tar")), tmp.path());
        let golden = fixtures().join(format!("haiku-tool/{name}-zstd.hpkg"));
        for compression in ["zstd", "zlib", "none"] {
            let pkg = tmp.path().join(format!("{name}-{compression}.hpkg"));
            let out = pkgctl(&[
                &"create",
                &tree,
                &"-o",
                &pkg,
                &"--compression",
                &compression,
            ]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            // The package's own listing equals the Haiku-built package's.
            let listing = stdout(&pkgctl(&[&"contents", &"--json", &"--sha256", &pkg]));
            let golden_listing = stdout(&pkgctl(&[&"contents", &"--json", &"--sha256", &golden]));
            let strip = |text: &str| -> Vec<Value> {
                text.lines()
                    .map(|l| {
                        let mut v: Value = serde_json::from_str(l).unwrap();
                        // Attribute type codes of Linux xattrs cannot be
                        // recovered for every Haiku type; compare contents.
                        if let Some(x) =
                            v["entry"].get_mut("xattrs").and_then(|x| x.as_object_mut())
                        {
                            for a in x.values_mut() {
                                a.as_object_mut().unwrap().remove("type");
                            }
                        }
                        v
                    })
                    .collect()
            };
            let (mut ours, mut theirs) = (strip(&listing), strip(&golden_listing));
            let key = |v: &Value| v["path"].as_str().unwrap().to_string();
            ours.sort_by_key(key);
            theirs.sort_by_key(key);
            // The 100 000-byte attribute cannot live on Linux, so the tree
            // (and our package) lack it; every other entry must be equal.
            theirs.iter_mut().for_each(|v| {
                if let Some(x) = v["entry"].get_mut("xattrs").and_then(|x| x.as_object_mut()) {
                    x.retain(|_, a| a["size"].as_u64().unwrap() <= 65536);
                    if x.is_empty() {
                        v["entry"].as_object_mut().unwrap().remove("xattrs");
                    }
                }
            });
            ours.iter_mut().zip(&theirs).for_each(|(o, t)| {
                if t["entry"]["type"] == "symlink" {
                    o["entry"].as_object_mut().unwrap().remove("xattrs");
                }
            });
            assert_eq!(
                ours, theirs,
                "{name} ({compression}): listing differs from Haiku's package"
            );
            // Extracting it gives back the tree.
            let dest = tmp.path().join(format!("out-{compression}"));
            let out = pkgctl(&[&"extract", &pkg, &dest]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                list_tree(&dest),
                list_tree(&tree),
                "{name} ({compression}): round trip"
            );
            assert_eq!(
                list_tree(&dest),
                expected(&golden),
                "{name} ({compression}): expected listing"
            );
        }
    }
}

/// `pkgctl create TREE --info DIR/bad.PackageInfo` with `info` as that file:
/// a one-line failure naming it, and no package written. Returns the line.
fn create_refused(tree: &Path, info: &str, dir: &Path) -> String {
    let bad = dir.join("bad.PackageInfo");
    let pkg = dir.join("refused.hpkg");
    fs::write(&bad, info).unwrap();
    let out = pkgctl(&[&"create", &tree, &"-o", &pkg, &"--info", &bad]);
    let msg = one_line_failure(&out, &bad);
    assert!(!pkg.exists(), "{msg}");
    msg
}

#[test]
fn create_is_reproducible_and_refuses_bad_info() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = unpack_source(&fixtures().join("haiku-tool/src/metadata.tar"), tmp.path());
    let (a, b) = (tmp.path().join("a.hpkg"), tmp.path().join("b.hpkg"));
    for p in [&a, &b] {
        let out = pkgctl(&[&"create", &tree, &"-o", p, &"-q"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        fs::read(&a).unwrap(),
        fs::read(&b).unwrap(),
        "same tree, same bytes"
    );
    // An info file with a syntax error names itself and the line.
    let msg = create_refused(&tree, "name foo\nversion\n", tmp.path());
    assert!(msg.contains("line"), "{msg}");
    // One missing every field but name and version: all named, in one line.
    let msg = create_refused(&tree, "name foo\nversion 1.0-1\n", tmp.path());
    assert!(
        msg.contains(
            "required fields summary, description, vendor, packager, architecture, \
             copyrights, licenses and provides are not set"
        ),
        "{msg}"
    );
    // No info at all.
    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let out = pkgctl(&[&"create", &empty, &"-o", &tmp.path().join("d.hpkg")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(".PackageInfo"));
}

/// The minimal `.PackageInfo` the README shows (the fenced block after its
/// `minimal-packageinfo` marker).
fn readme_minimal_info() -> String {
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap();
    let block: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.contains("<!-- minimal-packageinfo"))
        .skip_while(|l| !l.starts_with("```"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .collect();
    assert!(block.len() >= 10, "README: no minimal .PackageInfo found");
    block.join("\n") + "\n"
}

#[test]
fn the_readme_minimal_package_info_is_accepted_and_minimal() {
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("hello");
    fs::create_dir_all(tree.join("bin")).unwrap();
    fs::write(tree.join("bin/hello"), "#!/bin/sh\necho hello\n").unwrap();
    let info = readme_minimal_info();
    fs::write(tree.join(".PackageInfo"), &info).unwrap();
    let pkg = tmp.path().join("hello-1.0-1-any.hpkg");
    let out = pkgctl(&[&"create", &tree, &"-o", &pkg, &"-q"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_str(&stdout(&pkgctl(&[&"info", &"--json", &pkg]))).unwrap();
    assert_eq!(doc["info"]["name"], "hello");
    // Minimal: without any one of its lines, create refuses, naming the field.
    let lines: Vec<&str> = info.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let field = line.split_whitespace().next().unwrap();
        let mut fewer = lines.clone();
        fewer.remove(i);
        let msg = create_refused(&tree, &(fewer.join("\n") + "\n"), tmp.path());
        assert!(msg.contains(&format!("field {field} is not set")), "{msg}");
    }
    // Emptied values are named together, with the info file.
    let emptied = info
        .replace("\"Says hello\"", "\"\"")
        .replace("\"MIT\"", "{}");
    let msg = create_refused(&tree, &emptied, tmp.path());
    assert!(msg.contains("empty: summary, licenses"), "{msg}");
}

#[test]
fn recompress_keeps_attributes_linux_cannot_hold() {
    let tmp = tempfile::tempdir().unwrap();
    let golden = fixtures().join("haiku-tool/nested-zstd.hpkg");
    let out_pkg = tmp.path().join("nested-zlib.hpkg");
    let out = pkgctl(&[
        &"recompress",
        &golden,
        &"-o",
        &out_pkg,
        &"--compression",
        &"zlib",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let a = stdout(&pkgctl(&[&"contents", &"--json", &"--sha256", &golden]));
    let b = stdout(&pkgctl(&[&"contents", &"--json", &"--sha256", &out_pkg]));
    assert_eq!(
        a, b,
        "every entry and attribute, including the 100 000-byte one"
    );
    assert!(a.contains("100000"), "the big attribute is listed");
    let info: Value =
        serde_json::from_str(&stdout(&pkgctl(&[&"info", &"--json", &out_pkg]))).unwrap();
    assert_eq!(info["format"]["compression"], "zlib");
}
