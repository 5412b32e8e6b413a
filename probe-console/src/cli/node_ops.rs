//! `probe nodes weight|enable|disable NODE`: one audited change of a node's settings, written to
//! the settings store and to the live node.
//!
//! A change that was applied is reported as applied (exit status 0) even when the audit log could
//! not record it: the change's lines go to stdout, the audit's failure to stderr as a warning that
//! says how to enable the audit log.

use anyhow::{Context as _, Result};
use probe_runtime::registry::layout::NodeKey;
use probe_runtime::registry::{NodeChange, Operator};
use serde_json::{Value, json};

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

    /// The value of [`NodeAction::field`] in `change`, before and after, as the node's JSON
    /// holds it.
    fn values(self, change: &NodeChange) -> (Value, Value) {
        match self {
            NodeAction::Weight(_) => (json!(change.before.weight), json!(change.after.weight)),
            NodeAction::Enable | NodeAction::Disable => {
                (json!(change.before.valid), json!(change.after.valid))
            }
        }
    }
}

/// Applies `action` to `key` and reports `weight 10 -> 70`, whether the live node changed, and
/// (as a warning) that the audit log did not record it.
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
        "audited": change.audit.is_ok(),
        "audit_error": change.audit.as_ref().err().map(ToString::to_string),
    });
    let report = Report::new(json, text);
    Ok(match &change.audit {
        Ok(()) => report,
        Err(err) => report.with_warning(format!("the change was applied but not audited: {err}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

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
        assert!(!backends.settings.get(&key).await.unwrap().unwrap().valid.is_on());

        session.deregister(&key).await.unwrap();
        let report = apply(&op, &key, NodeAction::Enable).await.unwrap();
        assert!(
            report.text.contains("valid 0 -> 1") && report.text.contains("not running"),
            "{}",
            report.text
        );
        assert_eq!(backends.audit.recent(10).await.unwrap().len(), 3);
        assert!(report.warnings.is_empty() && report.json["audited"] == true, "{report:?}");
    }

    use crate::cli::test_support::NoAuditTable;

    #[tokio::test]
    async fn a_change_the_audit_log_misses_is_reported_as_applied_with_a_warning() {
        let embedded = Embedded::new();
        let backends = Backends { audit: Arc::new(NoAuditTable), ..Backends::embedded(Env::Dev, &embedded) };
        let key = NodeKey::new(Env::Dev, "shop", "Order", "10.0.0.1", 9002).unwrap();
        backends.settings.put(&key, &NodeData::new("10.0.0.1", 9002)).await.unwrap();
        let op = Operator::new(backends.clone());

        let report =
            apply(&op, &key, NodeAction::Weight(70)).await.expect("the change is reported as applied");
        assert!(report.text.starts_with("shop|dev|Order|10.0.0.1|9002 weight 10 -> 70\n"), "{}", report.text);
        assert_eq!(
            report.warnings,
            ["the change was applied but not audited: table probe_audit is missing in the MySQL database \
              design; run `probe db migrate` to enable the audit log"]
        );
        assert_eq!((report.json["audited"].clone(), report.json["after"].clone()), (json!(false), json!(70)));
        assert!(report.json["audit_error"].as_str().unwrap().contains("probe db migrate"));
        assert!(backends.settings.get(&key).await.unwrap().unwrap().weight == 70);
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
