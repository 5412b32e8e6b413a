//! `GET /api/health`: whether the console's ZooKeeper, Redis and MySQL answer, each probed now
//! with one cheap read under a short timeout ([`backend_health`]); the page shows a banner while
//! any is down.
//!
//! ```json
//! {"ok": false, "env": "dev", "down": ["mysql"], "backends": [
//!   {"backend": "zookeeper", "name": "ZooKeeper", "ok": true, "error": null, "setting": "PROBE_ZOOKEEPER", ...},
//!   {"backend": "redis", "name": "Redis", "ok": true, "error": null, "setting": "PROBE_REDIS", ...},
//!   {"backend": "mysql", "name": "MySQL", "ok": false, "setting": "PROBE_MYSQL", "file_key": "mysql",
//!    "error": "MySQL at mysql://127.0.0.1:3306 is unreachable; check that it runs and that PROBE_MYSQL ...",
//!    "address": "mysql://127.0.0.1:3306", "latency_ms": 0.4}]}
//! ```
//!
//! The answer is 200 whether or not a backend is down (the probe itself worked). Admins read each
//! failure in the backend's own words (passwords masked); viewers read its public form (which
//! backend, its address without user, password or database, and its setting).

use axum::Json;
use axum::extract::State;
use serde_json::Value;

use crate::backend_health::{self, Detail};
use crate::console::auth::Caller;
use crate::console::session::Role;
use crate::console::state::ConsoleState;

/// `GET /api/health`: one row per backend.
pub async fn show(State(state): State<ConsoleState>, caller: Caller) -> Json<Value> {
    let probes = backend_health::check(state.backends()).await;
    for probe in probes.iter().filter(|p| !p.ok()) {
        let error = probe.error_text(Detail::Full).unwrap_or_default();
        tracing::warn!(backend = probe.backend.name(), %error, "console: backend down");
    }
    let detail = match caller.role {
        Role::Admin => Detail::Full,
        Role::Viewer => Detail::Public,
    };
    let mut body = backend_health::report_json(&probes, detail);
    body["env"] = Value::from(state.backends().env.to_string());
    Json(body)
}
