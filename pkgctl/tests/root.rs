//! The root commands of the `pkgctl` binary end to end: `init`, `add`,
//! `remove`, `list`, `status`, `owner`, `generations`, `rollback`, `gc`,
//! `pin`, `unpin` and `verify`, on package roots in temporary directories, with
//! packages built by `pkgctl create` from the demo trees in
//! `fixtures/packages/` (hello_extras requires hello_base >= 1.0; hello_user
//! requires hello_base and shadows its etc/hello/hello.conf).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

const BASE: &str = "hello_base-1.0-1-any.hpkg";
const EXTRAS: &str = "hello_extras-2.1-1-any.hpkg";
const USER: &str = "hello_user-1.0-1-any.hpkg";

/// A temporary directory with the demo packages built and a root path
/// (not yet initialised) inside it.
struct Env {
    dir: TempDir,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/packages");
        for (tree, file) in [
            ("hello-base", BASE),
            ("hello-extras", EXTRAS),
            ("hello-user", USER),
        ] {
            let out = run(
                &[
                    "create".as_ref(),
                    fixtures.join(tree).as_os_str(),
                    "-q".as_ref(),
                    "-o".as_ref(),
                    dir.path().join(file).as_os_str(),
                ],
                &[],
            );
            ok(&out);
        }
        Env { dir }
    }

    fn pkg(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// `pkgctl -R ROOT args...`.
    fn r(&self, args: &[&str]) -> Output {
        let root = self.root();
        let mut all: Vec<&std::ffi::OsStr> = vec!["-R".as_ref(), root.as_os_str()];
        all.extend(args.iter().map(|a| std::ffi::OsStr::new(*a)));
        run(&all, &[])
    }

    /// `pkgctl -R ROOT args... PKG` with `PKG` a built package.
    fn add(&self, extra: &[&str], files: &[&str]) -> Output {
        let paths: Vec<String> = files
            .iter()
            .map(|f| self.pkg(f).to_str().unwrap().to_string())
            .collect();
        let mut args = vec!["add"];
        args.extend_from_slice(extra);
        args.extend(paths.iter().map(String::as_str));
        self.r(&args)
    }

    fn init(&self) {
        let out = run(&["init".as_ref(), self.root().as_os_str()], &[]);
        ok(&out);
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&ok(&self.r(args))).unwrap()
    }
}

fn run(args: &[&std::ffi::OsStr], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pkgctl"));
    cmd.args(args).env_remove("PACKAGEFS_ROOT");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run pkgctl")
}

/// Standard output of a successful run.
fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "pkgctl failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// A failure with status 1 and exactly one line on stderr; returns it.
fn one_line_failure(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "status of {out:?}");
    let err = stderr(out);
    assert!(err.ends_with('\n'), "stderr not a line: {err:?}");
    assert_eq!(err.lines().count(), 1, "stderr not one line: {err:?}");
    assert!(err.starts_with("pkgctl: "), "{err:?}");
    err.trim_end().to_string()
}

