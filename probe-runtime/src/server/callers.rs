//! A server's caller policies: per service, which apps may call it and what happens to callers
//! that prove no appkey ([`CallerPolicy`]). Set from the builder's defaults and replaced live by
//! the policies operators store in each node's data (field `callers`), like request limits.
//!
//! A call is checked right after it is routed, before its limits and its arguments: its caller is
//! proven by a token ([`crate::security::token`], verified once per connection and remembered) or
//! a TLS client certificate. A server with no policy pays one atomic load per call.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::limits::describe;
use crate::registry::AppStore;
use crate::registry::layout::{NodeData, NodeKey};
use crate::security::callers::REFUSAL_REASONS;
use crate::security::keys::CallerKeys;
use crate::security::token::{self, TokenError};
use crate::security::{Caller, CallerPolicy, Verdict};
use crate::service::Dispatch;

/// Where a service's caller policy came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicySource {
    /// The server's builder.
    Configured,
    /// The node's data in the registry (set by an operator).
    Node,
}

/// The caller policy a service runs with now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedPolicy {
    /// The policy.
    pub policy: CallerPolicy,
    /// Where it came from.
    pub source: PolicySource,
    /// The problems of the last document the node's data held, if it was refused (the policy
    /// before it stays).
    pub problem: Option<String>,
}

/// A caller refused, as [`CallerStats::recent_refusals`] keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The caller's address.
    pub peer: SocketAddr,
    /// The appkey it proved or claimed, if any.
    pub appkey: Option<String>,
    /// A [`REFUSAL_REASONS`] label.
    pub reason: &'static str,
    /// When, milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// What one service's caller policy counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerStats {
    /// The service.
    pub service: &'static str,
    /// Calls refused, by [`REFUSAL_REASONS`] label (in that order).
    pub refused: [u64; 3],
    /// Calls served that proved no appkey, under `"unauthenticated": "count"`.
    pub unauthenticated: u64,
    /// The last refusals (at most [`RECENT`]), newest last.
    pub recent_refusals: Vec<Refused>,
}

/// How many refusals each service remembers.
pub const RECENT: usize = 16;

#[derive(Default)]
struct Counts {
    refused: [AtomicU64; 3],
    unauthenticated: AtomicU64,
    /// Milliseconds since the epoch of the last log line, to log at most one a second.
    logged_at: AtomicU64,
    recent: Mutex<VecDeque<Refused>>,
}

/// The caller policies of every service a server serves.
pub(crate) struct ServerCallers {
    /// Whether any service has a policy: calls skip the check otherwise.
    any: AtomicBool,
    policies: ArcSwap<HashMap<&'static str, CallerPolicy>>,
    configured: HashMap<&'static str, CallerPolicy>,
    applied: Mutex<BTreeMap<&'static str, AppliedPolicy>>,
    services: Vec<&'static str>,
    counts: HashMap<&'static str, Counts>,
    keys: Arc<CallerKeys>,
    /// Where caller keys are read, once the server registered.
    apps: OnceLock<Arc<dyn AppStore>>,
    /// The addresses the node registered (`ip:port`): tokens may be signed for them.
    audiences: ArcSwap<Vec<String>>,
    generation: watch::Sender<u64>,
}

impl std::fmt::Debug for ServerCallers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCallers").field("applied", &self.applied()).finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A token a connection sent, and what verifying it gave: the appkey it proves, or why not.
type Verified = (Box<[u8]>, Result<String, TokenError>);

/// What a caller showed of who it is, on one call.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Presented<'a> {
    /// The appkey its connection's TLS client certificate names.
    pub(super) certificate: Option<&'a str>,
    /// The caller token its header frame carried.
    pub(super) token: Option<&'a [u8]>,
    /// The appkey its header frame claimed (which proves nothing).
    pub(super) claimed: Option<&'a str>,
}

/// What a connection proved of its caller by token: the token it sent last and what verifying it
/// gave (its TLS client certificate's appkey is the connection's own, [`ServerCallers::check`]
/// takes it).
#[derive(Debug, Default)]
pub(super) struct ConnectionCaller {
    token: Option<Verified>,
}

