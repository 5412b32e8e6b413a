//! Reading an app's provider nodes: children of `/services/{env}/{appkey}` whose names and JSON
//! follow the layout, read as the Python client reads them. Children probe cannot use are kept
//! apart with the reason, for reports; they get no calls.

use std::collections::BTreeMap;

use futures_util::future::join_all;
use zookeeper_client as zk;

use crate::registry::RegisteredNode;
use crate::registry::layout::{Env, NodeData, NodeKey, UnusableNode, UnusableReason, zk_app_path};

/// What one child holds: a node probe can route to, or why it cannot.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Child {
    /// A provider node (boxed: it is ten times the size of the other variant).
    Usable(Box<RegisteredNode>),
    /// A child probe cannot use, with the reason.
    Unusable(UnusableNode),
}

impl Child {
    /// The node, when it is usable.
    pub(super) fn usable(self) -> Option<RegisteredNode> {
        match self {
            Child::Usable(node) => Some(*node),
            Child::Unusable(_) => None,
        }
    }
}

/// An app's children by name (so they come out sorted by it).
pub(super) type NodeMap = BTreeMap<String, Child>;

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
        // Requests go out as they are made, so the reads run concurrently.
        let reads =
            join_all(children.iter().map(|child| client.get_data(&format!("{}/{child}", self.path)))).await;
        let mut nodes = NodeMap::new();
        for (child, read) in children.into_iter().zip(reads) {
            match read {
                Ok((bytes, _)) => {
                    let node = self.node(&child, &bytes);
                    nodes.insert(child, node);
                }
                // Gone since the listing; the watch reports it.
                Err(zk::Error::NoNode) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(nodes)
    }

    /// Reads one child: `None` when it is gone.
    pub(super) async fn read_one(
        &self,
        client: &zk::Client,
        child: &str,
    ) -> Result<Option<Child>, zk::Error> {
        match client.get_data(&format!("{}/{child}", self.path)).await {
            Ok((bytes, _)) => Ok(Some(self.node(child, &bytes))),
            Err(zk::Error::NoNode) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// The child as a node, or why probe cannot use it: its name must follow
    /// `{service}_{ip}_{port}` and its data must be node JSON as the Python client reads it.
    fn node(&self, child: &str, bytes: &[u8]) -> Child {
        let key = NodeKey::from_zk_child(self.env, &self.appkey, child);
        let unusable = |key, reason: UnusableReason| UnusableNode::new(child, key, reason, bytes);
        match (key, NodeData::from_json(bytes)) {
            (Ok(key), Ok(data)) => Child::Usable(Box::new(RegisteredNode { key, data })),
            (Ok(key), Err(problem)) => Child::Unusable(unusable(Some(key), problem.into())),
            (Err(err), _) => Child::Unusable(unusable(None, err.into())),
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
    fn keeps_bad_names_and_json_apart_with_the_reason() {
        let app = App::new(Env::Dev, "shop");
        let data = br#"{"host": "1.2.3.4", "port": 80, "weight": 10, "valid": 1}"#;
        let unusable = |child: &str, bytes: &[u8]| match app.node(child, bytes) {
            Child::Unusable(bad) => bad,
            Child::Usable(node) => panic!("{node:?} is usable"),
        };
        let kind = |child: &str, bytes: &[u8]| unusable(child, bytes).problem.kind();
        assert_eq!(kind("no-port", data), "bad_name");
        assert_eq!(kind("S_1.2.3.4_http", data), "bad_name");
        assert_eq!(kind("S_1.2.3.4_80", b"not json"), "not_json");
        assert_eq!(kind("S_1.2.3.4_80", br#"{"port": 80}"#), "missing_field");
        let bad = unusable("S_1.2.3.4_80", b"not json");
        assert_eq!((bad.service(), bad.data.as_str()), (Some("S"), "not json"));
        let node = app.node("Shop_Service_1.2.3.4_80", data).usable().expect("valid JSON");
        assert_eq!((node.key.service(), node.key.ip(), node.key.port()), ("Shop_Service", "1.2.3.4", 80));
        assert_eq!(node.data, NodeData::new("1.2.3.4", 80));
    }
}