/// `(layer, name)` of every package `list --json` shows.
fn listed(env: &Env) -> Vec<(String, String)> {
    let v = env.json(&["list", "--json"]);
    v["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["layer"].as_str().unwrap().to_string(),
                p["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pair(layer: &str, name: &str) -> (String, String) {
    (layer.to_string(), name.to_string())
}

#[test]
fn init_creates_a_root_and_is_idempotent() {
    let env = Env::new();
    let first = ok(&run(&["init".as_ref(), env.root().as_os_str()], &[]));
    assert!(first.contains("generation 1"), "{first}");
    for dir in [
        "system/packages",
        "common/packages",
        "user/packages",
        "system/state",
    ] {
        assert!(env.root().join(dir).is_dir(), "{dir}");
    }
    let again = ok(&run(&["init".as_ref(), env.root().as_os_str()], &[]));
    assert!(again.contains("generation 1"), "{again}");
    assert_eq!(env.json(&["generations", "--json"])["current"], 1);
}

#[test]
fn add_to_layers_then_list_text_and_json() {
    let env = Env::new();
    env.init();
    let out = ok(&env.add(&[], &[BASE]));
    assert_eq!(out, format!("generation 2\n+ system/{BASE}\n"));
    let out = ok(&env.add(&["--layer", "user"], &[USER]));
    assert_eq!(out, format!("generation 3\n+ user/{USER}\n"));
    assert!(env.root().join("user/packages").join(USER).is_file());

    let text = ok(&env.r(&["list"]));
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines,
        vec![
            vec!["system", "hello_base", "1.0-1", BASE],
            vec!["user", "hello_user", "1.0-1", USER]
        ]
    );

    let v = env.json(&["list", "--json"]);
    assert_eq!(v["generation"], 3);
    let pkgs = v["packages"].as_array().unwrap();
    assert_eq!(pkgs.len(), 2);
    let base = &pkgs[0];
    assert_eq!(base["layer"], "system");
    assert_eq!(base["file_name"], BASE);
    assert_eq!(base["name"], "hello_base");
    assert_eq!(base["version"], "1.0-1");
    assert_eq!(base["size"], fs::metadata(env.pkg(BASE)).unwrap().len());
    let hash = base["hash"].as_str().unwrap();
    assert_eq!(hash.len(), 64);
    assert!(hash
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(v["warnings"], serde_json::json!([]));

    // The same file again changes nothing, and says why on stderr.
    let again = env.add(&[], &[BASE]);
    assert_eq!(ok(&again), "generation 3 (unchanged: nothing to do)\n");
    assert_eq!(
        stderr(&again),
        format!("pkgctl: warning: system/{BASE}: already active\n")
    );
    assert_eq!(env.json(&["generations", "--json"])["current"], 3);
}

#[test]
fn status_shows_the_shadowed_conf_and_an_unmet_requirement_after_a_forced_remove() {
    let env = Env::new();
    env.init();
    ok(&env.add(&[], &[BASE]));
    ok(&env.add(&["--layer", "user"], &[USER]));

    let v = env.json(&["status", "--json"]);
    assert_eq!(v["generation"]["number"], 3);
    assert_eq!(v["fallback"], false);
    let conf: Vec<&Value> = v["shadowed"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["path"] == "etc/hello/hello.conf")
        .collect();
    assert_eq!(conf.len(), 1, "{v:#}");
    assert_eq!(conf[0]["kind"], "file");
    assert_eq!(conf[0]["hidden"]["label"], "hello_base-1.0-1");
    assert_eq!(conf[0]["hidden"]["layer"], "system");
    assert_eq!(conf[0]["hidden"]["file_name"], BASE);
    assert_eq!(conf[0]["shown"]["label"], "hello_user-1.0-1");
    assert_eq!(conf[0]["shown"]["layer"], "user");
    assert_eq!(v["problems"], serde_json::json!([]));
    assert_eq!(v["not_mounted"], serde_json::json!([]));
    assert_eq!(v["blocked_entries"], serde_json::json!([]));
    let text = ok(&env.r(&["status"]));
    assert!(
        text.contains("/etc/hello/hello.conf: file of hello_base-1.0-1 (system/")
            && text.contains("hidden by hello_user-1.0-1 (user/"),
        "{text}"
    );

    // Removing the base would leave hello_user's requirement unmet.
    let refused = env.r(&["remove", "hello_base"]);
    assert_eq!(refused.status.code(), Some(1));
    let err = stderr(&refused);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].contains("hello_user-1.0-1 requires hello_base"),
        "{err}"
    );
    assert!(
        lines[1].contains("refusing a package set with 1 dependency problem"),
        "{err}"
    );
    assert_eq!(listed(&env).len(), 2);

    let forced = env.r(&["remove", "--force", "hello_base"]);
    assert_eq!(ok(&forced), format!("generation 4\n- system/{BASE}\n"));
    assert!(stderr(&forced)
        .contains("pkgctl: warning: forced despite: hello_user-1.0-1 requires hello_base"));
    let v = env.json(&["status", "--json"]);
    assert_eq!(v["shadowed"], serde_json::json!([]));
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0]["kind"], "unmet");
    assert_eq!(problems[0]["name"], "hello_user-1.0-1");
    assert_eq!(problems[0]["requirement"], "hello_base");
    let text = ok(&env.r(&["status"]));
    assert!(
        text.contains("dependency problems: 1\n  hello_user-1.0-1 requires hello_base"),
        "{text}"
    );
}

