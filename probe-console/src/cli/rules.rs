//! `probe rules show|validate|preview|set|history|rollback APPKEY SERVICE ...`: a service's
//! traffic rule ([`probe_runtime::rules`]) as operators read, check and change it. Changes go
//! through [`Operator::set_rule`] and [`Operator::rollback_rule`]: checked against the live nodes,
//! counted up to the next revision, written with compare-and-set and audited.
//!
//! A rule that `validate`, `preview` or `set` refuses is a [`Judged`] `Err`: a report of every
//! problem with its place (`FILE:line:column`, or a JSON pointer) that makes the exit status 1.

mod document;
mod preview;
mod summary;
#[cfg(test)]
mod tests;

use anyhow::{Context as _, Result};
use probe_runtime::registry::layout::{check_appkey, check_service_name};
use probe_runtime::registry::operator::{RuleChange, RuleRevision};
use probe_runtime::registry::zookeeper::zk_rule_path;
use probe_runtime::registry::{Operator, OperatorError};
use probe_runtime::rules::RuleError;
use serde_json::json;

pub use document::RuleFile;
pub use preview::{Caller, DRAWS, preview};
pub use summary::summary;

use super::args::{RuleOf, RulesCommand};
use super::context::Context;
use super::output::{Align, Report, Table};
pub(crate) use document::{problems_json, problems_text};
use summary::revision_summary;

/// A command's report, or (`Err`) the report of a rule it refused: exit status 1.
pub type Judged = Result<Report, Report>;

/// Runs a `probe rules` command. The names and FILE are checked before any connection is made
/// (FILE is read at once: a CLI waits for its input anyway).
pub async fn run(ctx: &Context, command: RulesCommand) -> Result<Judged> {
    match command {
        RulesCommand::Show(of) => show(&connect(ctx, &of).await?, &of).await.map(Ok),
        RulesCommand::History(of) => history(&connect(ctx, &of).await?, &of).await.map(Ok),
        RulesCommand::Validate { of, file } => {
            let file = RuleFile::read(&file)?;
            validate(&connect(ctx, &of).await?, &of, &file).await
        }
        RulesCommand::Preview { of, file, tags, headers } => {
            let file = RuleFile::read(&file)?;
            preview(&connect(ctx, &of).await?, &of, &file, &Caller { tags, headers }).await
        }
        RulesCommand::Set { of, file } => {
            let file = RuleFile::read(&file)?;
            set(&connect(ctx, &of).await?, &of, &file).await
        }
        RulesCommand::Rollback { of, revision } => {
            rollback(&connect(ctx, &of).await?, &of, revision).await.map(Ok)
        }
    }
}

/// Checks the names of `of`, then connects to the backends.
async fn connect(ctx: &Context, of: &RuleOf) -> Result<Operator> {
    check_appkey(&of.appkey)
        .and_then(|()| check_service_name(&of.service))
        .with_context(|| format!("cannot use the rule of {}", of.name()))?;
    Ok(ctx.operator(ctx.backends().await?))
}

/// The report of a rule refused for `problems`: each located in `file`, then `N problem(s);
/// {consequence}`.
pub(crate) fn refused(
    op: &Operator,
    of: &RuleOf,
    file: &RuleFile,
    problems: &[RuleError],
    consequence: &str,
) -> Report {
    let json = json!({
        "ok": false,
        "env": op.backends().env.as_str(),
        "appkey": of.appkey,
        "service": of.service,
        "file": file.label,
        "problems": problems_json(problems),
    });
    let text = format!(
        "{}{} problem(s) in the rule for {}; {consequence}",
        problems_text(&file.label, &file.text, problems),
        problems.len(),
        of.name()
    );
    Report::new(json, text)
}

/// `revision 4 (store version 3)`, or `store version 3 (not a valid rule)`.
fn revision_text(revision: &RuleRevision) -> String {
    match revision.revision() {
        Some(r) => format!("revision {r} (store version {})", revision.stored.version),
        None => format!("store version {} (not a valid rule)", revision.stored.version),
    }
}

/// The rule in force: revision, store version, the document; its problems when it is not valid.
pub async fn show(op: &Operator, of: &RuleOf) -> Result<Report> {
    let env = op.backends().env;
    let revisions = op
        .rule_revisions(&of.appkey, &of.service)
        .await
        .with_context(|| format!("cannot read the rule of {}", of.name()))?;
    let path = zk_rule_path(env, &of.appkey, &of.service);
    let Some(current) = revisions.last() else {
        let json = json!({ "env": env.as_str(), "appkey": of.appkey, "service": of.service, "path": path, "exists": false });
        let text = format!(
            "{} has no rule in env {env}: calls go to every node in rotation by weight (tiers as the nodes \
             declare); set one with `probe rules set {} {} FILE`",
            of.name(),
            of.appkey,
            of.service
        );
        return Ok(Report::new(json, text));
    };
    let problems = current.rule.as_ref().err().cloned().unwrap_or_default();
    let json = json!({
        "env": env.as_str(),
        "appkey": of.appkey,
        "service": of.service,
        "path": path,
        "exists": true,
        "revision": current.revision(),
        "version": current.stored.version,
        "valid": current.rule.is_ok(),
        "text": current.stored.text,
        "rule": current.rule.as_ref().ok(),
        "summary": revision_summary(current),
        "problems": problems_json(&problems),
    });
    let mut text = format!("rule of {} in env {env}: {}\n", of.name(), revision_text(current));
    match &current.rule {
        Ok(rule) => text.push_str(&format!("{}\n", summary(rule))),
        Err(problems) => text.push_str(&format!(
            "clients keep the last valid rule they read; set a valid one with `probe rules set` or `probe rules \
             rollback`\n{}document as stored:\n",
            problems_text(&path, &current.stored.text, problems)
        )),
    }
    text.push_str(&current.stored.text);
    Ok(Report::new(json, text))
}

