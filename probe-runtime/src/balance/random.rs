//! Weighted random choice: the default balancer, and the sampling the other balancers build on.

use std::sync::{Arc, Mutex, PoisonError};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::endpoint::same_id;
use super::{Balancer, Endpoint, Table};

/// Where a balancer draws its random numbers: a thread-local generator, or a seeded one for
/// reproducible tests.
#[derive(Debug)]
pub(crate) enum RngSource {
    /// `fastrand`'s thread-local generator (wyrand): no shared state. Picks need no cryptographic
    /// strength; `rand::rng()` (ChaCha12, a reference count per use) took about 20 instructions
    /// more a draw, on every pick among several nodes.
    Thread,
    /// A seeded generator behind a short-lived lock.
    Seeded(Box<Mutex<StdRng>>),
}

impl RngSource {
    pub(crate) fn seeded(seed: u64) -> Self {
        RngSource::Seeded(Box::new(Mutex::new(StdRng::seed_from_u64(seed))))
    }

    /// A uniform number in `0..n`; `n` must be positive.
    pub(crate) fn below(&self, n: u64) -> u64 {
        match self {
            RngSource::Thread => fastrand::u64(0..n),
            RngSource::Seeded(rng) => rng.lock().unwrap_or_else(PoisonError::into_inner).random_range(0..n),
        }
    }
}

/// Draws among all the endpoints in rotation before one among those a call may use is made
/// directly: with one endpoint of `n` excluded, each draw lands on it 1/n of the time.
const DRAWS: usize = 4;

/// Index of an endpoint drawn with probability weight / (sum of weights), among the endpoints in
/// rotation that are neither in `exclude` nor at index `skip`. `None` when there is none.
pub(crate) fn weighted_index(
    endpoints: &[Endpoint],
    exclude: &[Arc<str>],
    skip: Option<usize>,
    rng: &RngSource,
) -> Option<usize> {
    let eligible = |(i, e): &(usize, &Endpoint)| Some(*i) != skip && e.is_candidate(exclude);
    let (mut total, mut candidates, mut last) = (0u64, 0usize, 0usize);
    for (i, e) in endpoints.iter().enumerate().filter(eligible) {
        let units = e.units();
        if units > 0 {
            (total, candidates, last) = (total + units, candidates + 1, i);
        }
    }
    match candidates {
        0 => return None,
        // One node to go to: no draw.
        1 => return Some(last),
        _ => {}
    }
    let mut ticket = rng.below(total);
    for (i, e) in endpoints.iter().enumerate().filter(eligible) {
        let weight = e.units();
        if ticket < weight {
            return Some(i);
        }
        ticket -= weight;
    }
    None
}

/// Picks each endpoint in rotation with probability weight / (sum of weights): what the Python
/// design did, and probe's default.
///
/// Stateless apart from the random generator, so tables can change freely between picks.
#[derive(Debug)]
pub struct WeightedRandom {
    rng: RngSource,
}

impl WeightedRandom {
    /// A balancer drawing from the thread-local generator.
    pub fn new() -> Self {
        WeightedRandom { rng: RngSource::Thread }
    }

    /// A balancer drawing from a generator seeded with `seed`: the same picks on every run.
    pub fn with_seed(seed: u64) -> Self {
        WeightedRandom { rng: RngSource::seeded(seed) }
    }
}

impl Default for WeightedRandom {
    fn default() -> Self {
        WeightedRandom::new()
    }
}

impl Balancer for WeightedRandom {
    fn pick_index(&self, table: &Table, _key: Option<&[u8]>, exclude: &[Arc<str>]) -> Option<usize> {
        // A draw among all the endpoints in rotation takes no pass over them; drawn again while
        // it lands on an excluded one, it is a draw among the others (a few times: then the
        // others are drawn from directly).
        for _ in 0..DRAWS {
            match table.draw(|n| self.rng.below(n)) {
                Some(Some(i)) if !exclude.iter().any(|id| same_id(id, &table.endpoints[i].id)) => {
                    return Some(i);
                }
                Some(None) => return None,
                // Excluded, or a table changed in place.
                _ if exclude.is_empty() => break,
                _ => {}
            }
        }
        weighted_index(&table.endpoints, exclude, None, &self.rng)
    }

