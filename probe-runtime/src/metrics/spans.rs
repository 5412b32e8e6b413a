//! The `tracing` spans of calls, at debug level: `call` (one per call, on either side, with its
//! service, method, node and request id) and `attempt` (one per node a client tries, with the
//! call's request id). A request id is only made when the span is enabled, so disabled spans
//! cost a level check.

use tracing::{Span, debug_span, field};

use super::RequestId;

/// The span of a call a server handles, on `node` (the address it serves), with the request id
/// its caller sent (in a header frame; looked up only for an enabled span) or a new one.
pub(crate) fn server_call<'a>(
    service: &str,
    method: &str,
    node: &str,
    seqid: i32,
    sent_id: impl FnOnce() -> Option<&'a str>,
) -> Span {
    let span = debug_span!("call", service, method, node, seqid, request_id = field::Empty);
    match (!span.is_disabled()).then(sent_id).flatten() {
        Some(id) => {
            span.record("request_id", id);
        }
        _ => {
            with_request_id(&span, None);
        }
    }
    span
}

/// The span of a call a client makes, to `node` when one is known yet, and its request id when
/// the span is enabled (for the attempts' spans).
pub(crate) fn client_call(service: &str, method: &str, node: Option<&str>) -> (Span, Option<RequestId>) {
    let span = debug_span!("call", service, method, node = field::Empty, request_id = field::Empty);
    // (A disabled span still looks its field up by name to record it.)
    if let Some(node) = node.filter(|_| !span.is_disabled()) {
        span.record("node", node);
    }
    let id = with_request_id(&span, None);
    (span, id)
}

/// The span of one attempt of a call on `node`, carrying the call's request id.
pub(crate) fn attempt(node: &str, request_id: Option<RequestId>) -> Span {
    let span = debug_span!("attempt", node, request_id = field::Empty);
    with_request_id(&span, request_id);
    span
}

/// Records `id` (or a new one) as the span's request id, if the span is enabled.
fn with_request_id(span: &Span, id: Option<RequestId>) -> Option<RequestId> {
    if span.is_disabled() {
        return None;
    }
    let id = id.unwrap_or_else(RequestId::next);
    span.record("request_id", field::display(id));
    Some(id)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Log lines written by a subscriber, for the test to read.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn enabled_spans_carry_a_request_id_to_their_attempts() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let id = tracing::subscriber::with_default(subscriber, || {
            let (call, id) = client_call("Demo", "get", None);
            let _call = call.enter();
            let _attempt = attempt("Demo_10.0.0.1_9090", id).entered();
            tracing::debug!("sent");
            let _server = server_call("Demo", "get", "10.0.0.1:9090", 7, || None).entered();
            tracing::debug!("served");
            id
        });
        let id = id.expect("an enabled span has a request id").to_string();
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let sent = text.lines().find(|l| l.ends_with("sent")).unwrap();
        assert!(sent.contains(&format!("call{{service=\"Demo\" method=\"get\" request_id={id}}}")), "{text}");
        assert!(sent.contains(&format!("attempt{{node=\"Demo_10.0.0.1_9090\" request_id={id}}}")), "{text}");
        let served = text.lines().find(|l| l.ends_with("served")).unwrap();
        assert!(served.contains("node=\"10.0.0.1:9090\" seqid=7 request_id="), "{text}");
        assert!(!served.ends_with(&format!("request_id={id}}}: served")), "a server call has its own id");
    }

    #[test]
    fn disabled_spans_make_no_request_id() {
        // No subscriber is installed in unit tests: every span is disabled.
        let (span, id) = client_call("S", "m", Some("n"));
        assert!(span.is_disabled() && id.is_none());
        assert!(server_call("S", "m", "127.0.0.1:1", 1, || None).is_disabled());
        assert!(attempt("n", None).is_disabled());
    }
}
