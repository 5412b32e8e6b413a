//! Traffic rules ([`probe_runtime::rules`]) of one service: the rule in force with its history,
//! the live nodes and what the clients run; checking a document (problems located at a line and
//! column), previewing it against the live nodes, applying it and rolling back. Changes go through
//! [`Operator::set_rule`] and [`Operator::rollback_rule`]: checked, counted up, written with
//! compare-and-set and audited under the caller's name.
//!
//! `apply` also takes the store version the editor started from: when the rule changed since, it
//! answers 409 instead of overwriting what another operator wrote.

mod preview;
mod problems;
mod view;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use probe_runtime::registry::layout::{check_appkey, check_service_name};
use probe_runtime::registry::{Backends, Operator, OperatorError, RuleChange, RuleRevision};
use probe_runtime::rules::RuleError;
use serde::{Deserialize, Serialize};

use super::EnvQuery;
use crate::cli::rules::summary;
use crate::console::auth::{Admin, Caller};
use crate::console::error::{ApiError, ApiResult, Body};
use crate::console::state::ConsoleState;

pub use preview::preview;
pub use problems::{Problem, locate, pointer_position};
pub use view::{ClientJson, ClientsJson, CurrentJson, RevisionJson, RuleNodeJson};

/// The longest rule document accepted, in bytes (a rule is a few hundred).
pub const MAX_RULE_TEXT: usize = 64 * 1024;

/// The `{appkey}/{service}` of a rule's routes, checked.
#[derive(Debug, Deserialize)]
pub struct RuleOf {
    /// The app.
    pub appkey: String,
    /// The Thrift service.
    pub service: String,
}

impl RuleOf {
    /// `appkey/service`.
    fn name(&self) -> String {
        format!("{}/{}", self.appkey, self.service)
    }
}

/// The backends of the asked env, after checking the names.
fn open(
    state: &ConsoleState,
    of: &RuleOf,
    query: Result<Query<EnvQuery>, QueryRejection>,
) -> ApiResult<Backends> {
    check_appkey(&of.appkey)?;
    check_service_name(&of.service)?;
    let Query(query) = query?;
    query.backends(state)
}

/// A document from a request body, if it is not too long.
fn checked_text(text: &str) -> ApiResult<&str> {
    if text.len() > MAX_RULE_TEXT {
        return Err(ApiError::bad_request(format!(
            "the rule document is {} bytes; at most {MAX_RULE_TEXT} are accepted",
            text.len()
        )));
    }
    Ok(text)
}

/// The 422 of a document refused for `problems`, located in `text`.
fn refused(of: &RuleOf, text: &str, problems: &[RuleError], consequence: &str) -> ApiError {
    let located = locate(text, problems);
    let message = format!("{} problem(s) in the rule for {}; {consequence}", located.len(), of.name());
    ApiError::refused(message, serde_json::to_value(located).unwrap_or_default())
}

/// `GET /api/rules/{appkey}/{service}` answer.
#[derive(Debug, Serialize)]
pub struct RuleView {
    /// The env.
    pub env: String,
    /// The app.
    pub appkey: String,
    /// The service.
    pub service: String,
    /// The document in force; `None` when the service has no rule.
    pub rule: Option<CurrentJson>,
    /// Every stored revision, oldest first, the one in force last.
    pub history: Vec<RevisionJson>,
    /// The service's live nodes, sorted by id.
    pub nodes: Vec<RuleNodeJson>,
    /// What its clients run; `None` when the metrics store could not be read.
    pub clients: Option<ClientsJson>,
}

/// `GET /api/rules/{appkey}/{service}?env=`: the rule in force, its history, the live nodes and
/// the clients' reports.
pub async fn show(
    State(state): State<ConsoleState>,
    Path(of): Path<RuleOf>,
    query: Result<Query<EnvQuery>, QueryRejection>,
) -> ApiResult<Json<RuleView>> {
    let backends = open(&state, &of, query)?;
    let env = backends.env;
    let op = Operator::new(backends.clone());
    let (revisions, nodes) =
        tokio::try_join!(op.rule_revisions(&of.appkey, &of.service), preview::live_nodes(&backends, &of))?;
    let current = revisions.last();
    // Client reports are an extra: a metrics store that fails leaves the view without them.
    let clients = match backends.metrics.client_reports(env).await {
        Ok(reports) => {
            let ours = reports.into_iter().filter(|r| r.appkey == of.appkey && r.service == of.service);
            let target = current.map_or(Some(0), RuleRevision::revision);
            Some(ClientsJson::new(target, ours.collect()))
        }
        Err(err) => {
            tracing::warn!(error = %err, "console: cannot read the client reports");
            None
        }
    };
    Ok(Json(RuleView {
        env: env.to_string(),
        rule: current.map(CurrentJson::from),
        history: revisions.iter().map(RevisionJson::from).collect(),
        nodes: nodes.iter().map(RuleNodeJson::new).collect(),
        clients,
        appkey: of.appkey,
        service: of.service,
    }))
}

/// A document to check or apply.
#[derive(Debug, Deserialize)]
pub struct Document {
    /// The rule document (JSON).
    pub text: String,
    /// For `apply`: the store version of the rule the document was edited from (`rule.version`
    /// of `GET`); absent or `null` when the service had no rule.
    #[serde(default)]
    pub expected_version: Option<i32>,
}

/// `POST .../validate` answer.
#[derive(Debug, Serialize)]
pub struct Validated {
    /// Whether `apply` would take the document.
    pub ok: bool,
    /// Every problem, located; empty when `ok`.
    pub problems: Vec<Problem>,
    /// The rule on one line, when `ok`.
    pub summary: Option<String>,
}

