//! Applying a rule to one call: which nodes it may go to.

use std::sync::Arc;

use rand::Rng;

use super::{Rule, Tags};
use crate::balance::Endpoint;
use crate::registry::layout::NodeData;
use crate::transport::header::Headers;

/// Where a call may go: the ids the balancer must skip besides those it was given, and the tier
/// chosen (for metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Endpoints outside the chosen version, zone or tier.
    pub exclude: Vec<Arc<str>>,
    /// The tier the call goes to.
    pub tier: u8,
}

/// One node as a call's selection sees it.
struct Candidate<'a> {
    endpoint: &'a Endpoint,
    node: &'a NodeData,
    healthy: bool,
}

/// The nodes a call may go to under `rule` (if any) and the nodes' tiers: `endpoints[i]` has node
/// JSON `nodes[i]`; nodes out of rotation or in `excluded` (ejected, or tried by this call) are
/// unhealthy. `headers` are the call's metadata, `tags` the caller's. Returns `None` when every
/// node is a candidate (no rule and no tiers, the common case: nothing to add).
pub fn select(
    endpoints: &[Endpoint],
    nodes: &[NodeData],
    excluded: &[Arc<str>],
    rule: Option<&Rule>,
    headers: Option<&Headers>,
    tags: &Tags,
    rng: &mut impl Rng,
) -> Option<Selection> {
    let tiered = nodes.iter().any(|n| n.tier.unwrap_or(0) > 0);
    if rule.is_none() && !tiered {
        return None;
    }
    let all: Vec<Candidate<'_>> = endpoints
        .iter()
        .zip(nodes)
        .map(|(endpoint, node)| Candidate {
            endpoint,
            node,
            healthy: endpoint.in_rotation() && !excluded.iter().any(|id| **id == *endpoint.id),
        })
        .collect();
    let mut chosen: Vec<&Candidate<'_>> = all.iter().collect();
    if let Some(rule) = rule {
        chosen = by_version(rule, chosen, headers, rng);
        chosen = by_affinity(rule, chosen, tags);
    }
    let overprovisioning = rule.map_or(super::DEFAULT_OVERPROVISIONING, Rule::overprovisioning);
    let only = rule.and_then(|r| r.tiers.as_ref()).and_then(|t| t.only.as_deref());
    let tier = pick_tier(&chosen, overprovisioning, only, rng);
    if let Some(tier) = tier {
        chosen.retain(|c| tier_of(c.node) == tier);
    }
    let exclude = all
        .iter()
        .filter(|c| !chosen.iter().any(|k| std::ptr::eq(*k, *c)))
        .map(|c| Arc::clone(&c.endpoint.id))
        .collect();
    Some(Selection { exclude, tier: tier.unwrap_or(0) })
}

fn tier_of(node: &NodeData) -> u8 {
    node.tier.unwrap_or(0)
}

