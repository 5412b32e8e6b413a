//! Operator actions of security: issuing and rotating app credentials, securing a ZooKeeper tree
//! with ACLs ([`crate::security::acl`]), and setting services' caller policies.

use super::{AuditError, NodeChange, Operator, OperatorError};
use crate::registry::layout::{Env, NodeData, ZK_ROOT, zk_app_path, zk_env_path};
use crate::security::acl::{self, AclEntry};
use crate::security::{AppCredential, CallerPolicy, Secret, StoredCredential};

/// A credential issued to an app: the secret, shown once, and what the app store keeps.
#[derive(Debug, Clone)]
pub struct IssuedCredential {
    /// The credential to hand to the app (`PROBE_APP_CREDENTIAL=appkey:secret`). Its secret is
    /// stored nowhere: show it once.
    pub credential: AppCredential,
    /// What the app store keeps (with the previous credential, after a rotation).
    pub stored: StoredCredential,
    /// Whether it replaced a credential, which stays valid until retired.
    pub rotated: bool,
    /// The ZooKeeper app path secured for it, when the operator's secret is set.
    pub secured: Option<String>,
    /// Whether the audit log recorded it.
    pub audit: Result<(), AuditError>,
}

/// One path of a secured tree: its ACL before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclChange {
    /// The path.
    pub path: String,
    /// Its ACL before (`None`: the path did not exist and is created).
    pub before: Option<Vec<AclEntry>>,
    /// Its ACL after.
    pub after: Vec<AclEntry>,
}

impl AclChange {
    /// Whether the ACL changes.
    pub fn changes(&self) -> bool {
        let sorted = |acl: &[AclEntry]| {
            let mut acl = acl.to_vec();
            acl.sort();
            acl
        };
        self.before.as_deref().map(sorted) != Some(sorted(&self.after))
    }
}

/// What `probe zk secure` did (or would do, on a dry run).
#[derive(Debug, Clone)]
pub struct SecureReport {
    /// The env secured.
    pub env: Env,
    /// Every path looked at, with its ACL before and after.
    pub paths: Vec<AclChange>,
    /// Apps under the env with no credential: their paths were left as they are (securing them
    /// would lock their providers out). Issue one with `probe apps credential rotate APPKEY`.
    pub without_credential: Vec<String>,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Whether the audit log recorded it (`Ok` on a dry run).
    pub audit: Result<(), AuditError>,
}

fn digest_shown(stored: &StoredCredential) -> String {
    let shorten = |id: &str| match id.split_once(':') {
        Some((user, hash)) => format!("{user}:{}…", hash.get(..8).unwrap_or(hash)),
        None => id.to_owned(),
    };
    match &stored.previous_zk_digest {
        Some(previous) => format!("digest={} previous={}", shorten(&stored.zk_digest), shorten(previous)),
        None => format!("digest={}", shorten(&stored.zk_digest)),
    }
}

impl Operator {
    fn operator_digest(&self) -> Result<String, OperatorError> {
        self.backends.registry.operator_digest().ok_or(OperatorError::NoOperatorSecret)
    }

    /// Issues a new credential to a registered app: a fresh secret, whose verifiers go to the app
    /// store. An app that had one keeps the old one valid too (as previous) until
    /// [`Operator::retire_credential`]. With the operator's secret set, the app's path in this
    /// env is secured for it. Audited without the secret.
    pub async fn issue_credential(&self, appkey: &str) -> Result<IssuedCredential, OperatorError> {
        if !self.backends.apps.contains(appkey).await? {
            return Err(OperatorError::UnknownApp(appkey.to_owned()));
        }
        let credential = AppCredential::new(appkey, Secret::generate())
            .map_err(|e| OperatorError::UnknownApp(format!("{appkey} ({e})")))?;
        let previous = self.backends.apps.credential(appkey).await?;
        let fresh = credential.stored(super::super::unix_ms());
        let stored = match &previous {
            Some(previous) => previous.rotated(fresh),
            None => fresh,
        };
        self.backends.apps.set_credential(&stored).await?;
        let secured = self.secure_app(&stored).await?;
        let (action, before) = match &previous {
            Some(previous) => ("rotate_credential", digest_shown(previous)),
            None => ("issue_credential", String::new()),
        };
        let audit = self.audit(action, appkey, before, digest_shown(&stored)).await;
        Ok(IssuedCredential { credential, rotated: previous.is_some(), stored, secured, audit })
    }

    /// Drops the credential an app had before its last rotation: processes still using it can no
    /// longer register or prove their calls. Returns what is stored now; `None` when the app has no
    /// credential.
    pub async fn retire_credential(&self, appkey: &str) -> Result<Option<StoredCredential>, OperatorError> {
        let Some(before) = self.backends.apps.credential(appkey).await? else { return Ok(None) };
        let after =
            StoredCredential { previous_zk_digest: None, previous_caller_key: None, ..before.clone() };
        if after != before {
            self.backends.apps.set_credential(&after).await?;
            self.secure_app(&after).await?;
            // The change is made; its audit failure is logged by `audit`.
            let _ =
                self.audit("retire_credential", appkey, digest_shown(&before), digest_shown(&after)).await;
        }
        Ok(Some(after))
    }

