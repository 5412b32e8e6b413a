//! The Thrift binary protocol.
//!
//! Big-endian fixed-width integers; `i32` lengths before strings and containers; a field header is
//! its type byte and `i16` id. Messages start with the strict header `0x8001_0000 | type`, name,
//! seqid; the reader also accepts the old non-strict header (name, type byte, seqid) that some
//! older clients still send.

mod reader;
mod writer;

#[cfg(test)]
mod tests;

pub use reader::BinaryReader;
pub use writer::BinaryWriter;

use super::types::TType;

/// The strict message header's version word, before the message type is or-ed in.
pub(super) const VERSION_1: u32 = 0x8001_0000;
/// The bits of the first word that hold the version.
pub(super) const VERSION_MASK: u32 = 0xffff_0000;

/// The fewest bytes a value of type `t` takes in the binary protocol.
#[inline]
pub(super) const fn min_size(t: TType) -> usize {
    match t {
        TType::Stop | TType::Bool | TType::I8 | TType::Struct => 1,
        TType::I16 => 2,
        TType::I32 | TType::String => 4,
        TType::I64 | TType::Double => 8,
        TType::List | TType::Set => 5,
        TType::Map => 6,
        TType::Uuid => 16,
    }
}
