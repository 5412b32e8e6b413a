//! Compile-fail tests of `#[probe::service]`: each `.rs` under `tests/ui` with its expected `.stderr`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
