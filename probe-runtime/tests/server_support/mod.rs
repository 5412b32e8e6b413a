//! A hand-written echo service, served by `Server`, and helpers to call it through `Channel` and
//! `TcpTransport` or raw sockets. Shared by the `server_*` and `client_*` tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use probe_runtime::Error;
use probe_runtime::client::{CallOptions, Channel, TcpTransport};
use probe_runtime::codec::{
    ApplicationException, Decode, Encode, Limits, MessageHeader, MessageType, ProtocolError, ProtocolReader,
    ProtocolWriter, TType,
};
use probe_runtime::server::{Server, ServerBuilder, ServerHandle};
use probe_runtime::service::{BoxFuture, Dispatch, MethodInfo, Protocol, Reply, Request};
use probe_runtime::transport::{Framing, MessageReader, WireFormat, encode_frame};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// `struct EchoArgs { 1: string msg, 2: optional i32 delay_ms }`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EchoArgs {
    pub msg: String,
    pub delay_ms: i32,
}

impl EchoArgs {
    pub fn new(msg: impl Into<String>) -> Self {
        EchoArgs { msg: msg.into(), delay_ms: 0 }
    }
}

impl Encode for EchoArgs {
    fn encode<W: ProtocolWriter>(&self, w: &mut W) -> Result<(), ProtocolError> {
        w.write_struct_begin("EchoArgs")?;
        w.write_field_begin(TType::String, 1)?;
        w.write_string(&self.msg)?;
        w.write_field_end()?;
        if self.delay_ms != 0 {
            w.write_field_begin(TType::I32, 2)?;
            w.write_i32(self.delay_ms)?;
            w.write_field_end()?;
        }
        w.write_field_stop()?;
        w.write_struct_end()
    }
}

impl Decode for EchoArgs {
    fn decode<R: ProtocolReader>(r: &mut R) -> Result<Self, ProtocolError> {
        let mut args = EchoArgs::default();
        let mut msg = None;
        r.read_struct_begin()?;
        loop {
            let f = r.read_field_begin()?;
            match (f.id, f.ttype) {
                (_, TType::Stop) => break,
                (1, TType::String) => msg = Some(r.read_string()?),
                (2, TType::I32) => args.delay_ms = r.read_i32()?,
                (_, t) => r.skip(t)?,
            }
            r.read_field_end()?;
        }
        r.read_struct_end()?;
        args.msg = msg.ok_or(ProtocolError::MissingRequiredField { strukt: "EchoArgs", field: "msg" })?;
        Ok(args)
    }
}

/// `struct EchoResult { 0: string success }`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EchoResult {
    pub success: Option<String>,
}

impl Encode for EchoResult {
    fn encode<W: ProtocolWriter>(&self, w: &mut W) -> Result<(), ProtocolError> {
        w.write_struct_begin("EchoResult")?;
        if let Some(s) = &self.success {
            w.write_field_begin(TType::String, 0)?;
            w.write_string(s)?;
            w.write_field_end()?;
        }
        w.write_field_stop()?;
        w.write_struct_end()
    }
}

impl Decode for EchoResult {
    fn decode<R: ProtocolReader>(r: &mut R) -> Result<Self, ProtocolError> {
        let mut result = EchoResult::default();
        r.read_struct_begin()?;
        loop {
            let f = r.read_field_begin()?;
            match (f.id, f.ttype) {
                (_, TType::Stop) => break,
                (0, TType::String) => result.success = Some(r.read_string()?),
                (_, t) => r.skip(t)?,
            }
            r.read_field_end()?;
        }
        r.read_struct_end()?;
        Ok(result)
    }
}

/// What the tests observe of a running echo service.
#[derive(Debug, Default)]
pub struct Probe {
    /// Messages received by the oneway `notify`.
    pub notified: Mutex<Vec<String>>,
    pub notify: Notify,
    /// Calls of `gate` waiting, and the signal that they all arrived.
    pub at_gate: AtomicUsize,
    pub gate_open: Notify,
    /// `slow` calls that started.
    pub slow_started: Notify,
    /// `slow` calls whose handler future was dropped before it finished.
    pub slow_dropped: AtomicUsize,
    /// The `probe-deadline-ms` header of the last `slow` call that had one.
    pub slow_deadline_ms: Mutex<Option<String>>,
}

