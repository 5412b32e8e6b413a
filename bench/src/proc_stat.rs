//! CPU time a process used, from `/proc/PID/stat` (Linux).

use std::fs;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Clock ticks per second, the unit of `/proc/PID/stat` times: `getconf CLK_TCK`, else 100 (the
/// value on every Linux architecture this runs on).
pub fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&ticks| ticks > 0)
        .unwrap_or(100)
}

/// The user plus system CPU time process `pid` (`None`: this process) used so far.
pub fn cpu_time(pid: Option<u32>, ticks_per_second: u64) -> Result<Duration> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat =
        fs::read_to_string(&path).with_context(|| format!("cannot read {path}: is the process alive?"))?;
    let ticks = parse_cpu_ticks(&stat).with_context(|| format!("unexpected contents of {path}"))?;
    Ok(Duration::from_secs_f64(ticks as f64 / ticks_per_second as f64))
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line. The command name (field 2) is
/// in parentheses and may hold spaces, so fields are counted after its closing parenthesis.
fn parse_cpu_ticks(stat: &str) -> Result<u64> {
    let Some((_, after_name)) = stat.rsplit_once(')') else { bail!("no `)` after the command name") };
    // After the name: state is field 3, so utime (14) and stime (15) are the 12th and 13th here.
    let mut fields = after_name.split_whitespace().skip(11);
    let mut next = |what: &str| -> Result<u64> {
        let field = fields.next().with_context(|| format!("no {what} field"))?;
        field.parse().with_context(|| format!("{what} `{field}` is not a number"))
    };
    Ok(next("utime")? + next("stime")?)
}

/// The CPU time all CPUs of the machine spent running processes so far (user, nice, system and
/// steal), from the first line of `/proc/stat`: what other processes use shows as this minus ours.
/// Interrupt and softirq time is left out: the kernel accounts it to no process, and on loopback
/// most of it is the benchmark's own TCP traffic.
pub fn machine_busy(ticks_per_second: u64) -> Result<Duration> {
    let stat = fs::read_to_string("/proc/stat").context("cannot read /proc/stat")?;
    let ticks = parse_busy_ticks(&stat).context("unexpected contents of /proc/stat")?;
    Ok(Duration::from_secs_f64(ticks as f64 / ticks_per_second as f64))
}

/// user + nice + system + steal of the `cpu` line (guest time is in user).
fn parse_busy_ticks(stat: &str) -> Result<u64> {
    let line = stat.lines().next().filter(|l| l.starts_with("cpu ")).context("no `cpu` line first")?;
    let fields: Vec<u64> =
        line.split_whitespace().skip(1).take(8).map(str::parse).collect::<Result<_, _>>()?;
    let [user, nice, system, _idle, _iowait, _irq, _softirq, steal] = fields[..] else {
        bail!("fewer than 8 numbers on the `cpu` line");
    };
    Ok(user + nice + system + steal)
}

/// The context switches (voluntary and not) the threads of process `pid` (`None`: this process)
/// made so far, from `/proc/PID/task/*/status`: a client whose workers park and are woken often
/// shows many per call. Threads that ended are not counted.
pub fn context_switches(pid: Option<u32>) -> Result<u64> {
    sum_over_threads(pid, "status", parse_switches)
}

/// The times the threads of process `pid` (`None`: this process) moved to another CPU so far
/// (`se.nr_migrations` of `/proc/PID/task/*/sched`). With client and server on the same few CPUs,
/// runs in which the kernel leaves every thread where it is are the slow ones.
pub fn migrations(pid: Option<u32>) -> Result<u64> {
    sum_over_threads(pid, "sched", parse_migrations)
}

/// `parse` of the file `file` of each thread of process `pid`, summed.
fn sum_over_threads(pid: Option<u32>, file: &str, parse: fn(&str) -> Result<u64>) -> Result<u64> {
    let dir = match pid {
        Some(pid) => format!("/proc/{pid}/task"),
        None => "/proc/self/task".to_owned(),
    };
    let mut total = 0;
    for task in fs::read_dir(&dir).with_context(|| format!("cannot list {dir}: is the process alive?"))? {
        let path = task.with_context(|| format!("cannot list {dir}"))?.path().join(file);
        // A thread may end between the listing and the read.
        let Ok(text) = fs::read_to_string(&path) else { continue };
        total += parse(&text).with_context(|| format!("unexpected contents of {}", path.display()))?;
    }
    Ok(total)
}

/// `se.nr_migrations` of a `/proc/PID/task/TID/sched`.
fn parse_migrations(sched: &str) -> Result<u64> {
    let line = sched
        .lines()
        .find(|line| line.split_whitespace().next() == Some("se.nr_migrations"))
        .context("no se.nr_migrations line")?;
    let value = line.rsplit(':').next().unwrap_or_default().trim();
    value.parse().with_context(|| format!("se.nr_migrations `{value}` is not a number"))
}

/// `voluntary_ctxt_switches` + `nonvoluntary_ctxt_switches` of a `/proc/PID/task/TID/status`.
fn parse_switches(status: &str) -> Result<u64> {
    let mut total = 0;
    let mut found = 0;
    for line in status.lines() {
        let Some((key, value)) = line.split_once(':') else { continue };
        if key == "voluntary_ctxt_switches" || key == "nonvoluntary_ctxt_switches" {
            total += value
                .trim()
                .parse::<u64>()
                .with_context(|| format!("{key} `{}` is not a number", value.trim()))?;
            found += 1;
        }
    }
    if found != 2 {
        bail!("no voluntary_ctxt_switches and nonvoluntary_ctxt_switches lines");
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_are_the_sum_of_both_counts() {
        let status = "Name:\tx\nvoluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t30\n";
        assert_eq!(parse_switches(status).unwrap(), 42);
        assert!(parse_switches("Name:\tx\nvoluntary_ctxt_switches:\t12\n").is_err());
        assert!(parse_switches("voluntary_ctxt_switches:\tx\nnonvoluntary_ctxt_switches:\t1\n").is_err());
    }

    #[test]
    fn migrations_are_read_from_the_sched_file() {
        let sched = "x (1, #threads: 3)\n---\nse.exec_start : 1.5\nse.nr_migrations :   7\nnr_switches : 9\n";
        assert_eq!(parse_migrations(sched).unwrap(), 7);
        assert!(parse_migrations("se.exec_start : 1.5\n").is_err());
        assert!(parse_migrations("se.nr_migrations : x\n").is_err());
        // This process's threads, as the kernel counts them.
        migrations(None).unwrap();
    }

    #[test]
    fn a_sleep_counts_as_a_context_switch() {
        let before = context_switches(None).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(context_switches(None).unwrap() > before, "a sleep is a voluntary switch");
    }
}
