//! Tests of the connection loop: pipelining, limits, timers, slow peers.
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;

use super::*;
use crate::codec::{ApplicationException, Limits, MessageHeader, MessageType};
use crate::server::Server;
use crate::service::{BoxFuture, Dispatch, MethodInfo};
use crate::transport::{Framing, WireFormat, encode_frame};

const WIRE: WireFormat = WireFormat::new(Protocol::Binary, Framing::Framed);
const METHODS: &[MethodInfo] = &[
    MethodInfo { name: "fast", oneway: false, idempotent: false },
    MethodInfo { name: "slow", oneway: false, idempotent: false },
    MethodInfo { name: "boom", oneway: false, idempotent: false },
    MethodInfo { name: "late_boom", oneway: false, idempotent: false },
    MethodInfo { name: "big", oneway: false, idempotent: false },
];

/// Answers `fast` at once and `slow` after 50 ms, counting how many `slow` calls overlap;
/// `boom` panics at once, `late_boom` after waiting; `big` answers with 4 KiB.
#[derive(Default)]
struct Calls {
    running: AtomicUsize,
    most: AtomicUsize,
}

impl Dispatch for Arc<Calls> {
    fn service_name(&self) -> &'static str {
        "T"
    }
    fn methods(&self) -> &'static [MethodInfo] {
        METHODS
    }
    fn dispatch(&self, request: Request) -> BoxFuture<'_, Reply> {
        Box::pin(async move {
            let done = match request.method() {
                "big" => ApplicationException::unknown_method(&"b".repeat(4096)),
                _ => ApplicationException::unknown_method("done"),
            };
            match request.method() {
                "slow" => {
                    let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
                    self.most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    self.running.fetch_sub(1, Ordering::SeqCst);
                }
                "boom" => panic!("boom"),
                "late_boom" => {
                    tokio::task::yield_now().await;
                    panic!("late boom");
                }
                _ => {}
            }
            request.reply(&done)
        })
    }
}

