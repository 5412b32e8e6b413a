//! ACLs on ZooKeeper: reading and writing them as probe's [`AclEntry`], and the ACL a provider
//! gives its node under a secured app path.

use zookeeper_client as zk;

use super::ZooKeeperRegistry;
use super::connect::Target;
use crate::registry::BackendError;
use crate::registry::layout::Env;
use crate::security::acl::{self, AclEntry};

/// probe's permission bits and the client library's permissions.
const PERMISSIONS: [(u8, zk::Permission); 5] = [
    (acl::READ, zk::Permission::READ),
    (acl::WRITE, zk::Permission::WRITE),
    (acl::CREATE, zk::Permission::CREATE),
    (acl::DELETE, zk::Permission::DELETE),
    (acl::ADMIN, zk::Permission::ADMIN),
];

/// `entry` as the client library's ACL.
pub(super) fn to_zk(entry: &AclEntry) -> zk::Acl {
    let mut perms = zk::Permission::NONE;
    for (bit, perm) in PERMISSIONS {
        if entry.perms & bit != 0 {
            perms = perms | perm;
        }
    }
    zk::Acl::new(perms, zk::AuthId::new(entry.scheme, &entry.id))
}

/// The client library's ACL as probe's; schemes other than `world` and `digest` (`ip`, `sasl`,
/// `x509`) are kept under the name `other`.
pub(super) fn from_zk(entry: &zk::Acl) -> AclEntry {
    let mut perms = 0;
    for (bit, perm) in PERMISSIONS {
        if entry.permission().has(perm) {
            perms |= bit;
        }
    }
    let scheme = match entry.scheme() {
        "world" => "world",
        "digest" => "digest",
        _ => "other",
    };
    AclEntry { scheme, id: entry.id().to_owned(), perms }
}

/// The ACL to create a provider node under `app` with: under a secured app path, the path's
/// digest users get everything and everyone reads ([`acl::provider_node`]); elsewhere, probe's
/// default (everyone everything, as kazoo's default).
pub(super) async fn provider_node_acl(
    client: &zk::Client,
    target: &Target,
    env: Env,
    app: &str,
) -> Result<Vec<zk::Acl>, BackendError> {
    let Some(own) = target.app_digest() else { return Ok(zk::Acls::anyone_all().to_vec()) };
    match client.get_acl(app).await {
        Ok((parent, _)) => {
            let parent: Vec<AclEntry> = parent.iter().map(from_zk).collect();
            if !acl::is_secured(&parent) {
                return Ok(zk::Acls::anyone_all().to_vec());
            }
        }
        Err(zk::Error::NoNode) => return Ok(zk::Acls::anyone_all().to_vec()),
        Err(err) => return Err(target.error(format!("read the ACL of {app}"), &err)),
    }
    // The operator's digest id, as the env's ACL metadata publishes it.
    let path = acl::metadata_path(env);
    let operator = match client.get_data(&path).await {
        Ok((data, _)) => serde_json::from_slice::<acl::AclMetadata>(&data).ok().map(|m| m.operator),
        Err(zk::Error::NoNode) => None,
        Err(err) => return Err(target.error(format!("read {path}"), &err)),
    };
    if operator.is_none() {
        tracing::warn!(%path, "the app path is secured but the env publishes no operator: operators cannot change this node; run `probe zk secure`");
    }
    Ok(acl::own_node(&own, operator.as_deref()).iter().map(to_zk).collect())
}

impl ZooKeeperRegistry {
    pub(super) async fn read_acl(&self, path: &str) -> Result<Option<Vec<AclEntry>>, BackendError> {
        let client = self.shared.get().await?;
        match client.get_acl(path).await {
            Ok((acl, _)) => Ok(Some(acl.iter().map(from_zk).collect())),
            Err(zk::Error::NoNode) => Ok(None),
            Err(err) => Err(self.target().error(format!("read the ACL of {path}"), &err)),
        }
    }

    pub(super) async fn write_acl(
        &self,
        path: &str,
        entries: &[AclEntry],
        create: bool,
    ) -> Result<(), BackendError> {
        let client = self.shared.get().await?;
        let acl: Vec<zk::Acl> = entries.iter().map(to_zk).collect();
        match client.set_acl(path, &acl, None).await {
            Ok(_) => return Ok(()),
            Err(zk::Error::NoNode) if create => {}
            Err(err) => return Err(self.target().error(format!("set the ACL of {path}"), &err)),
        }
        let options = zk::CreateMode::Persistent.with_acls(zk::Acls::new(&acl));
        match client.create(path, &[], &options).await {
            Ok(_) => Ok(()),
            // Created meanwhile: set its ACL.
            Err(zk::Error::NodeExists) => client
                .set_acl(path, &acl, None)
                .await
                .map(drop)
                .map_err(|err| self.target().error(format!("set the ACL of {path}"), &err)),
            Err(err) => Err(self.target().error(format!("create {path}"), &err)),
        }
    }

    pub(super) async fn write_metadata(&self, env: Env, operator: &str) -> Result<(), BackendError> {
        let client = self.shared.get().await?;
        let path = acl::metadata_path(env);
        let data =
            serde_json::to_vec(&acl::AclMetadata { operator: operator.to_owned() }).unwrap_or_default();
        let entries: Vec<zk::Acl> = acl::operator_only(operator).iter().map(to_zk).collect();
        let options = zk::CreateMode::Persistent.with_acls(zk::Acls::new(&entries));
        for parent in ["/probe", acl::METADATA_ROOT] {
            match client.create(parent, &[], &options).await {
                Ok(_) | Err(zk::Error::NodeExists) => {}
                Err(err) => return Err(self.target().error(format!("create {parent}"), &err)),
            }
        }
        match client.create(&path, &data, &options).await {
            Ok(_) => Ok(()),
            Err(zk::Error::NodeExists) => {
                client
                    .set_data(&path, &data, None)
                    .await
                    .map_err(|e| self.target().error(format!("set {path}"), &e))?;
                client
                    .set_acl(&path, &entries, None)
                    .await
                    .map(drop)
                    .map_err(|e| self.target().error(format!("set the ACL of {path}"), &e))
            }
            Err(err) => Err(self.target().error(format!("create {path}"), &err)),
        }
    }

    pub(super) async fn read_children(&self, path: &str) -> Result<Option<Vec<String>>, BackendError> {
        let client = self.shared.get().await?;
        match client.list_children(path).await {
            Ok(mut children) => {
                children.sort();
                Ok(Some(children))
            }
            Err(zk::Error::NoNode) => Ok(None),
            Err(err) => Err(self.target().error(format!("list {path}"), &err)),
        }
    }
}