#[test]
fn add_is_refused_for_an_unmet_requirement_unless_forced() {
    let env = Env::new();
    env.init();
    let refused = env.add(&["--layer", "common"], &[EXTRAS, USER]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(refused.stdout.is_empty());
    let err = stderr(&refused);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines[0].contains("hello_extras-2.1-1 requires hello_base >= 1.0"),
        "{err}"
    );
    assert!(
        lines[1].contains("hello_user-1.0-1 requires hello_base"),
        "{err}"
    );
    assert!(
        lines[2].starts_with(&format!("pkgctl: {}: refusing", env.root().display())),
        "{err}"
    );
    assert!(listed(&env).is_empty());
    assert!(!env.root().join("common/packages").join(EXTRAS).exists());

    let forced = env.add(&["--layer", "common", "--force"], &[EXTRAS]);
    assert_eq!(ok(&forced), format!("generation 2\n+ common/{EXTRAS}\n"));
    assert_eq!(listed(&env), vec![pair("common", "hello_extras")]);
    // With the base there, extras' requirement is met.
    ok(&env.add(&[], &[BASE]));
    assert_eq!(
        env.json(&["status", "--json"])["problems"],
        serde_json::json!([])
    );
}

#[test]
fn remove_generations_and_rollback_restore_the_old_set_byte_for_byte() {
    let env = Env::new();
    env.init();
    ok(&env.add(&[], &[BASE]));
    ok(&env.add(&["--layer", "user"], &[USER]));
    let out = ok(&env.r(&["remove", "hello_user"]));
    assert_eq!(out, format!("generation 4\n- user/{USER}\n"));
    let user_file = env.root().join("user/packages").join(USER);
    assert!(!user_file.exists());

    let v = env.json(&["generations", "--json"]);
    assert_eq!(v["current"], 4);
    let numbers: Vec<u64> = v["generations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, vec![1, 2, 3, 4]);
    let g4 = &v["generations"][3];
    assert_eq!(g4["parent"], 3);
    assert!(g4["reason"].as_str().unwrap().contains("remove hello_user"));
    assert_eq!(g4["pinned"], false);
    assert_eq!(g4["packages"].as_array().unwrap().len(), 1);
    let text = ok(&env.r(&["generations"]));
    assert_eq!(text.lines().count(), 4);
    assert!(
        text.lines().last().unwrap().starts_with("*    4  parent 3"),
        "{text}"
    );

    // Default: back to the parent (3), which had hello_user.
    let out = ok(&env.r(&["rollback"]));
    assert_eq!(out, format!("generation 5\n+ user/{USER}\n"));
    assert_eq!(
        fs::read(&user_file).unwrap(),
        fs::read(env.pkg(USER)).unwrap()
    );
    assert_eq!(
        listed(&env),
        vec![pair("system", "hello_base"), pair("user", "hello_user")]
    );
    // To a numbered generation: 1 was empty.
    let out = ok(&env.r(&["rollback", "1"]));
    assert!(out.starts_with("generation 6\n"), "{out}");
    assert!(out.contains(&format!("- system/{BASE}")) && out.contains(&format!("- user/{USER}")));
    assert!(listed(&env).is_empty());
    let err = one_line_failure(&env.r(&["rollback", "99"]));
    assert!(err.contains("generation 99 does not exist"), "{err}");
}

#[test]
fn gc_keeps_the_newest_and_pinned_generations() {
    let env = Env::new();
    env.init();
    ok(&env.add(&[], &[BASE])); // 2
    ok(&env.add(&["--layer", "user"], &[USER])); // 3
    ok(&env.r(&["remove", "hello_user"])); // 4: USER now only in the store
    ok(&env.r(&["remove", "hello_base"])); // 5
    let store = env.root().join("system/state/store");
    assert_eq!(fs::read_dir(&store).unwrap().count(), 2);

    assert_eq!(ok(&env.r(&["pin", "3"])), "generation 3 pinned\n");
    assert_eq!(
        env.json(&["generations", "--json"])["generations"][2]["pinned"],
        true
    );
    let out = ok(&env.r(&["gc", "--keep", "1"]));
    assert!(
        out.starts_with("removed 3 generation(s): 1, 2, 4;"),
        "{out}"
    );
    let kept = |env: &Env| -> Vec<u64> {
        env.json(&["generations", "--json"])["generations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["number"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(kept(&env), vec![3, 5]);
    // Generation 3 still needs both package files.
    assert_eq!(fs::read_dir(&store).unwrap().count(), 2);
    ok(&env.r(&["verify"]));

    assert_eq!(ok(&env.r(&["unpin", "3"])), "generation 3 unpinned\n");
    let out = ok(&env.r(&["gc", "--keep", "1"]));
    assert!(
        out.starts_with("removed 1 generation(s): 3; 2 store file(s)"),
        "{out}"
    );
    assert_eq!(kept(&env), vec![5]);
    assert_eq!(fs::read_dir(&store).unwrap().count(), 0);
    let err = one_line_failure(&env.r(&["pin", "3"]));
    assert!(err.contains("generation 3 does not exist"), "{err}");
}

/// Plan a mount of the current generation of `env`'s root and write its
/// index images, as the daemon does once the mount is ready; how many.
fn write_index_images(env: &Env) -> usize {
    let spec = state::plan::MountSpec::Root {
        root: env.root(),
        layers: state::Layer::ALL.to_vec(),
    };
    let request = state::plan::Request::new(&spec, state::plan::GenerationChoice::Current);
    let mut plan = state::plan::plan(&request, None).unwrap();
    plan.write_index_images();
    plan.index.written
}

#[test]
fn gc_says_how_many_index_images_it_removed() {
    let env = Env::new();
    env.init();
    ok(&env.add(&[], &[BASE])); // 2
    ok(&env.add(&["--layer", "user"], &[USER])); // 3
                                                 // The images a mount of generation 3 writes once it is ready.
    assert_eq!(write_index_images(&env), 2);
    ok(&env.r(&["remove", "hello_user"])); // 4
    let out = ok(&env.r(&["gc", "--keep", "1"]));
    assert!(
        out.starts_with("removed 3 generation(s): 1, 2, 3;")
            && out.ends_with("; 1 index image(s)\n"),
        "{out}"
    );
}

#[test]
fn status_says_what_the_index_cache_holds_and_writes_no_index_image() {
    let env = Env::new();
    env.init();
    ok(&env.add(&[], &[BASE]));
    ok(&env.add(&["--layer", "user"], &[USER]));
    let index_images = |env: &Env| {
        fs::read_dir(env.root().join("system/state/index"))
            .map(|d| {
                d.filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .path()
                        .extension()
                        .is_some_and(|x| x == "idx")
                })
                .count()
            })
            .unwrap_or(0)
    };
    let unions = |env: &Env| {
        fs::read_dir(env.root().join("system/state/index"))
            .map(|d| d.count())
            .unwrap_or(0)
            - index_images(env)
    };
    let text = ok(&env.r(&["status"]));
    assert!(
        text.contains(
            "index cache: 0 of 2 package(s) have an image (2 missing, 0 stale, 0 damaged); \
             union image: missing"
        ),
        "{text}"
    );
    assert_eq!(
        (index_images(&env), unions(&env)),
        (0, 0),
        "status wrote an image"
    );
    // The images a mount writes once it is ready.
    assert_eq!(write_index_images(&env), 2);
    assert_eq!(index_images(&env), 2);
    let v = env.json(&["status", "--json"]);
    assert_eq!(v["index_cache"]["hits"], 2, "{v}");
    assert_eq!(v["index_cache"]["missing"], 0, "{v}");
    // Written by the plan above (a mount's), not by status.
    assert_eq!(v["union_image"], "found", "{v}");
    let text = ok(&env.r(&["status"]));
    assert!(
        text.contains("index cache: 2 of 2 package(s) have an image (0 missing, 0 stale, 0 damaged); union image: found"),
        "{text}"
    );
}

#[test]
fn gc_spares_a_mounted_generation_and_refuses_keep_zero() {
    let env = Env::new();
    env.init();
    ok(&env.add(&[], &[BASE])); // 2
    ok(&env.add(&["--layer", "user"], &[USER])); // 3
    ok(&env.r(&["remove", "hello_user"])); // 4
                                           // A mount serving generation 3, as the daemon registers it.
    let root = state::Root::open(env.root()).unwrap();
    let reg = root.register_mount(3, Path::new("/mnt/prev")).unwrap();
    let out = ok(&env.r(&["gc", "--keep", "1"]));
    assert_eq!(
        out,
        format!(
            "removed 2 generation(s): 1, 2; 0 store file(s), 0 bytes freed; 0 index image(s)\n\
             kept generation 3: mounted at /mnt/prev (pid {})\n",
            std::process::id()
        )
    );
    ok(&env.r(&["rollback"]));
    drop(reg);
    let out = ok(&env.r(&["gc", "--keep", "1"]));
    assert!(out.starts_with("removed 2 generation(s): 3, 4;"), "{out}");
    assert!(!out.contains("kept generation"), "{out}");

    for bad in ["--keep=0", "--keep=-1"] {
        let out = env.r(&["gc", bad]);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert!(out.stdout.is_empty());
        let err = stderr(&out);
        assert!(err.contains("--keep"), "{err}");
    }
}

#[test]
fn a_package_active_in_one_layer_is_refused_in_another_unless_forced() {
    let env = Env::new();
    env.init();
    ok(&env.add(&[], &[BASE]));
    let err = one_line_failure(&env.add(&["--layer", "user"], &[BASE]));
    assert!(
        err.contains(&format!("user/{BASE}"))
            && err.contains(&format!("system/{BASE}"))
            && err.contains("\"hello_base\"")
            && err.contains("--force"),
        "{err}"
    );
    assert_eq!(listed(&env), vec![pair("system", "hello_base")]);
    let out = env.add(&["--layer", "user", "--force"], &[BASE]);
    ok(&out);
    assert!(
        stderr(&out).contains("active in two layers"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        listed(&env),
        vec![pair("system", "hello_base"), pair("user", "hello_base")]
    );
}

#[test]
fn verify_passes_then_finds_a_modified_package_file() {
    let env = Env::new();
    env.init();
    ok(&env.add(&[], &[BASE]));
    ok(&env.add(&["--layer", "user"], &[USER]));
    ok(&env.r(&["remove", "hello_user"]));
    let out = ok(&env.r(&["verify"]));
    assert!(out.contains("intact"), "{out}");
    assert_eq!(
        env.json(&["verify", "--json"]),
        serde_json::json!({"problems": []})
    );

    let file = env.root().join("system/packages").join(BASE);
    let mut bytes = fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&file, &bytes).unwrap();
    let bad = env.r(&["verify"]);
    let err = one_line_failure(&bad);
    assert!(err.contains("verify found 3 problem(s)"), "{err}");
    let text = String::from_utf8(bad.stdout.clone()).unwrap();
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.lines().all(|l| l.contains(&format!("system/{BASE}"))),
        "{text}"
    );

    let bad = env.r(&["verify", "--json"]);
    assert_eq!(bad.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&bad.stdout).unwrap();
    let problems = v["problems"].as_array().unwrap();
    let gens: Vec<u64> = problems
        .iter()
        .map(|p| p["generation"].as_u64().unwrap())
        .collect();
    assert_eq!(gens, vec![2, 3, 4]);
    assert!(problems.iter().all(|p| p["kind"] == "mismatch"
        && p["size"].as_u64() == Some(bytes.len() as u64)
        && p["package"]["file_name"] == BASE));
}