    fn uses_load(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::test_support::{counts, table};

    #[test]
    fn splits_by_weight() {
        let t = table(&[10, 20, 70]);
        let b = WeightedRandom::with_seed(42);
        let n = counts(&b, &t, 10_000, &[]);
        for (got, want) in n.iter().zip([1000, 2000, 7000]) {
            assert!(got.abs_diff(want) <= 300, "{n:?}");
        }
    }

    #[test]
    fn fractional_weights_split_in_proportion() {
        let mut endpoints = table(&[1, 1, 1]).endpoints.to_vec();
        for (e, w) in endpoints.iter_mut().zip([30.5, 10.0, 0.5]) {
            e.weight = crate::registry::layout::Weight::from_json(&serde_json::json!(w)).unwrap();
        }
        let t = Table::new(1, endpoints);
        let n = counts(&WeightedRandom::with_seed(5), &t, 41_000, &[]);
        for (got, want) in n.iter().zip([30_500, 10_000, 500]) {
            assert!(got.abs_diff(want) <= 450, "{n:?}");
        }
    }

    #[test]
    fn thread_rng_also_splits_by_weight() {
        let t = table(&[10, 90]);
        let n = counts(&WeightedRandom::new(), &t, 10_000, &[]);
        assert!(n[0].abs_diff(1000) <= 300, "{n:?}");
    }

    #[test]
    fn skips_weight_zero_and_invalid() {
        let mut t = table(&[10, 0, 10]);
        Arc::get_mut(&mut t.endpoints).unwrap()[2].valid = false;
        assert_eq!(counts(&WeightedRandom::with_seed(1), &t, 1000, &[]), vec![1000, 0, 0]);
    }

    #[test]
    fn honours_exclude() {
        let t = table(&[10, 20, 70]);
        let b = WeightedRandom::with_seed(2);
        assert_eq!(counts(&b, &t, 1000, &["n2"])[2], 0);
        assert_eq!(counts(&b, &t, 1000, &["n1", "n2"]), vec![1000, 0, 0]);
        assert!(b.pick(&t, None, &["n0".into(), "n1".into(), "n2".into()]).is_none());
        assert!(b.pick(&Table::default(), None, &[]).is_none());
    }

    #[test]
    fn excluding_some_splits_the_rest_by_weight() {
        let t = table(&[10, 20, 70]);
        let n = counts(&WeightedRandom::with_seed(4), &t, 9_000, &["n2"]);
        assert!(n[0].abs_diff(3_000) <= 300 && n[2] == 0, "{n:?}");
        // The heaviest excluded: most draws land on it, and the rest still split 1:2.
        let n = counts(&WeightedRandom::with_seed(6), &t, 9_000, &["n2"]);
        assert_eq!(n[0] + n[1], 9_000);
        let n = counts(&WeightedRandom::with_seed(7), &t, 8_000, &["n0"]);
        assert!(n[1].abs_diff(1_780) <= 250 && n[0] == 0, "{n:?}");
    }

    #[test]
    fn same_seed_same_picks() {
        let t = table(&[10, 20, 70]);
        let picks = |b: &WeightedRandom| -> Vec<Arc<str>> {
            (0..50).map(|_| b.pick(&t, None, &[]).unwrap().id).collect()
        };
        assert_eq!(picks(&WeightedRandom::with_seed(9)), picks(&WeightedRandom::with_seed(9)));
    }

    #[test]
    fn weighted_index_skips_the_given_index() {
        let t = table(&[10, 10]);
        let rng = RngSource::seeded(3);
        for _ in 0..100 {
            assert_eq!(weighted_index(&t.endpoints, &[], Some(0), &rng), Some(1));
        }
        assert_eq!(weighted_index(&t.endpoints[..1], &[], Some(0), &rng), None);
    }
}
