//! The floor of a client with one task per caller, against which probe's client is measured: `-c`
//! caller tasks, each with one call in flight, over `--connections` multiplexed connections, with
//! nothing but what handing replies to waiting tasks needs. No generated code, codec, deadlines,
//! metrics, spans, retries or balancing: each call's bytes are copied from a template into the
//! connection's write buffer, a writer task per connection writes what is queued in one write,
//! and a reader task per connection checks every reply byte and hands it to the task whose seqid
//! it carries.
//!
//! The load generator keeps a connection's calls in one task, so it pays no task wake per call;
//! every client a user calls from many tasks does. The distance from this floor is the client's
//! own cost; the distance from the floor to the load generator is that of the pattern.
//!
//! ```text
//! bare-client --addr 127.0.0.1:PORT -c 100 --connections 4 --server-pid PID
//! ```
//!
//! Prints one `key=value` line (see `probe_bench::callers`).

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Poll, Waker};

use anyhow::{Context, Result, bail};
use bytes::{Bytes, BytesMut};
use clap::Parser;
use probe_bench::callers::run_callers;
use probe_bench::server_cli::{ClientRunArgs, runtime};
use probe_bench::wire::{EchoCall, Expect};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

const READ_CHUNK: usize = 64 * 1024;

/// Calls `Echo.echo` from one task per caller over a minimal multiplexed connection set.
#[derive(Debug, Parser)]
struct Cli {
    /// The server.
    #[arg(long)]
    addr: SocketAddr,
    /// Connections the callers are spread over (caller `i` on connection `i % connections`).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// What the server answers.
    #[arg(long, value_enum, default_value_t = Expect::Thrift)]
    expect: Expect,
    #[command(flatten)]
    run: ClientRunArgs,
}

/// What a connection's callers, writer and reader share, under one lock.
#[derive(Default)]
struct State {
    /// Calls queued for the writer, as they go on the wire.
    out: Vec<u8>,
    /// The writer's task, while it waits for calls.
    writer: Option<Waker>,
    /// Per caller on this connection (seqid / connections): its task while it waits, and its
    /// reply once the reader handed it over.
    waiting: Vec<Waiting>,
    /// Replies handed over whose callers have not queued their next call yet: the writer waits
    /// for them (as probe's does), so one read's callers go in one write.
    released: usize,
    /// Why the connection failed, once it has.
    failed: Option<String>,
}

#[derive(Default)]
struct Waiting {
    waker: Option<Waker>,
    reply: Option<Bytes>,
    /// The reply was counted in `released` and its caller has not queued a call since.
    released: bool,
}

struct Conn {
    state: Mutex<State>,
    /// Callers per connection are `seqid / connections`.
    connections: usize,
}

