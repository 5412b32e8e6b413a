//! Header frames (THeader): decoding any bytes never panics, never inflates past the frame limit,
//! and what decodes re-encodes to a frame that decodes the same.

use bytes::{Bytes, BytesMut};
use probe_runtime::codec::Limits;
use probe_runtime::transport::header::{Headers, decode, encode, frame_seqid};

/// Small limits, so zlib payloads reach the frame limit.
const SMALL: Limits = Limits { max_frame: 256, ..Limits::DEFAULT };
/// The default limits but a 1 MiB frame limit (as the transport target's).
const DEFAULT: Limits = Limits { max_frame: 1024 * 1024, ..Limits::DEFAULT };

/// Decodes `data` as a header frame under both limits; checks what decodes.
pub fn check(data: &[u8]) {
    for limits in [SMALL, DEFAULT] {
        let Ok((frame, payload)) = decode(Bytes::copy_from_slice(data), limits) else { continue };
        assert!(payload.len() <= limits.max_frame.max(data.len()), "a payload of {} bytes", payload.len());
        assert_eq!(frame_seqid(data), Some(frame.seqid));
        // Headers read in place read as the same pairs put in a list: each key once, found.
        let listed: Headers = frame.headers.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
        assert_eq!(listed, frame.headers);
        assert_eq!(listed.len(), frame.headers.iter().len());
        for (key, value) in listed.iter() {
            assert_eq!(frame.headers.get_bytes(key), Some(value));
        }
        let mut again = BytesMut::new();
        encode(&frame, &payload, &mut again).expect("a decoded frame re-encodes");
        let (back, back_payload) = decode(again.freeze(), limits).expect("a re-encoded frame decodes");
        assert_eq!(back, frame);
        assert_eq!(back_payload, payload);
    }
}
