//! Shell completions, man pages and `make install`, for both binaries.
//!
//! The subcommand and option names checked are read from each binary's own
//! `--help` output, never listed here. Man pages are rendered with `man -l`
//! (or `groff -man`) when the machine has one; otherwise their roff source
//! is checked (`.TH` header, sections, options).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use packagefs_tests::{bin_path, workspace_root};

/// The two binaries with the man section of their pages.
const BINARIES: [(&str, &str); 2] = [("pkgctl", "1"), ("packagefs", "8")];

fn run(bin: &str, args: &[&str]) -> Output {
    let out = Command::new(bin_path(bin))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run the binary");
    assert!(
        out.status.success(),
        "{bin} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(bin: &str, args: &[&str]) -> String {
    String::from_utf8(run(bin, args).stdout).unwrap()
}

/// Whether `program` can be run (it is on PATH).
fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// The commands a `--help` text lists under `Commands:`, less `help`.
fn commands_in(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_owned)
        .collect()
}

/// The subcommands `BIN --help` lists under `Commands:`, less `help`.
fn subcommands(bin: &str) -> Vec<String> {
    let help = stdout(bin, &["--help"]);
    let names = commands_in(&help);
    assert!(
        names.len() >= 4,
        "{bin} --help lists too few subcommands: {help}"
    );
    names
}

/// Every man page's subcommand path: each subcommand (`add`), and each
/// subcommand of a subcommand that has its own (`repo create`, written as
/// the page `BIN-repo-create`).
fn man_pages(bin: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for sub in subcommands(bin) {
        for n in commands_in(&stdout(bin, &[&sub, "--help"])) {
            out.push(vec![sub.clone(), n]);
        }
        out.push(vec![sub]);
    }
    out
}