impl ServerCallers {
    pub(crate) fn new(
        services: &[Arc<dyn Dispatch>],
        configured: HashMap<&'static str, CallerPolicy>,
    ) -> Self {
        let names: Vec<&'static str> = services.iter().map(|s| s.service_name()).collect();
        let applied: BTreeMap<&'static str, AppliedPolicy> = configured
            .iter()
            .map(|(name, policy)| {
                (
                    *name,
                    AppliedPolicy { policy: policy.clone(), source: PolicySource::Configured, problem: None },
                )
            })
            .collect();
        let callers = ServerCallers {
            any: AtomicBool::new(false),
            policies: ArcSwap::from_pointee(HashMap::new()),
            configured,
            applied: Mutex::new(applied),
            counts: names.iter().map(|n| (*n, Counts::default())).collect(),
            services: names,
            keys: CallerKeys::new(),
            apps: OnceLock::new(),
            audiences: ArcSwap::from_pointee(Vec::new()),
            generation: watch::channel(0).0,
        };
        callers.publish(&callers.applied.lock().unwrap_or_else(PoisonError::into_inner));
        callers
    }

    /// Whether any service has a policy.
    #[inline]
    pub(super) fn any(&self) -> bool {
        self.any.load(Relaxed)
    }

    /// Reads caller keys from `apps` from now on, and accepts tokens signed for `audiences`.
    pub(super) fn registered(&self, apps: Arc<dyn AppStore>, audiences: Vec<String>) {
        self.audiences.store(Arc::new(audiences));
        if self.apps.set(apps).is_ok() && self.any() {
            self.start_keys();
        }
    }

    fn start_keys(&self) {
        if let Some(apps) = self.apps.get() {
            self.keys.start(apps.clone());
        }
    }

    /// Makes the `applied` policies the ones calls see. Called with the lock on them held, so
    /// whoever reads them ([`ServerCallers::applied`]) and then calls is judged by them.
    fn publish(&self, applied: &BTreeMap<&'static str, AppliedPolicy>) {
        let policies: HashMap<&'static str, CallerPolicy> =
            applied.iter().map(|(name, a)| (*name, a.policy.clone())).collect();
        let any = !policies.is_empty();
        self.policies.store(Arc::new(policies));
        self.any.store(any, Relaxed);
        if any {
            self.start_keys();
        }
        self.generation.send_modify(|g| *g += 1);
    }