    /// Secures the app path of `stored`'s app in this env, when the operator's secret is set.
    async fn secure_app(&self, stored: &StoredCredential) -> Result<Option<String>, OperatorError> {
        let Some(operator) = self.backends.registry.operator_digest() else { return Ok(None) };
        let env = self.backends.env;
        let registry = &self.backends.registry;
        registry.publish_operator(env, &operator).await?;
        for path in [ZK_ROOT.to_owned(), zk_env_path(env)] {
            if registry.acl(&path).await?.is_none() {
                registry.set_acl(&path, &acl::operator_only(&operator), true).await?;
            }
        }
        let path = zk_app_path(env, &stored.appkey);
        let app_acl = acl::app_path(stored, &operator);
        registry.set_acl(&path, &app_acl, true).await?;
        for child in registry.children(&path).await?.unwrap_or_default() {
            let child = format!("{path}/{child}");
            match registry.set_acl(&child, &acl::provider_node(&app_acl), false).await {
                Ok(()) => {}
                // Gone meanwhile (a provider left).
                Err(e) if registry.acl(&child).await.ok().flatten().is_none() => drop(e),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Some(path))
    }

    /// Secures the tree of `env`: `/services` and `/services/{env}` for the operator, each app's
    /// path for its credential and the operator, each provider node for its app and the operator,
    /// and probe's rule documents for the operator; everyone keeps reading. Apps without a
    /// credential are left as they are and listed. With `dry_run` nothing is written.
    pub async fn secure_zk(&self, env: Env, dry_run: bool) -> Result<SecureReport, OperatorError> {
        let operator = self.operator_digest()?;
        let registry = &self.backends.registry;
        let mut plan: Vec<(AclChange, bool)> = Vec::new();
        let mut planned =
            |path: String, before: Option<Vec<AclEntry>>, after: Vec<AclEntry>, create: bool| {
                plan.push((AclChange { path, before, after }, create));
            };
        for path in [ZK_ROOT.to_owned(), zk_env_path(env)] {
            let before = registry.acl(&path).await?;
            planned(path, before, acl::operator_only(&operator), true);
        }
        let mut without_credential = Vec::new();
        for appkey in registry.apps(env).await? {
            let Some(stored) = self.backends.apps.credential(&appkey).await? else {
                without_credential.push(appkey);
                continue;
            };
            let path = zk_app_path(env, &appkey);
            let app_acl = acl::app_path(&stored, &operator);
            let before = registry.acl(&path).await?;
            planned(path.clone(), before, app_acl.clone(), true);
            for child in registry.children(&path).await?.unwrap_or_default() {
                let child = format!("{path}/{child}");
                if let Some(before) = registry.acl(&child).await? {
                    planned(child, Some(before), acl::provider_node(&app_acl), false);
                }
            }
        }
        let rules = format!("{}/{env}", crate::registry::zookeeper::ZK_RULES_ROOT);
        let mut stack = vec![rules];
        while let Some(path) = stack.pop() {
            let Some(before) = registry.acl(&path).await? else { continue };
            for child in registry.children(&path).await?.unwrap_or_default() {
                stack.push(format!("{path}/{child}"));
            }
            planned(path, Some(before), acl::operator_only(&operator), false);
        }
        let changed = plan.iter().filter(|(c, _)| c.changes()).count();
        if !dry_run {
            registry.publish_operator(env, &operator).await?;
            for (change, create) in plan.iter().filter(|(c, _)| c.changes()) {
                registry.set_acl(&change.path, &change.after, *create).await?;
            }
        }
        let audit = match dry_run || changed == 0 {
            true => Ok(()),
            false => {
                let after =
                    format!("{changed} paths secured; apps without credential: {}", without_credential.len());
                self.audit("secure_zk", &zk_env_path(env), String::new(), after).await
            }
        };
        let paths = plan.into_iter().map(|(c, _)| c).collect();
        Ok(SecureReport { env, paths, without_credential, dry_run, audit })
    }

    /// Sets the caller policy of every node of `service` of `appkey` (running or stored; `None`
    /// clears it: the provider's configured one applies), stored like limits: the settings store,
    /// then the live node, whose provider applies it at once.
    pub async fn set_service_callers(
        &self,
        appkey: &str,
        service: &str,
        policy: Option<&CallerPolicy>,
    ) -> Result<Vec<NodeChange>, OperatorError> {
        let nodes: Vec<_> =
            self.nodes(appkey).await?.into_iter().filter(|n| n.key.service() == service).collect();
        if nodes.is_empty() {
            return Err(OperatorError::NoNodes { appkey: appkey.to_owned(), service: service.to_owned() });
        }
        let value = policy.map(CallerPolicy::to_json);
        let target = format!("{appkey}/{service}");
        self.change_all(
            &target,
            &nodes,
            "set_callers",
            move |data| data.callers = value.clone(),
            show_callers,
        )
        .await
    }
}

/// A node's caller policy, as the audit log shows it.
fn show_callers(data: &NodeData) -> String {
    match &data.callers {
        Some(callers) => format!("callers={callers}"),
        None => "callers=none".to_owned(),
    }
}
