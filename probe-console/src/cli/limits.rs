//! `probe limits show|set|clear APPKEY [SERVICE] ...`: the request limits of provider nodes
//! ([`probe_runtime::limits`]) as operators read and change them. Changes go through
//! [`Operator::set_limits`] (one node, `--node IP:PORT`) and [`Operator::set_service_limits`]
//! (every node of the service, running or stored): the settings store, then the live node, whose
//! provider applies them at once, then the audit log (`set_limits`).
//!
//! A document that `set` refuses (a bad value, an unknown field, a method the running nodes do not
//! have) is a [`Judged`] `Err`: a report of every problem with its place that makes the exit status
//! 1; nothing is written.

mod document;
mod show;
#[cfg(test)]
mod tests;

use anyhow::{Context as _, Result};
use probe_runtime::limits::{LimitError, RequestLimits};
use probe_runtime::registry::layout::{Env, NodeKey, check_appkey, check_service_name};
use probe_runtime::registry::{NodeChange, NodeView, Operator, OperatorError};
use serde_json::{Value, json};

pub use document::LimitsDocument;
pub use show::show;

use super::args::{LimitsCommand, LimitsOf};
use super::context::Context;
use super::output::{Align, Report, Table};
use super::rules::{Judged, problems_json, problems_text};
use crate::node_limits::{shown, summary};

/// Runs a `probe limits` command. Names and the document are checked before any connection is
/// made: a document with problems is refused without one.
pub async fn run(ctx: &Context, command: LimitsCommand) -> Result<Judged> {
    match command {
        LimitsCommand::Show { appkey, service } => {
            check_names(&appkey, service.as_deref())?;
            let op = ctx.operator(ctx.backends().await?);
            show(&op, &appkey, service.as_deref()).await.map(Ok)
        }
        LimitsCommand::Set { of, source } => {
            check_names(&of.appkey, Some(&of.service))?;
            let document = LimitsDocument::read(&source)?;
            if let Err(problems) = RequestLimits::parse(&document.text) {
                return Ok(Err(refused(ctx.config()?.env, &of, &document, &problems)));
            }
            set(&ctx.operator(ctx.backends().await?), &of, &document).await
        }
        LimitsCommand::Clear(of) => {
            check_names(&of.appkey, Some(&of.service))?;
            clear(&ctx.operator(ctx.backends().await?), &of).await.map(Ok)
        }
    }
}

fn check_names(appkey: &str, service: Option<&str>) -> Result<()> {
    check_appkey(appkey)
        .and_then(|()| service.map_or(Ok(()), check_service_name))
        .context("cannot use the limits of these nodes")
}

/// `appkey/service`, or `appkey/service_ip_port` for one node.
fn target(of: &LimitsOf) -> String {
    match &of.node {
        Some(node) => format!("{}/{}_{}_{}", of.appkey, of.service, node.ip, node.port),
        None => format!("{}/{}", of.appkey, of.service),
    }
}

/// The key of the node `--node` names.
fn node_key(env: Env, of: &LimitsOf) -> Result<Option<NodeKey>> {
    let Some(node) = &of.node else { return Ok(None) };
    let key = NodeKey::new(env, &of.appkey, &of.service, &node.ip, node.port)
        .with_context(|| format!("bad --node {}:{}", node.ip, node.port))?;
    Ok(Some(key))
}

/// Sets `limits` (`None`: clears them) on the node `key`, or on every node of the service.
async fn apply(
    op: &Operator,
    of: &LimitsOf,
    key: Option<&NodeKey>,
    limits: Option<&RequestLimits>,
) -> Result<Vec<NodeChange>, OperatorError> {
    match key {
        Some(key) => Ok(vec![op.set_limits(key, limits).await?]),
        None => op.set_service_limits(&of.appkey, &of.service, limits).await,
    }
}

/// The report of a document refused for `problems`: each located in `document`, then `N
/// problem(s); nothing was changed`.
pub fn refused(env: Env, of: &LimitsOf, document: &LimitsDocument, problems: &[LimitError]) -> Report {
    let json = json!({
        "ok": false,
        "env": env.as_str(),
        "appkey": of.appkey,
        "service": of.service,
        "node": of.node.as_ref().map(|n| format!("{}:{}", n.ip, n.port)),
        "source": document.label,
        "problems": problems_json(problems),
    });
    let text = format!(
        "{}{} problem(s) in the limits for {}; nothing was changed",
        problems_text(&document.label, &document.text, problems),
        problems.len(),
        target(of),
    );
    Report::new(json, text)
}