/// Sends the calls `names` (seqid = index) in one write and reads one reply each.
async fn exchange(addr: SocketAddr, names: &[&'static str]) -> Vec<MessageHeader> {
    exchange_reading_after(addr, names, Duration::ZERO).await
}

/// [`exchange`], but starts reading replies only `wait` after sending.
async fn exchange_reading_after(
    addr: SocketAddr,
    names: &[&'static str],
    wait: Duration,
) -> Vec<MessageHeader> {
    let mut out = BytesMut::new();
    for (seqid, name) in names.iter().enumerate() {
        let mut message = BytesMut::new();
        let header = MessageHeader::new(*name, MessageType::Call, seqid as i32);
        WIRE.protocol
            .encode_message(&header, &ApplicationException::unknown_method(""), &mut message)
            .unwrap();
        encode_frame(WIRE.framing, &message, &mut out).unwrap();
    }
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(&out).await.unwrap();
    tokio::time::sleep(wait).await;
    let mut reader = MessageReader::new(stream, WIRE, Limits::default());
    let mut replies = Vec::new();
    for _ in names {
        let reply = reader.read_message().await.unwrap().unwrap();
        replies.push(WIRE.protocol.decode_header(reply, Limits::default()).unwrap().0);
    }
    replies
}

#[tokio::test]
async fn calls_that_wait_do_not_hold_up_the_others_nor_run_past_max_in_flight() {
    let calls = Arc::new(Calls::default());
    let server =
        Server::builder().add_service(calls.clone()).max_in_flight(2).start("127.0.0.1:0").await.unwrap();
    let names = ["slow", "fast", "slow", "slow", "slow", "fast"];
    let replies = exchange(server.local_addr(), &names).await;
    // The first `fast` is answered before the `slow` sent ahead of it.
    assert_eq!((&*replies[0].name, replies[0].seqid), ("fast", 1));
    let mut seqids: Vec<_> = replies.iter().map(|h| h.seqid).collect();
    seqids.sort_unstable();
    assert_eq!(seqids, [0, 1, 2, 3, 4, 5]);
    assert!(replies.iter().all(|h| h.kind == MessageType::Reply && &*h.name == names[h.seqid as usize]));
    assert_eq!(calls.most.load(Ordering::SeqCst), 2, "at most max_in_flight calls run at once");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn panics_at_once_or_after_waiting_are_internal_errors_and_multiplexed_names_come_back() {
    let server =
        Server::builder().add_service(Arc::new(Calls::default())).start("127.0.0.1:0").await.unwrap();
    let replies = exchange(server.local_addr(), &["boom", "T:late_boom", "T:fast"]).await;
    let mut got: Vec<_> = replies.iter().map(|h| (h.seqid, &*h.name, h.kind)).collect();
    got.sort_unstable_by_key(|(seqid, ..)| *seqid);
    assert_eq!(
        got,
        [
            (0, "boom", MessageType::Exception),
            (1, "T:late_boom", MessageType::Exception),
            (2, "T:fast", MessageType::Reply)
        ]
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_peer_that_reads_late_gets_every_reply() {
    let server =
        Server::builder().add_service(Arc::new(Calls::default())).start("127.0.0.1:0").await.unwrap();
    // 12 MiB of replies: far more than the socket and the connection buffer while unread.
    let names = vec!["big"; 3000];
    let replies = exchange_reading_after(server.local_addr(), &names, Duration::from_millis(300)).await;
    let mut seqids: Vec<_> = replies.iter().map(|h| h.seqid).collect();
    seqids.sort_unstable();
    assert!(seqids.iter().copied().eq(0..3000));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn names_remembered_by_the_connection_route_as_the_router_does() {
    let server =
        Server::builder().add_service(Arc::new(Calls::default())).start("127.0.0.1:0").await.unwrap();
    let names =
        ["fast", "T:fast", "fast", "nope", "T:nope", "X:fast", "T:fast", "slow", "big", "boom", "fast"];
    let replies = exchange(server.local_addr(), &names).await;
    let mut got: Vec<_> = replies.iter().map(|h| (h.seqid, &*h.name, h.kind)).collect();
    got.sort_unstable_by_key(|(seqid, ..)| *seqid);
    let answered = |name| {
        if ["nope", "T:nope", "X:fast", "boom"].contains(&name) {
            MessageType::Exception
        } else {
            MessageType::Reply
        }
    };
    let want: Vec<_> = names.iter().enumerate().map(|(i, name)| (i as i32, *name, answered(*name))).collect();
    assert_eq!(got, want);
    server.shutdown().await.unwrap();
}

/// What header calls' handlers saw of their context: the request id, as each call started,
/// after it waited, and as a call's future was dropped at its deadline.
#[derive(Default)]
struct Contexts {
    seen: std::sync::Mutex<Vec<(&'static str, Option<String>)>>,
}

const CONTEXT_METHODS: &[MethodInfo] = &[
    MethodInfo { name: "wait", oneway: false, idempotent: false },
    MethodInfo { name: "hang", oneway: false, idempotent: false },
];

/// Records the request id current when dropped.
struct DropSees(Arc<Contexts>);

impl Drop for DropSees {
    fn drop(&mut self) {
        self.0.record("dropped");
    }
}

impl Contexts {
    fn record(&self, when: &'static str) {
        let id = crate::context::Context::current().and_then(|cx| cx.request_id().map(str::to_owned));
        self.seen.lock().unwrap().push((when, id));
    }
}

impl Dispatch for Arc<Contexts> {
    fn service_name(&self) -> &'static str {
        "C"
    }
    fn methods(&self) -> &'static [MethodInfo] {
        CONTEXT_METHODS
    }
    fn dispatch(&self, request: Request) -> BoxFuture<'_, Reply> {
        self.record("made");
        Box::pin(async move {
            self.record("started");
            if request.method() == "hang" {
                let _sees = DropSees(Arc::clone(self));
                std::future::pending::<()>().await;
            }
            tokio::task::yield_now().await;
            self.record("resumed");
            request.reply(&ApplicationException::unknown_method("done"))
        })
    }
}

#[tokio::test]
async fn a_header_calls_context_is_current_while_its_handler_is_made_runs_and_is_dropped() {
    use crate::transport::header::{HeaderFrame, decode, encode};
    let contexts = Arc::new(Contexts::default());
    let server = Server::builder().add_service(contexts.clone()).start("127.0.0.1:0").await.unwrap();
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    let wire = WireFormat::new(Protocol::Binary, Framing::Header);
    let mut out = BytesMut::new();
    for (seqid, name, id) in [(1, "wait", "id-wait"), (2, "hang", "id-hang")] {
        let mut message = BytesMut::new();
        let header = MessageHeader::new(name, MessageType::Call, seqid);
        wire.protocol
            .encode_message(&header, &ApplicationException::unknown_method(""), &mut message)
            .unwrap();
        let mut frame = HeaderFrame::new(wire.protocol, seqid);
        frame.headers.insert(crate::context::names::REQUEST_ID, id);
        frame.headers.insert(crate::context::names::DEADLINE_MS, "100");
        let mut body = BytesMut::new();
        encode(&frame, &message, &mut body).unwrap();
        encode_frame(wire.framing, &body, &mut out).unwrap();
    }
    stream.write_all(&out).await.unwrap();
    let mut reader = MessageReader::new(stream, wire, Limits::default());
    let mut kinds = Vec::new();
    for _ in 0..2 {
        let (frame, payload) =
            decode(reader.read_message().await.unwrap().unwrap(), Limits::default()).unwrap();
        kinds.push((frame.seqid, wire.protocol.decode_header(payload, Limits::default()).unwrap().0.kind));
    }
    kinds.sort_unstable_by_key(|(seqid, _)| *seqid);
    // `wait` answered; `hang` timed out at its deadline.
    assert_eq!(kinds, [(1, MessageType::Reply), (2, MessageType::Exception)]);
    let seen = contexts.seen.lock().unwrap().clone();
    let of =
        |id: &str| seen.iter().filter(|(_, i)| i.as_deref() == Some(id)).map(|(w, _)| *w).collect::<Vec<_>>();
    assert_eq!(of("id-wait"), ["made", "started", "resumed"], "{seen:?}");
    assert_eq!(of("id-hang"), ["made", "started", "dropped"], "{seen:?}");
    assert!(seen.iter().all(|(_, id)| id.is_some()), "no step ran without its context: {seen:?}");
    server.shutdown().await.unwrap();
}