/// Counts a `slow` handler dropped before it finished.
struct DroppedEarly<'a>(&'a AtomicUsize, bool);

impl Drop for DroppedEarly<'_> {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// An echo service named `name` whose replies start with `prefix`.
///
/// Methods: `echo`, `slow` (sleeps `delay_ms` first), `gate` (waits until `delay_ms` calls of
/// `gate` are in the server at once), `notify` (oneway), `boom` (panics).
pub struct Echo {
    pub name: &'static str,
    pub prefix: &'static str,
    pub probe: Arc<Probe>,
}

impl Echo {
    pub fn new(name: &'static str, prefix: &'static str) -> (Echo, Arc<Probe>) {
        let probe = Arc::new(Probe::default());
        (Echo { name, prefix, probe: probe.clone() }, probe)
    }
}

const METHODS: &[MethodInfo] = &[
    MethodInfo { name: "echo", oneway: false, idempotent: true },
    MethodInfo { name: "slow", oneway: false, idempotent: false },
    MethodInfo { name: "gate", oneway: false, idempotent: false },
    MethodInfo { name: "notify", oneway: true, idempotent: false },
    MethodInfo { name: "boom", oneway: false, idempotent: false },
];

impl Dispatch for Echo {
    fn service_name(&self) -> &'static str {
        self.name
    }

    fn methods(&self) -> &'static [MethodInfo] {
        METHODS
    }

    fn dispatch(&self, request: Request) -> BoxFuture<'_, Reply> {
        Box::pin(async move {
            let args = match request.decode_args::<EchoArgs>() {
                Ok(args) => args,
                Err(e) => return request.protocol_error(&e),
            };
            let probe = &self.probe;
            match request.method() {
                // A call in a header frame: its `x-` headers go back, with what the context read.
                "echo" => {
                    if let Some(cx) = probe_runtime::context::Context::current() {
                        for (k, v) in cx.headers().iter().filter(|(k, _)| k.starts_with(b"x-")) {
                            cx.set_reply_header(Bytes::copy_from_slice(k), Bytes::copy_from_slice(v));
                        }
                        let saw = format!(
                            "appkey={:?} service={:?} request_id={:?} priority={:?} deadline={} trace={:?}",
                            cx.caller_appkey(),
                            cx.caller_service(),
                            cx.request_id(),
                            cx.priority().map(|p| p.level()),
                            cx.deadline().is_some(),
                            cx.traceparent(),
                        );
                        cx.set_reply_header("saw", saw);
                    }
                }
                "slow" => {
                    if let Some(cx) = probe_runtime::context::Context::current() {
                        let ms = cx.get(probe_runtime::context::names::DEADLINE_MS).map(str::to_owned);
                        *probe.slow_deadline_ms.lock().unwrap() = ms;
                    }
                    let mut guard = DroppedEarly(&probe.slow_dropped, false);
                    probe.slow_started.notify_waiters();
                    tokio::time::sleep(Duration::from_millis(args.delay_ms as u64)).await;
                    guard.1 = true;
                }
                "gate" => {
                    let opened = probe.gate_open.notified();
                    if probe.at_gate.fetch_add(1, Ordering::SeqCst) + 1 >= args.delay_ms as usize {
                        probe.gate_open.notify_waiters();
                    } else {
                        opened.await;
                    }
                }
                "notify" => {
                    probe.notified.lock().unwrap().push(args.msg);
                    probe.notify.notify_waiters();
                    return Reply::None;
                }
                "boom" => panic!("boom, as asked"),
                _ => return request.unknown_method(),
            }
            request.reply(&EchoResult { success: Some(format!("{}{}", self.prefix, args.msg)) })
        })
    }
}

