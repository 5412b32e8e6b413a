//! Writing messages: framing them, and the task that writes a connection's outgoing messages.

use bytes::{BufMut, Bytes, BytesMut};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::Framing;
use super::error::WireError;

/// Gather at most this many bytes of queued messages into one write.
const MAX_BATCH: usize = 64 * 1024;

/// Appends `message` to `out` as it goes on the wire: after its 4-byte big-endian length when
/// framed, as it is when not.
pub fn encode_frame(framing: Framing, message: &[u8], out: &mut BytesMut) -> Result<(), WireError> {
    if framing == Framing::Framed {
        let len = i32::try_from(message.len()).map_err(|_| WireError::Unframeable { len: message.len() })?;
        out.reserve(4 + message.len());
        out.put_i32(len);
    }
    out.extend_from_slice(message);
    Ok(())
}

/// Writes every message received on `rx` to `io`, gathering the ones already queued into one
/// write. Returns once every sender is gone and all is written (then shuts the write side down,
/// so the peer sees the end of the stream), or at the first write error.
pub(crate) async fn write_loop<W: AsyncWrite + Unpin>(
    mut io: W,
    mut rx: mpsc::Receiver<Bytes>,
    framing: Framing,
) -> Result<(), WireError> {
    let mut out = BytesMut::with_capacity(8 * 1024);
    while let Some(message) = rx.recv().await {
        encode_frame(framing, &message, &mut out)?;
        drain(&mut rx, framing, &mut out)?;
        io.write_all(&out).await?;
        out.clear();
    }
    io.shutdown().await?;
    Ok(())
}

/// Appends the messages already queued, up to [`MAX_BATCH`] bytes.
fn drain(rx: &mut mpsc::Receiver<Bytes>, framing: Framing, out: &mut BytesMut) -> Result<(), WireError> {
    while out.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(message) => encode_frame(framing, &message, out)?,
            Err(_) => break,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    #[tokio::test]
    async fn writes_queued_messages_framed_then_ends_the_stream() {
        let (client, mut server) = tokio::io::duplex(1024);
        let (tx, rx) = mpsc::channel(8);
        for m in [&b"ab"[..], b"", b"cde"] {
            tx.send(Bytes::copy_from_slice(m)).await.unwrap();
        }
        drop(tx);
        write_loop(client, rx, Framing::Framed).await.unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, [0, 0, 0, 2, b'a', b'b', 0, 0, 0, 0, 0, 0, 0, 3, b'c', b'd', b'e']);
    }

    #[tokio::test]
    async fn unframed_messages_go_as_they_are() {
        let (client, mut server) = tokio::io::duplex(1024);
        let (tx, rx) = mpsc::channel(8);
        tx.send(Bytes::from_static(b"xyz")).await.unwrap();
        drop(tx);
        write_loop(client, rx, Framing::Unframed).await.unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"xyz");
    }
}