/// `POST /api/rules/{appkey}/{service}/validate {text}`: what `apply` would check (the document
/// and the versions of the live nodes), writing nothing; 200 with or without problems.
pub async fn validate(
    State(state): State<ConsoleState>,
    Path(of): Path<RuleOf>,
    query: Result<Query<EnvQuery>, QueryRejection>,
    Body(doc): Body<Document>,
) -> ApiResult<Json<Validated>> {
    let op = Operator::new(open(&state, &of, query)?);
    let text = checked_text(&doc.text)?;
    match op.check_rule(&of.appkey, &of.service, text).await {
        Ok(rule) => Ok(Json(Validated { ok: true, problems: Vec::new(), summary: Some(summary(&rule)) })),
        Err(OperatorError::RuleRefused { problems, .. }) => {
            Ok(Json(Validated { ok: false, problems: locate(text, &problems), summary: None }))
        }
        Err(err) => Err(err.into()),
    }
}

/// `apply` and `rollback` answer: what was written.
#[derive(Debug, Serialize)]
pub struct Applied {
    /// The new revision.
    pub revision: u64,
    /// Its store version (what the next `apply` expects).
    pub version: i32,
    /// For a rollback: the revision written again.
    pub from_revision: Option<u64>,
    /// The revision it replaced (`None`: no rule, or one that was not valid).
    pub before_revision: Option<u64>,
    /// The rule on one line.
    pub summary: String,
    /// For a rollback: versions it names that no live node declares (it was written anyway).
    pub unknown_versions: Vec<Problem>,
    /// Why the audit log did not record the change, which stands; left out when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_warning: Option<String>,
}

fn applied(caller: &Caller, action: &str, change: &RuleChange) -> Json<Applied> {
    tracing::info!(
        actor = %caller.actor,
        rule = %format_args!("{}/{}", change.appkey, change.service),
        action,
        revision = change.rule.revision,
        audited = change.audit.is_ok(),
        "console: rule changed"
    );
    let text = change.rule.to_text();
    Json(Applied {
        revision: change.rule.revision,
        version: change.version,
        from_revision: change.from,
        before_revision: change.before.as_ref().and_then(RuleRevision::revision),
        summary: summary(&change.rule),
        unknown_versions: locate(&text, &change.unknown_versions),
        audit_warning: change.audit.as_ref().err().map(|err| format!("applied but not audited: {err}")),
    })
}

/// The operator acting for `caller` on the asked env.
fn operator(backends: Backends, caller: &Caller) -> Operator {
    Operator::new(backends).with_actor(caller.actor.as_str())
}

/// `POST /api/rules/{appkey}/{service}/apply {text, expected_version}`: stores the document as the
/// next revision (audited `rule_set`); 422 with the located problems of a refused document, 409
/// when the rule is no longer at `expected_version`.
pub async fn apply(
    Admin(caller): Admin,
    State(state): State<ConsoleState>,
    Path(of): Path<RuleOf>,
    query: Result<Query<EnvQuery>, QueryRejection>,
    Body(doc): Body<Document>,
) -> ApiResult<Json<Applied>> {
    let op = operator(open(&state, &of, query)?, &caller);
    let text = checked_text(&doc.text)?;
    // A rule changed since the editor read it is refused here with what it is now; the write
    // below is a compare-and-set on the same version, so nothing between them is overwritten.
    let revisions = op.rule_revisions(&of.appkey, &of.service).await?;
    let now = revisions.last();
    if now.map(|r| r.stored.version) != doc.expected_version {
        let now = match now {
            None => "it has none now".to_owned(),
            Some(r) => match r.revision() {
                Some(revision) => {
                    format!("it is at revision {revision} (store version {}) now", r.stored.version)
                }
                None => format!("it is at store version {} (not a valid rule) now", r.stored.version),
            },
        };
        let was = match doc.expected_version {
            None => "no rule".to_owned(),
            Some(v) => format!("store version {v}"),
        };
        return Err(ApiError::conflict(format!(
            "the rule of {} changed since you read it ({was}); {now}: reload it, redo your edit and apply again",
            of.name()
        )));
    }
    // Written only while the rule is still at the version the editor read (compare-and-set).
    match op.set_rule_at(&of.appkey, &of.service, text, doc.expected_version).await {
        Ok(change) => Ok(applied(&caller, "rule_set", &change)),
        Err(OperatorError::RuleRefused { problems, .. }) => {
            Err(refused(&of, text, &problems, "the rule was not applied"))
        }
        Err(err) => Err(err.into()),
    }
}

/// `POST .../rollback` body.
#[derive(Debug, Deserialize)]
pub struct Rollback {
    /// The earlier revision whose document is written again.
    pub revision: u64,
}

/// `POST /api/rules/{appkey}/{service}/rollback {revision}`: writes an earlier revision's document
/// again as the next revision (audited `rule_rollback`); 404 for a revision never stored.
pub async fn rollback(
    Admin(caller): Admin,
    State(state): State<ConsoleState>,
    Path(of): Path<RuleOf>,
    query: Result<Query<EnvQuery>, QueryRejection>,
    Body(body): Body<Rollback>,
) -> ApiResult<Json<Applied>> {
    let op = operator(open(&state, &of, query)?, &caller);
    let change = op.rollback_rule(&of.appkey, &of.service, body.revision).await?;
    Ok(applied(&caller, "rule_rollback", &change))
}
