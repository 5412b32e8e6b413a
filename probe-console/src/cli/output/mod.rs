//! What a command prints: one [`Report`] that is either a JSON document or text for people, and
//! the helpers that make the text (aligned tables, times, numbers). Text is [escaped](escape) on
//! its way to the terminal; JSON is printed exact.

pub mod escape;
pub mod table;
pub mod time;

use std::io::{self, Write};

use serde_json::Value;

pub use table::{Align, Table};

/// A command's result in both of its forms: the JSON document `--json` prints and the text
/// printed otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The machine form: one JSON document.
    pub json: Value,
    /// The human form: tables and sentences, ending with a newline.
    pub text: String,
    /// What went wrong beside a result that stands (a change applied but not audited): printed
    /// to stderr as `warning: ...` in both forms; the exit status stays success.
    pub warnings: Vec<String>,
}

impl Report {
    /// A report of `json` for scripts and `text` for people.
    pub fn new(json: Value, text: impl Into<String>) -> Self {
        let mut text = text.into();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        Report { json, text, warnings: Vec::new() }
    }

    /// The same report with a warning for stderr.
    pub fn with_warning(mut self, warning: impl Into<String>) -> Self {
        self.warnings.push(warning.into());
        self
    }

    /// Writes the JSON form (`json`) or the text form to stdout, then the warnings to stderr. A
    /// closed pipe (`probe ... | head`) is not an error. Control and bidirectional characters in
    /// the text and the warnings are escaped (the text keeps its line breaks).
    pub fn print(&self, json: bool) -> io::Result<()> {
        self.print_result(json)?;
        let mut err = io::stderr().lock();
        for warning in &self.warnings {
            writeln!(err, "warning: {}", escape::escape(warning))?;
        }
        Ok(())
    }

    fn print_result(&self, json: bool) -> io::Result<()> {
        let mut out = io::stdout().lock();
        let written = if json {
            writeln!(out, "{:#}", self.json)
        } else {
            out.write_all(escape::escape_lines(&self.text).as_bytes())
        };
        match written.and_then(|()| out.flush()) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            other => other,
        }
    }
}

/// `yes` or `no`.
pub fn yes_no(flag: bool) -> &'static str {
    if flag { "yes" } else { "no" }
}

/// A number with one decimal, or `-` when absent.
pub fn decimal(value: Option<f64>, unit: &str) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}{unit}"))
}

/// An optional text, or `-`.
pub fn or_dash(value: Option<&str>) -> String {
    value.filter(|v| !v.is_empty()).unwrap_or("-").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_ends_with_a_newline_and_cells_have_placeholders() {
        assert_eq!(Report::new(Value::Null, "x").text, "x\n");
        assert_eq!(Report::new(Value::Null, "x\n").text, "x\n");
        assert_eq!(decimal(Some(12.345), "ms"), "12.3ms");
        assert_eq!(decimal(None, "ms"), "-");
        assert_eq!(or_dash(Some("")), "-");
        assert_eq!(or_dash(Some("0.1.0")), "0.1.0");
        assert_eq!(yes_no(true), "yes");
    }
}
