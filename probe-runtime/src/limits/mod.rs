//! Request limits: what a provider node lets in, per service and per method, set live by
//! operators.
//!
//! A node's limits are a JSON object in its node data (field `limits`), stored like its weight:
//! the settings store first, so a restarted provider keeps them, then the live ZooKeeper node, so
//! the provider's own watch applies them at once. Python clients ignore the field.
//!
//! ```json
//! {
//!   "qps": 1000, "burst": 50,
//!   "concurrency": 64,
//!   "adaptive": { "min": 4, "max": 512 },
//!   "connections": 10000,
//!   "methods": { "echo": { "qps": 200, "concurrency": 8 } }
//! }
//! ```
//!
//! - `qps`: a token bucket (GCRA) of `qps` calls per second that lets `burst` calls through at
//!   once (default: 50 ms worth, at least 1);
//! - `concurrency`: calls of the service (or method) running at once;
//! - `adaptive`: a concurrency limit that follows measured latency (TCP Vegas' estimate of the
//!   queue from latency over the no-load latency, as in Netflix's concurrency-limits), between
//!   `min` and `max`, starting at 20; with `concurrency` set too, the smaller of the two applies;
//! - `connections`: connections the node's port accepts (the smallest of its services' values);
//! - `methods`: the same `qps`, `burst` and `concurrency` for single methods, checked before the
//!   service's.
//!
//! A call over a limit is answered at once, before its arguments are decoded, with a
//! `TApplicationException` of type `LOADSHEDDING` (11) whose message names the limit. Under a
//! limit, calls are let in by priority (the caller's `probe-priority`): critical calls may use the
//! whole limit, normal ones 80% of it and sheddable ones 50% (of a concurrency limit, rounded to
//! whole calls; of a bucket's burst), so sheddable calls are refused first.
//!
//! [`RequestLimits::parse`] reads a document and names where each problem is (`line:column`, or a JSON
//! pointer such as `/methods/echo/qps`), sorted by field name; [`RequestLimits::check_methods`] adds
//! methods the service does not have.

pub(crate) mod gate;

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

pub use gate::{GateStats, PRIORITIES, REASONS, Refusal};

/// The share of a limit a call of each priority level may use: critical (0) all of it, normal
/// (1) 80%, sheddable (2 and above) 50%. `scripts/bench.sh overload` measured these under the
/// adaptive limit at 3x capacity with 20% critical calls: every critical call served, 83% of
/// sheddable ones refused (with 90% and 75%, 9% of critical calls were refused).
pub const PRIORITY_SHARES: [f64; 3] = [1.0, 0.8, 0.5];

/// The smallest adaptive limit by default.
pub const ADAPTIVE_MIN: u32 = 4;
/// The largest adaptive limit by default.
pub const ADAPTIVE_MAX: u32 = 1000;

/// One service's limits on one node.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct RequestLimits {
    /// Calls per second (token bucket).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "whole_if_whole")]
    pub qps: Option<f64>,
    /// Calls the bucket lets through at once; needs `qps`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// Calls running at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// A concurrency limit that adapts to latency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adaptive: Option<Adaptive>,
    /// Connections the node's port accepts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<u32>,
    /// RequestLimits of single methods, by the method's IDL name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub methods: BTreeMap<String, MethodLimits>,
}

/// One method's limits.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct MethodLimits {
    /// Calls per second (token bucket).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "whole_if_whole")]
    pub qps: Option<f64>,
    /// Calls the bucket lets through at once; needs `qps`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// Calls running at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
}

/// A rate as an operator wrote it: `100`, not `100.0`, when it is a whole number.
fn whole_if_whole<S: serde::Serializer>(qps: &Option<f64>, serializer: S) -> Result<S::Ok, S::Error> {
    match qps {
        Some(q) if q.fract() == 0.0 && *q <= 9_007_199_254_740_992.0 => serializer.serialize_u64(*q as u64),
        Some(q) => serializer.serialize_f64(*q),
        None => serializer.serialize_none(),
    }
}

/// The adaptive concurrency limit's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Adaptive {
    /// The limit never goes below this (default 4).
    pub min: u32,
    /// The limit never goes above this (default 1000).
    pub max: u32,
}

impl Default for Adaptive {
    fn default() -> Self {
        Adaptive { min: ADAPTIVE_MIN, max: ADAPTIVE_MAX }
    }
}

