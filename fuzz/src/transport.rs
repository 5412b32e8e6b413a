//! Reading messages off a connection: detecting the wire a peer speaks, then cutting frames or
//! unframed messages out of the byte stream, in whatever pieces the bytes arrive.

use std::io;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};

use bytes::Bytes;
use probe_runtime::codec::{BinaryReader, CompactReader, Limits};
use probe_runtime::service::Protocol;
use probe_runtime::transport::{Framing, MessageReader, WireFormat};
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
const SMALL: Limits = Limits { max_frame: 256, max_depth: 8, max_container_len: 64, max_string_len: 64 };

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
    let whole = read(data, data.len().max(1), DEFAULT);
    let piece = 1 + usize::from(data.first().copied().unwrap_or(0) % 16);
    let pieces = read(data, piece, DEFAULT);
    assert_eq!(whole, pieces, "reading in pieces of {piece} bytes differs from reading at once");
    read(data, piece, SMALL);
}

/// Reads every message from `data` delivered `piece` bytes per read.
fn read(data: &[u8], piece: usize, limits: Limits) -> Transcript {
    let io = Pieces { data, piece };
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
                Ok(None) => return transcript,
                Err(_) => {
                    transcript.failed = true;
                    return transcript;
                }
            }
        }
    });
    if let Some(wire) = transcript.wire {
        for message in &transcript.messages {
            check_message(wire, message, limits);
        }
    }
    transcript
}

/// A message the reader returned is within the frame limit and, unframed, exactly one message.
fn check_message(wire: WireFormat, message: &Bytes, limits: Limits) {
    let len = message.len();
    assert!(
        len > 0 && len <= limits.max_frame,
        "a {len}-byte message under a {}-byte frame limit",
        limits.max_frame
    );
    if wire.framing == Framing::Unframed {
        let scanned = match wire.protocol {
            Protocol::Binary => scan::<BinaryReader>(message.clone()),
            Protocol::Compact => scan::<CompactReader>(message.clone()),
        };
        assert_eq!(scanned, Ok(len), "an unframed {wire} message of {len} bytes does not scan whole");
    }
}

/// An in-memory stream that hands out at most `piece` bytes per read, like a slow socket.
struct Pieces<'a> {
    data: &'a [u8],
    piece: usize,
}

impl AsyncRead for Pieces<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.piece.min(self.data.len()).min(buf.remaining());
        let (head, rest) = self.data.split_at(n);
        buf.put_slice(head);
        self.data = rest;
        Poll::Ready(Ok(()))
    }
}
