//! The `.PackageInfo` text parser against Haiku's own compiler: for every
//! golden package, parsing the `.PackageInfo` file it ships must give the
//! metadata Haiku compiled from that same text; and `format` must round-trip
//! every package of the golden packages and repositories.

use std::path::{Path, PathBuf};

use hpkg_format::{info_text, Error, NoCache, Package, PackageInfo, Repository};

fn fixtures() -> PathBuf {
    std::env::var_os("PACKAGEFS_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"))
}

fn golden_packages() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["haiku", "haiku-tool"] {
        for e in std::fs::read_dir(fixtures().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "hpkg") {
                out.push(p);
            }
        }
    }
    out.sort();
    assert!(
        out.len() >= 11,
        "expected the golden packages, found {out:?}"
    );
    out
}

fn package_info_text(pkg: &Package) -> String {
    let toc = pkg.toc();
    let id = toc
        .lookup(None, b".PackageInfo")
        .expect("golden packages ship a .PackageInfo");
    let bytes = pkg.data_to_vec(toc.data(id), &NoCache).unwrap();
    String::from_utf8(bytes).unwrap()
}

fn assert_round_trip(info: &PackageInfo, what: &str) {
    let text = info_text::format(info);
    let back = info_text::parse(&text).unwrap_or_else(|e| panic!("{what}: {e}\n{text}"));
    assert_eq!(&back, info, "{what}:\n{text}");
}

#[test]
fn parse_matches_haiku_compiled_metadata() {
    for path in golden_packages() {
        let pkg = Package::open(&path).unwrap();
        let text = package_info_text(&pkg);
        let mut parsed =
            info_text::parse(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()));
        // Not from the text: the install path of a build package comes from
        // `package create -I <path>`, and the checksum only exists in
        // repositories.
        assert_eq!(parsed.install_path, None);
        parsed.install_path = pkg.info().install_path.clone();
        assert_eq!(pkg.info().checksum, None);
        assert_eq!(&parsed, pkg.info(), "{}", path.display());
        assert_round_trip(pkg.info(), &path.display().to_string());
    }
}

#[test]
fn the_metadata_fixture_exercises_every_field() {
    let pkg = Package::open(fixtures().join("haiku-tool/metadata-zstd.hpkg")).unwrap();
    let i = info_text::parse(&package_info_text(&pkg)).unwrap();
    assert_eq!(i.version.to_string(), "3.14.159~beta2-7");
    assert_eq!(i.base_package.as_deref(), Some("ref_base"));
    assert!(i.requires.iter().any(|r| r.name == "ref_base"));
    assert!(i.flags.approve_license() && i.flags.system_package());
    for (list, n) in [
        (i.provides.len(), 6),
        (i.requires.len(), 8),
        (i.supplements.len(), 1),
        (i.conflicts.len(), 1),
        (i.freshens.len(), 1),
        (i.replaces.len(), 1),
        (i.global_writable_files.len(), 3),
        (i.user_settings_files.len(), 2),
        (i.users.len(), 1),
        (i.groups.len(), 1),
        (i.post_install_scripts.len(), 1),
        (i.pre_uninstall_scripts.len(), 1),
        (i.urls.len(), 2),
    ] {
        assert_eq!(list, n, "{i:#?}");
    }
    assert_eq!(i.users[0].groups, ["refgroup"]);
    assert_eq!(i.users[0].shell.as_deref(), Some("/bin/sh"));
}

#[test]
fn round_trips_every_repository_package() {
    for name in ["repo.hpkr", "sample-repo.hpkr"] {
        let repo = Repository::open(&fixtures().join("haiku").join(name)).unwrap();
        assert!(!repo.packages.is_empty());
        for p in &repo.packages {
            assert_round_trip(p, &format!("{name}: {}", p.name));
        }
    }
}

fn syntax_error(text: &str) -> (usize, String) {
    match info_text::parse(text) {
        Err(Error::PackageInfoSyntax { line, reason }) => (line, reason),
        other => panic!("expected a syntax error for {text:?}, got {other:?}"),
    }
}

const MINIMAL: &str = "name foo\nsummary \"s\"\ndescription \"d\"\nvendor v\npackager p\n\
architecture any\nversion 1.0-1\ncopyrights c\nlicenses MIT\nprovides { foo = 1.0 }\n";