#[test]
fn the_root_comes_from_packagefs_root_or_the_error_says_how_to_give_it() {
    let env = Env::new();
    let root = env.root();
    let out = run(&["init".as_ref()], &[("PACKAGEFS_ROOT", &root)]);
    assert!(ok(&out).contains("generation 1"));
    assert!(root.join("system/state/active.list").is_file());
    // -R wins over the environment.
    let other = env.dir.path().join("other");
    let out = run(
        &["-R".as_ref(), other.as_os_str(), "init".as_ref()],
        &[("PACKAGEFS_ROOT", &root)],
    );
    ok(&out);
    assert!(other.join("system/state/active.list").is_file());
    let out = run(&["list".as_ref()], &[("PACKAGEFS_ROOT", &root)]);
    assert_eq!(ok(&out), "");
    let pkg = env.pkg(BASE);
    let out = run(
        &["add".as_ref(), pkg.as_os_str()],
        &[("PACKAGEFS_ROOT", &root)],
    );
    assert!(ok(&out).starts_with("generation 2"));
    assert_eq!(listed(&env), vec![pair("system", "hello_base")]);

    let err = one_line_failure(&run(&["list".as_ref()], &[]));
    assert_eq!(
        err,
        "pkgctl: no package root: give -R ROOT or set PACKAGEFS_ROOT"
    );
}

