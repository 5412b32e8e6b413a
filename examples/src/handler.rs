//! The demo service's handler: it greets, and says which node it runs on.

use std::sync::atomic::{AtomicI64, Ordering};

use probe::CallError;

use crate::idl::demo::{Demo, Greeting};

/// One provider's handler; `node` names it in every answer.
#[derive(Debug)]
pub struct DemoHandler {
    node: String,
    served: AtomicI64,
}

impl DemoHandler {
    /// A handler that answers as `node`.
    pub fn new(node: impl Into<String>) -> Self {
        DemoHandler { node: node.into(), served: AtomicI64::new(0) }
    }
}

#[probe::service(appkey = "demo_app")]
impl Demo for DemoHandler {
    async fn say(&self, name: String) -> Result<Greeting, CallError> {
        let served = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        Ok(Greeting { message: format!("hello, {name}"), node: self.node.clone(), served })
    }
}
