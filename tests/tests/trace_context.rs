//! Trace context across processes: a probe client calls probe server A, whose handler calls probe
//! server B, each a process of its own with an in-memory OpenTelemetry exporter (`trace_hop`).
//! Every span of the three is in one trace, each server's `call` span is the child of its caller's
//! `call` span, and B's handler sees A's appkey and the client's priority (inherited through A).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

const HOP: &str = env!("CARGO_BIN_EXE_trace_hop");

/// A `trace_hop serve` process and its port.
struct Hop {
    child: Child,
    port: u16,
}

impl Hop {
    fn start(name: &str, spans: &std::path::Path, next: Option<u16>) -> Result<Hop> {
        let mut command = Command::new(HOP);
        command.args(["serve", name, spans.to_str().context("path")?]);
        if let Some(port) = next {
            command.arg(format!("127.0.0.1:{port}"));
        }
        let mut child = command.stdout(Stdio::piped()).spawn().context("cannot start trace_hop")?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let port = match line.trim().strip_prefix("READY ") {
            Some(port) => port.parse()?,
            None => bail!("{name} did not start: {line:?}"),
        };
        Ok(Hop { child, port })
    }

    /// Stops it with SIGTERM (it writes its spans then) and waits.
    fn stop(mut self) -> Result<()> {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status()?;
        ensure!(status.success(), "kill failed");
        let status = self.child.wait()?;
        ensure!(status.success(), "trace_hop ended with {status}");
        Ok(())
    }
}

impl Drop for Hop {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn spans(path: &std::path::Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("no spans in {}", path.display()))?;
    text.lines().map(|l| serde_json::from_str(l).context("a span line")).collect()
}

fn field<'a>(span: &'a Value, key: &str) -> &'a str {
    span[key].as_str().unwrap_or_default()
}

#[test]
fn one_trace_from_client_through_a_to_b() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("probe-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (b_spans, a_spans, client_spans) =
        (dir.join("b.jsonl"), dir.join("a.jsonl"), dir.join("client.jsonl"));
    let b = Hop::start("b", &b_spans, None)?;
    let a = Hop::start("a", &a_spans, Some(b.port))?;
    let out = Command::new(HOP)
        .args(["call", &format!("127.0.0.1:{}", a.port), client_spans.to_str().context("path")?])
        .output()?;
    ensure!(out.status.success(), "the client failed: {}", String::from_utf8_lossy(&out.stderr));
    let reply = String::from_utf8(out.stdout)?;
    a.stop()?;
    b.stop()?;

    // B saw A as its caller, the client's priority (critical, 0) passed on by A, and the trace.
    let reply = reply.trim().strip_prefix("REPLY ").context("a reply line")?.to_owned();
    assert!(reply.starts_with("note=hi via A appkey=a_app priority=0 trace="), "{reply}");
    let b_saw_trace = reply.rsplit("trace=").next().unwrap_or_default().to_owned();

    let all: Vec<Value> = [&client_spans, &a_spans, &b_spans]
        .into_iter()
        .map(|p| spans(p))
        .collect::<Result<Vec<_>>>()?
        .concat();
    let mut by_process: HashMap<&str, Vec<&Value>> = HashMap::new();
    for span in &all {
        by_process.entry(field(span, "process")).or_default().push(span);
    }
    let names = |p: &str| -> Vec<&str> {
        by_process.get(p).map(|s| s.iter().map(|s| field(s, "name")).collect()).unwrap_or_default()
    };
    println!("spans: client {:?}, a {:?}, b {:?}", names("client"), names("a"), names("b"));
    assert!(
        names("client").contains(&"checkout") && names("client").contains(&"call"),
        "{:?}",
        names("client")
    );
    assert_eq!(names("a").iter().filter(|n| **n == "call").count(), 2, "A's server and client calls");
    assert!(names("b").contains(&"call"));

    // One trace id across the three processes, the one B's handler saw.
    let trace_ids: std::collections::HashSet<&str> = all.iter().map(|s| field(s, "trace_id")).collect();
    assert_eq!(trace_ids.len(), 1, "{trace_ids:?}");
    assert_eq!(trace_ids.into_iter().next(), Some(b_saw_trace.as_str()));

    // Each server's call span is the child of a span of its caller's process.
    let ids = |p: &str| -> Vec<&str> {
        by_process.get(p).map(|s| s.iter().map(|s| field(s, "span_id")).collect()).unwrap_or_default()
    };
    let parents = |p: &str| -> Vec<&str> {
        by_process.get(p).map(|s| s.iter().map(|s| field(s, "parent_span_id")).collect()).unwrap_or_default()
    };
    assert!(parents("a").iter().any(|p| ids("client").contains(p)), "A continues the client's span");
    assert!(parents("b").iter().any(|p| ids("a").contains(p)), "B continues A's span");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
