//! Dependency solving with `resolvo` (the CDCL SAT solver of pixi/rattler):
//! the installed packages and the packages of every accepted repository
//! index are candidates; a request is solved together with the installed
//! set and gives the packages to add and to remove.
//!
//! How Haiku's resolvables map onto resolvo, whose solvables each have one
//! name:
//! * a requirement (`lib:libfoo >= 1`) becomes the union, over package
//!   names, of the candidates whose `provides` meet it (one version set per
//!   package name); none at all is a version set on the resolvable's own
//!   name, which has no candidates, so the solver reports it missing;
//! * a `conflicts` entry constrains every package name with a matching
//!   candidate to its candidates that do not match;
//! * every installed package stays (a requirement on its name, any
//!   version); it keeps its installed version unless the request updates
//!   it or a requirement needs another one; a requirement of an installed
//!   package that nothing at all meets is left out (the root already has
//!   that problem; it must not block unrelated changes);
//! * candidates are tried installed first (unless updated), then by
//!   repository priority, then by version, highest first.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use hpkg_format::{PackageInfo, Requirement as Req};
use resolvo::utils::Pool;
use resolvo::{
    ArenaId, Candidates, Condition, ConditionId, ConditionalRequirement, Dependencies,
    DependencyProvider, Interner, KnownDependencies, NameId, Problem, Requirement, SolvableId,
    Solver, SolverCache, StringId, UnsolvableOrCancelled, VersionSetId, VersionSetUnionId,
};
use state::ActivePackage;

/// Where a candidate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Active in the root.
    Installed(ActivePackage),
    /// Listed by a repository's accepted index.
    Repo {
        /// The repository's name.
        repo: String,
        /// Its priority.
        priority: i32,
    },
}

/// A package the solver may choose.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Its metadata (from the package, or from the index).
    pub info: Arc<PackageInfo>,
    /// Where it comes from.
    pub origin: Origin,
}

impl Candidate {
    /// `name-version`.
    pub fn label(&self) -> String {
        format!("{}-{}", self.info.name, self.info.version)
    }

    fn is_installed(&self) -> bool {
        matches!(self.origin, Origin::Installed(_))
    }

    fn priority(&self) -> i32 {
        match self.origin {
            Origin::Installed(_) => i32::MIN,
            Origin::Repo { priority, .. } => priority,
        }
    }
}

/// `1.3-1 (installed, system)` or `1.3-1 (from main)`: resolvo prints the
/// name before it.
impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::Installed(p) => write!(f, "{} (installed, {})", self.info.version, p.layer),
            Origin::Repo { repo, .. } => write!(f, "{} (from {repo})", self.info.version),
        }
    }
}

/// A set of candidates of one package name, with what selected them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Members {
    /// What it stands for, for messages (`lib:libfoo >= 1`).
    label: String,
    /// Candidate indexes, sorted.
    members: Vec<usize>,
}

impl fmt::Display for Members {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

impl resolvo::utils::VersionSet for Members {
    type V = usize;
}

/// What the user asks for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Requirements to satisfy (`install`).
    pub install: Vec<Req>,
    /// Package names whose newest candidate is preferred (`update`); with
    /// `update_all`, every package.
    pub update: HashSet<String>,
    /// Prefer the newest candidate of every package (`update` without
    /// names, `full-sync`).
    pub update_all: bool,
    /// Updated packages may go to an older version when that is what the
    /// repositories offer (`full-sync`); `update` never downgrades.
    pub allow_downgrade: bool,
}

/// The changes a solution makes to the installed set.
#[derive(Debug, Clone, Default)]
pub struct Transaction {
    /// Candidates to add (all from repositories).
    pub add: Vec<Candidate>,
    /// Installed packages to remove (replaced by another version).
    pub remove: Vec<Candidate>,
}

impl Transaction {
    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }
}

struct Provider {
    pool: Pool<Members, String>,
    cands: Vec<Candidate>,
    solvables: Vec<SolvableId>,
    by_name: BTreeMap<String, Vec<usize>>,
    request: Request,
}

