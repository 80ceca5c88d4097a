//! Dependency checking of a package set: every `requires` must be met by a
//! `provides` of some package of the set, and no `conflicts` may match another
//! package of the set.
//!
//! Every package implicitly provides its own name at its version
//! (`name = version`), as Haiku packages always list themselves. Matching uses
//! [`Requirement::is_met_by`] (Haiku's rules, including `compat >=`).

use std::collections::HashMap;
use std::fmt;

use hpkg_format::{PackageInfo, Provides, Requirement};
use serde::Serialize;

use crate::display;

/// One dependency problem of a package set. Indexes refer to the slice given
/// to [`check`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Problem {
    /// A requirement no package of the set provides.
    Unmet {
        /// Index of the requiring package.
        package: usize,
        /// `name-version` of the requiring package.
        name: String,
        /// The requirement as text (`lib:libfoo >= 1.2`; versions as
        /// [`crate::display::version`] shows them).
        requirement: String,
    },
    /// A `conflicts` entry matched by another package of the set.
    Conflict {
        /// Index of the package declaring the conflict.
        package: usize,
        /// `name-version` of that package.
        name: String,
        /// The conflicts expression as text.
        requirement: String,
        /// Index of the package it matches.
        other: usize,
        /// `name-version` of that package.
        other_name: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Unmet {
                name, requirement, ..
            } => {
                write!(
                    f,
                    "{name} requires {requirement}, which no package provides"
                )
            }
            Problem::Conflict {
                name,
                requirement,
                other_name,
                ..
            } => {
                write!(
                    f,
                    "{name} conflicts with {other_name} (conflicts: {requirement})"
                )
            }
        }
    }
}

/// `name-version` of a package, as problems name it: for people, so a
/// package imported from Debian shows its Debian version (see
/// [`crate::display::label`]).
pub fn label(info: &PackageInfo) -> String {
    display::label(info)
}

/// Every provide of `info`, its implicit `name = version` included.
pub fn provides_of(info: &PackageInfo) -> Vec<Provides> {
    let mut all = info.provides.clone();
    all.push(Provides {
        name: info.name.clone(),
        version: Some(info.version.clone()),
        compatible: None,
    });
    all
}

/// Provides of a set, by resolvable name: `(package index, provide)`.
struct Index {
    by_name: HashMap<String, Vec<(usize, Provides)>>,
}

impl Index {
    fn new<'a>(set: impl Iterator<Item = (usize, &'a PackageInfo)>) -> Index {
        let mut by_name: HashMap<String, Vec<(usize, Provides)>> = HashMap::new();
        for (i, info) in set {
            for p in provides_of(info) {
                by_name.entry(p.name.clone()).or_default().push((i, p));
            }
        }
        Index { by_name }
    }

    /// Packages (other than `except`) with a provide meeting `req`.
    fn providers(
        &self,
        req: &Requirement,
        except: Option<usize>,
    ) -> impl Iterator<Item = usize> + '_ {
        let except = except.unwrap_or(usize::MAX);
        let req = req.clone();
        self.by_name
            .get(&req.name)
            .into_iter()
            .flatten()
            .filter(move |(i, p)| *i != except && req.is_met_by(p))
            .map(|(i, _)| *i)
    }
}

/// Every unmet requirement and every conflict of the set, in package order.
pub fn check(set: &[PackageInfo]) -> Vec<Problem> {
    let refs: Vec<&PackageInfo> = set.iter().collect();
    check_refs(&refs)
}

/// [`check`] over borrowed infos.
pub fn check_refs(set: &[&PackageInfo]) -> Vec<Problem> {
    let index = Index::new(set.iter().copied().enumerate());
    let mut problems = Vec::new();
    for (i, info) in set.iter().enumerate() {
        for req in &info.requires {
            if index.providers(req, None).next().is_none() {
                problems.push(Problem::Unmet {
                    package: i,
                    name: label(info),
                    requirement: display::requirement(req),
                });
            }
        }
        for c in &info.conflicts {
            let mut others: Vec<usize> = index.providers(c, Some(i)).collect();
            others.dedup();
            for other in others {
                problems.push(Problem::Conflict {
                    package: i,
                    name: label(info),
                    requirement: display::requirement(c),
                    other,
                    other_name: set.get(other).map(|o| label(o)).unwrap_or_default(),
                });
            }
        }
    }
    problems
}

