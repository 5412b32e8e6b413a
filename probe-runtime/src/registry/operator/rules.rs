//! Traffic rules as operators change them: checked against the live nodes, given the next
//! revision, written with compare-and-set on the version read (a writer who raced us gets
//! [`BackendError::Conflict`], nothing is overwritten) and recorded in the audit log as `rule_set`
//! or `rule_rollback` on `appkey/service`.
//!
//! Revisions count up from what is stored: one more than the document in force (its `revision`
//! when it parses, else its position in the history) and than any revision in the history, so
//! every revision is stored once and a rollback can name it.

use super::{AuditError, Operator, OperatorError};
use crate::registry::backend::{BackendError, StoredRule};
use crate::rules::{Rule, RuleError};

/// One stored document of a service's rule: as stored, and as read.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleRevision {
    /// The text and its store version.
    pub stored: StoredRule,
    /// The document as a rule, or every located problem (a document written by hand, or by a
    /// newer probe).
    pub rule: Result<Rule, Vec<RuleError>>,
    /// Whether it is the document in force (the last of [`Operator::rule_revisions`]).
    pub current: bool,
}

impl RuleRevision {
    /// The document's revision, when it parses.
    pub fn revision(&self) -> Option<u64> {
        self.rule.as_ref().ok().map(|rule| rule.revision)
    }
}

/// A rule written by [`Operator::set_rule`] or [`Operator::rollback_rule`].
#[derive(Debug, Clone, PartialEq)]
pub struct RuleChange {
    /// The app.
    pub appkey: String,
    /// The service.
    pub service: String,
    /// The document in force before: `None` when there was none.
    pub before: Option<RuleRevision>,
    /// The rule written, with its new revision.
    pub rule: Rule,
    /// Its store version.
    pub version: i32,
    /// For a rollback: the revision whose document was written again.
    pub from: Option<u64>,
    /// Versions the rule names that no live node declares. A set refuses them; a rollback writes
    /// the earlier document anyway (clients pass over a version without nodes) and reports them.
    pub unknown_versions: Vec<RuleError>,
    /// Whether the audit log recorded the change. An `Err` does not undo it.
    pub audit: Result<(), AuditError>,
}

/// Why a document is written.
#[derive(Debug, Clone, Copy)]
enum Origin {
    /// A new document.
    Set,
    /// An earlier revision, again.
    Rollback(u64),
}

/// The service whose rule is changed.
#[derive(Debug, Clone, Copy)]
struct Target<'a> {
    appkey: &'a str,
    service: &'a str,
}

impl Target<'_> {
    /// `appkey/service`, as errors and the audit log name it.
    fn name(self) -> String {
        format!("{}/{}", self.appkey, self.service)
    }
}

/// The revision the next write gets: one more than the current document's (its position when it
/// does not parse) and than every revision in the history.
fn next_revision(revisions: &[RuleRevision]) -> u64 {
    let Some(current) = revisions.last() else { return 1 };
    // Without a readable revision, the current document counts as the history's length + 1.
    let base = current.revision().unwrap_or(revisions.len() as u64);
    let highest = revisions.iter().filter_map(RuleRevision::revision).max().unwrap_or(0);
    base.max(highest).saturating_add(1)
}

impl Operator {
    /// Every stored document of the rule of `service` of `appkey` in this env, oldest first, the
    /// one in force last; empty when there is none.
    pub async fn rule_revisions(
        &self,
        appkey: &str,
        service: &str,
    ) -> Result<Vec<RuleRevision>, OperatorError> {
        let (env, registry) = (self.backends.env, &self.backends.registry);
        let Some(current) = registry.read_rule(env, appkey, service).await? else { return Ok(Vec::new()) };
        let history = registry.rule_history(env, appkey, service).await?;
        let read = |stored: StoredRule, current: bool| RuleRevision {
            rule: Rule::parse(&stored.text),
            stored,
            current,
        };
        let mut revisions: Vec<RuleRevision> = history.into_iter().map(|s| read(s, false)).collect();
        revisions.push(read(current, true));
        Ok(revisions)
    }

    /// What [`Operator::set_rule`] checks, without writing: the document parses and has no
    /// problem, and every version it sends calls to is declared by a live node of the service.
    ///
    /// # Errors
    /// [`OperatorError::RuleRefused`] with every located problem; a backend's error.
    pub async fn check_rule(&self, appkey: &str, service: &str, text: &str) -> Result<Rule, OperatorError> {
        let target = Target { appkey, service };
        let refused = |problems| OperatorError::RuleRefused { target: target.name(), problems };
        let rule = Rule::parse(text).map_err(refused)?;
        let unknown = self.unknown_versions(target, &rule).await?;
        if unknown.is_empty() { Ok(rule) } else { Err(refused(unknown)) }
    }