/// The long options (`--name`) that `BIN ARGS... --help` documents.
fn long_options(bin: &str, args: &[&str]) -> BTreeSet<String> {
    let mut all = args.to_vec();
    all.push("--help");
    stdout(bin, &all)
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .flat_map(|l| {
            l.split(|c: char| c.is_whitespace() || c == ',' || c == '=' || c == '<')
                .filter(|w| w.starts_with("--") && w.len() > 2)
                .map(|w| w.trim_end_matches("...").to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn bash_completion_offers_every_subcommand() {
    for (bin, _) in BINARIES {
        let script = stdout(bin, &["completions", "bash"]);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(bin);
        std::fs::write(&file, &script).unwrap();

        let check = Command::new("bash").arg("-n").arg(&file).output().unwrap();
        assert!(
            check.status.success(),
            "bash -n rejects the {bin} completions: {}",
            String::from_utf8_lossy(&check.stderr)
        );

        // Complete `BIN <TAB>` for real with the script's function.
        let complete = format!(
            "source {file:?}; COMP_WORDS=({bin} ''); COMP_CWORD=1; COMP_LINE='{bin} '; \
             COMP_POINT=${{#COMP_LINE}}; _{bin} {bin} '' {bin}; printf '%s\\n' \"${{COMPREPLY[@]}}\""
        );
        let out = Command::new("bash")
            .arg("-c")
            .arg(&complete)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let offered: BTreeSet<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        for sub in subcommands(bin) {
            assert!(
                offered.contains(&sub),
                "`{bin} <TAB>` does not offer {sub}: {offered:?}"
            );
        }
    }
}

#[test]
fn every_shell_script_names_every_subcommand() {
    for (bin, _) in BINARIES {
        let subs = subcommands(bin);
        for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
            let script = stdout(bin, &["completions", shell]);
            for sub in &subs {
                assert!(
                    script.contains(sub.as_str()),
                    "{bin} completions {shell} does not mention {sub}"
                );
            }
        }
    }
}

#[test]
fn completions_reject_an_unknown_shell() {
    for (bin, _) in BINARIES {
        let out = Command::new(bin_path(bin))
            .args(["completions", "tcsh"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bin}: {out:?}");
        assert!(out.stdout.is_empty());
    }
}

/// The text of a man page as a reader sees it, by whatever renders man pages
/// here; `None` when nothing does.
fn render(page: &Path) -> Option<String> {
    let out = if have("man") {
        Command::new("man")
            .arg("-l")
            .arg(page)
            .env("LC_ALL", "C")
            .env("MANWIDTH", "250")
            .env("MAN_DISABLE_SECCOMP", "1")
            .output()
            .unwrap()
    } else if have("groff") {
        Command::new("groff")
            .args(["-man", "-Tascii", "-rLL=250n", "-P-cbou"])
            .arg(page)
            .output()
            .unwrap()
    } else {
        return None;
    };
    assert!(
        out.status.success(),
        "rendering {}: {out:?}",
        page.display()
    );
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(
        !warnings.contains("warning") && !warnings.contains("error"),
        "rendering {}: {warnings}",
        page.display()
    );
    // Drop any overstriking (bold, underline) left in.
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut plain = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    Some(plain)
}

/// Check one page: rendered (or its source) names the command, has the usual
/// sections and documents every long option that `--help` shows.
fn check_page(page: &Path, title: &str, section: &str, options: &BTreeSet<String>) {
    let source = std::fs::read_to_string(page).unwrap();
    assert!(
        source.contains(&format!(".TH {title} {section}")),
        "{}: no .TH header for {title}({section}): {source}",
        page.display()
    );
    let text = match render(page) {
        Some(text) => {
            assert!(
                text.contains(&format!("{title}({section})")),
                "{}: rendered without its title: {text}",
                page.display()
            );
            assert!(text.contains(&format!("{title} - ")), "{text}");
            text
        }
        None => {
            assert!(source.contains(".SH NAME"), "{source}");
            source.replace("\\-", "-")
        }
    };
    for heading in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS"] {
        assert!(
            text.contains(heading),
            "{}: no {heading} section: {text}",
            page.display()
        );
    }
    for option in options {
        assert!(
            text.contains(option.as_str()),
            "{}: does not document {option}: {text}",
            page.display()
        );
    }
}

#[test]
fn man_writes_a_rendering_page_per_subcommand() {
    for (bin, section) in BINARIES {
        let dir = tempfile::tempdir().unwrap();
        let out_dir = dir.path().join("pages");
        let out = run(bin, &["man", "-o", out_dir.to_str().unwrap()]);
        assert!(out.stdout.is_empty(), "{bin} man prints nothing: {out:?}");

        let subs = man_pages(bin);
        let mut expected: BTreeSet<String> = subs
            .iter()
            .map(|s| format!("{bin}-{}.{section}", s.join("-")))
            .collect();
        expected.insert(format!("{bin}.{section}"));
        let written: BTreeSet<String> = std::fs::read_dir(&out_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(written, expected, "{bin} man pages");

        check_page(
            &out_dir.join(format!("{bin}.{section}")),
            bin,
            section,
            &long_options(bin, &[]),
        );
        for sub in &subs {
            let name = sub.join("-");
            let args: Vec<&str> = sub.iter().map(String::as_str).collect();
            check_page(
                &out_dir.join(format!("{bin}-{name}.{section}")),
                &format!("{bin}-{name}"),
                section,
                &long_options(bin, &args),
            );
        }
    }
}

#[test]
fn man_defaults_to_the_current_directory() {
    for (bin, section) in BINARIES {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(bin_path(bin))
            .arg("man")
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(dir.path().join(format!("{bin}.{section}")).is_file());
    }
}

#[test]
fn man_into_an_impossible_directory_fails_naming_it() {
    for (bin, _) in BINARIES {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let target = file.join("pages");
        let out = Command::new(bin_path(bin))
            .args(["man", "-o"])
            .arg(&target)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{bin}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with(&format!("{bin}: ")) && err.contains(&*target.to_string_lossy()),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

/// The fstab form still takes a ROOT named like a subcommand when it is
/// written as a path: `packagefs ./man MNT` mounts (here: fails on the
/// missing mount point, after parsing as the fstab form), while a bare `man`
/// is the subcommand (which takes no MOUNTPOINT: a usage error).
#[test]
fn packagefs_fstab_form_with_a_root_named_man() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("man")).unwrap();
    let missing = dir.path().join("no-such-mountpoint");
    let fstab = Command::new(bin_path("packagefs"))
        .arg("./man")
        .arg(&missing)
        .args(["-o", "ro"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(fstab.status.code(), Some(1), "{fstab:?}");
    let err = String::from_utf8_lossy(&fstab.stderr);
    assert!(
        err.contains("mount point") && err.contains("no-such-mountpoint"),
        "{err}"
    );

    let bare = Command::new(bin_path("packagefs"))
        .arg("man")
        .arg(&missing)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(bare.status.code(), Some(2), "{bare:?}");
}

/// `make install` with the binaries already built (NO_BUILD=1) lays out
/// binaries, pages and completions under DESTDIR/PREFIX.
#[test]
fn make_install_lays_out_the_files() {
    if !have("make") {
        panic!("make is not installed; the repository's commands need it");
    }
    let bins = bin_path("pkgctl").parent().map(Path::to_path_buf).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("dest");
    let gen = dir.path().join("gen");
    let out = Command::new("make")
        .arg("-C")
        .arg(workspace_root())
        .arg("install")
        .arg("NO_BUILD=1")
        .arg(format!("RELEASE_DIR={}", bins.display()))
        .arg(format!("GEN_DIR={}", gen.display()))
        .arg(format!("DESTDIR={}", dest.display()))
        .arg("PREFIX=/usr")
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "make install: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let usr = dest.join("usr");
    let mut expected: Vec<PathBuf> = Vec::new();
    for (bin, section) in BINARIES {
        expected.push(usr.join("bin").join(bin));
        let man = usr.join(format!("share/man/man{section}"));
        expected.push(man.join(format!("{bin}.{section}")));
        for sub in man_pages(bin) {
            expected.push(man.join(format!("{bin}-{}.{section}", sub.join("-"))));
        }
        expected.push(usr.join("share/bash-completion/completions").join(bin));
        expected.push(usr.join(format!("share/zsh/site-functions/_{bin}")));
        expected.push(usr.join(format!("share/fish/vendor_completions.d/{bin}.fish")));
    }
    let unit = workspace_root().join("packagefs/packaging/packagefs@.service");
    if unit.is_file() {
        expected.push(usr.join("lib/systemd/system/packagefs@.service"));
    }
    let mut installed: Vec<PathBuf> = Vec::new();
    let mut stack = vec![dest.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                installed.push(p);
            }
        }
    }
    installed.sort();
    expected.sort();
    assert_eq!(installed, expected);

    use std::os::unix::fs::PermissionsExt;
    for (bin, _) in BINARIES {
        let mode = std::fs::metadata(usr.join("bin").join(bin))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755, "{bin}");
        // The installed binary is the built one and runs.
        let v = Command::new(usr.join("bin").join(bin))
            .arg("--version")
            .output()
            .unwrap();
        assert!(v.status.success());
    }
    let zsh = std::fs::read_to_string(usr.join("share/zsh/site-functions/_pkgctl")).unwrap();
    assert!(zsh.starts_with("#compdef pkgctl"), "{zsh}");
}