    /// Reads the caller keys before a policy first applies (so the first calls under it find
    /// them), when `seen` (this server's node data) holds one or the builder configured one.
    pub(super) async fn prepare<'d>(&self, mut seen: impl Iterator<Item = &'d NodeData>) {
        let wanted = !self.configured.is_empty() || seen.any(|d| d.callers.is_some());
        if let (true, Some(apps)) = (wanted, self.apps.get()) {
            self.keys.ensure_loaded(apps.as_ref()).await;
        }
    }

    /// Applies the `callers` field of a node's data: its policy, or the configured one when it has
    /// none. A bad document is refused and the policy before stays.
    pub(super) fn apply_node(&self, key: &NodeKey, data: &NodeData) {
        let Some(service) = self.services.iter().copied().find(|s| *s == key.service()) else { return };
        let next = match &data.callers {
            None => self.configured.get(service).map(|p| (p.clone(), PolicySource::Configured)),
            Some(value) => match CallerPolicy::from_json(value) {
                Ok(policy) => Some((policy, PolicySource::Node)),
                Err(problems) => {
                    let problem = describe(&problems);
                    warn!(node = %key, problems = %problem, "the node's caller policy is refused; the policy before stays");
                    let mut applied = self.applied.lock().unwrap_or_else(PoisonError::into_inner);
                    if let Some(entry) = applied.get_mut(service) {
                        entry.problem = Some(problem);
                    }
                    drop(applied);
                    self.generation.send_modify(|g| *g += 1);
                    return;
                }
            },
        };
        let mut applied = self.applied.lock().unwrap_or_else(PoisonError::into_inner);
        let changed = match &next {
            None => applied.remove(service).is_some(),
            Some((policy, source)) => {
                let entry = AppliedPolicy { policy: policy.clone(), source: *source, problem: None };
                applied.insert(service, entry.clone()) != Some(entry)
            }
        };
        if changed {
            // Under the lock: the policies read as applied are the ones calls see.
            self.publish(&applied);
            drop(applied);
            match &next {
                Some((policy, _)) => info!(service, %policy, "caller policy applied"),
                None => info!(service, "caller policy removed"),
            }
        }
    }

    /// What each service with a policy runs with.
    pub(crate) fn applied(&self) -> BTreeMap<String, AppliedPolicy> {
        let applied = self.applied.lock().unwrap_or_else(PoisonError::into_inner);
        applied.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    /// Counts up with every change of the applied policies.
    pub(super) fn changes(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Why the caller keys could not be read last time, if they could not.
    pub(crate) fn keys_problem(&self) -> Option<String> {
        self.keys.problem()
    }

    /// What each service counted (services without a policy or counts left out).
    pub(crate) fn stats(&self) -> Vec<CallerStats> {
        let applied = self.applied.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = Vec::new();
        for service in &self.services {
            let Some(counts) = self.counts.get(service) else { continue };
            let refused = [0, 1, 2].map(|i| counts.refused[i].load(Relaxed));
            let unauthenticated = counts.unauthenticated.load(Relaxed);
            if !applied.contains_key(service) && refused == [0; 3] && unauthenticated == 0 {
                continue;
            }
            let recent =
                counts.recent.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned().collect();
            out.push(CallerStats { service, refused, unauthenticated, recent_refusals: recent });
        }
        out
    }

    /// The verdict on a call to `service` from `peer` (reached at `local`) with what the caller
    /// `presented`; counts and logs what is not plainly allowed. `Err` holds the message the
    /// caller gets.
    pub(super) fn check(
        &self,
        service: &'static str,
        connection: &mut ConnectionCaller,
        presented: Presented<'_>,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> Result<(), String> {
        let Presented { certificate, token, claimed } = presented;
        let policies = self.policies.load();
        let Some(policy) = policies.get(service) else { return Ok(()) };
        let verified = token.map(|token| self.verify(connection, token, local));
        let caller = match (verified, certificate) {
            (Some(Err(e)), _) => Caller::BadToken(e),
            (Some(Ok(token)), Some(cert)) if token != cert => {
                Caller::Conflicting { certificate: cert, token }
            }
            (Some(Ok(appkey)), _) => Caller::Proven(appkey),
            (None, Some(cert)) => Caller::Proven(cert),
            (None, None) => Caller::Unproven(claimed),
        };
        let Some(counts) = self.counts.get(service) else { return Ok(()) };
        match policy.judge(caller, service) {
            Verdict::Allowed => Ok(()),
            Verdict::Counted => {
                counts.unauthenticated.fetch_add(1, Relaxed);
                if self.may_log(counts) {
                    info!(service, %peer, claimed, "served a caller that proved no appkey (\"unauthenticated\": \"count\")");
                }
                Ok(())
            }
            Verdict::Refused(reason, message) => {
                let index = REFUSAL_REASONS.iter().position(|r| *r == reason).unwrap_or(0);
                counts.refused[index].fetch_add(1, Relaxed);
                let appkey = match caller {
                    Caller::Proven(a) => Some(a.to_owned()),
                    Caller::Unproven(claimed) => claimed.map(str::to_owned),
                    Caller::BadToken(e) => token_appkey(e),
                    Caller::Conflicting { token, .. } => Some(token.to_owned()),
                };
                if self.may_log(counts) {
                    warn!(service, %peer, appkey = appkey.as_deref(), reason, why = %message, "caller refused");
                }
                let mut recent = counts.recent.lock().unwrap_or_else(PoisonError::into_inner);
                if recent.len() == RECENT {
                    recent.pop_front();
                }
                recent.push_back(Refused { peer, appkey, reason, at_ms: now_ms() });
                Err(message)
            }
        }
    }

    /// Whether a line may be logged now (one a second per service).
    fn may_log(&self, counts: &Counts) -> bool {
        let now = now_ms();
        let last = counts.logged_at.load(Relaxed);
        now.saturating_sub(last) >= 1000
            && counts.logged_at.compare_exchange(last, now, Relaxed, Relaxed).is_ok()
    }

    /// The appkey `token` proves, verified once per connection (again only when the token
    /// changes).
    fn verify<'c>(
        &self,
        connection: &'c mut ConnectionCaller,
        token: &[u8],
        local: SocketAddr,
    ) -> &'c Result<String, TokenError> {
        // A result is kept for the connection's token, unless it named an app the keys did not
        // know yet (they are reloading).
        let fresh = matches!(
            &connection.token,
            Some((seen, result)) if **seen == *token && !matches!(result, Err(TokenError::UnknownApp { .. }))
        );
        if !fresh {
            connection.token = None;
        }
        let (_, result) =
            connection.token.get_or_insert_with(|| (token.into(), self.verify_now(token, local)));
        result
    }

    fn verify_now(&self, token: &[u8], local: SocketAddr) -> Result<String, TokenError> {
        let parsed = token::parse(token)?;
        let stored = self.keys.get(parsed.appkey);
        let local = local.to_string();
        let audiences = self.audiences.load();
        let mut accepted: Vec<&str> = audiences.iter().map(String::as_str).collect();
        accepted.push(&local);
        parsed.verify(stored.as_ref().map(|s| s.caller_keys()), &accepted)?;
        Ok(parsed.appkey.to_owned())
    }
}

