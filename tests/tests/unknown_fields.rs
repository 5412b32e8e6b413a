//! A request whose arguments carry an unknown field of every Thrift type (as a newer client would
//! send) is answered normally: the generated decoder skips what it does not know. Raw bytes over TCP,
//! in both protocols.

use bytes::BytesMut;
use probe::{CallError, Protocol};
use probe_runtime::codec::{BinaryWriter, CompactWriter, MessageHeader, MessageType, ProtocolWriter, TType};
use probe_runtime::service::{MethodResult, Outcome};
use probe_tests::idl::interop::{Base, BaseServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Pong;

impl Base for Pong {
    async fn ping(&self, msg: String) -> Result<String, CallError> {
        Ok(format!("pong: {msg}"))
    }
}

/// `ping` arguments with field 1 (`msg`) between unknown fields 100.. of every type.
fn ping_with_unknown_fields<W: ProtocolWriter>(w: &mut W) -> Result<(), probe_runtime::codec::ProtocolError> {
    w.write_message_begin(&MessageHeader::new("ping", MessageType::Call, 41))?;
    w.write_struct_begin("ping_args")?;
    let mut id = 100;
    let field = |w: &mut W, ttype: TType, id: &mut i16| {
        *id += 1;
        w.write_field_begin(ttype, *id)
    };
    field(w, TType::Bool, &mut id)?;
    w.write_bool(true)?;
    field(w, TType::I8, &mut id)?;
    w.write_i8(-8)?;
    field(w, TType::I16, &mut id)?;
    w.write_i16(1600)?;
    field(w, TType::I32, &mut id)?;
    w.write_i32(-32)?;
    w.write_field_begin(TType::String, 1)?;
    w.write_string("hello")?;
    field(w, TType::I64, &mut id)?;
    w.write_i64(i64::MAX)?;
    field(w, TType::Double, &mut id)?;
    w.write_double(2.5)?;
    field(w, TType::String, &mut id)?;
    w.write_binary(&[0, 1, 2, 255])?;
    field(w, TType::Uuid, &mut id)?;
    w.write_uuid(&[7; 16])?;
    field(w, TType::Struct, &mut id)?;
    w.write_struct_begin("Nested")?;
    w.write_field_begin(TType::List, 1)?;
    w.write_list_begin(TType::I32, 2)?;
    w.write_i32(1)?;
    w.write_i32(2)?;
    w.write_list_end()?;
    w.write_field_stop()?;
    w.write_struct_end()?;
    field(w, TType::Map, &mut id)?;
    w.write_map_begin(TType::String, TType::Set, 1)?;
    w.write_string("k")?;
    w.write_set_begin(TType::I64, 1)?;
    w.write_i64(9)?;
    w.write_set_end()?;
    w.write_map_end()?;
    field(w, TType::Set, &mut id)?;
    w.write_set_begin(TType::Bool, 2)?;
    w.write_bool(false)?;
    w.write_bool(true)?;
    w.write_set_end()?;
    field(w, TType::List, &mut id)?;
    w.write_list_begin(TType::Struct, 0)?;
    w.write_list_end()?;
    w.write_field_stop()?;
    w.write_struct_end()?;
    w.write_message_end()
}

async fn exercise(protocol: Protocol) {
    let server =
        probe::Server::builder().add_service(BaseServer::new(Pong)).start("127.0.0.1:0").await.unwrap();
    let mut message = BytesMut::new();
    match protocol {
        Protocol::Binary => ping_with_unknown_fields(&mut BinaryWriter::new(&mut message)).unwrap(),
        Protocol::Compact => ping_with_unknown_fields(&mut CompactWriter::new(&mut message)).unwrap(),
    }
    let mut socket = tokio::net::TcpStream::connect(server.local_addr()).await.unwrap();
    socket.write_all(&(message.len() as u32).to_be_bytes()).await.unwrap();
    socket.write_all(&message).await.unwrap();
    let mut len = [0; 4];
    socket.read_exact(&mut len).await.unwrap();
    let mut reply = vec![0; u32::from_be_bytes(len) as usize];
    socket.read_exact(&mut reply).await.unwrap();
    let (header, body) =
        protocol.decode_header(reply.into(), probe_runtime::codec::Limits::default()).unwrap();
    assert_eq!((&*header.name, header.kind, header.seqid), ("ping", MessageType::Reply, 41));
    let outcome: Outcome<String, probe::NoException> =
        protocol.decode_body(body, probe_runtime::codec::Limits::default()).unwrap();
    assert_eq!(outcome.into_result("ping").unwrap(), "pong: hello");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn binary_request_with_unknown_fields_of_every_type_is_answered() {
    exercise(Protocol::Binary).await;
}

#[tokio::test]
async fn compact_request_with_unknown_fields_of_every_type_is_answered() {
    exercise(Protocol::Compact).await;
}