#[test]
fn syntax_details() {
    let i = info_text::parse(MINIMAL).unwrap();
    assert_eq!(i.name, "foo");
    assert_eq!(i.provides[0].version.as_ref().unwrap().to_string(), "1.0");

    // Comments, ';' separators, case-insensitive keys and architecture,
    // quoted segments glued to words, escapes, several items on one line.
    let text = format!(
        "{MINIMAL}# a comment; still a comment\nURLS {{ a\"b c\"d 'e\\\"f' ; g\\ h }}\n\
         requires {{ x >= 2 base ; Y }}\ngroups {{ g1 g2 }}\n"
    )
    .replace("architecture any", "ARCHITECTURE X86_64");
    let i = info_text::parse(&text).unwrap();
    assert_eq!(i.urls, ["ab cd", "e\"f", "g h"]);
    assert_eq!(i.architecture, hpkg_format::Architecture::X86_64);
    assert_eq!(i.base_package.as_deref(), Some("x"));
    assert_eq!(i.requires.len(), 2);
    assert_eq!(i.requires[1].name, "y", "resolvable names are lower-cased");
    // `;` only separates where a token may start: `base;` is one word.
    assert_eq!(
        syntax_error(&format!("{MINIMAL}requires {{ x >= 2 base; y }}\n")).0,
        11
    );
    assert_eq!(i.groups, ["g1", "g2"]);

    // A backslash-newline continues a line.
    let i = info_text::parse(&MINIMAL.replace("vendor v", "vendor \\\n v")).unwrap();
    assert_eq!(i.vendor, "v");

    // Errors name the line.
    assert_eq!(syntax_error(&format!("{MINIMAL}bogus 1\n")).0, 11);
    assert!(syntax_error(&format!("{MINIMAL}bogus 1\n"))
        .1
        .contains("bogus"));
    assert_eq!(syntax_error(&format!("{MINIMAL}name bar\n")).0, 11);
    assert_eq!(
        syntax_error(&MINIMAL.replace("version 1.0-1", "version 1.0")).0,
        7
    );
    assert_eq!(
        syntax_error(&MINIMAL.replace("version 1.0-1", "version 1..0-1")).0,
        7
    );
    assert_eq!(
        syntax_error(&MINIMAL.replace("name foo", "name foo-bar")).0,
        1
    );

    assert_eq!(
        syntax_error(&MINIMAL.replace("provides { foo = 1.0 }", "provides foo")).0,
        10
    );
    assert_eq!(
        syntax_error(&MINIMAL.replace("provides { foo = 1.0 }", "provides { foo 1 }")).0,
        10
    );
    assert_eq!(syntax_error(&format!("{MINIMAL}flags bogus\n")).0, 11);
    assert_eq!(syntax_error(&format!("{MINIMAL}urls \"open\n")).0, 11);
    assert_eq!(
        syntax_error(&format!(
            "{MINIMAL}requires {{\n a >= 1 base\n b >= 1 base\n}}"
        ))
        .0,
        13
    );
    assert_eq!(
        syntax_error(&format!("{MINIMAL}users {{ u bogus }}\n")).0,
        11
    );
    assert_eq!(
        syntax_error("summary \"a\\nb\"").1,
        "the summary contains linebreaks"
    );
    assert_eq!(syntax_error(&format!("{MINIMAL}requires {{ a\n")).0, 12);
}

fn missing(text: &str) -> Vec<&'static str> {
    match info_text::parse(text) {
        Err(Error::PackageInfoMissing { fields }) => fields,
        other => panic!("expected missing fields for {text:?}, got {other:?}"),
    }
}

#[test]
fn every_missing_required_field_is_named_in_one_error() {
    assert_eq!(
        missing(&MINIMAL.replace("licenses MIT\n", "")),
        ["licenses"]
    );
    let e = info_text::parse(&MINIMAL.replace("licenses MIT\n", "")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "package info: required field licenses is not set (a .PackageInfo must set \
         name, summary, description, vendor, packager, architecture, version, copyrights, \
         licenses and provides)"
    );
    let partial = MINIMAL
        .replace("summary \"s\"\n", "")
        .replace("vendor v\n", "")
        .replace("provides { foo = 1.0 }\n", "");
    assert_eq!(missing(&partial), ["summary", "vendor", "provides"]);
    assert!(info_text::parse(&partial)
        .unwrap_err()
        .to_string()
        .starts_with("package info: required fields summary, vendor and provides are not set"));
    assert_eq!(missing(""), info_text::REQUIRED_FIELDS);
    assert_eq!(missing("# only a comment\n"), info_text::REQUIRED_FIELDS);
    // A bad value is reported at its line before anything is missing.
    assert_eq!(syntax_error("name foo\nversion 1..0-1\n").0, 2);
}

#[test]
fn format_quotes_what_needs_quoting() {
    let mut i = info_text::parse(MINIMAL).unwrap();
    i.description = "two\nlines \"quoted\" \\ and\ttab; # not a comment { }".into();
    i.copyrights = vec![String::new(), "'single'".into()];
    i.users = vec![hpkg_format::User {
        name: "u".into(),
        real_name: Some("Real Name".into()),
        home: None,
        shell: Some("/bin/sh".into()),
        groups: vec!["a".into(), "b".into()],
    }];
    i.groups = vec!["a".into(), "b".into()];
    i.base_package = Some("nover".into());
    i.requires = vec![hpkg_format::Requirement {
        name: "nover".into(),
        operator: None,
        version: None,
    }];
    i.checksum = Some("ab".repeat(32));
    i.install_path = Some("/boot/x y".into());
    let text = info_text::format(&i);
    assert!(text.contains("base-package"), "{text}");
    assert_eq!(info_text::parse(&text).unwrap(), i, "{text}");
}

#[test]
fn truncated_and_mangled_text_never_panics() {
    let pkg = Package::open(fixtures().join("haiku-tool/metadata-zlib.hpkg")).unwrap();
    let text = package_info_text(&pkg);
    let mut errors = 0;
    for (i, _) in text.char_indices() {
        errors += usize::from(info_text::parse(&text[..i]).is_err());
        let mut mangled = text.clone();
        mangled.insert(i, ['"', '{', '}', '\\', '!', ';', '#', '\n'][i % 8]);
        let _ = info_text::parse(&mangled);
    }
    // Every proper prefix misses a mandatory key or cuts a construct short,
    // except the ones that only drop trailing optional lists.
    assert!(errors > text.len() / 2, "{errors} of {}", text.len());
}
