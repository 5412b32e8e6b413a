//! The ZooKeeper ACLs of a secured tree. Everyone may read everywhere, so Python clients keep
//! discovering. Beyond reading:
//!
//! | path | who | may |
//! | --- | --- | --- |
//! | `/services`, `/services/{env}`, probe's rule documents | the operator | everything |
//! | `/services/{env}/{appkey}` | the app's credential (and its previous one, until retired) | create and delete nodes, change data |
//! | | the operator | everything |
//! | a provider node | the app's credential | everything |
//! | | the operator | everything (weights, `valid`, limits, caller policies) |
//!
//! So a provider without its app's credential cannot register, another app's credential cannot
//! touch the app's nodes, and only the operator creates apps' paths (`probe apps add`, `probe zk
//! secure`). ACLs name digest ids (`user:base64(sha1(user:secret))`), never secrets.

use std::fmt;

use super::StoredCredential;

/// Read.
pub const READ: u8 = 1;
/// Change data.
pub const WRITE: u8 = 2;
/// Create children.
pub const CREATE: u8 = 4;
/// Delete children.
pub const DELETE: u8 = 8;
/// Change the ACL.
pub const ADMIN: u8 = 16;
/// Everything.
pub const ALL: u8 = 31;

/// One ACL entry: who (`world:anyone` or `digest:{digest id}`) may do what.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AclEntry {
    /// `world` or `digest`.
    pub scheme: &'static str,
    /// `anyone`, or the digest id.
    pub id: String,
    /// The permissions, [`READ`] | [`WRITE`] | ...
    pub perms: u8,
}

impl AclEntry {
    /// Everyone may read.
    pub fn anyone_read() -> AclEntry {
        AclEntry { scheme: "world", id: "anyone".into(), perms: READ }
    }

    /// The holder of digest id `id` may do `perms`.
    pub fn digest(id: &str, perms: u8) -> AclEntry {
        AclEntry { scheme: "digest", id: id.to_owned(), perms }
    }

    /// The user of a digest entry (`order_app`), or `anyone`.
    pub fn user(&self) -> &str {
        self.id.split(':').next().unwrap_or_default()
    }
}

impl fmt::Display for AclEntry {
    /// `digest:order_app:<hash>=rwcd`, as `zkCli.sh getAcl` shows it, with the hash shortened.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut perms = String::new();
        for (bit, c) in [(CREATE, 'c'), (DELETE, 'd'), (READ, 'r'), (WRITE, 'w'), (ADMIN, 'a')] {
            if self.perms & bit != 0 {
                perms.push(c);
            }
        }
        match self.id.split_once(':') {
            Some((user, hash)) => {
                write!(f, "{}:{user}:{}…={perms}", self.scheme, hash.get(..8).unwrap_or(hash))
            }
            None => write!(f, "{}:{}={perms}", self.scheme, self.id),
        }
    }
}

/// The ACL of `/services`, `/services/{env}` and rule documents: everyone reads, the operator
/// (digest id `operator`) does everything.
pub fn operator_only(operator: &str) -> Vec<AclEntry> {
    vec![AclEntry::anyone_read(), AclEntry::digest(operator, ALL)]
}

/// The ACL of `/services/{env}/{appkey}`: everyone reads, the app's credentials create and delete
/// nodes and change data, the operator does everything.
pub fn app_path(app: &StoredCredential, operator: &str) -> Vec<AclEntry> {
    let mut acl = vec![AclEntry::anyone_read()];
    acl.extend(app.zk_digests().map(|id| AclEntry::digest(id, READ | WRITE | CREATE | DELETE)));
    acl.push(AclEntry::digest(operator, ALL));
    acl
}

/// The ACL of a provider node under an app path whose ACL is `parent`: everyone reads; the
/// parent's digest users (the app's credentials and the operator) do everything.
pub fn provider_node(parent: &[AclEntry]) -> Vec<AclEntry> {
    let mut acl = vec![AclEntry::anyone_read()];
    acl.extend(parent.iter().filter(|e| e.scheme == "digest").map(|e| AclEntry::digest(&e.id, ALL)));
    acl
}

/// Where the ACL metadata of an env lives: `/probe/acl/{env}`, outside the app paths Python
/// clients list. Its data is [`AclMetadata`] as JSON; everyone reads it, the operator writes it.
/// Providers read the operator's digest id there (ZooKeeper hides digest ids in ACLs from
/// sessions without the ADMIN permission, so a provider cannot take it from its app path).
pub fn metadata_path(env: crate::registry::layout::Env) -> String {
    format!("{METADATA_ROOT}/{env}")
}

/// The parent of every env's ACL metadata.
pub const METADATA_ROOT: &str = "/probe/acl";

/// What a secured env publishes for its providers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AclMetadata {
    /// The operator's digest id, which every provider node grants everything to.
    pub operator: String,
}

/// The ACL a provider gives its node under a secured app path: everyone reads; its own app
/// credential (digest id `app`) and the operator do everything.
pub fn own_node(app: &str, operator: Option<&str>) -> Vec<AclEntry> {
    let mut acl = vec![AclEntry::anyone_read(), AclEntry::digest(app, ALL)];
    acl.extend(operator.map(|o| AclEntry::digest(o, ALL)));
    acl
}

/// Whether `acl` is what a secured tree gives a path: world may only read and some digest is
/// named. Unsecured paths (probe's default `world:anyone` with every permission) are not.
pub fn is_secured(acl: &[AclEntry]) -> bool {
    acl.iter().all(|e| e.scheme != "world" || e.perms == READ) && acl.iter().any(|e| e.scheme == "digest")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::{AppCredential, OPERATOR_USER, Secret};

    #[test]
    fn app_paths_grant_the_app_and_the_operator() {
        let operator = Secret::generate().zk_digest_id(OPERATOR_USER);
        let app = AppCredential::new("order_app", Secret::generate()).unwrap().stored(0);
        let acl = app_path(&app, &operator);
        assert!(is_secured(&acl));
        assert_eq!(acl.len(), 3);
        assert_eq!(acl[1].user(), "order_app");
        assert_eq!(acl[1].perms, READ | WRITE | CREATE | DELETE);
        let node = provider_node(&acl);
        assert_eq!(node.iter().filter(|e| e.perms == ALL).count(), 2);
        assert!(is_secured(&node));
        assert!(!is_secured(&[AclEntry { scheme: "world", id: "anyone".into(), perms: ALL }]));
        let shown = acl[1].to_string();
        assert!(shown.starts_with("digest:order_app:") && shown.ends_with("=cdrw"), "{shown}");
        assert!(!shown.contains(&app.zk_digest[12..]), "the hash is shortened: {shown}");
    }
}
