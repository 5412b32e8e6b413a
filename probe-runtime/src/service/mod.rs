//! The server side of generated code: a [`Dispatch`] per service decodes a [`Request`], runs the
//! handler and encodes the [`Reply`].

mod dispatch;
mod outcome;
mod provider;
mod request;
#[cfg(test)]
pub(crate) mod test_support;

pub use dispatch::{BoxFuture, Dispatch, MethodInfo};
pub use outcome::{Exceptions, MethodResult, Outcome, VoidOutcome, serve};
pub use provider::Provider;
pub use request::{Protocol, Reply, Request};
