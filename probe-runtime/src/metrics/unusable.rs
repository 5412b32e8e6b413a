//! Registry nodes probe cannot use, as the watches of this process last read them: the gauge
//! `probe_registry_unusable_nodes` (1 per node, labelled with its reason) and the counter
//! `probe_registry_unusable_nodes_seen_total` (each time a node became unusable, or changed reason).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;

use super::MetricsRegistry;
use crate::registry::layout::{Env, UnusableNode};

/// One unusable node: `(child, service or "", reason kind)`.
type Entry = (String, String, &'static str);

/// The unusable nodes of each watched app, by `(env, appkey)`.
#[derive(Debug, Default)]
pub(super) struct UnusableNodes {
    by_app: RwLock<BTreeMap<(Env, String), Vec<Entry>>>,
    /// Unusable nodes seen, by `(env, appkey, reason kind)`.
    seen: RwLock<BTreeMap<(Env, String, &'static str), AtomicU64>>,
}

impl MetricsRegistry {
    /// Records the unusable nodes a watch of `appkey` in `env` read, replacing what it recorded
    /// before; `newly` are the ones that became unusable (or changed reason) since.
    pub fn set_unusable_nodes(&self, env: Env, appkey: &str, all: &[UnusableNode], newly: &[&UnusableNode]) {
        let unusable = &self.inner().unusable;
        let entries: Vec<Entry> = all
            .iter()
            .map(|n| (n.child.clone(), n.service().unwrap_or_default().to_owned(), n.problem.kind()))
            .collect();
        let mut by_app = unusable.by_app.write().unwrap_or_else(PoisonError::into_inner);
        if entries.is_empty() {
            by_app.remove(&(env, appkey.to_owned()));
        } else {
            by_app.insert((env, appkey.to_owned()), entries);
        }
        drop(by_app);
        let mut seen = unusable.seen.write().unwrap_or_else(PoisonError::into_inner);
        for node in newly {
            let key = (env, appkey.to_owned(), node.problem.kind());
            seen.entry(key).or_default().fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The unusable nodes recorded for `appkey` in `env`: `(child, reason kind)`.
    pub fn unusable_nodes(&self, env: Env, appkey: &str) -> Vec<(String, &'static str)> {
        let by_app = self.inner().unusable.by_app.read().unwrap_or_else(PoisonError::into_inner);
        by_app
            .get(&(env, appkey.to_owned()))
            .map(|entries| entries.iter().map(|(child, _, kind)| (child.clone(), *kind)).collect())
            .unwrap_or_default()
    }

    pub(super) fn encode_unusable(&self, encoder: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        let unusable = &self.inner().unusable;
        let mut gauge = encoder.encode_descriptor(
            "probe_registry_unusable_nodes",
            "Registry nodes a watch read that probe cannot use (they get no calls), 1 each, by reason.",
            None,
            MetricType::Gauge,
        )?;
        for ((env, appkey), entries) in unusable.by_app.read().unwrap_or_else(PoisonError::into_inner).iter()
        {
            for (child, service, kind) in entries {
                let labels = [
                    ("env", env.as_str()),
                    ("appkey", appkey.as_str()),
                    ("service", service.as_str()),
                    ("node", child.as_str()),
                    ("reason", kind),
                ];
                gauge.encode_family(&labels)?.encode_gauge(&1_i64)?;
            }
        }
        let mut counter = encoder.encode_descriptor(
            "probe_registry_unusable_nodes_seen",
            "Times a registry node became unusable to probe (or changed reason), by reason.",
            None,
            MetricType::Counter,
        )?;
        for ((env, appkey, kind), n) in unusable.seen.read().unwrap_or_else(PoisonError::into_inner).iter() {
            let labels = [("env", env.as_str()), ("appkey", appkey.as_str()), ("reason", kind)];
            let value = n.load(Ordering::Relaxed);
            counter.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(&value, None)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::layout::{NodeData, UnusableReason};

    #[test]
    fn renders_each_unusable_node_with_its_reason() {
        let registry = MetricsRegistry::new();
        let problem = NodeData::from_json(br#"{"valid": 0, "weight": "30"}"#).unwrap_err();
        let node = UnusableNode::new("Echo_1.2.3.4_80", None, UnusableReason::Data(problem), b"{}");
        registry.set_unusable_nodes(Env::Dev, "shop", std::slice::from_ref(&node), &[&node]);
        let text = registry.render();
        assert!(
            text.contains(
                r#"probe_registry_unusable_nodes{env="dev",appkey="shop",service="",node="Echo_1.2.3.4_80",reason="weight_not_number"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"probe_registry_unusable_nodes_seen_total{env="dev",appkey="shop",reason="weight_not_number"} 1"#),
            "{text}"
        );
        assert_eq!(
            registry.unusable_nodes(Env::Dev, "shop"),
            [("Echo_1.2.3.4_80".to_owned(), "weight_not_number")]
        );
        registry.set_unusable_nodes(Env::Dev, "shop", &[], &[]);
        assert!(!registry.render().contains("probe_registry_unusable_nodes{"));
        assert!(registry.unusable_nodes(Env::Dev, "shop").is_empty());
    }
}