/// A server of one echo service on 127.0.0.1, port chosen by the system.
pub async fn start_echo() -> (ServerHandle, Arc<Probe>) {
    let (echo, probe) = Echo::new("Echo", "");
    (start(Server::builder().add_service(echo)).await, probe)
}

pub async fn start(builder: ServerBuilder) -> ServerHandle {
    builder.start("127.0.0.1:0").await.unwrap()
}

pub const WIRES: [WireFormat; 4] = [
    WireFormat::new(Protocol::Binary, Framing::Framed),
    WireFormat::new(Protocol::Binary, Framing::Unframed),
    WireFormat::new(Protocol::Compact, Framing::Framed),
    WireFormat::new(Protocol::Compact, Framing::Unframed),
];

/// A channel speaking `wire` to the server at `addr`.
pub fn channel(addr: std::net::SocketAddr, wire: WireFormat, multiplex: bool, prefix: bool) -> Channel {
    let transport = TcpTransport::builder(addr.to_string())
        .protocol(wire.protocol)
        .framed(wire.framing == Framing::Framed)
        .multiplex(multiplex)
        .service_prefix(prefix)
        .timeout(Duration::from_secs(10))
        .build();
    Channel::new(transport)
}

pub const CALL: CallOptions = CallOptions { oneway: false, idempotent: false, timeout: None };
pub const ONEWAY: CallOptions = CallOptions { oneway: true, idempotent: false, timeout: None };

/// Calls `method` of `service` with `args`; the echoed string.
pub async fn call(
    channel: &Channel,
    service: &'static str,
    method: &'static str,
    args: EchoArgs,
) -> Result<String, Error> {
    let result: Option<EchoResult> = channel.call(service, method, &args, CALL).await?;
    Ok(result.and_then(|r| r.success).unwrap_or_default())
}

/// `Echo.echo(msg)`.
pub async fn echo(channel: &Channel, msg: &str) -> Result<String, Error> {
    call(channel, "Echo", "echo", EchoArgs::new(msg)).await
}

/// Checks that the server at `addr` answers a normal call on a new connection.
pub async fn assert_serving(addr: std::net::SocketAddr) {
    let channel = channel(addr, WIRES[0], false, false);
    assert_eq!(echo(&channel, "still here").await.unwrap(), "still here");
}

/// An encoded call message of `name` with `args` (no framing).
pub fn message<A: Encode>(protocol: Protocol, name: &'static str, seqid: i32, args: &A) -> Bytes {
    let mut buf = BytesMut::new();
    protocol.encode_message(&MessageHeader::new(name, MessageType::Call, seqid), args, &mut buf).unwrap();
    buf.freeze()
}

/// `message` framed for `wire`.
pub fn on_wire(wire: WireFormat, message: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_frame(wire.framing, message, &mut out).unwrap();
    out.to_vec()
}

/// A raw connection that sent `bytes`.
pub async fn send_raw(addr: std::net::SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    stream
}

/// Everything the server sends on `stream` until it closes it, decoded as `wire` messages.
/// Fails if the server keeps the connection open for 10 s.
pub async fn replies_until_closed(stream: TcpStream, wire: WireFormat) -> Vec<(MessageHeader, Bytes)> {
    let mut reader = MessageReader::new(stream, wire, Limits::default());
    let mut out = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), reader.read_message()).await;
        match next.expect("the server should close the connection") {
            Ok(Some(m)) => out.push(wire.protocol.decode_header(m, Limits::default()).unwrap()),
            Ok(None) => return out,
            // A reset counts as closed.
            Err(probe_runtime::transport::WireError::Io(_)) => return out,
            Err(e) => panic!("unexpected bytes from the server: {e}"),
        }
    }
}

/// The `TApplicationException` in a reply body.
pub fn exception(protocol: Protocol, header: &MessageHeader, body: Bytes) -> ApplicationException {
    assert_eq!(header.kind, MessageType::Exception, "{header:?}");
    protocol.decode_body(body, Limits::default()).unwrap()
}
