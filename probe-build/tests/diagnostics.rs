//! The exact text of probe-build's IDL diagnostics: `file:line:col: error: message`, the source line,
//! and a caret under the culprit.

use std::path::PathBuf;

/// Writes `files` (name, text) into a fresh directory, checks the first, and returns the rendered
/// errors with the directory stripped from paths.
fn errors(case: &str, files: &[(&str, &str)]) -> String {
    let dir: PathBuf = std::env::temp_dir().join(format!("probe-diag-{}-{case}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let result = probe_build::configure().check(&[dir.join(files[0].0)]);
    std::fs::remove_dir_all(&dir).unwrap();
    let err = result.expect_err("the IDL should be rejected");
    err.to_string().replace(&format!("{}/", dir.display()), "").replace(&dir.display().to_string(), "<dir>")
}

fn check(case: &str, files: &[(&str, &str)], expected: &str) {
    let got = errors(case, files);
    assert_eq!(got.trim_end(), expected.trim_end(), "\n--- got ---\n{got}\n");
}

#[test]
fn unknown_type() {
    check(
        "unknown_type",
        &[("a.thrift", "struct User {\n  1: i64 id,\n  2: Profile profile,\n}\n")],
        "a.thrift:3:6: error: unknown type `Profile`
  |
3 |   2: Profile profile,
  |      ^^^^^^^
probe-build: 1 error(s) in the IDL",
    );
}

#[test]
fn missing_closing_brace() {
    check(
        "missing_brace",
        &[("a.thrift", "struct A {\n  1: i32 x\n\nstruct B {\n  1: i32 y\n}\n")],
        "a.thrift:4:1: error: expected a type, found keyword `struct`
  |
4 | struct B {
  | ^^^^^^
probe-build: 1 error(s) in the IDL",
    );
}

#[test]
fn duplicate_field_id() {
    check(
        "dup_field_id",
        &[("a.thrift", "struct A {\n  1: i32 x,\n  1: string y,\n}\n")],
        "a.thrift:3:3: error: field id 1 is already used by `x`
  |
3 |   1: string y,
  |   ^^^^^^^^^^^
a.thrift:2:3: note: first used here
  |
2 |   1: i32 x,
  |   ^^^^^^^^
probe-build: 1 error(s) in the IDL",
    );
}

/// Apache Thrift 0.17 only warns about an include it cannot find; the error is where it matters.
#[test]
fn include_not_found() {
    check(
        "bad_include",
        &[("a.thrift", "include \"shared/common.thrift\"\n\nstruct A { 1: common.Id id }\n")],
        "a.thrift:3:15: error: unknown type `common.Id`; the included file `common.thrift` was not found
  |
3 | struct A { 1: common.Id id }
  |               ^^^^^^^^^
probe-build: 1 error(s) in the IDL",
    );
}

#[test]
fn duplicate_definition() {
    check(
        "dup_def",
        &[("a.thrift", "enum Color { RED }\nstruct Color { 1: i32 x }\n")],
        "a.thrift:2:8: error: `Color` is already defined
  |
2 | struct Color { 1: i32 x }
  |        ^^^^^
a.thrift:1:6: note: first defined here
  |
1 | enum Color { RED }
  |      ^^^^^
probe-build: 1 error(s) in the IDL",
    );
}

#[test]
fn senum_is_gone() {
    check(
        "senum",
        &[("a.thrift", "senum Names {\n  \"a\", \"b\"\n}\n")],
        "a.thrift:1:1: error: `senum` is no longer supported; use `string` instead
  |
1 | senum Names {
  | ^^^^^
probe-build: 1 error(s) in the IDL",
    );
}

#[test]
fn keyword_as_name() {
    check(
        "keyword",
        &[("a.thrift", "struct A {\n  1: i32 required\n}\n")],
        "a.thrift:2:10: error: `required` is a Thrift keyword and cannot be used as a field name
  |
2 |   1: i32 required
  |          ^^^^^^^^
probe-build: 1 error(s) in the IDL",
    );
}

#[test]
fn integer_too_big() {
    check(
        "big_int",
        &[("a.thrift", "const i64 BIG = 9876543210987654321\n")],
        "a.thrift:1:17: error: this integer is too big: 9876543210987654321
  |
1 | const i64 BIG = 9876543210987654321
  |                 ^^^^^^^^^^^^^^^^^^^
probe-build: 1 error(s) in the IDL",
    );
}

#[test]
fn unterminated_string() {
    check(
        "unterminated",
        &[("a.thrift", "const string S = \"abc\nconst i32 X = 1\n")],
        "a.thrift:1:18: error: end of line inside a string literal; close it with a matching quote
  |
1 | const string S = \"abc
  |                  ^^^^
probe-build: 1 error(s) in the IDL",
    );
}

#[test]
fn const_type_mismatch_and_unqualified_enum() {
    check(
        "const_types",
        &[(
            "a.thrift",
            "enum Day { MON, TUE }\nconst i32 N = \"seven\"\nconst Day D = TUE\nconst i8 SMALL = 300\n",
        )],
        "a.thrift:2:15: error: type mismatch: `N` is declared as `i32`, but this value is not one
  |
2 | const i32 N = \"seven\"
  |               ^^^^^^^

a.thrift:3:15: error: `TUE` is unqualified; a value of enum `Day` is written `Day.NAME`
  |
3 | const Day D = TUE
  |               ^^^

a.thrift:4:18: error: 300 is out of range for `SMALL` (Apache Thrift 0.17 does not check integer ranges)
  |
4 | const i8 SMALL = 300
  |                  ^^^
probe-build: 3 error(s) in the IDL",
    );
}

#[test]
fn include_cycle() {
    check(
        "cycle",
        &[("a.thrift", "include \"b.thrift\"\n"), ("b.thrift", "include \"a.thrift\"\n")],
        "b.thrift:1:1: error: include cycle: a.thrift -> b.thrift -> a.thrift; remove one of these includes
  |
1 | include \"a.thrift\"
  | ^^^^^^^^^^^^^^^^^^
probe-build: 1 error(s) in the IDL",
    );
}

#[test]
fn service_rules() {
    check(
        "service",
        &[(
            "a.thrift",
            "struct NotAnError {}\nservice S {\n  oneway i32 ping()\n  void get() throws (1: NotAnError e)\n}\n",
        )],
        "a.thrift:3:14: error: oneway function `ping` must return void (Apache Thrift 0.17 only warns)
  |
3 |   oneway i32 ping()
  |              ^^^^

a.thrift:4:25: error: `e` in throws is not an exception
  |
4 |   void get() throws (1: NotAnError e)
  |                         ^^^^^^^^^^
probe-build: 2 error(s) in the IDL",
    );
}

#[test]
fn several_errors_in_one_run() {
    let out = errors(
        "several",
        &[("a.thrift", "struct A { 1: Nope x }\nstruct B { 1: i32 y, 1: i32 z }\nstruct C { 1: Gone g }\n")],
    );
    assert!(out.contains("a.thrift:1:15: error: unknown type `Nope`"), "{out}");
    assert!(out.contains("a.thrift:2:22: error: field id 1 is already used by `y`"), "{out}");
    assert!(out.contains("a.thrift:3:15: error: unknown type `Gone`"), "{out}");
    assert!(out.ends_with("probe-build: 3 error(s) in the IDL"), "{out}");
}

#[test]
fn no_panic_on_garbage() {
    for text in [
        "",
        "}",
        "struct",
        "struct {",
        "const",
        "enum E { A = }",
        "service S extends {",
        "\u{0}\u{ff}",
        "map<",
        "typedef list<i32 X",
        "/*",
    ] {
        let dir = std::env::temp_dir().join(format!("probe-diag-{}-garbage", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("g.thrift"), text).unwrap();
        let _ = probe_build::configure().check(&[dir.join("g.thrift")]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn bad_method_timeouts() {
    check(
        "timeout",
        &[(
            "a.thrift",
            "service S {\n  void a() (probe.timeout_ms = \"200\")\n  void b() (probe.timeout_ms = \"-5\")\n  void c() (probe.timeout_ms = \"0\")\n}\n",
        )],
        "a.thrift:3:13: error: `probe.timeout_ms` of `b` must be a whole number of milliseconds from 1 to 86400000, not \"-5\"
  |
3 |   void b() (probe.timeout_ms = \"-5\")
  |             ^^^^^^^^^^^^^^^^

a.thrift:4:13: error: `probe.timeout_ms` of `c` must be a whole number of milliseconds from 1 to 86400000, not \"0\"
  |
4 |   void c() (probe.timeout_ms = \"0\")
  |             ^^^^^^^^^^^^^^^^
probe-build: 2 error(s) in the IDL",
    );
}
