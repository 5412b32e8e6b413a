//! Property tests of the codec: random values round-trip through both protocols, truncated
//! messages are `Incomplete`, and arbitrary bytes never panic or hang a reader.

use bytes::{Bytes, BytesMut};
use probe_runtime::codec::{
    BinaryReader, BinaryWriter, CompactReader, CompactWriter, MessageHeader, MessageType, ProtocolError,
    ProtocolReader, ProtocolWriter, TType,
};
use proptest::collection::vec;
use proptest::prelude::*;

/// The type of a value, so containers can be generated with elements of one type.
#[derive(Debug, Clone)]
enum Shape {
    Bool,
    I8,
    I16,
    I32,
    I64,
    Double,
    Binary,
    Uuid,
    List(Box<Shape>),
    Set(Box<Shape>),
    Map(Box<Shape>, Box<Shape>),
    Struct(Vec<(i16, Shape)>),
}

/// A Thrift value as a dynamic reader sees it (strings are read back as binary).
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Bool(bool),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    /// The bits, so NaN compares equal to itself.
    Double(u64),
    Binary(Vec<u8>),
    Uuid([u8; 16]),
    List(TType, Vec<Value>),
    Set(TType, Vec<Value>),
    Map(TType, TType, Vec<(Value, Value)>),
    Struct(Vec<(i16, Value)>),
}

impl Shape {
    fn ttype(&self) -> TType {
        match self {
            Shape::Bool => TType::Bool,
            Shape::I8 => TType::I8,
            Shape::I16 => TType::I16,
            Shape::I32 => TType::I32,
            Shape::I64 => TType::I64,
            Shape::Double => TType::Double,
            Shape::Binary => TType::String,
            Shape::Uuid => TType::Uuid,
            Shape::List(_) => TType::List,
            Shape::Set(_) => TType::Set,
            Shape::Map(..) => TType::Map,
            Shape::Struct(_) => TType::Struct,
        }
    }
}

fn shape() -> impl Strategy<Value = Shape> {
    let leaf = prop_oneof![
        Just(Shape::Bool),
        Just(Shape::I8),
        Just(Shape::I16),
        Just(Shape::I32),
        Just(Shape::I64),
        Just(Shape::Double),
        Just(Shape::Binary),
        Just(Shape::Uuid),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            inner.clone().prop_map(|s| Shape::List(Box::new(s))),
            inner.clone().prop_map(|s| Shape::Set(Box::new(s))),
            (inner.clone(), inner.clone()).prop_map(|(k, v)| Shape::Map(Box::new(k), Box::new(v))),
            proptest::collection::btree_map(any::<i16>(), inner, 0..6)
                .prop_map(|fields| Shape::Struct(fields.into_iter().collect())),
        ]
    })
}

fn value_of(shape: &Shape) -> BoxedStrategy<Value> {
    match shape {
        Shape::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Shape::I8 => any::<i8>().prop_map(Value::I8).boxed(),
        Shape::I16 => any::<i16>().prop_map(Value::I16).boxed(),
        Shape::I32 => any::<i32>().prop_map(Value::I32).boxed(),
        Shape::I64 => any::<i64>().prop_map(Value::I64).boxed(),
        Shape::Double => any::<u64>().prop_map(Value::Double).boxed(),
        Shape::Binary => vec(any::<u8>(), 0..40).prop_map(Value::Binary).boxed(),
        Shape::Uuid => any::<[u8; 16]>().prop_map(Value::Uuid).boxed(),
        Shape::List(e) => {
            let t = e.ttype();
            vec(value_of(e), 0..20).prop_map(move |v| Value::List(t, v)).boxed()
        }
        Shape::Set(e) => {
            let t = e.ttype();
            vec(value_of(e), 0..4).prop_map(move |v| Value::Set(t, v)).boxed()
        }
        Shape::Map(k, v) => {
            let (kt, vt) = (k.ttype(), v.ttype());
            let entries = vec((value_of(k), value_of(v)), 0..4);
            // An empty compact map carries no types: compare empty maps without them.
            entries
                .prop_map(move |e| {
                    if e.is_empty() { Value::Map(TType::Stop, TType::Stop, e) } else { Value::Map(kt, vt, e) }
                })
                .boxed()
        }
        Shape::Struct(fields) => {
            let fields: Vec<_> =
                fields.iter().map(|(id, s)| (Just(*id), value_of(s)).prop_map(|(id, v)| (id, v))).collect();
            fields.prop_map(Value::Struct).boxed()
        }
    }
}

fn value() -> impl Strategy<Value = Value> {
    shape().prop_flat_map(|s| value_of(&Shape::Struct(vec![(1, s)])))
}

