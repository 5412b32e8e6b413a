trait Greeter {}
struct Handler;

#[probe::service]
impl Greeter for Handler {}

fn main() {}
