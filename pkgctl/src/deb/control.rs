//! The `control` file of a binary package: one paragraph of `Field: value`
//! lines (continuation lines start with a space or a tab), and the rules of
//! the `Description` field.

/// The fields of a control paragraph, in file order; names compare
/// case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Control {
    fields: Vec<(String, String)>,
}

impl Control {
    /// Parse the first paragraph of a control file. Continuation lines are
    /// joined with `\n` and keep their leading white space; `#` comment lines
    /// are skipped.
    pub fn parse(text: &str) -> Result<Control, String> {
        let mut fields: Vec<(String, String)> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                if fields.is_empty() {
                    continue;
                }
                break;
            }
            if line.starts_with('#') {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                let Some((_, value)) = fields.last_mut() else {
                    return Err(format!(
                        "line {}: continuation line before any field",
                        i + 1
                    ));
                };
                value.push('\n');
                value.push_str(line);
                continue;
            }
            let Some((name, value)) = line.split_once(':') else {
                return Err(format!("line {}: expected `Field: value`", i + 1));
            };
            let name = name.trim();
            if name.is_empty() || name.contains(char::is_whitespace) {
                return Err(format!("line {}: bad field name {name:?}", i + 1));
            }
            if fields.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                return Err(format!("line {}: field {name} given twice", i + 1));
            }
            fields.push((name.to_string(), value.trim().to_string()));
        }
        if fields.is_empty() {
            return Err("no fields".into());
        }
        Ok(Control { fields })
    }

    /// A field's value (continuation lines included), if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A field's value with its lines folded into one (relation fields may
    /// be wrapped).
    pub fn folded(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|v| v.lines().map(str::trim).collect::<Vec<_>>().join(" "))
    }
}

/// Split a `Description` value into the synopsis (first line) and the
/// extended description: a line ` .` is an empty line; lines starting with
/// one space are wrapped text and are joined into paragraphs; lines starting
/// with two or more spaces are kept verbatim (without the first space).
pub fn description(value: &str) -> (String, String) {
    let mut lines = value.lines();
    let summary = lines.next().unwrap_or_default().trim().to_string();
    let mut out: Vec<String> = Vec::new();
    let mut paragraph: Option<String> = None;
    let flush = |p: &mut Option<String>, out: &mut Vec<String>| {
        if let Some(text) = p.take() {
            out.push(text);
        }
    };
    for line in lines {
        let body = line.strip_prefix([' ', '\t']).unwrap_or(line);
        if body.trim_end() == "." {
            flush(&mut paragraph, &mut out);
            out.push(String::new());
        } else if body.starts_with([' ', '\t']) {
            flush(&mut paragraph, &mut out);
            out.push(body.trim_end().to_string());
        } else {
            let text = body.trim();
            match &mut paragraph {
                Some(p) => {
                    p.push(' ');
                    p.push_str(text);
                }
                None => paragraph = Some(text.to_string()),
            }
        }
    }
    flush(&mut paragraph, &mut out);
    (summary, out.join("\n").trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_and_continuations() {
        let c = Control::parse(
            "Package: a\nDepends: b,\n c (>= 1)\nDescription: sum\n one\n two\n .\n   code\n",
        )
        .unwrap();
        assert_eq!(c.get("package"), Some("a"));
        assert_eq!(c.folded("Depends").as_deref(), Some("b, c (>= 1)"));
        let (s, d) = description(c.get("Description").unwrap());
        assert_eq!(s, "sum");
        assert_eq!(d, "one two\n\n  code");
        assert!(Control::parse(" x\n").is_err());
        assert!(Control::parse("A: 1\na: 2\n").is_err());
        assert!(Control::parse("").is_err());
    }
}
