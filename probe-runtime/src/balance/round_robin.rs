//! Smooth weighted round robin, as nginx does it: deterministic and exactly proportional.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::{Balancer, Table};

/// Smooth weighted round robin (nginx's algorithm).
///
/// Every pick adds each candidate's weight to its running score, picks the highest score (the
/// first on a tie) and takes the candidates' total weight off the winner. Over any run of
/// `sum of weights` picks each endpoint is picked exactly `weight` times, and the picks interleave
/// (weights 5/1/1 give `a a b a c a a`, not `a a a a a b c`). Candidates are the endpoints in
/// rotation that the call has not tried yet.
///
/// Scores are kept per endpoint id: when a table of a new generation arrives, endpoints that
/// persist keep their score and new ones start at zero, so a table change does not restart the
/// sequence. The state sits behind a mutex held only for the O(endpoints) pick.
#[derive(Debug, Default)]
pub struct RoundRobin {
    state: Mutex<State>,
}

/// Scores aligned with the endpoints of the table of `generation`.
#[derive(Debug, Default)]
struct State {
    generation: Option<u64>,
    ids: Vec<Arc<str>>,
    scores: Vec<i64>,
}

impl State {
    /// Realigns the scores with `table` when they were computed for another table: persisting ids
    /// keep their score, new ones start at zero.
    fn align(&mut self, table: &Table) {
        if self.generation == Some(table.generation) && self.ids.len() == table.endpoints.len() {
            return;
        }
        let old: HashMap<&str, i64> =
            self.ids.iter().map(|id| &**id).zip(self.scores.iter().copied()).collect();
        let scores = table.endpoints.iter().map(|e| old.get(&*e.id).copied().unwrap_or(0)).collect();
        self.scores = scores;
        self.ids = table.endpoints.iter().map(|e| Arc::clone(&e.id)).collect();
        self.generation = Some(table.generation);
    }
}

impl RoundRobin {
    /// A balancer with no history.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Balancer for RoundRobin {
    fn pick_index(&self, table: &Table, _key: Option<&[u8]>, exclude: &[Arc<str>]) -> Option<usize> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.align(table);
        let mut total: i64 = 0;
        let mut best: Option<usize> = None;
        for (i, e) in table.endpoints.iter().enumerate() {
            if !e.is_candidate(exclude) {
                continue;
            }
            let weight = i64::try_from(e.units()).unwrap_or(i64::MAX);
            state.scores[i] += weight;
            total += weight;
            if best.is_none_or(|b| state.scores[i] > state.scores[b]) {
                best = Some(i);
            }
        }
        let best = best?;
        state.scores[best] -= total;
        Some(best)
    }

    fn uses_load(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::Endpoint;
    use crate::balance::test_support::{counts, ids, table};

    #[test]
    fn splits_exactly_by_weight() {
        let t = table(&[10, 20, 70]);
        assert_eq!(counts(&RoundRobin::new(), &t, 10_000, &[]), vec![1000, 2000, 7000]);
    }

    #[test]
    fn splits_fractional_weights_exactly() {
        let mut endpoints = table(&[1, 1]).endpoints.to_vec();
        for (e, w) in endpoints.iter_mut().zip([2.5, 0.5]) {
            e.weight = crate::registry::layout::Weight::from_json(&serde_json::json!(w)).unwrap();
        }
        let t = Table::new(1, endpoints);
        assert_eq!(counts(&RoundRobin::new(), &t, 3_000, &[]), vec![2500, 500]);
    }

    #[test]
    fn interleaves_like_nginx() {
        let t = table(&[5, 1, 1]);
        let b = RoundRobin::new();
        let picks: Vec<Arc<str>> = (0..7).map(|_| b.pick(&t, None, &[]).unwrap().id).collect();
        assert_eq!(picks, ids(&["n0", "n0", "n1", "n0", "n2", "n0", "n0"]));
    }

    #[test]
    fn skips_weight_zero_and_invalid() {
        let mut t = table(&[10, 0, 10, 10]);
        Arc::get_mut(&mut t.endpoints).unwrap()[2].valid = false;
        assert_eq!(counts(&RoundRobin::new(), &t, 1000, &[]), vec![500, 0, 0, 500]);
    }

    #[test]
    fn honours_exclude() {
        let t = table(&[10, 20, 70]);
        let b = RoundRobin::new();
        assert_eq!(counts(&b, &t, 900, &["n2"]), vec![300, 600, 0]);
        assert_eq!(counts(&b, &t, 100, &["n0", "n2"]), vec![0, 100, 0]);
        assert!(b.pick(&t, None, &ids(&["n0", "n1", "n2"])).is_none());
        assert!(b.pick(&Table::default(), None, &[]).is_none());
    }

    #[test]
    fn persisting_endpoints_keep_their_place_across_generations() {
        let t1 = table(&[1, 1, 1]);
        let b = RoundRobin::new();
        assert_eq!(&*b.pick(&t1, None, &[]).unwrap().id, "n0");
        // Same endpoints in a new order, plus a newcomer: n1 and n2 are owed their turn before n0.
        let reordered: Vec<Endpoint> = [2, 1, 0]
            .iter()
            .map(|&i| t1.endpoints[i].clone())
            .chain([Endpoint::new("n3", "h", 4, 1)])
            .collect();
        let t2 = t1.successor(reordered);
        let picks: Vec<Arc<str>> = (0..4).map(|_| b.pick(&t2, None, &[]).unwrap().id).collect();
        assert_eq!(picks, ids(&["n2", "n1", "n3", "n0"]));
    }

    #[test]
    fn new_table_resets_state_for_new_ids() {
        let b = RoundRobin::new();
        counts(&b, &table(&[10, 20, 70]), 37, &[]);
        let mut fresh = table(&[10, 20, 70]);
        fresh.generation = 99;
        for (i, e) in Arc::get_mut(&mut fresh.endpoints).unwrap().iter_mut().enumerate() {
            e.id = format!("m{i}").into();
        }
        assert_eq!(counts(&b, &fresh, 100, &[]), vec![10, 20, 70]);
    }

    #[test]
    fn is_shared_safely_between_threads() {
        let t = table(&[10, 20, 70]);
        let b = RoundRobin::new();
        let per_thread: Vec<Vec<usize>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4).map(|_| s.spawn(|| counts(&b, &t, 2500, &[]))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let total: Vec<usize> = (0..3).map(|i| per_thread.iter().map(|c| c[i]).sum()).collect();
        assert_eq!(total, vec![1000, 2000, 7000]);
    }
}
