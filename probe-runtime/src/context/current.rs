//! The context of the call a handler is handling.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::names;
use super::priority::Priority;
use crate::transport::header::Headers;

tokio::task_local! {
    static CURRENT: Context;
}

/// What the caller of the call being handled sent with it, and the headers its reply will carry.
///
/// Set (as a task-local, like `tracing`'s current span) only while a handler runs a call that
/// came in a header frame or on a TLS connection whose client certificate names an appkey
/// ([`Context::tls_peer_appkey`]); [`Context::current`] is `None` for any other call, and outside
/// handlers. It is the handler's task that sees it: a task the handler spawns does not, unless
/// it is handed a clone. Clones are cheap (one `Arc`).
///
/// The deadline and priority are read once, when the call arrives; enforcing them (and exporting
/// the trace context) is left to middleware built on these accessors.
#[derive(Debug, Clone)]
pub struct Context(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    headers: Headers,
    received: Instant,
    deadline: Option<Instant>,
    priority: Option<Priority>,
    reply: Mutex<Headers>,
    /// Whether a reply header was set: a reply without any (nearly all) takes no lock.
    replied: AtomicBool,
    /// The appkey the connection's verified TLS client certificate names.
    tls_peer_appkey: Option<Arc<str>>,
}

impl Context {
    /// The context of a call that arrived at `received` with `headers`.
    pub fn new(headers: Headers, received: Instant) -> Context {
        Context::with_tls_peer(headers, received, None)
    }

    /// [`Context::new`] for a call on a TLS connection whose client certificate names
    /// `tls_peer_appkey`.
    pub(crate) fn with_tls_peer(
        headers: Headers,
        received: Instant,
        tls_peer_appkey: Option<Arc<str>>,
    ) -> Context {
        let mut arrival = Arrival::default();
        for (key, value) in headers.iter() {
            arrival.see(key, value);
        }
        Context::arrived(headers, received, arrival, tls_peer_appkey)
    }

    /// [`Context::with_tls_peer`] for `headers` whose `arrival` was read as they were.
    pub(crate) fn arrived(
        headers: Headers,
        received: Instant,
        arrival: Arrival,
        tls_peer_appkey: Option<Arc<str>>,
    ) -> Context {
        let Arrival { deadline_ms, priority } = arrival;
        let deadline = deadline_ms.and_then(|ms| received.checked_add(Duration::from_millis(ms)));
        let (reply, replied) = (Mutex::default(), AtomicBool::new(false));
        Context(Arc::new(Inner { headers, received, deadline, priority, reply, replied, tls_peer_appkey }))
    }

    /// The context of the call this task is handling, if it came with headers.
    pub fn current() -> Option<Context> {
        CURRENT.try_with(Context::clone).ok()
    }

    /// Runs `f` with this context current (for a handler's synchronous part, or a test).
    pub fn sync_scope<R>(self, f: impl FnOnce() -> R) -> R {
        CURRENT.sync_scope(self, f)
    }

    /// `future` with this context current whenever it runs: hand a spawned task its caller's
    /// context with `tokio::spawn(cx.scope(work))`.
    pub fn scope<F: Future>(self, future: F) -> tokio::task::futures::TaskLocalFuture<Context, F> {
        CURRENT.scope(self, future)
    }

    /// Every header the caller sent, probe's and the user's, as received.
    pub fn headers(&self) -> &Headers {
        &self.0.headers
    }

