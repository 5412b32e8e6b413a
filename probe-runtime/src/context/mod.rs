//! Per-call metadata: what a caller says about a call besides its arguments, carried in THeader
//! info headers ([`transport::header`](crate::transport::header)).
//!
//! A handler reads the call's [`Context`] with [`Context::current()`] (a task-local set only for
//! calls that came in a header frame, so it costs nothing otherwise); a client sets [`Metadata`]
//! per channel or per call with [`Channel::with_metadata`](crate::client::Channel::with_metadata).
//! Calls a handler makes inherit its request id, deadline, priority and trace context.
//!
//! The header names probe reads and writes are in [`names`]; any other key is a user header,
//! carried as it is. Keys and values are byte strings on the wire; probe's values are ASCII.
//!
//! ```
//! use std::time::Duration;
//! use probe_runtime::context::{Context, Metadata, Priority};
//!
//! // Client: caller identity for the channel, a deadline and a priority for one call.
//! let metadata = Metadata::new()
//!     .caller("order_app", "Order")
//!     .deadline(Duration::from_millis(250))
//!     .priority(Priority::CRITICAL)
//!     .header("tenant", "acme");
//! assert_eq!(metadata.headers().get("tenant"), Some("acme"));
//!
//! // Handler: the context of the call being handled, if it came with headers.
//! async fn handler() -> String {
//!     match Context::current() {
//!         Some(cx) => format!("from {:?}, {:?} left", cx.caller_appkey(), cx.remaining()),
//!         None => "no headers".to_owned(),
//!     }
//! }
//! ```

mod current;
mod metadata;
mod priority;

pub(crate) use current::Arrival;
pub use current::Context;

/// Now, on tokio's clock (which tests may pause and advance) as a `std` instant: every deadline
/// is taken and checked on this clock, so timers set for them agree with it.
pub(crate) fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// `time` in whole milliseconds, rounded up (the time left a call sends: a call with 0.4 ms left
/// still has some), without 128-bit arithmetic.
pub(crate) fn ceil_millis(time: std::time::Duration) -> u64 {
    let sub = u64::from(time.subsec_nanos().div_ceil(1_000_000));
    time.as_secs().saturating_mul(1000).saturating_add(sub)
}

pub use metadata::Metadata;
pub use priority::Priority;

/// The header names probe reads and writes: documented so other stacks can set them.
pub mod names {
    /// The calling application's appkey (as registered in `serviceapp`).
    pub const CALLER_APPKEY: &str = "probe-caller-appkey";
    /// The calling service's name.
    pub const CALLER_SERVICE: &str = "probe-caller-service";
    /// The caller's proof of its appkey: a signed token
    /// ([`security::token`](crate::security::token)), sent by clients holding an app credential.
    pub const CALLER_TOKEN: &str = "probe-caller-token";
    /// The call's request id: the one its `call` span shows on both sides (any text).
    pub const REQUEST_ID: &str = "probe-request-id";
    /// The time left for the call when it was sent, in whole milliseconds (decimal).
    pub const DEADLINE_MS: &str = "probe-deadline-ms";
    /// The call's priority: a small decimal integer, lower is more important; `0` critical, `1`
    /// normal, `2` sheddable (the names are accepted too).
    pub const PRIORITY: &str = "probe-priority";
    /// W3C Trace Context `traceparent`.
    pub const TRACEPARENT: &str = "traceparent";
    /// W3C Trace Context `tracestate`.
    pub const TRACESTATE: &str = "tracestate";
}
