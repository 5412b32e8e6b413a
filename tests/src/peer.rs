//! A Python peer script run as a child process, for the interop and registry tests: its stdout
//! lines as they come, its stderr so far, bounded waits, and a handle that ends the process when
//! dropped, whatever the test's outcome.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio::sync::mpsc;

/// A peer script's process, its stdout lines as they come and its stderr so far.
#[derive(Debug)]
pub(crate) struct Peer {
    what: String,
    child: Child,
    /// Held open: peers started with `--watch-stdin` exit when it closes, so none outlives the
    /// test process even if that is killed before `Drop` runs.
    stdin: Option<ChildStdin>,
    stdout: mpsc::UnboundedReceiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Peer {
    /// Starts `command` (a Python script) with piped stdin, stdout and stderr, unbuffered and
    /// writing no bytecode; `what` names it in errors. The error is the bare spawn error: callers
    /// add which program and script.
    pub(crate) fn spawn(mut command: Command, what: String) -> Result<Peer> {
        let mut child = command
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take();
        let (lines_tx, stdout) = mpsc::unbounded_channel();
        if let Some(out) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let _ = lines_tx.send(line);
                }
            });
        }
        let stderr = Arc::new(Mutex::new(String::new()));
        if let Some(mut err) = child.stderr.take() {
            let stderr = stderr.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = err.read(&mut buf) {
                    lock(&stderr).push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        Ok(Peer { what, child, stdin, stdout, stderr })
    }

    /// What it is, as errors name it.
    pub(crate) fn what(&self) -> &str {
        &self.what
    }

    /// Its next stdout line; an error with its stderr when it exits first or prints nothing in
    /// `timeout`.
    pub(crate) async fn next_line(&mut self, timeout: Duration) -> Result<String> {
        match tokio::time::timeout(timeout, self.stdout.recv()).await {
            Ok(Some(line)) => Ok(line),
            Ok(None) => Err(anyhow!("{} exited without output; stderr:\n{}", self.what, self.stderr())),
            Err(_) => {
                Err(anyhow!("{} printed nothing in {timeout:?}; stderr:\n{}", self.what, self.stderr()))
            }
        }
    }

    /// Waits for the process to end; kills it after `timeout`.
    pub(crate) async fn wait(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) =
                self.child.try_wait().with_context(|| format!("waiting for {}", self.what))?
            {
                return Ok(status);
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = self.child.kill();
                bail!("{} still ran after {timeout:?}; stderr:\n{}", self.what, self.stderr());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The stdout lines not read yet, once the process has ended.
    pub(crate) async fn rest_of_stdout(&mut self, timeout: Duration) -> String {
        let mut out = String::new();
        while let Ok(Some(line)) = tokio::time::timeout(timeout, self.stdout.recv()).await {
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    /// What it wrote to stderr so far.
    pub(crate) fn stderr(&self) -> String {
        lock(&self.stderr).clone()
    }
}

impl Drop for Peer {
    /// Closes stdin, which lets a `--watch-stdin` peer end cleanly (a provider closes its
    /// ZooKeeper session so its node goes at once), waits up to a second for that, then kills
    /// whatever still runs.
    fn drop(&mut self) {
        self.stdin = None;
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_)) | Err(_)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lock(text: &Mutex<String>) -> std::sync::MutexGuard<'_, String> {
    text.lock().unwrap_or_else(PoisonError::into_inner)
}
