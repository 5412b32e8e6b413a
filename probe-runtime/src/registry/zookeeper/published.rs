//! What an app watch publishes: the app's nodes as one [`AppNodes`] in a watch channel, changed
//! in place. An event on one child changes that child's entry only: the other nodes are neither
//! read, parsed nor copied again. The snapshot is copied (`Arc::make_mut`) only while a receiver
//! still holds the previous one as an `Arc`, so such a holder keeps what it took.
//!
//! Children probe cannot use are published apart with the reason and reported when they become
//! unusable or usable again: never dropped silently.

use std::sync::Arc;

use tokio::sync::watch;

use super::nodes::{App, Child, NodeMap};
use crate::registry::layout::UnusableNode;
use crate::registry::{AppNodes, AppWatch, RegisteredNode};

/// The sending side of one app watch.
pub(super) struct Published {
    app: App,
    tx: watch::Sender<Arc<AppNodes>>,
    /// The child name of each node in the published `nodes`, at the same index (so sorted).
    children: Vec<Box<str>>,
}

impl Published {
    /// Publishes a full read of `app` as generation 1.
    pub(super) fn new(app: App, nodes: NodeMap) -> (Published, AppWatch) {
        let (children, usable, unusable) = split(nodes);
        report(&app, &[], &unusable);
        let (tx, rx) = watch::channel(Arc::new(AppNodes { generation: 1, nodes: usable, unusable }));
        (Published { app, tx, children }, rx)
    }

    /// The app watched.
    pub(super) fn app(&self) -> &App {
        &self.app
    }

    /// Resolves when every receiver is gone.
    pub(super) async fn closed(&self) {
        self.tx.closed().await;
    }

    /// Publishes a full read as the next generation, unless the view holds these nodes already.
    pub(super) fn replace(&mut self, nodes: NodeMap) {
        let (children, usable, unusable) = split(nodes);
        self.children = children;
        let app = &self.app;
        self.tx.send_if_modified(|current| {
            if current.nodes == usable && current.unusable == unusable {
                return false;
            }
            report(app, &current.unusable, &unusable);
            *current = Arc::new(AppNodes { generation: current.generation + 1, nodes: usable, unusable });
            true
        });
    }

    /// Publishes what the child named `child` holds now (`None`: it is gone) as the next
    /// generation, unless the view holds that already. Only that child's entry changes.
    pub(super) fn set(&mut self, child: &str, now: Option<Child>) {
        let (app, children) = (&self.app, &mut self.children);
        self.tx.send_if_modified(|current| {
            debug_assert_eq!(children.len(), current.nodes.len(), "child names follow the nodes");
            let usable_at = children.binary_search_by(|c| (**c).cmp(child));
            let unusable_at = current.unusable.binary_search_by(|n| n.child.as_str().cmp(child));
            let unchanged = match (&now, usable_at, unusable_at) {
                (Some(Child::Usable(node)), Ok(i), _) => current.nodes.get(i) == Some(&**node),
                (Some(Child::Unusable(bad)), Err(_), Ok(j)) => current.unusable.get(j) == Some(bad),
                (None, Err(_), Err(_)) => true,
                _ => false,
            };
            if unchanged {
                return false;
            }
            // The unusable list before, when this change touches it (for the report).
            let before = (unusable_at.is_ok() || matches!(now, Some(Child::Unusable(_))))
                .then(|| current.unusable.clone());
            let view = Arc::make_mut(current);
            view.generation += 1;
            match now {
                Some(Child::Usable(node)) => {
                    match usable_at {
                        Ok(i) => view.nodes[i] = *node,
                        Err(i) => {
                            view.nodes.insert(i, *node);
                            children.insert(i, child.into());
                        }
                    }
                    if let Ok(j) = unusable_at {
                        view.unusable.remove(j);
                    }
                }
                Some(Child::Unusable(bad)) => {
                    match unusable_at {
                        Ok(j) => view.unusable[j] = bad,
                        Err(j) => view.unusable.insert(j, bad),
                    }
                    if let Ok(i) = usable_at {
                        view.nodes.remove(i);
                        children.remove(i);
                    }
                }
                None => {
                    if let Ok(i) = usable_at {
                        view.nodes.remove(i);
                        children.remove(i);
                    }
                    if let Ok(j) = unusable_at {
                        view.unusable.remove(j);
                    }
                }
            }
            if let Some(before) = before {
                report(app, &before, &view.unusable);
            }
            true
        });
    }
}

