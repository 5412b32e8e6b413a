//! The node JSON of ZooKeeper nodes and Redis values, read as the Python design's client reads it.
//!
//! The Python client runs `infos = json.loads(data)`, keeps a node when `infos['valid'] == 1` and
//! sums `infos['weight']` with `+` before `random.randint(1, total)`. So `valid` is on for `1`,
//! `true` and `1.0` (and off for anything else, `2` and `"1"` included), a weight is any JSON
//! number or boolean, and unknown fields and spacing do not matter. [`NodeData::from_json`] reads
//! exactly that; data that would make the Python client raise is a [`NodeProblem`], which callers
//! report (metric, CLI, console) instead of dropping the node silently. Values are kept in the form
//! they were written, so an operator tool that rewrites one field leaves the others as they were.

use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use super::layout::{DEFAULT_WEIGHT, NameError, NodeKey};

/// Balancing units per unit of weight: balancers see weights as fixed-point numbers with three
/// decimals, so `30.5` and `10` split calls 30.5 : 10.
pub const UNITS_PER_WEIGHT: u64 = 1000;
/// The largest weight that counts in full; larger ones balance as this one.
const MAX_COUNTED_WEIGHT: f64 = u32::MAX as f64;

/// A node's `weight` as it was written: an integer, a float or a boolean (`true` adds 1 to the
/// Python client's sum). Never negative.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weight(Form);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Form {
    Int(u64),
    Float(f64),
    Bool(bool),
}

impl Weight {
    /// The weight `value` holds, as the Python client's `total_weight += infos['weight']` takes it.
    pub fn from_json(value: &Value) -> Result<Weight, NodeProblem> {
        let found = || describe(value);
        let form = match value {
            Value::Bool(b) => Form::Bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_f64()) {
                (Some(int), _) => Form::Int(int),
                (None, Some(float)) if float >= 0.0 && float.is_finite() => Form::Float(float),
                _ => return Err(NodeProblem::NegativeWeight { found: found() }),
            },
            _ => return Err(NodeProblem::WeightNotNumber { found: found() }),
        };
        Ok(Weight(form))
    }

    /// The weight as a number.
    pub fn value(self) -> f64 {
        match self.0 {
            // Precision beyond 2^53 does not matter for a share of calls.
            Form::Int(int) => int as f64,
            Form::Float(float) => float,
            Form::Bool(b) => f64::from(u8::from(b)),
        }
    }

    /// The weight in balancing units ([`UNITS_PER_WEIGHT`] per unit, rounded), capped at
    /// `u32::MAX` weight so that sums over many nodes cannot overflow.
    pub fn units(self) -> u64 {
        match self.0 {
            Form::Int(int) => int.min(u64::from(u32::MAX)) * UNITS_PER_WEIGHT,
            // In range and non-negative, so the cast is exact up to rounding.
            _ => (self.value().min(MAX_COUNTED_WEIGHT) * UNITS_PER_WEIGHT as f64).round() as u64,
        }
    }

    /// Whether the node gets calls at all (it does when its units are above 0).
    pub fn is_positive(self) -> bool {
        self.units() > 0
    }
}

impl Default for Weight {
    /// [`DEFAULT_WEIGHT`].
    fn default() -> Self {
        Weight::from(DEFAULT_WEIGHT)
    }
}

impl From<u32> for Weight {
    fn from(weight: u32) -> Self {
        Weight(Form::Int(u64::from(weight)))
    }
}

impl PartialEq<u32> for Weight {
    fn eq(&self, other: &u32) -> bool {
        self.value() == f64::from(*other)
    }
}

impl fmt::Display for Weight {
    /// As JSON writes it: `10`, `30.5`, `30.0`, `true`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Form::Int(int) => write!(f, "{int}"),
            Form::Float(float) => write!(f, "{}", Value::from(float)),
            Form::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl Serialize for Weight {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Form::Int(int) => serializer.serialize_u64(int),
            Form::Float(float) => serializer.serialize_f64(float),
            Form::Bool(b) => serializer.serialize_bool(b),
        }
    }
}

