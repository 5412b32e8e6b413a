//! The bytes of one benchmark call, written by hand: a framed strict-binary Thrift `echo` CALL
//! with one binary field, and the check of what comes back.
//!
//! ```text
//! frame length (4) | 80 01 00 type (4) | name length 4 (4) | "echo" | seqid (4)
//!                  | field: type 11 (1), id (2) | binary length (4) | payload | stop 00
//! ```
//!
//! probe answers with the same layout (type REPLY, field 0: the success value); the raw echo
//! server answers with the call itself. Both are as long as the call.

use anyhow::{Result, bail};

const METHOD: &[u8] = b"echo";
const FRAME_HEADER: usize = 4;
/// Where things are in a message (after the frame length).
const TYPE_AT: usize = 3;
const SEQID_AT: usize = 8 + METHOD.len();
const FIELD_AT: usize = SEQID_AT + 4;
const PAYLOAD_AT: usize = FIELD_AT + 3 + 4;
/// Thrift message types and the binary (string) field type.
const CALL: u8 = 1;
const REPLY: u8 = 2;
const EXCEPTION: u8 = 3;
const T_STRING: u8 = 11;

/// What the server at the other end sends back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Expect {
    /// A Thrift server: a REPLY whose field 0 is the payload.
    Thrift,
    /// The raw echo server: the call itself.
    Echo,
}

/// One `echo` call, framed, ready to be copied with a new seqid; and the check of its replies.
#[derive(Debug, Clone)]
pub struct EchoCall {
    frame: Vec<u8>,
    /// The whole expected reply frame, seqid 0: every byte of a reply is compared with it but
    /// the seqid's.
    reply: Vec<u8>,
}

impl EchoCall {
    /// The call carrying `payload_len` bytes, and the reply `expect` says comes back.
    pub fn new(payload_len: usize, expect: Expect) -> Result<Self> {
        let call = message(CALL, 1, payload_len)?;
        let mut frame = Vec::with_capacity(FRAME_HEADER + call.len());
        frame.extend_from_slice(&u32::try_from(call.len())?.to_be_bytes());
        frame.extend_from_slice(&call);
        let reply = match expect {
            Expect::Thrift => message(REPLY, 0, payload_len)?,
            Expect::Echo => call,
        };
        let mut reply_frame = Vec::with_capacity(FRAME_HEADER + reply.len());
        reply_frame.extend_from_slice(&u32::try_from(reply.len())?.to_be_bytes());
        reply_frame.extend_from_slice(&reply);
        Ok(EchoCall { frame, reply: reply_frame })
    }

    /// Bytes on the wire per call in each direction, frame length included.
    pub fn frame_len(&self) -> usize {
        self.frame.len()
    }

    /// Appends the call framed, with `seqid`, to `out`.
    pub fn write(&self, seqid: i32, out: &mut Vec<u8>) {
        let start = out.len() + FRAME_HEADER + SEQID_AT;
        out.extend_from_slice(&self.frame);
        out[start..start + 4].copy_from_slice(&seqid.to_be_bytes());
    }

    /// The length of the first frame in `buf` (prefix included) if it is all there.
    pub fn complete_frame(buf: &[u8]) -> Option<usize> {
        let len = u32::from_be_bytes(*buf.first_chunk::<FRAME_HEADER>()?) as usize + FRAME_HEADER;
        (buf.len() >= len).then_some(len)
    }

    /// The seqid of `frame` (prefix included) if it is the expected reply: every byte but the
    /// seqid's equal to it (header, field, echoed payload and the closing stop byte). Two slice
    /// comparisons (`memcmp`): a few nanoseconds per call, far below the load generator's cost.
    pub fn check_reply(&self, frame: &[u8]) -> Result<i32> {
        let message = frame.get(FRAME_HEADER..).unwrap_or_default();
        if message.get(TYPE_AT) == Some(&EXCEPTION) {
            bail!("the server answered with an exception: {}", String::from_utf8_lossy(message));
        }
        if frame.len() != self.reply.len() {
            bail!("a reply of {} bytes to a call of {}", frame.len(), self.frame.len());
        }
        let (seq_from, seq_to) = (FRAME_HEADER + SEQID_AT, FRAME_HEADER + FIELD_AT);
        if frame[..seq_from] != self.reply[..seq_from] || frame[seq_to..] != self.reply[seq_to..] {
            let at = frame.iter().zip(&self.reply).position(|(a, b)| a != b).unwrap_or(0);
            bail!(
                "the reply differs from the expected one at byte {at}: {:02x?}",
                &frame[..frame.len().min(64)]
            );
        }
        let seqid = frame[seq_from..seq_to].try_into().map(i32::from_be_bytes)?;
        Ok(seqid)
    }

    /// Turns a framed strict-binary CALL in `frame` (prefix included) into the REPLY probe's
    /// server would send for `echo`: message type REPLY, field id 0 (the success value). What the
    /// raw echo server does with `--reply`, so Thrift clients can call it. `false` if `frame` is
    /// not a strict binary message with a field.
    pub fn call_to_reply(frame: &mut [u8]) -> bool {
        let Some(name_len) = frame.get(FRAME_HEADER + 4..FRAME_HEADER + 8) else { return false };
        let name_len = u32::from_be_bytes([name_len[0], name_len[1], name_len[2], name_len[3]]) as usize;
        // type (4) | name length (4) | name | seqid (4) | field type (1) | field id (2)
        let id_at = FRAME_HEADER + 8 + name_len + 4 + 1;
        if frame.len() < id_at + 2 || frame[FRAME_HEADER] != 0x80 {
            return false;
        }
        frame[FRAME_HEADER + TYPE_AT] = REPLY;
        frame[id_at..id_at + 2].copy_from_slice(&0i16.to_be_bytes());
        true
    }
}

/// A message of `kind` whose field `field_id` is `payload_len` bytes, seqid 0.
fn message(kind: u8, field_id: i16, payload_len: usize) -> Result<Vec<u8>> {
    let mut m = Vec::with_capacity(PAYLOAD_AT + payload_len + 1);
    m.extend_from_slice(&[0x80, 0x01, 0x00, kind]);
    m.extend_from_slice(&(METHOD.len() as u32).to_be_bytes());
    m.extend_from_slice(METHOD);
    m.extend_from_slice(&0i32.to_be_bytes());
    m.push(T_STRING);
    m.extend_from_slice(&field_id.to_be_bytes());
    m.extend_from_slice(&u32::try_from(payload_len)?.to_be_bytes());
    m.extend((0..payload_len).map(|i| b'a' + (i % 26) as u8));
    m.push(0);
    Ok(m)
}
