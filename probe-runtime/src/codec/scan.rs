//! Finding where an unframed message ends, resumably.
//!
//! An unframed message ends where its encoding ends, so a reader finds its end by skipping the
//! header and the arguments struct. [`MessageScan`] does that as a state machine with an explicit
//! stack: it is fed the growing buffer of a message as bytes arrive and remembers how far it got,
//! so each byte is examined once (a token split between two reads, at most 12 bytes, is looked at
//! again) however the peer splits the message. Re-parsing from the start on every read would cost
//! CPU with the square of the message's size.
//!
//! It enforces what the readers' `skip` enforces, in the same order: [`Limits`] on nesting,
//! container and string lengths and method names, known types, no `Stop` elements. Written by
//! hand: no crate skips Thrift incrementally.

use super::binary;
use super::compact::{self, ct};
use super::error::ProtocolError;
use super::limits::Limits;
use super::types::{MessageType, TType};

/// Which protocol a [`MessageScan`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Binary,
    Compact,
}

/// How far the message at the start of a buffer got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scanned {
    /// The message is complete and this many bytes long.
    Complete(usize),
    /// At least this many more bytes are needed.
    Incomplete(usize),
}

/// Where the scan is in the message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Head {
    /// Nothing read yet.
    Start,
    /// The name, from this offset, is skipped; then this many bytes (type, seqid) end the header.
    Tail { name: usize, rest: usize },
    /// The header is read; the body follows.
    Done,
}

/// An open struct or container.
#[derive(Debug, Clone, Copy)]
enum Frame {
    /// A struct; compact field ids are deltas from the last one.
    Struct { last_id: i16 },
    /// A list or set with `left` elements still to skip.
    Elems { elem: TType, left: u64 },
    /// A map with `left` keys and values still to skip, keys first.
    Map { key: TType, value: TType, left: u64 },
}

/// Why a token could not be read.
enum Stop {
    /// The buffer ends this many bytes short of the token.
    More(usize),
    /// The input is malformed or over a limit.
    Bad(ProtocolError),
}

impl From<ProtocolError> for Stop {
    fn from(e: ProtocolError) -> Self {
        Stop::Bad(e)
    }
}

/// Reads tokens off a buffer from a position; nothing is committed until a token is whole.
struct Cursor<'b> {
    buf: &'b [u8],
    at: usize,
}

impl Cursor<'_> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Stop> {
        let end = self.at + N;
        match self.buf.get(self.at..end) {
            Some(bytes) => {
                self.at = end;
                let mut out = [0; N];
                out.copy_from_slice(bytes);
                Ok(out)
            }
            None => Err(Stop::More(end - self.buf.len())),
        }
    }

    fn u8(&mut self) -> Result<u8, Stop> {
        self.array::<1>().map(|[b]| b)
    }

    fn i32(&mut self) -> Result<i32, Stop> {
        self.array().map(i32::from_be_bytes)
    }

    /// A varint of at most `max_bytes`, as `Input::varint` reads it.
    fn varint(&mut self, max_bytes: usize) -> Result<u64, Stop> {
        let rest = self.buf.get(self.at..).unwrap_or_default();
        let mut value: u64 = 0;
        for (i, &b) in rest.iter().take(max_bytes).enumerate() {
            let shift = 7 * i as u32;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(ProtocolError::invalid_data("varint overflows 64 bits").into());
            }
            value |= bits << shift;
            if b < 0x80 {
                self.at += i + 1;
                return Ok(value);
            }
        }
        if rest.len() >= max_bytes {
            return Err(ProtocolError::invalid_data(format!("varint longer than {max_bytes} bytes")).into());
        }
        Err(Stop::More(1))
    }

    fn varint32(&mut self) -> Result<u32, Stop> {
        let v = self.varint(5)?;
        u32::try_from(v).map_err(|_| ProtocolError::invalid_data("varint overflows 32 bits").into())
    }
}

