//! One connection: detect what the peer speaks, read requests, run them concurrently, write
//! replies as they complete.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until, timeout};
use tracing::{debug, warn};

use super::ServerConfig;
use super::call::{Counted, handle};
use super::router::Router;
use crate::metrics::ServerStats;
use crate::service::{Reply, Request};
use crate::transport::{MessageReader, WireError, write_loop};

/// How long, and how many bytes, to drain from a peer that broke the protocol before closing.
const LINGER_TIME: Duration = Duration::from_millis(500);
const LINGER_BYTES: usize = 1024 * 1024;

/// What every connection of a server shares.
pub(super) struct Shared {
    pub(super) router: Router,
    pub(super) config: ServerConfig,
    /// The call statistics, unless metrics are off.
    pub(super) metrics: Option<Arc<ServerStats>>,
    /// The address served, as call spans show it.
    pub(super) node: String,
}

/// Serves one accepted connection until the peer closes it, it breaks the protocol, it idles past
/// the read timeout, or `stop` turns true; calls already running finish first.
pub(super) async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    if let Err(e) = stream.set_nodelay(true) {
        debug!(%peer, error = %e, "cannot set TCP_NODELAY");
    }
    let config = &shared.config;
    let (read_half, write_half) = stream.into_split();
    let detected = tokio::select! {
        detected = timeout(config.read_timeout, MessageReader::detect(read_half, config.limits)) => detected,
        () = stopped(&mut stop) => return,
    };
    let reader = match detected {
        Ok(Ok(Some(reader))) => reader,
        Ok(Ok(None)) => return debug!("closed before sending anything"),
        Ok(Err(e)) => return warn!(error = %e, "closing: not a Thrift peer"),
        Err(_) => return debug!("closing: nothing received within the read timeout"),
    };
    let wire = reader.wire();
    debug!(%wire, "peer detected");
    let (tx, rx) = mpsc::channel(config.max_in_flight);
    let writer = write_loop(write_half, rx, wire.framing);
    tokio::pin!(writer);
    tokio::select! {
        broken = read_requests(reader, tx, &shared, stop) => {
            if let Err(e) = writer.await {
                debug!(error = %e, "writing the last replies failed");
            }
            if let Some(reader) = broken {
                linger(reader).await;
            }
        }
        written = &mut writer => {
            // The writer only ends first on a write error: the peer is gone; drop its calls.
            if let Err(e) = written {
                debug!(error = %e, "closing: write failed");
            }
        }
    }
    debug!("connection closed");
}

/// Reads requests and runs their calls concurrently on this connection's task (no task spawn per
/// call: a call that finishes at once costs no wake-up of another thread), until the connection
/// should close; then waits for the calls still running. Connections run in parallel; a handler
/// that computes for long should move that work to `spawn_blocking`. Replies go to `tx`, drained by the connection's writer. Returns the
/// reader if the peer broke the protocol (it may still be sending).
async fn read_requests(
    mut reader: MessageReader<OwnedReadHalf>,
    tx: mpsc::Sender<Bytes>,
    shared: &Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> Option<MessageReader<OwnedReadHalf>> {
    let config = &shared.config;
    let protocol = reader.wire().protocol;
    let mut calls = FuturesUnordered::new();
    // Built once: activity only moves `deadline`; the timer is re-armed when it fires early, so the
    // hot path touches neither the timer wheel nor the watch channel.
    let mut deadline = Instant::now() + config.read_timeout;
    let idle = sleep_until(deadline);
    tokio::pin!(idle);
    let shutdown = stopped(&mut stop);
    tokio::pin!(shutdown);
    let broken = loop {
        tokio::select! {
            biased;
            () = &mut shutdown => {
                debug!("closing: the server is shutting down");
                break false;
            }
            Some(done) = calls.next(), if !calls.is_empty() => {
                let now = Instant::now();
                deadline = now + config.read_timeout;
                count(shared, done, now.into_std());
            }
            () = &mut idle => {
                let now = Instant::now();
                if now < deadline {
                    idle.as_mut().reset(deadline);
                    continue;
                }
                if calls.is_empty() {
                    debug!("closing: idle past the read timeout");
                    break false;
                }
                deadline = now + config.read_timeout;
                idle.as_mut().reset(deadline);
            }
            read = reader.read_message(), if calls.len() < config.max_in_flight => match read {
                Ok(Some(message)) => {
                    let received = Instant::now();
                    deadline = received + config.read_timeout;
                    match Request::parse(protocol, message, config.limits) {
                        // Each call runs in its own span, made once it is routed.
                        Ok(request) => calls.push(run_call(shared.clone(), request, tx.clone(), received.into_std())),
                        Err(e) => {
                            warn!(error = %e, "closing: a request header does not decode");
                            break true;
                        }
                    }
                }
                Ok(None) => {
                    debug!("the peer closed its side");
                    break false;
                }
                Err(WireError::Malformed { header: Some(header), source }) => {
                    warn!(method = %header.name, seqid = header.seqid, error = %source, "closing: malformed request");
                    let request = Request::new(protocol, header, Bytes::new(), config.limits);
                    if let Reply::Message(reply) = request.protocol_error(&source) {
                        let _ = tx.send(reply).await;
                    }
                    break true;
                }
                Err(e) => {
                    warn!(error = %e, "closing: unreadable request");
                    break true;
                }
            }
        }
    };
    while let Some(done) = calls.next().await {
        count(shared, done, std::time::Instant::now());
    }
    broken.then_some(reader)
}

/// Reads and drops what a peer that broke the protocol still sends, for a moment, before the
/// connection closes: closing with unread input resets the connection, which can destroy the
/// error reply before the peer reads it.
async fn linger(mut reader: MessageReader<OwnedReadHalf>) {
    let mut sink = [0u8; 4096];
    let mut left = LINGER_BYTES;
    let drain = async {
        while left > 0 {
            match reader.get_mut().read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = timeout(LINGER_TIME, drain).await;
}

/// A finished call to count, and when its request was read.
type Done = Option<(Counted, std::time::Instant)>;

/// Runs one call read at `received` and queues its reply, if any; returns how to count it.
async fn run_call(
    shared: Arc<Shared>,
    request: Request,
    tx: mpsc::Sender<Bytes>,
    received: std::time::Instant,
) -> Done {
    let (reply, counted) = handle(&shared, request).await;
    if let Reply::Message(reply) = reply {
        // The writer is gone only if the connection broke: nobody is left to tell.
        let _ = tx.send(reply).await;
    }
    counted.map(|counted| (counted, received))
}

/// Counts a call that finished (its reply queued) at `now`, from its request read: the clock
/// read the loop makes anyway after each call, so counting costs none of its own.
fn count(shared: &Shared, done: Done, now: std::time::Instant) {
    if let (Some((counted, received)), Some(metrics)) = (done, &shared.metrics) {
        metrics.record_at(counted.series, counted.outcome, now.saturating_duration_since(received));
    }
}

/// Completes once the server shuts down (or is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}
