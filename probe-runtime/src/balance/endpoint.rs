//! Provider nodes as clients see them, and the immutable routing table balancers pick from.

use std::collections::HashMap;
use std::sync::Arc;

use super::load::{CallGuard, LoadStats};
use crate::registry::layout::{NodeData, Weight};

/// One provider node as clients see it.
///
/// Cloning is cheap (reference counts only); every clone shares the same [`LoadStats`].
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The node's ZooKeeper child name, `{service}_{ip}_{port}`; unique within a service.
    pub id: Arc<str>,
    /// Address clients connect to.
    pub host: Arc<str>,
    /// Port clients connect to.
    pub port: u16,
    /// Relative share of calls, as the node JSON wrote it; 0 takes the node out of rotation.
    /// Balancers use its [`Weight::units`], so fractional weights split calls in proportion.
    pub weight: Weight,
    /// False when an operator switched the node off; takes it out of rotation.
    pub valid: bool,
    /// Live load, shared by every copy of this endpoint and carried across tables.
    pub stats: Arc<LoadStats>,
}

impl Endpoint {
    /// A valid endpoint with fresh statistics.
    pub fn new(id: impl Into<Arc<str>>, host: impl Into<Arc<str>>, port: u16, weight: u32) -> Self {
        Endpoint {
            id: id.into(),
            host: host.into(),
            port,
            weight: Weight::from(weight),
            valid: true,
            stats: Arc::new(LoadStats::new()),
        }
    }

    /// The endpoint registered as ZooKeeper child `id` with `data` as its node JSON.
    pub fn from_node(id: impl Into<Arc<str>>, data: &NodeData) -> Self {
        Endpoint {
            weight: data.weight,
            valid: data.valid.is_on(),
            ..Endpoint::new(id, data.host.as_str(), data.port, 0)
        }
    }

    /// Whether clients may route calls here: valid and with a positive weight.
    pub fn in_rotation(&self) -> bool {
        self.valid && self.weight.is_positive()
    }

    /// The weight in balancing units ([`Weight::units`]).
    pub(crate) fn units(&self) -> u64 {
        self.weight.units()
    }

    /// Counts a call as in flight on this endpoint; finish the guard with the call's latency.
    pub fn start_call(&self) -> CallGuard {
        self.stats.start_call()
    }

    /// Whether this endpoint may be picked by a call that already tried the `exclude` ids.
    pub(crate) fn is_candidate(&self, exclude: &[Arc<str>]) -> bool {
        self.in_rotation() && !exclude.iter().any(|id| same_id(id, &self.id))
    }
}

/// Whether two node ids are equal: the same string (most often the very same allocation, the
/// table's, shared by what a call tried and what the breakers track), else equal bytes, compared
/// from the end, where the ids of one service's nodes (`host:port`) usually differ. Inline: ids are
/// short, and a call to `memcmp` per comparison cost more than the comparison on the pick path.
#[inline]
pub(crate) fn same_id(a: &str, b: &str) -> bool {
    a.len() == b.len() && (std::ptr::eq(a.as_ptr(), b.as_ptr()) || a.bytes().rev().eq(b.bytes().rev()))
}

/// One routing snapshot: every endpoint of a service as discovery last saw it.
///
/// Tables are immutable; discovery publishes a new one, with a higher `generation`, on every change.
/// Balancers that cache per-table state (round robin, the consistent-hash ring) rebuild it when the
/// generation changes, so two different endpoint lists must never share a generation. Endpoints out
/// of rotation stay listed; balancers skip them.
#[derive(Debug, Clone)]
pub struct Table {
    /// Increases with every change of the endpoint list.
    pub generation: u64,
    /// The endpoints, in rotation or not. Read them; to change them, make a new table (one changed
    /// in place through `Arc::get_mut` keeps the weights it was made with for its draws, and
    /// only checks that the endpoint drawn is still in rotation).
    pub endpoints: Arc<[Endpoint]>,
    /// Weighted draws among all the endpoints in rotation, made with the table.
    draws: Draws,
}

/// The endpoints in rotation, each with the sum of the weight units up to and including its own:
/// a weighted draw among them all is one random number and a binary search, however many
/// endpoints there are.
#[derive(Debug, Clone, Default)]
struct Draws {
    /// The endpoint list they were made for (its address and length, and the table's
    /// generation): a table whose public fields changed since then draws the long way.
    made_for: (usize, usize, u64),
    /// (running sum of units, index in the table) of each endpoint in rotation, in table order.
    sums: Arc<[(u64, usize)]>,
}