/// Checks a length off the wire against `limit` (the bytes are checked as they come).
fn length(what: &'static str, len: i64, limit: usize) -> Result<u64, ProtocolError> {
    let len = usize::try_from(len).map_err(|_| ProtocolError::NegativeSize { what, len })?;
    if len > limit {
        return Err(ProtocolError::SizeLimit { what, len, limit });
    }
    Ok(len as u64)
}

/// The resumable scan of one unframed message; see the module doc.
#[derive(Debug)]
pub(crate) struct MessageScan {
    encoding: Encoding,
    limits: Limits,
    /// Bytes of the message scanned so far.
    pos: usize,
    /// Bytes of a string (or method name) still to pass over.
    skip: u64,
    head: Head,
    /// The bytes of the header, once it is read.
    header_len: Option<usize>,
    /// A value of this type comes next.
    value: Option<TType>,
    stack: Vec<Frame>,
    /// The message cannot end before this: the least size of the elements counted so far.
    min_end: usize,
    /// Bytes examined, over every message this scan was used for.
    examined: u64,
}

impl MessageScan {
    /// A scan of `encoding` messages within `limits`.
    pub(crate) fn new(encoding: Encoding, limits: Limits) -> Self {
        MessageScan {
            encoding,
            limits,
            pos: 0,
            skip: 0,
            head: Head::Start,
            header_len: None,
            value: None,
            stack: Vec::new(),
            min_end: 0,
            examined: 0,
        }
    }

    /// Starts over, for the message after the one found complete.
    pub(crate) fn reset(&mut self) {
        self.pos = 0;
        self.skip = 0;
        self.head = Head::Start;
        self.header_len = None;
        self.value = None;
        self.stack.clear();
        self.min_end = 0;
    }

    /// Bytes examined so far, over every message: linear in the bytes read, whatever the
    /// segments they came in.
    pub(crate) fn examined(&self) -> u64 {
        self.examined
    }

    /// The length of the message header, once it was read (to decode it for an error reply).
    pub(crate) fn header_len(&self) -> Option<usize> {
        self.header_len
    }

    /// Scans on through `buf`, which holds the message from its first byte (and what was given
    /// before, unchanged, plus more).
    pub(crate) fn scan(&mut self, buf: &[u8]) -> Result<Scanned, ProtocolError> {
        loop {
            if self.skip > 0 {
                let n = self.skip.min(buf.len().saturating_sub(self.pos) as u64);
                self.pos += n as usize;
                self.skip -= n;
                self.examined += n;
                if self.skip > 0 {
                    let needed = usize::try_from(self.skip).unwrap_or(usize::MAX);
                    return Ok(Scanned::Incomplete(self.hint(buf, needed)));
                }
            }
            let mut c = Cursor { buf, at: self.pos };
            let step = if self.head == Head::Done { self.body(&mut c) } else { self.header(&mut c) };
            match step {
                Ok(done) => {
                    self.examined += (c.at - self.pos) as u64;
                    self.pos = c.at;
                    if done {
                        return Ok(Scanned::Complete(self.pos));
                    }
                }
                Err(Stop::More(needed)) => {
                    self.examined += buf.len().saturating_sub(self.pos) as u64;
                    return Ok(Scanned::Incomplete(self.hint(buf, needed)));
                }
                Err(Stop::Bad(e)) => return Err(e),
            }
        }
    }

    /// The bytes needed: those of the token, or more if the open containers need more.
    fn hint(&self, buf: &[u8], needed: usize) -> usize {
        needed.max(self.min_end.saturating_sub(buf.len())).max(1)
    }

    /// Counts `len` elements of at least `min` bytes each from `at` toward the message's end.
    fn expect(&mut self, at: usize, len: u64, min: usize) {
        let least = usize::try_from(len).unwrap_or(usize::MAX).saturating_mul(min);
        self.min_end = self.min_end.max(at.saturating_add(least));
    }