fn write<W: ProtocolWriter>(w: &mut W, v: &Value) -> Result<(), ProtocolError> {
    match v {
        Value::Bool(b) => w.write_bool(*b),
        Value::I8(x) => w.write_i8(*x),
        Value::I16(x) => w.write_i16(*x),
        Value::I32(x) => w.write_i32(*x),
        Value::I64(x) => w.write_i64(*x),
        Value::Double(bits) => w.write_double(f64::from_bits(*bits)),
        Value::Binary(b) => w.write_binary(b),
        Value::Uuid(u) => w.write_uuid(u),
        Value::List(t, elems) => {
            w.write_list_begin(*t, elems.len())?;
            elems.iter().try_for_each(|e| write(w, e))?;
            w.write_list_end()
        }
        Value::Set(t, elems) => {
            w.write_set_begin(*t, elems.len())?;
            elems.iter().try_for_each(|e| write(w, e))?;
            w.write_set_end()
        }
        Value::Map(kt, vt, entries) => {
            w.write_map_begin(*kt, *vt, entries.len())?;
            for (k, v) in entries {
                write(w, k)?;
                write(w, v)?;
            }
            w.write_map_end()
        }
        Value::Struct(fields) => {
            w.write_struct_begin("S")?;
            for (id, v) in fields {
                w.write_field_begin(ttype_of(v), *id)?;
                write(w, v)?;
                w.write_field_end()?;
            }
            w.write_field_stop()?;
            w.write_struct_end()
        }
    }
}

fn ttype_of(v: &Value) -> TType {
    match v {
        Value::Bool(_) => TType::Bool,
        Value::I8(_) => TType::I8,
        Value::I16(_) => TType::I16,
        Value::I32(_) => TType::I32,
        Value::I64(_) => TType::I64,
        Value::Double(_) => TType::Double,
        Value::Binary(_) => TType::String,
        Value::Uuid(_) => TType::Uuid,
        Value::List(..) => TType::List,
        Value::Set(..) => TType::Set,
        Value::Map(..) => TType::Map,
        Value::Struct(_) => TType::Struct,
    }
}

/// Reads any value by its wire type, as a schema-less decoder would.
fn read<R: ProtocolReader>(r: &mut R, t: TType) -> Result<Value, ProtocolError> {
    Ok(match t {
        TType::Bool => Value::Bool(r.read_bool()?),
        TType::I8 => Value::I8(r.read_i8()?),
        TType::I16 => Value::I16(r.read_i16()?),
        TType::I32 => Value::I32(r.read_i32()?),
        TType::I64 => Value::I64(r.read_i64()?),
        TType::Double => Value::Double(r.read_double()?.to_bits()),
        TType::String => Value::Binary(r.read_binary()?.to_vec()),
        TType::Uuid => Value::Uuid(r.read_uuid()?),
        TType::List => {
            let h = r.read_list_begin()?;
            let elems = (0..h.len).map(|_| read(r, h.elem)).collect::<Result<_, _>>()?;
            r.read_list_end()?;
            Value::List(h.elem, elems)
        }
        TType::Set => {
            let h = r.read_set_begin()?;
            let elems = (0..h.len).map(|_| read(r, h.elem)).collect::<Result<_, _>>()?;
            r.read_set_end()?;
            Value::Set(h.elem, elems)
        }
        TType::Map => {
            let h = r.read_map_begin()?;
            let entries =
                (0..h.len).map(|_| Ok((read(r, h.key)?, read(r, h.value)?))).collect::<Result<_, _>>()?;
            r.read_map_end()?;
            Value::Map(h.key, h.value, entries)
        }
        TType::Struct => {
            r.read_struct_begin()?;
            let mut fields = Vec::new();
            loop {
                let f = r.read_field_begin()?;
                if f.ttype == TType::Stop {
                    break;
                }
                fields.push((f.id, read(r, f.ttype)?));
                r.read_field_end()?;
            }
            r.read_struct_end()?;
            Value::Struct(fields)
        }
        TType::Stop => return Err(ProtocolError::invalid_data("Stop value")),
    })
}

fn message(header: &MessageHeader, v: &Value, compact: bool) -> Result<Bytes, ProtocolError> {
    let mut buf = BytesMut::new();
    if compact {
        let w = &mut CompactWriter::new(&mut buf);
        w.write_message_begin(header)?;
        write(w, v)?;
        w.write_message_end()?;
    } else {
        let w = &mut BinaryWriter::new(&mut buf);
        w.write_message_begin(header)?;
        write(w, v)?;
        w.write_message_end()?;
    }
    Ok(buf.freeze())
}

