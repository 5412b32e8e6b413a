//! What the CLI and the console show about a node beyond its settings: the address clients dial,
//! and notes on node data an operator should look at.
//!
//! Clients dial the host and port of the node's JSON data (live, else stored), not the address in
//! its name, so that is the address shown. A node whose data names another address than its name
//! gets a note: whoever wrote it may be sending a service's calls elsewhere. A weight above
//! [`MAX_WEIGHT`], which the console would not set, gets a note too: one such node takes nearly all
//! calls.

use probe_runtime::registry::NodeView;
use probe_runtime::registry::layout::NodeData;

/// The highest weight the console and the CLI set.
pub const MAX_WEIGHT: u32 = 1_000_000;

/// The data that counts for a node: what the registry holds while it runs (what clients see),
/// else its stored settings.
pub fn effective(view: &NodeView) -> Option<&NodeData> {
    view.live.as_ref().or(view.settings.as_ref())
}

/// The host and port clients dial: the node data's, or its name's when it has no data.
pub fn dialed(view: &NodeView) -> (&str, u16) {
    match effective(view) {
        Some(data) => (data.host.as_str(), data.port),
        None => (view.key.ip(), view.key.port()),
    }
}

/// What is odd about the node's data, each a sentence for people.
pub fn notes(view: &NodeView) -> Vec<String> {
    let mut notes = Vec::new();
    let (host, port) = dialed(view);
    let (ip, name_port) = (view.key.ip(), view.key.port());
    if host != ip || port != name_port {
        notes.push(format!(
            "its data says {} while its name says {}: clients dial the data's address; check who \
             registered it",
            addr(host, port),
            addr(ip, name_port)
        ));
    }
    if let Some(data) = effective(view) {
        if data.weight.value() > f64::from(MAX_WEIGHT) {
            notes.push(format!(
                "weight {} is above {MAX_WEIGHT}, the most the console sets: this node takes nearly \
                 all calls",
                data.weight
            ));
        }
    }
    notes
}

/// `host:port`, or `[v6]:port`.
fn addr(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

#[cfg(test)]
mod tests {
    use probe_runtime::registry::layout::{Env, NodeKey};

    use super::*;

    fn view(live: NodeData) -> NodeView {
        let key = NodeKey::new(Env::Dev, "shop", "Order", "10.0.0.1", 9001).unwrap();
        NodeView { key, settings: None, live: Some(live) }
    }

    #[test]
    fn the_dialed_address_is_the_datas_and_disagreement_is_noted() {
        let honest = view(NodeData::new("10.0.0.1", 9001));
        assert_eq!(dialed(&honest), ("10.0.0.1", 9001));
        assert!(notes(&honest).is_empty());
        let elsewhere = view(NodeData::new("203.0.113.5", 22));
        assert_eq!(dialed(&elsewhere), ("203.0.113.5", 22));
        assert_eq!(
            notes(&elsewhere),
            ["its data says 203.0.113.5:22 while its name says 10.0.0.1:9001: clients dial the data's \
              address; check who registered it"]
        );
        let v6 = view(NodeData::new("::1", 9001));
        assert!(notes(&v6)[0].starts_with("its data says [::1]:9001"), "{:?}", notes(&v6));
    }

    #[test]
    fn weights_above_the_console_maximum_are_noted() {
        let mut heavy = NodeData::new("10.0.0.1", 9001);
        heavy.weight = 5_000_000.into();
        assert_eq!(
            notes(&view(heavy)),
            ["weight 5000000 is above 1000000, the most the console sets: this node takes nearly all calls"]
        );
        let mut max = NodeData::new("10.0.0.1", 9001);
        max.weight = MAX_WEIGHT.into();
        assert!(notes(&view(max)).is_empty());
    }
}
