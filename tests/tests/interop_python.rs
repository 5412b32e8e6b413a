//! probe against real Python Thrift peers from PyPI, both ways: thriftpy2 and Apache Thrift clients
//! call a probe server, and a probe client calls thriftpy2 and Apache Thrift servers, over every
//! protocol and framing Apache offers and thriftpy2's default (binary, buffered), and Apache's
//! header transport (THeader) with binary and compact inside, its headers round-tripped; then
//! TLS both ways with client certificates (Apache's `TSSLSocket` client against a TLS-only probe
//! server, which reads the client certificate's appkey; a probe TLS client presenting one against
//! Apache's `TSSLServerSocket`), and an Apache plaintext client refused by a TLS-only probe port.
//!
//! The peers are `tests/python/*.py`; `scripts/test.sh` makes their venv and Apache's generated
//! code, and without those this test fails (it never skips). Each combination gets a fresh server,
//! so counts start at zero.

#[path = "interop_python/directory.rs"]
mod directory;
#[path = "interop_python/tls.rs"]
mod tls;

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use directory::{Handler, blank_user, named, put_user, sample_user, user_json};
use probe::{CallError, Channel, Metadata, Priority, Protocol};
use probe_runtime::client::TcpTransport;
use probe_runtime::codec::ApplicationExceptionKind;
use probe_runtime::server::Server;
use probe_runtime::tls::{ClientAuth, ClientTls, ServerTls};
use probe_runtime::transport::{Framing, WireFormat};
use probe_tests::idl::interop::*;
use probe_tests::python::{Library, PythonPeers};
use serde_json::{Value, json};

/// Thriftpy2's default wire (the one the Python design used), then all four Apache offers, then
/// Apache's THeader with either protocol inside.
const COMBINATIONS: [(Library, WireFormat); 7] = [
    (Library::Thriftpy2, WireFormat::new(Protocol::Binary, Framing::Unframed)),
    (Library::Apache, WireFormat::new(Protocol::Binary, Framing::Framed)),
    (Library::Apache, WireFormat::new(Protocol::Binary, Framing::Unframed)),
    (Library::Apache, WireFormat::new(Protocol::Compact, Framing::Framed)),
    (Library::Apache, WireFormat::new(Protocol::Compact, Framing::Unframed)),
    (Library::Apache, WireFormat::new(Protocol::Binary, Framing::Header)),
    (Library::Apache, WireFormat::new(Protocol::Compact, Framing::Header)),
];

/// The wires TLS runs on, both ways, with client certificates: Apache's Python library over
/// `TSSLSocket` / `TSSLServerSocket`.
const TLS_COMBINATIONS: [(Library, WireFormat); 2] = [
    (Library::Apache, WireFormat::new(Protocol::Binary, Framing::Unframed)),
    (Library::Apache, WireFormat::new(Protocol::Compact, Framing::Framed)),
];

/// The W3C trace context both sides send.
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// How long probe's side of one combination may take.
const EXERCISE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    ProbeServer,
    ProbeClient,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::ProbeServer => "probe server",
            Side::ProbeClient => "probe client",
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn python_thrift_peers_interoperate_with_probe_both_ways() {
    let peers = PythonPeers::from_env().unwrap_or_else(|e| panic!("interop with Python peers: {e:#}"));
    let pki = Arc::new(tls::Pki::new());
    let mut runs = Vec::new();
    let plain = COMBINATIONS.into_iter().map(|(library, wire)| (library, wire, None));
    let secure = TLS_COMBINATIONS.into_iter().map(|(library, wire)| (library, wire, Some(pki.clone())));
    for (library, wire, tls) in plain.chain(secure) {
        let on_tls = tls.is_some();
        let task = tokio::spawn(python_client_calls_probe_server(peers.clone(), library, wire, tls.clone()));
        runs.push((Side::ProbeServer, library, wire, on_tls, task));
        let task = tokio::spawn(probe_client_calls_python_server(peers.clone(), library, wire, tls));
        runs.push((Side::ProbeClient, library, wire, on_tls, task));
    }
    let refused = tokio::spawn(plaintext_client_is_refused_by_a_tls_port(peers.clone(), pki.clone()));
    let (mut passed, mut failed, mut headers, mut secured) = (Vec::new(), Vec::new(), 0, 0);
    for (side, library, wire, on_tls, task) in runs {
        let (client, server) = match on_tls {
            false => ("client", "server"),
            true => ("TSSLSocket client", "TSSLServerSocket server"),
        };
        let peer =
            format!("{} {}", library.as_str(), if side == Side::ProbeServer { client } else { server });
        let over = if on_tls { " over TLS" } else { "" };
        match task.await {
            Ok(()) => {
                let round_trip = if wire.framing == Framing::Header { ", headers round-tripped" } else { "" };
                let certificates = match (on_tls, side) {
                    (false, _) => "",
                    (true, Side::ProbeServer) => ", client certificate's appkey read",
                    (true, Side::ProbeClient) => ", client certificate presented",
                };
                println!("interop: {side}{over} with {peer}, {wire}: ok{round_trip}{certificates}");
                headers += usize::from(wire.framing == Framing::Header);
                secured += usize::from(on_tls);
                passed.push(side);
            }
            Err(e) => {
                failed.push(format!("{side}{over} with {peer}, {wire}: {}", panic_message(e.into_panic())))
            }
        }
    }
    match refused.await {
        Ok(message) => {
            println!("interop: Apache plaintext client against a TLS-only probe port: refused: {message}")
        }
        Err(e) => failed
            .push(format!("plaintext client against a TLS-only port: {}", panic_message(e.into_panic()))),
    }
    let count = |side| passed.iter().filter(|s| **s == side).count();
    println!(
        "interop: {} passed (probe server: {}, probe client: {}; THeader with headers round-tripped: {}; \
         TLS: {})",
        passed.len(),
        count(Side::ProbeServer),
        count(Side::ProbeClient),
        headers,
        secured,
    );
    assert!(failed.is_empty(), "interop: {} failed:\n{}", failed.len(), failed.join("\n\n"));
}