    /// Sets the rule of `service` of `appkey` in this env to the document `text` (its `revision`
    /// is replaced by the next one), if [`Operator::check_rule`] finds no problem, then records
    /// `rule_set` in the audit log.
    ///
    /// # Errors
    /// [`OperatorError::RuleRefused`]; [`BackendError::Conflict`] when someone changed the rule
    /// between our read and our write (nothing was written: read it again and retry).
    pub async fn set_rule(
        &self,
        appkey: &str,
        service: &str,
        text: &str,
    ) -> Result<RuleChange, OperatorError> {
        let rule = self.check_rule(appkey, service, text).await?;
        let revisions = self.rule_revisions(appkey, service).await?;
        self.store_rule(Target { appkey, service }, rule, revisions, Origin::Set, Vec::new()).await
    }

    /// [`Operator::set_rule`] for an editor that read the rule at store version `expected`
    /// (`None`: there was none): refused with [`BackendError::Conflict`], writing nothing, unless
    /// the rule is still at that version when written (compare-and-set on it).
    ///
    /// # Errors
    /// As [`Operator::set_rule`].
    pub async fn set_rule_at(
        &self,
        appkey: &str,
        service: &str,
        text: &str,
        expected: Option<i32>,
    ) -> Result<RuleChange, OperatorError> {
        let rule = self.check_rule(appkey, service, text).await?;
        let revisions = self.rule_revisions(appkey, service).await?;
        let now = revisions.last().map(|r| r.stored.version);
        if now != expected {
            return Err(BackendError::rule_conflict(appkey, service, expected, now).into());
        }
        self.store_rule(Target { appkey, service }, rule, revisions, Origin::Set, Vec::new()).await
    }

    /// Writes the document of an earlier `revision` (from the history, or the one in force) again
    /// as the next revision, then records `rule_rollback` in the audit log. Versions it names that
    /// no live node declares do not stop it: they are in [`RuleChange::unknown_versions`].
    ///
    /// # Errors
    /// [`OperatorError::UnknownRevision`]; [`BackendError::Conflict`] as for
    /// [`Operator::set_rule`].
    pub async fn rollback_rule(
        &self,
        appkey: &str,
        service: &str,
        revision: u64,
    ) -> Result<RuleChange, OperatorError> {
        let target = Target { appkey, service };
        let revisions = self.rule_revisions(appkey, service).await?;
        let earlier = revisions
            .iter()
            .rev()
            .find_map(|r| r.rule.as_ref().ok().filter(|rule| rule.revision == revision))
            .cloned();
        let Some(rule) = earlier else {
            let known = revisions.iter().filter_map(RuleRevision::revision).collect();
            return Err(OperatorError::UnknownRevision { target: target.name(), revision, known });
        };
        let unknown = self.unknown_versions(target, &rule).await?;
        self.store_rule(target, rule, revisions, Origin::Rollback(revision), unknown).await
    }

    /// Versions `rule` names that no live node of the target declares.
    async fn unknown_versions(
        &self,
        target: Target<'_>,
        rule: &Rule,
    ) -> Result<Vec<RuleError>, BackendError> {
        let nodes = self.backends.registry.nodes(self.backends.env, target.appkey).await?;
        Ok(rule.check_against(nodes.iter().filter(|n| n.key.service() == target.service).map(|n| &n.data)))
    }

    /// Writes `rule` as the revision after `revisions` if the document in force is still the last
    /// of them, then audits it.
    async fn store_rule(
        &self,
        target: Target<'_>,
        mut rule: Rule,
        mut revisions: Vec<RuleRevision>,
        origin: Origin,
        unknown_versions: Vec<RuleError>,
    ) -> Result<RuleChange, OperatorError> {
        rule.revision = next_revision(&revisions);
        let before = revisions.pop();
        let expected = before.as_ref().map(|b| b.stored.version);
        let text = rule.to_text();
        let registry = &self.backends.registry;
        let version =
            registry.write_rule(self.backends.env, target.appkey, target.service, &text, expected).await?;
        // Written: from here on nothing turns it into a failure.
        let was = match &before {
            None => String::new(),
            Some(b) => match b.revision() {
                Some(revision) => format!("revision {revision}"),
                None => format!("store version {} (not a valid rule)", b.stored.version),
            },
        };
        let (action, from, now) = match origin {
            Origin::Set => ("rule_set", None, format!("revision {}", rule.revision)),
            Origin::Rollback(from) => {
                ("rule_rollback", Some(from), format!("revision {} (revision {from} again)", rule.revision))
            }
        };
        let audit = self.audit(action, &target.name(), was, now).await;
        Ok(RuleChange {
            appkey: target.appkey.to_owned(),
            service: target.service.to_owned(),
            before,
            rule,
            version,
            from,
            unknown_versions,
            audit,
        })
    }
}

#[cfg(test)]
mod tests;
