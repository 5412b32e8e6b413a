//! Consistent hashing on a call key over a ring of virtual nodes, cached per table generation.

use std::sync::{Arc, Mutex, PoisonError};

use super::hash::StableHasher;
use super::{Balancer, Endpoint, Table, WeightedRandom};
use crate::registry::layout::UNITS_PER_WEIGHT;

/// Virtual nodes per unit of weight: 40 for the default weight of 10.
pub const VNODES_PER_WEIGHT: u32 = 4;

/// Weights above this count as this much on the ring, which bounds one endpoint to 4,000 virtual
/// nodes.
pub const MAX_RING_WEIGHT: u32 = 1000;

/// Sends every call with the same key to the same endpoint while the endpoint list allows it.
///
/// Each endpoint in rotation owns `weight × VNODES_PER_WEIGHT` points on a 64-bit ring (weight
/// capped at [`MAX_RING_WEIGHT`]), placed by a stable hash of its id and the point's number, so
/// every client, on every Rust version and platform, builds the same ring. A key goes to the owner
/// of the first point at or after the key's hash. Removing an endpoint moves only the keys it owned;
/// adding one takes keys only from the others' ranges. Table order does not matter.
///
/// The ring is built once per table generation and shared by concurrent picks. When the owner is in
/// `exclude` (tried already by this call) the walk continues clockwise to the next endpoint not
/// excluded. Calls without a key are spread by [`WeightedRandom`].
#[derive(Debug, Default)]
pub struct ConsistentHash {
    ring: Mutex<Option<Arc<Ring>>>,
    fallback: WeightedRandom,
}

/// The points of one table, sorted by hash.
#[derive(Debug)]
struct Ring {
    generation: u64,
    table_len: usize,
    /// (point hash, index of the owning endpoint in the table).
    points: Vec<(u64, usize)>,
}

/// The virtual nodes of `e`: [`VNODES_PER_WEIGHT`] per unit of weight (fractions rounded up, so
/// any positive weight owns a point), the weight capped at [`MAX_RING_WEIGHT`].
fn vnodes(e: &Endpoint) -> u32 {
    let units = e.units().min(u64::from(MAX_RING_WEIGHT) * UNITS_PER_WEIGHT);
    // At most MAX_RING_WEIGHT × VNODES_PER_WEIGHT, so it fits.
    u32::try_from((units * u64::from(VNODES_PER_WEIGHT)).div_ceil(UNITS_PER_WEIGHT)).unwrap_or(u32::MAX)
}

impl Ring {
    fn build(table: &Table) -> Ring {
        let endpoints = &table.endpoints;
        let mut points = Vec::new();
        for (i, e) in endpoints.iter().enumerate().filter(|(_, e)| e.in_rotation()) {
            for vnode in 0..vnodes(e) {
                let mut h = StableHasher::new();
                h.write(e.id.as_bytes());
                h.write(b"#");
                h.write(&vnode.to_le_bytes());
                points.push((h.finish(), i));
            }
        }
        points.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| endpoints[a.1].id.cmp(&endpoints[b.1].id)));
        Ring { generation: table.generation, table_len: endpoints.len(), points }
    }

    fn fits(&self, table: &Table) -> bool {
        self.generation == table.generation && self.table_len == table.endpoints.len()
    }

    /// The index of the endpoint owning `key`, walking clockwise past excluded endpoints.
    fn owner(&self, table: &Table, key: &[u8], exclude: &[Arc<str>]) -> Option<usize> {
        let hash = StableHasher::hash(key);
        let start = self.points.partition_point(|p| p.0 < hash);
        let len = self.points.len();
        (0..len)
            .map(|step| self.points[(start + step) % len].1)
            .find(|&i| table.endpoints[i].is_candidate(exclude))
    }
}

impl ConsistentHash {
    /// A balancer with no ring yet; calls without a key use the thread-local generator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Like [`ConsistentHash::new`], with calls without a key drawn from a generator seeded with
    /// `seed`.
    pub fn with_seed(seed: u64) -> Self {
        ConsistentHash { ring: Mutex::default(), fallback: WeightedRandom::with_seed(seed) }
    }

    /// The ring of `table`, built on the first pick of a new generation.
    fn ring(&self, table: &Table) -> Arc<Ring> {
        let mut cached = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        match &*cached {
            Some(ring) if ring.fits(table) => Arc::clone(ring),
            _ => Arc::clone(cached.insert(Arc::new(Ring::build(table)))),
        }
    }
}

impl Balancer for ConsistentHash {
    fn pick_index(&self, table: &Table, key: Option<&[u8]>, exclude: &[Arc<str>]) -> Option<usize> {
        let Some(key) = key else {
            return self.fallback.pick_index(table, None, exclude);
        };
        self.ring(table).owner(table, key, exclude)
    }

