//! Tests of the test-support library itself: golden listings parse, a real
//! directory lists exactly as a golden file would describe it, differences are
//! reported, and the mount helpers see mounts come and go.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use packagefs_tests::{
    assert_listing_eq, diff, expected_listing_files, fuse_available, is_mounted, list_dir,
    parse_expected, read_expected, require_fixtures, wait_for_mount, EntryInfo, ListOptions,
    Listing, ListingError, MountGuard,
};

/// sha256 of the empty string.
const EMPTY_SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

#[test]
fn every_golden_listing_parses_sorted_and_unique() {
    let fixtures = require_fixtures();
    let files = expected_listing_files(&fixtures).unwrap();
    assert!(
        files.len() >= 11,
        "expected at least 11 golden listings under {}, found {}",
        fixtures.display(),
        files.len()
    );
    for file in &files {
        let listing = read_expected(file).unwrap_or_else(|e| panic!("{e}"));
        // Independently of the parser: the raw lines' paths are strictly
        // increasing and are exactly the listing's keys.
        let text = fs::read_to_string(file).unwrap();
        let raw_paths: Vec<String> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["path"].as_str().unwrap().to_owned()
            })
            .collect();
        assert!(!raw_paths.is_empty(), "{}: empty listing", file.display());
        for pair in raw_paths.windows(2) {
            assert!(
                pair[0] < pair[1],
                "{}: {:?} before {:?}",
                file.display(),
                pair[0],
                pair[1]
            );
        }
        let keys: Vec<&String> = listing.keys().collect();
        assert_eq!(
            keys,
            raw_paths.iter().collect::<Vec<_>>(),
            "{}",
            file.display()
        );
    }
}

#[test]
fn golden_symlinks_have_size_zero_mode_777_and_no_hash() {
    let listing =
        read_expected(&require_fixtures().join("haiku-tool/nested-zstd.expected.jsonl")).unwrap();
    let link = &listing["bin/ref_tool_alias"];
    assert_eq!(link, &EntryInfo::symlink("ref_tool"));
    assert_eq!(
        listing["data/names/link to unicode"].link.as_deref(),
        Some("Üml\u{e4}ut_ß_日本語_😀.txt")
    );
    let dir = &listing["attrs/dir_with_attr"];
    assert_eq!(
        (dir.kind.as_str(), dir.size, dir.sha256.as_deref()),
        ("dir", 0, None)
    );
    assert_eq!(dir.xattrs.len(), 1);
}

/// Parses `text`, expecting an error whose message contains `needle`.
fn parse_error(text: &str, needle: &str) {
    match parse_expected(text, "t.jsonl") {
        Ok(listing) => panic!("accepted {text:?} as {listing:?}"),
        Err(e @ ListingError::Parse { .. }) => {
            let message = e.to_string();
            assert!(message.contains(needle), "{message:?} lacks {needle:?}");
        }
        Err(e) => panic!("wrong error kind: {e:?}"),
    }
}

#[test]
fn parser_rejects_malformed_listings() {
    let dir = r#"{"entry": {"link": null, "mode": "755", "sha256": null, "size": 0, "type": "dir"}, "path": "b"}"#;
    let file_a = format!(
        r#"{{"entry": {{"link": null, "mode": "644", "sha256": "{EMPTY_SHA}", "size": 0, "type": "file"}}, "path": "a"}}"#
    );
    // Good input parses.
    let good = parse_expected(&format!("{file_a}\n{dir}\n"), "t.jsonl").unwrap();
    assert_eq!(good.len(), 2);
    assert_eq!(good["a"], EntryInfo::file(0o644, b""));
    assert_eq!(good["b"], EntryInfo::dir(0o755));

    parse_error(
        &format!("{dir}\n{file_a}\n"),
        "t.jsonl:2: path \"a\" does not come after",
    );
    parse_error(&format!("{dir}\n{dir}\n"), "t.jsonl:2:");
    parse_error("{not json", "t.jsonl:1:");
    parse_error(
        &dir.replace("\"size\"", "\"extra\": 1, \"size\""),
        "unknown field",
    );
    parse_error(&dir.replace("\"755\"", "\"0755\""), "leading zeros");
    parse_error(&dir.replace("\"755\"", "\"rwx\""), "octal");
    parse_error(&dir.replace("\"dir\"", "\"fifo\""), "unknown type");
    parse_error(&dir.replace("\"size\": 0", "\"size\": 4096"), "size 4096");
    parse_error(
        &dir.replace("\"path\": \"b\"", "\"path\": \"/b\""),
        "not relative",
    );
    parse_error(
        &dir.replace("\"path\": \"b\"", "\"path\": \"b/../c\""),
        "not relative",
    );
    parse_error(&file_a.replace(EMPTY_SHA, "abc"), "not 64 lower-case hex");
    parse_error(
        &file_a.replace(&format!("\"{EMPTY_SHA}\""), "null"),
        "a file without sha256",
    );
    parse_error(
        r#"{"entry": {"link": null, "mode": "777", "sha256": null, "size": 0, "type": "symlink"}, "path": "l"}"#,
        "a symlink without target",
    );
}

