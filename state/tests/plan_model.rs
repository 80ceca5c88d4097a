//! The planner against a small reference model, on random packages, layers,
//! activation orders, requirements and blocked entries.
//!
//! The model states the rules path by path, in the plainest form: the
//! packages that can be mounted are a fixed point of "every requirement is
//! provided by a mountable package"; they are ordered by layer, then by
//! activation; at each path the highest package wins; a winning directory
//! merges with the directories directly below it down to the first
//! non-directory, which hides everything from there down (and a file hides
//! everything below it); a blocked path is left out with its subtree; a
//! merged directory shows the lowest merged package's metadata; a
//! shine-through name is a directory at the top level whatever the packages
//! have there (every package directory of that name merged into it, every
//! non-directory hidden, none of it blockable); a package of a layer whose
//! policy says `may-shadow no` is refused at a path where a lower layer has
//! a node, unless both are directories. The planner
//! (a breadth-first flat tree over real packages in a real root) must agree
//! on every node, every shadow and every refusal.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use hpkg_format::{create_from_tree, EntryKind, Timestamp, TreeBuilder, WriteOptions};
use proptest::prelude::*;
use state::plan::{self, GenerationChoice, MountSpec, Request};
use state::{Layer, Root};

/// One generated package.
#[derive(Debug, Clone)]
struct Pkg {
    layer: Layer,
    /// Path -> is a directory.
    entries: BTreeMap<String, bool>,
    /// Index of a package it requires; `None` and `Some(usize::MAX)` for
    /// none and for a package nobody provides.
    requires: Option<usize>,
}

fn name(i: usize) -> String {
    format!("p{i}")
}

/// Paths of at most three components over a three-letter alphabet.
fn path_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..=3)
        .prop_map(|parts| parts.join("/"))
}

fn pkg_strategy(count: usize) -> impl Strategy<Value = Pkg> {
    (
        prop::sample::select(Layer::ALL.to_vec()),
        prop::collection::vec((path_strategy(), any::<bool>()), 1..6),
        prop::option::of(prop_oneof![
            3 => 0..count,
            1 => Just(usize::MAX),
        ]),
    )
        .prop_map(|(layer, raw, requires)| {
            // Shallow paths first; a path below a file of the same package
            // is dropped; an ancestor named later is a directory already.
            let mut raw = raw;
            raw.sort_by_key(|(p, _)| p.matches('/').count());
            let mut entries: BTreeMap<String, bool> = BTreeMap::new();
            for (path, is_dir) in raw {
                let under_file = ancestors(&path).any(|a| entries.get(a) == Some(&false));
                if under_file || entries.contains_key(&path) {
                    continue;
                }
                for a in ancestors(&path) {
                    entries.entry(a.to_string()).or_insert(true);
                }
                entries.insert(path, is_dir);
            }
            Pkg {
                layer,
                entries,
                requires,
            }
        })
}

/// The proper ancestors of a `/`-separated path.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

/// A case: the packages in activation order, the blocked entries, the
/// shine-through names, and whether each layer may shadow lower ones.
type Case = (Vec<Pkg>, Vec<String>, Vec<String>, [bool; 3]);

fn case_strategy() -> impl Strategy<Value = Case> {
    (1usize..6).prop_flat_map(|n| {
        (
            prop::collection::vec(pkg_strategy(n), n),
            prop::collection::vec(path_strategy(), 0..3),
            prop::sample::subsequence(vec!["a".to_string(), "c".to_string()], 0..=2),
            prop_oneof![3 => Just([true; 3]), 1 => any::<[bool; 3]>()],
        )
    })
}

/// The provider the model names for a synthetic shine-through directory.
const SHINE: &str = "<shine-through>";

