//! `probe rules preview APPKEY SERVICE FILE [--tag K=V] [--header K=V]`: the share of calls each
//! live node gets now and under the rule in FILE, for a caller with those tags whose calls carry
//! those headers. The shares come from [`rules::preview`]: 20,000 seeded draws through the same
//! selection clients run, so the same inputs print the same numbers.

use anyhow::{Context as _, Result};
use probe_runtime::balance::Endpoint;
use probe_runtime::registry::Operator;
use probe_runtime::registry::layout::NodeData;
use probe_runtime::rules::{self, Rule, Tags};
use probe_runtime::transport::header::Headers;
use serde_json::{Value, json};

use super::document::{RuleFile, problems_json, problems_text};
use super::summary::summary;
use super::{Judged, refused};
use crate::cli::args::RuleOf;
use crate::cli::output::{Align, Report, Table, or_dash, yes_no};

/// Simulated calls per rule.
pub const DRAWS: usize = 20_000;

/// Who calls: the client's tags and the metadata headers of its calls.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// `--tag` pairs.
    pub tags: Vec<(String, String)>,
    /// `--header` pairs.
    pub headers: Vec<(String, String)>,
}

/// `k=v,k2=v2`, or `-`.
fn pairs<'a>(pairs: impl IntoIterator<Item = (&'a String, &'a String)>) -> String {
    let text: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    or_dash(Some(&text.join(",")))
}

/// `90.0%`.
fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// Previews the rule in `file` for `of`; a document with problems is refused (nothing to preview),
/// versions no live node declares are listed under the table.
pub async fn preview(op: &Operator, of: &RuleOf, file: &RuleFile, caller: &Caller) -> Result<Judged> {
    let rule = match Rule::parse(&file.text) {
        Ok(rule) => rule,
        Err(problems) => return Ok(Err(refused(op, of, file, &problems, "nothing to preview"))),
    };
    let env = op.backends().env;
    let revisions = op
        .rule_revisions(&of.appkey, &of.service)
        .await
        .with_context(|| format!("cannot read the rule of {}", of.name()))?;
    let current = revisions.last();
    let now = current.and_then(|r| r.rule.as_ref().ok());
    let mut nodes = op
        .backends()
        .registry
        .nodes(env, &of.appkey)
        .await
        .with_context(|| format!("cannot read the live nodes of {}", of.appkey))?;
    nodes.retain(|n| n.key.service() == of.service);
    nodes.sort_by_key(|n| n.key.zk_child());
    let endpoints: Vec<Endpoint> =
        nodes.iter().map(|n| Endpoint::from_node(n.key.zk_child(), &n.data)).collect();
    let data: Vec<NodeData> = nodes.iter().map(|n| n.data.clone()).collect();
    let tags: Tags = caller.tags.iter().cloned().collect();
    let headers: Headers = caller.headers.iter().cloned().collect();
    let headers = (!caller.headers.is_empty()).then_some(&headers);
    let shares_now = rules::preview(&endpoints, &data, now, headers, &tags, DRAWS);
    let shares_new = rules::preview(&endpoints, &data, Some(&rule), headers, &tags, DRAWS);
    let unknown = rule.check_against(&data);

    let node_json = |i: usize| -> Value {
        let (node, d) = (&nodes[i], &data[i]);
        json!({
            "node": node.key.zk_child(),
            "version": d.version,
            "tags": d.tags,
            "tier": d.tier.unwrap_or(0),
            "in_rotation": d.in_rotation(),
            "now": shares_now[i],
            "new": shares_new[i],
        })
    };
    let json = json!({
        "env": env.as_str(),
        "appkey": of.appkey,
        "service": of.service,
        "file": file.label,
        "draws": DRAWS,
        "caller_tags": tags,
        "headers": caller.headers.iter().map(|(k, v)| json!({ "header": k, "value": v })).collect::<Vec<_>>(),
        "current_revision": current.and_then(|r| r.revision()),
        "current_valid": current.is_none_or(|r| r.rule.is_ok()),
        "summary": summary(&rule),
        "nodes": (0..nodes.len()).map(node_json).collect::<Vec<_>>(),
        "problems": problems_json(&unknown),
    });

    let mut text = format!(
        "preview of {} for {} in env {env}: {DRAWS} simulated calls per rule; caller tags {}, headers {}\n",
        file.label,
        of.name(),
        pairs(tags.iter()),
        pairs(caller.headers.iter().map(|(k, v)| (k, v))),
    );
    text.push_str(&match current {
        None => "now: no rule\n".to_owned(),
        Some(r) => match r.revision() {
            Some(revision) => format!("now: revision {revision}\n"),
            None => "now: the stored rule is not valid (`probe rules show` says why); clients keep the last \
                     valid rule they read, this preview assumes none\n"
                .to_owned(),
        },
    });
    text.push_str(&format!("new: {}\n", summary(&rule)));
    if nodes.is_empty() {
        text.push_str(&format!(
            "{} has no live node in env {env}: no call can go anywhere; check the names (`probe nodes list {}`)\n",
            of.name(),
            of.appkey
        ));
    } else {
        let mut table = Table::new(&[
            ("NODE", Align::Left),
            ("VERSION", Align::Left),
            ("TAGS", Align::Left),
            ("TIER", Align::Right),
            ("IN ROTATION", Align::Left),
            ("NOW", Align::Right),
            ("NEW", Align::Right),
        ]);
        for (i, node) in nodes.iter().enumerate() {
            table.row(vec![
                node.key.zk_child(),
                or_dash(data[i].version.as_deref()),
                pairs(data[i].tags.iter()),
                data[i].tier.unwrap_or(0).to_string(),
                yes_no(data[i].in_rotation()).to_owned(),
                percent(shares_now[i]),
                percent(shares_new[i]),
            ]);
        }
        text.push_str(&table.render());
    }
    if !unknown.is_empty() {
        text.push_str(&format!(
            "\n`probe rules set` would refuse this rule:\n{}",
            problems_text(&file.label, &file.text, &unknown)
        ));
    }
    Ok(Ok(Report::new(json, text)))
}
