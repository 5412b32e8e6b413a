//! `probe locate APPKEY SERVICE IP PORT`: where a node lives in ZooKeeper and Redis.

use anyhow::Result;
use probe_runtime::registry::layout::{Env, NodeKey, redis_hash};
use serde_json::json;

use super::output::Report;

/// The ZooKeeper path and Redis field of a node.
pub fn locate(env: Env, appkey: &str, service: &str, ip: &str, port: u16) -> Result<Report> {
    let key = NodeKey::new(env, appkey, service, ip, port)?;
    let json = json!({
        "zookeeper_path": key.zk_node_path(),
        "redis_hash": redis_hash(env),
        "redis_field": key.redis_field(),
    });
    let text = format!(
        "zookeeper path  {}\nredis hash      {}\nredis field     {}",
        key.zk_node_path(),
        redis_hash(env),
        key.redis_field()
    );
    Ok(Report::new(json, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_layout() {
        let report = locate(Env::Prod, "app", "S", "10.0.0.1", 80).unwrap();
        assert_eq!(report.json["zookeeper_path"], "/services/prod/app/S_10.0.0.1_80");
        assert!(report.text.contains("redis field     app|prod|S|10.0.0.1|80"));
        assert!(locate(Env::Dev, "bad-app", "S", "1.2.3.4", 1).is_err());
    }
}
