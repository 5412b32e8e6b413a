//! `POST /api/rules/{appkey}/{service}/preview`: the share of calls each live node of the service
//! gets now and under a document, for a caller with the given tags whose calls carry the given
//! headers. The shares come from [`rules::preview`]: [`DRAWS`] seeded draws through the selection
//! clients run (as `probe rules preview` prints them), computed off the async threads.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use probe_runtime::balance::Endpoint;
use probe_runtime::registry::layout::NodeData;
use probe_runtime::registry::{Backends, Operator, OperatorError, RegisteredNode};
use probe_runtime::rules::{self, Rule, Tags};
use probe_runtime::transport::header::Headers;
use serde::{Deserialize, Serialize};

use super::problems::{Problem, locate};
use super::view::RuleNodeJson;
use super::{RuleOf, checked_text, open, refused};
use crate::cli::rules::{DRAWS, summary};
use crate::console::api::EnvQuery;
use crate::console::error::{ApiError, ApiResult, Body};
use crate::console::state::ConsoleState;

/// The most caller tags, and the most headers, a preview takes.
pub const MAX_PAIRS: usize = 32;

/// The live nodes of the service, sorted by id.
pub(super) async fn live_nodes(
    backends: &Backends,
    of: &RuleOf,
) -> Result<Vec<RegisteredNode>, OperatorError> {
    let mut nodes = backends.registry.nodes(backends.env, &of.appkey).await?;
    nodes.retain(|n| n.key.service() == of.service);
    nodes.sort_by_key(|n| n.key.zk_child());
    Ok(nodes)
}

/// `POST .../preview` body.
#[derive(Debug, Deserialize)]
pub struct PreviewRequest {
    /// The rule document to preview.
    pub text: String,
    /// The caller's tags (`{"zone": "eu-1"}`).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The metadata headers of its calls (`{"canary": "1"}`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// A live node with its shares.
#[derive(Debug, Serialize)]
pub struct SharedNode {
    /// The node.
    #[serde(flatten)]
    pub node: RuleNodeJson,
    /// Its share of the calls (0 to 1) under the rule in force.
    pub now: f64,
    /// Its share under the document.
    pub new: f64,
}

/// `POST .../preview` answer.
#[derive(Debug, Serialize)]
pub struct Previewed {
    /// Simulated calls per rule.
    pub draws: usize,
    /// The revision in force (`None`: no rule, or one that is not valid).
    pub current_revision: Option<u64>,
    /// Whether the document in force is a valid rule (or there is none); when it is not, `now`
    /// assumes no rule.
    pub current_valid: bool,
    /// The previewed rule on one line.
    pub summary: String,
    /// The live nodes, sorted by id, with their shares.
    pub nodes: Vec<SharedNode>,
    /// What `apply` would still refuse (versions no live node declares), located.
    pub problems: Vec<Problem>,
}

/// Checks the number of `pairs` of `what`.
fn few(pairs: &BTreeMap<String, String>, what: &str) -> ApiResult<()> {
    if pairs.len() > MAX_PAIRS {
        return Err(ApiError::bad_request(format!("at most {MAX_PAIRS} {what} (got {})", pairs.len())));
    }
    Ok(())
}

/// `POST /api/rules/{appkey}/{service}/preview {text, tags, headers}`: each live node's share now
/// and under `text`; 422 with the located problems of a document that is not a rule.
pub async fn preview(
    State(state): State<ConsoleState>,
    Path(of): Path<RuleOf>,
    query: Result<Query<EnvQuery>, QueryRejection>,
    Body(request): Body<PreviewRequest>,
) -> ApiResult<Json<Previewed>> {
    let backends = open(&state, &of, query)?;
    let text = checked_text(&request.text)?;
    few(&request.tags, "caller tags")?;
    few(&request.headers, "headers")?;
    let rule = Rule::parse(text).map_err(|problems| refused(&of, text, &problems, "nothing to preview"))?;
    let op = Operator::new(backends.clone());
    let (revisions, nodes) =
        tokio::try_join!(op.rule_revisions(&of.appkey, &of.service), live_nodes(&backends, &of))?;
    let current = revisions.last();
    let now = current.and_then(|r| r.rule.as_ref().ok()).cloned();
    let data: Vec<NodeData> = nodes.iter().map(|n| n.data.clone()).collect();
    let problems = locate(text, &rule.check_against(&data));
    let summary = summary(&rule);
    let PreviewRequest { tags, headers, .. } = request;
    let shares = tokio::task::spawn_blocking(move || {
        let endpoints: Vec<Endpoint> =
            nodes.iter().map(|n| Endpoint::from_node(n.key.zk_child(), &n.data)).collect();
        let tags: Tags = tags;
        let headers = (!headers.is_empty()).then(|| headers.into_iter().collect::<Headers>());
        let shares_now = rules::preview(&endpoints, &data, now.as_ref(), headers.as_ref(), &tags, DRAWS);
        let shares_new = rules::preview(&endpoints, &data, Some(&rule), headers.as_ref(), &tags, DRAWS);
        nodes
            .iter()
            .zip(shares_now.into_iter().zip(shares_new))
            .map(|(node, (now, new))| SharedNode { node: RuleNodeJson::new(node), now, new })
            .collect()
    })
    .await
    .map_err(|err| {
        tracing::error!(error = %err, "console: the preview failed");
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "the preview failed; see the console's log",
        )
    })?;
    Ok(Json(Previewed {
        draws: DRAWS,
        current_revision: current.and_then(|r| r.revision()),
        current_valid: current.is_none_or(|r| r.rule.is_ok()),
        summary,
        nodes: shares,
        problems,
    }))
}