    /// One header as text (`None` if absent or not UTF-8).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.headers.get(key)
    }

    /// The calling application ([`names::CALLER_APPKEY`]).
    pub fn caller_appkey(&self) -> Option<&str> {
        self.get(names::CALLER_APPKEY)
    }

    /// The appkey the caller's verified TLS client certificate names (a URI SAN
    /// `spiffe://<trust domain>/appkey/<appkey>`, else a subject CN matching `^\w+$`): an identity
    /// the TLS handshake proved, unlike [`Context::caller_appkey`], which the caller only says.
    /// `None` without TLS, without a client certificate, or when it names no appkey.
    pub fn tls_peer_appkey(&self) -> Option<&str> {
        self.0.tls_peer_appkey.as_deref()
    }

    /// The calling service ([`names::CALLER_SERVICE`]).
    pub fn caller_service(&self) -> Option<&str> {
        self.get(names::CALLER_SERVICE)
    }

    /// The request id the caller gave the call ([`names::REQUEST_ID`]); the server's `call`
    /// span shows it.
    pub fn request_id(&self) -> Option<&str> {
        self.get(names::REQUEST_ID)
    }

    /// When the call arrived.
    pub fn received(&self) -> Instant {
        self.0.received
    }

    /// When the caller stops waiting: arrival plus [`names::DEADLINE_MS`].
    pub fn deadline(&self) -> Option<Instant> {
        self.0.deadline
    }

    /// The time left before [`Context::deadline`] (zero once past it).
    pub fn remaining(&self) -> Option<Duration> {
        self.0.deadline.map(|deadline| deadline.saturating_duration_since(super::now()))
    }

    /// The call's priority ([`names::PRIORITY`]).
    pub fn priority(&self) -> Option<Priority> {
        self.0.priority
    }

    /// W3C `traceparent`.
    pub fn traceparent(&self) -> Option<&str> {
        self.get(names::TRACEPARENT)
    }

    /// W3C `tracestate`.
    pub fn tracestate(&self) -> Option<&str> {
        self.get(names::TRACESTATE)
    }

    /// Sets a header of the reply (replacing one set before).
    pub fn set_reply_header(&self, key: impl Into<Bytes>, value: impl Into<Bytes>) {
        self.0.reply.lock().unwrap_or_else(PoisonError::into_inner).insert(key, value);
        self.0.replied.store(true, Ordering::Release);
    }

    /// The reply's headers, taken (the server writes them once, after the handler ended); `None`
    /// if none was set.
    pub(crate) fn take_reply_headers(&self) -> Option<Headers> {
        self.0
            .replied
            .load(Ordering::Acquire)
            .then(|| std::mem::take(&mut *self.0.reply.lock().unwrap_or_else(PoisonError::into_inner)))
    }
}

/// What a context reads of its call's headers when the call arrives: the time left and the
/// priority (each key read once; a key sent twice counts with its last value, as the headers
/// keep it).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Arrival {
    deadline_ms: Option<u64>,
    priority: Option<Priority>,
}

impl Arrival {
    /// Reads the header `key: value` if it is one of them.
    pub(crate) fn see(&mut self, key: &[u8], value: &[u8]) {
        if key == names::DEADLINE_MS.as_bytes() {
            self.deadline_ms = parse_millis(value);
        } else if key == names::PRIORITY.as_bytes() {
            self.priority = std::str::from_utf8(value).ok().and_then(Priority::parse);
        }
    }
}

