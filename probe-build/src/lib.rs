//! Compile Thrift IDL into typed Rust for probe, from `build.rs`.
//!
//! ```no_run
//! // build.rs
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     probe_build::configure().compile(&["idl/demo.thrift"])?;
//!     Ok(())
//! }
//! ```
//!
//! The pipeline, stage by stage: [`lexer`](crate) -> parser ([`ast`], every node spanned) -> resolver
//! (includes, scopes, typedefs, enum values, constants) -> [`ir::Program`] -> code generator. Every
//! error is reported as `file:line:col: error: message` with the source line and a caret, and one
//! run reports as many errors as it can find.
//!
//! Checking without generating (what `probe idl check` does):
//!
//! ```
//! let dir = std::env::temp_dir().join(format!("probe-build-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! std::fs::write(dir.join("bad.thrift"), "struct S {\n  1: Missing m\n}\n")?;
//! let err = probe_build::configure().check(&[dir.join("bad.thrift")]).unwrap_err();
//! assert!(err.to_string().contains("bad.thrift:2:6: error: unknown type `Missing`"), "{err}");
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(clippy::unwrap_used, missing_docs)]

pub mod ast;
mod codegen;
mod diagnostic;
pub mod ir;
mod lexer;
pub mod names;
mod parser;
mod resolve;
mod source;

use std::path::{Path, PathBuf};

pub use codegen::{GeneratedFile, Layout, ROOT_FILE};
pub use diagnostic::{Diagnostic, Diagnostics};
pub use source::{FileId, SourceMap, Span};

/// Options of one compilation; start with [`configure`].
#[derive(Debug, Clone, Default)]
pub struct Builder {
    include_dirs: Vec<PathBuf>,
    out_dir: Option<PathBuf>,
    layout: Layout,
}

/// A [`Builder`] with the defaults: includes are searched next to the including file only, output
/// goes to `$OUT_DIR`, and each IDL file becomes one module ([`Layout::PerFile`]).
pub fn configure() -> Builder {
    Builder::default()
}

/// What went wrong in a compilation.
///
/// `Debug` prints the same text as `Display`, so that `fn main() -> Result<(), Box<dyn Error>>` in a
/// build script shows the located diagnostics as they are, not escaped into one line.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file given to `compile` or `check` could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The IDL has errors; the value renders all of them with their locations.
    #[error("{0}\nprobe-build: {n} error(s) in the IDL", n = .0.count())]
    Idl(Diagnostics),
    /// Neither `out_dir` nor `$OUT_DIR` says where to write.
    #[error("no output directory: call `.out_dir(..)` or run from build.rs, where cargo sets OUT_DIR")]
    NoOutDir,
    /// Writing generated code failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The code generator failed: a probe-build bug, or a value Rust cannot express.
    #[error("code generation failed: {0}")]
    Codegen(String),
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// A checked program and the sources it was read from.
#[derive(Debug)]
pub struct Checked {
    /// Every file's text, for spans.
    pub sources: SourceMap,
    /// The resolved program.
    pub program: ir::Program,
}

impl Builder {
    /// Adds a directory searched for `include`d files after the including file's own directory.
    pub fn include_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.include_dirs.push(dir.as_ref().to_path_buf());
        self
    }

    /// Writes generated files here instead of `$OUT_DIR`.
    pub fn out_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.out_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Lays generated modules out per IDL file (the default) or per namespace.
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// Parses and resolves the files and everything they include, without generating code.
    pub fn check(&self, files: &[impl AsRef<Path>]) -> Result<Checked, Error> {
        let roots: Vec<PathBuf> = files.iter().map(|f| f.as_ref().to_path_buf()).collect();
        let mut sources = SourceMap::default();
        let mut errors = Vec::new();
        let program = resolve::resolve(&mut sources, &roots, &self.include_dirs, &mut errors)
            .map_err(|e| Error::Read { path: e.path, source: e.error })?;
        if errors.is_empty() {
            Ok(Checked { sources, program })
        } else {
            Err(Error::Idl(Diagnostics::new(&sources, errors)))
        }
    }

    /// Generates Rust for the files and everything they include, without writing it.
    pub fn generate(&self, files: &[impl AsRef<Path>]) -> Result<Vec<GeneratedFile>, Error> {
        let checked = self.check(files)?;
        codegen::generate(&checked.program, self.layout).map_err(|e| Error::Codegen(e.0))
    }

    /// Compiles the given IDL files and everything they include into `$OUT_DIR` (or `out_dir`):
    /// one `<module>.rs` per IDL file and `probe_idl.rs`, which `probe::include_idl!()` includes.
    /// Prints `cargo:rerun-if-changed` for every IDL file read. Files whose content did not change
    /// are not rewritten, so cargo does not rebuild for nothing.
    pub fn compile(&self, files: &[impl AsRef<Path>]) -> Result<(), Error> {
        let out = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("OUT_DIR").map(PathBuf::from).ok_or(Error::NoOutDir)?,
        };
        let checked = self.check(files)?;
        for file in &checked.program.files {
            println!("cargo:rerun-if-changed={}", checked.sources.file(file.id).path().display());
        }
        let generated = codegen::generate(&checked.program, self.layout).map_err(|e| Error::Codegen(e.0))?;
        std::fs::create_dir_all(&out).map_err(|source| Error::Write { path: out.clone(), source })?;
        for file in generated {
            let path = out.join(&file.name);
            if std::fs::read_to_string(&path).is_ok_and(|old| old == file.code) {
                continue;
            }
            std::fs::write(&path, file.code).map_err(|source| Error::Write { path, source })?;
        }
        Ok(())
    }
}