impl Provider {
    fn new(cands: Vec<Candidate>, request: Request) -> Provider {
        let pool = Pool::new();
        let mut by_name: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut solvables = Vec::with_capacity(cands.len());
        for (i, c) in cands.iter().enumerate() {
            let name = pool.intern_package_name(c.info.name.clone());
            solvables.push(pool.intern_solvable(name, i));
            by_name.entry(c.info.name.clone()).or_default().push(i);
        }
        Provider {
            pool,
            cands,
            solvables,
            by_name,
            request,
        }
    }

    fn version_set(&self, name: &str, label: String, members: Vec<usize>) -> VersionSetId {
        let name = self.pool.intern_package_name(name.to_string());
        self.pool
            .intern_version_set(name, Members { label, members })
    }

    /// The requirement that `req` be met by some candidate.
    fn requirement(&self, req: &Req) -> Requirement {
        let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, c) in self.cands.iter().enumerate() {
            if c.info.satisfies(req) {
                groups.entry(c.info.name.as_str()).or_default().push(i);
            }
        }
        // resolvo prints a version set after its name: say only what the
        // name does not.
        let own = match (&req.operator, &req.version) {
            (Some(op), Some(v)) => format!("{op} {v}"),
            _ => "(any version)".to_string(),
        };
        let label = req.to_string();
        let mut sets = groups.into_iter().map(|(name, members)| {
            let l = if name == req.name {
                own.clone()
            } else {
                format!("providing {label}")
            };
            self.version_set(name, l, members)
        });
        match sets.next() {
            None => Requirement::Single(self.version_set(&req.name, own, Vec::new())),
            Some(first) => {
                let rest: Vec<VersionSetId> = sets.collect();
                if rest.is_empty() {
                    Requirement::Single(first)
                } else {
                    Requirement::Union(self.pool.intern_version_set_union(first, rest.into_iter()))
                }
            }
        }
    }

    /// Constraints that keep every candidate matching `conflict` out
    /// (`me` excluded: a package never conflicts with itself).
    fn conflict_constraints(&self, conflict: &Req, me: usize) -> Vec<VersionSetId> {
        let mut out = Vec::new();
        for (name, members) in &self.by_name {
            let hit = members
                .iter()
                .any(|&i| i != me && self.cands[i].info.satisfies(conflict));
            if !hit {
                continue;
            }
            let allowed: Vec<usize> = members
                .iter()
                .copied()
                .filter(|&i| i == me || !self.cands[i].info.satisfies(conflict))
                .collect();
            out.push(self.version_set(name, format!("not conflicting with {conflict}"), allowed));
        }
        out
    }

    fn keeps_installed(&self, name: &str) -> bool {
        !self.request.update_all && !self.request.update.contains(name)
    }
}

impl Interner for Provider {
    fn display_solvable(&self, solvable: SolvableId) -> impl fmt::Display + '_ {
        let i = self.pool.resolve_solvable(solvable).record;
        self.cands[i].to_string()
    }

    fn display_name(&self, name: NameId) -> impl fmt::Display + '_ {
        self.pool.resolve_package_name(name).clone()
    }

    fn display_version_set(&self, version_set: VersionSetId) -> impl fmt::Display + '_ {
        self.pool.resolve_version_set(version_set).to_string()
    }

    fn display_string(&self, string_id: StringId) -> impl fmt::Display + '_ {
        self.pool.resolve_string(string_id).to_owned()
    }

    fn version_set_name(&self, version_set: VersionSetId) -> NameId {
        self.pool.resolve_version_set_package_name(version_set)
    }

    fn solvable_name(&self, solvable: SolvableId) -> NameId {
        self.pool.resolve_solvable(solvable).name
    }

    fn version_sets_in_union(
        &self,
        version_set_union: VersionSetUnionId,
    ) -> impl Iterator<Item = VersionSetId> {
        self.pool.resolve_version_set_union(version_set_union)
    }

    fn resolve_condition(&self, _condition: ConditionId) -> Condition {
        // No requirement made here carries a condition, so the solver never
        // asks; answer with a set that holds nothing.
        Condition::Requirement(VersionSetId::from_usize(0))
    }
}

