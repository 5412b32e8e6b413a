//! `probe`: the operators' tool for probe services. See [`probe_console::cli`].

use std::process::ExitCode;

use clap::Parser;
use probe_console::cli::output::escape::escape_lines;
use probe_console::cli::{self, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs();
    match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", escape_lines(&describe(&e)));
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, filtered by RUST_LOG (default: warnings and errors).
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

/// The error and its causes, `: `-separated, leaving out a cause whose text the message before it
/// already ends with (errors that print their source themselves).
fn describe(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if text.ends_with(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn causes_already_in_the_message_are_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read f: {0}")]
        struct Read(#[source] std::io::Error);
        let e = anyhow::Error::new(Read(io)).context("cannot load");
        assert_eq!(describe(&e), "cannot load: cannot read f: gone");
    }
}
