//! Fixtures shared by the balancer tests.

use std::sync::Arc;

use super::{Balancer, Endpoint, Table};

/// A table at generation 1 of endpoints `n0`, `n1`, ... with these weights.
pub(crate) fn table(weights: &[u32]) -> Table {
    let endpoints: Vec<Endpoint> = weights
        .iter()
        .enumerate()
        .map(|(i, &w)| Endpoint::new(format!("n{i}"), format!("10.0.0.{i}"), 9090, w))
        .collect();
    Table::new(1, endpoints)
}

/// Ids as the balancers take them.
pub(crate) fn ids(names: &[&str]) -> Vec<Arc<str>> {
    names.iter().map(|&n| Arc::from(n)).collect()
}

/// How many of `picks` picks (without a key) landed on each endpoint of `table`, in table order.
pub(crate) fn counts(b: &dyn Balancer, table: &Table, picks: usize, exclude: &[&str]) -> Vec<usize> {
    let exclude = ids(exclude);
    let mut n = vec![0; table.endpoints.len()];
    for _ in 0..picks {
        if let Some(e) = b.pick(table, None, &exclude) {
            if let Some(i) = table.endpoints.iter().position(|x| x.id == e.id) {
                n[i] += 1;
            }
        }
    }
    n
}
