//! Chaos on the app registry: MariaDB stopped while providers run. Running providers keep serving
//! (MySQL is read only when a provider starts); a new provider refuses to start with an error that
//! names MySQL and the setting; the CLI (`probe apps list`, `probe status`) and the console
//! (`/api/health` and `/api/apps`, to a viewer) say which backend is down. MariaDB is started again
//! afterwards with `scripts/services.sh up`.
//!
//! Prints `chaos: <scenario>: <calls> calls, <failed> failed, <what was measured>`.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use probe_console::cli::status;
use probe_runtime::client::ClusterOptions;
use probe_runtime::config::Config;
use probe_runtime::registry::Operator;
use probe_tests::chaos::{kill, running, service_pid, services_up};
use probe_tests::console::{VIEWER, http, start_console};
use probe_tests::governance::{add_app, client, count_pings, start_provider, wait_for_routes};
use probe_tests::{probe_vars, real_backends, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_stopped_while_providers_run() {
    let result = mysql_stopped().await;
    // MariaDB back for the tests after this one, whatever happened.
    let restart = services_up(&[]);
    result.unwrap_or_else(|e| panic!("{e:#}"));
    restart.unwrap_or_else(|e| panic!("restarting MariaDB: {e:#}"));
}

async fn mysql_stopped() -> Result<()> {
    let backends = real_backends().await?;
    let appkey = unique("chaos_mysql");
    add_app(&backends, &appkey).await?;
    let serving = start_provider(&backends, &appkey, "a").await?;
    let (routes, directory) = client(&backends, &appkey, ClusterOptions::default()).await?;
    wait_for_routes(&routes, "the provider", |r| r.table.in_rotation().count() == 1).await?;
    let (console, stop_console) = start_console(&backends).await?;
    let viewer = format!("Bearer {VIEWER}");

    let pid = service_pid("mariadb")?;
    kill(&pid, "-TERM")?;
    let stopped_at = Instant::now();
    // Gone: the process has exited (so `scripts/services.sh up` starts it again afterwards).
    while running(&pid)? {
        ensure!(stopped_at.elapsed() < Duration::from_secs(60), "MariaDB still runs 60 s after SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The running provider serves on.
    let counts = count_pings(&directory, 500, 4).await?;
    let calls: usize = counts.values().sum();

    // A new provider refuses to start, naming MySQL and the setting.
    let refused = start_provider(&backends, &appkey, "b").await;
    let refusal = match refused {
        Ok(server) => {
            server.shutdown().await?;
            anyhow::bail!("a provider started while MySQL was down; the appkey check was skipped")
        }
        Err(e) => format!("{e:#}"),
    };
    // The CLI says which backend is down.
    let cli = probe_console::cli::apps::list(&Operator::new(backends.clone())).await;
    let cli_error = match cli {
        Ok(report) => anyhow::bail!("`probe apps list` answered while MySQL was down: {}", report.text),
        Err(e) => format!("{e:#}"),
    };
    // `probe status` says MySQL is down, and that the others answer.
    let config = Config::from_vars(probe_vars())?;
    let probes = status::check(&config).await;
    let status_text = match status::report(&config, &probes) {
        Ok(report) => {
            anyhow::bail!("`probe status` found every backend up while MySQL was down: {}", report.text)
        }
        Err(report) => report.text,
    };
    let down: Vec<&str> = probes.iter().filter(|p| !p.ok()).map(|p| p.backend.id()).collect();
    // The console, to a viewer: the health view and a data endpoint name MySQL.
    let health = http(console, "GET", "/api/health", &[("Authorization", &viewer)], None).await?;
    let mysql_row = health.json["backends"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["backend"] == "mysql"))
        .cloned()
        .unwrap_or_default();
    let apps = http(console, "GET", "/api/apps", &[("Authorization", &viewer)], None).await?;
    let console_error = apps.json["error"].as_str().unwrap_or_default().to_owned();
    drop(stop_console);
    println!(
        "chaos: mysql stopped: {calls} calls, 0 failed, new provider refused: {refusal:?}; probe apps list: {cli_error:?}; \
         probe status: down {down:?}; console health: {mysql_row}; console /api/apps ({}): {console_error:?}",
        apps.status
    );
    ensure!(down == ["mysql"], "`probe status` found {down:?} down, not only mysql:\n{status_text}");
    ensure!(
        status_text
            .lines()
            .any(|l| l.starts_with("MySQL") && l.contains("down") && l.contains("PROBE_MYSQL")),
        "`probe status` does not say MySQL is down: {status_text}"
    );
    ensure!(
        health.status == 200 && health.json["ok"] == false && mysql_row["ok"] == false,
        "/api/health does not say MySQL is down: {} {}",
        health.status,
        health.json
    );
    let health_error = mysql_row["error"].as_str().unwrap_or_default();
    ensure!(
        health_error.contains("MySQL") && health_error.contains("PROBE_MYSQL"),
        "/api/health does not name MySQL and PROBE_MYSQL: {health_error}"
    );
    ensure!(
        apps.status == 502 && console_error.contains("MySQL") && console_error.contains("PROBE_MYSQL"),
        "/api/apps does not tell a viewer that MySQL is down: {} {console_error}",
        apps.status
    );
    ensure!(calls == 500, "{calls} of 500 calls answered");
    ensure!(
        refusal.contains("MySQL") && refusal.contains("PROBE_MYSQL"),
        "the refusal does not name MySQL and PROBE_MYSQL: {refusal}"
    );
    ensure!(cli_error.contains("MySQL"), "the CLI error does not name MySQL: {cli_error}");
    serving.shutdown().await?;
    Ok(())
}
