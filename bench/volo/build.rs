fn main() {
    volo_build::Builder::thrift().add_service("idl/echo.thrift").write().expect("volo-build generates the Echo client");
}
