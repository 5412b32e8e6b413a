fn main() -> Result<(), probe_build::Error> {
    probe_build::configure().compile(&["idl/demo.thrift"])
}
