//! A rule document an operator gives (FILE, or `-` for stdin), and its problems as an editor wants
//! them: `FILE:line:column: message` with the source line and a caret for JSON that does not
//! parse, `FILE: /json/pointer: message` for a value that is wrong.

use std::io::Read as _;
use std::path::Path;

use anyhow::{Context as _, Result};
use serde_json::{Value, json};

use crate::located::{Located, bare_message, syntax_position};

/// A rule document: where it came from, for messages, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFile {
    /// The path as given, or `<stdin>`.
    pub label: String,
    /// The document.
    pub text: String,
}

impl RuleFile {
    /// Reads `path`, or stdin for `-`.
    pub fn read(path: &Path) -> Result<RuleFile> {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the rule from stdin (UTF-8 JSON)")?;
            return Ok(RuleFile { label: "<stdin>".to_owned(), text });
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the rule file {} (UTF-8 JSON)", path.display()))?;
        Ok(RuleFile { label: path.display().to_string(), text })
    }
}

/// The line and column of a problem in JSON that does not parse (`line L, column C`); `None` for a
/// problem at a JSON pointer.
pub fn line_column(problem: &impl Located) -> Option<(usize, usize)> {
    syntax_position(problem.at())
}

/// One line per problem of the document `source` from `label`, in order; a problem with a line
/// and column is followed by that source line and a caret under the column.
pub fn problems_text(label: &str, source: &str, problems: &[impl Located]) -> String {
    let mut out = String::new();
    for problem in problems {
        let Some((line, column)) = line_column(problem) else {
            out.push_str(&format!("{label}: {}: {}\n", problem.at(), problem.message()));
            continue;
        };
        out.push_str(&format!("{label}:{line}:{column}: {}\n", bare_message(problem, line, column)));
        if let Some(text) = line.checked_sub(1).and_then(|i| source.lines().nth(i)) {
            // serde_json counts columns in bytes; the caret goes under the character.
            let before = text.char_indices().take_while(|(i, _)| i + 1 < column).count();
            let number = line.to_string();
            out.push_str(&format!("  {number} | {text}\n"));
            out.push_str(&format!("  {} | {}^\n", " ".repeat(number.len()), " ".repeat(before)));
        }
    }
    out
}

/// The problems for `--json`: where (`at`, and `line` and `column`, or `pointer`) and what.
pub fn problems_json(problems: &[impl Located]) -> Vec<Value> {
    problems
        .iter()
        .map(|problem| match line_column(problem) {
            Some((line, column)) => json!({
                "at": problem.at(),
                "line": line,
                "column": column,
                "pointer": null,
                "message": bare_message(problem, line, column),
            }),
            None => json!({
                "at": problem.at(),
                "line": null,
                "column": null,
                "pointer": problem.at(),
                "message": problem.message(),
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use probe_runtime::rules::Rule;

    #[test]
    fn json_errors_point_at_the_line_and_column() {
        let source = "{\n  \"versions\": [\n    {\"version\": \"1\", \"share\": 100},\n  ]\n}";
        let problems = Rule::parse(source).unwrap_err();
        assert_eq!(line_column(&problems[0]), Some((4, 3)));
        assert_eq!(
            problems_text("rule.json", source, &problems),
            "rule.json:4:3: trailing comma\n  4 |   ]\n    |   ^\n"
        );
        let json = problems_json(&problems);
        assert_eq!(
            (json[0]["line"].clone(), json[0]["message"].clone()),
            (json!(4), json!("trailing comma"))
        );
    }

    #[test]
    fn wrong_values_are_named_by_their_pointer() {
        let source = r#"{"versions": [{"version": "1", "share": 50}, {"version": "2", "share": 40}]}"#;
        let problems = Rule::parse(source).unwrap_err();
        assert_eq!(line_column(&problems[0]), None);
        assert_eq!(problems_text("-", source, &problems), "-: /versions: the shares sum to 90, not 100\n");
        assert_eq!(problems_json(&problems)[0]["pointer"], "/versions");
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = RuleFile::read(Path::new("/nonexistent/rule.json")).unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/rule.json"), "{err:#}");
    }
}
