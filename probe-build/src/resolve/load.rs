//! Reading a root file and everything it includes, in dependency order, with include cycles reported.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::ast::Document;
use crate::diagnostic::Diagnostic;
use crate::source::{SourceMap, Span};
use crate::{lexer, parser};

/// A parsed file and the files its includes name (indexes into the loaded list).
pub(crate) struct Loaded {
    pub(crate) doc: Document,
    pub(crate) path: PathBuf,
    pub(crate) includes: Vec<(String, usize)>,
    /// Stems of includes that could not be loaded (already reported).
    pub(crate) failed_includes: Vec<String>,
    /// Stems of includes that were not found (Apache Thrift only warns about them).
    pub(crate) missing_includes: Vec<String>,
    /// Files included a second time (file index, span of the repeated include).
    pub(crate) repeated_includes: Vec<(usize, Span)>,
}

pub(crate) struct Loader<'a> {
    pub(crate) sources: &'a mut SourceMap,
    pub(crate) include_dirs: &'a [PathBuf],
    pub(crate) errors: &'a mut Vec<Diagnostic>,
    /// Files in dependency order (includes first).
    pub(crate) files: Vec<Loaded>,
    by_path: HashMap<PathBuf, usize>,
    /// Canonical paths of files being loaded, for cycle detection.
    stack: Vec<PathBuf>,
    /// Includes that were not found (not an error, as in Apache Thrift).
    pub(crate) missing: Vec<String>,
}

/// An error about a root file, which has no span to point at.
#[derive(Debug)]
pub(crate) struct RootError {
    pub(crate) path: PathBuf,
    pub(crate) error: std::io::Error,
}

impl<'a> Loader<'a> {
    pub(crate) fn new(
        sources: &'a mut SourceMap,
        include_dirs: &'a [PathBuf],
        errors: &'a mut Vec<Diagnostic>,
    ) -> Self {
        Loader {
            sources,
            include_dirs,
            errors,
            files: Vec::new(),
            by_path: HashMap::new(),
            stack: Vec::new(),
            missing: Vec::new(),
        }
    }

    /// Loads a root file; returns its index.
    pub(crate) fn load_root(&mut self, path: &Path) -> Result<Option<usize>, RootError> {
        let canonical = path.canonicalize().map_err(|error| RootError { path: path.to_owned(), error })?;
        let text =
            std::fs::read_to_string(path).map_err(|error| RootError { path: path.to_owned(), error })?;
        Ok(self.load(path.to_owned(), canonical, text))
    }

    fn load(&mut self, shown: PathBuf, canonical: PathBuf, text: String) -> Option<usize> {
        if let Some(&index) = self.by_path.get(&canonical) {
            return Some(index);
        }
        let file = self.sources.add(shown.clone(), text);
        let tokens = lexer::tokenize(file, self.sources.file(file).text(), self.errors);
        let doc = parser::parse(file, tokens, self.errors);
        self.stack.push(canonical.clone());
        let mut includes = Vec::new();
        let mut failed_includes = Vec::new();
        let mut missing_includes = Vec::new();
        let mut repeated_includes = Vec::new();
        for (name, span) in &doc.includes {
            match self.include(&shown, &canonical, name, *span) {
                Some(index) => {
                    if includes.iter().any(|(_, i)| *i == index) {
                        repeated_includes.push((index, *span));
                    }
                    includes.push((stem(Path::new(&**name)), index));
                }
                None if self.missing.last().is_some_and(|m| **m == **name) => {
                    missing_includes.push(stem(Path::new(&**name)));
                }
                None => failed_includes.push(stem(Path::new(&**name))),
            }
        }
        self.stack.pop();
        self.files.push(Loaded {
            doc,
            path: shown,
            includes,
            failed_includes,
            missing_includes,
            repeated_includes,
        });
        let index = self.files.len() - 1;
        self.by_path.insert(canonical, index);
        Some(index)
    }

    fn include(&mut self, shown: &Path, canonical: &Path, name: &str, span: Span) -> Option<usize> {
        let relative = Path::new(name);
        let mut candidates: Vec<(PathBuf, PathBuf)> = Vec::new();
        if relative.is_absolute() {
            candidates.push((relative.to_owned(), relative.to_owned()));
        } else {
            let here = canonical.parent().map(|d| d.join(relative));
            let shown_here = shown.parent().map(|d| d.join(relative));
            if let (Some(here), Some(shown_here)) = (here, shown_here) {
                candidates.push((shown_here, here));
            }
            for dir in self.include_dirs {
                candidates.push((dir.join(relative), dir.join(relative)));
            }
        }
        for (shown_path, path) in candidates {
            let Ok(canonical) = path.canonicalize() else { continue };
            if self.stack.contains(&canonical) {
                let chain: Vec<String> = self
                    .stack
                    .iter()
                    .skip_while(|p| **p != canonical)
                    .chain(std::iter::once(&canonical))
                    .map(|p| p.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()))
                    .collect();
                self.errors.push(Diagnostic::new(
                    span,
                    format!("include cycle: {}; remove one of these includes", chain.join(" -> ")),
                ));
                return None;
            }
            if let Some(&index) = self.by_path.get(&canonical) {
                return Some(index);
            }
            match std::fs::read_to_string(&canonical) {
                Ok(text) => return self.load(shown_path, canonical, text),
                Err(e) => {
                    self.errors
                        .push(Diagnostic::new(span, format!("cannot read included file {name:?}: {e}")));
                    return None;
                }
            }
        }
        // Apache Thrift 0.17 only warns about an include it cannot find; what the program uses from it
        // is reported where it is used (`unknown type `inc.T``).
        let _ = (shown, span);
        self.missing.push(name.to_owned());
        None
    }
}

/// The name a file's definitions are qualified with: its file name without the extension.
pub(crate) fn stem(path: &Path) -> String {
    path.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned())
}
