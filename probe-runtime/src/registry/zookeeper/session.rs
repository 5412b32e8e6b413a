//! A provider's ZooKeeper session: its own client, so its EPHEMERAL nodes live exactly as long as
//! the provider's session does.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use zookeeper_client as zk;

use super::connect::{BACKEND, Target, wait_ended};
use crate::registry::layout::{NodeData, NodeKey, zk_app_path};
use crate::registry::{BackendError, RegistrySession};
use crate::service::BoxFuture;

/// How often `register` retries when another session races it for the same path.
const REGISTER_ATTEMPTS: usize = 5;

/// A registry session on ZooKeeper (from [`super::ZooKeeperRegistry`]'s
/// [`session`](crate::registry::Registry::session)): one client with its own ZooKeeper session,
/// holding the provider's EPHEMERAL nodes.
#[derive(Debug)]
pub struct ZooKeeperSession {
    target: Arc<Target>,
    /// `None` once [`RegistrySession::expire`] closed it; operations hold a clone only while they
    /// run, so taking it out closes the session.
    client: ArcSwapOption<zk::Client>,
    id: zk::SessionId,
    states: zk::StateWatcher,
}

impl ZooKeeperSession {
    pub(super) async fn open(target: Arc<Target>) -> Result<Self, BackendError> {
        let client = target.open().await?;
        let id = client.session_id();
        tracing::debug!(addr = target.addr(), session = %id, "ZooKeeper registry session opened");
        let states = client.state_watcher();
        Ok(ZooKeeperSession { target, client: ArcSwapOption::from_pointee(client), id, states })
    }

    fn client(&self) -> Result<Arc<zk::Client>, BackendError> {
        self.client.load_full().ok_or(BackendError::SessionEnded { backend: BACKEND })
    }

    /// Maps a client error; a session that is over is [`BackendError::SessionEnded`].
    fn error(&self, action: impl std::fmt::Display, err: &zk::Error) -> BackendError {
        match err {
            zk::Error::SessionExpired | zk::Error::ClientClosed | zk::Error::AuthFailed => {
                BackendError::SessionEnded { backend: BACKEND }
            }
            _ => self.target.error(action, err),
        }
    }

    async fn register_node(&self, key: &NodeKey, data: &NodeData) -> Result<(), BackendError> {
        let client = self.client()?;
        let app = zk_app_path(key.env(), key.appkey());
        let path = key.zk_node_path();
        let json = data.to_json();
        let acl = super::acl::provider_node_acl(&client, &self.target, key.env(), &app).await?;
        let ephemeral = zk::CreateMode::Ephemeral.with_acls(zk::Acls::new(&acl));
        for _ in 0..REGISTER_ATTEMPTS {
            match client.create(&path, &json, &ephemeral).await {
                Ok(_) => return Ok(()),
                Err(zk::Error::NoNode) => {
                    client
                        .mkdir(&app, &self.target.persistent())
                        .await
                        .map_err(|e| self.error(format!("create {app}"), &e))?;
                }
                Err(zk::Error::NodeExists) => {
                    let stat =
                        client.check_stat(&path).await.map_err(|e| self.error(format!("stat {path}"), &e))?;
                    match stat {
                        Some(stat) if stat.ephemeral_owner == self.id.0 => {
                            match client.set_data(&path, &json, None).await {
                                Ok(_) => return Ok(()),
                                Err(zk::Error::NoNode) => {}
                                Err(err) => return Err(self.error(format!("set {path}"), &err)),
                            }
                        }
                        Some(stat) => {
                            tracing::info!(
                                %path,
                                owner = %zk::SessionId(stat.ephemeral_owner),
                                "replacing a node left by another ZooKeeper session"
                            );
                            // One transaction, so watchers never see the node missing: the old
                            // session's node (a provider registering again after its session
                            // expired, e.g. after an ensemble outage) becomes this session's.
                            let mut replace = client.new_multi_writer();
                            let ops = replace
                                .add_delete(&path, Some(stat.version))
                                .and_then(|()| replace.add_create(&path, &json, &ephemeral));
                            ops.map_err(|e| self.error(format!("replace {path}"), &e))?;
                            match replace.commit().await.map_err(zk::Error::from) {
                                Ok(_) => return Ok(()),
                                Err(zk::Error::NoNode | zk::Error::BadVersion | zk::Error::NodeExists) => {}
                                Err(err) => return Err(self.error(format!("replace {path}"), &err)),
                            }
                        }
                        None => {}
                    }
                }
                Err(err) => return Err(self.error(format!("create {path}"), &err)),
            }
        }
        Err(BackendError::Failed {
            backend: BACKEND,
            action: format!("create {path}"),
            detail: format!("other sessions kept recreating it ({REGISTER_ATTEMPTS} attempts)"),
        })
    }

    async fn deregister_node(&self, key: &NodeKey) -> Result<(), BackendError> {
        let client = self.client()?;
        let path = key.zk_node_path();
        let stat = client.check_stat(&path).await.map_err(|e| self.error(format!("stat {path}"), &e))?;
        match stat {
            Some(stat) if stat.ephemeral_owner == self.id.0 => match client.delete(&path, None).await {
                Ok(()) | Err(zk::Error::NoNode) => Ok(()),
                Err(err) => Err(self.error(format!("delete {path}"), &err)),
            },
            _ => Ok(()),
        }
    }

    /// Closes the session and waits (up to the connect timeout) until the client saw it end.
    async fn close_session(&self) -> Result<(), BackendError> {
        // Dropping the last clone makes the client send CloseSession; the server then removes the
        // session and its nodes as it does when a session expires.
        drop(self.client.swap(None));
        let timeout = self.target.connect_timeout();
        tokio::time::timeout(timeout, wait_ended(self.states.clone())).await.map_err(|_| {
            BackendError::Failed {
                backend: BACKEND,
                action: format!("close session {}", self.id),
                detail: format!("the session did not end within {timeout:?}"),
            }
        })
    }
}

impl RegistrySession for ZooKeeperSession {
    fn register<'a>(
        &'a self,
        key: &'a NodeKey,
        data: &'a NodeData,
    ) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.register_node(key, data))
    }

    fn deregister<'a>(&'a self, key: &'a NodeKey) -> BoxFuture<'a, Result<(), BackendError>> {
        Box::pin(self.deregister_node(key))
    }

    fn ended(&self) -> BoxFuture<'_, ()> {
        Box::pin(wait_ended(self.states.clone()))
    }

    fn id(&self) -> String {
        self.id.to_string()
    }

    /// Ends the session on the server from this side: the server removes it and its nodes as it
    /// does on expiry, and [`RegistrySession::ended`] fires.
    ///
    /// (Attaching a second client to the session and closing that one, as other clients' drills do,
    /// races with this client reconnecting at once and taking the session back.)
    fn expire(&self) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(self.close_session())
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            if let Err(err) = self.close_session().await {
                tracing::warn!(%err, "the ZooKeeper session did not confirm its close; it will expire");
            }
        })
    }
}
