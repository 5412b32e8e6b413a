//! A document's problems (a rule's, or request limits') as an editor wants them: every problem at a
//! line and column of the document (1-based, columns counted in characters), whether serde_json
//! located it (JSON that does not parse: `line L, column C`, columns in bytes) or the document's
//! checks did (a JSON pointer such as `/versions/1/share`, found here by walking the document to
//! the value it names).
//!
//! No JSON crate reports where a value is (serde_json forgets positions once parsed), so the walk is
//! a small scanner over a document that already parsed; it never recurses and stops at anything it
//! does not expect.

use serde::Serialize;

use crate::located::{Located, bare_message, syntax_position};

/// One problem of a document, located.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The line (1-based), when the problem could be placed in the document.
    pub line: Option<usize>,
    /// The column (1-based, in characters), with `line`.
    pub column: Option<usize>,
    /// The JSON pointer of the value that is wrong, for a document that parsed; `None` for JSON
    /// that does not parse.
    pub pointer: Option<String>,
    /// What is wrong and what to do.
    pub message: String,
}

/// `problems` located in `text`, in order.
pub fn locate(text: &str, problems: &[impl Located]) -> Vec<Problem> {
    problems.iter().map(|problem| locate_one(text, problem)).collect()
}

fn locate_one(text: &str, problem: &impl Located) -> Problem {
    if let Some((line, byte_column)) = syntax_position(problem.at()) {
        return Problem {
            line: Some(line),
            column: Some(char_column(text, line, byte_column)),
            pointer: None,
            message: bare_message(problem, line, byte_column).to_owned(),
        };
    }
    let place = pointer_position(text, problem.at());
    Problem {
        line: place.map(|(line, _)| line),
        column: place.map(|(_, column)| column),
        pointer: Some(problem.at().to_owned()),
        message: problem.message().to_owned(),
    }
}

/// The character column of serde_json's byte `column` on `line` (both 1-based; serde_json says
/// column 0 at the start of a line it ended on).
fn char_column(text: &str, line: usize, byte_column: usize) -> usize {
    let Some(source) = line.checked_sub(1).and_then(|i| text.split('\n').nth(i)) else {
        return byte_column.max(1);
    };
    source.char_indices().take_while(|(i, _)| i + 1 < byte_column).count() + 1
}

/// The line and column where the value at `pointer` starts (the closest enclosing value's when
/// the document has no such value); `None` for text that is not a JSON value.
pub fn pointer_position(text: &str, pointer: &str) -> Option<(usize, usize)> {
    let mut scan = Scanner { bytes: text.as_bytes(), pos: 0 };
    scan.skip_space();
    scan.peek()?;
    for token in pointer.split('/').skip(1).filter(|t| !t.is_empty()) {
        let token = token.replace("~1", "/").replace("~0", "~");
        if !scan.enter(&token) {
            break;
        }
    }
    Some(line_column(text, scan.pos))
}

/// 1-based line and character column of byte `offset`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (before.matches('\n').count() + 1, before[line_start..].chars().count() + 1)
}

