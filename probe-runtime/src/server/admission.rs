//! Who gets a connection slot: at most `max_connections` in all, at most
//! `max_connections_per_peer` from one IP address, and a reserve (at most a tenth of the slots)
//! that connections which have not sent a whole request yet ("pending") cannot take.
//!
//! Silent peers cannot lock well-behaved clients out: when the pending connections fill their
//! share (or every slot), a new connection evicts the oldest pending one instead of being refused,
//! so a client that sends its first request promptly gets served while a flood of silent ones
//! churns; connections that have sent a request are never evicted. Each pending connection also
//! has the handshake timeout to send its first bytes.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;

use super::ServerConfig;
use crate::transport::MemoryBudget;

/// The connection slots of a server.
#[derive(Debug)]
pub(super) struct Admission {
    /// The configured limit, and the reserve share of it.
    configured: usize,
    reserved: usize,
    /// The limit now: an operator's (`connections` in a node's limits) or the configured one.
    max_connections: AtomicUsize,
    max_pending: AtomicUsize,
    max_per_peer: usize,
    budget: Arc<MemoryBudget>,
    state: Mutex<Slots>,
}

#[derive(Debug, Default)]
struct Slots {
    /// Connections open, pending or not.
    open: usize,
    /// Open connections per peer address.
    per_peer: HashMap<IpAddr, usize>,
    /// The pending connections, oldest first, each with the signal that evicts it.
    pending: BTreeMap<u64, Arc<Notify>>,
    next_id: u64,
    /// Pending connections evicted so far.
    evicted: u64,
}

/// Why a new connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Every slot is held by a connection that has sent a request.
    Full,
    /// Its peer address holds `max_connections_per_peer` connections.
    PeerLimit,
    /// The memory budget is spent.
    Memory,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::Full => "the connection limit is reached",
            Refusal::PeerLimit => "its address has reached the per-peer connection limit",
            Refusal::Memory => "the memory budget for buffered requests and replies is spent",
        })
    }
}

impl Admission {
    pub(super) fn new(config: &ServerConfig, budget: Arc<MemoryBudget>) -> Self {
        let max_connections = config.max_connections.max(1);
        let reserved = config.reserved_connections.min(max_connections / 10);
        Admission {
            configured: max_connections,
            reserved: config.reserved_connections,
            max_connections: AtomicUsize::new(max_connections),
            max_pending: AtomicUsize::new((max_connections - reserved).max(1)),
            max_per_peer: config.max_connections_per_peer.max(1),
            budget,
            state: Mutex::new(Slots::default()),
        }
    }

    /// Sets the limit an operator chose (`None`: the configured one). Connections open beyond a
    /// lowered limit stay; new ones wait for room.
    pub(super) fn set_live_max(&self, live: Option<usize>) {
        let max = live.unwrap_or(self.configured).max(1);
        let reserved = self.reserved.min(max / 10);
        self.max_pending.store((max - reserved).max(1), Relaxed);
        self.max_connections.store(max, Relaxed);
    }

    /// The connection limit now.
    pub(super) fn max_connections(&self) -> usize {
        self.max_connections.load(Relaxed)
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        // The counts stay consistent under every lock: a panic elsewhere leaves them usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for a new connection from `peer`, pending until [`Ticket::established`]; may evict
    /// the oldest pending connection to make room.
    pub(super) fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Ticket, Refusal> {
        if self.budget.is_spent() {
            return Err(Refusal::Memory);
        }
        let mut slots = self.slots();
        if slots.per_peer.get(&peer).copied().unwrap_or(0) >= self.max_per_peer {
            return Err(Refusal::PeerLimit);
        }
        if slots.pending.len() >= self.max_pending.load(Relaxed) || slots.open >= self.max_connections() {
            match slots.pending.pop_first() {
                // Its slot is given back when its task ends, at once.
                Some((_, evict)) => {
                    evict.notify_one();
                    slots.evicted += 1;
                }
                None => return Err(Refusal::Full),
            }
        }
        let id = slots.next_id;
        slots.next_id += 1;
        slots.open += 1;
        *slots.per_peer.entry(peer).or_insert(0) += 1;
        let evicted = Arc::new(Notify::new());
        slots.pending.insert(id, evicted.clone());
        Ok(Ticket { admission: self.clone(), peer, id, evicted, pending: true })
    }

    /// Open connections, pending ones, and evictions so far.
    #[cfg(test)]
    pub(super) fn counts(&self) -> (usize, usize, u64) {
        let slots = self.slots();
        (slots.open, slots.pending.len(), slots.evicted)
    }
}

/// A connection's slot, given back when dropped.
#[derive(Debug)]
pub(super) struct Ticket {
    admission: Arc<Admission>,
    peer: IpAddr,
    id: u64,
    evicted: Arc<Notify>,
    pending: bool,
}

impl Ticket {
    /// Completes if the connection is evicted while pending.
    pub(super) async fn evicted(&self) {
        self.evicted.notified().await;
    }

    /// The connection sent a whole request: it is no longer pending, and never evicted.
    pub(super) fn established(&mut self) {
        if std::mem::take(&mut self.pending) {
            self.admission.slots().pending.remove(&self.id);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut slots = self.admission.slots();
        if self.pending {
            slots.pending.remove(&self.id);
        }
        slots.open = slots.open.saturating_sub(1);
        if let Some(n) = slots.per_peer.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                slots.per_peer.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn admission(max: usize, reserved: usize, per_peer: usize) -> Arc<Admission> {
        let config = ServerConfig {
            max_connections: max,
            reserved_connections: reserved,
            max_connections_per_peer: per_peer,
            ..ServerConfig::default()
        };
        Arc::new(Admission::new(&config, Arc::new(MemoryBudget::new(1 << 20))))
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    #[test]
    fn one_peer_gets_its_share_only() {
        let a = admission(10, 0, 3);
        let tickets: Vec<_> = (0..3).filter_map(|_| a.admit(ip(2)).ok()).collect();
        assert_eq!(tickets.len(), 3);
        assert_eq!(a.admit(ip(2)).err(), Some(Refusal::PeerLimit));
        assert!(a.admit(ip(3)).is_ok());
        drop(tickets);
        assert!(a.admit(ip(2)).is_ok());
    }

    #[test]
    fn pending_connections_leave_the_reserve_and_the_oldest_is_evicted() {
        let a = admission(40, 4, 100);
        let mut established: Vec<_> = (0..4).filter_map(|_| a.admit(ip(1)).ok()).collect();
        established.iter_mut().for_each(Ticket::established);
        let silent: Vec<_> = (0..36).filter_map(|_| a.admit(ip(2)).ok()).collect();
        assert_eq!(a.counts(), (40, 36, 0));
        // Full: a new connection evicts the oldest pending one, never an established one.
        let newer = a.admit(ip(3));
        assert!(newer.is_ok());
        assert_eq!(a.counts().2, 1);
        drop(silent);
        assert_eq!(a.counts(), (5, 1, 1));
        // Every other slot established: the pending one is evicted, then nothing can be.
        let mut more: Vec<_> = (0..35).filter_map(|_| a.admit(ip(4)).ok()).collect();
        more.iter_mut().for_each(Ticket::established);
        assert_eq!(a.counts(), (40, 1, 1));
        let mut last = a.admit(ip(5)).expect("the pending connection is evicted");
        last.established();
        drop(newer);
        assert_eq!(a.admit(ip(6)).err(), Some(Refusal::Full));
    }
}
