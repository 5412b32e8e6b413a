//! Balancing and failure governance: which provider node a call goes to, which nodes are out for
//! failing, and how many retries a client may add.
//!
//! Pure logic, no I/O: discovery publishes a [`Table`] of [`Endpoint`]s per service, a
//! [`Balancer`] picks from it, a [`CircuitBreaker`] per node takes failing nodes out for a
//! while (closed, open, half-open) and a [`RetryBudget`] bounds fail-over.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, Instant};
//! use probe_runtime::balance::{BalancerKind, CircuitBreaker, Endpoint, RetryBudget, Table};
//!
//! let table = Table::new(1, vec![
//!     Endpoint::new("Demo_10.0.0.7_9090", "10.0.0.7", 9090, 10),
//!     Endpoint::new("Demo_10.0.0.8_9090", "10.0.0.8", 9090, 30),
//! ]);
//! let balancer = "random".parse::<BalancerKind>()?.build();
//! let (breaker, budget) = (CircuitBreaker::default(), RetryBudget::default());
//!
//! // One call: the first attempt fails, the retry goes to the other node.
//! budget.deposit();
//! let now = Instant::now();
//! let mut tried: Vec<Arc<str>> = Vec::new();
//! while let Some(node) = balancer.pick(&table, None, &breaker.exclusions(&table, &tried, now)) {
//!     let attempt = node.start_call();
//!     let ok = !tried.is_empty();
//!     attempt.finish(Duration::from_millis(3), ok);
//!     breaker.record(&node.id, ok, now);
//!     tried.push(node.id);
//!     if ok || !budget.try_retry(now) {
//!         break;
//!     }
//! }
//! assert_eq!(tried.len(), 2);
//! assert_ne!(tried[0], tried[1]);
//! # Ok::<(), probe_runtime::balance::UnknownBalancer>(())
//! ```

mod breaker;
mod consistent_hash;
mod endpoint;
mod hash;
mod least_loaded;
mod load;
mod random;
mod retry_budget;
mod round_robin;
#[cfg(test)]
mod test_support;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

pub use breaker::{BreakerConfig, BreakerState, CircuitBreaker, Exclusions};
pub use consistent_hash::{ConsistentHash, MAX_RING_WEIGHT, VNODES_PER_WEIGHT};
pub use endpoint::{Endpoint, Table};
pub use least_loaded::LeastLoaded;
pub use load::{CallGuard, LoadStats};
pub use random::WeightedRandom;
pub use retry_budget::{RetryBudget, RetryBudgetConfig};
pub use round_robin::RoundRobin;

/// Chooses the endpoint a call goes to.
///
/// Implementations consider only endpoints in rotation (valid, weight above 0) whose id is not in
/// `exclude`, the nodes this call already tried (fail-over) plus, usually, those a [`CircuitBreaker`]
/// took out; they return `None` when no endpoint is left. `key` is the call's affinity key, used by
/// [`ConsistentHash`] and ignored by the others. Picks are synchronous and short, so one balancer
/// is shared by every call of a client.
pub trait Balancer: Send + Sync + fmt::Debug {
    /// The position in `table.endpoints` of the endpoint for the next attempt of a call, if any
    /// is left.
    fn pick_index(&self, table: &Table, key: Option<&[u8]>, exclude: &[Arc<str>]) -> Option<usize>;

    /// The endpoint for the next attempt of a call, if any is left.
    fn pick(&self, table: &Table, key: Option<&[u8]>, exclude: &[Arc<str>]) -> Option<Endpoint> {
        self.pick_index(table, key, exclude).and_then(|i| table.endpoints.get(i)).cloned()
    }

    /// Whether picks read the endpoints' live load ([`Endpoint::stats`]): if not, callers need
    /// not count calls into it (each count is a write to a cache line every core shares).
    fn uses_load(&self) -> bool {
        true
    }
}

/// The balancers, by the names configuration uses for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum BalancerKind {
    /// [`WeightedRandom`], `random`: the default, as in the Python design.
    #[default]
    WeightedRandom,
    /// [`RoundRobin`], `round_robin`.
    RoundRobin,
    /// [`LeastLoaded`], `least_loaded`.
    LeastLoaded,
    /// [`ConsistentHash`], `consistent_hash`.
    ConsistentHash,
}

impl BalancerKind {
    /// Every kind, in the order of its documentation.
    pub const ALL: [BalancerKind; 4] = [
        BalancerKind::WeightedRandom,
        BalancerKind::RoundRobin,
        BalancerKind::LeastLoaded,
        BalancerKind::ConsistentHash,
    ];

    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            BalancerKind::WeightedRandom => "random",
            BalancerKind::RoundRobin => "round_robin",
            BalancerKind::LeastLoaded => "least_loaded",
            BalancerKind::ConsistentHash => "consistent_hash",
        }
    }

    /// A new balancer of this kind, with no history.
    pub fn build(self) -> Arc<dyn Balancer> {
        match self {
            BalancerKind::WeightedRandom => Arc::new(WeightedRandom::new()),
            BalancerKind::RoundRobin => Arc::new(RoundRobin::new()),
            BalancerKind::LeastLoaded => Arc::new(LeastLoaded::new()),
            BalancerKind::ConsistentHash => Arc::new(ConsistentHash::new()),
        }
    }
}

impl fmt::Display for BalancerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A balancer name that is none of probe's.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown balancer {name:?}: use random, round_robin, least_loaded or consistent_hash")]
pub struct UnknownBalancer {
    /// The name given.
    pub name: String,
}

crate::debug_as_display!(UnknownBalancer);

impl FromStr for BalancerKind {
    type Err = UnknownBalancer;

    fn from_str(name: &str) -> Result<Self, UnknownBalancer> {
        BalancerKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| UnknownBalancer { name: name.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_support::{counts, ids, table};

    #[test]
    fn names_round_trip() {
        for kind in BalancerKind::ALL {
            assert_eq!(kind.as_str().parse::<BalancerKind>().unwrap(), kind);
            assert_eq!(kind.to_string(), kind.as_str());
        }
        assert_eq!(BalancerKind::default(), BalancerKind::WeightedRandom);
    }

    #[test]
    fn unknown_names_say_what_to_use() {
        let err = "RoundRobin".parse::<BalancerKind>().unwrap_err();
        assert_eq!(err.name, "RoundRobin");
        assert!(err.to_string().contains("round_robin"), "{err}");
    }

    #[test]
    fn every_built_balancer_skips_excluded_and_out_of_rotation_nodes() {
        let mut t = table(&[10, 0, 10, 10]);
        Arc::get_mut(&mut t.endpoints).unwrap()[3].valid = false;
        for kind in BalancerKind::ALL {
            let b = kind.build();
            let n = counts(&*b, &t, 200, &[]);
            assert_eq!((n[0] + n[2], n[1], n[3]), (200, 0, 0), "{kind}: {n:?}");
            assert_eq!(counts(&*b, &t, 200, &["n0"]), vec![0, 0, 200, 0], "{kind}");
            for key in [&b"a"[..], b"b", b"c"] {
                assert_eq!(&*b.pick(&t, Some(key), &ids(&["n2"])).unwrap().id, "n0", "{kind}");
                assert!(b.pick(&t, Some(key), &ids(&["n0", "n2"])).is_none(), "{kind}");
            }
        }
    }
}
