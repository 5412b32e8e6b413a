//! Traffic rules: one document per service, stored in the registry beside (not under) its nodes,
//! watched by clients and applied with the routing table.
//!
//! A rule says which nodes a call may go to, in three steps, each optional:
//!
//! 1. **version**: a header route (a call whose metadata header `header` equals `value` goes to
//!    nodes of `version`), else a split (each call picks a version by share, among versions that
//!    have healthy nodes);
//! 2. **tag affinity**: prefer nodes whose tag `tag` equals the caller's, unless they hold less than
//!    `min_share` of the healthy weight left after step 1;
//! 3. **priority tiers**: nodes declare tier 0 (primary), 1 or 2 (backups); calls go to the lowest
//!    tier while it is healthy enough and spill to the next in proportion as its health falls, as
//!    Envoy's priority levels do with an over-provisioning factor (default 1.4). Tiers apply to
//!    nodes that declare them even without a rule.
//!
//! ```json
//! {
//!   "revision": 4,
//!   "versions": [{ "version": "1.4.0", "share": 95 }, { "version": "2.0.0", "share": 5 }],
//!   "header_routes": [{ "header": "canary", "value": "1", "version": "2.0.0" }],
//!   "affinity": { "tag": "zone", "min_share": 0.5 },
//!   "tiers": { "overprovisioning": 1.4 }
//! }
//! ```
//!
//! `revision` is set by whoever stores the rule (the CLI and console count up); the rest is
//! checked by [`Rule::parse`], which names where a problem is (`line:column` for JSON, a JSON
//! pointer such as `/versions/1/share` for a bad value). [`Rule::check_against`] adds what only
//! the live nodes can tell (a version no node has).

mod select;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use select::{Selection, preview, select};

use crate::registry::layout::NodeData;

/// The highest tier a node may declare: 0 primary, 1 and 2 backups.
pub const MAX_TIER: u8 = 2;

/// Envoy's default over-provisioning factor: a tier takes all calls while 1/1.4 (71%) of it is
/// healthy.
pub const DEFAULT_OVERPROVISIONING: f64 = 1.4;

/// One service's traffic rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Counts up with every change; set by the store.
    #[serde(default)]
    pub revision: u64,
    /// Shares of calls per version (summing to 100).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<VersionShare>,
    /// Calls whose metadata carries a header value go to one version; the first that matches wins.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub header_routes: Vec<HeaderRoute>,
    /// Prefer nodes tagged like the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// How tiers share calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tiers: Option<Tiers>,
}

/// A version's share of the calls, in percent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionShare {
    /// The version nodes declare.
    pub version: String,
    /// Percent of calls (0 to 100; the shares sum to 100).
    pub share: f64,
}

/// A route by call metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderRoute {
    /// The metadata header (THeader info key), e.g. `canary`.
    pub header: String,
    /// The value that selects the route.
    pub value: String,
    /// Where matching calls go.
    pub version: String,
}

/// Tag affinity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Affinity {
    /// The tag compared with the caller's, e.g. `zone`.
    pub tag: String,
    /// The least share (0 to 1) of the healthy weight the matching nodes must hold to take all
    /// calls; below it, calls go to every node. Default 0.5.
    #[serde(default = "half")]
    pub min_share: f64,
}

fn half() -> f64 {
    0.5
}

/// Tier settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tiers {
    /// How much spare capacity a tier is assumed to have: a tier takes every call while this
    /// factor times its healthy share is at least 1. Default 1.4; at least 1.
    #[serde(default = "overprovisioning")]
    pub overprovisioning: f64,
    /// The tiers that may take calls, if not all (nodes of other tiers get none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only: Option<Vec<u8>>,
}

fn overprovisioning() -> f64 {
    DEFAULT_OVERPROVISIONING
}

impl Default for Tiers {
    fn default() -> Self {
        Tiers { overprovisioning: DEFAULT_OVERPROVISIONING, only: None }
    }
}

