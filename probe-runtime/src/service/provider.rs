//! A handler bound to its appkey: what a server serves and (with the registry) registers.

use std::sync::Arc;

use super::Dispatch;

/// Implemented by `#[probe::service(appkey = "...")]` on `impl GeneratedTrait for Handler`.
pub trait Provider: Sized + Send + Sync + 'static {
    /// The app the handler belongs to (`^\w+$`, checked at compile time).
    const APPKEY: &'static str;
    /// The IDL service name.
    const SERVICE: &'static str;
    /// Wraps the handler in its generated server (`FooServer<Self>`).
    fn into_service(self) -> Arc<dyn Dispatch>;
}