fn panic_message(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload.downcast_ref::<&str>().map_or("(no message)".to_owned(), |s| (*s).to_owned()),
    }
}

// --- Python clients, probe server ----------------------------------------------------------------------

async fn python_client_calls_probe_server(
    peers: PythonPeers,
    library: Library,
    wire: WireFormat,
    tls: Option<Arc<tls::Pki>>,
) {
    let handler = Arc::new(Handler::default());
    let mut builder = Server::builder()
        .add_service(DirectoryServer::from_arc(handler.clone()))
        .drain_timeout(Duration::from_secs(2));
    let mut options = Vec::new();
    if let Some(pki) = &tls {
        // TLS only, and every client presents a certificate from the test CA.
        builder = builder.tls(
            ServerTls::new(&pki.server_cert, &pki.server_key).client_auth(ClientAuth::Required, &pki.ca),
        );
        options = vec!["--tls-ca", &pki.ca, "--tls-cert", &pki.py_cert, "--tls-key", &pki.py_key];
    }
    let server = builder.start("127.0.0.1:0").await.unwrap();
    let results = peers.run_client_with(library, server.local_addr(), wire, &options).await;
    server.shutdown().await.unwrap();
    let out = results.unwrap_or_else(|e| panic!("{e:#}"));
    let with_points = library == Library::Thriftpy2;

    // What the client got, as it reported it (it also checked each answer itself).
    assert_eq!(out["ok"], true, "{out}");
    assert_eq!(out["ping"], "pong: hi");
    assert_eq!(out["get7"], user_json(&sample_user(7)));
    assert_eq!(out["not_found"], json!({"message": "no such user", "id": 404}));
    assert_eq!(out["invalid"], json!({"reason": "id 0"}));
    assert_application_error(&out["internal"], "database down");
    assert_eq!(out["put"], Value::Null);
    assert_eq!(out["count_after_put"], 1);
    assert_eq!(out["put_get"], user_json(&put_user(with_points)));
    assert_application_error(&out["put_empty"], "empty name");
    let finds = json!({"phone": ["x0", "x1", "x2"], "email": ["y0", "y1"], "where": ["z0"], "limit": ["w0"]});
    assert_eq!(out["find"], finds);
    assert_eq!(out["touch"], Value::Null);
    assert_eq!(out["count_after_touch"], 2);
    assert_eq!(out["ping_after"], "pong: bye");
    if wire.framing == Framing::Header {
        assert_header_round_trip(&out);
    }

    // What the server got: the user exactly as Python built it, and the oneway touch.
    let seen = handler.seen();
    assert_eq!(seen.users.get(&3), Some(&put_user(with_points)));
    assert_eq!(seen.users.len(), 1, "only the user with a name was stored");
    assert_eq!(seen.touched, [99].into_iter().collect());
    if tls.is_some() {
        let appkeys: Vec<&str> = seen.tls_appkeys.iter().map(String::as_str).collect();
        assert_eq!(appkeys, ["py_app"], "the appkey of the Python client's certificate");
    }
}

