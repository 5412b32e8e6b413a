//! Name resolution: includes, scopes, typedef chains, enum values and constants, with located errors.
//!
//! Rules follow Apache Thrift 0.17: unqualified names see only their own file; `inc.Name` sees the
//! definitions of the included file `inc.thrift`; enum values are written `Enum.VALUE` (or
//! `inc.Enum.VALUE`); a type name may not repeat a type of an included file that declares the same
//! namespaces.

mod consts;
mod load;
mod scope;
mod types;

use std::collections::HashMap;
use std::path::PathBuf;

use crate::diagnostic::Diagnostic;
use crate::ir::{File, Program};
use crate::source::SourceMap;

pub(crate) use load::RootError;

/// Loads and resolves the roots. Errors in files go to `errors`; a root that cannot be read is a
/// [`RootError`].
pub(crate) fn resolve(
    sources: &mut SourceMap,
    roots: &[PathBuf],
    include_dirs: &[PathBuf],
    errors: &mut Vec<Diagnostic>,
) -> Result<Program, RootError> {
    let mut loader = load::Loader::new(sources, include_dirs, errors);
    let mut root_indexes = Vec::new();
    for root in roots {
        if let Some(index) = loader.load_root(root)? {
            root_indexes.push(index);
        }
    }
    let loaded = std::mem::take(&mut loader.files);
    let files = loaded
        .into_iter()
        .map(|l| File {
            id: l.doc.file,
            stem: load::stem(&l.path),
            doc: l.doc,
            includes: l.includes.into_iter().collect(),
            failed_includes: l.failed_includes,
            missing_includes: l.missing_includes,
            repeated_includes: l.repeated_includes,
            names: HashMap::new(),
            const_names: HashMap::new(),
            types: HashMap::new(),
            values: HashMap::new(),
            enum_values: HashMap::new(),
        })
        .collect();
    let mut program = Program { files, roots: root_indexes };
    for index in 0..program.files.len() {
        scope::declare(&mut program, index, errors);
    }
    for index in 0..program.files.len() {
        types::resolve_file(&mut program, index, errors);
    }
    let mut table = consts::ConstTable::new();
    for index in 0..program.files.len() {
        consts::resolve_file(&mut program, index, &mut table, errors);
    }
    Ok(program)
}
