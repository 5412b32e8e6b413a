//! Running one call: route it, run the handler (a panic becomes an `InternalError` reply), give
//! the reply the method name the caller sent, and tell how to count it, all inside the call's
//! span.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use tracing::{Instrument, error};

use super::connection::Shared;
use super::router::Route;
use crate::codec::{ApplicationException, ApplicationExceptionKind, Limits, MessageType};
use crate::error::Error;
use crate::metrics::{Outcome, SeriesId, spans};
use crate::service::{Reply, Request};
use crate::transport::rename_message;

/// How to count a finished call: its series in the server's metrics, and its outcome.
#[derive(Debug, Clone, Copy)]
pub(super) struct Counted {
    pub(super) series: SeriesId,
    pub(super) outcome: Outcome,
}

/// Handles one request: the reply to send ([`Reply::None`] for oneway calls) and, when metrics
/// are on and the call was routed, how to count it (the caller records it with the time).
pub(super) async fn handle(shared: &Shared, request: Request) -> (Reply, Option<Counted>) {
    let kind = request.header().kind;
    if !matches!(kind, MessageType::Call | MessageType::Oneway) {
        let message = format!("a request must be a call or oneway message, not {kind:?}");
        let e = ApplicationException::new(ApplicationExceptionKind::InvalidMessageType, message);
        return (request.exception(&e), None);
    }
    let Some(route) = shared.router.route(request.method()) else {
        return (request.unknown_method(), None);
    };
    let service = route.service.service_name();
    let method = request.method().get(route.method_at..).unwrap_or_default();
    let span = spans::server_call(service, method, &shared.node, request.header().seqid);
    let series = shared.metrics.as_deref().and_then(|m| m.find(route.service.as_ref(), method));
    let protocol = request.protocol();
    let reply = run(route, request, shared.config.limits).instrument(span).await;
    let counted = series.map(|series| {
        let outcome = match &reply {
            Reply::Message(message) => Outcome::of_reply(protocol, message),
            Reply::None => Outcome::Ok,
        };
        Counted { series, outcome }
    });
    (reply, counted)
}

/// Runs the handler of a routed call.
async fn run(route: Route<'_>, mut request: Request, limits: Limits) -> Reply {
    let sent = request.header().clone();
    if route.method_at > 0 {
        let method = sent.name.get(route.method_at..).unwrap_or_default().to_owned();
        request.set_method(method);
    }
    let protocol = request.protocol();
    let reply = match catch_unwind(AssertUnwindSafe(|| route.service.dispatch(request))) {
        Ok(future) => CatchUnwind(future).await,
        Err(panic) => Err(panic),
    };
    let failed =
        |error: Error| Request::new(protocol, sent.clone(), Bytes::new(), limits).internal_error(&error);
    match reply {
        Ok(Reply::Message(message)) if route.method_at > 0 => {
            match rename_message(protocol, message, &sent.name, limits) {
                Ok(message) => Reply::Message(message),
                Err(e) => {
                    error!(method = %sent.name, error = %e, "the handler's reply does not decode");
                    failed(Error::handler(format!("the reply could not be re-addressed: {e}")))
                }
            }
        }
        Ok(reply) => reply,
        Err(panic) => {
            let what = panic_message(panic.as_ref());
            error!(method = %sent.name, panic = %what, "handler panicked");
            failed(Error::handler(format!("the handler of `{}` panicked", sent.name)))
        }
    }
}

/// A panic's message, if it has one.
fn panic_message(panic: &(dyn Any + Send)) -> &str {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(s), _) => s,
        (_, Some(s)) => s,
        _ => "(no message)",
    }
}

/// Polls a future, turning a panic in it into an error.
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}