/// Apache's plaintext client calls a TLS-only probe port: its first call gets a
/// `TApplicationException` saying TLS is required, at once. Returns that message.
async fn plaintext_client_is_refused_by_a_tls_port(peers: PythonPeers, pki: Arc<tls::Pki>) -> String {
    let server = Server::builder()
        .add_service(DirectoryServer::from_arc(Arc::new(Handler::default())))
        .tls(ServerTls::new(&pki.server_cert, &pki.server_key))
        .start("127.0.0.1:0")
        .await
        .unwrap();
    let script = format!(
        r#"
import sys, time
sys.path.insert(0, {gen:?})
from interop import Directory
from thrift.Thrift import TApplicationException
from thrift.protocol import TBinaryProtocol
from thrift.transport import TSocket, TTransport
sock = TSocket.TSocket("127.0.0.1", {port})
sock.setTimeout(5000)
transport = TTransport.TFramedTransport(sock)
transport.open()
started = time.monotonic()
try:
    Directory.Client(TBinaryProtocol.TBinaryProtocol(transport)).ping("in the clear")
    print("answered")
except TApplicationException as e:
    print("%d %.3f %s" % (e.type, time.monotonic() - started, e.message))
"#,
        gen = std::env::var("PROBE_TEST_APACHE_PY").unwrap_or_default(),
        port = server.local_addr().port(),
    );
    let python = peers.python().to_owned();
    let run = move || std::process::Command::new(python).args(["-c", &script]).output();
    let out = tokio::task::spawn_blocking(run).await.unwrap().unwrap();
    server.shutdown().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut parts = stdout.splitn(3, ' ');
    let (kind, took, message) = (parts.next(), parts.next(), parts.next().unwrap_or_default());
    assert_eq!(kind, Some("10"), "UNSUPPORTED_CLIENT_TYPE expected; stdout {stdout:?}, stderr:\n{stderr}");
    let took: f64 = took.and_then(|t| t.parse().ok()).expect("the call's time");
    assert!(took < 2.0, "the refusal took {took} s");
    assert!(message.contains("this port requires TLS"), "{message}");
    message.to_owned()
}

/// The Apache header client's last ping: the headers it sent (apache_client.py SENT_HEADERS) came
/// back in the reply, and the handler's context read probe's own.
fn assert_header_round_trip(out: &Value) {
    assert_eq!(out["header_ping"], "pong: headers");
    let reply = &out["reply_headers"];
    let sent = json!({
        "probe-caller-appkey": "py_app",
        "probe-caller-service": "PyCaller",
        "probe-request-id": "py-req-1",
        "probe-deadline-ms": "5000",
        "probe-priority": "critical",
        "traceparent": TRACEPARENT,
        "tracestate": "vendor=1",
        "x-user": "\u{fc} v",
    });
    for (key, value) in sent.as_object().into_iter().flatten() {
        assert_eq!(&reply[key], value, "reply header {key}: {reply}");
    }
    let saw = format!(
        "appkey=py_app service=PyCaller request_id=py-req-1 priority=critical deadline=true \
         traceparent={TRACEPARENT} tracestate=vendor=1"
    );
    assert_eq!(reply["x-probe-saw"], saw.as_str(), "{reply}");
}

/// A `TApplicationException` as a Python client reports it: INTERNAL_ERROR (6) with the
/// handler's message.
fn assert_application_error(got: &Value, message: &str) {
    assert_eq!(got["type"], 6, "{got}");
    let text = got["message"].as_str().unwrap_or_default();
    assert!(text.contains(message), "{got} lacks {message:?}");
}

// --- probe client, Python servers ----------------------------------------------------------------------

async fn probe_client_calls_python_server(
    peers: PythonPeers,
    library: Library,
    wire: WireFormat,
    tls: Option<Arc<tls::Pki>>,
) {
    let options: Vec<&str> = match &tls {
        None => Vec::new(),
        Some(pki) => vec!["--tls-cert", &pki.server_cert, "--tls-key", &pki.server_key, "--tls-ca", &pki.ca],
    };
    let server = peers.start_server_with(library, wire, &options).await.unwrap_or_else(|e| panic!("{e:#}"));
    let header = wire.framing == Framing::Header;
    let mut transport = TcpTransport::builder(server.addr());
    if let Some(pki) = &tls {
        let client = ClientTls::new(&pki.ca).identity(&pki.probe_cert, &pki.probe_key).load().unwrap();
        transport = transport.tls(client);
    }
    let transport = transport
        .protocol(wire.protocol)
        .framed(wire.framing == Framing::Framed)
        .header(header)
        // Compact calls go compressed; Apache's server answers them plain.
        .header_zlib(header && wire.protocol == Protocol::Compact)
        .multiplex(false)
        .timeout(Duration::from_secs(10))
        .build();
    // Every call carries the channel's metadata (ignored by peers without THeader).
    let channel = Channel::new(transport).with_metadata(
        Metadata::new().caller("interop_app", "Interop").priority(Priority::NORMAL).traceparent(TRACEPARENT),
    );
    let client = DirectoryClient::new(channel.clone());
    let with_points = library == Library::Thriftpy2;
    let calls = tokio::spawn(tokio::time::timeout(EXERCISE_TIMEOUT, async move {
        exercise(client, with_points).await;
        if header {
            header_round_trip(&channel).await;
        }
    }));
    let failure = match calls.await {
        Ok(Ok(())) => return,
        Ok(Err(_)) => format!("calls took more than {EXERCISE_TIMEOUT:?}"),
        Err(e) => panic_message(e.into_panic()),
    };
    panic!("{failure}\n{} server stderr:\n{}", library.as_str(), server.stderr());
}

