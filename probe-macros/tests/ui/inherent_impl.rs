struct Handler;

#[probe::service(appkey = "ok")]
impl Handler {}

fn main() {}
