//! The client side of generated code: a [`Channel`] carries encoded calls to some [`Transport`].

mod channel;

pub use channel::{Call, CallOptions, Channel, Transport};