/// Sets the limits of `document` on the nodes of `of`.
pub async fn set(op: &Operator, of: &LimitsOf, document: &LimitsDocument) -> Result<Judged> {
    let env = op.backends().env;
    let limits = match RequestLimits::parse(&document.text) {
        Ok(limits) => limits,
        Err(problems) => return Ok(Err(refused(env, of, document, &problems))),
    };
    let key = node_key(env, of)?;
    // Read first: only methods a running node declares can be checked.
    let declared = declared_methods(op, of, key.as_ref()).await?;
    let changes = match apply(op, of, key.as_ref(), Some(&limits)).await {
        Ok(changes) => changes,
        Err(OperatorError::LimitsRefused { problems, .. }) => {
            return Ok(Err(refused(env, of, document, &problems)));
        }
        Err(err) => return Err(err).with_context(|| format!("cannot set the limits of {}", target(of))),
    };
    let done = match limits.is_empty() {
        true => "cleared (the document limits nothing)".to_owned(),
        false => format!("set: {}", summary(&limits)),
    };
    let mut report = change_report(op, of, &changes, &done);
    if !limits.methods.is_empty() && !declared {
        let names: Vec<&str> = limits.methods.keys().map(String::as_str).collect();
        report = report.with_warning(format!(
            "no running node of {} declares its methods, so {} could not be checked; a provider refuses \
             limits naming a method it does not have and keeps the limits it had",
            target(of),
            names.join(", ")
        ));
    }
    Ok(Ok(report))
}

/// Whether a running node among those `of` names (`key`, or the service's) declares the
/// service's methods.
async fn declared_methods(op: &Operator, of: &LimitsOf, key: Option<&NodeKey>) -> Result<bool> {
    let views: Vec<NodeView> = match key {
        Some(key) => vec![op.node(key).await?],
        None => op.nodes(&of.appkey).await?.into_iter().filter(|v| v.key.service() == of.service).collect(),
    };
    Ok(views.iter().filter_map(|v| v.live.as_ref()).any(|d| !d.methods.is_empty()))
}

/// Removes the limits of the nodes of `of`.
pub async fn clear(op: &Operator, of: &LimitsOf) -> Result<Report> {
    let key = node_key(op.backends().env, of)?;
    let changes = apply(op, of, key.as_ref(), None)
        .await
        .with_context(|| format!("cannot clear the limits of {}", target(of)))?;
    Ok(change_report(op, of, &changes, "cleared: the providers' configured limits apply"))
}

fn count(n: usize) -> String {
    if n == 1 { "1 node".to_owned() } else { format!("{n} nodes") }
}

/// What a set or clear wrote on each node, with a warning for changes the audit log missed.
fn change_report(op: &Operator, of: &LimitsOf, changes: &[NodeChange], done: &str) -> Report {
    let env = op.backends().env;
    let after = changes.first().and_then(|c| c.after.limits.clone());
    let mut table = Table::new(&[("NODE", Align::Left), ("BEFORE", Align::Left), ("LIVE NODE", Align::Left)]);
    for change in changes {
        let live = match change.live {
            true => "updated: its provider applies them now",
            false => "not running: they apply when it registers again",
        };
        table.row(vec![change.key.redis_field(), shown(change.before.limits.as_ref()), live.to_owned()]);
    }
    let text = format!(
        "limits of {} {done}, on {} in env {env}\n{}",
        target(of),
        count(changes.len()),
        table.render()
    );
    let json = json!({
        "env": env.as_str(),
        "appkey": of.appkey,
        "service": of.service,
        "node": of.node.as_ref().map(|n| format!("{}:{}", n.ip, n.port)),
        "action": "set_limits",
        "limits": after,
        "summary": shown(after.as_ref()),
        "changes": changes.iter().map(change_json).collect::<Vec<_>>(),
        "audited": changes.iter().all(|c| c.audit.is_ok()),
    });
    let report = Report::new(json, text);
    let missed: Vec<&NodeChange> = changes.iter().filter(|c| c.audit.is_err()).collect();
    match missed.first().map(|c| &c.audit) {
        Some(Err(err)) => report.with_warning(format!(
            "the change of {} was applied but not audited: {err}",
            count(missed.len())
        )),
        _ => report,
    }
}

fn change_json(change: &NodeChange) -> Value {
    json!({
        "node": change.key.redis_field(),
        "zk_path": change.key.zk_node_path(),
        "before": change.before.limits,
        "after": change.after.limits,
        "live_updated": change.live,
        "audited": change.audit.is_ok(),
        "audit_error": change.audit.as_ref().err().map(ToString::to_string),
    })
}
