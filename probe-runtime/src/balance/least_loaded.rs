//! Least loaded by the power of two choices over calls in flight and the latency average.

use std::sync::Arc;

use super::random::{RngSource, weighted_index};
use super::{Balancer, Endpoint, Table};

/// Power of two choices: draws two distinct candidates by weight, as [`WeightedRandom`] would, and
/// picks the one with the lower load score `(in_flight + 1) × latency EWMA`.
///
/// Sampling two instead of scanning all keeps every client from herding onto the same "best" node,
/// and weights still set each node's share of the draws. A candidate with no latency sample yet
/// borrows the other's average, so a new node competes on calls in flight rather than looking
/// infinitely fast; when neither has a sample the calls in flight decide alone. Ties go to the first
/// draw. With a single candidate it is picked whatever its load.
///
/// [`WeightedRandom`]: super::WeightedRandom
#[derive(Debug)]
pub struct LeastLoaded {
    rng: RngSource,
}

impl LeastLoaded {
    /// A balancer drawing from the thread-local generator.
    pub fn new() -> Self {
        LeastLoaded { rng: RngSource::Thread }
    }

    /// A balancer drawing from a generator seeded with `seed`: the same picks on every run.
    pub fn with_seed(seed: u64) -> Self {
        LeastLoaded { rng: RngSource::seeded(seed) }
    }
}

impl Default for LeastLoaded {
    fn default() -> Self {
        LeastLoaded::new()
    }
}

/// The load scores of two endpoints, lower is better.
fn scores(a: &Endpoint, b: &Endpoint) -> (u64, u64) {
    let (la, lb) = (a.stats.ewma_micros(), b.stats.ewma_micros());
    let la_or_b = if la == 0 { lb } else { la };
    let lb_or_a = if lb == 0 { la } else { lb };
    let score =
        |e: &Endpoint, latency: u64| e.stats.in_flight().saturating_add(1).saturating_mul(latency.max(1));
    (score(a, la_or_b), score(b, lb_or_a))
}

impl Balancer for LeastLoaded {
    fn pick_index(&self, table: &Table, _key: Option<&[u8]>, exclude: &[Arc<str>]) -> Option<usize> {
        let endpoints = &table.endpoints;
        let first = weighted_index(endpoints, exclude, None, &self.rng)?;
        let Some(second) = weighted_index(endpoints, exclude, Some(first), &self.rng) else {
            return Some(first);
        };
        let (sa, sb) = scores(&endpoints[first], &endpoints[second]);
        Some(if sb < sa { second } else { first })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::test_support::{counts, ids, table};
    use std::time::Duration;

    #[test]
    fn idle_nodes_split_by_weight() {
        let t = table(&[10, 20, 70]);
        let n = counts(&LeastLoaded::with_seed(5), &t, 10_000, &[]);
        // Two draws and a tie to the first keep the first draw's weights.
        for (got, want) in n.iter().zip([1000, 2000, 7000]) {
            assert!(got.abs_diff(want) <= 300, "{n:?}");
        }
    }

    #[test]
    fn avoids_a_node_with_many_calls_in_flight() {
        let t = table(&[10, 10, 10]);
        let _busy: Vec<_> = (0..50).map(|_| t.endpoints[1].start_call()).collect();
        let n = counts(&LeastLoaded::with_seed(6), &t, 3000, &[]);
        assert_eq!(n[1], 0, "n1 loses every comparison: {n:?}");
        assert!(n[0] > 1200 && n[2] > 1200, "{n:?}");
    }

    #[test]
    fn prefers_the_faster_node() {
        let t = table(&[10, 10]);
        t.endpoints[0].start_call().finish(Duration::from_millis(50), true);
        t.endpoints[1].start_call().finish(Duration::from_millis(5), true);
        assert_eq!(counts(&LeastLoaded::with_seed(7), &t, 1000, &[]), vec![0, 1000]);
    }

    #[test]
    fn a_new_node_competes_on_calls_in_flight() {
        let t = table(&[10, 10]);
        t.endpoints[0].start_call().finish(Duration::from_millis(5), true);
        let (fresh, known) = scores(&t.endpoints[1], &t.endpoints[0]);
        assert_eq!(fresh, known);
        let _guard = t.endpoints[1].start_call();
        let (fresh, known) = scores(&t.endpoints[1], &t.endpoints[0]);
        assert_eq!(fresh, 2 * known);
    }

    #[test]
    fn skips_weight_zero_and_invalid() {
        let mut t = table(&[10, 0, 10]);
        Arc::get_mut(&mut t.endpoints).unwrap()[2].valid = false;
        assert_eq!(counts(&LeastLoaded::with_seed(8), &t, 1000, &[]), vec![1000, 0, 0]);
    }

    #[test]
    fn honours_exclude() {
        let t = table(&[10, 20, 70]);
        let b = LeastLoaded::with_seed(9);
        assert_eq!(counts(&b, &t, 1000, &["n2"])[2], 0);
        assert_eq!(counts(&b, &t, 1000, &["n0", "n2"]), vec![0, 1000, 0]);
        assert!(b.pick(&t, None, &ids(&["n0", "n1", "n2"])).is_none());
        assert!(LeastLoaded::new().pick(&Table::default(), None, &[]).is_none());
    }
}