    /// Reads the next piece of the header.
    fn header(&mut self, c: &mut Cursor<'_>) -> Result<bool, Stop> {
        let limit = self.limits.method_name_limit();
        match (self.head, self.encoding) {
            (Head::Start, Encoding::Binary) => {
                let word = c.i32()?;
                let (len, tail) = if word < 0 {
                    let word = word as u32;
                    if word & binary::VERSION_MASK != binary::VERSION_1 {
                        return Err(ProtocolError::BadVersion { found: word }.into());
                    }
                    MessageType::try_from((word & 0xff) as u8)?;
                    (c.i32()?, 4)
                } else {
                    // Old non-strict: the word is the name's length; a type byte and the seqid follow.
                    (word, 5)
                };
                self.skip = length("method name", i64::from(len), limit)?;
                self.head = Head::Tail { name: c.at, rest: tail };
            }
            (Head::Start, Encoding::Compact) => {
                let [id, version_and_type] = c.array()?;
                if id != compact::PROTOCOL_ID || version_and_type & compact::VERSION_MASK != compact::VERSION
                {
                    let found = u32::from_be_bytes([0, 0, id, version_and_type]);
                    return Err(ProtocolError::BadVersion { found }.into());
                }
                MessageType::try_from(version_and_type >> compact::TYPE_SHIFT)?;
                c.varint32()?;
                let len = c.varint32()?;
                self.skip = length("method name", i64::from(len), limit)?;
                self.head = Head::Tail { name: c.at, rest: 0 };
            }
            (Head::Tail { name, rest }, encoding) => {
                // What the reader checks of a header, in its order: the name is UTF-8, the old
                // binary type byte is a message type.
                if std::str::from_utf8(c.buf.get(name..c.at).unwrap_or_default()).is_err() {
                    return Err(ProtocolError::InvalidUtf8.into());
                }
                if encoding == Encoding::Binary && rest == 5 {
                    MessageType::try_from(c.u8()?)?;
                    c.array::<4>()?;
                } else {
                    let end = c.at + rest;
                    if end > c.buf.len() {
                        return Err(Stop::More(end - c.buf.len()));
                    }
                    c.at = end;
                }
                let end = c.at;
                self.header_len = Some(end);
                self.head = Head::Done;
                self.value = Some(TType::Struct);
            }
            (Head::Done, _) => {}
        }
        Ok(false)
    }

    /// Reads the next piece of the body: a value, a field header, or the end of a struct or a
    /// container. `Ok(true)`: the message is complete.
    fn body(&mut self, c: &mut Cursor<'_>) -> Result<bool, Stop> {
        if let Some(ttype) = self.value {
            self.open_value(c, ttype)?;
            self.value = None;
            return Ok(false);
        }
        let encoding = self.encoding;
        match self.stack.last_mut() {
            None => return Ok(true),
            Some(Frame::Struct { last_id }) => {
                let b = c.u8()?;
                if b == 0 {
                    self.stack.pop();
                    return Ok(false);
                }
                match encoding {
                    Encoding::Binary => {
                        let ttype = TType::try_from(b)?;
                        c.array::<2>()?;
                        self.value = Some(ttype);
                    }
                    Encoding::Compact => {
                        let ttype = compact::from_compact(b & 0x0f)?;
                        let id = match b >> 4 {
                            0 => {
                                let v = compact::unzigzag32(c.varint32()?);
                                i16::try_from(v)
                                    .map_err(|_| ProtocolError::invalid_data("varint overflows i16"))?
                            }
                            delta => last_id
                                .checked_add(i16::from(delta))
                                .ok_or_else(|| ProtocolError::invalid_data("field id delta overflows i16"))?,
                        };
                        *last_id = id;
                        // A type code of 0 with a delta ends the struct, as the reader has it.
                        if ttype == TType::Stop {
                            self.stack.pop();
                            return Ok(false);
                        }
                        // A bool field's value is in its header.
                        if ttype != TType::Bool {
                            self.value = Some(ttype);
                        }
                    }
                }
            }
            Some(Frame::Elems { elem, left }) => {
                if *left == 0 {
                    self.stack.pop();
                } else {
                    *left -= 1;
                    self.value = Some(*elem);
                }
            }
            Some(Frame::Map { key, value, left }) => {
                if *left == 0 {
                    self.stack.pop();
                } else {
                    self.value = Some(if *left % 2 == 0 { *key } else { *value });
                    *left -= 1;
                }
            }
        }
        Ok(false)
    }