/// What is wrong with a rule, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct RuleError {
    /// `line L, column C` for JSON that does not parse, else a JSON pointer (`/versions/1/share`).
    pub at: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl RuleError {
    fn at(pointer: impl Into<String>, message: impl Into<String>) -> RuleError {
        let pointer = pointer.into();
        RuleError { at: if pointer.is_empty() { "/".to_owned() } else { pointer }, message: message.into() }
    }
}

impl Rule {
    /// Reads and checks a rule document: every problem found, in document order.
    pub fn parse(text: &str) -> Result<Rule, Vec<RuleError>> {
        let rule: Rule = serde_json::from_str(text).map_err(|e| {
            let at = format!("line {}, column {}", e.line(), e.column());
            vec![RuleError { at, message: format!("{e}") }]
        })?;
        let problems = rule.problems();
        if problems.is_empty() { Ok(rule) } else { Err(problems) }
    }

    /// The document text (pretty JSON), as stored.
    pub fn to_text(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The problems of a rule that parsed.
    fn problems(&self) -> Vec<RuleError> {
        let mut out = Vec::new();
        let mut seen = Vec::new();
        for (i, v) in self.versions.iter().enumerate() {
            if v.version.trim().is_empty() {
                out.push(RuleError::at(format!("/versions/{i}/version"), "a version must not be empty"));
            }
            if seen.contains(&&v.version) {
                out.push(RuleError::at(
                    format!("/versions/{i}/version"),
                    format!("version {:?} is listed twice", v.version),
                ));
            }
            seen.push(&v.version);
            if !(0.0..=100.0).contains(&v.share) {
                out.push(RuleError::at(
                    format!("/versions/{i}/share"),
                    format!("share {} is not between 0 and 100", v.share),
                ));
            }
        }
        if !self.versions.is_empty() {
            let sum: f64 = self.versions.iter().map(|v| v.share).sum();
            if (sum - 100.0).abs() > 1e-6 {
                out.push(RuleError::at("/versions", format!("the shares sum to {sum}, not 100")));
            }
        }
        for (i, r) in self.header_routes.iter().enumerate() {
            if r.header.trim().is_empty() {
                out.push(RuleError::at(
                    format!("/header_routes/{i}/header"),
                    "a header name must not be empty",
                ));
            }
            if r.version.trim().is_empty() {
                out.push(RuleError::at(format!("/header_routes/{i}/version"), "a version must not be empty"));
            }
        }
        if let Some(a) = &self.affinity {
            if a.tag.trim().is_empty() {
                out.push(RuleError::at("/affinity/tag", "a tag name must not be empty"));
            }
            if !(0.0..=1.0).contains(&a.min_share) {
                out.push(RuleError::at(
                    "/affinity/min_share",
                    format!("min_share {} is not between 0 and 1", a.min_share),
                ));
            }
        }
        if let Some(t) = &self.tiers {
            if !(1.0..=10.0).contains(&t.overprovisioning) {
                out.push(RuleError::at(
                    "/tiers/overprovisioning",
                    format!("overprovisioning {} is not between 1 and 10", t.overprovisioning),
                ));
            }
            for (i, tier) in t.only.iter().flatten().enumerate() {
                if *tier > MAX_TIER {
                    out.push(RuleError::at(
                        format!("/tiers/only/{i}"),
                        format!("unknown tier {tier}: tiers are 0 (primary), 1 and 2 (backups)"),
                    ));
                }
            }
        }
        out
    }

    /// What only the live nodes tell: versions the rule names that no node of the service has.
    pub fn check_against<'a>(&self, nodes: impl IntoIterator<Item = &'a NodeData>) -> Vec<RuleError> {
        let live: Vec<&str> = nodes.into_iter().filter_map(|n| n.version.as_deref()).collect();
        let unknown = |v: &str| !live.contains(&v);
        let mut out = Vec::new();
        for (i, v) in self.versions.iter().enumerate() {
            if v.share > 0.0 && unknown(&v.version) {
                out.push(RuleError::at(
                    format!("/versions/{i}/version"),
                    format!(
                        "unknown version {:?}: no node of the service declares it (live: {})",
                        v.version,
                        listed(&live)
                    ),
                ));
            }
        }
        for (i, r) in self.header_routes.iter().enumerate() {
            if unknown(&r.version) {
                out.push(RuleError::at(
                    format!("/header_routes/{i}/version"),
                    format!(
                        "unknown version {:?}: no node of the service declares it (live: {})",
                        r.version,
                        listed(&live)
                    ),
                ));
            }
        }
        out
    }