/// Write package `i` into `dir`.
fn write(dir: &Path, i: usize, p: &Pkg) -> std::path::PathBuf {
    let mut tree = TreeBuilder::new();
    let time = Timestamp::from_secs(1_700_000_000);
    for (path, &is_dir) in &p.entries {
        if is_dir {
            tree.add_dir(path.as_bytes(), 0o755, time).unwrap();
        } else {
            tree.add_file(path.as_bytes(), 0o644, time, name(i).into_bytes())
                .unwrap();
        }
    }
    let mut text = format!(
        "name {n}\nversion 1.0-1\narchitecture any\nsummary \"s\"\ndescription \"d\"\n\
         packager p\nvendor v\ncopyrights c\nlicenses MIT\nprovides {{ {n} = 1.0-1 }}\n",
        n = name(i)
    );
    match p.requires {
        Some(usize::MAX) => text.push_str("requires { nowhere }\n"),
        Some(j) => text.push_str(&format!("requires {{ {} }}\n", name(j))),
        None => {}
    }
    let info = hpkg_format::info_text::parse(&text).unwrap();
    let out = dir.join(format!("{}.hpkg", name(i)));
    create_from_tree(tree, &info, &out, &WriteOptions::default()).unwrap();
    out
}

/// What the model says a mount shows.
#[derive(Debug, Default, PartialEq, Eq)]
struct View {
    /// Path -> (providing package, is a directory).
    nodes: BTreeMap<String, (String, bool)>,
    /// (path, hidden package).
    shadows: BTreeSet<(String, String)>,
    /// (path, package refused by the shadowing policy).
    refused_shadows: BTreeSet<(String, String)>,
    /// Refused packages.
    refused: BTreeSet<String>,
}

