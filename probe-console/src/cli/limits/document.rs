//! The limits document of `probe limits set`: a file (`-` for stdin), the text of `--text`, or one
//! made of the flags (`--qps 200 --method echo` is `{"methods": {"echo": {"qps": 200}}}`). The
//! flags' numbers go into the document as given, so the document's checks judge them and say
//! where the problem is (`flags: /methods/echo/qps: qps must be above 0, not 0`).

use std::io::Read as _;

use anyhow::{Context as _, Result, bail};
use serde_json::{Map, Value};

use crate::cli::args::LimitsSource;

/// A limits document: where it came from, for messages, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsDocument {
    /// The path as given, `<stdin>`, `--text` or `flags`.
    pub label: String,
    /// The document (JSON).
    pub text: String,
}

impl LimitsDocument {
    /// A document from `label` with `text`.
    pub fn new(label: impl Into<String>, text: impl Into<String>) -> Self {
        LimitsDocument { label: label.into(), text: text.into() }
    }

    /// The document `source` gives: reads its file (stdin for `-`), or makes one of its flags.
    pub fn read(source: &LimitsSource) -> Result<LimitsDocument> {
        if let Some(text) = &source.text {
            return Ok(LimitsDocument::new("--text", text.clone()));
        }
        let Some(path) = &source.file else { return from_flags(source) };
        if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the limits from stdin (UTF-8 JSON)")?;
            return Ok(LimitsDocument::new("<stdin>", text));
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the limits file {} (UTF-8 JSON)", path.display()))?;
        Ok(LimitsDocument::new(path.display().to_string(), text))
    }
}

/// The document of the flags: `--qps`, `--burst` and `--concurrency` are the service's, or those
/// of `--method`; `--adaptive` and `--connections` are the service's.
fn from_flags(source: &LimitsSource) -> Result<LimitsDocument> {
    let mut rate = Map::new();
    for (name, value) in
        [("qps", &source.qps), ("burst", &source.burst), ("concurrency", &source.concurrency)]
    {
        if let Some(value) = value {
            rate.insert(name.to_owned(), Value::Number(value.clone()));
        }
    }
    let mut document = Map::new();
    match &source.method {
        Some(method) if rate.is_empty() => {
            bail!("--method {method} needs the method's --qps, --burst or --concurrency")
        }
        Some(method) => {
            let methods = Map::from_iter([(method.clone(), Value::Object(rate))]);
            document.insert("methods".to_owned(), Value::Object(methods));
        }
        None => document.extend(rate),
    }
    if source.adaptive {
        document.insert("adaptive".to_owned(), Value::Bool(true));
    }
    if let Some(connections) = &source.connections {
        document.insert("connections".to_owned(), Value::Number(connections.clone()));
    }
    if document.is_empty() {
        bail!(
            "give the limits: --file FILE, --text JSON, or --qps, --burst, --concurrency, --adaptive, --connections"
        );
    }
    Ok(LimitsDocument::new("flags", Value::Object(document).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(n: &str) -> Option<serde_json::Number> {
        Some(serde_json::from_str(n).unwrap())
    }

    #[test]
    fn flags_make_a_document_with_the_numbers_as_given() {
        let service = LimitsSource {
            qps: number("1000"),
            burst: number("50"),
            adaptive: true,
            connections: number("-2"),
            ..LimitsSource::default()
        };
        let doc = LimitsDocument::read(&service).unwrap();
        assert_eq!(doc.label, "flags");
        assert_eq!(doc.text, r#"{"adaptive":true,"burst":50,"connections":-2,"qps":1000}"#);

        let method = LimitsSource {
            method: Some("echo".into()),
            qps: number("200.5"),
            concurrency: number("8"),
            connections: number("100"),
            ..LimitsSource::default()
        };
        let doc = LimitsDocument::read(&method).unwrap();
        assert_eq!(doc.text, r#"{"connections":100,"methods":{"echo":{"concurrency":8,"qps":200.5}}}"#);

        let alone = LimitsSource { method: Some("echo".into()), adaptive: true, ..LimitsSource::default() };
        let err = LimitsDocument::read(&alone).unwrap_err();
        assert!(err.to_string().contains("--method echo needs"), "{err}");
        assert!(LimitsDocument::read(&LimitsSource::default()).is_err());
    }

    #[test]
    fn text_and_files_are_taken_as_written() {
        let text = LimitsSource { text: Some("{\"qps\": 5}".into()), ..LimitsSource::default() };
        assert_eq!(LimitsDocument::read(&text).unwrap(), LimitsDocument::new("--text", "{\"qps\": 5}"));
        let missing =
            LimitsSource { file: Some("/nonexistent/limits.json".into()), ..LimitsSource::default() };
        let err = LimitsDocument::read(&missing).unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/limits.json"), "{err:#}");
    }
}