#[test]
fn errors_are_one_line_and_name_the_file() {
    let env = Env::new();
    let root = env.root();
    let err = one_line_failure(&env.r(&["list"]));
    assert!(
        err.starts_with(&format!("pkgctl: {}: not a package root", root.display())),
        "{err}"
    );
    env.init();
    let err = one_line_failure(&env.r(&["remove", "nope"]));
    assert_eq!(
        err,
        format!(
            "pkgctl: {}: \"nope\": no active package has that name or file name",
            root.display()
        )
    );
    let not_pkg = env.dir.path().join("junk.hpkg");
    fs::write(&not_pkg, b"not a package").unwrap();
    let err = one_line_failure(&env.r(&["add", not_pkg.to_str().unwrap()]));
    assert!(
        err.contains("junk.hpkg") && err.contains("not a valid package"),
        "{err}"
    );
    let err = one_line_failure(&env.r(&["rollback"]));
    assert!(err.contains("generation 1 has no parent"), "{err}");
}

#[test]
fn help_teaches_every_root_command() {
    let top = ok(&run(&["--help".as_ref()], &[]));
    assert!(top.contains("PACKAGEFS_ROOT"), "{top}");
    for cmd in [
        "init",
        "add",
        "remove",
        "list",
        "status",
        "owner",
        "generations",
        "rollback",
        "gc",
        "pin",
        "unpin",
        "verify",
    ] {
        assert!(
            top.lines().any(|l| l.trim_start().starts_with(cmd)),
            "{cmd} not in:\n{top}"
        );
        let long = ok(&run(&[cmd.as_ref(), "--help".as_ref()], &[]));
        assert!(
            long.contains("Example:"),
            "no example in {cmd} --help:\n{long}"
        );
        assert!(
            long.contains(&format!("pkgctl {cmd}")) || long.contains(&format!("ROOT {cmd}")),
            "{long}"
        );
    }
    for cmd in ["list", "status", "owner", "generations", "verify"] {
        let long = ok(&run(&[cmd.as_ref(), "--help".as_ref()], &[]));
        assert!(
            long.contains("--json") && long.contains("\"layer\""),
            "{cmd}:\n{long}"
        );
    }
}

