//! Decoding generated code: the `User` struct of `tests/idl/interop.thrift`, which has a field of
//! every kind (optional, defaulted, nested containers, a recursive `parent`, struct map keys).

use bytes::{Bytes, BytesMut};
use probe_runtime::codec::{BinaryWriter, CompactWriter, Encode, Limits, ProtocolError};
use probe_runtime::service::Protocol;
pub use crate::idl::interop::{Point, User};
use crate::idl::shared::{Address, Level};

/// Both protocols.
pub const PROTOCOLS: [Protocol; 2] = [Protocol::Binary, Protocol::Compact];

/// Decodes `data` as a `User` in both protocols; see [`round_trip`].
pub fn check(data: &[u8]) {
    let input = Bytes::copy_from_slice(data);
    for protocol in PROTOCOLS {
        round_trip(protocol, input.clone());
    }
}

/// Decodes a `User` from `input`; when that works, the value must encode, the encoding must
/// decode, and the two decoded values must be equal (unless a NaN makes `==` false).
fn round_trip(protocol: Protocol, input: Bytes) {
    let Ok(first) = decode(protocol, input) else { return };
    let encoded = encode(protocol, &first)
        .unwrap_or_else(|e| panic!("{protocol:?}: a decoded User fails to encode: {e}\n{first:?}"));
    let second = decode(protocol, encoded.clone()).unwrap_or_else(|e| {
        panic!("{protocol:?}: a re-encoded User fails to decode: {e}\n{first:?}\nencoded {encoded:02x?}")
    });
    if !has_nan(&first) {
        assert_eq!(first, second, "{protocol:?}: a User changed in a round trip");
    }
}

fn decode(protocol: Protocol, input: Bytes) -> Result<User, ProtocolError> {
    protocol.decode_body(input, Limits::default())
}

/// `user` encoded in `protocol`.
pub fn encode(protocol: Protocol, user: &User) -> Result<Bytes, ProtocolError> {
    let mut buf = BytesMut::new();
    match protocol {
        Protocol::Binary => user.encode(&mut BinaryWriter::new(&mut buf))?,
        Protocol::Compact => user.encode(&mut CompactWriter::new(&mut buf))?,
    }
    Ok(buf.freeze())
}

/// Whether a `double` anywhere in `user` is NaN.
fn has_nan(user: &User) -> bool {
    user.scores.values().any(|v| v.is_nan())
        || user.points.iter().any(|(p, _)| p.x.is_nan() || p.y.is_nan())
        || user.parent.as_deref().is_some_and(has_nan)
}

/// A `User` with every field set, for seeds.
pub fn sample_user() -> User {
    let parent = User { id: 1, name: "root".to_owned(), ..User::default() };
    User {
        id: 42,
        name: "héllo".to_owned(),
        address: Some(Address {
            city: "Berlin".to_owned(),
            street: Some("Unter den Linden".to_owned()),
            zip: 10117,
        }),
        tags: vec!["a".to_owned(), "bb".to_owned()],
        lucky: [1, 7, -13].into_iter().collect(),
        scores: [("x".to_owned(), 1.5), ("y".to_owned(), -0.0)].into_iter().collect(),
        level: Level::HIGH,
        avatar: Some(Bytes::from_static(&[0, 1, 2, 0xff])),
        active: false,
        nested: vec![[("k".to_owned(), [1i64, -1, i64::MAX].into_iter().collect())].into_iter().collect()],
        parent: Some(Box::new(parent)),
        points: vec![(Point { x: 1.0, y: 2.0 }, "p".to_owned())].into(),
    }
}
