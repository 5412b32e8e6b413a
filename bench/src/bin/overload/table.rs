//! The report: one row per run as it finishes, then the goals, the refusals by priority of the
//! mixed run, and (with `--trace`) each limited run's gate over time.

use crate::tally::{LEVELS, Measured};

/// The goals of the adaptive limit at overload: p99 under this many times the idle p99...
const P99_GOAL: f64 = 2.0;
/// ...and goodput above this share of the capacity.
const GOODPUT_GOAL: f64 = 0.9;

/// A finished run.
#[derive(Debug)]
pub struct Row {
    pub label: String,
    pub measured: Measured,
    /// Whether the run is held to the goals (a limited run).
    pub judged: bool,
}

/// The rows so far.
#[derive(Debug)]
pub struct Table {
    capacity: f64,
    /// The idle run's p99 in milliseconds, once measured.
    idle_p99: Option<f64>,
    trace: bool,
    rows: Vec<Row>,
}

/// The columns' names, aligned as [`Table::row`] prints them.
const HEAD: &str = "mode                       | offered goodput of_cap | refused timeout failed unsent \
                    |  p50_ms  p99_ms x_idle | limit in_flight |  cpu  others";
/// Other processes using more than this % of a core make a row noisy.
const NOISY: f64 = 20.0;
/// What the columns mean.
const LEGEND: &str = "\
offered, goodput (served), refused (LOADSHEDDING), timeout, failed, unsent (over the client's
  outstanding bound): calls/s of the calls due in the window; of_cap = goodput / capacity (a few %
  over 100 when the queue lines up better with tokio's 1 ms timer than in the capacity run);
  p50/p99: latency of served calls from when each was due; x_idle = p99 / the idle p99;
  limit: the adaptive limit (median of the window); in_flight: mean calls in flight at the
  server's gate; cpu: this process's CPU (server and client), others: other processes' CPU,
  in % of one core (* above 20%: the row is noisy)
";

fn ms(nanos: u64) -> f64 {
    nanos as f64 / 1e6
}

impl Table {
    pub fn new(capacity: f64, trace: bool) -> Table {
        Table { capacity, idle_p99: None, trace, rows: Vec::new() }
    }

    pub fn header(&self) {
        println!("capacity: {:.0} calls/s (closed loop, callers well above the workers)", self.capacity);
        println!("{HEAD}");
    }

    /// The idle run: its p99 is the yardstick of the others.
    pub fn idle(&mut self, row: Row) {
        let all = row.measured.all();
        self.idle_p99 = Some(ms(all.latency.quantile(0.99)));
        self.row(row);
    }

    /// Prints `row` and keeps it.
    pub fn row(&mut self, row: Row) {
        let m = &row.measured;
        let all = m.all();
        let p99 = ms(all.latency.quantile(0.99));
        let x_idle = self.idle_p99.filter(|&i| i > 0.0).map_or("-".to_owned(), |i| format!("{:.2}", p99 / i));
        let goodput = m.per_second(all.ok);
        println!(
            "{:<26} | {:>7.0} {:>7.0} {:>5.0}% | {:>7.0} {:>7.0} {:>6.0} {:>6.0} | {:>7.2} {:>7.2} {:>6} | {:>5} {:>9} | {:>3.0}% {:>7}",
            row.label,
            m.offered,
            goodput,
            goodput * 100.0 / self.capacity,
            m.per_second(all.refused),
            m.per_second(all.timeout),
            m.per_second(all.failed),
            m.per_second(all.unsent),
            ms(all.latency.quantile(0.5)),
            p99,
            x_idle,
            m.gate.median_limit().map_or("-".to_owned(), |l| l.to_string()),
            m.gate.mean_in_flight().map_or("-".to_owned(), |n| format!("{n:.0}")),
            m.cpu.map_or(0.0, |c| c.own_pct),
            m.cpu.map_or("-".to_owned(), |c| {
                format!("{:.0}%{}", c.others_pct, if c.others_pct > NOISY { "*" } else { "" })
            }),
        );
        self.rows.push(row);
    }

    /// The goals (for every limited run), the refusals by priority and the traces.
    pub fn footer(&self) {
        println!();
        print!("{LEGEND}");
        for row in &self.rows {
            if let Some(failure) = &row.measured.first_failure {
                println!("{}: the first failed call: {failure}", row.label);
            }
        }
        let Some(idle) = self.idle_p99 else { return };
        for row in self.rows.iter().filter(|r| r.judged) {
            let all = row.measured.all();
            let x = ms(all.latency.quantile(0.99)) / idle;
            let share = row.measured.per_second(all.ok) / self.capacity;
            let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
            println!(
                "{}: p99 {x:.2} x idle (goal < {P99_GOAL}: {}), goodput {:.0}% of capacity (goal > {:.0}%: {})",
                row.label,
                verdict(x < P99_GOAL),
                share * 100.0,
                GOODPUT_GOAL * 100.0,
                verdict(share > GOODPUT_GOAL),
            );
        }
        for row in self.rows.iter().filter(|r| r.measured.levels[0].scheduled > 0) {
            self.priorities(row);
        }
        if self.trace {
            for row in self.rows.iter().filter(|r| r.measured.gate.samples.iter().any(|s| s.1.is_some())) {
                trace(row);
            }
        }
    }

    /// The mixed run by priority: the client's view, and what the server's gate counted.
    fn priorities(&self, row: &Row) {
        let m = &row.measured;
        println!();
        println!("{} by priority:", row.label);
        println!(
            "{:<10} | {:>7} {:>7} {:>7} {:>8} {:>7} | {:>12} | {:>7}",
            "priority", "sent", "served", "refused", "refused%", "timeout", "srv_refused", "p99_ms"
        );
        for (level, name) in LEVELS.iter().enumerate() {
            let t = &m.levels[level];
            if t.scheduled == 0 {
                continue;
            }
            println!(
                "{:<10} | {:>7.0} {:>7.0} {:>7.0} {:>7.1}% {:>7.0} | {:>12.0} | {:>7.2}",
                name,
                m.per_second(t.scheduled),
                m.per_second(t.ok),
                m.per_second(t.refused),
                t.refused as f64 * 100.0 / t.scheduled.max(1) as f64,
                m.per_second(t.timeout),
                m.per_second(m.gate.refused_by_priority[level]),
                ms(t.latency.quantile(0.99)),
            );
        }
        println!(
            "(calls/s; srv_refused: the server's request_limit_stats, refusals by priority in the window)"
        );
    }
}

/// The gate of `row` over its window, one line per quarter second.
fn trace(row: &Row) {
    println!();
    println!("{}: seconds, adaptive limit, calls in flight", row.label);
    let line: Vec<String> = row
        .measured
        .gate
        .samples
        .iter()
        .step_by(5)
        .map(|(at, limit, in_flight)| format!("{at:.2}s {} {in_flight}", limit.map_or(0, |l| l)))
        .collect();
    for chunk in line.chunks(8) {
        println!("  {}", chunk.join(" | "));
    }
}