    fn uses_load(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::test_support::{counts, ids, table};

    fn keys() -> impl Iterator<Item = Vec<u8>> {
        (0..10_000).map(|k: u32| format!("user-{k}").into_bytes())
    }

    fn owners(b: &ConsistentHash, t: &Table) -> Vec<Arc<str>> {
        keys().map(|k| b.pick(t, Some(&k), &[]).unwrap().id).collect()
    }

    #[test]
    fn same_key_same_node_across_calls_balancers_and_tables() {
        let t = table(&[10, 10, 10, 10]);
        let first = owners(&ConsistentHash::new(), &t);
        assert_eq!(owners(&ConsistentHash::new(), &t), first);
        let b = ConsistentHash::new();
        assert_eq!(owners(&b, &t), first);
        // The same endpoints in another order, at another generation.
        let shuffled = t.successor([3, 1, 0, 2].map(|i| t.endpoints[i].clone()));
        assert_eq!(owners(&b, &shuffled), first);
    }

    #[test]
    fn spreads_keys_by_weight() {
        let t = table(&[10, 20, 70]);
        let b = ConsistentHash::new();
        let mut n = [0usize; 3];
        for id in owners(&b, &t) {
            n[t.endpoints.iter().position(|e| e.id == id).unwrap()] += 1;
        }
        for (got, want) in n.iter().zip([1000, 2000, 7000]) {
            assert!(got.abs_diff(want) <= 700, "{n:?}");
        }
    }

    #[test]
    fn removing_one_of_four_moves_only_its_keys() {
        let t = table(&[10, 10, 10, 10]);
        let b = ConsistentHash::new();
        let before = owners(&b, &t);
        let after = owners(&b, &t.successor([0, 1, 3].map(|i| t.endpoints[i].clone())));
        let mut kept = 0;
        for (old, new) in before.iter().zip(&after) {
            if &**old == "n2" {
                assert_ne!(&**new, "n2");
            } else {
                assert_eq!(old, new, "only n2's keys move");
                kept += 1;
            }
        }
        assert!(kept >= 7000, "kept {kept} of 10000");
    }

    #[test]
    fn out_of_rotation_owns_nothing_and_rotation_change_is_minimal() {
        let t = table(&[10, 10, 10, 10]);
        let b = ConsistentHash::new();
        let before = owners(&b, &t);
        let mut off = table(&[10, 10, 0, 10]);
        off.generation = 2;
        let after = owners(&b, &off);
        assert!(after.iter().all(|id| &**id != "n2"));
        assert!(before.iter().zip(&after).all(|(old, new)| &**old == "n2" || old == new));
    }

    #[test]
    fn excluded_owner_walks_clockwise_to_the_same_next_node() {
        let t = table(&[10, 10, 10, 10]);
        let b = ConsistentHash::new();
        let without_owner = t.successor(t.endpoints.iter().filter(|e| &*e.id != "n1").cloned());
        for key in keys().take(2000) {
            let owner = b.pick(&t, Some(&key), &[]).unwrap().id;
            let next = b.pick(&t, Some(&key), &[Arc::clone(&owner)]).unwrap().id;
            assert_ne!(next, owner);
            if &*owner == "n1" {
                // Failing over from n1 goes where the key would live without n1.
                assert_eq!(next, b.pick(&without_owner, Some(&key), &[]).unwrap().id);
            }
        }
        assert!(b.pick(&t, Some(b"k"), &ids(&["n0", "n1", "n2", "n3"])).is_none());
    }

    #[test]
    fn without_a_key_falls_back_to_weighted_random() {
        let t = table(&[10, 20, 70]);
        let n = counts(&ConsistentHash::with_seed(4), &t, 10_000, &[]);
        for (got, want) in n.iter().zip([1000, 2000, 7000]) {
            assert!(got.abs_diff(want) <= 300, "{n:?}");
        }
        assert_eq!(counts(&ConsistentHash::with_seed(4), &t, 100, &["n2", "n0"]), vec![0, 100, 0]);
    }

    #[test]
    fn empty_or_all_out_of_rotation_picks_nothing() {
        let b = ConsistentHash::new();
        assert!(b.pick(&Table::default(), Some(b"k"), &[]).is_none());
        assert!(b.pick(&table(&[0, 0]), Some(b"k"), &[]).is_none());
    }

    #[test]
    fn virtual_nodes_follow_weight_with_a_cap() {
        let t = table(&[10, 1, u32::MAX]);
        let ring = Ring::build(&t);
        let per = |i: usize| ring.points.iter().filter(|p| p.1 == i).count();
        assert_eq!((per(0), per(1), per(2)), (40, 4, 4000));
    }

    #[test]
    fn fractional_weights_own_points_in_proportion() {
        let mut t = table(&[1, 1]);
        let mut endpoints = t.endpoints.to_vec();
        endpoints[0].weight = crate::registry::layout::Weight::from_json(&serde_json::json!(2.5)).unwrap();
        endpoints[1].weight = crate::registry::layout::Weight::from_json(&serde_json::json!(0.1)).unwrap();
        t = Table::new(2, endpoints);
        let ring = Ring::build(&t);
        let per = |i: usize| ring.points.iter().filter(|p| p.1 == i).count();
        assert_eq!((per(0), per(1)), (10, 1));
    }
}