/// Which packages of the set can be mounted: those whose requirements are met
/// by packages that can themselves be mounted (removing a package with unmet
/// requirements can leave others unmet, so this repeats until nothing changes).
/// Conflicts do not prevent mounting: the union's layer and activation order
/// decide between conflicting files.
pub fn mountable(set: &[&PackageInfo]) -> Vec<bool> {
    let mut ok = vec![true; set.len()];
    loop {
        let index = Index::new(
            set.iter()
                .copied()
                .enumerate()
                .filter(|(i, _)| ok.get(*i) == Some(&true)),
        );
        let mut changed = false;
        for (i, info) in set.iter().enumerate() {
            if ok.get(i) == Some(&true)
                && info
                    .requires
                    .iter()
                    .any(|r| index.providers(r, None).next().is_none())
            {
                if let Some(slot) = ok.get_mut(i) {
                    *slot = false;
                }
                changed = true;
            }
        }
        if !changed {
            return ok;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hpkg_format::{Operator, Version};

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    fn req(name: &str, op: Option<(Operator, &str)>) -> Requirement {
        Requirement {
            name: name.into(),
            operator: op.map(|(o, _)| o),
            version: op.map(|(_, s)| v(s)),
        }
    }

    fn pkg(name: &str, version: &str) -> PackageInfo {
        PackageInfo {
            name: name.into(),
            version: v(version),
            ..PackageInfo::default()
        }
    }

    fn provide(name: &str, version: Option<&str>, compat: Option<&str>) -> Provides {
        Provides {
            name: name.into(),
            version: version.map(v),
            compatible: compat.map(v),
        }
    }

    #[test]
    fn requirements_met_and_unmet() {
        let mut app = pkg("app", "1.0");
        app.requires = vec![
            req("lib:libfoo", Some((Operator::GreaterEqual, "1.2"))),
            req("cmd:sh", None),
            req("base", Some((Operator::Equal, "2.0"))),
        ];
        let mut foo = pkg("foo", "1.3");
        foo.provides = vec![provide("lib:libfoo", Some("1.3"), None)];
        let mut shell = pkg("bash", "5");
        shell.provides = vec![provide("cmd:sh", None, None)];
        let base = pkg("base", "2.0");

        assert_eq!(
            check(&[app.clone(), foo.clone(), shell.clone(), base.clone()]),
            vec![]
        );

        let problems = check(&[app.clone(), shell.clone()]);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(
            problems[0],
            Problem::Unmet {
                package: 0,
                name: "app-1.0".into(),
                requirement: "lib:libfoo >= 1.2".into()
            }
        );
        assert_eq!(
            problems[1].to_string(),
            "app-1.0 requires base == 2.0, which no package provides"
        );

        // Too old a provider does not count.
        let mut old = pkg("foo", "1.1");
        old.provides = vec![provide("lib:libfoo", Some("1.1"), None)];
        let p = check(&[app.clone(), old, shell.clone(), base.clone()]);
        assert!(
            matches!(&p[..], [Problem::Unmet { requirement, .. }] if requirement == "lib:libfoo >= 1.2")
        );

        // A versioned requirement needs a versioned provide.
        let mut unversioned = pkg("foo", "9");
        unversioned.provides = vec![provide("lib:libfoo", None, None)];
        assert_eq!(check(&[app, unversioned, shell, base]).len(), 1);
    }

    #[test]
    fn implicit_self_provide_and_compat() {
        let mut a = pkg("a", "1");
        a.requires = vec![req("b", Some((Operator::Less, "3")))];
        assert_eq!(check(&[a.clone(), pkg("b", "2.5")]), vec![]);
        assert_eq!(check(&[a.clone(), pkg("b", "3")]).len(), 1);

        // compat >= 2: the provide 3 stands for requests >= 2, not for >= 1.
        let mut lib = pkg("lib", "3");
        lib.provides = vec![provide("lib:x", Some("3"), Some("2"))];
        let mut wants1 = pkg("w1", "1");
        wants1.requires = vec![req("lib:x", Some((Operator::GreaterEqual, "1")))];
        let mut wants2 = pkg("w2", "1");
        wants2.requires = vec![req("lib:x", Some((Operator::GreaterEqual, "2")))];
        let p = check(&[lib, wants1, wants2]);
        assert!(
            matches!(&p[..], [Problem::Unmet { package: 1, .. }]),
            "{p:?}"
        );
    }

    #[test]
    fn conflicts() {
        let mut a = pkg("a", "1");
        a.conflicts = vec![req("b", Some((Operator::Less, "2")))];
        assert_eq!(check(&[a.clone(), pkg("b", "2")]), vec![]);
        let p = check(&[a.clone(), pkg("c", "1"), pkg("b", "1.5")]);
        assert_eq!(
            p,
            vec![Problem::Conflict {
                package: 0,
                name: "a-1".into(),
                requirement: "b < 2".into(),
                other: 2,
                other_name: "b-1.5".into()
            }]
        );
        assert_eq!(
            p[0].to_string(),
            "a-1 conflicts with b-1.5 (conflicts: b < 2)"
        );
        // A package never conflicts with itself.
        let mut selfish = pkg("s", "1");
        selfish.conflicts = vec![req("s", None)];
        assert_eq!(check(&[selfish]), vec![]);
    }

    #[test]
    fn mountable_propagates() {
        let mut a = pkg("a", "1");
        a.requires = vec![req("b", None)];
        let mut b = pkg("b", "1");
        b.requires = vec![req("c", None)];
        let d = pkg("d", "1");
        assert_eq!(mountable(&[&a, &b, &d]), vec![false, false, true]);
        let c = pkg("c", "1");
        assert_eq!(mountable(&[&a, &b, &c, &d]), vec![true, true, true, true]);
    }
}
