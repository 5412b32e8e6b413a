//! The errors of calls: what failed, and what a caller can do about it.

use std::fmt;

use crate::codec::{ApplicationException, ProtocolError};

/// Implements [`Debug`](std::fmt::Debug) for error types as their `Display` text.
///
/// `fn main() -> Result<(), Box<dyn Error>>`, `unwrap` and `expect` print an error with `{:?}`; a
/// derived `Debug` shows the variant and its fields, not the message that says what failed and
/// what to do. Every public error type of probe implements `Debug` with this macro instead:
///
/// ```
/// #[derive(thiserror::Error)]
/// #[error("no table serviceapp; run `probe db migrate`")]
/// pub struct NoTable;
/// probe_runtime::debug_as_display!(NoTable);
///
/// assert_eq!(format!("{NoTable:?}"), "no table serviceapp; run `probe db migrate`");
/// ```
///
/// It takes one or more non-generic types; write the impl by hand for a generic one.
#[macro_export]
macro_rules! debug_as_display {
    ($($ty:ty),+ $(,)?) => {$(
        impl ::std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Display::fmt(self, f)
            }
        }
    )+};
}

/// Why an RPC failed. Declared Thrift exceptions are not here: they come back as
/// [`CallError::Exception`].
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection failed or closed (connect refused, reset, closed mid-call).
    #[error("transport error talking to {peer}: {source}")]
    Transport {
        /// The peer's address, or a description of it.
        peer: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The bytes were not valid Thrift, or broke a limit.
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// The server answered with a `TApplicationException` (unknown method, internal error, ...).
    #[error("the server raised {0}")]
    Application(#[from] ApplicationException),
    /// The client's own request limit for the service refused the call; it was not sent.
    #[error(
        "`{service}` calls are over this client's limit of {qps} per second; the call was not sent \
         (raise `ClusterOptions::qps_limit` or slow the caller)"
    )]
    Limited {
        /// The service.
        service: String,
        /// The limit.
        qps: f64,
    },
    /// No reply within the call's timeout.
    #[error("call `{method}` timed out after {timeout_ms} ms")]
    Timeout {
        /// The method.
        method: String,
        /// The timeout that passed.
        timeout_ms: u64,
    },
    /// The connection could not be made (refused, unreachable, name not resolved): the request
    /// surely never reached a server.
    #[error("cannot connect to {peer}: {source}")]
    Connect {
        /// The peer's address, or a description of it.
        peer: String,
        /// The cause.
        source: std::io::Error,
    },
    /// No connection within the connect timeout.
    #[error("connecting to {peer} timed out after {timeout_ms} ms")]
    ConnectTimeout {
        /// The peer.
        peer: String,
        /// The timeout that passed.
        timeout_ms: u64,
    },
    /// Discovery knows no node of the service that may take calls now.
    #[error("no node of `{service}` is available (none registered, or all disabled or weight 0)")]
    NoNode {
        /// The service.
        service: String,
    },
    /// The reply named neither a result nor a declared exception.
    #[error("`{method}` replied without a result; the server may run an older IDL")]
    MissingResult {
        /// The method.
        method: String,
    },
    /// A reply did not match the call (other method name or sequence id).
    #[error("reply does not match the call: {0}")]
    BadReply(String),
    /// A handler failed without a declared exception; the caller receives it as
    /// `TApplicationException` of kind `InternalError`.
    #[error("handler error: {0}")]
    Handler(String),
}

impl Error {
    /// A handler failure with a message, reported to the caller as an internal error.
    pub fn handler(message: impl fmt::Display) -> Self {
        Error::Handler(message.to_string())
    }

    /// Whether the request surely never reached a server, so that any call may be retried.
    pub fn is_connect_failure(&self) -> bool {
        matches!(self, Error::Connect { .. } | Error::ConnectTimeout { .. } | Error::NoNode { .. })
    }
}

crate::debug_as_display!(Error);

/// The declared-exception type of methods that declare none: it has no values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoException {}

impl fmt::Display for NoException {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {}
    }
}

/// The error of one method: a declared exception `E` (a generated enum of the method's `throws`),
/// or an RPC failure. Handlers return it; clients receive it. Its `Debug` is its `Display` text.
#[derive(thiserror::Error)]
pub enum CallError<E = NoException> {
    /// One of the method's declared exceptions.
    #[error("declared exception: {0:?}")]
    Exception(E),
    /// The call failed in the framework, the transport or the handler.
    #[error(transparent)]
    Rpc(#[from] Error),
}

impl<E: fmt::Debug> fmt::Debug for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<E> CallError<E> {
    /// The declared exception, if that is what this is.
    pub fn exception(&self) -> Option<&E> {
        match self {
            CallError::Exception(e) => Some(e),
            CallError::Rpc(_) => None,
        }
    }
}