impl Draws {
    fn new(generation: u64, endpoints: &[Endpoint]) -> Self {
        let mut total = 0u64;
        let sums = (endpoints.iter().enumerate())
            .filter(|(_, e)| e.in_rotation() && e.units() > 0)
            .map(|(i, e)| {
                total = total.saturating_add(e.units());
                (total, i)
            })
            .collect();
        Draws { made_for: (endpoints.as_ptr() as usize, endpoints.len(), generation), sums }
    }
}

impl Table {
    /// A table of `endpoints` at `generation`.
    pub fn new(generation: u64, endpoints: impl Into<Arc<[Endpoint]>>) -> Self {
        let endpoints = endpoints.into();
        let draws = Draws::new(generation, &endpoints);
        Table { generation, endpoints, draws }
    }

    /// How many endpoints are in rotation.
    pub(crate) fn rotation_len(&self) -> usize {
        let endpoints = &self.endpoints;
        match self.draws.made_for == (endpoints.as_ptr() as usize, endpoints.len(), self.generation) {
            true => self.draws.sums.len(),
            false => self.in_rotation().count(),
        }
    }

    /// The index of an endpoint in rotation drawn with probability weight / (sum of weights),
    /// `u` being a uniform number in `0..n` of `n`: the same endpoint as a pass over the
    /// endpoints in order would choose, without one. `None` when the table was changed since it
    /// was made (through its public fields): then draw the long way. `Some(None)` when no
    /// endpoint is in rotation.
    pub(crate) fn draw(&self, u: impl FnOnce(u64) -> u64) -> Option<Option<usize>> {
        let endpoints = &self.endpoints;
        if self.draws.made_for != (endpoints.as_ptr() as usize, endpoints.len(), self.generation) {
            return None;
        }
        Some(match *self.draws.sums {
            [] => None,
            // One endpoint to go to: no draw.
            [(_, only)] => return endpoints[only].in_rotation().then_some(Some(only)),
            [.., (total, _)] => {
                let ticket = u(total);
                let sums = &self.draws.sums;
                let (_, drawn) = *sums.get(sums.partition_point(|&(sum, _)| sum <= ticket))?;
                // An endpoint changed in place since (through `Arc::get_mut`) is drawn the long way.
                return endpoints[drawn].in_rotation().then_some(Some(drawn));
            }
        })
    }

    /// The next table: `endpoints` at the next generation, where an endpoint whose id this table
    /// lists keeps that endpoint's live statistics. Ids are matched at the same index first, so a
    /// table that changed a node's weight costs no lookups; a map of ids is built only when a
    /// node came or went.
    pub fn successor(&self, endpoints: impl IntoIterator<Item = Endpoint>) -> Table {
        let old = &self.endpoints;
        let mut known: Option<HashMap<&str, &Arc<LoadStats>>> = None;
        let endpoints: Vec<Endpoint> = endpoints
            .into_iter()
            .enumerate()
            .map(|(i, mut e)| {
                let stats = match old.get(i) {
                    Some(o) if o.id == e.id => Some(&o.stats),
                    _ => known
                        .get_or_insert_with(|| old.iter().map(|o| (&*o.id, &o.stats)).collect())
                        .get(&*e.id)
                        .copied(),
                };
                if let Some(stats) = stats
                    && !Arc::ptr_eq(stats, &e.stats)
                {
                    e.stats = Arc::clone(stats);
                }
                e
            })
            .collect();
        Table::new(self.generation.wrapping_add(1), endpoints)
    }

    /// The endpoints clients may route to.
    pub fn in_rotation(&self) -> impl Iterator<Item = &Endpoint> {
        self.endpoints.iter().filter(|e| e.in_rotation())
    }

    /// The endpoint with this id, in rotation or not.
    pub fn get(&self, id: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| &*e.id == id)
    }
}

