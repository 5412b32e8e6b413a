//! Writes valid inputs for every fuzz target into `<dir>/<target>/` (default `fuzz/corpus`), so
//! libFuzzer starts from real messages instead of from nothing. Run by `scripts/fuzz.sh`.

use std::path::{Path, PathBuf};

use bytes::{BufMut, Bytes, BytesMut};
use probe_fuzz::generated::{PROTOCOLS, User, encode, sample_user};
use probe_runtime::codec::{ApplicationException, Encode, MessageHeader, MessageType};
use probe_runtime::service::Protocol;
use probe_runtime::transport::header::{HeaderFrame, Transform, encode as encode_header};
use probe_runtime::transport::{Framing, encode_frame};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let dir = std::env::args_os().nth(1).map_or_else(|| PathBuf::from("fuzz/corpus"), PathBuf::from);
    let user = sample_user();
    let mut total = 0;

    let mut users = Vec::new();
    for protocol in PROTOCOLS {
        users.push(encode(protocol, &user)?);
        users.push(encode(protocol, &User::default())?);
    }
    total += write(&dir, "generated_decode", &users)?;

    let mut by_protocol = Vec::new();
    for protocol in PROTOCOLS {
        by_protocol.push(messages(protocol, &user)?);
    }
    total += write(&dir, "binary_message", &by_protocol[0])?;
    total += write(&dir, "compact_message", &by_protocol[1])?;

    let mut streams = Vec::new();
    for messages in &by_protocol {
        for framing in [Framing::Framed, Framing::Unframed] {
            // One message, and all of them pipelined on one connection.
            let mut all = BytesMut::new();
            for message in messages {
                let mut one = BytesMut::new();
                encode_frame(framing, message, &mut one)?;
                all.extend_from_slice(&one);
                streams.push(one.freeze());
            }
            streams.push(all.freeze());
        }
    }
    // Header frames: each protocol, with and without zlib, with probe's headers.
    let mut frames = Vec::new();
    for (messages, protocol) in by_protocol.iter().zip(PROTOCOLS) {
        for transforms in [vec![], vec![Transform::Zlib]] {
            let mut all = BytesMut::new();
            for (seqid, message) in (1..).zip(messages) {
                let mut frame = HeaderFrame::new(protocol, seqid);
                frame.transforms = transforms.clone();
                frame.headers.insert("probe-request-id", "5f3a9c01-2a");
                frame.headers.insert("probe-deadline-ms", "250");
                frame
                    .headers
                    .insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
                let mut bytes = BytesMut::new();
                encode_header(&frame, message, &mut bytes)?;
                encode_frame(Framing::Header, &bytes, &mut all)?;
                frames.push(bytes.freeze());
            }
            streams.push(all.freeze());
        }
    }
    total += write(&dir, "transport_reader", &streams)?;
    total += write(&dir, "header_frame", &frames)?;
    total += write(&dir, "caller_token", &caller_tokens())?;

    println!("seeds: {total} files in {}", dir.display());
    Ok(())
}

/// A call carrying a `User`, an exception reply, an empty oneway call and, in binary, a call with
/// the old non-strict header.
fn messages(protocol: Protocol, user: &User) -> Result<Vec<Bytes>> {
    let mut out = vec![
        message(protocol, MessageHeader::new("Directory:put", MessageType::Call, 1), user)?,
        message(
            protocol,
            MessageHeader::new("get", MessageType::Exception, -7),
            &ApplicationException::unknown_method("get"),
        )?,
        message(protocol, MessageHeader::new("touch", MessageType::Oneway, i32::MAX), &User::default())?,
    ];
    if protocol == Protocol::Binary {
        let mut old = BytesMut::new();
        old.put_i32(3);
        old.put_slice(b"put");
        old.put_u8(MessageType::Call.as_u8());
        old.put_i32(9);
        old.extend_from_slice(&encode(protocol, user)?);
        out.push(old.freeze());
    }
    Ok(out)
}

fn message(protocol: Protocol, header: MessageHeader, body: &(impl Encode + ?Sized)) -> Result<Bytes> {
    let mut buf = BytesMut::new();
    protocol.encode_message(&header, body, &mut buf)?;
    Ok(buf.freeze())
}

/// Writes `inputs` as `<dir>/<target>/seed-<n>`; returns how many.
fn write(dir: &Path, target: &str, inputs: &[Bytes]) -> Result<usize> {
    let dir = dir.join(target);
    std::fs::create_dir_all(&dir)?;
    for (n, input) in inputs.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{n}")), input)?;
    }
    Ok(inputs.len())
}

/// Tokens as probe signs them, and caller policy documents.
fn caller_tokens() -> Vec<Bytes> {
    let secret: probe_runtime::security::Secret = probe_runtime::security::Secret::generate();
    let credential = probe_runtime::security::AppCredential::new("seed_app", secret).expect("a valid appkey");
    let mut inputs: Vec<Bytes> = ["127.0.0.1:9090", "10.0.0.7:1"]
        .iter()
        .map(|audience| Bytes::from(probe_runtime::security::token::sign(&credential, audience)))
        .collect();
    for policy in [r#"{"allow": ["a_app", "b_app"], "unauthenticated": "count"}"#, r#"{"unauthenticated": "refuse"}"#, "{}"] {
        inputs.push(Bytes::from_static(policy.as_bytes()));
    }
    inputs
}
