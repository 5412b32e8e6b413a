//! `probe nodes weight|enable|disable NODE`: one audited change of a node's settings, written to
//! the settings store and to the live node.

use anyhow::{Context as _, Result};
use probe_runtime::registry::layout::NodeKey;
use probe_runtime::registry::{NodeChange, Operator};
use serde_json::json;

use super::output::Report;

/// A change an operator makes to one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeAction {
    /// Set the weight.
    Weight(u32),
    /// Put back into rotation.
    Enable,
    /// Take out of rotation.
    Disable,
}

impl NodeAction {
    /// The audit log's name of the action.
    fn name(self) -> &'static str {
        match self {
            NodeAction::Weight(_) => "set_weight",
            NodeAction::Enable => "enable",
            NodeAction::Disable => "disable",
        }
    }

    /// The node setting the action changes.
    fn field(self) -> &'static str {
        match self {
            NodeAction::Weight(_) => "weight",
            NodeAction::Enable | NodeAction::Disable => "valid",
        }
    }

    /// The value of [`NodeAction::field`] in `change`, before and after.
    fn values(self, change: &NodeChange) -> (u32, u32) {
        match self {
            NodeAction::Weight(_) => (change.before.weight, change.after.weight),
            NodeAction::Enable | NodeAction::Disable => {
                (u32::from(change.before.valid), u32::from(change.after.valid))
            }
        }
    }
}

/// Applies `action` to `key` and reports `weight 10 -> 70` and whether the live node changed.
pub async fn apply(op: &Operator, key: &NodeKey, action: NodeAction) -> Result<Report> {
    let change = match action {
        NodeAction::Weight(weight) => op.set_weight(key, weight).await,
        NodeAction::Enable => op.enable(key).await,
        NodeAction::Disable => op.disable(key).await,
    }
    .with_context(|| format!("cannot {} node {}", action.name().replace('_', " "), key.redis_field()))?;

    let (before, after) = action.values(&change);
    let field = action.field();
    let mut text = format!("{} {field} {before} -> {after}\n", key.redis_field());
    text.push_str(&if change.live {
        format!("live node {} updated: clients route by it now\n", key.zk_node_path())
    } else {
        format!(
            "live node not updated: {} is not running; the stored settings apply when it registers again\n",
            key.zk_node_path()
        )
    });
    if !change.after.in_rotation() {
        text.push_str("the node is out of rotation: clients send it no calls\n");
    }
    let json = json!({
        "node": key.redis_field(),
        "zk_path": key.zk_node_path(),
        "action": action.name(),
        "field": field,
        "before": before,
        "after": after,
        "live_updated": change.live,
        "in_rotation": change.after.in_rotation(),
        "settings_before": change.before,
        "settings_after": change.after,
    });
    Ok(Report::new(json, text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use probe_runtime::registry::Backends;
    use probe_runtime::registry::embedded::Embedded;
    use probe_runtime::registry::layout::{Env, NodeData};

    #[tokio::test]
    async fn changes_print_old_and_new_values_and_the_live_update() {
        let embedded = Embedded::new();
        let backends = Backends::embedded(Env::Dev, &embedded);
        let key = NodeKey::new(Env::Dev, "shop", "Order", "10.0.0.1", 9001).unwrap();
        let session = backends.registry.session().await.unwrap();
        session.register(&key, &NodeData::new("10.0.0.1", 9001)).await.unwrap();
        let op = Operator::new(backends.clone()).with_actor("cli:t@h");

        let report = apply(&op, &key, NodeAction::Weight(70)).await.unwrap();
        assert!(
            report.text.starts_with("shop|dev|Order|10.0.0.1|9001 weight 10 -> 70\nlive node"),
            "{}",
            report.text
        );
        assert_eq!((report.json["before"].clone(), report.json["after"].clone()), (json!(10), json!(70)));
        assert_eq!(report.json["live_updated"], true);

        let report = apply(&op, &key, NodeAction::Disable).await.unwrap();
        assert!(
            report.text.contains("valid 1 -> 0") && report.text.contains("out of rotation"),
            "{}",
            report.text
        );
        assert_eq!(backends.settings.get(&key).await.unwrap().unwrap().valid, 0);

        session.deregister(&key).await.unwrap();
        let report = apply(&op, &key, NodeAction::Enable).await.unwrap();
        assert!(
            report.text.contains("valid 0 -> 1") && report.text.contains("not running"),
            "{}",
            report.text
        );
        assert_eq!(backends.audit.recent(10).await.unwrap().len(), 3);
    }

    #[tokio::test]
    async fn unknown_nodes_say_how_to_list_nodes() {
        let embedded = Embedded::new();
        let op = Operator::new(Backends::embedded(Env::Dev, &embedded));
        let key = NodeKey::new(Env::Dev, "shop", "Order", "10.0.0.1", 1).unwrap();
        let err = apply(&op, &key, NodeAction::Enable).await.unwrap_err();
        assert!(format!("{err:#}").contains("probe nodes list"), "{err:#}");
    }
}