impl DependencyProvider for Provider {
    async fn filter_candidates(
        &self,
        candidates: &[SolvableId],
        version_set: VersionSetId,
        inverse: bool,
    ) -> Vec<SolvableId> {
        let set = self.pool.resolve_version_set(version_set);
        candidates
            .iter()
            .copied()
            .filter(|s| {
                let i = self.pool.resolve_solvable(*s).record;
                set.members.binary_search(&i).is_ok() != inverse
            })
            .collect()
    }

    async fn get_candidates(&self, name: NameId) -> Option<Candidates> {
        let name = self.pool.resolve_package_name(name);
        let members = self.by_name.get(name)?;
        let keep = self.keeps_installed(name);
        Some(Candidates {
            candidates: members.iter().map(|&i| self.solvables[i]).collect(),
            favored: members
                .iter()
                .find(|&&i| keep && self.cands[i].is_installed())
                .map(|&i| self.solvables[i]),
            ..Candidates::default()
        })
    }

    async fn sort_candidates(&self, _solver: &SolverCache<Self>, solvables: &mut [SolvableId]) {
        solvables.sort_by(|a, b| {
            let a = &self.cands[self.pool.resolve_solvable(*a).record];
            let b = &self.cands[self.pool.resolve_solvable(*b).record];
            let keep = self.keeps_installed(&a.info.name);
            let installed = |c: &Candidate| keep && c.is_installed();
            installed(b)
                .cmp(&installed(a))
                .then(b.priority().cmp(&a.priority()))
                .then(b.info.version.compare(&a.info.version))
                .then(b.is_installed().cmp(&a.is_installed()))
        });
    }

    async fn get_dependencies(&self, solvable: SolvableId) -> Dependencies {
        let i = self.pool.resolve_solvable(solvable).record;
        let cand = &self.cands[i];
        let info = &cand.info;
        // A requirement an installed package already cannot meet (nothing
        // anywhere provides it) is a problem the root already has: it does
        // not block other changes (`pkgctl status` reports it).
        let requirements = info
            .requires
            .iter()
            .filter(|r| !cand.is_installed() || self.cands.iter().any(|c| c.info.satisfies(r)))
            .map(|r| ConditionalRequirement::from(self.requirement(r)))
            .collect();
        let constrains = info
            .conflicts
            .iter()
            .flat_map(|c| self.conflict_constraints(c, i))
            .collect();
        Dependencies::Known(KnownDependencies {
            requirements,
            constrains,
        })
    }
}

/// Why a request cannot be satisfied: the solver's explanation.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot satisfy the request:\n{0}")]
pub struct Unsatisfiable(pub String);