    /// The over-provisioning factor tiers use.
    pub fn overprovisioning(&self) -> f64 {
        self.tiers.as_ref().map_or(DEFAULT_OVERPROVISIONING, |t| t.overprovisioning)
    }
}

fn listed(live: &[&str]) -> String {
    let mut distinct: Vec<&str> = live.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.is_empty() { "none".to_owned() } else { distinct.join(", ") }
}

/// The tags a caller (client) declares, compared with nodes' by [`Affinity`].
pub type Tags = BTreeMap<String, String>;

/// One line per problem, for operators.
pub fn describe(problems: &[RuleError]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_rule_parses_and_prints_back() {
        let text = r#"{
            "revision": 4,
            "versions": [{"version": "1.4.0", "share": 95}, {"version": "2.0.0", "share": 5}],
            "header_routes": [{"header": "canary", "value": "1", "version": "2.0.0"}],
            "affinity": {"tag": "zone"},
            "tiers": {"overprovisioning": 1.2, "only": [0, 1]}
        }"#;
        let rule = Rule::parse(text).unwrap();
        assert_eq!(rule.revision, 4);
        assert_eq!(rule.affinity.as_ref().unwrap().min_share, 0.5);
        assert_eq!(Rule::parse(&rule.to_text()).unwrap(), rule);
        assert_eq!(Rule::parse("{}").unwrap(), Rule::default());
    }

    #[test]
    fn bad_rules_say_where() {
        let e = Rule::parse("{\n  \"versions\": [\n    {\"version\": \"1\", \"share\": 50},\n  ]\n}")
            .unwrap_err();
        assert!(e[0].at.starts_with("line 4"), "{e:?}");
        let e =
            Rule::parse(r#"{"versions": [{"version": "1", "share": 50}, {"version": "2", "share": 40}]}"#)
                .unwrap_err();
        assert_eq!(describe(&e), "/versions: the shares sum to 90, not 100");
        let e = Rule::parse(r#"{"tiers": {"only": [0, 3]}}"#).unwrap_err();
        assert_eq!(e[0].at, "/tiers/only/1");
        assert!(e[0].message.contains("unknown tier 3"));
        let e = Rule::parse(r#"{"version": []}"#).unwrap_err();
        assert!(e[0].message.contains("unknown field `version`"), "{e:?}");
        let e = Rule::parse(r#"{"affinity": {"tag": "", "min_share": 2}}"#).unwrap_err();
        assert_eq!(
            e.iter().map(|e| e.at.as_str()).collect::<Vec<_>>(),
            ["/affinity/tag", "/affinity/min_share"]
        );
    }

    #[test]
    fn versions_no_node_has_are_unknown() {
        let rule = Rule::parse(
            r#"{"versions": [{"version": "1", "share": 100}, {"version": "3", "share": 0}],
            "header_routes": [{"header": "canary", "value": "1", "version": "2"}]}"#,
        )
        .unwrap();
        let mut node = NodeData::new("10.0.0.1", 1);
        node.version = Some("1".into());
        let problems = rule.check_against([&node]);
        assert_eq!(problems.len(), 1, "a version with share 0 may be absent: {problems:?}");
        assert_eq!(problems[0].at, "/header_routes/0/version");
        assert!(
            problems[0].message.contains("unknown version \"2\"") && problems[0].message.contains("live: 1")
        );
    }
}
