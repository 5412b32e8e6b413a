//! A stand-in [`Dispatch`] for unit tests that need a service but never call it.

use super::{BoxFuture, Dispatch, MethodInfo, Reply, Request};

/// A service with a given name and methods that answers every call with nothing.
pub(crate) struct FakeService {
    name: &'static str,
    methods: &'static [MethodInfo],
}

impl FakeService {
    /// A service `name` with `methods`.
    pub(crate) const fn new(name: &'static str, methods: &'static [MethodInfo]) -> Self {
        FakeService { name, methods }
    }
}

impl Dispatch for FakeService {
    fn service_name(&self) -> &'static str {
        self.name
    }
    fn methods(&self) -> &'static [MethodInfo] {
        self.methods
    }
    fn dispatch(&self, _: Request) -> BoxFuture<'_, Reply> {
        Box::pin(async { Reply::None })
    }
}