fn healthy_units(candidates: &[&Candidate<'_>]) -> u64 {
    candidates.iter().filter(|c| c.healthy).map(|c| c.endpoint.weight.units()).sum()
}

/// Step 1: the nodes of the version a header route or the split chooses. A route or a version
/// whose nodes are all unhealthy is passed over (calls keep going somewhere).
fn by_version<'c, 'a>(
    rule: &Rule,
    candidates: Vec<&'c Candidate<'a>>,
    headers: Option<&Headers>,
    rng: &mut impl Rng,
) -> Vec<&'c Candidate<'a>> {
    let of = |version: &str| -> Vec<&'c Candidate<'a>> {
        candidates.iter().copied().filter(|c| c.node.version.as_deref() == Some(version)).collect()
    };
    if let Some(headers) = headers {
        for route in &rule.header_routes {
            if headers.get_bytes(route.header.as_bytes()) == Some(route.value.as_bytes()) {
                let routed = of(&route.version);
                if routed.iter().any(|c| c.healthy) {
                    return routed;
                }
            }
        }
    }
    if rule.versions.is_empty() {
        return candidates;
    }
    // The split among versions that have a healthy node, shares in proportion.
    let live: Vec<(&str, f64)> = rule
        .versions
        .iter()
        .filter(|v| v.share > 0.0)
        .filter(|v| candidates.iter().any(|c| c.healthy && c.node.version.as_deref() == Some(&v.version)))
        .map(|v| (v.version.as_str(), v.share))
        .collect();
    let total: f64 = live.iter().map(|(_, s)| s).sum();
    if total <= 0.0 {
        return candidates;
    }
    let mut point = rng.random::<f64>() * total;
    for (version, share) in &live {
        if point < *share {
            return of(version);
        }
        point -= share;
    }
    // Rounding left the point past the last share: the last version.
    match live.last() {
        Some((version, _)) => of(version),
        None => candidates.clone(),
    }
}

/// Step 2: the nodes tagged like the caller, if they hold enough of the healthy weight.
fn by_affinity<'c, 'a>(
    rule: &Rule,
    candidates: Vec<&'c Candidate<'a>>,
    tags: &Tags,
) -> Vec<&'c Candidate<'a>> {
    let Some(affinity) = &rule.affinity else { return candidates };
    let Some(mine) = tags.get(&affinity.tag) else { return candidates };
    let matching: Vec<&Candidate<'_>> =
        candidates.iter().copied().filter(|c| c.node.tags.get(&affinity.tag) == Some(mine)).collect();
    let (near, all) = (healthy_units(&matching), healthy_units(&candidates));
    if near > 0 && near as f64 >= affinity.min_share * all as f64 { matching } else { candidates }
}

/// Step 3: the tier a call goes to, Envoy style: tier `t` is `health_t` healthy (healthy nodes /
/// nodes, times the over-provisioning factor, at most 1); tier 0 takes `health_0` of the calls,
/// tier 1 `min(health_1, what is left)`, and so on; when the healths sum below 1 the shares are
/// scaled up to 1. `None` when the candidates are all of one tier.
fn pick_tier(
    candidates: &[&Candidate<'_>],
    overprovisioning: f64,
    only: Option<&[u8]>,
    rng: &mut impl Rng,
) -> Option<u8> {
    let allowed = |tier: u8| only.is_none_or(|only| only.contains(&tier));
    let mut tiers: Vec<u8> = candidates.iter().map(|c| tier_of(c.node)).filter(|t| allowed(*t)).collect();
    tiers.sort_unstable();
    tiers.dedup();
    let all_one = tiers.len() <= 1 && only.is_none();
    if all_one {
        return None;
    }
    let health: Vec<(u8, f64)> = tiers
        .iter()
        .map(|&tier| {
            let nodes: Vec<&&Candidate<'_>> = candidates.iter().filter(|c| tier_of(c.node) == tier).collect();
            let healthy = nodes.iter().filter(|c| c.healthy).count() as f64;
            (tier, (overprovisioning * healthy / nodes.len() as f64).min(1.0))
        })
        .collect();
    let mut left = 1.0;
    let mut loads: Vec<(u8, f64)> = Vec::with_capacity(health.len());
    for (tier, h) in &health {
        let load = h.min(left);
        loads.push((*tier, load));
        left -= load;
    }
    let sum: f64 = loads.iter().map(|(_, l)| l).sum();
    if sum <= 0.0 {
        // Nothing healthy anywhere: the lowest tier, and the balancer finds no node.
        return tiers.first().copied().or(Some(0));
    }
    let mut point = rng.random::<f64>() * sum;
    for (tier, load) in &loads {
        if point < *load {
            return Some(*tier);
        }
        point -= load;
    }
    loads.iter().rev().find(|(_, l)| *l > 0.0).map(|(t, _)| *t)
}

/// The share of calls each node would get under `rule` from a caller tagged `tags` whose calls
/// carry `headers`, with the balancer splitting by weight: `shares[i]` for `endpoints[i]`, summing
/// to 1 (0 everywhere when no node can take calls). Estimated from `draws` seeded draws, so the
/// same inputs give the same answer.
pub fn preview(
    endpoints: &[Endpoint],
    nodes: &[NodeData],
    rule: Option<&Rule>,
    headers: Option<&Headers>,
    tags: &Tags,
    draws: usize,
) -> Vec<f64> {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut counts = vec![0u64; endpoints.len()];
    let mut total = 0u64;
    for _ in 0..draws {
        let selection = select(endpoints, nodes, &[], rule, headers, tags, &mut rng).unwrap_or_default();
        let allowed = |e: &Endpoint| e.in_rotation() && !selection.exclude.iter().any(|x| **x == *e.id);
        let units: u64 = endpoints.iter().filter(|e| allowed(e)).map(Endpoint::units).sum();
        if units == 0 {
            continue;
        }
        let mut point = rng.random_range(0..units);
        for (i, e) in endpoints.iter().enumerate().filter(|(_, e)| allowed(e)) {
            if point < e.units() {
                counts[i] += 1;
                total += 1;
                break;
            }
            point -= e.units();
        }
    }
    counts.iter().map(|&n| if total == 0 { 0.0 } else { n as f64 / total as f64 }).collect()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    /// `(version, zone, tier, valid)` per node; weights 10.
    fn fleet(spec: &[(&str, &str, u8, bool)]) -> (Vec<Endpoint>, Vec<NodeData>) {
        spec.iter()
            .enumerate()
            .map(|(i, (version, zone, tier, valid))| {
                let mut node = NodeData::new(&format!("10.0.0.{i}"), 9000);
                node.version = Some((*version).to_owned());
                node.tags.insert("zone".into(), (*zone).to_owned());
                node.tier = Some(*tier);
                let mut e = Endpoint::new(format!("n{i}"), node.host.as_str(), 9000, 10);
                e.valid = *valid;
                (e, node)
            })
            .unzip()
    }

    /// Calls per node over `n` selections (each call: the allowed healthy nodes, one at random).
    fn spread(
        fleet: &(Vec<Endpoint>, Vec<NodeData>),
        rule: Option<&Rule>,
        headers: Option<&Headers>,
        tags: &Tags,
        n: usize,
    ) -> Vec<usize> {
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = vec![0; fleet.0.len()];
        for _ in 0..n {
            let sel = select(&fleet.0, &fleet.1, &[], rule, headers, tags, &mut rng).unwrap_or_default();
            let ok: Vec<usize> = (0..fleet.0.len())
                .filter(|&i| fleet.0[i].in_rotation() && !sel.exclude.iter().any(|x| **x == *fleet.0[i].id))
                .collect();
            counts[ok[rng.random_range(0..ok.len())]] += 1;
        }
        counts
    }

    #[test]
    fn a_preview_gives_each_node_its_share() {
        let f = fleet(&[("1", "a", 0, true), ("1", "a", 0, true), ("2", "a", 0, true)]);
        let rule =
            Rule::parse(r#"{"versions": [{"version": "1", "share": 80}, {"version": "2", "share": 20}]}"#)
                .unwrap();
        let shares = preview(&f.0, &f.1, Some(&rule), None, &Tags::new(), 20_000);
        assert!((shares[2] - 0.2).abs() < 0.015 && (shares[0] - 0.4).abs() < 0.015, "{shares:?}");
        assert_eq!(shares, preview(&f.0, &f.1, Some(&rule), None, &Tags::new(), 20_000), "seeded");
    }

    #[test]
    fn no_rule_and_no_tiers_adds_nothing() {
        let f = fleet(&[("1", "a", 0, true), ("1", "b", 0, true)]);
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(select(&f.0, &f.1, &[], None, None, &Tags::new(), &mut rng), None);
    }

    #[test]
    fn a_5_percent_canary_and_a_header_route() {
        let f = fleet(&[("1", "a", 0, true), ("1", "a", 0, true), ("2", "a", 0, true)]);
        let rule = Rule::parse(
            r#"{"versions": [{"version": "1", "share": 95}, {"version": "2", "share": 5}],
                "header_routes": [{"header": "canary", "value": "1", "version": "2"}]}"#,
        )
        .unwrap();
        let n = spread(&f, Some(&rule), None, &Tags::new(), 20_000);
        let share = n[2] as f64 / 20_000.0;
        assert!((0.04..=0.06).contains(&share), "{n:?}");
        let marked: Headers = [("canary", "1")].into_iter().collect();
        assert_eq!(spread(&f, Some(&rule), Some(&marked), &Tags::new(), 1_000), vec![0, 0, 1_000]);
        let other: Headers = [("canary", "0")].into_iter().collect();
        assert!(spread(&f, Some(&rule), Some(&other), &Tags::new(), 1_000)[2] < 120);
    }

    #[test]
    fn zone_affinity_stays_in_zone_until_the_zone_is_short() {
        let rule = Rule::parse(r#"{"affinity": {"tag": "zone", "min_share": 0.3}}"#).unwrap();
        let tags: Tags = [("zone".to_owned(), "a".to_owned())].into();
        let f = fleet(&[("1", "a", 0, true), ("1", "a", 0, true), ("1", "b", 0, true), ("1", "b", 0, true)]);
        let n = spread(&f, Some(&rule), None, &tags, 1_000);
        assert_eq!(n[2] + n[3], 0, "{n:?}");
        // One of zone a's two nodes off: zone a holds 1/3 of the healthy weight, still enough.
        let f = fleet(&[("1", "a", 0, true), ("1", "a", 0, false), ("1", "b", 0, true), ("1", "b", 0, true)]);
        assert_eq!(spread(&f, Some(&rule), None, &tags, 1_000)[0], 1_000);
        // Both off: calls spill to zone b.
        let f =
            fleet(&[("1", "a", 0, false), ("1", "a", 0, false), ("1", "b", 0, true), ("1", "b", 0, true)]);
        assert_eq!(spread(&f, Some(&rule), None, &tags, 1_000)[2..].iter().sum::<usize>(), 1_000);
    }

    #[test]
    fn tiers_spill_in_proportion_to_lost_health() {
        let tags = Tags::new();
        // 3 primaries, 2 backups, all healthy: the backups get nothing (no rule needed).
        let up = fleet(&[
            ("1", "a", 0, true),
            ("1", "a", 0, true),
            ("1", "a", 0, true),
            ("1", "a", 1, true),
            ("1", "a", 1, true),
        ]);
        let n = spread(&up, None, None, &tags, 10_000);
        assert_eq!(n[3] + n[4], 0, "{n:?}");
        // One primary down: 2/3 * 1.4 = 0.93 healthy, so 7% spills.
        let one = fleet(&[
            ("1", "a", 0, true),
            ("1", "a", 0, true),
            ("1", "a", 0, false),
            ("1", "a", 1, true),
            ("1", "a", 1, true),
        ]);
        let spilled = spread(&one, None, None, &tags, 20_000)[3..].iter().sum::<usize>() as f64 / 20_000.0;
        assert!((0.05..0.09).contains(&spilled), "{spilled}");
        // Two down: 1/3 * 1.4 = 0.47 stays, 53% spills.
        let two = fleet(&[
            ("1", "a", 0, true),
            ("1", "a", 0, false),
            ("1", "a", 0, false),
            ("1", "a", 1, true),
            ("1", "a", 1, true),
        ]);
        let spilled = spread(&two, None, None, &tags, 20_000)[3..].iter().sum::<usize>() as f64 / 20_000.0;
        assert!((0.50..0.56).contains(&spilled), "{spilled}");
        // A rule that uses tier 0 only keeps the backups out.
        let rule = Rule::parse(r#"{"tiers": {"only": [0]}}"#).unwrap();
        assert_eq!(spread(&two, Some(&rule), None, &tags, 1_000)[3..].iter().sum::<usize>(), 0);
    }
}
