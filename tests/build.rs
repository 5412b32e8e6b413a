use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    probe_build::configure().compile(&["idl/interop.thrift", "idl/hop.thrift"])?;
    // The same code generator with modules per namespace, into OUT_DIR/ns.
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("ns");
    probe_build::configure()
        .layout(probe_build::Layout::PerNamespace)
        .out_dir(out)
        .compile(&["idl/ns/catalog.thrift", "idl/ns/orders.thrift"])?;
    Ok(())
}
