//! A problem of a document an operator gives (a traffic rule, request limits) and where it is:
//! serde_json's `line L, column C` for JSON that does not parse, else a JSON pointer such as
//! `/methods/echo/qps`. The runtime has one error type per document; this trait lets the CLI and
//! the console place and print both the same way.

use probe_runtime::limits::LimitError;
use probe_runtime::rules::RuleError;

/// A problem with its place in a document.
pub trait Located {
    /// `line L, column C`, or a JSON pointer.
    fn at(&self) -> &str;
    /// What is wrong and what to do.
    fn message(&self) -> &str;
}

impl Located for RuleError {
    fn at(&self) -> &str {
        &self.at
    }

    fn message(&self) -> &str {
        &self.message
    }
}

impl Located for LimitError {
    fn at(&self) -> &str {
        &self.at
    }

    fn message(&self) -> &str {
        &self.message
    }
}

/// serde_json's `line L, column C`: the line and (byte) column of JSON that does not parse;
/// `None` for a JSON pointer.
pub fn syntax_position(at: &str) -> Option<(usize, usize)> {
    let (line, column) = at.strip_prefix("line ")?.split_once(", column ")?;
    Some((line.parse().ok()?, column.parse().ok()?))
}

/// The message without the ` at line L column C` serde_json ends it with.
pub fn bare_message(problem: &impl Located, line: usize, column: usize) -> &str {
    let suffix = format!(" at line {line} column {column}");
    problem.message().strip_suffix(suffix.as_str()).unwrap_or(problem.message())
}

#[cfg(test)]
mod tests {
    use super::*;
    use probe_runtime::limits::RequestLimits;

    #[test]
    fn both_documents_place_their_problems_alike() {
        let limits = RequestLimits::parse("{\"qps\": }").unwrap_err();
        let (line, column) = syntax_position(limits[0].at()).unwrap();
        assert_eq!((line, column), (1, 9));
        assert_eq!(bare_message(&limits[0], line, column), "expected value");
        let rule = RuleError { at: "/versions".into(), message: "the shares sum to 90".into() };
        assert_eq!((syntax_position(rule.at()), bare_message(&rule, 1, 1)), (None, "the shares sum to 90"));
    }
}