/// A whole number of milliseconds as a caller sends it (ASCII digits, blanks around allowed; what
/// `str::parse::<u64>` takes of the trimmed text), read from the bytes without checking them as
/// text first.
fn parse_millis(value: &[u8]) -> Option<u64> {
    let trimmed = value.trim_ascii();
    // A leading `+`, as `str::parse` takes.
    let digits = trimmed.strip_prefix(b"+").unwrap_or(trimmed);
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| match b {
        b'0'..=b'9' => n.checked_mul(10)?.checked_add(u64::from(b - b'0')),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn deadlines_read_as_str_parse_reads_them() {
        for text in [
            "250",
            " 250 ",
            "+250",
            "0",
            "",
            " ",
            "+",
            "abc",
            "-1",
            "2 5",
            "18446744073709551615",
            "18446744073709551616",
            "\t7\n",
        ] {
            let expected = text.trim().parse::<u64>().ok();
            assert_eq!(super::parse_millis(text.as_bytes()), expected, "{text:?}");
        }
        assert_eq!(super::parse_millis(&[b'1', 0xff]), None);
    }

    use super::*;

    #[test]
    fn what_a_frame_says_as_it_is_read_is_what_its_headers_say() {
        let now = Instant::now();
        let cases: [&[(&str, &str)]; 5] = [
            &[(names::DEADLINE_MS, "250"), (names::PRIORITY, "sheddable")],
            &[(names::REQUEST_ID, "r"), (names::PRIORITY, "5")],
            // A key twice: its last value counts, as the headers keep it.
            &[(names::DEADLINE_MS, "250"), (names::REQUEST_ID, "r"), (names::DEADLINE_MS, " 40 ")],
            &[(names::DEADLINE_MS, "250"), (names::DEADLINE_MS, "soon"), (names::PRIORITY, "nope")],
            &[],
        ];
        for pairs in cases {
            let mut arrival = Arrival::default();
            let frame = frame_with(pairs);
            let read =
                crate::transport::header::decode_seeing(frame, crate::codec::Limits::DEFAULT, |k, v| {
                    arrival.see(k, v);
                });
            let headers = read.unwrap().0.headers;
            let seen = Context::arrived(headers.clone(), now, arrival, None);
            let passed = Context::new(headers, now);
            assert_eq!(
                (seen.deadline(), seen.priority()),
                (passed.deadline(), passed.priority()),
                "{pairs:?}"
            );
        }
        let twice = [(names::DEADLINE_MS, "250"), (names::DEADLINE_MS, "40")];
        let mut arrival = Arrival::default();
        let frame = frame_with(&twice);
        crate::transport::header::decode_seeing(frame, crate::codec::Limits::DEFAULT, |k, v| {
            arrival.see(k, v)
        })
        .unwrap();
        let deadline = Context::arrived(Headers::new(), now, arrival, None).deadline();
        assert_eq!(deadline, Some(now + Duration::from_millis(40)));
    }

    /// A header frame (binary, seqid 1, payload `p`) whose one header group is `pairs`, each as
    /// given (a key twice is sent twice).
    fn frame_with(pairs: &[(&str, &str)]) -> Bytes {
        let mut info = vec![0u8, 0, 1, u8::try_from(pairs.len()).unwrap()];
        for (k, v) in pairs {
            for s in [k, v] {
                info.push(u8::try_from(s.len()).unwrap());
                info.extend_from_slice(s.as_bytes());
            }
        }
        info.resize(info.len().next_multiple_of(4), 0);
        let mut out = vec![0x0f, 0xff, 0, 0, 0, 0, 0, 1];
        out.extend_from_slice(&u16::try_from(info.len() / 4).unwrap().to_be_bytes());
        out.extend_from_slice(&info);
        out.push(b'p');
        out.into()
    }

    #[tokio::test]
    async fn current_only_inside_a_scope() {
        assert!(Context::current().is_none());
        let headers: Headers =
            [(names::DEADLINE_MS, "250"), (names::PRIORITY, "sheddable"), (names::CALLER_APPKEY, "a")]
                .into_iter()
                .collect();
        let now = Instant::now();
        let cx = Context::new(headers, now);
        let seen = cx
            .clone()
            .scope(async {
                let cx = Context::current().expect("set");
                cx.set_reply_header("k", "v");
                (cx.deadline(), cx.priority(), cx.caller_appkey().map(str::to_owned))
            })
            .await;
        assert_eq!(
            seen,
            (Some(now + Duration::from_millis(250)), Some(Priority::SHEDDABLE), Some("a".into()))
        );
        assert_eq!(cx.take_reply_headers().unwrap().get("k"), Some("v"));
        assert_eq!(Context::new(Headers::new(), now).take_reply_headers(), None);
        assert!(Context::current().is_none());
    }
}