/// A node's `valid` as it was written: any JSON value. The node is on exactly when Python's
/// `infos['valid'] == 1` holds: for `1`, `true` and `1.0`; `0`, `false`, `2`, `"1"` and `null` are
/// off.
#[derive(Debug, Clone, PartialEq)]
pub struct Valid(Value);

impl Valid {
    /// `1`: serving.
    pub fn on() -> Valid {
        Valid(Value::from(1))
    }

    /// `0`: switched off by an operator.
    pub fn off() -> Valid {
        Valid(Value::from(0))
    }

    /// Whether the node is on: `valid == 1` in Python terms.
    pub fn is_on(&self) -> bool {
        equals_one(&self.0)
    }

    /// The value as written.
    pub fn as_json(&self) -> &Value {
        &self.0
    }
}

impl Default for Valid {
    /// [`Valid::on`].
    fn default() -> Self {
        Valid::on()
    }
}

impl From<bool> for Valid {
    /// `1` or `0`, as probe and the Python design write it.
    fn from(on: bool) -> Self {
        if on { Valid::on() } else { Valid::off() }
    }
}

impl From<Value> for Valid {
    fn from(value: Value) -> Self {
        Valid(value)
    }
}

impl fmt::Display for Valid {
    /// As JSON writes it: `1`, `true`, `2`, `"1"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Valid {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// Python's `value == 1` for a JSON value: `True == 1` and `1.0 == 1` hold, a string never equals
/// a number.
fn equals_one(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_u64() == Some(1) || (n.is_f64() && n.as_f64() == Some(1.0)),
        _ => false,
    }
}

/// Why node data is unusable: what would make the Python client raise on it. Such nodes get no
/// calls from probe and are reported (metric, `probe nodes list`, console, one log line per
/// change).
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NodeProblem {
    /// Not text in an encoding `json.loads` detects (UTF-8, with or without BOM, UTF-16, UTF-32).
    #[error("the data is not UTF-8 text ({detail}); Python's json.loads raises UnicodeDecodeError")]
    NotText {
        /// Where decoding failed.
        detail: String,
    },
    /// Not a JSON document.
    #[error("the data is not JSON ({detail}); Python's json.loads raises")]
    NotJson {
        /// What the parser said.
        detail: String,
    },
    /// JSON, but not an object.
    #[error("the data is {found}, not a JSON object; the Python client's infos['valid'] raises")]
    NotObject {
        /// What it is instead.
        found: String,
    },
    /// A field the Python client reads is missing.
    #[error("the data has no \"{field}\" field; the Python client raises KeyError on it")]
    Missing {
        /// `valid`, `weight`, `host` or `port`.
        field: &'static str,
    },
    /// `weight` is not a number.
    #[error("\"weight\" is {found}, not a number; the Python client's sum of weights raises TypeError")]
    WeightNotNumber {
        /// The value as written.
        found: String,
    },
    /// `weight` is below 0.
    #[error(
        "\"weight\" is {found}, below 0; the Python client never picks such a node and it shrinks \
         the share of the nodes after it"
    )]
    NegativeWeight {
        /// The value as written.
        found: String,
    },
    /// `host` is not a string.
    #[error("\"host\" is {found}, not a string; the Python client's connect raises TypeError")]
    HostNotString {
        /// The value as written.
        found: String,
    },
    /// `port` is not an integer from 1 to 65535.
    #[error("\"port\" is {found}, not an integer from 1 to 65535; the Python client's connect raises")]
    BadPort {
        /// The value as written.
        found: String,
    },
}

crate::debug_as_display!(NodeProblem);

