//! The Python client's reading of node data, case by case.

use super::*;
use crate::registry::layout::NodeData;

fn read(json: &str) -> Result<NodeData, NodeProblem> {
    NodeData::from_json(json.as_bytes())
}

fn node(valid: &str, weight: &str) -> String {
    format!(r#"{{"host": "10.0.0.1", "port": 9090, "weight": {weight}, "valid": {valid}}}"#)
}

#[test]
fn valid_is_on_exactly_when_python_says_it_equals_1() {
    for on in ["1", "true", "1.0", "1e0", "10e-1"] {
        assert!(read(&node(on, "10")).unwrap().valid.is_on(), "{on}");
    }
    for off in ["0", "false", "2", "0.5", "-1", "\"1\"", "null", "[1]", "{}", "1.5"] {
        let data = read(&node(off, "10")).unwrap();
        assert!(!data.valid.is_on() && !data.in_rotation(), "{off}");
    }
}

#[test]
fn weights_are_numbers_as_python_adds_them() {
    let units = |weight: &str| read(&node("1", weight)).unwrap().weight.units();
    assert_eq!(units("10"), 10_000);
    assert_eq!(units("30.0"), 30_000);
    assert_eq!(units("30.5"), 30_500);
    assert_eq!(units("0.25"), 250);
    assert_eq!(units("true"), 1_000);
    assert_eq!(units("false"), 0);
    assert_eq!(units("0"), 0);
    assert_eq!(units("-0.0"), 0);
    assert_eq!(units("1e30"), u64::from(u32::MAX) * 1000);
    assert_eq!(units("99999999999999999999"), u64::from(u32::MAX) * 1000);
    assert!(!read(&node("1", "0")).unwrap().in_rotation());
    assert!(!read(&node("1", "0.0")).unwrap().in_rotation());
}

#[test]
fn what_breaks_the_python_client_is_a_problem_with_a_reason() {
    let kind = |json: &str| read(json).unwrap_err().kind();
    assert_eq!(kind(&node("1", "\"30\"")), "weight_not_number");
    assert_eq!(kind(&node("0", "\"30\"")), "weight_not_number", "off nodes are checked too");
    assert_eq!(kind(&node("1", "null")), "weight_not_number");
    assert_eq!(kind(&node("1", "[1]")), "weight_not_number");
    assert_eq!(kind(&node("1", "-5")), "negative_weight");
    assert_eq!(kind(&node("1", "-0.5")), "negative_weight");
    assert_eq!(kind(r#"{"host": "h", "port": 1, "valid": 1}"#), "missing_field");
    assert_eq!(kind(r#"{"host": "h", "port": 1, "weight": 1}"#), "missing_field");
    assert_eq!(kind(r#"{"port": 1, "weight": 1, "valid": 1}"#), "missing_field");
    assert_eq!(kind(r#"{"host": 7, "port": 1, "weight": 1, "valid": 1}"#), "host_not_string");
    for port in ["9090.0", "\"9090\"", "0", "65536", "-1", "true", "null"] {
        let json = format!(r#"{{"host": "h", "port": {port}, "weight": 1, "valid": 1}}"#);
        assert_eq!(kind(&json), "bad_port", "{port}");
    }
    assert_eq!(kind("[1, 2]"), "not_object");
    assert_eq!(kind("\"text\""), "not_object");
    assert_eq!(kind("null"), "not_object");
    assert_eq!(kind("{"), "not_json");
    assert_eq!(kind(""), "not_json");
    assert_eq!(kind(r#"{"weight": NaN}"#), "not_json");
    let err = NodeData::from_json(b"{\"host\": \"\xff\"}").unwrap_err();
    assert_eq!(err.kind(), "not_text");
    let reason = read(&node("1", "\"30\"")).unwrap_err().to_string();
    assert!(reason.contains(r#""30" (str)"#) && reason.contains("TypeError"), "{reason}");
}

#[test]
fn spacing_key_order_duplicates_and_unknown_fields_are_fine() {
    let json = "\r\n { \"valid\" :true,\"zone\":\"b\",\n\t\"weight\":  30.0 , \"port\":9090,\"host\":\"h\", \"valid\": 1.0 }\n";
    let data = read(json).unwrap();
    assert!(data.in_rotation());
    assert_eq!((data.weight.units(), data.valid.as_json().to_string()), (30_000, "1.0".to_owned()));
    assert_eq!(data.extra["zone"], "b");
}

#[test]
fn encodings_are_detected_as_json_loads_does() {
    let json = node("1", "10");
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice(json.as_bytes());
    assert!(NodeData::from_json(&bom).is_ok());
    let utf16le: Vec<u8> = json.encode_utf16().flat_map(u16::to_le_bytes).collect();
    assert!(NodeData::from_json(&utf16le).is_ok());
    let mut utf16be = vec![0xFE, 0xFF];
    utf16be.extend(json.encode_utf16().flat_map(u16::to_be_bytes));
    assert!(NodeData::from_json(&utf16be).is_ok());
    let utf32be: Vec<u8> = json.chars().flat_map(|c| u32::from(c).to_be_bytes()).collect();
    assert!(NodeData::from_json(&utf32be).is_ok());
}

#[test]
fn rewrites_keep_the_forms_they_do_not_change() {
    let json = r#"{"valid": true, "weight": 30.0, "host": "h", "port": 1, "zone": {"a": [1]}, "pid": "x"}"#;
    let mut data = read(json).unwrap();
    let back: Value = serde_json::from_slice(&data.to_json()).unwrap();
    assert_eq!((&back["valid"], &back["weight"]), (&Value::Bool(true), &serde_json::json!(30.0)));
    assert_eq!(back["zone"]["a"][0], 1);
    assert_eq!(back["pid"], "x", "a probe field of another type stays as it was");
    data.weight = Weight::from(70);
    let back: Value = serde_json::from_slice(&data.to_json()).unwrap();
    assert_eq!((&back["valid"], &back["weight"]), (&Value::Bool(true), &serde_json::json!(70)));
    assert_eq!(data.weight.to_string(), "70");
    assert_eq!(read(&node("1", "30.5")).unwrap().weight.to_string(), "30.5");
    assert_eq!(read(&node("1", "30.0")).unwrap().weight.to_string(), "30.0");
}
