//! What a method returns on the wire: its result struct (`success` in field 0, or one declared
//! exception), generic over the value and the exceptions so generated code need not spell it out.

use std::future::Future;

use crate::codec::{Decode, Encode, ProtocolError, ProtocolReader, ProtocolWriter, TType, Wire, read_fields};
use crate::error::{CallError, Error, NoException};

use super::{Reply, Request};

/// A method's declared exceptions as one enum (generated for every method with `throws`).
pub trait Exceptions: Sized {
    /// Writes the exception as its field of the result struct (header, value, end).
    fn write<W: ProtocolWriter>(&self, w: &mut W) -> Result<(), ProtocolError>;
    /// Reads field `id` of type `ttype` if it is one of the exceptions; `None` otherwise (the
    /// caller skips it).
    fn read<R: ProtocolReader>(id: i16, ttype: TType, r: &mut R) -> Result<Option<Self>, ProtocolError>;
}

impl Exceptions for NoException {
    fn write<W: ProtocolWriter>(&self, _: &mut W) -> Result<(), ProtocolError> {
        match *self {}
    }
    fn read<R: ProtocolReader>(_: i16, _: TType, _: &mut R) -> Result<Option<Self>, ProtocolError> {
        Ok(None)
    }
}

/// The result struct of a method that returns a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<T, E> {
    /// Field 0: the value.
    Ok(T),
    /// A declared exception.
    Err(E),
    /// Neither was on the wire.
    Missing,
}

/// The result struct of a `void` method.
#[derive(Debug, Clone, PartialEq)]
pub enum VoidOutcome<E> {
    /// No exception.
    Ok,
    /// A declared exception.
    Err(E),
}

/// What both result structs offer to the generic server and client code.
pub trait MethodResult: Encode + Decode {
    /// The method's value (`()` for void).
    type Value;
    /// The method's declared exceptions.
    type Exception;
    /// The result struct of a handler's answer.
    fn from_result(result: Result<Self::Value, Self::Exception>) -> Self;
    /// The caller's view; `method` names a missing result.
    fn into_result(self, method: &str) -> Result<Self::Value, CallError<Self::Exception>>;
    /// The value of a call that got no reply (oneway), if the method may have none.
    fn without_reply() -> Option<Self::Value>;
}

impl<T: Wire, E: Exceptions> Encode for Outcome<T, E> {
    fn encode<W: ProtocolWriter>(&self, w: &mut W) -> Result<(), ProtocolError> {
        w.write_struct_begin("result")?;
        match self {
            Outcome::Ok(v) => {
                w.write_field_begin(T::TTYPE, 0)?;
                v.write(w)?;
                w.write_field_end()?;
            }
            Outcome::Err(e) => e.write(w)?,
            Outcome::Missing => {}
        }
        w.write_field_stop()?;
        w.write_struct_end()
    }
}

impl<T: Wire, E: Exceptions> Decode for Outcome<T, E> {
    fn decode<R: ProtocolReader>(r: &mut R) -> Result<Self, ProtocolError> {
        let mut out = Outcome::Missing;
        read_fields(r, |r, id, ttype| {
            if id == 0 && ttype == T::TTYPE {
                out = Outcome::Ok(T::read(r)?);
                return Ok(true);
            }
            Ok(match E::read(id, ttype, r)? {
                Some(e) => {
                    out = Outcome::Err(e);
                    true
                }
                None => false,
            })
        })?;
        Ok(out)
    }
}

impl<T: Wire, E: Exceptions> MethodResult for Outcome<T, E> {
    type Value = T;
    type Exception = E;
    fn from_result(result: Result<T, E>) -> Self {
        result.map_or_else(Outcome::Err, Outcome::Ok)
    }
    fn into_result(self, method: &str) -> Result<T, CallError<E>> {
        match self {
            Outcome::Ok(v) => Ok(v),
            Outcome::Err(e) => Err(CallError::Exception(e)),
            Outcome::Missing => Err(CallError::Rpc(Error::MissingResult { method: method.to_owned() })),
        }
    }
    fn without_reply() -> Option<T> {
        None
    }
}

impl<E: Exceptions> Encode for VoidOutcome<E> {
    fn encode<W: ProtocolWriter>(&self, w: &mut W) -> Result<(), ProtocolError> {
        w.write_struct_begin("result")?;
        if let VoidOutcome::Err(e) = self {
            e.write(w)?;
        }
        w.write_field_stop()?;
        w.write_struct_end()
    }
}

impl<E: Exceptions> Decode for VoidOutcome<E> {
    fn decode<R: ProtocolReader>(r: &mut R) -> Result<Self, ProtocolError> {
        let mut out = VoidOutcome::Ok;
        read_fields(r, |r, id, ttype| {
            Ok(match E::read(id, ttype, r)? {
                Some(e) => {
                    out = VoidOutcome::Err(e);
                    true
                }
                None => false,
            })
        })?;
        Ok(out)
    }
}

impl<E: Exceptions> MethodResult for VoidOutcome<E> {
    type Value = ();
    type Exception = E;
    fn from_result(result: Result<(), E>) -> Self {
        result.map_or_else(VoidOutcome::Err, |()| VoidOutcome::Ok)
    }
    fn into_result(self, _: &str) -> Result<(), CallError<E>> {
        match self {
            VoidOutcome::Ok => Ok(()),
            VoidOutcome::Err(e) => Err(CallError::Exception(e)),
        }
    }
    fn without_reply() -> Option<()> {
        Some(())
    }
}

/// Serves one call: decodes the arguments `A`, runs `handler`, and encodes its answer as `M`.
/// Declared exceptions go into the result struct; other failures become `TApplicationException`.
pub async fn serve<A, M, F>(request: &Request, handler: impl FnOnce(A) -> F) -> Reply
where
    A: Decode,
    M: MethodResult,
    F: Future<Output = Result<M::Value, CallError<M::Exception>>>,
{
    let args = match request.decode_args::<A>() {
        Ok(args) => args,
        Err(e) => return request.protocol_error(&e),
    };
    match handler(args).await {
        Ok(v) => request.reply(&M::from_result(Ok(v))),
        Err(CallError::Exception(e)) => request.reply(&M::from_result(Err(e))),
        Err(CallError::Rpc(e)) => request.internal_error(&e),
    }
}
