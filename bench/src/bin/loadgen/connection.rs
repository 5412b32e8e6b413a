//! One connection's closed loop: keep `depth` calls in flight, send a new one for each reply.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, bail};
use bytes::{Buf, BytesMut};
use probe_bench::histogram::Histogram;
use probe_bench::wire::EchoCall;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const READ_CHUNK: usize = 64 * 1024;

/// What every connection does, and when.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) call: EchoCall,
    /// Calls in flight per connection.
    pub(crate) depth: usize,
    /// Replies are counted from here (the warm-up is over)...
    pub(crate) measure_from: Instant,
    /// ...until here, when the connections stop.
    pub(crate) end: Instant,
}

/// What one connection measured.
#[derive(Debug, Default)]
pub(crate) struct Measured {
    /// Latency of each reply in the measured window, in nanoseconds.
    pub(crate) latency: Histogram,
}

/// Runs the closed loop on `stream` until the plan's end.
///
/// A call's seqid tells its slot (`seqid % depth`), which holds when it was sent, so replies may
/// come in any order; each reply's slot gets the next call at once. All replies a read brings are
/// answered with one write. Nothing is allocated once the buffers are sized.
pub(crate) async fn drive(mut stream: TcpStream, plan: Arc<Plan>) -> Result<Measured> {
    let depth = plan.depth;
    let call = &plan.call;
    let mut in_flight: Vec<i32> = (0..depth).map(|slot| slot as i32).collect();
    let mut sent_at = vec![Instant::now(); depth];
    let mut out = Vec::with_capacity(depth * call.frame_len());
    let mut buf = BytesMut::with_capacity(READ_CHUNK.max(2 * depth * call.frame_len()));
    let mut measured = Measured::default();

    for &seqid in &in_flight {
        call.write(seqid, &mut out);
    }
    sent_at.fill(Instant::now());
    stream.write_all(&out).await?;
    out.clear();

    let deadline = tokio::time::sleep_until(plan.end.into());
    tokio::pin!(deadline);
    loop {
        buf.reserve(READ_CHUNK);
        let read = tokio::select! {
            biased;
            () = &mut deadline => break,
            read = stream.read_buf(&mut buf) => read?,
        };
        if read == 0 {
            bail!("the server closed the connection");
        }
        let now = Instant::now();
        if now >= plan.end {
            break;
        }
        let counted = now >= plan.measure_from;
        let mut whole = 0;
        while let Some(len) = EchoCall::complete_frame(&buf[whole..]) {
            let seqid = call.check_reply(&buf[whole..whole + len])?;
            whole += len;
            let slot = seqid as usize % depth;
            if in_flight.get(slot) != Some(&seqid) {
                bail!("a reply with seqid {seqid}, which is not in flight");
            }
            if counted {
                let nanos = now.duration_since(sent_at[slot]).as_nanos();
                measured.latency.record(u64::try_from(nanos).unwrap_or(u64::MAX));
            }
            // The next seqid of the slot; back to the slot's first before it would overflow.
            let next = if seqid > i32::MAX - depth as i32 { slot as i32 } else { seqid + depth as i32 };
            in_flight[slot] = next;
            sent_at[slot] = now;
            call.write(next, &mut out);
        }
        buf.advance(whole);
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
    }
    Ok(measured)
}