/// Builds a small tree covering every kind of entry and attribute.
fn make_tree(root: &Path) {
    let set_mode = |path: &Path, mode: u32| {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    };
    fs::write(root.join("a.txt"), b"hello\n").unwrap();
    set_mode(&root.join("a.txt"), 0o644);
    xattr::set(root.join("a.txt"), "user.BEOS:TYPE", b"text/plain").unwrap();

    fs::create_dir(root.join("bin")).unwrap();
    fs::write(root.join("bin/tool"), b"#!/bin/sh\nexit 0\n").unwrap();
    set_mode(&root.join("bin/tool"), 0o4755);
    xattr::set(
        root.join("bin/tool"),
        "user.packagefs.package",
        b"demo-1.0-1 (system)",
    )
    .unwrap();
    // Not in the user namespace: never listed. Only root may set it.
    if let Err(e) = xattr::set(root.join("bin/tool"), "trusted.ignored", b"x") {
        eprintln!("cannot set trusted.ignored ({e}): not checking that it is left out");
    }
    set_mode(&root.join("bin"), 0o750);

    fs::create_dir(root.join("empty")).unwrap();
    set_mode(&root.join("empty"), 0o1777);
    xattr::set(
        root.join("empty"),
        "user.BEOS:TYPE",
        b"application/x-vnd.demo",
    )
    .unwrap();

    fs::create_dir(root.join("dir with space")).unwrap();
    set_mode(&root.join("dir with space"), 0o755);
    fs::write(root.join("dir with space/ünï"), b"").unwrap();
    set_mode(&root.join("dir with space/ünï"), 0o2600);

    symlink("a.txt", root.join("link")).unwrap();
    symlink("does/not/exist", root.join("dir with space/dangling")).unwrap();
}

