trait Greeter {}
struct Handler;

#[probe::service(appkey = "bad-key")]
impl Greeter for Handler {}

fn main() {}
