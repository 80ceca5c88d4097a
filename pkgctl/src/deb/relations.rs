//! Debian relation fields (`Depends`, `Provides`, `Conflicts` …):
//! `name[:arch] [(op version)] [[arch list]] [<profiles>]`, alternatives
//! separated by `|`, groups by `,`.

use hpkg_format::Operator;

use super::version::DebVersion;

/// One alternative of a relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// The Debian package name (architecture qualifier removed).
    pub name: String,
    /// The version constraint, if any.
    pub constraint: Option<(Operator, DebVersion)>,
}

/// Parse a relation field into groups of alternatives. `arch` is the
/// Debian architecture of the package: an alternative with an architecture
/// list (`[amd64 !i386]`) that excludes it is dropped (a group left empty
/// is dropped too). Build profiles (`<!nocheck>`) do not apply to installed
/// packages and are ignored.
pub fn parse(field: &str, arch: &str) -> Result<Vec<Vec<Relation>>, String> {
    let mut groups = Vec::new();
    for group in field.split(',') {
        if group.trim().is_empty() {
            continue;
        }
        let mut alts = Vec::new();
        for alt in group.split('|') {
            if let Some(rel) = parse_one(alt.trim(), arch)? {
                alts.push(rel);
            }
        }
        if !alts.is_empty() {
            groups.push(alts);
        }
    }
    Ok(groups)
}

/// Debian's operators: `<<`, `<=`, `=`, `>=`, `>>`, and the obsolete `<`
/// (meaning `<=`) and `>` (meaning `>=`).
fn operator(text: &str) -> Option<Operator> {
    Some(match text {
        "<<" => Operator::Less,
        "<=" | "<" => Operator::LessEqual,
        "=" => Operator::Equal,
        ">=" | ">" => Operator::GreaterEqual,
        ">>" => Operator::Greater,
        _ => return None,
    })
}

fn parse_one(text: &str, arch: &str) -> Result<Option<Relation>, String> {
    let bad = |why: &str| format!("{why} in relation {text:?}");
    let end = text
        .find(|c: char| c.is_whitespace() || "([<".contains(c))
        .unwrap_or(text.len());
    let (name, mut rest) = text.split_at(end);
    let name = name.split(':').next().unwrap_or_default();
    if name.is_empty() {
        return Err(bad("no package name"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
    {
        return Err(bad("invalid package name"));
    }
    let mut constraint = None;
    let mut keep = true;
    loop {
        rest = rest.trim_start();
        let Some(first) = rest.chars().next() else {
            break;
        };
        let close = match first {
            '(' => ')',
            '[' => ']',
            '<' => '>',
            _ => return Err(bad("unexpected text")),
        };
        let Some(end) = rest.find(close) else {
            return Err(bad("unclosed bracket"));
        };
        let inner = rest.get(1..end).unwrap_or_default().trim();
        rest = rest.get(end + 1..).unwrap_or_default();
        match first {
            '(' => {
                if constraint.is_some() {
                    return Err(bad("two version constraints"));
                }
                let split = inner
                    .find(|c: char| !"<=>".contains(c))
                    .unwrap_or(inner.len());
                let (op, version) = inner.split_at(split);
                let op = operator(op.trim()).ok_or_else(|| bad("unknown operator"))?;
                let version = DebVersion::parse(version).map_err(|e| bad(&e))?;
                constraint = Some((op, version));
            }
            '[' => {
                let archs: Vec<&str> = inner.split_whitespace().collect();
                let negated = archs.iter().all(|a| a.starts_with('!'));
                keep &= if negated {
                    !archs.iter().any(|a| a.strip_prefix('!') == Some(arch))
                } else {
                    archs.iter().any(|a| *a == arch || *a == "any")
                };
            }
            _ => {}
        }
    }
    Ok(keep.then(|| Relation {
        name: name.to_string(),
        constraint,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_groups_alternatives_and_qualifiers() {
        let g = parse(
            "libc6 (>= 2.36), a | b:any (<< 3~x), c:amd64 [amd64], d [!amd64], e <!nocheck>, f (> 1)",
            "amd64",
        )
        .unwrap();
        let names: Vec<Vec<&str>> = g
            .iter()
            .map(|a| a.iter().map(|r| r.name.as_str()).collect())
            .collect();
        assert_eq!(
            names,
            [
                vec!["libc6"],
                vec!["a", "b"],
                vec!["c"],
                vec!["e"],
                vec!["f"]
            ]
        );
        assert_eq!(g[1][1].constraint.as_ref().unwrap().0, Operator::Less);
        assert_eq!(
            g[4][0].constraint.as_ref().unwrap().0,
            Operator::GreaterEqual
        );
        assert!(parse("a (~ 1)", "amd64").is_err());
        assert!(parse("a (>= 1", "amd64").is_err());
        assert!(parse("A", "amd64").is_err());
    }
}