#[test]
fn a_corrupt_active_list_is_reported_loudly() {
    let env = Env::new();
    env.init();
    ok(&env.add(&[], &[BASE]));
    let active = env.root().join("system/state/active.list");
    fs::write(&active, b"garbage\n").unwrap();
    let out = env.r(&["list"]);
    let text = ok(&out);
    assert!(text.contains("hello_base"), "{text}");
    let err = stderr(&out);
    assert!(
        err.starts_with("pkgctl: warning: WARNING: active.list is unusable")
            && err.contains("using generation 2"),
        "{err}"
    );
    let v = env.json(&["status", "--json"]);
    assert_eq!(v["fallback"], true);
    assert_eq!(v["generation"]["number"], 2);
}

#[test]
fn owner_names_the_user_package_over_the_system_one_in_both_activation_orders() {
    let user_first: [(&[&str], &str); 2] = [(&["--layer", "user", "--force"], USER), (&[], BASE)];
    let base_first: [(&[&str], &str); 2] = [(&[], BASE), (&["--layer", "user"], USER)];
    for order in [base_first, user_first] {
        let env = Env::new();
        env.init();
        for (extra, file) in order {
            ok(&env.add(extra, &[file]));
        }
        for path in [
            "/etc/hello/hello.conf",
            "etc/hello/hello.conf",
            "/etc/./x/../hello/hello.conf",
        ] {
            assert_eq!(
                ok(&env.r(&["owner", path])),
                format!(
                    "hello_user 1.0-1 (user) {USER}: file /etc/hello/hello.conf\n  \
                     shadows hello_base 1.0-1 (system, {BASE}): file\n"
                ),
                "{order:?} {path}"
            );
        }
        assert_eq!(
            env.json(&["owner", "/etc/hello/hello.conf", "--json"]),
            serde_json::json!({
                "path": "etc/hello/hello.conf",
                "kind": "file",
                "package": {"name": "hello_user", "version": "1.0-1", "layer": "user",
                            "file_name": USER, "label": "hello_user-1.0-1"},
                "shadows": [{"name": "hello_base", "version": "1.0-1", "layer": "system",
                             "file_name": BASE, "label": "hello_base-1.0-1", "kind": "file"}],
                "merged": [],
                "refused_shadows": [],
            }),
            "{order:?}"
        );
        // A file nothing shadows.
        assert_eq!(
            ok(&env.r(&["owner", "/bin/hello"])),
            format!("hello_base 1.0-1 (system) {BASE}: file /bin/hello\n")
        );
    }
}

