//! What the CLI and the console show of what an app's clients report about its nodes
//! ([`ClientReport`], one per client process and service, every 10 s): per node, in how many of
//! the service's clients its circuit breaker is open or half-open; per service, the backup
//! requests (hedges) its clients sent and the calls their own QPS limit refused, so far.
//!
//! Only current reports count ([`ClientReport::is_stale`]: a client that stopped reporting
//! stopped). A node no client of its service reports on shows `-` (nobody knows); one no client
//! reports open or half-open shows `closed`.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use probe_runtime::registry::ClientReport;
use probe_runtime::registry::layout::NodeKey;
use serde::Serialize;

/// How a node's circuit breaker stands in the clients of its service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BreakerCounts {
    /// Clients whose breaker for the node is open (they send it no calls).
    pub open: usize,
    /// Clients whose breaker for the node is half-open (they send it trial calls).
    pub half_open: usize,
    /// Clients of the node's service that reported.
    pub clients: usize,
}

impl BreakerCounts {
    /// `closed`, `open in 2 of 5 clients`, `half-open in 1 of 5 clients`, `open in 2 of 5 clients,
    /// half-open in 1`, or `-` when no client of the service reported.
    pub fn summary(&self) -> String {
        let n = self.clients;
        match (self.open, self.half_open) {
            _ if n == 0 => "-".to_owned(),
            (0, 0) => "closed".to_owned(),
            (open, 0) => format!("open in {open} of {n} {}", clients(n)),
            (0, half) => format!("half-open in {half} of {n} {}", clients(n)),
            (open, half) => format!("open in {open} of {n} {}, half-open in {half}", clients(n)),
        }
    }
}

fn clients(n: usize) -> &'static str {
    if n == 1 { "client" } else { "clients" }
}

/// What the clients of one service report together.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServiceClients {
    /// The service.
    pub service: String,
    /// Clients that reported.
    pub clients: usize,
    /// Backup requests they sent so far (hedging).
    pub hedges: u64,
    /// Calls their own QPS limit refused so far (never sent).
    pub limited: u64,
}

impl ServiceClients {
    /// One line for people when hedges or limited calls are not zero: `clients of Order (5
    /// reporting): 12 backup requests (hedges), 3 calls refused by their own QPS limit, so far`.
    pub fn line(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.hedges > 0 {
            parts.push(format!("{} backup requests (hedges)", self.hedges));
        }
        if self.limited > 0 {
            parts.push(format!("{} calls refused by their own QPS limit", self.limited));
        }
        if parts.is_empty() {
            return None;
        }
        Some(format!(
            "clients of {} ({} reporting): {}, so far",
            self.service,
            self.clients,
            parts.join(", ")
        ))
    }
}

/// The current reports of one app's clients, by service and by node.
#[derive(Debug, Clone, Default)]
pub struct ClientFaults {
    services: BTreeMap<String, ServiceClients>,
    /// By node id (`service_ip_port`): clients with its breaker open, half-open.
    breakers: BTreeMap<String, (usize, usize)>,
}

impl ClientFaults {
    /// Counts the reports of `appkey`'s clients among `reports` that are current at `now_ms`.
    pub fn new(appkey: &str, reports: &[ClientReport], now_ms: u64) -> Self {
        let mut faults = ClientFaults::default();
        for report in reports.iter().filter(|r| r.appkey == appkey && !r.is_stale(now_ms)) {
            let service = faults.services.entry(report.service.clone()).or_default();
            service.service.clone_from(&report.service);
            service.clients += 1;
            service.hedges = service.hedges.saturating_add(report.hedges);
            service.limited = service.limited.saturating_add(report.limited);
            for (node, state) in &report.breakers {
                let counts = faults.breakers.entry(node.clone()).or_default();
                match state.as_str() {
                    "open" => counts.0 += 1,
                    "half_open" => counts.1 += 1,
                    _ => {}
                }
            }
        }
        faults
    }

    /// How the breaker of the node `key` stands in the clients of its service.
    pub fn breaker(&self, key: &NodeKey) -> BreakerCounts {
        let clients = self.services.get(key.service()).map_or(0, |s| s.clients);
        let (open, half_open) = self.breakers.get(&key.zk_child()).copied().unwrap_or_default();
        BreakerCounts { open, half_open, clients }
    }

    /// Every service with current reports, sorted by name.
    pub fn services(&self) -> impl Iterator<Item = &ServiceClients> {
        self.services.values()
    }

    /// The lines of the services whose clients hedged or were limited ([`ServiceClients::line`]).
    pub fn lines(&self) -> Vec<String> {
        self.services().filter_map(ServiceClients::line).collect()
    }
}

/// Now, in milliseconds since the Unix epoch (what [`ClientReport::is_stale`] takes).
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use probe_runtime::registry::layout::Env;

    const NOW: u64 = 1_700_000_000_000;

    fn report(client: &str, service: &str, breakers: &[(&str, &str)]) -> ClientReport {
        ClientReport {
            client: client.into(),
            appkey: "shop".into(),
            service: service.into(),
            revision: 0,
            applied_at_ms: 0,
            problem: false,
            reported_at_ms: NOW - 5_000,
            breakers: breakers.iter().map(|(n, s)| ((*n).to_owned(), (*s).to_owned())).collect(),
            hedges: 0,
            limited: 0,
        }
    }

    fn key(service: &str, port: u16) -> NodeKey {
        NodeKey::new(Env::Dev, "shop", service, "10.0.0.1", port).unwrap()
    }

    #[test]
    fn breakers_are_counted_per_node_out_of_the_services_current_clients() {
        let node = "Order_10.0.0.1_9001";
        let mut reports = vec![
            report("a:1", "Order", &[(node, "open")]),
            report("b:2", "Order", &[(node, "open"), ("Order_10.0.0.1_9002", "half_open")]),
            report("c:3", "Order", &[]),
            report("d:4", "Billing", &[]),
            ClientReport { appkey: "other".into(), ..report("e:5", "Order", &[(node, "open")]) },
            ClientReport { reported_at_ms: NOW - 60_000, ..report("f:6", "Order", &[(node, "open")]) },
        ];
        reports[0].hedges = 7;
        reports[1].hedges = 5;
        reports[1].limited = 3;
        let faults = ClientFaults::new("shop", &reports, NOW);
        let open = faults.breaker(&key("Order", 9001));
        assert_eq!(open, BreakerCounts { open: 2, half_open: 0, clients: 3 });
        assert_eq!(open.summary(), "open in 2 of 3 clients");
        assert_eq!(faults.breaker(&key("Order", 9002)).summary(), "half-open in 1 of 3 clients");
        assert_eq!(faults.breaker(&key("Order", 9003)).summary(), "closed");
        assert_eq!(faults.breaker(&key("Billing", 9001)).summary(), "closed");
        assert_eq!(faults.breaker(&key("Stock", 9001)).summary(), "-");
        let both = BreakerCounts { open: 1, half_open: 1, clients: 1 };
        assert_eq!(both.summary(), "open in 1 of 1 client, half-open in 1");

        let services: Vec<_> = faults.services().map(|s| (s.service.as_str(), s.clients)).collect();
        assert_eq!(services, [("Billing", 1), ("Order", 3)]);
        assert_eq!(
            faults.lines(),
            [
                "clients of Order (3 reporting): 12 backup requests (hedges), 3 calls refused by their own QPS \
              limit, so far"
            ]
        );
    }
}