impl NodeProblem {
    /// A short name of the problem, for metric labels and filters.
    pub fn kind(&self) -> &'static str {
        match self {
            NodeProblem::NotText { .. } => "not_text",
            NodeProblem::NotJson { .. } => "not_json",
            NodeProblem::NotObject { .. } => "not_object",
            NodeProblem::Missing { .. } => "missing_field",
            NodeProblem::WeightNotNumber { .. } => "weight_not_number",
            NodeProblem::NegativeWeight { .. } => "negative_weight",
            NodeProblem::HostNotString { .. } => "host_not_string",
            NodeProblem::BadPort { .. } => "bad_port",
        }
    }
}

/// `value` for a reason text: its JSON, shortened, with its Python type.
fn describe(value: &Value) -> String {
    let kind = match value {
        Value::Null => "None",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    };
    let mut text = value.to_string();
    if text.len() > 40 {
        let cut = (0..=37).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text.truncate(cut);
        text.push_str("...");
    }
    format!("{text} ({kind})")
}

/// The text of node data as Python's `json.loads` decodes bytes: UTF-32 or UTF-16 when a BOM or
/// the pattern of zero bytes says so, UTF-8 with its BOM dropped, else UTF-8.
pub(super) fn decode(bytes: &[u8]) -> Result<std::borrow::Cow<'_, str>, NodeProblem> {
    use std::borrow::Cow;
    let bad = |what: &str| NodeProblem::NotText { detail: what.to_owned() };
    let encoding = detect_encoding(bytes);
    match encoding {
        Encoding::Utf8 { skip } => std::str::from_utf8(&bytes[skip..])
            .map(Cow::Borrowed)
            .map_err(|err| bad(&format!("invalid UTF-8 at byte {}", skip + err.valid_up_to()))),
        Encoding::Utf16 { big_endian, skip } => {
            let body = &bytes[skip..];
            if body.len() % 2 != 0 {
                return Err(bad("UTF-16 of odd length"));
            }
            let units = body.chunks_exact(2).map(|c| {
                let pair = [c[0], c[1]];
                if big_endian { u16::from_be_bytes(pair) } else { u16::from_le_bytes(pair) }
            });
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .map(Cow::Owned)
                .map_err(|_| bad("invalid UTF-16"))
        }
        Encoding::Utf32 { big_endian, skip } => {
            let body = &bytes[skip..];
            if body.len() % 4 != 0 {
                return Err(bad("UTF-32 of a length not a multiple of 4"));
            }
            body.chunks_exact(4)
                .map(|c| {
                    let quad = [c[0], c[1], c[2], c[3]];
                    let code = if big_endian { u32::from_be_bytes(quad) } else { u32::from_le_bytes(quad) };
                    char::from_u32(code).ok_or_else(|| bad("invalid UTF-32"))
                })
                .collect::<Result<String, _>>()
                .map(Cow::Owned)
        }
    }
}

enum Encoding {
    Utf8 { skip: usize },
    Utf16 { big_endian: bool, skip: usize },
    Utf32 { big_endian: bool, skip: usize },
}

/// CPython's `json.detect_encoding`.
fn detect_encoding(b: &[u8]) -> Encoding {
    if b.starts_with(&[0, 0, 0xFE, 0xFF]) {
        return Encoding::Utf32 { big_endian: true, skip: 4 };
    }
    if b.starts_with(&[0xFF, 0xFE, 0, 0]) {
        return Encoding::Utf32 { big_endian: false, skip: 4 };
    }
    if b.starts_with(&[0xFE, 0xFF]) {
        return Encoding::Utf16 { big_endian: true, skip: 2 };
    }
    if b.starts_with(&[0xFF, 0xFE]) {
        return Encoding::Utf16 { big_endian: false, skip: 2 };
    }
    if b.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Encoding::Utf8 { skip: 3 };
    }
    match b {
        [0, 0, _, _, ..] => Encoding::Utf32 { big_endian: true, skip: 0 },
        [0, _, _, _, ..] => Encoding::Utf16 { big_endian: true, skip: 0 },
        [_, 0, 0, 0, ..] => Encoding::Utf32 { big_endian: false, skip: 0 },
        [_, 0, _, _, ..] => Encoding::Utf16 { big_endian: false, skip: 0 },
        [0, _] => Encoding::Utf16 { big_endian: true, skip: 0 },
        [_, 0] => Encoding::Utf16 { big_endian: false, skip: 0 },
        _ => Encoding::Utf8 { skip: 0 },
    }
}

