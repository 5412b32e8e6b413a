//! The demo: three providers of `examples/idl/demo.thrift` with weights 10/20/70 on embedded backends,
//! a client calling them, and the console. Until the runtime lands, it prints the plan and the registry
//! entries the providers will create.

use probe::registry::layout::{Env, NodeData, NodeKey, redis_hash};

fn main() -> anyhow::Result<()> {
    println!("probe demo (plan): embedded ZooKeeper/Redis/MySQL stand-ins, nothing to install");
    println!("  1. register appkey `demo_app`");
    println!("  2. start three `Demo` providers with weights 10/20/70:");
    for (port, weight) in [(19091u16, 10u32), (19092, 20), (19093, 70)] {
        let key = NodeKey::new(Env::Dev, "demo_app", "Demo", "127.0.0.1", port)?;
        let mut data = NodeData::new("127.0.0.1", port);
        data.weight = weight;
        println!(
            "       {} = {}   ({} field {})",
            key.zk_node_path(),
            String::from_utf8_lossy(&data.to_json()),
            redis_hash(Env::Dev),
            key.redis_field()
        );
    }
    println!("  3. call them continuously and print calls per node each second (expect about 1:2:7)");
    println!("  4. half-way, disable the 19093 node through the console API; its calls fall to zero");
    println!("  5. serve the console on a localhost URL with a printed login token; ctrl-c stops all");
    Ok(())
}
