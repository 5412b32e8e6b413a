//! `probe idl check|gen`: the IDL front end and code generator that build.rs uses, from the shell.

use std::path::Path;

use serde_json::json;

use super::args::IdlFiles;
use super::output::Report;

fn builder(args: &IdlFiles) -> probe_build::Builder {
    args.include.iter().fold(probe_build::configure(), |b, dir| b.include_dir(dir))
}

/// Parses and resolves the files; `Err` holds the diagnostics, each with its location.
pub fn check(args: &IdlFiles) -> Result<Report, String> {
    let checked = builder(args).check(&args.files).map_err(|e| e.to_string())?;
    let files = checked.program.files.len();
    let definitions: usize = checked.program.files.iter().map(|f| f.doc.definitions.len()).sum();
    Ok(Report::new(
        json!({ "ok": true, "files": files, "definitions": definitions }),
        format!("ok: {files} file(s), {definitions} definition(s)"),
    ))
}

/// Generates Rust for the files into `out`; `Err` holds the diagnostics.
pub fn generate(args: &IdlFiles, out: &Path) -> Result<Report, String> {
    builder(args).out_dir(out).compile(&args.files).map_err(|e| e.to_string())?;
    Ok(Report::new(
        json!({ "ok": true, "out": out.display().to_string() }),
        format!("ok: wrote {}", out.display()),
    ))
}
