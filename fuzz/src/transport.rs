//! Reading messages off a connection: detecting the wire a peer speaks, then cutting frames or
//! unframed messages out of the byte stream, in whatever pieces the bytes arrive.
//!
//! Unframed messages are found by a resumable scan: the reader must cut the messages a parse from
//! the start of the remaining input cuts, whatever the pieces, and examine each byte about once
//! (at most a 16-byte token again per read).

use std::io;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};

use bytes::Bytes;
use probe_runtime::codec::{BinaryReader, CompactReader, Limits};
use probe_runtime::service::Protocol;
use probe_runtime::transport::{Framing, MessageReader, WireFormat, header};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::runtime::Runtime;

use crate::message::scan;

/// One current-thread runtime for every input.
static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread().build().expect("a current-thread runtime builds")
});

/// The default limits but a 1 MiB frame limit: the reader reserves the buffer space a frame's
/// length prefix announces, and allocating up to 16 MiB for many inputs costs a fifth of the
/// executions under AddressSanitizer.
const DEFAULT: Limits = Limits { max_frame: 1024 * 1024, ..Limits::DEFAULT };

/// Small limits, so inputs reach the frame, depth and length limits.
const SMALL: Limits =
    Limits { max_frame: 256, max_depth: 8, max_container_len: 64, max_string_len: 64, max_method_name: 16 };

/// What a reader made of a stream: the wire it detected, the messages it returned, and whether it
/// stopped on an error (rather than at the end of the stream between messages).
#[derive(Debug, PartialEq, Eq)]
struct Transcript {
    wire: Option<WireFormat>,
    messages: Vec<Bytes>,
    failed: bool,
}

/// Reads `data` as one connection, all at once and in small pieces: both must never panic or
/// hang, must return only whole messages within the frame limit, and must agree. Then reads it
/// again under [`SMALL`] limits.
pub fn check(data: &[u8]) {
    let whole = read(data, &[data.len().max(1)], DEFAULT);
    if let Some(wire) = whole.wire {
        check_reference(data, wire, &whole, DEFAULT);
    }
    let piece = 1 + usize::from(data.first().copied().unwrap_or(0) % 16);
    let pieces = read(data, &[piece], DEFAULT);
    assert_eq!(whole, pieces, "reading in pieces of {piece} bytes differs from reading at once");
    // Pieces of varying sizes, from the input's second to ninth bytes: splits land everywhere.
    let sizes: Vec<usize> = data.iter().skip(1).take(8).map(|b| 1 + usize::from(b % 23)).collect();
    let varied = read(data, if sizes.is_empty() { &[1] } else { &sizes }, DEFAULT);
    assert_eq!(whole, varied, "reading in pieces of {sizes:?} bytes differs from reading at once");
    read(data, &[piece], SMALL);
}

/// The unframed messages of `data` cut by parsing from the start of what remains, each time:
/// what the reader cuts by its resumable scan.
fn check_reference(data: &[u8], wire: WireFormat, transcript: &Transcript, limits: Limits) {
    if wire.framing != Framing::Unframed {
        return;
    }
    let mut rest = Bytes::copy_from_slice(data);
    let mut messages = Vec::new();
    loop {
        let scanned = match wire.protocol {
            Protocol::Binary => scan::<BinaryReader>(rest.clone()),
            Protocol::Compact => scan::<CompactReader>(rest.clone()),
        };
        match scanned {
            Ok(len) if len <= limits.max_frame => messages.push(rest.split_to(len)),
            _ => break,
        }
    }
    assert_eq!(
        transcript.messages, messages,
        "the resumable scan cuts other messages than a parse from the start"
    );
}

/// Reads every message from `data` delivered in pieces of the sizes in `pieces` (cycled).
fn read(data: &[u8], pieces: &[usize], limits: Limits) -> Transcript {
    let io = Pieces { data, pieces, next: 0, reads: 0 };
    let transcript = RUNTIME.block_on(async {
        let mut transcript = Transcript { wire: None, messages: Vec::new(), failed: false };
        let mut reader = match MessageReader::detect(io, limits).await {
            Ok(Some(reader)) => reader,
            Ok(None) => return transcript,
            Err(_) => {
                transcript.failed = true;
                return transcript;
            }
        };
        transcript.wire = Some(reader.wire());
        loop {
            match reader.read_message().await {
                Ok(Some(message)) => transcript.messages.push(message),
                Ok(None) => break,
                Err(_) => {
                    transcript.failed = true;
                    break;
                }
            }
        }
        // Linear work: each byte examined once, plus a partial token (at most 16 bytes) per read.
        let (examined, reads) = (reader.bytes_examined(), reader.get_mut().reads);
        let bound = data.len() as u64 + 16 * (reads + 1);
        assert!(examined <= bound, "{examined} bytes examined for {} bytes in {reads} reads", data.len());
        transcript
    });
    if let Some(wire) = transcript.wire {
        for message in &transcript.messages {
            check_message(wire, message, limits);
        }
    }
    transcript
}

/// A message the reader returned is within the frame limit and, unframed, exactly one message;
/// a header frame decodes (or fails) within the limit.
fn check_message(wire: WireFormat, message: &Bytes, limits: Limits) {
    let len = message.len();
    assert!(
        len > 0 && len <= limits.max_frame,
        "a {len}-byte message under a {}-byte frame limit",
        limits.max_frame
    );
    if wire.framing == Framing::Header
        && let Ok((_, payload)) = header::decode(message.clone(), limits)
    {
        assert!(payload.len() <= limits.max_frame.max(len), "a header payload of {} bytes", payload.len());
    }
    if wire.framing == Framing::Unframed {
        let scanned = match wire.protocol {
            Protocol::Binary => scan::<BinaryReader>(message.clone()),
            Protocol::Compact => scan::<CompactReader>(message.clone()),
        };
        assert_eq!(scanned, Ok(len), "an unframed {wire} message of {len} bytes does not scan whole");
    }
}

/// An in-memory stream that hands out at most `pieces[i]` bytes on its i-th read (cycling), like
/// a slow socket, and counts its reads.
struct Pieces<'a> {
    data: &'a [u8],
    pieces: &'a [usize],
    next: usize,
    reads: u64,
}

impl AsyncRead for Pieces<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let piece = self.pieces.get(self.next % self.pieces.len().max(1)).copied().unwrap_or(1).max(1);
        self.next += 1;
        self.reads += 1;
        let n = piece.min(self.data.len()).min(buf.remaining());
        let (head, rest) = self.data.split_at(n);
        buf.put_slice(head);
        self.data = rest;
        Poll::Ready(Ok(()))
    }
}