#[test]
fn owner_of_a_merged_directory_names_every_package_that_has_it() {
    let env = Env::new();
    env.init();
    ok(&env.add(&[], &[BASE]));
    ok(&env.add(&[], &[EXTRAS]));
    assert_eq!(
        ok(&env.r(&["owner", "/share/doc/hello"])),
        format!(
            "hello_base 1.0-1 (system) {BASE}: directory /share/doc/hello (merged)\n  \
             merged with hello_extras 2.1-1 (system, {EXTRAS})\n"
        )
    );
    let v = env.json(&["owner", "share/doc/hello", "--json"]);
    assert_eq!(v["kind"], "dir");
    assert_eq!(v["package"]["name"], "hello_base");
    assert_eq!(v["shadows"], serde_json::json!([]));
    assert_eq!(v["merged"][0]["name"], "hello_extras", "{v:#}");
    assert_eq!(v["merged"].as_array().unwrap().len(), 1, "{v:#}");
    // The mount root belongs to no package.
    assert_eq!(
        ok(&env.r(&["owner", "/"])),
        "no package: directory / (the mount root)\n"
    );
    assert_eq!(env.json(&["owner", "/", "--json"])["package"], Value::Null);
}

#[test]
fn owner_of_a_path_no_package_provides_fails_and_names_a_blocked_entry() {
    let env = Env::new();
    env.init();
    ok(&env.add(&[], &[BASE]));
    let err = one_line_failure(&env.r(&["owner", "/etc/hello/nothing"]));
    assert_eq!(
        err,
        "pkgctl: /etc/hello/nothing: no active package provides it"
    );
    let err = one_line_failure(&env.r(&["owner", "--json", "sbin"]));
    assert!(err.contains("sbin: no active package"), "{err}");
    fs::write(
        env.root().join("system/state/blocked-entries"),
        "etc/hello\n",
    )
    .unwrap();
    let err = one_line_failure(&env.r(&["owner", "/etc/hello/hello.conf"]));
    assert!(
        err.starts_with("pkgctl: /etc/hello/hello.conf: no active package provides it (hidden by ")
            && err.ends_with("system/state/blocked-entries entry etc/hello)"),
        "{err}"
    );
}
