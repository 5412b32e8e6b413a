fn main() -> Result<(), Box<dyn std::error::Error>> {
    probe_build::configure().compile(&["idl/echo.thrift"])?;
    Ok(())
}
