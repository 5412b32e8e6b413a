//! The two verdicts on one program directory, and their comparison.
//!
//! Reference: `thrift -r --gen py -out <scratch> main.thrift` (Debian's thrift-compiler 0.17): exit
//! status 0 accepts the whole program, anything else rejects it. `-r` makes Apache generate, and so
//! resolve, every included file too, which is what probe checks; `py` is the generator the public
//! corpus's MANIFEST verdicts came from. probe: `probe_build::configure().check(["main.thrift"])`, in
//! process. Cases where Apache's behaviour is not defined by the IDL are excluded, each by name.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A verdict on a whole program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted.
    Accept,
    /// Rejected, with the compiler's output.
    Reject(String),
}

impl Verdict {
    pub fn accepted(&self) -> bool {
        matches!(self, Verdict::Accept)
    }
}

/// Why a program is left out of the comparison.
pub type Exclusion = &'static str;

/// Apache's verdict, or why it does not count.
pub fn apache(dir: &Path, out: &Path) -> Result<Verdict, Exclusion> {
    apache_with(dir, out, "py")
}

fn apache_with(dir: &Path, out: &Path, generator: &str) -> Result<Verdict, Exclusion> {
    let _ = std::fs::create_dir_all(out);
    // Output goes to a file, not a pipe: a runaway include recursion must not block on a full pipe.
    let log_path = out.join("thrift.log");
    let log = std::fs::File::create(&log_path).map_err(|_| "thrift log could not be created")?;
    let log2 = log.try_clone().map_err(|_| "thrift log could not be created")?;
    let mut child = Command::new("thrift")
        .args(["-r", "--gen", generator, "-out"])
        .arg(out)
        .arg(dir.join("main.thrift"))
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(|_| "thrift could not be started")?;
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > Duration::from_secs(5) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("apache timed out");
            }
            Ok(None) => std::thread::sleep(Duration::from_micros(200)),
            Err(_) => return Err("thrift could not be waited for"),
        }
    };
    let bytes = std::fs::read(&log_path).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(64 * 1024)]).into_owned();
    match status.code() {
        None => Err("apache crashed"),
        Some(0) => Ok(Verdict::Accept),
        // The py generator's reserved words are a property of the generator, not of the IDL
        // (the public corpus lists these files apart too).
        Some(_) if text.contains("Cannot use reserved language keyword") => Err("py generator reserved word"),
        Some(_) => Ok(Verdict::Reject(text)),
    }
}

/// probe's verdict, from the library `probe idl check` uses.
pub fn probe(dir: &Path) -> Verdict {
    match probe_build::configure().check(&[dir.join("main.thrift")]) {
        Ok(_) => Verdict::Accept,
        Err(e) => Verdict::Reject(e.to_string()),
    }
}

/// The outcome of one program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Agree,
    Excluded(Exclusion),
    /// Apache accepts, probe rejects (`true`), or the other way round (`false`).
    Disagree {
        apache_accepts: bool,
    },
}

/// Compares the verdicts of one program directory.
pub fn judge(dir: &Path, out: &Path) -> (Outcome, Option<Verdict>, Verdict) {
    let probe = probe(dir);
    let apache = match apache(dir, out) {
        Ok(v) => v,
        Err(why) => return (Outcome::Excluded(why), None, probe),
    };
    let outcome = match (apache.accepted(), probe.accepted()) {
        (a, p) if a == p => Outcome::Agree,
        (true, false) => match documented(&probe) {
            Some(why) => Outcome::Excluded(why),
            // Apache resolves a type only when its generator needs it: an unused typedef of an
            // unknown type passes with py and fails with go. Such a verdict is the generator's.
            None if matches!(apache_with(dir, out, "go"), Ok(Verdict::Reject(t)) if t.contains("\" not defined")) => {
                Outcome::Excluded("unknown type only go resolves (py accepts, go rejects)")
            }
            None => Outcome::Disagree { apache_accepts: true },
        },
        _ => Outcome::Disagree { apache_accepts: false },
    };
    (outcome, Some(apache), probe)
}

/// probe's documented choices where Apache accepts a program whose generated code is wrong: the class,
/// when every error probe reports belongs to it (see README, "IDL compatibility with Apache Thrift
/// 0.17").
fn documented(probe: &Verdict) -> Option<Exclusion> {
    let Verdict::Reject(text) = probe else { return None };
    let messages: Vec<&str> =
        text.lines().filter_map(|l| l.split_once(": error: ").map(|(_, m)| m)).collect();
    let class = |m: &str| DOCUMENTED.iter().find(|(_, marker)| m.contains(marker)).map(|(class, _)| *class);
    let first = class(messages.first()?)?;
    messages.iter().all(|m| class(m).is_some()).then_some(first)
}

/// (class, text every probe message of that class contains).
const DOCUMENTED: &[(&str, &str)] = &[
    (
        "typedef'd value Apache does not check",
        "(Apache Thrift 0.17 does not check values of typedef'd types)",
    ),
    ("container value Apache reads as empty", "(Apache Thrift 0.17 reads it as an empty container)"),
    ("integer out of range Apache does not check", "(Apache Thrift 0.17 does not check integer ranges)"),
    ("enum value Apache reads as 0", "(Apache Thrift 0.17 reads it as 0)"),
    ("field id or oneway result Apache only warns about", "(Apache Thrift 0.17 only warns)"),
    (
        "unknown type in an unused typedef or constant type",
        "(Apache Thrift 0.17 looks it up only where it is used)",
    ),
];
