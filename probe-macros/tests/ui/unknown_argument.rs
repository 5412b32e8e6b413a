trait Greeter {}
struct Handler;

#[probe::service(appkey = "ok", region = "eu")]
impl Greeter for Handler {}

fn main() {}
