//! Caller policies: which apps may call a service on a node, stored in each node's data (field
//! `callers`) like its weight and limits, and changed live by operators:
//!
//! ```json
//! { "allow": ["order_app", "billing_app"], "unauthenticated": "count" }
//! ```
//!
//! - `allow`: the appkeys whose proven calls are served; without it, every proven caller is;
//! - `unauthenticated`: what happens to calls that prove no appkey (Python callers during a
//!   migration, or probe clients without `PROBE_APP_CREDENTIAL`): `allow` (the default), `count`
//!   (served, counted and logged with the caller's address), or `refuse`.
//!
//! A caller proves its appkey with a signed token ([`super::token`]) or a TLS client certificate
//! naming it. A token that fails to verify is always refused: the caller claims an identity it
//! cannot prove. A refusal is answered with a `TApplicationException` (type 0) saying why, and
//! counted and logged with the caller's address.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Map, Value};

use super::token::TokenError;
use crate::limits::LimitError;
use crate::registry::layout::check_appkey;

/// What happens to calls that prove no appkey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unauthenticated {
    /// Served.
    #[default]
    Allow,
    /// Served, counted and logged.
    Count,
    /// Refused.
    Refuse,
}

impl Unauthenticated {
    /// The document's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Unauthenticated::Allow => "allow",
            Unauthenticated::Count => "count",
            Unauthenticated::Refuse => "refuse",
        }
    }

    /// From the document's word.
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "allow" => Some(Unauthenticated::Allow),
            "count" => Some(Unauthenticated::Count),
            "refuse" => Some(Unauthenticated::Refuse),
            _ => None,
        }
    }
}

/// One service's caller policy on one node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallerPolicy {
    /// The appkeys served; `None`: every proven caller.
    pub allow: Option<BTreeSet<String>>,
    /// What happens to calls that prove no appkey.
    pub unauthenticated: Unauthenticated,
}

/// Who a call comes from, as far as the node can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller<'a> {
    /// The appkey was proven (token or certificate).
    Proven(&'a str),
    /// Nothing was proven; the appkey the call names in `probe-caller-appkey`, if any.
    Unproven(Option<&'a str>),
    /// A token came and failed to verify.
    BadToken(&'a TokenError),
    /// The token and the TLS client certificate name different apps.
    Conflicting {
        /// The certificate's appkey.
        certificate: &'a str,
        /// The token's appkey.
        token: &'a str,
    },
}

/// What a policy says of a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Served.
    Allowed,
    /// Served, but it proved no appkey and the policy counts such calls.
    Counted,
    /// Refused: the reason (a [`REFUSAL_REASONS`] label) and why, for the caller.
    Refused(&'static str, String),
}

/// The labels refusals are counted under.
pub const REFUSAL_REASONS: [&str; 3] = ["not_allowed", "unauthenticated", "bad_credential"];

impl CallerPolicy {
    /// Whether the policy lets every call through uncounted (as no policy does).
    pub fn is_open(&self) -> bool {
        self.allow.is_none() && self.unauthenticated == Unauthenticated::Allow
    }

    /// The verdict on a call from `caller` to `service`.
    pub fn judge(&self, caller: Caller<'_>, service: &str) -> Verdict {
        match caller {
            Caller::Proven(appkey) => match &self.allow {
                Some(allow) if !allow.contains(appkey) => Verdict::Refused(
                    "not_allowed",
                    format!(
                        "caller {appkey} is not on the allow-list of service {service}: an operator adds it \
                         with `probe callers set APPKEY {service} --add {appkey}`"
                    ),
                ),
                _ => Verdict::Allowed,
            },
            Caller::Unproven(claimed) => match self.unauthenticated {
                Unauthenticated::Allow => Verdict::Allowed,
                Unauthenticated::Count => Verdict::Counted,
                Unauthenticated::Refuse => {
                    let who = claimed
                        .map_or_else(|| "the caller".to_owned(), |a| format!("the caller (claiming {a})"));
                    Verdict::Refused(
                        "unauthenticated",
                        format!(
                            "service {service} serves only authenticated callers and {who} proved no \
                             appkey: set PROBE_APP_CREDENTIAL=appkey:secret (from `probe apps add`) on the \
                             caller, or use a TLS client certificate naming its appkey"
                        ),
                    )
                }
            },
            Caller::BadToken(error) => Verdict::Refused("bad_credential", error.to_string()),
            Caller::Conflicting { certificate, token } => Verdict::Refused(
                "bad_credential",
                format!("the TLS client certificate names {certificate} but the caller token names {token}"),
            ),
        }
    }

    /// Reads and checks a policy document: every problem found.
    ///
    /// # Errors
    /// The problems, each located by a JSON pointer (or line and column).
    pub fn parse(text: &str) -> Result<CallerPolicy, Vec<LimitError>> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            vec![LimitError {
                at: format!("line {}, column {}", e.line(), e.column()),
                message: e.to_string(),
            }]
        })?;
        CallerPolicy::from_json(&value)
    }

    /// Reads and checks a policy document already parsed as JSON.
    ///
    /// # Errors
    /// The problems, each located by a JSON pointer.
    pub fn from_json(value: &Value) -> Result<CallerPolicy, Vec<LimitError>> {
        let problem = |at: &str, message: String| LimitError { at: at.to_owned(), message };
        let Value::Object(fields) = value else {
            return Err(vec![problem("/", "a caller policy is a JSON object".into())]);
        };
        let mut problems = Vec::new();
        let mut policy = CallerPolicy::default();
        for (name, value) in fields {
            match name.as_str() {
                "allow" => match value {
                    Value::Array(items) => {
                        let mut allow = BTreeSet::new();
                        for (i, item) in items.iter().enumerate() {
                            let at = format!("/allow/{i}");
                            match item.as_str() {
                                Some(appkey) => match check_appkey(appkey) {
                                    Ok(()) if !allow.insert(appkey.to_owned()) => {
                                        problems.push(problem(&at, format!("{appkey} is listed twice")));
                                    }
                                    Ok(()) => {}
                                    Err(e) => problems.push(problem(&at, e.to_string())),
                                },
                                None => problems.push(problem(&at, "an appkey is a string".into())),
                            }
                        }
                        policy.allow = Some(allow);
                    }
                    _ => problems.push(problem("/allow", "a list of appkeys".into())),
                },
                "unauthenticated" => match value.as_str().and_then(Unauthenticated::parse) {
                    Some(u) => policy.unauthenticated = u,
                    None => problems.push(problem("/unauthenticated", "one of allow, count, refuse".into())),
                },
                other => problems.push(problem(
                    &format!("/{other}"),
                    "unknown field: a caller policy has `allow` and `unauthenticated`".into(),
                )),
            }
        }
        if problems.is_empty() { Ok(policy) } else { Err(problems) }
    }

    /// The policy as its document.
    pub fn to_json(&self) -> Value {
        let mut fields = Map::new();
        if let Some(allow) = &self.allow {
            fields.insert("allow".into(), allow.iter().cloned().map(Value::String).collect());
        }
        fields.insert("unauthenticated".into(), Value::String(self.unauthenticated.as_str().into()));
        Value::Object(fields)
    }
}

