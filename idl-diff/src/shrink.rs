//! Shrinking a disagreement to a minimal reproducer: delete files, definitions and lines while the
//! two compilers still disagree the same way, then write the result under `target/idl-diff/`.

use std::path::{Path, PathBuf};

use crate::model::Program;
use crate::oracle::{Outcome, Verdict, judge};

/// A shrunk disagreement, written to disk.
#[derive(Debug)]
pub struct Reproducer {
    pub dir: PathBuf,
    pub program: Program,
    pub apache: Option<Verdict>,
    pub probe: Verdict,
}

/// Removes pieces of `program` as long as the outcome stays `want`.
pub fn shrink(program: &Program, want: &Outcome, scratch: &Path) -> Program {
    let work = scratch.join("shrink");
    let out = scratch.join("shrink-out");
    let mut best = program.clone();
    let mut budget = 3000;
    'outer: loop {
        for candidate in best.smaller() {
            if budget == 0 {
                break 'outer;
            }
            budget -= 1;
            if candidate.write(&work).is_err() {
                continue;
            }
            if judge(&work, &out).0 == *want {
                best = candidate;
                continue 'outer;
            }
        }
        break;
    }
    best
}

/// Writes the reproducer directory `root/<name>/` with the program and both verdicts.
pub fn write(root: &Path, name: &str, program: &Program, scratch: &Path) -> std::io::Result<Reproducer> {
    let dir = root.join(name);
    program.write(&dir)?;
    let (_, apache, probe) = judge(&dir, &scratch.join("repro-out"));
    let mut report = String::from("command: thrift -r --gen py -out <scratch> main.thrift\n\n");
    match &apache {
        Some(Verdict::Accept) => report.push_str("apache: accepts\n"),
        Some(Verdict::Reject(text)) => report.push_str(&format!("apache: rejects\n{}\n", text.trim_end())),
        None => report.push_str("apache: excluded\n"),
    }
    match &probe {
        Verdict::Accept => report.push_str("\nprobe: accepts\n"),
        Verdict::Reject(text) => report.push_str(&format!("\nprobe: rejects\n{}\n", text.trim_end())),
    }
    std::fs::write(dir.join("VERDICTS.txt"), report)?;
    Ok(Reproducer { dir, program: program.clone(), apache, probe })
}