impl Conn {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Fails every waiting caller (and the writer) with `why`.
    fn fail(&self, why: String) {
        let wake: Vec<Waker> = {
            let mut state = self.lock();
            state.failed.get_or_insert(why);
            let writer = state.writer.take();
            state.waiting.iter_mut().filter_map(|w| w.waker.take()).chain(writer).collect()
        };
        wake.into_iter().for_each(Waker::wake);
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    runtime(cli.run.threads)?.block_on(run(cli))
}

async fn run(cli: Cli) -> Result<()> {
    if cli.connections == 0 || cli.run.callers == 0 {
        bail!("--callers and --connections must be at least 1");
    }
    let template = Arc::new(EchoCall::new(cli.run.payload, cli.expect)?);
    let per_connection = cli.run.callers.div_ceil(cli.connections);
    let mut conns = Vec::with_capacity(cli.connections);
    for _ in 0..cli.connections {
        let stream =
            TcpStream::connect(cli.addr).await.with_context(|| format!("cannot connect to {}", cli.addr))?;
        stream.set_nodelay(true)?;
        let (read_half, write_half) = stream.into_split();
        let conn = Arc::new(Conn {
            state: Mutex::new(State {
                waiting: (0..per_connection).map(|_| Waiting::default()).collect(),
                ..State::default()
            }),
            connections: cli.connections,
        });
        tokio::spawn(write_calls(write_half, Arc::clone(&conn)));
        tokio::spawn(read_replies(read_half, Arc::clone(&conn), Arc::clone(&template)));
        conns.push(conn);
    }
    let conns: Arc<[Arc<Conn>]> = conns.into();
    let plan = cli.run.plan();
    let next = std::sync::atomic::AtomicUsize::new(0);
    run_callers(plan, move |mut calls| {
        let caller = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let conn = Arc::clone(&conns[caller % conns.len()]);
        let template = Arc::clone(&template);
        async move {
            let seqid = i32::try_from(caller)?;
            let slot = caller / conn.connections;
            while calls.more() {
                let writer = {
                    let mut state = conn.lock();
                    if let Some(why) = &state.failed {
                        bail!("the connection failed: {why}");
                    }
                    template.write(seqid, &mut state.out);
                    if std::mem::take(&mut state.waiting[slot].released) {
                        state.released -= 1;
                    }
                    state.writer.take()
                };
                writer.into_iter().for_each(Waker::wake);
                let reply = poll_fn(|cx| {
                    let mut state = conn.lock();
                    if let Some(reply) = state.waiting[slot].reply.take() {
                        return Poll::Ready(Ok(reply));
                    }
                    if let Some(why) = &state.failed {
                        return Poll::Ready(Err(anyhow::anyhow!("the connection failed: {why}")));
                    }
                    match &mut state.waiting[slot].waker {
                        Some(waker) if waker.will_wake(cx.waker()) => {}
                        waker => *waker = Some(cx.waker().clone()),
                    }
                    Poll::Pending
                })
                .await?;
                // The reader checked every byte; the caller holds the reply as a user would.
                drop(reply);
            }
            Ok(calls)
        }
    })
    .await
}

/// Writes what the callers queued, one write per wake-up: woken by the first call queued, it
/// yields until the callers the last read woke have queued theirs (or a round of the scheduler
/// passes in which none did), so they go in the same write.
async fn write_calls(mut io: OwnedWriteHalf, conn: Arc<Conn>) {
    let mut batch = Vec::new();
    loop {
        let queued = poll_fn(|cx| {
            let mut state = conn.lock();
            if state.failed.is_some() {
                return Poll::Ready(false);
            }
            if !state.out.is_empty() {
                return Poll::Ready(true);
            }
            state.writer = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
        if !queued {
            return;
        }
        let mut left = usize::MAX;
        loop {
            tokio::task::yield_now().await;
            let now_left = conn.lock().released;
            if now_left == 0 || now_left >= left {
                break;
            }
            left = now_left;
        }
        std::mem::swap(&mut conn.lock().out, &mut batch);
        if let Err(e) = io.write_all(&batch).await {
            conn.fail(format!("write failed: {e}"));
            return;
        }
        batch.clear();
    }
}

/// Reads replies, checks every byte of each against the expected one, and hands each to the
/// caller its seqid names; the replies one read brought under one lock.
async fn read_replies(mut io: OwnedReadHalf, conn: Arc<Conn>, template: Arc<EchoCall>) {
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut replies: Vec<(usize, Bytes)> = Vec::new();
    let mut wake: Vec<Waker> = Vec::new();
    loop {
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        match io.read_buf(&mut buf).await {
            Ok(0) => return conn.fail("the server closed the connection".to_owned()),
            Ok(_) => {}
            Err(e) => return conn.fail(format!("read failed: {e}")),
        }
        while let Some(len) = EchoCall::complete_frame(&buf) {
            let frame = buf.split_to(len).freeze();
            match template.check_reply(&frame).map(usize::try_from) {
                Ok(Ok(seqid)) => replies.push((seqid / conn.connections, frame)),
                Ok(Err(e)) => return conn.fail(format!("a reply with seqid out of range: {e}")),
                Err(e) => return conn.fail(format!("{e:#}")),
            }
        }
        let mut stray = None;
        {
            let mut state = conn.lock();
            let mut released = 0;
            for (slot, reply) in replies.drain(..) {
                let Some(waiting) = state.waiting.get_mut(slot) else {
                    stray = Some(slot);
                    break;
                };
                waiting.reply = Some(reply);
                if !std::mem::replace(&mut waiting.released, true) {
                    released += 1;
                }
                wake.extend(waiting.waker.take());
            }
            state.released += released;
        }
        wake.drain(..).for_each(Waker::wake);
        if let Some(slot) = stray {
            return conn
                .fail(format!("a reply for caller {slot} of this connection, which has no such caller"));
        }
    }
}