/// Every revision, oldest first, the one in force last.
pub async fn history(op: &Operator, of: &RuleOf) -> Result<Report> {
    let env = op.backends().env;
    let revisions = op
        .rule_revisions(&of.appkey, &of.service)
        .await
        .with_context(|| format!("cannot read the rule history of {}", of.name()))?;
    let json = json!({
        "env": env.as_str(),
        "appkey": of.appkey,
        "service": of.service,
        "revisions": revisions.iter().map(|r| json!({
            "revision": r.revision(),
            "version": r.stored.version,
            "current": r.current,
            "valid": r.rule.is_ok(),
            "summary": revision_summary(r),
            "text": r.stored.text,
        })).collect::<Vec<_>>(),
    });
    if revisions.is_empty() {
        return Ok(Report::new(json, format!("{} has no rule in env {env}", of.name())));
    }
    let mut table = Table::new(&[
        ("REVISION", Align::Right),
        ("STORE VERSION", Align::Right),
        ("IN FORCE", Align::Left),
        ("SUMMARY", Align::Left),
    ]);
    for r in &revisions {
        table.row(vec![
            r.revision().map_or_else(|| "-".to_owned(), |n| n.to_string()),
            r.stored.version.to_string(),
            if r.current { "yes".to_owned() } else { String::new() },
            revision_summary(r),
        ]);
    }
    Ok(Report::new(json, format!("rule of {} in env {env}, oldest first:\n{}", of.name(), table.render())))
}

/// Checks `file` as `probe rules set` would, writing nothing.
pub async fn validate(op: &Operator, of: &RuleOf, file: &RuleFile) -> Result<Judged> {
    let rule = match op.check_rule(&of.appkey, &of.service, &file.text).await {
        Ok(rule) => rule,
        Err(OperatorError::RuleRefused { problems, .. }) => {
            return Ok(Err(refused(op, of, file, &problems, "`probe rules set` would refuse it")));
        }
        Err(err) => return Err(err).with_context(|| format!("cannot check the rule for {}", of.name())),
    };
    let json = json!({
        "ok": true,
        "env": op.backends().env.as_str(),
        "appkey": of.appkey,
        "service": of.service,
        "file": file.label,
        "summary": summary(&rule),
        "problems": [],
    });
    Ok(Ok(Report::new(
        json,
        format!("ok: {} is a valid rule for {}: {}", file.label, of.name(), summary(&rule)),
    )))
}

/// Stores `file` as the next revision.
pub async fn set(op: &Operator, of: &RuleOf, file: &RuleFile) -> Result<Judged> {
    match op.set_rule(&of.appkey, &of.service, &file.text).await {
        Ok(change) => Ok(Ok(change_report(op, &change, "set"))),
        Err(OperatorError::RuleRefused { problems, .. }) => {
            Ok(Err(refused(op, of, file, &problems, "the rule was not set")))
        }
        Err(err) => Err(err).with_context(|| format!("cannot set the rule of {}", of.name())),
    }
}

/// Stores an earlier revision's document as the next revision.
pub async fn rollback(op: &Operator, of: &RuleOf, revision: u64) -> Result<Report> {
    let change = op
        .rollback_rule(&of.appkey, &of.service, revision)
        .await
        .with_context(|| format!("cannot roll the rule of {} back to revision {revision}", of.name()))?;
    Ok(change_report(op, &change, "rolled back"))
}

/// What a set or rollback wrote, with warnings for versions no live node declares and a change the
/// audit log missed.
fn change_report(op: &Operator, change: &RuleChange, done: &str) -> Report {
    let env = op.backends().env;
    let name = format!("{}/{}", change.appkey, change.service);
    let rule = &change.rule;
    let what = match change.from {
        Some(from) => format!("rule of {name} {done} to revision {from}: now revision {}", rule.revision),
        None => format!("rule of {name} {done}: revision {}", rule.revision),
    };
    let replaced = match &change.before {
        Some(before) => format!(", replacing {}", revision_text(before)),
        None => String::new(),
    };
    let text = format!(
        "{what} (store version {}) in env {env}{replaced}; clients apply it when their watch fires\n{}",
        change.version,
        summary(rule)
    );
    let json = json!({
        "env": env.as_str(),
        "appkey": change.appkey,
        "service": change.service,
        "revision": rule.revision,
        "version": change.version,
        "from_revision": change.from,
        "before_revision": change.before.as_ref().and_then(RuleRevision::revision),
        "before_version": change.before.as_ref().map(|b| b.stored.version),
        "summary": summary(rule),
        "rule": rule,
        "unknown_versions": problems_json(&change.unknown_versions),
        "audited": change.audit.is_ok(),
        "audit_error": change.audit.as_ref().err().map(ToString::to_string),
    });
    let mut report = Report::new(json, text);
    for problem in &change.unknown_versions {
        report = report.with_warning(format!("{}: {}", problem.at, problem.message));
    }
    if let Err(err) = &change.audit {
        report = report.with_warning(format!("the change was applied but not audited: {err}"));
    }
    report
}