/// What is wrong with a limits document, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {message}")]
pub struct LimitError {
    /// `line L, column C` for JSON that does not parse, else a JSON pointer (`/methods/echo/qps`).
    pub at: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl LimitError {
    fn at(pointer: impl Into<String>, message: impl Into<String>) -> LimitError {
        let pointer = pointer.into();
        LimitError { at: if pointer.is_empty() { "/".to_owned() } else { pointer }, message: message.into() }
    }
}

/// One line per problem, for operators.
pub fn describe(problems: &[LimitError]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

impl RequestLimits {
    /// Reads and checks a limits document: every problem found, sorted by field name.
    pub fn parse(text: &str) -> Result<RequestLimits, Vec<LimitError>> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            vec![LimitError {
                at: format!("line {}, column {}", e.line(), e.column()),
                message: e.to_string(),
            }]
        })?;
        RequestLimits::from_json(&value)
    }

    /// Reads and checks a limits document already parsed as JSON.
    pub fn from_json(value: &Value) -> Result<RequestLimits, Vec<LimitError>> {
        let mut problems = Vec::new();
        let limits = read_limits(value, &mut problems);
        if problems.is_empty() { Ok(limits) } else { Err(problems) }
    }

    /// The document as JSON.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Whether the document limits nothing.
    pub fn is_empty(&self) -> bool {
        *self == RequestLimits::default()
    }

    /// Methods the document names that `methods` (the service's) does not have.
    pub fn check_methods(&self, service: &str, methods: &[&str]) -> Vec<LimitError> {
        self.methods
            .keys()
            .filter(|m| !methods.contains(&m.as_str()))
            .map(|m| {
                let known = if methods.is_empty() { "none".to_owned() } else { methods.join(", ") };
                LimitError::at(
                    format!("/methods/{m}"),
                    format!("unknown method {m:?}: service {service} has the methods {known}"),
                )
            })
            .collect()
    }

    /// The burst of a `qps` bucket given none: 50 ms worth, at least 1.
    pub fn default_burst(qps: f64) -> u32 {
        (qps / 20.0).ceil().clamp(1.0, f64::from(u32::MAX)) as u32
    }
}

impl fmt::Display for RequestLimits {
    /// Compact JSON, as stored: `{"qps":1000,"concurrency":64}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&serde_json::to_string(self).unwrap_or_default())
    }
}

/// Reads the fields of the document at `value`, pushing every problem.
fn read_limits(value: &Value, problems: &mut Vec<LimitError>) -> RequestLimits {
    let mut limits = RequestLimits::default();
    let Some(object) = as_object(value, "", problems) else { return limits };
    for (key, value) in object {
        let at = format!("/{key}");
        match key.as_str() {
            "qps" => limits.qps = read_qps(value, &at, problems),
            "burst" => limits.burst = read_count(value, &at, "burst", problems),
            "concurrency" => limits.concurrency = read_count(value, &at, "concurrency", problems),
            "connections" => limits.connections = read_count(value, &at, "connections", problems),
            "adaptive" => limits.adaptive = read_adaptive(value, problems),
            "methods" => {
                let Some(methods) = as_object(value, &at, problems) else { continue };
                for (name, value) in methods {
                    let at = format!("/methods/{name}");
                    if name.trim().is_empty() {
                        problems.push(LimitError::at(&at, "a method name must not be empty"));
                    }
                    let method = read_method(value, &at, problems);
                    limits.methods.insert(name.clone(), method);
                }
            }
            _ => problems.push(LimitError::at(
                &at,
                format!(
                    "unknown field {key:?}: a limits document has qps, burst, concurrency, adaptive, \
                     connections and methods"
                ),
            )),
        }
    }
    if limits.burst.is_some() && limits.qps.is_none() {
        problems.push(LimitError::at("/burst", "burst needs qps"));
    }
    limits
}

fn read_method(value: &Value, at: &str, problems: &mut Vec<LimitError>) -> MethodLimits {
    let mut method = MethodLimits::default();
    let known = problems.len();
    let Some(object) = as_object(value, at, problems) else { return method };
    for (key, value) in object {
        let field = format!("{at}/{key}");
        match key.as_str() {
            "qps" => method.qps = read_qps(value, &field, problems),
            "burst" => method.burst = read_count(value, &field, "burst", problems),
            "concurrency" => method.concurrency = read_count(value, &field, "concurrency", problems),
            _ => problems.push(LimitError::at(
                &field,
                format!("unknown field {key:?}: a method's limits are qps, burst and concurrency"),
            )),
        }
    }
    if method.burst.is_some() && method.qps.is_none() {
        problems.push(LimitError::at(format!("{at}/burst"), "burst needs qps"));
    }
    if method == MethodLimits::default() && problems.len() == known {
        problems.push(LimitError::at(at, "a method's limits must set qps or concurrency"));
    }
    method
}

fn read_adaptive(value: &Value, problems: &mut Vec<LimitError>) -> Option<Adaptive> {
    let mut adaptive = Adaptive::default();
    match value {
        Value::Bool(true) => return Some(adaptive),
        Value::Bool(false) | Value::Null => return None,
        _ => {}
    }
    let object = as_object(value, "/adaptive", problems)?;
    for (key, value) in object {
        let at = format!("/adaptive/{key}");
        match key.as_str() {
            "min" => adaptive.min = read_count(value, &at, "min", problems).unwrap_or(adaptive.min),
            "max" => adaptive.max = read_count(value, &at, "max", problems).unwrap_or(adaptive.max),
            _ => {
                problems.push(LimitError::at(&at, format!("unknown field {key:?}: adaptive has min and max")))
            }
        }
    }
    if adaptive.min > adaptive.max {
        problems
            .push(LimitError::at("/adaptive", format!("min {} is above max {}", adaptive.min, adaptive.max)));
    }
    Some(adaptive)
}

