//! Minimal reproducers found by the differential IDL tester (`idl-diff/`, `scripts/idl-diff.sh`),
//! each with probe's verdict after the fix. Apache Thrift 0.17's verdict (`thrift -r --gen py`) is
//! in each case's comment; these tests do not need `thrift`.

use std::path::PathBuf;

/// Writes the files into a fresh directory and checks `main.thrift`.
fn check(name: &str, files: &[(&str, &str)]) -> Result<(), String> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("diff-regressions").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    probe_build::configure().check(&[dir.join("main.thrift")]).map(|_| ()).map_err(|e| e.to_string())
}

fn accepts(name: &str, files: &[(&str, &str)]) {
    if let Err(e) = check(name, files) {
        panic!("{name}: probe rejects what Apache Thrift 0.17 accepts:\n{e}");
    }
}

/// Asserts a rejection whose first diagnostic is at `file:line:col` and says `message`.
fn rejects(name: &str, files: &[(&str, &str)], at: &str, message: &str) {
    let e = check(name, files).expect_err(name);
    let first = e.lines().next().unwrap_or_default();
    assert!(first.contains(&format!("{at}: error: ")), "{name}: wrong place: {first}");
    assert!(first.contains(message), "{name}: wrong message: {first}");
}

#[test]
fn missing_include_is_not_an_error_until_used() {
    // Apache: accepts (it warns "Could not find include file").
    accepts("missing-unused", &[("main.thrift", "include \"inc1.thrift\"\nstruct S { 1: i32 a }\n")]);
    // Apache: rejects (Type "inc1.T" not defined).
    rejects(
        "missing-used",
        &[("main.thrift", "include \"inc1.thrift\"\nstruct S {\n  1: inc1.T a\n}\n")],
        "main.thrift:3:6",
        "unknown type `inc1.T`; the included file `inc1.thrift` was not found",
    );
}

#[test]
fn async_is_a_keyword() {
    // Apache: rejects (syntax error: `async` is the old `oneway`).
    rejects(
        "async",
        &[("main.thrift", "union async {\n}\n")],
        "main.thrift:1:7",
        "`async` is a Thrift keyword",
    );
}

#[test]
fn union_has_at_most_one_default() {
    // Apache: rejects (Field f18 provides another default value for union X9).
    rejects(
        "union-defaults",
        &[("main.thrift", "union X9 {\n  1: optional double f17 = 0,\n  2: binary f18 = \"s\",\n}\n")],
        "main.thrift:3:13",
        "union `X9` may give at most one field a default value",
    );
}

#[test]
fn struct_constants_are_not_copied_by_reference() {
    // Apache: rejects (const "f12" was declared as struct/xception).
    rejects(
        "struct-ref",
        &[("main.thrift", "union X1 {\n}\nconst X1 X2 = {}\nstruct X4 {\n  1: optional X1 f12 = X2,\n}\n")],
        "main.thrift:5:24",
        "type mismatch: `f12` is declared as struct `X1`",
    );
}

#[test]
fn typedef_of_enum_takes_an_unqualified_member() {
    // Apache: accepts (values of typedef'd types are resolved by the generator, by the last name part).
    accepts(
        "typedef-enum",
        &[(
            "main.thrift",
            "enum X37 {\n  V45 = 7,\n}\ntypedef X37 X39,\ntypedef X39 X40;\nexception X41 {\n  1: required X40 f46 = V45,\n}\n",
        )],
    );
}

#[test]
fn a_constant_may_share_a_name_with_a_type() {
    // Apache: accepts (constants and types are separate scopes).
    accepts("const-type-name", &[("main.thrift", "struct X {\n}\nconst i32 X = 1\n")]);
}

#[test]
fn types_of_files_without_namespaces_collide() {
    // Apache: rejects (Type "A" is already defined.): neither file declares a namespace.
    rejects(
        "collide",
        &[("main.thrift", "include \"inc.thrift\"\nstruct A {\n}\n"), ("inc.thrift", "struct A {\n}\n")],
        "main.thrift:2:8",
        "type `A` is already defined in `inc.thrift`",
    );
}

#[test]
fn exception_literals_are_not_resolved() {
    // Apache: rejects (const "f17.f12" was declared as enum): nothing inside an exception literal is
    // resolved, so the integer stays an integer.
    rejects(
        "exception-literal",
        &[(
            "main.thrift",
            "enum X3 {\n  V10,\n}\nexception X4 {\n  2: X3 f12,\n}\nexception X8 {\n  3: X4 f17 = {\"f12\": 0};\n}\n",
        )],
        "main.thrift:8:23",
        "`X3`",
    );
}

#[test]
fn repeated_map_keys_keep_the_last_value_only() {
    // Apache: accepts (its map keeps one entry per key; the dropped value is never checked).
    accepts(
        "map-keys",
        &[("main.thrift", "const map<double,map<i32,i32>> X1 = {-2: {Nope: 1}, -2: {-1: 16}}\n")],
    );
}

#[test]
fn field_ids_beyond_i16_are_reported_without_losing_the_struct() {
    // Apache: accepts with a warning; probe reports it (documented) and nothing else.
    let e = check(
        "field-id",
        &[("main.thrift", "struct X3 {\n  32768: bool f8\n}\nstruct X4 {\n  1: X3 f9\n}\n")],
    )
    .expect_err("field id");
    assert_eq!(e.matches(": error: ").count(), 1, "{e}");
    assert!(e.contains("main.thrift:2:3: error: field id 32768 is out of range"), "{e}");
}

#[test]
fn references_are_checked_against_the_declared_type() {
    // Apache: rejects (const "b" was declared as string): an integer constant copied into a string.
    rejects(
        "ref-type",
        &[("main.thrift", "const i32 a = 1\nconst string b = a\n")],
        "main.thrift:2:18",
        "`b`",
    );
}

#[test]
fn a_file_with_constants_included_twice() {
    // Apache: rejects (Enum inc1.X19 is already defined!): it reads the file twice.
    rejects(
        "twice",
        &[
            ("main.thrift", "include \"inc1.thrift\"\ninclude \"sub/../inc1.thrift\"\n"),
            ("inc1.thrift", "const i8 X19 = -1\n"),
            ("sub/keep", ""),
        ],
        "main.thrift:2:1",
        "`inc1.thrift` is already included",
    );
}

#[test]
fn keys_inside_exception_literals_are_checked() {
    // Apache: rejects (type error: X3 has no field k) when it writes the default.
    rejects(
        "exception-keys",
        &[(
            "main.thrift",
            "exception X1 {\n  1: optional X3 f4,\n}\nstruct X2 {\n  2: X1 f8 = {\"f4\": {\"k\": -1}},\n}\nstruct X3 {\n}\n",
        )],
        "main.thrift:5:22",
        "`X3` has no field `k`",
    );
}