/// The golden listing of [`make_tree`], written by hand.
const TREE_JSONL: &str = r#"{"entry": {"link": null, "mode": "644", "sha256": "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03", "size": 6, "type": "file", "xattrs": {"BEOS:TYPE": "dc23933049d8b06808e15916d9cc735bd5c82fc87e5f3a970442f6fc04f5a275"}}, "path": "a.txt"}
{"entry": {"link": null, "mode": "750", "sha256": null, "size": 0, "type": "dir"}, "path": "bin"}
{"entry": {"link": null, "mode": "4755", "sha256": "306c6ca7407560340797866e077e053627ad409277d1b9da58106fce4cf717cb", "size": 17, "type": "file", "xattrs": {"packagefs.package": "e859e0c873abc420cec1350c6f2badb230b9b4437003d41bad93953c68c45130"}}, "path": "bin/tool"}
{"entry": {"link": null, "mode": "755", "sha256": null, "size": 0, "type": "dir"}, "path": "dir with space"}
{"entry": {"link": "does/not/exist", "mode": "777", "sha256": null, "size": 0, "type": "symlink"}, "path": "dir with space/dangling"}
{"entry": {"link": null, "mode": "2600", "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "size": 0, "type": "file"}, "path": "dir with space/\u00fcn\u00ef"}
{"entry": {"link": null, "mode": "1777", "sha256": null, "size": 0, "type": "dir", "xattrs": {"BEOS:TYPE": "191d9acd8d1c8576e6a3bd9463b5259b6937c5e63a71e0bdd921e4f5b27a78e2"}}, "path": "empty"}
{"entry": {"link": "a.txt", "mode": "777", "sha256": null, "size": 0, "type": "symlink"}, "path": "link"}
"#;

#[test]
fn lists_a_directory_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    make_tree(tmp.path());
    let got = list_dir(tmp.path(), ListOptions::default()).unwrap();

    // Field by field, with values computed outside this library.
    let paths: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(
        paths,
        [
            "a.txt",
            "bin",
            "bin/tool",
            "dir with space",
            "dir with space/dangling",
            "dir with space/ünï",
            "empty",
            "link"
        ]
    );
    let file = &got["a.txt"];
    assert_eq!(file.kind, "file");
    assert_eq!(file.mode, "644");
    assert_eq!(file.size, 6);
    assert_eq!(
        file.sha256.as_deref(),
        Some("5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03")
    );
    assert_eq!(file.link, None);
    assert_eq!(
        file.xattrs,
        BTreeMap::from([(
            "BEOS:TYPE".to_owned(),
            "dc23933049d8b06808e15916d9cc735bd5c82fc87e5f3a970442f6fc04f5a275".to_owned()
        )])
    );
    let setuid = &got["bin/tool"];
    assert_eq!(
        (setuid.kind.as_str(), setuid.mode.as_str()),
        ("file", "4755")
    );
    assert_eq!(
        setuid.xattrs.keys().collect::<Vec<_>>(),
        ["packagefs.package"]
    );
    let dir = &got["bin"];
    assert_eq!(
        (
            dir.kind.as_str(),
            dir.mode.as_str(),
            dir.size,
            &dir.sha256,
            &dir.link
        ),
        ("dir", "750", 0, &None, &None)
    );
    assert!(dir.xattrs.is_empty());
    assert_eq!(got["empty"].mode, "1777");
    assert_eq!(got["dir with space/ünï"].mode, "2600");
    let link = &got["link"];
    assert_eq!(
        (
            link.kind.as_str(),
            link.mode.as_str(),
            link.size,
            &link.sha256
        ),
        ("symlink", "777", 0, &None)
    );
    assert_eq!(link.link.as_deref(), Some("a.txt"));
    assert!(link.xattrs.is_empty());

    // The same tree as a golden file would describe it.
    let expected = parse_expected(TREE_JSONL, "TREE_JSONL").unwrap();
    assert_listing_eq(&expected, &got);
    assert!(diff(&expected, &got).is_empty());

    // With the flag, packagefs's own attribute is left out, and only it.
    let skipped = list_dir(
        tmp.path(),
        ListOptions {
            skip_package_xattr: true,
        },
    )
    .unwrap();
    let mut expected_skipped = expected.clone();
    expected_skipped.get_mut("bin/tool").unwrap().xattrs.clear();
    assert_listing_eq(&expected_skipped, &skipped);
    assert_eq!(skipped["a.txt"].xattrs.len(), 1);
}

#[test]
fn listing_a_missing_directory_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let err = list_dir(&missing, ListOptions::default()).unwrap_err();
    assert!(matches!(err, ListingError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn fifos_are_not_listed_silently() {
    let tmp = tempfile::tempdir().unwrap();
    let status = Command::new("mkfifo")
        .arg(tmp.path().join("pipe"))
        .status()
        .unwrap();
    assert!(status.success());
    let err = list_dir(tmp.path(), ListOptions::default()).unwrap_err();
    assert!(
        matches!(err, ListingError::Unsupported { kind: "fifo", .. }),
        "{err:?}"
    );
}

#[test]
fn diff_names_every_difference() {
    let expected = parse_expected(TREE_JSONL, "TREE_JSONL").unwrap();
    let mut actual = expected.clone();
    actual.remove("bin/tool");
    actual.insert("zzz".to_owned(), EntryInfo::dir(0o755));
    let a = actual.get_mut("a.txt").unwrap();
    a.mode = "664".to_owned();
    a.size = 7;
    a.sha256 = Some(EMPTY_SHA.to_owned());
    a.xattrs.clear();
    a.xattrs.insert("new".to_owned(), EMPTY_SHA.to_owned());
    actual.get_mut("link").unwrap().link = Some("b.txt".to_owned());
    actual.insert("empty".to_owned(), EntryInfo::file(0o1777, b""));

    let lines = diff(&expected, &actual);
    let want = [
        r#""a.txt": mode: expected 644, got 664"#,
        r#""a.txt": size: expected 6, got 7"#,
        r#""a.txt": sha256: expected "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03", got "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855""#,
        r#""a.txt": xattr "BEOS:TYPE": missing"#,
        r#""a.txt": xattr "new": unexpected"#,
        r#"missing: "bin/tool" (file 4755, 17 bytes, xattrs ["packagefs.package"])"#,
        r#""empty": type: expected dir, got file"#,
        r#""empty": sha256: expected none, got "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855""#,
        r#""empty": xattr "BEOS:TYPE": missing"#,
        r#""link": link: expected "a.txt", got "b.txt""#,
        r#"unexpected: "zzz" (dir 755)"#,
    ];
    assert_eq!(lines, want);
}

#[test]
#[should_panic(
    expected = "listings differ: 1 difference(s) between 8 expected and 8 actual entries:\n  \"bin\": mode: expected 750, got 755"
)]
fn assert_listing_eq_panics_on_a_difference() {
    let expected = parse_expected(TREE_JSONL, "TREE_JSONL").unwrap();
    let mut actual = expected.clone();
    actual.get_mut("bin").unwrap().mode = "755".to_owned();
    assert_listing_eq(&expected, &actual);
}

#[test]
fn assert_listing_eq_shows_at_most_50_differences() {
    let expected = Listing::new();
    let actual: Listing = (0..60)
        .map(|i| (format!("f{i:02}"), EntryInfo::dir(0o755)))
        .collect();
    let panic = std::panic::catch_unwind(|| assert_listing_eq(&expected, &actual)).unwrap_err();
    let message = panic.downcast_ref::<String>().unwrap();
    assert!(message.contains("60 difference(s)"), "{message}");
    assert!(message.contains("first 50 shown"), "{message}");
    assert!(message.contains("unexpected: \"f49\""), "{message}");
    assert!(!message.contains("\"f50\""), "{message}");
}

/// Unpacks a fixture source tar as the fixtures README says, keeping modes.
fn untar(tar: &Path, into: &Path) {
    let output = Command::new("tar")
        .args(["--xattrs", "--xattrs-include=user.*", "-p", "-xf"])
        .arg(tar)
        .arg("-C")
        .arg(into)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "tar -xf {} failed: {}",
        tar.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn unpacked_fixture_sources_list_as_their_golden_listings() {
    // The source trees of the Haiku-built packages, unpacked, must list exactly
    // as the packages' golden listings: this ties list_dir to the golden format.
    let fixtures = require_fixtures();
    let tmp = tempfile::tempdir().unwrap();
    for (tar, top, golden) in [
        ("nested.tar", "nested", "nested-zstd.expected.jsonl"),
        ("metadata.tar", "metadata", "metadata-zstd.expected.jsonl"),
        ("minimal.tar", "minimal", "minimal-zstd.expected.jsonl"),
    ] {
        untar(&fixtures.join("haiku-tool/src").join(tar), tmp.path());
        let expected = read_expected(&fixtures.join("haiku-tool").join(golden)).unwrap();
        let got = list_dir(&tmp.path().join(top), ListOptions::default()).unwrap();
        assert_listing_eq(&expected, &got);
    }
}

#[test]
fn mount_helpers_see_a_mount_come_and_go() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let mnt = tmp.path().join("mnt");
    fs::create_dir(&src).unwrap();
    fs::create_dir(&mnt).unwrap();
    fs::write(src.join("marker"), b"x").unwrap();

    assert!(is_mounted(Path::new("/")).unwrap());
    assert!(!is_mounted(&mnt).unwrap());
    let err = wait_for_mount(&mnt, Duration::from_millis(100)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert!(err.to_string().contains("mountinfo"), "{err}");

    // A bind mount stands in for a FUSE mount: the guard must undo it.
    let bound = Command::new("mount")
        .arg("--bind")
        .arg(&src)
        .arg(&mnt)
        .output()
        .unwrap();
    if !bound.status.success() {
        let running_as_root = fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
            .unwrap_or(false);
        assert!(
            !running_as_root,
            "mount --bind failed as root: {}",
            String::from_utf8_lossy(&bound.stderr)
        );
        eprintln!("skipping the guard part: not root, cannot bind-mount");
        return;
    }
    {
        let _guard = MountGuard::new(&mnt);
        wait_for_mount(&mnt, Duration::from_secs(5)).unwrap();
        assert!(mnt.join("marker").exists());
    }
    assert!(!is_mounted(&mnt).unwrap(), "the guard did not unmount");
    assert!(!mnt.join("marker").exists());

    // unmount() on a mount point that is not mounted is fine.
    MountGuard::new(&mnt).unmount().unwrap();
}

#[test]
fn fuse_is_available_in_ci() {
    match fuse_available() {
        Ok(()) => {}
        Err(reason) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI must provide FUSE (.ci/run installs fuse3): {reason}")
        }
        Err(reason) => eprintln!("FUSE not available here: {reason}"),
    }
}

#[test]
#[should_panic(expected = "binary `no-such-binary-here` is not built")]
fn bin_path_explains_a_missing_binary() {
    packagefs_tests::bin_path("no-such-binary-here");
}
