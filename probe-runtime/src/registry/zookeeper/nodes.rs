//! Reading an app's provider nodes: children of `/services/{env}/{appkey}` whose names and JSON
//! follow the layout. Children that break it are left out with a warning.

use std::collections::BTreeMap;

use futures_util::future::join_all;
use zookeeper_client as zk;

use crate::registry::RegisteredNode;
use crate::registry::layout::{Env, NodeData, NodeKey, zk_app_path};

/// An app's valid nodes by child name (so they come out sorted by it).
pub(super) type NodeMap = BTreeMap<String, RegisteredNode>;

/// The app whose nodes are read.
#[derive(Debug, Clone)]
pub(super) struct App {
    pub(super) env: Env,
    pub(super) appkey: String,
    /// `/services/{env}/{appkey}`.
    pub(super) path: String,
}

impl App {
    pub(super) fn new(env: Env, appkey: &str) -> Self {
        App { env, appkey: appkey.to_owned(), path: zk_app_path(env, appkey) }
    }

    /// Reads every child; a missing app path holds no nodes.
    pub(super) async fn read_all(&self, client: &zk::Client) -> Result<NodeMap, zk::Error> {
        let children = match client.list_children(&self.path).await {
            Ok(children) => children,
            Err(zk::Error::NoNode) => return Ok(NodeMap::new()),
            Err(err) => return Err(err),
        };
        let keyed: Vec<(String, NodeKey)> =
            children.into_iter().filter_map(|child| self.key(&child).map(|key| (child, key))).collect();
        // Requests go out as they are made, so the reads run concurrently.
        let reads =
            join_all(keyed.iter().map(|(child, _)| client.get_data(&format!("{}/{child}", self.path)))).await;
        let mut nodes = NodeMap::new();
        for ((child, key), read) in keyed.into_iter().zip(reads) {
            match read {
                Ok((bytes, _)) => {
                    if let Some(node) = self.node(&child, key, &bytes) {
                        nodes.insert(child, node);
                    }
                }
                // Gone since the listing; the watch reports it.
                Err(zk::Error::NoNode) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(nodes)
    }

    /// Reads one child: `None` when it is gone or breaks the layout.
    pub(super) async fn read_one(
        &self,
        client: &zk::Client,
        child: &str,
    ) -> Result<Option<RegisteredNode>, zk::Error> {
        let Some(key) = self.key(child) else { return Ok(None) };
        match client.get_data(&format!("{}/{child}", self.path)).await {
            Ok((bytes, _)) => Ok(self.node(child, key, &bytes)),
            Err(zk::Error::NoNode) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// The child's key, if its name follows `{service}_{ip}_{port}`.
    fn key(&self, child: &str) -> Option<NodeKey> {
        match NodeKey::from_zk_child(self.env, &self.appkey, child) {
            Ok(key) => Some(key),
            Err(err) => {
                tracing::warn!(path = %self.path, %err, "skipping a ZooKeeper node with a bad name");
                None
            }
        }
    }

    /// The node, if its data is layout JSON.
    fn node(&self, child: &str, key: NodeKey, bytes: &[u8]) -> Option<RegisteredNode> {
        match NodeData::from_json(bytes) {
            Ok(data) => Some(RegisteredNode { key, data }),
            Err(err) => {
                tracing::warn!(path = %self.path, child, %err, "skipping a ZooKeeper node with bad JSON");
                None
            }
        }
    }

    /// Where an event path lies relative to the app path.
    pub(super) fn locate<'p>(&self, path: &'p str) -> Place<'p> {
        match path.strip_prefix(self.path.as_str()) {
            Some("") => Place::App,
            Some(rest) => match rest.strip_prefix('/') {
                Some(child) if !child.is_empty() && !child.contains('/') => Place::Child(child),
                _ => Place::Elsewhere,
            },
            None => Place::Elsewhere,
        }
    }
}

/// Where an event happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place<'p> {
    /// At the app path itself.
    App,
    /// At a direct child (a provider node), named so.
    Child(&'p str),
    /// Deeper, or at an app whose key merely starts with this one's.
    Elsewhere,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_event_paths() {
        let app = App::new(Env::Dev, "shop");
        assert_eq!(app.path, "/services/dev/shop");
        assert_eq!(app.locate("/services/dev/shop"), Place::App);
        assert_eq!(app.locate("/services/dev/shop/S_1.2.3.4_80"), Place::Child("S_1.2.3.4_80"));
        assert_eq!(app.locate("/services/dev/shop/S_1.2.3.4_80/x"), Place::Elsewhere);
        assert_eq!(app.locate("/services/dev/shopping/S_1.2.3.4_80"), Place::Elsewhere);
        assert_eq!(app.locate("/services/dev/shop/"), Place::Elsewhere);
        assert_eq!(app.locate("/services/dev"), Place::Elsewhere);
    }

    #[test]
    fn leaves_out_bad_names_and_json() {
        let app = App::new(Env::Dev, "shop");
        assert!(app.key("no-port").is_none());
        assert!(app.key("S_1.2.3.4_http").is_none());
        let key = app.key("Shop_Service_1.2.3.4_80").expect("valid name");
        assert_eq!((key.service(), key.ip(), key.port()), ("Shop_Service", "1.2.3.4", 80));
        assert!(app.node("S_1.2.3.4_80", key.clone(), b"not json").is_none());
        assert!(app.node("S_1.2.3.4_80", key.clone(), br#"{"port": 80}"#).is_none());
        let node = app.node("S_1.2.3.4_80", key, br#"{"host": "1.2.3.4", "port": 80}"#).expect("valid JSON");
        assert_eq!(node.data, NodeData::new("1.2.3.4", 80));
    }
}