impl Default for Table {
    /// An empty table at generation 0.
    fn default() -> Self {
        Table::new(0, Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ids_are_the_same_by_their_bytes_wherever_they_are_stored() {
        let id: Arc<str> = Arc::from("S_10.0.0.1_9090");
        assert!(same_id(&id, &id));
        assert!(same_id(&id, &String::from("S_10.0.0.1_9090")));
        for other in ["S_10.0.0.1_9091", "T_10.0.0.1_9090", "S_10.0.0.1_909", "S_10.0.0.1_90900", ""] {
            assert!(!same_id(&id, other), "{other}");
            assert!(!same_id(other, &id), "{other}");
        }
        assert!(same_id("", ""));
    }

    #[test]
    fn rotation_needs_valid_and_positive_weight() {
        let mut e = Endpoint::new("S_10.0.0.1_9090", "10.0.0.1", 9090, 10);
        assert!(e.in_rotation());
        e.weight = Weight::from(0);
        assert!(!e.in_rotation());
        e.weight = Weight::from(10);
        e.valid = false;
        assert!(!e.in_rotation());
    }

    #[test]
    fn from_node_reads_weight_and_valid() {
        let mut data = NodeData::new("10.0.0.2", 9091);
        data.weight = Weight::from(30);
        data.valid = crate::registry::layout::Valid::off();
        let e = Endpoint::from_node("S_10.0.0.2_9091", &data);
        assert_eq!((&*e.host, e.port, e.weight, e.valid), ("10.0.0.2", 9091, Weight::from(30), false));
    }

    #[test]
    fn exclusion_compares_ids_by_content() {
        let e = Endpoint::new("a", "h", 1, 1);
        assert!(e.is_candidate(&[]));
        assert!(!e.is_candidate(&[Arc::from("a")]));
        assert!(e.is_candidate(&[Arc::from("b")]));
    }

    #[test]
    fn successor_carries_stats_of_persisting_ids() {
        let old = Table::new(7, vec![Endpoint::new("a", "h", 1, 10), Endpoint::new("b", "h", 2, 10)]);
        old.endpoints[0].start_call().finish(Duration::from_micros(500), true);
        let next = old.successor(vec![Endpoint::new("a", "h", 1, 20), Endpoint::new("c", "h", 3, 10)]);
        assert_eq!(next.generation, 8);
        let a = next.get("a").unwrap();
        assert_eq!((a.weight, a.stats.ewma_micros()), (Weight::from(20), 500));
        assert!(Arc::ptr_eq(&a.stats, &old.endpoints[0].stats));
        assert_eq!(next.get("c").unwrap().stats.ewma_micros(), 0);
        assert!(next.get("b").is_none());
        assert_eq!(next.in_rotation().count(), 2);
    }

    #[test]
    fn a_draw_picks_what_a_pass_in_table_order_would() {
        let mut endpoints: Vec<Endpoint> = [3, 0, 5, 1, 0, 7, 2]
            .iter()
            .enumerate()
            .map(|(i, &w)| Endpoint::new(format!("n{i}"), "h", 1, w))
            .collect();
        endpoints[3].valid = false;
        let table = Table::new(4, endpoints);
        let eligible: Vec<(usize, u64)> = table
            .endpoints
            .iter()
            .enumerate()
            .filter(|(_, e)| e.in_rotation())
            .map(|(i, e)| (i, e.units()))
            .collect();
        let total: u64 = eligible.iter().map(|(_, u)| u).sum();
        for ticket in 0..total {
            let mut left = ticket;
            let (want, _) = *eligible
                .iter()
                .find(|(_, units)| match left < *units {
                    true => true,
                    false => {
                        left -= units;
                        false
                    }
                })
                .unwrap();
            assert_eq!(
                table.draw(|n| (n == total).then_some(ticket).unwrap()),
                Some(Some(want)),
                "ticket {ticket}"
            );
        }
        // One endpoint in rotation, or none: no draw.
        let one = Table::new(1, vec![Endpoint::new("a", "h", 1, 0), Endpoint::new("b", "h", 1, 9)]);
        assert_eq!(one.draw(|_| unreachable!()), Some(Some(1)));
        assert_eq!(Table::default().draw(|_| unreachable!()), Some(None));
        // A table whose endpoints were replaced since it was made draws the long way.
        let mut replaced = Table::new(1, vec![Endpoint::new("a", "h", 1, 1)]);
        replaced.endpoints = vec![Endpoint::new("b", "h", 1, 1), Endpoint::new("c", "h", 1, 1)].into();
        assert_eq!(replaced.draw(|_| 0), None);
        // Changed in place: an endpoint drawn that left rotation is not returned.
        let mut in_place = Table::new(1, vec![Endpoint::new("a", "h", 1, 1), Endpoint::new("b", "h", 1, 1)]);
        Arc::get_mut(&mut in_place.endpoints).unwrap()[0].valid = false;
        assert_eq!(in_place.draw(|_| 0), None);
        assert_eq!(in_place.draw(|n| n - 1), Some(Some(1)));
    }
}
