//! The governance scenarios on the embedded in-process backends: the same code the demo runs,
//! with the same watch and session semantics as ZooKeeper, Redis and MySQL.

use probe_runtime::registry::Backends;
use probe_runtime::registry::embedded::Embedded;
use probe_runtime::registry::layout::Env;
use probe_tests::scenarios;

fn backends() -> Backends {
    Backends::embedded(Env::Dev, &Embedded::new())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_are_honoured() {
    scenarios::weights_are_honoured(&backends(), "emb_weights").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_node_gets_no_calls() {
    scenarios::disabled_node_gets_no_calls(&backends(), "emb_disable").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_session_reregisters() {
    scenarios::expired_session_reregisters(&backends(), "emb_expire").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregistered_app_is_refused() {
    scenarios::unregistered_app_is_refused(&backends(), "emb_stray").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_loses_nothing() {
    scenarios::rolling_restart_loses_nothing(&backends(), "emb_rolling").await.unwrap();
}