impl fmt::Display for CallerPolicy {
    /// `allow order_app, billing_app; unauthenticated count`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.allow {
            None => f.write_str("any proven caller")?,
            Some(allow) if allow.is_empty() => f.write_str("no caller")?,
            Some(allow) => write!(f, "allow {}", allow.iter().cloned().collect::<Vec<_>>().join(", "))?,
        }
        write!(f, "; unauthenticated {}", self.unauthenticated.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_round_trips_and_problems_are_located() {
        let policy =
            CallerPolicy::parse(r#"{"allow": ["b_app", "a_app"], "unauthenticated": "count"}"#).unwrap();
        assert_eq!(policy.to_string(), "allow a_app, b_app; unauthenticated count");
        assert_eq!(CallerPolicy::from_json(&policy.to_json()).unwrap(), policy);
        let problems =
            CallerPolicy::parse(r#"{"allow": ["a", "a", "bad-app", 3], "unauthenticated": "maybe", "x": 1}"#)
                .unwrap_err();
        let at: Vec<&str> = problems.iter().map(|p| p.at.as_str()).collect();
        assert_eq!(at, ["/allow/1", "/allow/2", "/allow/3", "/unauthenticated", "/x"]);
        assert!(CallerPolicy::parse("[").is_err());
    }

    #[test]
    fn verdicts() {
        let open = CallerPolicy::default();
        assert!(open.is_open());
        assert_eq!(open.judge(Caller::Unproven(None), "S"), Verdict::Allowed);
        let listed = CallerPolicy::parse(r#"{"allow": ["a_app"], "unauthenticated": "refuse"}"#).unwrap();
        assert_eq!(listed.judge(Caller::Proven("a_app"), "S"), Verdict::Allowed);
        let Verdict::Refused(reason, why) = listed.judge(Caller::Proven("b_app"), "S") else { panic!() };
        assert_eq!(reason, "not_allowed");
        assert!(why.contains("b_app") && why.contains("probe callers set APPKEY S --add b_app"), "{why}");
        let Verdict::Refused(reason, why) = listed.judge(Caller::Unproven(Some("c_app")), "S") else {
            panic!()
        };
        assert_eq!(reason, "unauthenticated");
        assert!(why.contains("claiming c_app") && why.contains("PROBE_APP_CREDENTIAL"), "{why}");
        let counting = CallerPolicy::parse(r#"{"unauthenticated": "count"}"#).unwrap();
        assert_eq!(counting.judge(Caller::Unproven(None), "S"), Verdict::Counted);
        let bad = TokenError::Malformed("x");
        assert!(matches!(open.judge(Caller::BadToken(&bad), "S"), Verdict::Refused("bad_credential", _)));
    }
}
