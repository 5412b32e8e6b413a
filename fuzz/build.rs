// The generated-code target decodes the interop IDL's `User`; generate it here rather than
// depending on the tests crate (which would pull ZooKeeper, Redis and MySQL clients into every
// fuzz build).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    probe_build::configure().compile(&["../tests/idl/interop.thrift"])?;
    Ok(())
}
