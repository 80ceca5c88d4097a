//! Repositories end to end, with real parts: `pkgctl repo create` publishes
//! a signed repository, a real nginx serves it on a loopback port, and a
//! root installs, updates and uninstalls from it with `pkgctl`. Every
//! refusal (tampered package, tampered index, replayed older index, expired
//! index, unsatisfiable request, untrusted package) leaves the root at the
//! generation it had. The `minisign` tool itself checks our signatures. A
//! `packagefs` mount of the root follows every change live.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hpkg_format::writer::{create_from_dir, WriteOptions};
use packagefs_tests::nginx::Nginx;
use packagefs_tests::{bin_path, sha256_hex, wait_for, PackagefsMount};

/// Seconds to wait for the mount to follow a change.
const PATIENCE: u64 = 10;

/// The content of `bin/<name>` in the mount, if any.
fn read(m: &PackagefsMount, name: &str) -> Option<String> {
    std::fs::read_to_string(m.path().join("bin").join(name)).ok()
}

/// Run pkgctl with `args`.
fn pkgctl(args: &[&str]) -> Output {
    Command::new(bin_path("pkgctl"))
        .args(args)
        .output()
        .expect("running pkgctl")
}

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// pkgctl that must succeed; its standard output.
fn ok(args: &[&str]) -> String {
    let o = pkgctl(args);
    assert!(o.status.success(), "pkgctl {args:?} failed\n{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// pkgctl that must fail; its standard error.
fn refused(args: &[&str]) -> String {
    let o = pkgctl(args);
    assert!(
        !o.status.success(),
        "pkgctl {args:?} should have failed\n{}",
        text(&o)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Build `name` at `version` into `dir` under its canonical file name,
/// providing `provides` too and requiring `requires`.
fn package(dir: &Path, name: &str, version: &str, provides: &str, requires: &str) -> PathBuf {
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir(src.path().join("bin")).unwrap();
    std::fs::write(
        src.path().join("bin").join(name),
        format!("{name} {version}\n"),
    )
    .unwrap();
    let mut info = format!(
        "name {name}\nversion {version}\narchitecture x86_64\nsummary \"test {name}\"\n\
         description \"d\"\npackager p\nvendor Tests\ncopyrights c\nlicenses MIT\n\
         provides {{ {name} = {version} {provides} }}\n"
    );
    if !requires.is_empty() {
        info.push_str(&format!("requires {{ {requires} }}\n"));
    }
    let info = hpkg_format::info_text::parse(&info).unwrap();
    let out = dir.join(info.file_name());
    create_from_dir(
        src.path(),
        &info,
        &out,
        &WriteOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    out
}

/// The current generation of the root.
fn generation(root: &str) -> u64 {
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["-R", root, "generations", "--json"])).unwrap();
    v["current"].as_u64().unwrap()
}

/// `name version` of every active package, sorted.
fn installed(root: &str) -> Vec<String> {
    let mut v: Vec<String> = ok(&["-R", root, "list"])
        .lines()
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            format!("{} {}", w[1], w[2])
        })
        .collect();
    v.sort();
    v
}

struct Publisher {
    dir: PathBuf,
    key: String,
}

impl Publisher {
    fn publish(&self, extra: &[&str]) {
        let dir = self.dir.to_str().unwrap();
        let mut args = vec!["repo", "create", dir, "--name", "main", "--key", &self.key];
        args.extend_from_slice(extra);
        ok(&args);
    }

    fn save(&self, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for f in ["repo", "repo.minisig", "repo.sha256", "repo.info"] {
            std::fs::copy(self.dir.join(f), to.join(f)).unwrap();
        }
    }

    fn restore(&self, from: &Path) {
        for f in ["repo", "repo.minisig", "repo.sha256", "repo.info"] {
            std::fs::copy(from.join(f), self.dir.join(f)).unwrap();
        }
    }
}

#[test]
fn install_update_uninstall_from_a_signed_repository_over_http() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let repo = t.join("repo");
    let pkgs = repo.join("packages");
    std::fs::create_dir_all(&pkgs).unwrap();
    let key = t.join("release");
    ok(&["key", "generate", "-o", key.to_str().unwrap()]);
    let publisher = Publisher {
        dir: repo.clone(),
        key: format!("{}.key", key.display()),
    };

    // app -> mid -> lib:libz (provided by zlib): a two-level chain.
    package(&pkgs, "zlib", "1.3-1", "lib:libz = 1.3", "");
    package(&pkgs, "mid", "2.0-1", "", "lib:libz >= 1");
    package(&pkgs, "app", "1.0-1", "", "mid >= 2");
    package(&pkgs, "broken", "1.0-1", "", "lib:libmissing >= 1");
    publisher.publish(&[]);

    // The minisign tool itself accepts our index signature and our
    // detached package signature.
    let pubkey = format!("{}.pub", key.display());
    let mini = Command::new("minisign")
        .args(["-Vm", repo.join("repo").to_str().unwrap(), "-p", &pubkey])
        .output()
        .expect("minisign is not installed (.ci/deps.sh installs it)");
    assert!(
        mini.status.success(),
        "minisign refused the index\n{}",
        text(&mini)
    );
    assert!(String::from_utf8_lossy(&mini.stdout).contains("name:main version:1 expires:"));
    let app_file = pkgs.join("app-1.0-1-x86_64.hpkg");
    ok(&["sign", app_file.to_str().unwrap(), "--key", &publisher.key]);
    let mini = Command::new("minisign")
        .args(["-Vm", app_file.to_str().unwrap(), "-p", &pubkey])
        .output()
        .unwrap();
    assert!(
        mini.status.success(),
        "minisign refused the package signature\n{}",
        text(&mini)
    );

    let nginx = Nginx::serve(&repo).unwrap_or_else(|e| panic!("{e}"));
    let root_dir = t.join("root");
    let root = root_dir.to_str().unwrap();
    ok(&["init", root]);
    let m = PackagefsMount::new(&[&root_dir], &[]);
    ok(&[
        "-R",
        root,
        "repo",
        "add",
        "main",
        &nginx.url(),
        "--key",
        &pubkey,
    ]);
    assert!(ok(&["-R", root, "refresh"]).contains("main: updated, 4 package(s), version 1"));
    let g0 = generation(root);

    // Install: the whole chain in one generation; rollback undoes it all.
    let plan = ok(&["-R", root, "install", "--dry-run", "--json", "app"]);
    let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
    assert_eq!(plan["add"].as_array().unwrap().len(), 3, "{plan}");
    assert_eq!(generation(root), g0, "a dry run changes nothing");
    ok(&["-R", root, "install", "app"]);
    assert_eq!(generation(root), g0 + 1);
    assert_eq!(installed(root), ["app 1.0-1", "mid 2.0-1", "zlib 1.3-1"]);
    assert!(
        nginx
            .access_log()
            .contains("GET /packages/zlib-1.3-1-x86_64.hpkg"),
        "{}",
        nginx.access_log()
    );
    assert!(
        wait_for(PATIENCE, || read(&m, "app").is_some()
            && read(&m, "zlib").is_some()),
        "the mount does not show the install\n{}",
        m.log()
    );
    ok(&["-R", root, "rollback"]);
    assert!(installed(root).is_empty());
    assert!(
        wait_for(PATIENCE, || read(&m, "app").is_none()),
        "the mount does not show the rollback\n{}",
        m.log()
    );
    // The second install resumes a partial download of zlib with a Range
    // request (nginx answers 206) and checks the whole file.
    let zlib = std::fs::read(pkgs.join("zlib-1.3-1-x86_64.hpkg")).unwrap();
    let partial = root_dir
        .join("system/cache/packages")
        .join(sha256_hex(&zlib))
        .join("zlib-1.3-1-x86_64.hpkg.part");
    std::fs::create_dir_all(partial.parent().unwrap()).unwrap();
    std::fs::write(&partial, &zlib[..100]).unwrap();
    ok(&["-R", root, "install", "app"]);
    assert!(
        nginx
            .access_log()
            .contains("GET /packages/zlib-1.3-1-x86_64.hpkg HTTP/1.1\" 206"),
        "no resumed download:\n{}",
        nginx.access_log()
    );
    assert!(
        !partial.exists(),
        "the download leaves the cache once committed"
    );
    let mut g = generation(root);
    assert!(ok(&["-R", root, "deps", "app", "--tree"]).contains("lib:libz >= 1: zlib-1.3-1"));

    // Unsatisfiable requests are explained and change nothing.
    let e = refused(&["-R", root, "install", "broken"]);
    assert!(e.contains("lib:libmissing"), "{e}");
    let e = refused(&["-R", root, "install", "app>=9"]);
    assert!(e.contains(">= 9"), "{e}");
    assert_eq!(generation(root), g);

    // Update: a newer mid is published and installed in one generation.
    let v1 = t.join("v1");
    publisher.save(&v1);
    std::fs::remove_file(pkgs.join("mid-2.0-1-x86_64.hpkg")).unwrap();
    let mid21 = package(&pkgs, "mid", "2.1-1", "", "lib:libz >= 1");
    publisher.publish(&[]);
    ok(&["-R", root, "refresh"]);
    ok(&["-R", root, "update"]);
    g += 1;
    assert_eq!(generation(root), g);
    assert_eq!(installed(root), ["app 1.0-1", "mid 2.1-1", "zlib 1.3-1"]);
    assert!(
        wait_for(PATIENCE, || read(&m, "mid").as_deref()
            == Some("mid 2.1-1\n")),
        "the mount does not show the update\n{}",
        m.log()
    );

    // A replayed older index is refused; the accepted one stays.
    let v2 = t.join("v2");
    publisher.save(&v2);
    publisher.restore(&v1);
    let e = refused(&["-R", root, "refresh"]);
    assert!(e.contains("older than version 2"), "{e}");
    publisher.restore(&v2);

    // A tampered index is refused.
    let mut bytes = std::fs::read(repo.join("repo")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(repo.join("repo"), &bytes).unwrap();
    let e = refused(&["-R", root, "refresh"]);
    assert!(e.contains("does not verify"), "{e}");
    publisher.restore(&v2);

    // An expired index is refused.
    publisher.publish(&["--valid-for", "0"]);
    let e = refused(&["-R", root, "refresh"]);
    assert!(e.contains("expired"), "{e}");
    let listed: serde_json::Value =
        serde_json::from_str(&ok(&["-R", root, "repo", "list", "--json"])).unwrap();
    assert_eq!(listed["version"], 2, "the last good index stays: {listed}");
    assert_eq!(generation(root), g);

    // A tampered package is refused before anything changes, naming its URL.
    package(&pkgs, "extra", "1.0-1", "", "");
    publisher.publish(&[]);
    ok(&["-R", root, "refresh"]);
    let extra = pkgs.join("extra-1.0-1-x86_64.hpkg");
    let mut bytes = std::fs::read(&extra).unwrap();
    bytes.push(0);
    std::fs::write(&extra, &bytes).unwrap();
    let e = refused(&["-R", root, "install", "extra"]);
    assert!(
        e.contains("/packages/extra-1.0-1-x86_64.hpkg: SHA-256 mismatch"),
        "{e}"
    );
    assert_eq!(generation(root), g);

    // An untrusted (valid, but unlisted and unsigned) package is refused by a
    // layer that requires vouching;
    // one the verified index lists is accepted.
    std::fs::write(
        root_dir.join("system/settings/policy"),
        "user require-vouched yes\n",
    )
    .unwrap();
    let strays = t.join("strays");
    std::fs::create_dir_all(&strays).unwrap();
    let stray = package(&strays, "stray", "1.0-1", "", "");
    let e = refused(&[
        "-R",
        root,
        "add",
        "--layer",
        "user",
        stray.to_str().unwrap(),
    ]);
    assert!(
        e.contains("refused by the trust policy of the user layer"),
        "{e}"
    );
    assert_eq!(generation(root), g);
    // ... and so is the same package dropped into the directory of that layer:
    // the mount's sync leaves it out.
    let dropped = root_dir.join("user/packages/stray-1.0-1-x86_64.hpkg");
    std::fs::copy(&stray, &dropped).unwrap();
    assert!(
        wait_for(PATIENCE, || m
            .log()
            .contains("refused by the trust policy of the user layer")),
        "the daemon did not refuse the untrusted drop-in\n{}",
        m.log()
    );
    assert!(read(&m, "stray").is_none());
    assert_eq!(generation(root), g);
    // status lists it, with the policy's reason.
    let status: serde_json::Value =
        serde_json::from_str(&ok(&["-R", root, "status", "--json"])).unwrap();
    let listed = status["not_activated"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["file_name"] == "stray-1.0-1-x86_64.hpkg")
        .unwrap_or_else(|| panic!("status does not list the untrusted drop-in: {status}"));
    assert_eq!(listed["reason"]["kind"], "untrusted");
    assert!(listed["message"]
        .as_str()
        .unwrap()
        .contains("refused by the trust policy of the user layer"));
    std::fs::remove_file(&dropped).unwrap();
    // (mid is active in the system layer too: --force keeps both, which
    // one package, one layer refuses otherwise; vouching is what is tested.)
    ok(&[
        "-R",
        root,
        "add",
        "--force",
        "--layer",
        "user",
        mid21.to_str().unwrap(),
    ]);
    ok(&["-R", root, "remove", "user/mid"]);
    g += 2;

    // Uninstall: refused while needed, naming who needs it; then allowed.
    let e = refused(&["-R", root, "uninstall", "zlib"]);
    assert!(
        e.contains("zlib-1.3-1 is still needed by mid-2.1-1 (requires lib:libz >= 1)"),
        "{e}"
    );
    assert_eq!(generation(root), g);
    ok(&["-R", root, "uninstall", "app", "mid", "zlib"]);
    assert_eq!(generation(root), g + 1);
    assert!(installed(root).is_empty());
    assert!(
        wait_for(PATIENCE, || read(&m, "zlib").is_none()
            && read(&m, "app").is_none()),
        "the mount does not show the uninstall\n{}",
        m.log()
    );

    // Redirects are followed: /moved/... answers 302 to /... .
    let moved = format!("{}/moved", nginx.url());
    ok(&["-R", root, "repo", "add", "moved", &moved, "--key", &pubkey]);
    assert!(ok(&["-R", root, "refresh"]).contains("moved: updated"));
    assert!(
        nginx
            .access_log()
            .contains("GET /moved/repo HTTP/1.1\" 302"),
        "{}",
        nginx.access_log()
    );
    ok(&["-R", root, "repo", "remove", "moved"]);

    // A repository without a key needs --insecure, and every refresh says so.
    let file_url = format!("file://{}", repo.display());
    refused(&["-R", root, "repo", "add", "local", &file_url]);
    ok(&["-R", root, "repo", "add", "local", &file_url, "--insecure"]);
    for _ in 0..2 {
        let o = pkgctl(&["-R", root, "refresh"]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr)
                .contains("local: repository added with --insecure: its index is NOT verified"),
            "{}",
            text(&o)
        );
    }
}