/// The appkey a token error names.
fn token_appkey(error: &TokenError) -> Option<String> {
    match error {
        TokenError::Malformed(_) => None,
        TokenError::Stale { appkey, .. }
        | TokenError::WrongAudience { appkey, .. }
        | TokenError::UnknownApp { appkey }
        | TokenError::BadSignature { appkey } => Some(appkey.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::layout::Env;
    use crate::service::test_support::FakeService;

    /// Whether a call from a caller that proves no appkey gets through now.
    fn unproven_gets_through(callers: &ServerCallers) -> bool {
        let addr: SocketAddr = "127.0.0.1:1".parse().expect("an address");
        let mut connection = ConnectionCaller::default();
        !callers.any()
            || callers.check("Directory", &mut connection, Presented::default(), addr, addr).is_ok()
    }

    #[test]
    fn a_call_made_after_a_policy_reads_as_applied_is_judged_by_it() {
        let services: Vec<Arc<dyn Dispatch>> = vec![Arc::new(FakeService::new("Directory", &[]))];
        let callers = Arc::new(ServerCallers::new(&services, HashMap::new()));
        let key = NodeKey::new(Env::Dev, "dir_app", "Directory", "127.0.0.1", 9001).expect("a node key");
        let open = NodeData::new("127.0.0.1", 9001);
        let mut closed = open.clone();
        closed.callers = Some(serde_json::json!({"allow": ["order_app"], "unauthenticated": "refuse"}));
        // Another thread switches the policy on and off, a round at a time; this one watches what
        // reads as applied and calls the moment it reads the switch.
        let (switch, switches) = std::sync::mpsc::channel::<bool>();
        let switcher = {
            let (callers, key) = (Arc::clone(&callers), key.clone());
            std::thread::spawn(move || {
                for on in switches {
                    callers.apply_node(&key, if on { &closed } else { &open });
                }
            })
        };
        for round in 0..10_000 {
            let on = round % 2 == 0;
            switch.send(on).expect("the switcher runs");
            while callers.applied().contains_key("Directory") != on {
                std::thread::yield_now();
            }
            assert_eq!(
                unproven_gets_through(&callers),
                !on,
                "round {round}: the call was judged by the policies before those read as applied"
            );
        }
        drop(switch);
        switcher.join().expect("the switcher ends");
    }
}