/// Every Directory method and outcome against a fresh Python server.
async fn exercise(client: DirectoryClient, with_points: bool) {
    assert_eq!(client.ping("hi".into()).await.unwrap(), "pong: hi");
    assert_eq!(client.get(7).await.unwrap(), sample_user(7));
    match client.get(404).await {
        Err(CallError::Exception(DirectoryGetException::NotFound(e))) => {
            assert_eq!(e, NotFound { message: "no such user".into(), id: 404 })
        }
        other => panic!("get(404): expected NotFound, got {other:?}"),
    }
    match client.get(0).await {
        Err(CallError::Exception(DirectoryGetException::Invalid(e))) => assert_eq!(e.reason, "id 0"),
        other => panic!("get(0): expected Invalid, got {other:?}"),
    }
    assert_internal_error("get(500)", client.get(500).await, "database down");

    let user = put_user(with_points);
    client.put(user.clone()).await.unwrap();
    assert_eq!(client.count().await.unwrap(), 1);
    assert_eq!(client.get(3).await.unwrap(), user, "the user put comes back as it went");
    assert_internal_error("put(no name)", client.put(blank_user(5)).await, "empty name");

    let finds = [
        ("x", 10, Contact::Phone(3), 3),
        ("y", 10, Contact::Email("ab".into()), 2),
        ("z", 10, Contact::Where(Point { x: 1.5, y: -2.0 }), 1),
        ("w", 1, Contact::Phone(5), 1),
    ];
    for (prefix, limit, contact, n) in finds {
        let want: Vec<_> = (0..n).map(|i| named(sample_user(i), format!("{prefix}{i}"))).collect();
        let got = client.find(prefix.into(), limit, contact.clone()).await.unwrap();
        assert_eq!(got, want, "find({prefix:?}, {limit}, {contact:?})");
    }

    client.touch(99).await.unwrap();
    // Oneway: no reply to wait for, so its effect may land a moment after the next call.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut count = client.count().await.unwrap();
    while count != 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        count = client.count().await.unwrap();
    }
    assert_eq!(count, 2, "count after touch(99): the oneway call must reach the server");
    assert_eq!(client.ping("bye".into()).await.unwrap(), "pong: bye");
}

/// One ping with per-call metadata to Apache's header server, which echoes the call's headers and
/// adds `x-python-saw`.
async fn header_round_trip(channel: &Channel) {
    let metadata = Metadata::new()
        .caller("interop_app", "Interop")
        .request_id("rs-req-1")
        .deadline(Duration::from_secs(5))
        .priority(Priority::CRITICAL)
        .traceparent(TRACEPARENT)
        .tracestate("vendor=2")
        .header("x-user", "\u{fc} v");
    let client = DirectoryClient::new(channel.with_metadata(metadata.clone()));
    assert_eq!(client.ping("headers".into()).await.unwrap(), "pong: headers");
    let reply = metadata.reply_headers().expect("the reply came in a header frame");
    for (key, value) in [
        ("probe-caller-appkey", "interop_app"),
        ("probe-caller-service", "Interop"),
        ("probe-request-id", "rs-req-1"),
        ("probe-priority", "0"),
        ("traceparent", TRACEPARENT),
        ("tracestate", "vendor=2"),
        ("x-user", "\u{fc} v"),
        ("x-python-saw", "appkey=interop_app priority=0 request_id=rs-req-1"),
    ] {
        assert_eq!(reply.get(key), Some(value), "reply header {key}: {reply:?}");
    }
    let left: u64 = reply.get("probe-deadline-ms").and_then(|ms| ms.parse().ok()).expect("a deadline");
    assert!(left <= 5000, "{left}");
}

fn assert_internal_error<T: fmt::Debug, E: fmt::Debug>(
    call: &str,
    got: Result<T, CallError<E>>,
    message: &str,
) {
    match got {
        Err(CallError::Rpc(probe::Error::Application(e))) => {
            assert_eq!(e.kind, ApplicationExceptionKind::InternalError, "{call}: {e}");
            assert!(e.message.contains(message), "{call}: {e} lacks {message:?}");
        }
        other => panic!("{call}: expected a TApplicationException, got {other:?}"),
    }
}
