//! Security, opt-in per fleet: app credentials, ZooKeeper ACLs per appkey, caller identity and
//! per-service allow-lists.
//!
//! - [`Secret`] and [`AppCredential`]: one secret per app, issued by `probe apps add` and shown
//!   once; the app store keeps only what verifies it ([`StoredCredential`]). A process holds it as
//!   `PROBE_APP_CREDENTIAL=appkey:secret`.
//! - ZooKeeper: with the operator's secret set (`PROBE_ZK_OPERATOR_SECRET`), `/services/{env}/{appkey}`
//!   carries ACLs ([`acl`]): everyone reads, the app's digest creates and deletes its nodes, the
//!   operator changes data. Providers authenticate with their app's credential.
//! - Callers: a probe client signs a [`token`] per provider with its app's key; providers check
//!   it against the app store and apply each service's [`CallerPolicy`].
//!
//! Secrets never appear in `Debug`, `Display`, errors, logs or metrics.

pub mod acl;
pub mod callers;
mod credential;
pub(crate) mod keys;
pub mod token;

pub use callers::{Caller, CallerPolicy, Unauthenticated, Verdict};
pub use credential::{
    AppCredential, CredentialError, OPERATOR_USER, SECRET_PREFIX, Secret, StoredCredential,
};
