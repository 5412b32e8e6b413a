//! `idl-diff`: differential testing of probe's IDL front end against Apache Thrift 0.17.
//!
//! ```text
//! idl-diff [--seconds N] [--seed S] [--jobs J] [--programs N] [--out DIR]
//! ```
//!
//! Generates random IDL programs (see `gen`), judges each with Debian's `thrift` and with
//! probe-build in process (see `oracle`), shrinks every disagreement to a minimal reproducer under
//! `--out` (default `target/idl-diff`), and ends with one line:
//! `idl-diff: N programs, D disagree (K excluded: ...)`. Exits 1 on any disagreement.
//! Random numbers come from the `rand` crate (a seeded `StdRng`, so a seed replays a run exactly).

mod generate;
mod model;
mod oracle;
mod shrink;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use oracle::{Outcome, judge};

#[derive(Debug)]
struct Options {
    seconds: u64,
    seed: u64,
    jobs: usize,
    programs: u64,
    out: PathBuf,
    verbose: bool,
    start: u64,
}

#[derive(Debug, thiserror::Error)]
enum UsageError {
    #[error(
        "unknown or incomplete option `{0}`; usage: idl-diff [--seconds N] [--seed S] [--jobs J] [--programs N] [--out DIR]"
    )]
    Bad(String),
}

fn options() -> Result<Options, UsageError> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut o = Options {
        seconds: 30,
        seed: 1,
        jobs: cores + 1,
        programs: u64::MAX,
        out: "target/idl-diff".into(),
        verbose: false,
        start: 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| UsageError::Bad(arg.clone()));
        match arg.as_str() {
            "--seconds" => o.seconds = value()?.parse().map_err(|_| UsageError::Bad(arg.clone()))?,
            "--seed" => o.seed = value()?.parse().map_err(|_| UsageError::Bad(arg.clone()))?,
            "--jobs" => o.jobs = value()?.parse().map_err(|_| UsageError::Bad(arg.clone()))?,
            "--programs" => o.programs = value()?.parse().map_err(|_| UsageError::Bad(arg.clone()))?,
            "--out" => o.out = value()?.into(),
            "--verbose" => o.verbose = true,
            "--start" => o.start = value()?.parse().map_err(|_| UsageError::Bad(arg.clone()))?,
            _ => return Err(UsageError::Bad(arg)),
        }
    }
    Ok(o)
}

/// Where generated programs are written: a tmpfs when there is one.
fn scratch_root() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    let base = if shm.is_dir() { shm } else { std::env::temp_dir() };
    base.join(format!("idl-diff-{}", std::process::id()))
}

#[derive(Default)]
struct Tally {
    programs: u64,
    excluded: BTreeMap<&'static str, u64>,
    disagree: Vec<(u64, Outcome)>,
}

fn main() -> std::process::ExitCode {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    let scratch = scratch_root();
    let deadline = Instant::now() + Duration::from_secs(o.seconds);
    let next = AtomicU64::new(o.start);
    let tally = Mutex::new(Tally::default());
    std::thread::scope(|s| {
        for worker in 0..o.jobs {
            let (scratch, next, tally, o) = (&scratch, &next, &tally, &o);
            s.spawn(move || {
                let dir = scratch.join(format!("w{worker}"));
                let (prog_dir, out_dir) = (dir.join("prog"), dir.join("out"));
                while Instant::now() < deadline {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= o.programs {
                        break;
                    }
                    let program = generate::program(o.seed, index);
                    if let Err(e) = program.write(&prog_dir) {
                        eprintln!("idl-diff: cannot write {}: {e}", prog_dir.display());
                        break;
                    }
                    let (outcome, apache, probe) = judge(&prog_dir, &out_dir);
                    if o.verbose && matches!(outcome, Outcome::Disagree { .. }) {
                        println!(
                            "DISAGREE {index}: apache {} | probe {}",
                            first_line(apache.as_ref()),
                            first_line(Some(&probe))
                        );
                    }
                    let mut t = tally.lock().unwrap_or_else(|p| p.into_inner());
                    t.programs += 1;
                    match outcome {
                        Outcome::Agree => {}
                        Outcome::Excluded(why) => *t.excluded.entry(why).or_default() += 1,
                        d @ Outcome::Disagree { .. } => t.disagree.push((index, d)),
                    }
                }
            });
        }
    });
    let tally = tally.into_inner().unwrap_or_else(|p| p.into_inner());
    report_disagreements(&o, &tally, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    let excluded: u64 = tally.excluded.values().sum();
    let mut line = format!("idl-diff: {} programs, {} disagree", tally.programs, tally.disagree.len());
    if excluded > 0 {
        let parts: Vec<String> = tally.excluded.iter().map(|(why, n)| format!("{n} {why}")).collect();
        line.push_str(&format!(" ({excluded} excluded: {})", parts.join(", ")));
    }
    println!("{line}");
    if tally.disagree.is_empty() { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE }
}

/// Shrinks the first disagreements (one per distinct reproducer) and prints them.
fn report_disagreements(o: &Options, tally: &Tally, scratch: &std::path::Path) {
    let mut seen = Vec::new();
    let mut disagree = tally.disagree.clone();
    disagree.sort_by_key(|(i, _)| *i);
    for (index, outcome) in disagree.iter().take(12) {
        let program = generate::program(o.seed, *index);
        let small = shrink::shrink(&program, outcome, scratch);
        if seen.contains(&small) {
            continue;
        }
        seen.push(small.clone());
        let name = format!("seed{}-{index}", o.seed);
        match shrink::write(&o.out, &name, &small, scratch) {
            Ok(r) => {
                let side = if matches!(outcome, Outcome::Disagree { apache_accepts: true }) {
                    "apache accepts, probe rejects"
                } else {
                    "apache rejects, probe accepts"
                };
                println!("DISAGREE {side}: {}", r.dir.display());
                for file in &r.program.files {
                    println!("--- {}\n{}", file.path, file.render().trim_end());
                }
                let first = |v: &oracle::Verdict| match v {
                    oracle::Verdict::Accept => "accepts".to_owned(),
                    oracle::Verdict::Reject(t) => {
                        t.lines().find(|l| !l.trim().is_empty()).unwrap_or("").to_owned()
                    }
                };
                println!("apache: {}", r.apache.as_ref().map_or("excluded".to_owned(), first));
                println!("probe:  {}\n", first(&r.probe));
            }
            Err(e) => eprintln!("idl-diff: cannot write reproducer {name}: {e}"),
        }
    }
}

/// The first line of a verdict, for the `--verbose` log of every disagreement.
fn first_line(v: Option<&oracle::Verdict>) -> String {
    match v {
        None => "excluded".to_owned(),
        Some(oracle::Verdict::Accept) => "accepts".to_owned(),
        Some(oracle::Verdict::Reject(t)) => {
            let line =
                t.lines().find(|l| l.contains("error") || l.contains("FAILURE") || l.contains("not defined"));
            line.unwrap_or_else(|| t.lines().next().unwrap_or("")).to_owned()
        }
    }
}