/// A cursor over a JSON document, at the start of a value.
struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    /// Moves from the start of an object or array to the start of its member `token` and answers
    /// `true`; stays (answering `false`) when there is none.
    fn enter(&mut self, token: &str) -> bool {
        let start = self.pos;
        let found = match self.peek() {
            Some(b'{') => self.enter_object(token),
            Some(b'[') => token.parse::<usize>().is_ok_and(|index| self.enter_array(index)),
            _ => false,
        };
        if !found {
            self.pos = start;
        }
        found
    }

    fn enter_object(&mut self, token: &str) -> bool {
        self.pos += 1;
        loop {
            self.skip_space();
            if self.peek() != Some(b'"') {
                return false;
            }
            let key_start = self.pos;
            if !self.skip_value() {
                return false;
            }
            let key: Option<String> = std::str::from_utf8(&self.bytes[key_start..self.pos])
                .ok()
                .and_then(|raw| serde_json::from_str(raw).ok());
            self.skip_space();
            if self.peek() != Some(b':') {
                return false;
            }
            self.pos += 1;
            self.skip_space();
            if key.as_deref() == Some(token) {
                return true;
            }
            if !self.next_member(b'}') {
                return false;
            }
        }
    }

    fn enter_array(&mut self, index: usize) -> bool {
        self.pos += 1;
        for _ in 0..index {
            self.skip_space();
            if !self.next_member(b']') {
                return false;
            }
        }
        self.skip_space();
        !matches!(self.peek(), Some(b']') | None)
    }

    /// Skips the value at the cursor and the `,` after it; `false` at the container's end.
    fn next_member(&mut self, close: u8) -> bool {
        if self.peek() == Some(close) || !self.skip_value() {
            return false;
        }
        self.skip_space();
        if self.peek() != Some(b',') {
            return false;
        }
        self.pos += 1;
        true
    }

    /// Skips one value (string, number, literal, or a whole object or array, by counting
    /// brackets outside strings); `false` when the document ends first.
    fn skip_value(&mut self) -> bool {
        let mut depth = 0usize;
        let mut in_string = false;
        while let Some(byte) = self.peek() {
            self.pos += 1;
            match (in_string, byte) {
                (true, b'\\') => self.pos += 1,
                (true, b'"') => {
                    in_string = false;
                    if depth == 0 {
                        return true;
                    }
                }
                (true, _) => {}
                (false, b'"') => in_string = true,
                (false, b'{' | b'[') => depth += 1,
                (false, b'}' | b']') if depth > 0 => {
                    depth -= 1;
                    if depth == 0 {
                        return true;
                    }
                }
                (false, b'}' | b']' | b',' | b':') | (false, b' ' | b'\t' | b'\r' | b'\n') if depth == 0 => {
                    // The end of a number or literal.
                    self.pos -= 1;
                    return true;
                }
                (false, _) => {}
            }
        }
        depth == 0 && !in_string
    }
}

#[cfg(test)]
mod tests {
    use probe_runtime::rules::Rule;

    use super::*;

    const DOC: &str = "{\n  \"versions\": [\n    {\"version\": \"1\", \"share\": 120},\n    {\"version\": \"2\", \"share\": 10}\n  ],\n  \"affinity\": {\"tag\": \"\"}\n}";

    #[test]
    fn pointers_land_on_their_values() {
        assert_eq!(pointer_position(DOC, "/"), Some((1, 1)));
        assert_eq!(pointer_position(DOC, "/versions"), Some((2, 15)));
        assert_eq!(pointer_position(DOC, "/versions/0/share"), Some((3, 31)));
        assert_eq!(pointer_position(DOC, "/versions/1/version"), Some((4, 17)));
        assert_eq!(pointer_position(DOC, "/affinity/tag"), Some((6, 23)));
        // A value the document lacks: the closest enclosing one.
        assert_eq!(pointer_position(DOC, "/versions/7/share"), Some((2, 15)));
        assert_eq!(pointer_position(DOC, "/tiers/only/0"), Some((1, 1)));
        assert_eq!(pointer_position("  ", "/versions"), None);
    }

    #[test]
    fn keys_with_escapes_and_strings_with_brackets_are_walked() {
        let doc = r#"{"a\"b": "]}", "x/y": [ "[" , {"k~": 5} ]}"#;
        assert_eq!(pointer_position(doc, "/x~1y/1/k~0"), Some((1, 38)));
        let wide = "{\"é\": 1, \"v\": 2}";
        assert_eq!(pointer_position(wide, "/v"), Some((1, 15)));
    }

    #[test]
    fn rule_problems_are_located_in_characters() {
        let problems = Rule::parse(DOC).unwrap_err();
        let located = locate(DOC, &problems);
        let share = located.iter().find(|p| p.pointer.as_deref() == Some("/versions/0/share")).unwrap();
        assert_eq!((share.line, share.column), (Some(3), Some(31)));
        assert_eq!(share.message, "share 120 is not between 0 and 100");

        let broken = "{\"versions\": [\n  {\"version\": \"é\" \"share\": 100}\n]}";
        let located = locate(broken, &Rule::parse(broken).unwrap_err());
        // serde_json says column 20 (bytes); the é is two bytes, so it is character 19.
        assert_eq!(
            located,
            [Problem {
                line: Some(2),
                column: Some(19),
                pointer: None,
                message: "expected `,` or `}`".into()
            }]
        );
    }
}