fn as_object<'a>(
    value: &'a Value,
    at: &str,
    problems: &mut Vec<LimitError>,
) -> Option<&'a Map<String, Value>> {
    match value {
        Value::Object(object) => Some(object),
        other => {
            problems.push(LimitError::at(at, format!("expected a JSON object, found {other}")));
            None
        }
    }
}

fn read_qps(value: &Value, at: &str, problems: &mut Vec<LimitError>) -> Option<f64> {
    match value.as_f64() {
        Some(qps) if qps > 0.0 && qps.is_finite() && qps <= 1e9 => Some(qps),
        Some(qps) if qps <= 0.0 => {
            problems.push(LimitError::at(
                at,
                format!(
                    "qps must be above 0, not {value}: to stop calls to a node set its weight to 0 \
                     or disable it"
                ),
            ));
            None
        }
        _ => {
            problems
                .push(LimitError::at(at, format!("qps must be a number of calls per second, not {value}")));
            None
        }
    }
}

fn read_count(value: &Value, at: &str, what: &str, problems: &mut Vec<LimitError>) -> Option<u32> {
    let fail = |problems: &mut Vec<LimitError>, why: &str| {
        problems.push(LimitError::at(at, format!("{what} must be {why}, not {value}")));
        None
    };
    match (value.as_u64(), value.as_i64(), value.as_f64()) {
        (Some(0), ..) => fail(problems, "at least 1"),
        (Some(n), ..) => match u32::try_from(n) {
            Ok(n) => Some(n),
            Err(_) => fail(problems, "at most 4294967295"),
        },
        (None, Some(_), _) => fail(problems, "a positive whole number (it is negative)"),
        (None, None, Some(f)) if f < 0.0 => fail(problems, "a positive whole number (it is negative)"),
        _ => fail(problems, "a positive whole number"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_document_parses_and_prints_back() {
        let text = r#"{"qps": 1000, "burst": 50, "concurrency": 64, "connections": 10000,
            "adaptive": {"min": 2, "max": 300},
            "methods": {"echo": {"qps": 200.5, "concurrency": 8}}}"#;
        let limits = RequestLimits::parse(text).unwrap();
        assert_eq!(limits.qps, Some(1000.0));
        assert_eq!(limits.adaptive, Some(Adaptive { min: 2, max: 300 }));
        assert_eq!(limits.methods["echo"].qps, Some(200.5));
        assert_eq!(RequestLimits::parse(&limits.to_string()).unwrap(), limits);
        assert!(limits.to_string().starts_with(r#"{"qps":1000,"burst":50,"#), "{limits}");
        assert!(limits.to_string().contains(r#""qps":200.5"#), "{limits}");
        assert_eq!(
            RequestLimits::parse(r#"{"adaptive": true}"#).unwrap().adaptive,
            Some(Adaptive::default())
        );
        assert!(RequestLimits::parse("{}").unwrap().is_empty());
    }

    #[test]
    fn bad_limits_say_where_and_why() {
        let problems = RequestLimits::parse(
            r#"{"qps": -5, "concurrency": 0, "connections": 1.5, "burst": 3, "colour": 1,
                "adaptive": {"min": 9, "max": 3}, "methods": {"echo": {"qps": 0}, "sum": {}}}"#,
        )
        .unwrap_err();
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let has = |at: &str, what: &str| lines.iter().any(|l| l.starts_with(at) && l.contains(what));
        assert!(has("/qps:", "above 0"), "{lines:#?}");
        assert!(has("/concurrency:", "at least 1"), "{lines:#?}");
        assert!(has("/connections:", "whole number"), "{lines:#?}");
        assert!(has("/colour:", "unknown field"), "{lines:#?}");
        assert!(has("/adaptive:", "min 9 is above max 3"), "{lines:#?}");
        assert!(has("/methods/echo/qps:", "above 0"), "{lines:#?}");
        assert!(has("/methods/sum:", "must set qps or concurrency"), "{lines:#?}");
        assert!(has("/burst:", "burst needs qps"), "{lines:#?}");
        let negative = RequestLimits::parse(r#"{"concurrency": -3}"#).unwrap_err();
        assert!(negative[0].message.contains("negative"), "{negative:?}");
        let syntax = RequestLimits::parse(r#"{"qps": }"#).unwrap_err();
        assert!(syntax[0].at.starts_with("line 1, column"), "{syntax:?}");
    }

    #[test]
    fn unknown_methods_name_the_service_and_its_methods() {
        let limits = RequestLimits::parse(r#"{"methods": {"ech": {"qps": 5}}}"#).unwrap();
        let problems = limits.check_methods("Echo", &["echo", "sum"]);
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].to_string(),
            "/methods/ech: unknown method \"ech\": service Echo has the methods echo, sum"
        );
        assert!(limits.check_methods("Echo", &["ech"]).is_empty());
    }

    #[test]
    fn default_bursts_are_fifty_milliseconds() {
        assert_eq!(RequestLimits::default_burst(1000.0), 50);
        assert_eq!(RequestLimits::default_burst(3.0), 1);
    }
}
