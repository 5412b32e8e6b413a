//! Traffic rules on the embedded backends: a discovered channel applies a rule as soon as it is
//! written, keeps the last good rule when a bad document replaces it (saying so in its routes, its
//! metrics and its report), and reports the revision it runs for operators.

mod server_support;

use std::time::{Duration, Instant};

use probe_runtime::client::{Channel, ClusterOptions};
use probe_runtime::registry::embedded::Embedded;
use probe_runtime::registry::layout::Env;
use probe_runtime::registry::{App, Backends, ClientReport};
use probe_runtime::server::{Server, ServerHandle};
use server_support::*;

async fn provider(backends: &Backends, prefix: &'static str, version: &str) -> ServerHandle {
    let (service, _) = Echo::new("Echo", prefix);
    Server::builder()
        .add_service_for_app("rules_app", service)
        .register(backends.clone())
        .advertise_host("127.0.0.1")
        .version(version)
        .grace_period(Duration::from_millis(10))
        .start("127.0.0.1:0")
        .await
        .unwrap()
}

/// The echo answers of `n` calls, by the prefix that says which node answered.
async fn answers(channel: &Channel, n: usize) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for i in 0..n {
        let reply = echo(channel, &format!("{i}")).await.unwrap();
        *counts.entry(reply.split(':').next().unwrap().to_owned()).or_default() += 1;
    }
    counts
}

/// The client report of this process for `Echo`, once it says `revision`.
async fn report(backends: &Backends, revision: u64) -> ClientReport {
    let started = Instant::now();
    loop {
        let reports = backends.metrics.client_reports(Env::Dev).await.unwrap();
        if let Some(r) = reports.into_iter().find(|r| r.service == "Echo" && r.revision == revision) {
            return r;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "no report of revision {revision}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn write(backends: &Backends, text: &str) {
    let current = backends.registry.read_rule(Env::Dev, "rules_app", "Echo").await.unwrap();
    backends
        .registry
        .write_rule(Env::Dev, "rules_app", "Echo", text, current.map(|c| c.version))
        .await
        .unwrap();
}

#[tokio::test]
async fn rules_apply_at_once_and_a_bad_one_keeps_the_last_good_one() {
    let embedded = Embedded::new();
    let backends = Backends::embedded(Env::Dev, &embedded);
    backends.apps.add(&App::new("rules_app")).await.unwrap();
    let _servers = [provider(&backends, "one:", "1").await, provider(&backends, "two:", "2").await];
    let channel = Channel::discover(&backends, "rules_app", "Echo", ClusterOptions::default()).await.unwrap();
    assert_eq!(answers(&channel, 200).await.len(), 2, "no rule: both versions");
    assert!(!report(&backends, 0).await.problem);

    write(&backends, r#"{"revision": 1, "versions": [{"version": "2", "share": 100}]}"#).await;
    let applied = report(&backends, 1).await;
    assert!(!applied.problem && applied.applied_at_ms > 0, "{applied:?}");
    assert_eq!(answers(&channel, 200).await.into_iter().collect::<Vec<_>>(), vec![("two".to_owned(), 200)]);

    // A document with shares that do not sum: the client keeps revision 1 and says so.
    write(&backends, r#"{"revision": 2, "versions": [{"version": "1", "share": 50}]}"#).await;
    let started = Instant::now();
    let bad = loop {
        let reports = backends.metrics.client_reports(Env::Dev).await.unwrap();
        if let Some(r) = reports.into_iter().find(|r| r.service == "Echo" && r.problem) {
            break r;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "the bad rule was not reported");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(bad.revision, 1, "the last good rule stays");
    assert_eq!(answers(&channel, 100).await.into_iter().collect::<Vec<_>>(), vec![("two".to_owned(), 100)]);
    let text = probe_runtime::metrics::global().render();
    assert!(
        text.lines().any(|l| l.starts_with("probe_client_rule_problem{")
            && l.contains("rules_app")
            && l.ends_with(" 1")),
        "{text}"
    );
    // Malformed JSON, written by hand: the same.
    write(&backends, "{ not json").await;
    assert_eq!(answers(&channel, 50).await.into_iter().collect::<Vec<_>>(), vec![("two".to_owned(), 50)]);
    // A good one again.
    write(&backends, r#"{"revision": 3, "versions": [{"version": "1", "share": 100}]}"#).await;
    assert!(!report(&backends, 3).await.problem);
    assert_eq!(answers(&channel, 100).await.into_iter().collect::<Vec<_>>(), vec![("one".to_owned(), 100)]);
}