/// Solve `request` with `installed` (kept unless replaced) and `available`
/// candidates (from repositories). A repository candidate with the same
/// name and version as an installed one is left out: the installed one
/// stands for it.
pub fn solve(
    installed: Vec<Candidate>,
    available: Vec<Candidate>,
    request: Request,
) -> Result<Transaction, Unsatisfiable> {
    let have: HashSet<(String, String)> = installed
        .iter()
        .map(|c| (c.info.name.clone(), c.info.version.to_string()))
        .collect();
    // One installed candidate per name: the solver allows one of each name,
    // and a second copy (another layer) is left alone.
    let mut seen = HashSet::new();
    let mut cands: Vec<Candidate> = installed
        .into_iter()
        .rev()
        .filter(|c| seen.insert(c.info.name.clone()))
        .collect();
    let kept_names: Vec<String> = cands.iter().map(|c| c.info.name.clone()).collect();
    let installed_version: HashMap<String, hpkg_format::Version> = cands
        .iter()
        .map(|c| (c.info.name.clone(), c.info.version.clone()))
        .collect();
    let updated = |name: &str| request.update_all || request.update.contains(name);
    cands.extend(available.into_iter().filter(|c| {
        if have.contains(&(c.info.name.clone(), c.info.version.to_string())) {
            return false;
        }
        // `update` offers nothing older than what is installed.
        match installed_version.get(&c.info.name) {
            Some(v) if updated(&c.info.name) && !request.allow_downgrade => {
                c.info.version.compare(v) == std::cmp::Ordering::Greater
            }
            _ => true,
        }
    }));
    let provider = Provider::new(cands, request.clone());
    let mut requirements: Vec<ConditionalRequirement> = request
        .install
        .iter()
        .map(|r| provider.requirement(r).into())
        .collect();
    for name in &kept_names {
        let members = provider.by_name.get(name).cloned().unwrap_or_default();
        requirements.push(
            provider
                .version_set(name, "(installed)".into(), members)
                .into(),
        );
    }
    let mut solver = Solver::new(provider);
    let chosen = match solver.solve(Problem::new().requirements(requirements)) {
        Ok(s) => s,
        Err(UnsolvableOrCancelled::Unsolvable(conflict)) => {
            return Err(Unsatisfiable(
                conflict.display_user_friendly(&solver).to_string(),
            ))
        }
        Err(UnsolvableOrCancelled::Cancelled(_)) => {
            return Err(Unsatisfiable("the solver was cancelled".into()))
        }
    };
    let provider = solver.provider();
    let chosen: HashSet<usize> = chosen
        .into_iter()
        .map(|s| provider.pool.resolve_solvable(s).record)
        .collect();
    let mut tx = Transaction::default();
    for (i, c) in provider.cands.iter().enumerate() {
        match (c.is_installed(), chosen.contains(&i)) {
            (true, false) => tx.remove.push(c.clone()),
            (false, true) => tx.add.push(c.clone()),
            _ => {}
        }
    }
    Ok(tx)
}

