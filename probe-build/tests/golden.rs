//! Golden files: the exact Rust generated for small fixtures. Run with `PROBE_BLESS=1` to rewrite the
//! `.rs` files after an intended change, then review the diff.

use std::path::Path;

fn check(fixture: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let files = probe_build::configure().generate(&[dir.join(format!("{fixture}.thrift"))]).unwrap();
    let module = files.iter().find(|f| f.name == format!("{fixture}.rs")).unwrap();
    let root = files.iter().find(|f| f.name == probe_build::ROOT_FILE).unwrap();
    let got = format!("// {}\n{}\n// {}\n{}", module.name, module.code, root.name, root.code);
    let golden = dir.join(format!("{fixture}.rs.golden"));
    if std::env::var_os("PROBE_BLESS").is_some() {
        std::fs::write(&golden, &got).unwrap();
    }
    let want = std::fs::read_to_string(&golden).unwrap_or_default();
    assert!(
        got == want,
        "generated code for {fixture}.thrift differs from {}; rerun with PROBE_BLESS=1 and review the diff\n{got}",
        golden.display()
    );
}

#[test]
fn small() {
    check("small");
}

#[test]
fn generation_is_deterministic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let a = probe_build::configure().generate(&[dir.join("small.thrift")]).unwrap();
    let b = probe_build::configure().generate(&[dir.join("small.thrift")]).unwrap();
    assert_eq!(a, b);
}