/// The child names of the usable nodes, those nodes, and the children probe cannot use, each in
/// child order.
fn split(nodes: NodeMap) -> (Vec<Box<str>>, Vec<RegisteredNode>, Vec<UnusableNode>) {
    let mut children = Vec::with_capacity(nodes.len());
    let mut usable = Vec::with_capacity(nodes.len());
    let mut unusable = Vec::new();
    for (child, node) in nodes {
        match node {
            Child::Usable(node) => {
                children.push(child.into_boxed_str());
                usable.push(*node);
            }
            Child::Unusable(bad) => unusable.push(bad),
        }
    }
    (children, usable, unusable)
}

/// Logs each node that became unusable (or changed reason) and each that no longer is, once per
/// change, and records the current ones in the process's metrics.
fn report(app: &App, before: &[UnusableNode], after: &[UnusableNode]) {
    let newly: Vec<&UnusableNode> = after.iter().filter(|n| !before.contains(n)).collect();
    for node in &newly {
        tracing::warn!(
            path = %app.path,
            child = %node.child,
            reason = %node.problem,
            data = %node.data,
            "a ZooKeeper node probe cannot use: it gets no calls until its data is fixed"
        );
    }
    for node in before.iter().filter(|n| !after.iter().any(|a| a.child == n.child)) {
        tracing::info!(path = %app.path, child = %node.child, "a ZooKeeper node that was unusable is fixed or gone");
    }
    crate::metrics::global().set_unusable_nodes(app.env, &app.appkey, after, &newly);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::layout::{Env, NodeData, NodeKey, UnusableReason, Weight};

    fn node(port: u16) -> (String, Child) {
        let key = NodeKey::new(Env::Dev, "shop", "S", "1.2.3.4", port).expect("key");
        (
            key.zk_child(),
            Child::Usable(Box::new(RegisteredNode { key, data: NodeData::new("1.2.3.4", port) })),
        )
    }

    fn weighted(port: u16, weight: u32) -> Child {
        match node(port).1 {
            Child::Usable(mut n) => {
                n.data.weight = Weight::from(weight);
                Child::Usable(n)
            }
            bad => bad,
        }
    }

    fn bad(port: u16) -> UnusableNode {
        let problem = NodeData::from_json(b"[]").expect_err("not an object");
        UnusableNode::new(&format!("S_1.2.3.4_{port}"), None, UnusableReason::Data(problem), b"[]")
    }

    fn ports(seen: &AppNodes) -> Vec<u16> {
        seen.nodes.iter().map(|n| n.key.port()).collect()
    }

    /// Every published snapshot as a full read of the same children would publish it.
    fn matches_full_read(published: &Published, rx: &AppWatch) {
        let seen = rx.borrow().clone();
        let names: Vec<String> = seen.nodes.iter().map(|n| n.key.zk_child()).collect();
        let children: Vec<String> = published.children.iter().map(|c| c.to_string()).collect();
        assert_eq!(children, names, "child names follow the nodes");
        assert!(names.is_sorted() && seen.unusable.is_sorted_by_key(|n| n.child.clone()));
    }

    #[test]
    fn full_reads_publish_only_changes_and_count_generations() {
        let app = App::new(Env::Dev, "published_full");
        let (mut published, mut rx) = Published::new(app, NodeMap::new());
        rx.mark_unchanged();
        published.replace(NodeMap::new());
        assert!(!rx.has_changed().expect("open"), "nothing changed");

        published.replace(NodeMap::from([node(81), node(80)]));
        let seen = rx.borrow_and_update().clone();
        assert_eq!((seen.generation, ports(&seen)), (2, vec![80, 81]), "sorted by child name");
        matches_full_read(&published, &rx);

        published.replace(NodeMap::from([node(81), node(80)]));
        assert!(!rx.has_changed().expect("open"), "same nodes again");
    }

    #[test]
    fn one_child_changes_in_place() {
        let app = App::new(Env::Dev, "published_child");
        let (mut published, mut rx) = Published::new(app, NodeMap::from([node(80), node(82)]));
        let first = Arc::as_ptr(&rx.borrow_and_update());

        published.set(&node(80).0, Some(weighted(80, 0)));
        let seen = rx.borrow_and_update().clone();
        assert_eq!((seen.generation, seen.nodes[0].data.weight), (2, Weight::from(0)));
        assert_eq!(Arc::as_ptr(&seen), first, "nobody held the old snapshot: changed in place");
        drop(seen);

        published.set(&node(80).0, Some(weighted(80, 0)));
        assert!(!rx.has_changed().expect("open"), "the same data again");

        published.set(&node(81).0, Some(node(81).1));
        assert_eq!(ports(&rx.borrow_and_update()), [80, 81, 82], "a new child in its place");
        matches_full_read(&published, &rx);

        published.set(&node(80).0, None);
        published.set("S_1.2.3.4_99", None);
        let seen = rx.borrow_and_update().clone();
        assert_eq!((seen.generation, ports(&seen)), (4, vec![81, 82]), "a gone child, once");
        matches_full_read(&published, &rx);
    }

    #[test]
    fn a_receiver_keeps_the_snapshot_it_took() {
        let app = App::new(Env::Dev, "published_kept");
        let (mut published, mut rx) = Published::new(app, NodeMap::from([node(80)]));
        let kept = rx.borrow_and_update().clone();
        published.set(&node(80).0, Some(weighted(80, 30)));
        assert_eq!(kept.nodes[0].data.weight, NodeData::new("1.2.3.4", 80).weight, "unchanged");
        assert_eq!(rx.borrow_and_update().nodes[0].data.weight, Weight::from(30));
    }

    #[test]
    fn unusable_children_are_published_apart_and_counted() {
        let app = App::new(Env::Dev, "published_unusable");
        let (mut published, mut rx) = Published::new(app, NodeMap::from([node(80), node(81)]));
        published.set(&bad(81).child, Some(Child::Unusable(bad(81))));
        let seen = rx.borrow_and_update().clone();
        assert_eq!((ports(&seen), seen.unusable.as_slice()), (vec![80], std::slice::from_ref(&bad(81))));
        let recorded = crate::metrics::global().unusable_nodes(Env::Dev, "published_unusable");
        assert_eq!(recorded, [("S_1.2.3.4_81".to_owned(), "not_object")]);
        matches_full_read(&published, &rx);

        published.set(&bad(81).child, Some(Child::Unusable(bad(81))));
        assert!(!rx.has_changed().expect("open"), "the same problem again");

        published.set(&node(81).0, Some(node(81).1));
        let seen = rx.borrow_and_update().clone();
        assert_eq!((ports(&seen), seen.unusable.len()), (vec![80, 81], 0), "fixed: usable again");
        assert!(crate::metrics::global().unusable_nodes(Env::Dev, "published_unusable").is_empty());

        published.replace(NodeMap::from([node(80), (bad(82).child.clone(), Child::Unusable(bad(82)))]));
        let seen = rx.borrow_and_update().clone();
        assert_eq!((ports(&seen), seen.unusable.as_slice()), (vec![80], std::slice::from_ref(&bad(82))));
        published.set(&bad(82).child, None);
        assert!(rx.borrow_and_update().unusable.is_empty());
        assert!(crate::metrics::global().unusable_nodes(Env::Dev, "published_unusable").is_empty());
        matches_full_read(&published, &rx);
    }
}