/// Installed packages that still need one of `leaving` once it is gone:
/// `(needing package, requirement, leaving package)` for every requirement
/// only a leaving package meets.
pub fn still_needed<'a>(
    remaining: &'a [Candidate],
    leaving: &'a [Candidate],
) -> Vec<(&'a Candidate, String, &'a Candidate)> {
    let mut out = Vec::new();
    for r in remaining {
        for req in &r.info.requires {
            if remaining.iter().any(|o| o.info.satisfies(req)) {
                continue;
            }
            if let Some(l) = leaving.iter().find(|l| l.info.satisfies(req)) {
                out.push((r, req.to_string(), l));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hpkg_format::{Operator, Provides, Version};

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    fn req(name: &str, op: Option<(Operator, &str)>) -> Req {
        Req {
            name: name.into(),
            operator: op.map(|(o, _)| o),
            version: op.map(|(_, x)| v(x)),
        }
    }

    fn pkg(
        name: &str,
        version: &str,
        provides: &[&str],
        requires: Vec<Req>,
        priority: i32,
    ) -> Candidate {
        let mut p = vec![Provides {
            name: name.into(),
            version: Some(v(version)),
            compatible: None,
        }];
        p.extend(provides.iter().map(|n| Provides {
            name: (*n).into(),
            version: Some(v(version)),
            compatible: None,
        }));
        Candidate {
            info: Arc::new(PackageInfo {
                name: name.into(),
                version: v(version),
                provides: p,
                requires,
                ..PackageInfo::default()
            }),
            origin: Origin::Repo {
                repo: format!("r{priority}"),
                priority,
            },
        }
    }

    fn labels(cs: &[Candidate]) -> Vec<String> {
        let mut l: Vec<String> = cs.iter().map(Candidate::label).collect();
        l.sort();
        l
    }

    fn install(names: &[Req]) -> Request {
        Request {
            install: names.to_vec(),
            ..Request::default()
        }
    }

    #[test]
    fn a_chain_through_a_provide_is_installed_with_the_newest_versions() {
        let repo = vec![
            pkg(
                "app",
                "1.0",
                &[],
                vec![req("mid", Some((Operator::GreaterEqual, "2")))],
                0,
            ),
            pkg("mid", "1.0", &[], vec![], 0),
            pkg("mid", "2.0", &[], vec![req("lib:libz", None)], 0),
            pkg("zlib", "1.3", &["lib:libz"], vec![], 0),
        ];
        let tx = solve(vec![], repo, install(&[req("app", None)])).unwrap();
        assert_eq!(labels(&tx.add), ["app-1.0", "mid-2.0", "zlib-1.3"]);
        assert!(tx.remove.is_empty());
    }

    #[test]
    fn every_operator_selects_what_it_says() {
        let repo: Vec<Candidate> = ["1.0", "2.0", "3.0"]
            .iter()
            .map(|x| pkg("p", x, &[], vec![], 0))
            .collect();
        for (op, want) in [
            (Operator::Less, "p-1.0"),
            (Operator::LessEqual, "p-2.0"),
            (Operator::Equal, "p-2.0"),
            (Operator::NotEqual, "p-3.0"),
            (Operator::GreaterEqual, "p-3.0"),
            (Operator::Greater, "p-3.0"),
        ] {
            let tx = solve(
                vec![],
                repo.clone(),
                install(&[req("p", Some((op, "2.0")))]),
            )
            .unwrap();
            assert_eq!(labels(&tx.add), [want], "{op:?}");
        }
    }

    #[test]
    fn installed_versions_stay_unless_updated_and_priority_wins() {
        let mut old = pkg("p", "1.0", &[], vec![], 0);
        old.origin = Origin::Installed(ActivePackage {
            layer: state::Layer::System,
            file_name: "p-1.0-any.hpkg".into(),
            size: 1,
            hash: state::Digest::of_bytes(b"p"),
        });
        let repo = vec![
            pkg("p", "2.0", &[], vec![], 0),
            pkg("p", "1.5", &[], vec![], 5),
        ];
        let tx = solve(vec![old.clone()], repo.clone(), Request::default()).unwrap();
        assert!(tx.is_empty());
        let update = Request {
            update_all: true,
            ..Request::default()
        };
        let tx = solve(vec![old.clone()], repo, update.clone()).unwrap();
        assert_eq!(
            labels(&tx.add),
            ["p-1.5"],
            "the higher-priority repository wins"
        );
        assert_eq!(labels(&tx.remove), ["p-1.0"]);

        // Only an older version on offer: update keeps, full-sync goes back.
        let older = vec![pkg("p", "0.9", &[], vec![], 0)];
        assert!(solve(vec![old.clone()], older.clone(), update.clone())
            .unwrap()
            .is_empty());
        let sync = Request {
            allow_downgrade: true,
            ..update
        };
        let tx = solve(vec![old], older, sync).unwrap();
        assert_eq!(labels(&tx.add), ["p-0.9"]);
    }

    /// An installed package whose requirement nothing meets does not stop
    /// an unrelated install.
    #[test]
    fn an_already_broken_package_does_not_block_others() {
        let mut broken = pkg("broken", "1.0", &[], vec![req("lib:gone", None)], 0);
        broken.origin = Origin::Installed(ActivePackage {
            layer: state::Layer::System,
            file_name: "broken-1.0-any.hpkg".into(),
            size: 1,
            hash: state::Digest::of_bytes(b"b"),
        });
        let tx = solve(
            vec![broken],
            vec![pkg("other", "1.0", &[], vec![], 0)],
            install(&[req("other", None)]),
        )
        .unwrap();
        assert_eq!(labels(&tx.add), ["other-1.0"]);
        assert!(tx.remove.is_empty());
    }

    #[test]
    fn conflicts_and_missing_requirements_are_explained() {
        let mut a = pkg("a", "1.0", &[], vec![req("b", None)], 0);
        Arc::make_mut(&mut a.info).conflicts = vec![req("c", None)];
        let repo = vec![
            a,
            pkg("b", "1.0", &[], vec![req("c", None)], 0),
            pkg("c", "1.0", &[], vec![], 0),
        ];
        let e = solve(vec![], repo, install(&[req("a", None)])).unwrap_err();
        assert!(e.0.contains("c"), "{e}");
        let e = solve(
            vec![],
            vec![],
            install(&[req("lib:libnothing", Some((Operator::GreaterEqual, "1")))]),
        )
        .unwrap_err();
        assert!(e.0.contains("lib:libnothing >= 1"), "{e}");
        assert!(!e.0.contains("lib:libnothing lib:libnothing"), "{e}");
    }
}
