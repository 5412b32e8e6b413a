//! Test fixtures shared by the codec's unit tests.

use super::{ProtocolError, ProtocolWriter, TType};

/// Writes a struct holding one field of every type, nested containers included.
pub(crate) fn write_every_type<W: ProtocolWriter>(w: &mut W) -> Result<(), ProtocolError> {
    w.write_struct_begin("Everything")?;
    w.write_field_begin(TType::Bool, 1)?;
    w.write_bool(true)?;
    w.write_field_begin(TType::I8, 2)?;
    w.write_i8(-7)?;
    w.write_field_begin(TType::I16, 3)?;
    w.write_i16(-300)?;
    w.write_field_begin(TType::I32, 4)?;
    w.write_i32(1 << 20)?;
    w.write_field_begin(TType::I64, 40)?;
    w.write_i64(i64::MIN)?;
    w.write_field_begin(TType::Double, 5)?;
    w.write_double(2.5)?;
    w.write_field_begin(TType::String, 6)?;
    w.write_string("héllo")?;
    w.write_field_begin(TType::Uuid, 7)?;
    w.write_uuid(&[9; 16])?;
    w.write_field_begin(TType::List, 8)?;
    w.write_list_begin(TType::Bool, 3)?;
    for b in [true, false, true] {
        w.write_bool(b)?;
    }
    w.write_list_end()?;
    w.write_field_begin(TType::Set, 9)?;
    w.write_set_begin(TType::String, 20)?;
    for _ in 0..20 {
        w.write_binary(b"xy")?;
    }
    w.write_set_end()?;
    w.write_field_begin(TType::Map, 10)?;
    w.write_map_begin(TType::I32, TType::Struct, 1)?;
    w.write_i32(1)?;
    w.write_struct_begin("Inner")?;
    w.write_field_begin(TType::Map, 1)?;
    w.write_map_begin(TType::String, TType::List, 0)?;
    w.write_map_end()?;
    w.write_field_begin(TType::Bool, 2)?;
    w.write_bool(false)?;
    w.write_field_stop()?;
    w.write_struct_end()?;
    w.write_map_end()?;
    w.write_field_stop()?;
    w.write_struct_end()?;
    Ok(())
}
