//! The NODE argument: a node named as its Redis field or as its ZooKeeper node.

use probe_runtime::registry::layout::{Env, NodeKey, ZK_ROOT};

/// A NODE argument that names no node; the message explains the accepted forms.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad NODE {text:?}: {problem}. Name a node by its Redis field `appkey|env|service|ip|port` \
     (e.g. `order_app|dev|Order|10.0.0.7|9090`) or by its ZooKeeper node `appkey/service_ip_port` \
     (e.g. `order_app/Order_10.0.0.7_9090`, in the env of --env or the config; the full path \
     `/services/dev/order_app/Order_10.0.0.7_9090` works too); `probe nodes list APPKEY` shows \
     the nodes of an app"
)]
pub struct BadNode {
    text: String,
    problem: String,
}

probe_runtime::debug_as_display!(BadNode);

/// Parses NODE: `appkey|env|service|ip|port`, `appkey/service_ip_port` (in `env`) or
/// `/services/{env}/appkey/service_ip_port`.
pub fn parse_node(text: &str, env: Env) -> Result<NodeKey, BadNode> {
    let bad = |problem: String| BadNode { text: text.to_owned(), problem };
    let text = text.trim();
    if text.contains('|') {
        return NodeKey::from_redis_field(text).map_err(|e| bad(e.to_string()));
    }
    let (env, rest) = match text.strip_prefix(ZK_ROOT).and_then(|r| r.strip_prefix('/')) {
        Some(path) => {
            let (env_name, rest) =
                path.split_once('/').ok_or_else(|| bad("the path has no appkey".into()))?;
            (env_name.parse().map_err(|e| bad(format!("{e}")))?, rest)
        }
        None => (env, text),
    };
    let Some((appkey, child)) = rest.split_once('/') else {
        return Err(bad("it has neither `|` nor `/`".to_owned()));
    };
    if child.contains('/') {
        return Err(bad("`appkey/service_ip_port` has a single `/`".to_owned()));
    }
    NodeKey::from_zk_child(env, appkey, child).map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_name_the_same_node() {
        let key = NodeKey::new(Env::Dev, "order_app", "Order_Service", "10.0.0.7", 9090).unwrap();
        assert_eq!(parse_node("order_app|dev|Order_Service|10.0.0.7|9090", Env::Prod).unwrap(), key);
        assert_eq!(parse_node("order_app/Order_Service_10.0.0.7_9090", Env::Dev).unwrap(), key);
        assert_eq!(
            parse_node("/services/dev/order_app/Order_Service_10.0.0.7_9090", Env::Prod).unwrap(),
            key
        );
        let prod = parse_node("order_app/Order_Service_10.0.0.7_9090", Env::Prod).unwrap();
        assert_eq!(prod.env(), Env::Prod);
    }

    #[test]
    fn bad_nodes_explain_both_forms() {
        for text in [
            "nonsense",
            "a|dev|S|1.2.3.4",
            "a|qa|S|1.2.3.4|1",
            "a/S_1.2.3.4_port",
            "a/b/c",
            "/services/qa/a/S_1_2",
        ] {
            let msg = parse_node(text, Env::Dev).unwrap_err().to_string();
            assert!(msg.contains("appkey|env|service|ip|port"), "{msg}");
            assert!(msg.contains("appkey/service_ip_port"), "{msg}");
            assert!(msg.contains(text), "{msg}");
        }
    }
}
