//! Located errors: `file:line:col: error: message`, the source line, and a caret under the culprit.

use std::fmt::{self, Write as _};

use crate::source::{SourceMap, Span};

/// One problem found in an IDL file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where it is.
    pub span: Span,
    /// What is wrong and, where it helps, what to do.
    pub message: String,
    /// Further places that explain it (a previous definition, say).
    pub notes: Vec<(Span, String)>,
}

impl Diagnostic {
    pub(crate) fn new(span: Span, message: impl Into<String>) -> Self {
        Diagnostic { span, message: message.into(), notes: Vec::new() }
    }

    pub(crate) fn with_note(mut self, span: Span, note: impl Into<String>) -> Self {
        self.notes.push((span, note.into()));
        self
    }

    /// Renders the diagnostic with its source lines.
    pub fn render(&self, sources: &SourceMap) -> String {
        let mut out = String::new();
        render_one(&mut out, sources, self.span, "error", &self.message);
        for (span, note) in &self.notes {
            render_one(&mut out, sources, *span, "note", note);
        }
        out
    }
}

fn render_one(out: &mut String, sources: &SourceMap, span: Span, level: &str, message: &str) {
    let file = sources.file(span.file);
    let (line, col) = file.line_col(span.start as usize);
    let (end_line, end_col) = file.line_col(span.end as usize);
    let text = file.line_text(line);
    let width = if end_line == line { end_col.saturating_sub(col).max(1) } else { 1 };
    let gutter = line.to_string().len();
    let pad: String = text.chars().take(col - 1).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
    let _ = writeln!(out, "{}:{line}:{col}: {level}: {message}", file.path().display());
    let _ = writeln!(out, "{:gutter$} |", "");
    let _ = writeln!(out, "{line} | {text}");
    let _ = writeln!(out, "{:gutter$} | {pad}{}", "", "^".repeat(width));
}

/// Every diagnostic of a failed compilation, rendered.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    rendered: String,
    count: usize,
}

impl Diagnostics {
    pub(crate) fn new(sources: &SourceMap, mut list: Vec<Diagnostic>) -> Self {
        list.sort_by_key(|d| (d.span.file, d.span.start));
        list.dedup();
        let rendered = list.iter().map(|d| d.render(sources)).collect::<Vec<_>>().join("\n");
        Diagnostics { rendered, count: list.len() }
    }

    /// How many errors.
    pub fn count(&self) -> usize {
        self.count
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.rendered.trim_end())
    }
}