    /// Reads the start of a value of type `ttype`: all of a scalar, the length of a string, the
    /// header of a container.
    fn open_value(&mut self, c: &mut Cursor<'_>, ttype: TType) -> Result<(), Stop> {
        let binary = self.encoding == Encoding::Binary;
        match ttype {
            TType::Stop => return Err(ProtocolError::invalid_data("cannot skip a value of type Stop").into()),
            TType::Bool if !binary => match c.u8()? {
                ct::BOOL_TRUE | ct::BOOL_FALSE | 0 => {}
                other => return Err(ProtocolError::invalid_data(format!("bool byte {other}")).into()),
            },
            TType::Bool | TType::I8 => drop(c.u8()?),
            TType::I16 if binary => drop(c.array::<2>()?),
            TType::I32 if binary => drop(c.array::<4>()?),
            TType::I64 if binary => drop(c.array::<8>()?),
            TType::I16 => {
                let v = compact::unzigzag32(c.varint32()?);
                i16::try_from(v).map_err(|_| ProtocolError::invalid_data("varint overflows i16"))?;
            }
            TType::I32 => drop(c.varint32()?),
            TType::I64 => drop(c.varint(10)?),
            TType::Double => drop(c.array::<8>()?),
            TType::Uuid => drop(c.array::<16>()?),
            TType::String => {
                let len = if binary { i64::from(c.i32()?) } else { i64::from(c.varint32()?) };
                self.skip = length("string", len, self.limits.max_string_len)?;
            }
            TType::Struct => self.push(Frame::Struct { last_id: 0 })?,
            TType::List | TType::Set => {
                let what = if ttype == TType::List { "list" } else { "set" };
                let (elem, len) = if binary {
                    let [e, a, b, cc, d] = c.array()?;
                    (TType::try_from(e)?, i64::from(i32::from_be_bytes([a, b, cc, d])))
                } else {
                    let b = c.u8()?;
                    let elem = compact::from_compact(b & 0x0f)?;
                    let len = match b >> 4 {
                        15 => c.varint32()?,
                        short => u32::from(short),
                    };
                    (elem, i64::from(len))
                };
                let left = length(what, len, self.limits.max_container_len)?;
                if elem == TType::Stop && left > 0 {
                    return Err(ProtocolError::invalid_data(format!("{what} of Stop elements")).into());
                }
                self.push(Frame::Elems { elem, left })?;
                self.expect(c.at, left, self.min_size(elem));
            }
            TType::Map => {
                let (key, value, len) = if binary {
                    let [k, v, a, b, cc, d] = c.array()?;
                    (TType::try_from(k)?, TType::try_from(v)?, i64::from(i32::from_be_bytes([a, b, cc, d])))
                } else {
                    match c.varint32()? {
                        0 => (TType::Stop, TType::Stop, 0),
                        len => {
                            let kv = c.u8()?;
                            (
                                compact::from_compact(kv >> 4)?,
                                compact::from_compact(kv & 0x0f)?,
                                i64::from(len),
                            )
                        }
                    }
                };
                let left = length("map", len, self.limits.max_container_len)?;
                if (key == TType::Stop || value == TType::Stop) && left > 0 {
                    return Err(ProtocolError::invalid_data("map of Stop keys or values").into());
                }
                self.push(Frame::Map { key, value, left: left * 2 })?;
                self.expect(c.at, left, self.min_size(key) + self.min_size(value));
            }
        }
        Ok(())
    }

    /// Opens a struct or container, one level deeper.
    fn push(&mut self, frame: Frame) -> Result<(), ProtocolError> {
        if self.stack.len() >= self.limits.max_depth {
            return Err(ProtocolError::DepthLimit { limit: self.limits.max_depth });
        }
        self.stack.push(frame);
        Ok(())
    }

    fn min_size(&self, ttype: TType) -> usize {
        match self.encoding {
            Encoding::Binary => binary::min_size(ttype),
            Encoding::Compact => compact::min_size(ttype),
        }
    }
}

#[cfg(test)]
mod tests;
