//! The traffic rule each watched service runs in this process: the gauges
//! `probe_client_rule_revision` (the revision in force, 0 for none) and `probe_client_rule_problem`
//! (1 while the registry holds a document that does not parse or check, so the last good one
//! stays), and when each revision was applied.

use std::collections::BTreeMap;
use std::sync::{PoisonError, RwLock};
use std::time::SystemTime;

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;

use super::MetricsRegistry;
use crate::registry::layout::Env;

/// What one service's routes run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleState {
    /// The revision in force (0: no rule).
    pub revision: u64,
    /// When it was applied.
    pub applied_at: SystemTime,
    /// Whether the registry's document is bad (the revision in force is the last good one).
    pub problem: bool,
}

/// By `(env, appkey, service)`.
pub(super) type RuleStates = RwLock<BTreeMap<(Env, String, String), RuleState>>;

impl MetricsRegistry {
    /// Records what the routes of `service` (of `appkey` in `env`) run now.
    pub fn set_rule_state(
        &self,
        env: Env,
        appkey: &str,
        service: &str,
        revision: Option<u64>,
        problem: bool,
    ) {
        let mut states = self.inner().rules.write().unwrap_or_else(PoisonError::into_inner);
        let key = (env, appkey.to_owned(), service.to_owned());
        let revision = revision.unwrap_or(0);
        let applied_at = match states.get(&key) {
            Some(old) if old.revision == revision => old.applied_at,
            _ => SystemTime::now(),
        };
        states.insert(key, RuleState { revision, applied_at, problem });
    }

    /// What every watched service runs: `((env, appkey, service), state)`.
    pub fn rule_states(&self) -> Vec<((Env, String, String), RuleState)> {
        let states = self.inner().rules.read().unwrap_or_else(PoisonError::into_inner);
        states.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    pub(super) fn encode_rules(&self, encoder: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        let states = self.rule_states();
        let mut revision = encoder.encode_descriptor(
            "probe_client_rule_revision",
            "The traffic rule revision a client's routes run (0: none).",
            None,
            MetricType::Gauge,
        )?;
        for ((env, appkey, service), state) in &states {
            let labels = [("env", env.as_str()), ("appkey", appkey.as_str()), ("service", service.as_str())];
            revision
                .encode_family(&labels)?
                .encode_gauge(&i64::try_from(state.revision).unwrap_or(i64::MAX))?;
        }
        let mut problem = encoder.encode_descriptor(
            "probe_client_rule_problem",
            "1 while the registry holds a rule document that does not parse or check (the last good rule stays).",
            None,
            MetricType::Gauge,
        )?;
        for ((env, appkey, service), state) in &states {
            let labels = [("env", env.as_str()), ("appkey", appkey.as_str()), ("service", service.as_str())];
            problem.encode_family(&labels)?.encode_gauge(&i64::from(state.problem))?;
        }
        Ok(())
    }
}
