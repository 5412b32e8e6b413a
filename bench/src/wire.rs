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
//!
//! With [`Header`] other than `None` the message goes in a THeader frame (protocol binary, no
//! transform; with `Info`, the headers a probe client sends: caller, request id, deadline), and the
//! expected reply in the header frame probe's server answers with (no info headers).

use anyhow::{Context, Result, bail};
use bytes::BytesMut;
use probe_runtime::service::Protocol;
use probe_runtime::transport::header::{self, HeaderFrame, Headers};

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

/// How calls are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Header {
    /// Framed binary: a 4-byte length.
    None,
    /// THeader around the binary message, no info headers.
    Bare,
    /// THeader with the info headers a probe client sends (caller, request id, deadline).
    Info,
}

/// One `echo` call, framed, ready to be copied with a new seqid; and the check of its replies.
#[derive(Debug, Clone)]
pub struct EchoCall {
    frame: Vec<u8>,
    /// Where the seqids are in `frame` (the message's; with THeader the frame's too).
    frame_seqids: Vec<usize>,
    /// The whole expected reply frame, seqid 0: every byte of a reply is compared with it but
    /// the seqids'.
    reply: Vec<u8>,
    /// Where the seqids are in `reply`; the last one is the message's.
    reply_seqids: Vec<usize>,
}

impl EchoCall {
    /// The call carrying `payload_len` bytes, and the reply `expect` says comes back.
    pub fn new(payload_len: usize, expect: Expect) -> Result<Self> {
        EchoCall::framed(payload_len, expect, Header::None)
    }

    /// [`EchoCall::new`] framed as `header` says.
    pub fn framed(payload_len: usize, expect: Expect, header: Header) -> Result<Self> {
        let call = message(CALL, 1, payload_len)?;
        let reply = match expect {
            Expect::Thrift => message(REPLY, 0, payload_len)?,
            Expect::Echo => call.clone(),
        };
        let info: Headers = match header {
            Header::Info => [
                ("probe-caller-appkey", "bench_app"),
                ("probe-caller-service", "Bench"),
                ("probe-request-id", "00000000000000000000000000000001"),
                ("probe-deadline-ms", "30000"),
            ]
            .into_iter()
            .collect(),
            _ => Headers::new(),
        };
        let (frame, frame_seqids) = wrap(&call, header, info)?;
        let (reply, reply_seqids) = match expect {
            // The raw echo server sends the call back as it came.
            Expect::Echo => (frame.clone(), frame_seqids.clone()),
            Expect::Thrift => wrap(&reply, header, Headers::new())?,
        };
        Ok(EchoCall { frame, frame_seqids, reply, reply_seqids })
    }

    /// Bytes on the wire per call in each direction, frame length included.
    pub fn frame_len(&self) -> usize {
        self.frame.len()
    }

    /// Appends the call framed, with `seqid`, to `out`.
    pub fn write(&self, seqid: i32, out: &mut Vec<u8>) {
        let base = out.len();
        out.extend_from_slice(&self.frame);
        for at in &self.frame_seqids {
            out[base + at..base + at + 4].copy_from_slice(&seqid.to_be_bytes());
        }
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
        let message_at = self.reply_seqids.last().map_or(FRAME_HEADER, |at| at - SEQID_AT);
        let message = frame.get(message_at..).unwrap_or_default();
        if message.get(TYPE_AT) == Some(&EXCEPTION) {
            bail!("the server answered with an exception: {}", String::from_utf8_lossy(message));
        }
        if frame.len() != self.reply.len() {
            bail!("a reply of {} bytes to a call of {}", frame.len(), self.frame.len());
        }
        // Every byte compared but the seqids' (one or two `memcmp`s between them).
        let mut from = 0;
        for &at in &self.reply_seqids {
            if frame[from..at] != self.reply[from..at] {
                let differs = frame.iter().zip(&self.reply).position(|(a, b)| a != b).unwrap_or(0);
                bail!(
                    "the reply differs from the expected one at byte {differs}: {:02x?}",
                    &frame[..frame.len().min(64)]
                );
            }
            from = at + 4;
        }
        if frame[from..] != self.reply[from..] {
            let differs = frame.iter().zip(&self.reply).position(|(a, b)| a != b).unwrap_or(0);
            bail!("the reply differs from the expected one at byte {differs}");
        }
        let at = self.reply_seqids.last().copied().unwrap_or(FRAME_HEADER + SEQID_AT);
        let seqid = frame[at..at + 4].try_into().map(i32::from_be_bytes)?;
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

/// `message` framed as `header` says, and where the seqids are in it (the message's last).
fn wrap(message: &[u8], header: Header, info: Headers) -> Result<(Vec<u8>, Vec<usize>)> {
    let mut out = BytesMut::new();
    if header == Header::None {
        out.extend_from_slice(&u32::try_from(message.len())?.to_be_bytes());
        out.extend_from_slice(message);
        return Ok((out.to_vec(), vec![FRAME_HEADER + SEQID_AT]));
    }
    let frame =
        HeaderFrame { seqid: 0, flags: 0, protocol: Protocol::Binary, transforms: Vec::new(), headers: info };
    let mut body = BytesMut::new();
    header::encode(&frame, message, &mut body).context("cannot encode a header frame")?;
    out.extend_from_slice(&u32::try_from(body.len())?.to_be_bytes());
    out.extend_from_slice(&body);
    // length (4) | magic (2) | flags (2) | seqid (4) | ... | message
    let message_at = out.len() - message.len();
    Ok((out.to_vec(), vec![FRAME_HEADER + 4, message_at + SEQID_AT]))
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
