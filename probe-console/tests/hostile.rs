//! The `probe` binary against hostile input (issue 12, items 6-8), on the real ZooKeeper, Redis and
//! MariaDB that `scripts/services.sh up` starts: passwords in URLs the parser cannot split are never
//! printed; control and bidirectional characters from the registry and the audit log never reach
//! the terminal (and `--json` keeps them exact); a node's shown address is the one clients dial.

use std::process::{Command, Output};

use probe_runtime::registry::layout::{Env, NodeData, NodeKey};
use probe_runtime::registry::{App, Operator};
use probe_tests::{probe_vars, real_backends, unique};
use serde_json::Value;

/// `probe` with the test services' variables, `overrides` replacing some.
fn probe_with(overrides: &[(&str, &str)], args: &[&str]) -> Output {
    let vars = probe_vars().into_iter().map(|(k, v)| {
        let replaced = overrides.iter().find(|(name, _)| *name == k).map(|(_, v)| (*v).to_owned());
        (k, replaced.unwrap_or(v))
    });
    Command::new(env!("CARGO_BIN_EXE_probe"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(vars)
        .args(args)
        .output()
        .expect("the probe binary runs")
}

async fn probe(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || probe_with(&[], &args.iter().map(String::as_str).collect::<Vec<_>>()))
        .await
        .expect("the probe task ends")
}

fn all_output(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "probe failed: {}", all_output(&out));
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// Passwords with `/`, `?`, `#` or `@` unencoded, URLs without `://`, and a well-formed URL whose
/// server refuses the connection.
const HOSTILE_MYSQL: &[&str] = &[
    "mysql://probe:S3cret/PW@127.0.0.1:23306/probe",
    "mysql://probe:S3cret?PW@127.0.0.1/probe",
    "mysql://probe:S3cret#PW@127.0.0.1/probe",
    "mysql://probe:S3cret/PW",
    "probe:S3cret/PW@127.0.0.1/probe",
    "mysql:/probe:S3cret@127.0.0.1/probe",
    "mysql://probe:S3cret@PW@127.0.0.1:1/probe",
];

const HOSTILE_REDIS: &[&str] = &[
    "redis://:S3cret/PW@127.0.0.1:26379",
    "rediss://default:S3cret?PW@127.0.0.1",
    "redis:S3cret@127.0.0.1",
    "redis://:S3cret@127.0.0.1:1,redis://:S3cret/PW@127.0.0.1:2",
    "redis://:S3cret@127.0.0.1:1/0",
];

#[test]
fn passwords_in_hostile_urls_are_never_printed() {
    let commands: &[&[&str]] = &[
        &["env"],
        &["apps", "list"],
        &["apps", "list", "--json"],
        &["db", "status"],
        &["nodes", "list", "some_app"],
        &["audit"],
    ];
    let cases = HOSTILE_MYSQL.iter().map(|url| ("PROBE_MYSQL", *url));
    let cases = cases.chain(HOSTILE_REDIS.iter().map(|url| ("PROBE_REDIS", *url)));
    let mut runs = 0;
    for (variable, url) in cases {
        for args in commands {
            let out = probe_with(&[(variable, url)], args);
            let text = all_output(&out);
            assert!(
                !text.contains("S3cret") && !text.contains("PW@"),
                "{variable}={url} probe {args:?}: {text}"
            );
            runs += 1;
        }
    }
    assert_eq!(runs, 12 * commands.len());
}

/// Text a registry writer could use to drive a terminal: ESC sequences (clear the screen, set the
/// title), NUL and the right-to-left override.
const EVIL: &str = "\u{1b}[2J\u{1b}]0;pwned\u{7}\0gnp.\u{202e}exe";

fn assert_terminal_safe(text: &str) {
    for bad in ['\u{1b}', '\0', '\u{7}', '\u{202e}'] {
        assert!(!text.contains(bad), "{bad:?} reached the terminal: {text:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_data_cannot_drive_the_terminal_and_the_dialed_address_is_shown() {
    let backends = real_backends().await.expect("the test services are reachable");
    let appkey = unique("cli_evil");
    // A node named 127.0.0.1:7001 whose data sends clients to 203.0.113.5:22, with hostile text.
    let key = NodeKey::new(Env::Dev, &appkey, "Evil", "127.0.0.1", 7001).unwrap();
    let mut data = NodeData::new("203.0.113.5", 22);
    data.version = Some(EVIL.to_owned());
    data.weight = 9_000_000.into();
    let session = backends.registry.session().await.unwrap();
    session.register(&key, &data).await.unwrap();
    let actor = format!("cli:{EVIL}");

    let table = ok(probe(&["nodes", "list", &appkey]).await);
    assert_terminal_safe(&table);
    assert!(table.contains(r"\u{1b}[2J\u{1b}]0;pwned\u{7}\0gnp.\u{202e}exe"), "{table}");
    let row = table.lines().find(|l| l.starts_with("Evil")).unwrap_or_default();
    assert!(row.contains("203.0.113.5") && row.contains("  22  "), "the address clients dial: {table}");
    assert!(
        table.contains(
            "note: Evil_127.0.0.1_7001: its data says 203.0.113.5:22 while its name says 127.0.0.1:7001"
        ),
        "{table}"
    );
    assert!(table.contains("weight 9000000 is above 1000000"), "{table}");
    let json: Value = serde_json::from_str(&ok(probe(&["nodes", "list", &appkey, "--json"]).await)).unwrap();
    let node = &json["nodes"][0];
    assert_eq!(
        (node["version"].as_str(), node["port"].as_u64()),
        (Some(EVIL), Some(22)),
        "--json stays exact"
    );
    assert_eq!(node["name_port"], 7001);

    // Apps and the audit log: an app added under a hostile actor, description and owner.
    let op = Operator::new(backends.clone()).with_actor(actor.as_str());
    let app = App { appkey: appkey.clone(), description: EVIL.to_owned(), owner: EVIL.to_owned() };
    op.add_app(&app).await.unwrap();
    let apps = ok(probe(&["apps", "list"]).await);
    assert_terminal_safe(&apps);
    let audit = ok(probe(&["audit", "--limit", "50"]).await);
    assert_terminal_safe(&audit);
    assert!(audit.contains(r"cli:\u{1b}[2J"), "{audit}");
    let json: Value = serde_json::from_str(&ok(probe(&["audit", "--json", "--limit", "50"]).await)).unwrap();
    assert!(json["entries"].as_array().unwrap().iter().any(|e| e["actor"] == actor.as_str()), "{json}");
    op.remove_app(&appkey).await.unwrap();
    drop(session);
}
