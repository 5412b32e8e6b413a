//! The JSON shapes of the rules API: the rule in force and its history, the service's live nodes,
//! and what its clients report they run.

use std::collections::BTreeMap;

use probe_runtime::registry::layout::NodeData;
use probe_runtime::registry::{ClientReport, RegisteredNode, RuleRevision};
use serde::Serialize;

use super::problems::{Problem, locate};
use crate::cli::rules::summary;

/// A stored revision on one line: the rule's summary, or its first problem.
fn revision_summary(revision: &RuleRevision) -> String {
    match &revision.rule {
        Ok(rule) => summary(rule),
        Err(problems) => match problems.first() {
            Some(first) => format!("not a valid rule: {first}"),
            None => "not a valid rule".to_owned(),
        },
    }
}

/// The document in force.
#[derive(Debug, Serialize)]
pub struct CurrentJson {
    /// Its revision; `None` when it is not a valid rule.
    pub revision: Option<u64>,
    /// Its store version: what `apply` expects, so a change made meanwhile is not overwritten.
    pub version: i32,
    /// The document as stored.
    pub text: String,
    /// Whether it is a valid rule (else clients keep the last valid one they read).
    pub valid: bool,
    /// The rule on one line, or its first problem.
    pub summary: String,
    /// Its problems, located in `text`; empty when it is valid.
    pub problems: Vec<Problem>,
}

impl From<&RuleRevision> for CurrentJson {
    fn from(r: &RuleRevision) -> Self {
        let problems = r.rule.as_ref().err().map(|p| locate(&r.stored.text, p)).unwrap_or_default();
        CurrentJson {
            revision: r.revision(),
            version: r.stored.version,
            text: r.stored.text.clone(),
            valid: r.rule.is_ok(),
            summary: revision_summary(r),
            problems,
        }
    }
}

/// One stored revision, as the history lists it.
#[derive(Debug, Serialize)]
pub struct RevisionJson {
    /// Its revision (what rollback names); `None` when it is not a valid rule.
    pub revision: Option<u64>,
    /// Its store version.
    pub version: i32,
    /// Whether it is the one in force.
    pub current: bool,
    /// Whether it is a valid rule.
    pub valid: bool,
    /// The rule on one line, or its first problem.
    pub summary: String,
    /// The document.
    pub text: String,
}

impl From<&RuleRevision> for RevisionJson {
    fn from(r: &RuleRevision) -> Self {
        RevisionJson {
            revision: r.revision(),
            version: r.stored.version,
            current: r.current,
            valid: r.rule.is_ok(),
            summary: revision_summary(r),
            text: r.stored.text.clone(),
        }
    }
}

/// A live node of the service, as rules see it.
#[derive(Debug, Serialize)]
pub struct RuleNodeJson {
    /// The ZooKeeper child name `service_ip_port`.
    pub id: String,
    /// The Redis field `appkey|env|service|ip|port`.
    pub node: String,
    /// The version it declares.
    pub version: Option<String>,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
    /// Its priority tier (0 when it declares none).
    pub tier: u8,
    /// Whether clients route calls to it (valid and weight > 0).
    pub in_rotation: bool,
}

impl RuleNodeJson {
    /// The node `id`/`node` with `data`.
    pub fn new(node: &RegisteredNode) -> Self {
        let data: &NodeData = &node.data;
        RuleNodeJson {
            id: node.key.zk_child(),
            node: node.key.redis_field(),
            version: data.version.clone(),
            tags: data.tags.clone(),
            tier: data.tier.unwrap_or(0),
            in_rotation: data.in_rotation(),
        }
    }
}

/// What one client reports it runs.
#[derive(Debug, Clone, Serialize)]
pub struct ClientJson {
    /// The client (`host:pid`).
    pub client: String,
    /// The rule revision its routes run (0: no rule).
    pub revision: u64,
    /// When it applied that revision, milliseconds since the Unix epoch (0: unknown).
    pub applied_at_ms: u64,
    /// Whether the stored document is bad to it (it runs its last good rule).
    pub problem: bool,
    /// When it reported, milliseconds since the Unix epoch.
    pub reported_at_ms: u64,
}

impl From<ClientReport> for ClientJson {
    fn from(r: ClientReport) -> Self {
        ClientJson {
            client: r.client,
            revision: r.revision,
            applied_at_ms: r.applied_at_ms,
            problem: r.problem,
            reported_at_ms: r.reported_at_ms,
        }
    }
}

/// The service's clients against the rule in force.
#[derive(Debug, Serialize)]
pub struct ClientsJson {
    /// The revision they should run: the one in force, 0 without a rule, `None` while the
    /// document in force is not a valid rule (clients keep their last valid one).
    pub revision: Option<u64>,
    /// Clients that reported in the last 30 s.
    pub total: usize,
    /// Of those, how many run `revision`.
    pub on_current: usize,
    /// The others.
    pub not_current: Vec<ClientJson>,
    /// Every current report, sorted by client.
    pub reports: Vec<ClientJson>,
}

impl ClientsJson {
    /// `reports` (of this service only) measured against `revision`.
    pub fn new(revision: Option<u64>, reports: Vec<ClientReport>) -> Self {
        let reports: Vec<ClientJson> = reports.into_iter().map(ClientJson::from).collect();
        let on = |c: &ClientJson| revision == Some(c.revision);
        let not_current: Vec<ClientJson> = reports.iter().filter(|c| !on(c)).cloned().collect();
        ClientsJson {
            revision,
            total: reports.len(),
            on_current: reports.len() - not_current.len(),
            not_current,
            reports,
        }
    }
}
