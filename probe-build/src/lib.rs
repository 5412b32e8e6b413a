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
//! The pipeline, stage by stage: lexer -> parser (AST with spans) -> resolver (includes, typedefs,
//! consts, scopes) -> IR -> code generator (quote + prettyplease). Errors carry `file:line:col`.
#![warn(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};

/// Options of one compilation; start with [`configure`].
#[derive(Debug, Clone, Default)]
pub struct Builder {
    include_dirs: Vec<PathBuf>,
    out_dir: Option<PathBuf>,
}

/// A [`Builder`] with the defaults: no extra include dirs, output to `$OUT_DIR`.
pub fn configure() -> Builder {
    Builder::default()
}

/// What went wrong in a compilation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An IDL file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Neither `out_dir` nor `$OUT_DIR` says where to write.
    #[error("no output directory: call `.out_dir(..)` or run from build.rs, where cargo sets OUT_DIR")]
    NoOutDir,
    /// The compiler stages are not in this build yet.
    #[error("probe-build {version} reads IDL files but does not generate code yet", version = env!("CARGO_PKG_VERSION"))]
    Unsupported,
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

    /// Compiles the given IDL files and everything they include.
    pub fn compile(&self, files: &[impl AsRef<Path>]) -> Result<(), Error> {
        let _out = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("OUT_DIR").map(PathBuf::from).ok_or(Error::NoOutDir)?,
        };
        for file in files {
            let path = file.as_ref();
            std::fs::read_to_string(path).map_err(|source| Error::Read { path: path.to_owned(), source })?;
            println!("cargo:rerun-if-changed={}", path.display());
        }
        Err(Error::Unsupported)
    }
}
