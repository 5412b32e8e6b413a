//! Service registry: the layout shared with the Python design, the backend traits, and their
//! ZooKeeper, Redis and MySQL implementations with embedded in-process twins.

pub mod backend;
pub mod backends;
pub mod embedded;
pub mod layout;
pub mod mysql;
mod node_data;
pub mod operator;
pub mod redis;
mod tls_problem;
pub mod zookeeper;

pub(crate) use backend::unix_ms;
pub use backend::{
    App, AppFields, AppNodes, AppStore, AppWatch, AuditEntry, AuditLog, BackendError, CLIENT_REPORT_EVERY,
    CLIENT_REPORT_TTL, ClientReport, METRICS_HISTORY_LEN, MethodMetrics, MetricsStore, NodeMetrics,
    RegisteredNode, Registry, RegistrySession, RuleWatch, SettingsStore, StoredRule,
};
pub use backends::{Backends, ConnectError};
pub use operator::{
    AclChange, AppChange, AuditError, IssuedCredential, NodeChange, NodeView, Operator, OperatorError,
    RuleChange, RuleRevision, SecureReport,
};