fn model(pkgs: &[Pkg], blocked: &[String], shine: &[String], may_shadow: [bool; 3]) -> View {
    let layer_index = |l: Layer| Layer::ALL.iter().position(|&x| x == l).unwrap_or(0);
    let mut view = View::default();
    // Mountable: a fixed point.
    let mut ok = vec![true; pkgs.len()];
    loop {
        let mut changed = false;
        for (i, p) in pkgs.iter().enumerate() {
            let met = match p.requires {
                None => true,
                Some(j) => ok.get(j) == Some(&true),
            };
            if ok[i] && !met {
                ok[i] = false;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    for (i, _) in ok.iter().enumerate().filter(|(_, &m)| !m) {
        view.refused.insert(name(i));
    }
    // Priority: highest first (later layer, then later activation).
    let mut order: Vec<usize> = (0..pkgs.len()).filter(|&i| ok[i]).collect();
    order.sort_by_key(|&i| (pkgs[i].layer, i));
    order.reverse();
    let blocked: BTreeSet<&str> = blocked.iter().map(String::as_str).collect();
    // The paths in any package, parents before children.
    let mut paths: Vec<&String> = pkgs
        .iter()
        .flat_map(|p| p.entries.keys())
        .chain(shine)
        .collect();
    paths.sort_by_key(|p| (p.matches('/').count(), p.as_str()));
    paths.dedup();
    // Contributors of each visible directory, highest first.
    let mut merged: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    merged.insert(String::new(), order.clone());
    for path in paths {
        let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
        let Some(contributors) = merged.get(parent) else {
            continue; // the parent is not a visible directory
        };
        let is_dir = |i: usize| pkgs[i].entries.get(path) == Some(&true);
        let candidates: Vec<usize> = contributors
            .iter()
            .copied()
            .filter(|&i| pkgs[i].entries.contains_key(path))
            .collect();
        let refused_here = |m: usize| {
            !may_shadow[layer_index(pkgs[m].layer)]
                && candidates
                    .iter()
                    .any(|&q| pkgs[q].layer < pkgs[m].layer && !(is_dir(m) && is_dir(q)))
        };
        let stack: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&m| !refused_here(m))
            .collect();
        let refused_names: Vec<String> = candidates
            .iter()
            .copied()
            .filter(|&m| refused_here(m))
            .map(name)
            .collect();
        if shine.contains(path) {
            for r in &refused_names {
                view.refused_shadows.insert((path.clone(), r.clone()));
            }
            let dirs: Vec<usize> = stack.iter().copied().filter(|&i| is_dir(i)).collect();
            for &hidden in stack.iter().filter(|&&i| !is_dir(i)) {
                view.shadows.insert((path.clone(), name(hidden)));
            }
            let provider = dirs.last().map_or(SHINE.to_string(), |&i| name(i));
            view.nodes.insert(path.clone(), (provider, true));
            merged.insert(path.clone(), dirs);
            continue;
        }
        if blocked.contains(path.as_str()) {
            continue;
        }
        let Some(&winner) = stack.first() else {
            continue;
        };
        for r in refused_names {
            view.refused_shadows.insert((path.clone(), r));
        }
        if is_dir(winner) {
            let dirs: Vec<usize> = stack.iter().copied().take_while(|&i| is_dir(i)).collect();
            for &hidden in &stack[dirs.len()..] {
                view.shadows.insert((path.clone(), name(hidden)));
            }
            let lowest = *dirs.last().unwrap_or(&winner);
            view.nodes.insert(path.clone(), (name(lowest), true));
            merged.insert(path.clone(), dirs);
        } else {
            for &hidden in &stack[1..] {
                view.shadows.insert((path.clone(), name(hidden)));
            }
            view.nodes.insert(path.clone(), (name(winner), false));
        }
    }
    view
}

/// What the planner decides for the same packages, activated in order in a
/// real root.
fn planned(
    dir: &Path,
    pkgs: &[Pkg],
    blocked: &[String],
    shine: &[String],
    may_shadow: [bool; 3],
) -> View {
    let root_dir = dir.join("root");
    let root = Root::init(&root_dir).unwrap();
    for (i, p) in pkgs.iter().enumerate() {
        let file = write(dir, i, p);
        root.add(&[&file], p.layer, true, "model").unwrap();
    }
    std::fs::write(
        root_dir.join("system/state/blocked-entries"),
        blocked.join("\n"),
    )
    .unwrap();
    let policy: String = Layer::ALL
        .iter()
        .zip(may_shadow)
        .map(|(l, m)| format!("{l} may-shadow {}\n", if m { "yes" } else { "no" }))
        .collect();
    let policy_file = root.layout().policy_file();
    std::fs::create_dir_all(policy_file.parent().unwrap()).unwrap();
    std::fs::write(policy_file, policy).unwrap();
    let spec = MountSpec::from_sources(std::slice::from_ref(&root_dir), &[]).unwrap();
    let request = Request {
        spec: &spec,
        choice: GenerationChoice::Current,
        shine,
        index_cache: true,
        write_caches: true,
    };
    let plan = plan::plan(&request, None).unwrap();
    let mut view = View::default();
    for r in &plan.refused {
        let label = r.label.clone().unwrap_or_default();
        view.refused
            .insert(label.trim_end_matches("-1.0-1").to_string());
    }
    let tree = &plan.tree;
    for i in 1..tree.len() as u32 {
        let node = tree.at(i).unwrap();
        let provider = node
            .package()
            .map_or(SHINE.to_string(), |p| p.package().info().name.clone());
        let path = String::from_utf8(node.path()).unwrap();
        view.nodes
            .insert(path, (provider, node.kind() == EntryKind::Directory));
    }
    for s in tree.shadowed() {
        view.shadows.insert((
            String::from_utf8(s.path).unwrap(),
            s.hidden.package().info().name.clone(),
        ));
    }
    for s in tree.refused_shadows() {
        view.refused_shadows.insert((
            String::from_utf8(s.path).unwrap(),
            s.hidden.package().info().name.clone(),
        ));
    }
    view
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(48),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_planner_agrees_with_the_model((pkgs, blocked, shine, may_shadow) in case_strategy()) {
        let dir = tempfile::tempdir().unwrap();
        let got = planned(dir.path(), &pkgs, &blocked, &shine, may_shadow);
        let want = model(&pkgs, &blocked, &shine, may_shadow);
        prop_assert_eq!(got, want);
    }
}