/// Reads a message back: its header and its body as a value.
fn read_message<R: ProtocolReader>(r: &mut R) -> Result<(MessageHeader, Value), ProtocolError> {
    let header = r.read_message_begin()?;
    let v = read(r, TType::Struct)?;
    r.read_message_end()?;
    Ok((header, v))
}

fn header() -> impl Strategy<Value = MessageHeader> {
    let kind = prop_oneof![
        Just(MessageType::Call),
        Just(MessageType::Reply),
        Just(MessageType::Exception),
        Just(MessageType::Oneway)
    ];
    ("[a-zA-Z_é]{0,12}", kind, any::<i32>())
        .prop_map(|(name, kind, seqid)| MessageHeader::new(name, kind, seqid))
}

/// Decodes a whole message; returns its header, its body and the bytes left after it.
fn decode(bytes: Bytes, compact: bool) -> Result<(MessageHeader, Value, usize), ProtocolError> {
    if compact {
        let mut r = CompactReader::new(bytes);
        read_message(&mut r).map(|(h, v)| (h, v, r.remaining()))
    } else {
        let mut r = BinaryReader::new(bytes);
        read_message(&mut r).map(|(h, v)| (h, v, r.remaining()))
    }
}

/// Skips the body of a message; returns the bytes left after it.
fn skip_body<R: ProtocolReader>(mut r: R, remaining: fn(&R) -> usize) -> Result<usize, ProtocolError> {
    r.read_message_begin()?;
    r.skip(TType::Struct)?;
    Ok(remaining(&r))
}

proptest! {
    #[test]
    fn round_trip(h in header(), v in value(), compact in any::<bool>()) {
        let bytes = message(&h, &v, compact)?;
        prop_assert_eq!(decode(bytes.clone(), compact)?, (h, v, 0));
        // skip consumes exactly what was written.
        let left = if compact {
            skip_body(CompactReader::new(bytes), CompactReader::remaining)?
        } else {
            skip_body(BinaryReader::new(bytes), BinaryReader::remaining)?
        };
        prop_assert_eq!(left, 0);
    }

    #[test]
    fn strings_round_trip(s in ".{0,40}") {
        let mut buf = BytesMut::new();
        BinaryWriter::new(&mut buf).write_string(&s)?;
        CompactWriter::new(&mut buf).write_string(&s)?;
        let split = 4 + s.len();
        let bytes = buf.freeze();
        prop_assert_eq!(BinaryReader::new(bytes.slice(..split)).read_string()?, s.clone());
        prop_assert_eq!(CompactReader::new(bytes.slice(split..)).read_string()?, s);
    }

    #[test]
    fn truncated_messages_are_incomplete(
        h in header(), v in value(), compact in any::<bool>(), cut in any::<prop::sample::Index>()
    ) {
        let bytes = message(&h, &v, compact)?;
        let got = decode(bytes.slice(..cut.index(bytes.len())), compact);
        prop_assert!(matches!(got, Err(ProtocolError::Incomplete { needed }) if needed > 0), "{:?}", got);
    }

    #[test]
    fn mutated_messages_never_panic(
        h in header(), v in value(), compact in any::<bool>(), flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)
    ) {
        let mut bytes = message(&h, &v, compact)?.to_vec();
        for (at, byte) in flips {
            let at = at.index(bytes.len());
            bytes[at] = byte;
        }
        let _ = decode(Bytes::from(bytes), compact);
    }

    #[test]
    fn arbitrary_bytes_never_panic_binary(bytes in vec(any::<u8>(), 0..512), with_header in any::<bool>()) {
        // Half the cases get a valid header, so the body's bytes reach skip.
        let mut input = if with_header { vec![0x80, 1, 0, 1, 0, 0, 0, 1, b'm', 0, 0, 0, 1] } else { Vec::new() };
        input.extend_from_slice(&bytes);
        let input = Bytes::from(input);
        let _ = skip_body(BinaryReader::new(input.clone()), BinaryReader::remaining);
        let _ = decode(input, false);
        for t in [TType::Struct, TType::List, TType::Map, TType::Set, TType::String] {
            let _ = BinaryReader::new(Bytes::from(bytes.clone())).skip(t);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_compact(bytes in vec(any::<u8>(), 0..512), with_header in any::<bool>()) {
        let mut input = if with_header { vec![0x82, 0x21, 0x01, 0x01, b'm'] } else { Vec::new() };
        input.extend_from_slice(&bytes);
        let input = Bytes::from(input);
        let _ = skip_body(CompactReader::new(input.clone()), CompactReader::remaining);
        let _ = decode(input, true);
        for t in [TType::Struct, TType::List, TType::Map, TType::Set, TType::String] {
            let _ = CompactReader::new(Bytes::from(bytes.clone())).skip(t);
        }
    }
}
