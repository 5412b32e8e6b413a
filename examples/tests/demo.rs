//! The README's demo, as a newcomer runs it: calls split about 1:2:7, none to the node switched
//! off half-way, and a clean exit (status 0) on ctrl-c.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The per-node counts of a summary line: `  before  5050 calls  | weight 10:   525 (10.4%) | ...`.
fn counts(line: &str) -> Vec<(u32, u64)> {
    line.split('|')
        .skip(1)
        .filter_map(|part| {
            let (node, rest) = part.trim().split_once(':')?;
            let weight = node.strip_prefix("weight ")?.parse().ok()?;
            let n = rest.split_whitespace().next()?.parse().ok()?;
            Some((weight, n))
        })
        .collect()
}

#[test]
fn demo_splits_by_weight_stops_calling_the_disabled_node_and_exits_cleanly_on_ctrl_c() {
    let mut demo = Command::new(env!("CARGO_BIN_EXE_demo"))
        .args(["--disable-after", "4", "--console", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the demo starts");
    let stdout = BufReader::new(demo.stdout.take().expect("piped stdout"));
    let started = Instant::now();
    let mut lines = Vec::new();
    let mut interrupted = false;
    for line in stdout.lines() {
        let line = line.expect("utf-8 output");
        println!("{line}");
        // Three lines after the switch-off, press ctrl-c.
        let after_switch = lines.iter().skip_while(|l: &&String| !l.starts_with("switched off")).count();
        if !interrupted && after_switch >= 4 {
            let status =
                Command::new("kill").args(["-INT", &demo.id().to_string()]).status().expect("kill runs");
            assert!(status.success());
            interrupted = true;
        }
        lines.push(line);
        assert!(started.elapsed() < Duration::from_secs(60), "the demo ran over a minute");
    }
    let status = demo.wait().expect("the demo ends");
    assert!(interrupted, "the demo never switched a node off");
    assert!(status.success(), "the demo exited with {status} on ctrl-c");
    assert!(lines.iter().any(|l| l.starts_with("console: http://127.0.0.1:") && l.contains("admin token")));
    assert_eq!(lines.last().map(String::as_str), Some("stopped cleanly"));

    let summary = |label: &str| {
        let line = lines.iter().find(|l| l.trim_start().starts_with(label)).expect("a summary line");
        counts(line)
    };
    let before = summary("before");
    let total: u64 = before.iter().map(|(_, n)| n).sum();
    assert!(total > 500, "only {total} calls before the switch-off");
    for (weight, n) in &before {
        let share = 100.0 * *n as f64 / total as f64;
        assert!(
            (share - f64::from(*weight)).abs() < 5.0,
            "weight {weight} got {share:.1}% of the calls: {before:?}"
        );
    }
    let after = summary("after");
    assert_eq!(after.iter().find(|(w, _)| *w == 70).map(|(_, n)| *n), Some(0), "{after:?}");
    assert!(after.iter().map(|(_, n)| n).sum::<u64>() > 0, "no calls after the switch-off: {after:?}");
}