/// The fields of a node JSON object, read with the Python client's semantics.
pub(super) struct Fields {
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) weight: Weight,
    pub(super) valid: Valid,
    pub(super) rest: Map<String, Value>,
}

/// Reads `bytes` as the Python client does: decode, `json.loads` (the last of duplicate keys
/// wins), then `valid`, `weight`, `host` and `port`. The node must be usable whether it is on or
/// off, so an operator can switch it on without breaking the Python clients.
pub(super) fn read_fields(bytes: &[u8]) -> Result<Fields, NodeProblem> {
    let text = decode(bytes)?;
    let value: Value =
        serde_json::from_str(&text).map_err(|err| NodeProblem::NotJson { detail: err.to_string() })?;
    let Value::Object(mut map) = value else {
        return Err(NodeProblem::NotObject { found: describe(&value) });
    };
    let valid = Valid(map.remove("valid").ok_or(NodeProblem::Missing { field: "valid" })?);
    let weight = Weight::from_json(&map.remove("weight").ok_or(NodeProblem::Missing { field: "weight" })?)?;
    let host = match map.remove("host").ok_or(NodeProblem::Missing { field: "host" })? {
        Value::String(host) => host,
        other => return Err(NodeProblem::HostNotString { found: describe(&other) }),
    };
    let port = map.remove("port").ok_or(NodeProblem::Missing { field: "port" })?;
    let port = match port.as_u64().map(u16::try_from) {
        Some(Ok(port)) if port > 0 => port,
        _ => return Err(NodeProblem::BadPort { found: describe(&port) }),
    };
    Ok(Fields { host, port, weight, valid, rest: map })
}

/// A child of `/services/{env}/{appkey}` that probe cannot use: no calls go to it, and it is
/// reported with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnusableNode {
    /// The ZooKeeper child name.
    pub child: String,
    /// The node's identity, when its name follows `{service}_{ip}_{port}`.
    pub key: Option<NodeKey>,
    /// Why it cannot be used.
    pub problem: UnusableReason,
    /// The node data as text (lossily decoded, at most 200 bytes), for operators.
    pub data: String,
}

/// Why a child is unusable: its name or its data.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnusableReason {
    /// The name does not follow `{service}_{ip}_{port}` (the Python client still calls it when it
    /// starts with `{service}_`).
    #[error("{0}")]
    Name(#[from] NameError),
    /// The data is not node JSON the Python client can use.
    #[error("{0}")]
    Data(#[from] NodeProblem),
}

crate::debug_as_display!(UnusableReason);

impl UnusableReason {
    /// A short name of the reason, for metric labels: `bad_name` or [`NodeProblem::kind`].
    pub fn kind(&self) -> &'static str {
        match self {
            UnusableReason::Name(_) => "bad_name",
            UnusableReason::Data(problem) => problem.kind(),
        }
    }
}

impl UnusableNode {
    /// An unusable child with its data, shortened for reports.
    pub fn new(child: &str, key: Option<NodeKey>, problem: UnusableReason, data: &[u8]) -> Self {
        let mut text = String::from_utf8_lossy(&data[..data.len().min(200)]).into_owned();
        if data.len() > 200 {
            text.push_str("...");
        }
        UnusableNode { child: child.to_owned(), key, problem, data: text }
    }

    /// The service the node belongs to, when its name says.
    pub fn service(&self) -> Option<&str> {
        self.key.as_ref().map(NodeKey::service)
    }
}

impl fmt::Display for UnusableNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.child, self.problem)
    }
}

#[cfg(test)]
mod tests;
