//! The `probe rules` reports on the embedded backends.

use probe_runtime::registry::embedded::Embedded;
use probe_runtime::registry::layout::{Env, NodeData, NodeKey};
use probe_runtime::registry::{Backends, RegistrySession};
use serde_json::Value;

use super::*;

const SPLIT: &str =
    "{\"versions\": [\n  {\"version\": \"1\", \"share\": 90},\n  {\"version\": \"2\", \"share\": 10}\n]}\n";

fn of() -> RuleOf {
    RuleOf { appkey: "shop".into(), service: "Order".into() }
}

fn file(text: &str) -> RuleFile {
    RuleFile { label: "rule.json".into(), text: text.into() }
}

/// An operator over embedded backends with two live `Order` nodes, versions "1" and "2".
async fn fleet() -> (Operator, Box<dyn RegistrySession>) {
    let backends = Backends::embedded(Env::Dev, &Embedded::new());
    let session = backends.registry.session().await.unwrap();
    for (port, version) in [(9001, "1"), (9002, "2")] {
        let key = NodeKey::new(Env::Dev, "shop", "Order", "10.0.0.1", port).unwrap();
        let mut data = NodeData::new("10.0.0.1", port);
        data.version = Some(version.into());
        data.tags.insert("zone".into(), "a".into());
        session.register(&key, &data).await.unwrap();
    }
    (Operator::new(backends).with_actor("cli:t@h"), session)
}

#[tokio::test]
async fn set_show_history_and_rollback() {
    let (op, _nodes) = fleet().await;
    assert!(show(&op, &of()).await.unwrap().text.contains("shop/Order has no rule in env dev"));

    let set1 = set(&op, &of(), &file(SPLIT)).await.unwrap().unwrap();
    assert!(
        set1.text.starts_with("rule of shop/Order set: revision 1 (store version 0) in env dev;"),
        "{}",
        set1.text
    );
    assert_eq!((set1.json["revision"].clone(), set1.json["audited"].clone()), (json!(1), json!(true)));
    let all_2 = file(r#"{"versions": [{"version": "2", "share": 100}]}"#);
    let set2 = set(&op, &of(), &all_2).await.unwrap().unwrap();
    assert!(set2.text.contains(", replacing revision 1 (store version 0);"), "{}", set2.text);

    let shown = show(&op, &of()).await.unwrap();
    assert!(
        shown
            .text
            .starts_with("rule of shop/Order in env dev: revision 2 (store version 1)\nversions 2 100%\n{")
    );
    assert_eq!((shown.json["revision"].clone(), shown.json["valid"].clone()), (json!(2), json!(true)));

    let rolled = rollback(&op, &of(), 1).await.unwrap();
    assert!(
        rolled.text.starts_with("rule of shop/Order rolled back to revision 1: now revision 3"),
        "{}",
        rolled.text
    );
    assert!(rolled.warnings.is_empty(), "{:?}", rolled.warnings);

    let listed = history(&op, &of()).await.unwrap();
    let lines: Vec<&str> = listed.text.lines().collect();
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["REVISION", "STORE", "VERSION", "IN", "FORCE", "SUMMARY"]
    );
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["1", "0", "versions", "1", "90%,", "2", "10%"]
    );
    assert!(lines[4].contains(" yes ") && lines[4].ends_with("versions 1 90%, 2 10%"), "{}", listed.text);
    let revisions: Vec<Value> =
        listed.json["revisions"].as_array().unwrap().iter().map(|r| r["revision"].clone()).collect();
    assert_eq!(revisions, [json!(1), json!(2), json!(3)]);
}

#[tokio::test]
async fn refused_rules_are_located_and_exit_with_failure() {
    let (op, _nodes) = fleet().await;
    let sum = file(r#"{"versions": [{"version": "1", "share": 50}, {"version": "2", "share": 40}]}"#);
    let report = validate(&op, &of(), &sum).await.unwrap().unwrap_err();
    assert_eq!(
        report.text,
        "rule.json: /versions: the shares sum to 90, not 100\n1 problem(s) in the rule for shop/Order; `probe \
         rules set` would refuse it\n"
    );
    assert_eq!(
        (report.json["ok"].clone(), report.json["problems"][0]["pointer"].clone()),
        (json!(false), json!("/versions"))
    );

    let malformed = file("{\"versions\": [\n  {\"version\": \"1\" \"share\": 100}\n]}");
    let report = set(&op, &of(), &malformed).await.unwrap().unwrap_err();
    assert!(
        report.text.starts_with("rule.json:2:19: expected `,` or `}`\n  2 |   {\"version\""),
        "{}",
        report.text
    );
    assert!(report.text.ends_with("the rule was not set\n"), "{}", report.text);

    let unknown = file(r#"{"header_routes": [{"header": "canary", "value": "1", "version": "3"}]}"#);
    let report = validate(&op, &of(), &unknown).await.unwrap().unwrap_err();
    assert!(
        report.text.starts_with("rule.json: /header_routes/0/version: unknown version \"3\""),
        "{}",
        report.text
    );
    assert!(show(&op, &of()).await.unwrap().json["exists"] == false, "nothing was written");

    let ok = validate(&op, &of(), &file(SPLIT)).await.unwrap().unwrap();
    assert_eq!(ok.text, "ok: rule.json is a valid rule for shop/Order: versions 1 90%, 2 10%\n");
}

#[tokio::test]
async fn a_stored_document_that_is_not_a_rule_is_shown_with_its_problems() {
    let (op, _nodes) = fleet().await;
    op.backends().registry.write_rule(Env::Dev, "shop", "Order", "{\"versions\": 1}", None).await.unwrap();
    let shown = show(&op, &of()).await.unwrap();
    assert!(
        shown
            .text
            .starts_with("rule of shop/Order in env dev: store version 0 (not a valid rule)\nclients keep"),
        "{}",
        shown.text
    );
    assert!(shown.text.contains("/probe/rules/dev/shop/Order:1:14: invalid type"), "{}", shown.text);
    assert!(shown.text.ends_with("document as stored:\n{\"versions\": 1}\n"), "{}", shown.text);
    assert_eq!(shown.json["valid"], false);
}

#[tokio::test]
async fn a_preview_gives_each_node_its_share_now_and_under_the_file() {
    let (op, _nodes) = fleet().await;
    let caller = Caller { tags: vec![("zone".into(), "a".into())], headers: Vec::new() };
    let report = preview(&op, &of(), &file(SPLIT), &caller).await.unwrap().unwrap();
    let nodes = report.json["nodes"].as_array().unwrap();
    let share = |i: usize, when: &str| nodes[i][when].as_f64().unwrap();
    assert!((share(0, "new") - 0.9).abs() < 0.01 && (share(1, "new") - 0.1).abs() < 0.01, "{report:?}");
    assert!((share(0, "now") - 0.5).abs() < 0.02, "no rule yet: by weight: {report:?}");
    let row = report.text.lines().find(|l| l.starts_with("Order_10.0.0.1_9001")).unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells[..5], ["Order_10.0.0.1_9001", "1", "zone=a", "0", "yes"], "{}", report.text);
    assert!(cells[6].starts_with("89.") || cells[6].starts_with("90."), "{}", report.text);
    assert!(report.text.contains("caller tags zone=a, headers -"), "{}", report.text);

    let unknown = file(r#"{"versions": [{"version": "3", "share": 100}]}"#);
    let report = preview(&op, &of(), &unknown, &Caller::default()).await.unwrap().unwrap();
    assert!(
        report.text.contains("`probe rules set` would refuse this rule:\nrule.json: /versions/0/version"),
        "{}",
        report.text
    );
}
