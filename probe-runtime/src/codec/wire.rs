//! [`Wire`]: a Rust type with one Thrift wire form. Generated code writes and reads every field
//! through it, so container loops live here once instead of in every generated struct.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use bytes::Bytes;

use super::collections::{ListMap, ListSet};
use super::{ProtocolError, ProtocolReader, ProtocolWriter, TType};

/// A value with a fixed Thrift type: its tag, and how to write and read it.
pub trait Wire: Sized {
    /// The wire type tag (`String` for both `string` and `binary`).
    const TTYPE: TType;
    /// Writes the value (without a field header).
    fn write<W: ProtocolWriter>(&self, w: &mut W) -> Result<(), ProtocolError>;
    /// Reads a value.
    fn read<R: ProtocolReader>(r: &mut R) -> Result<Self, ProtocolError>;
}

macro_rules! scalar {
    ($ty:ty, $tag:ident, $write:ident, $read:ident, |$v:ident| $arg:expr) => {
        impl Wire for $ty {
            const TTYPE: TType = TType::$tag;
            #[inline]
            fn write<W: ProtocolWriter>(&self, w: &mut W) -> Result<(), ProtocolError> {
                let $v = self;
                w.$write($arg)
            }
            #[inline]
            fn read<R: ProtocolReader>(r: &mut R) -> Result<Self, ProtocolError> {
                r.$read()
            }
        }
    };
}

scalar!(bool, Bool, write_bool, read_bool, |v| *v);
scalar!(i8, I8, write_i8, read_i8, |v| *v);
scalar!(i16, I16, write_i16, read_i16, |v| *v);
scalar!(i32, I32, write_i32, read_i32, |v| *v);
scalar!(i64, I64, write_i64, read_i64, |v| *v);
scalar!(f64, Double, write_double, read_double, |v| *v);
scalar!(String, String, write_string, read_string, |v| v);
scalar!(Bytes, String, write_binary, read_binary, |v| v);
scalar!([u8; 16], Uuid, write_uuid, read_uuid, |v| v);

impl<T: Wire> Wire for Box<T> {
    const TTYPE: TType = T::TTYPE;
    #[inline]
    fn write<W: ProtocolWriter>(&self, w: &mut W) -> Result<(), ProtocolError> {
        (**self).write(w)
    }
    #[inline]
    fn read<R: ProtocolReader>(r: &mut R) -> Result<Self, ProtocolError> {
        T::read(r).map(Box::new)
    }
}

fn check(what: &'static str, found: TType, expected: TType, len: usize) -> Result<(), ProtocolError> {
    if len == 0 || found == expected {
        Ok(())
    } else {
        Err(ProtocolError::WrongElementType { what, found, expected })
    }
}

/// Writes `len` elements as a list (`set == false`) or set.
fn write_elems<'a, W: ProtocolWriter, T: Wire + 'a>(
    w: &mut W,
    set: bool,
    len: usize,
    items: impl Iterator<Item = &'a T>,
) -> Result<(), ProtocolError> {
    if set {
        w.write_set_begin(T::TTYPE, len)?
    } else {
        w.write_list_begin(T::TTYPE, len)?
    }
    for item in items {
        item.write(w)?;
    }
    if set { w.write_set_end() } else { w.write_list_end() }
}

/// Reads a list or set, calling `push` for each element.
fn read_elems<R: ProtocolReader, T: Wire>(
    r: &mut R,
    set: bool,
    mut push: impl FnMut(T),
) -> Result<usize, ProtocolError> {
    let header = if set { r.read_set_begin()? } else { r.read_list_begin()? };
    check("list or set element", header.elem, T::TTYPE, header.len)?;
    for _ in 0..header.len {
        push(T::read(r)?);
    }
    if set {
        r.read_set_end()?
    } else {
        r.read_list_end()?
    }
    Ok(header.capacity_hint())
}

fn write_pairs<'a, W: ProtocolWriter, K: Wire + 'a, V: Wire + 'a>(
    w: &mut W,
    len: usize,
    pairs: impl Iterator<Item = (&'a K, &'a V)>,
) -> Result<(), ProtocolError> {
    w.write_map_begin(K::TTYPE, V::TTYPE, len)?;
    for (k, v) in pairs {
        k.write(w)?;
        v.write(w)?;
    }
    w.write_map_end()
}

fn read_pairs<R: ProtocolReader, K: Wire, V: Wire, C>(
    r: &mut R,
    make: impl FnOnce(usize) -> C,
    mut push: impl FnMut(&mut C, K, V),
) -> Result<C, ProtocolError> {
    let header = r.read_map_begin()?;
    check("map key", header.key, K::TTYPE, header.len)?;
    check("map value", header.value, V::TTYPE, header.len)?;
    let mut out = make(header.capacity_hint());
    for _ in 0..header.len {
        let k = K::read(r)?;
        let v = V::read(r)?;
        push(&mut out, k, v);
    }
    r.read_map_end()?;
    Ok(out)
}

impl<T: Wire> Wire for Vec<T> {
    const TTYPE: TType = TType::List;
    fn write<W: ProtocolWriter>(&self, w: &mut W) -> Result<(), ProtocolError> {
        write_elems(w, false, self.len(), self.iter())
    }
    fn read<R: ProtocolReader>(r: &mut R) -> Result<Self, ProtocolError> {
        let mut out = Vec::new();
        let hint = read_elems(r, false, |v| out.push(v))?;
        out.shrink_to(hint);
        Ok(out)
    }
}

impl<T: Wire + Hash + Eq> Wire for HashSet<T> {
    const TTYPE: TType = TType::Set;
    fn write<W: ProtocolWriter>(&self, w: &mut W) -> Result<(), ProtocolError> {
        write_elems(w, true, self.len(), self.iter())
    }
    fn read<R: ProtocolReader>(r: &mut R) -> Result<Self, ProtocolError> {
        let mut out = HashSet::new();
        read_elems(r, true, |v| {
            out.insert(v);
        })?;
        Ok(out)
    }
}

impl<T: Wire> Wire for ListSet<T> {
    const TTYPE: TType = TType::Set;
    fn write<W: ProtocolWriter>(&self, w: &mut W) -> Result<(), ProtocolError> {
        write_elems(w, true, self.0.len(), self.0.iter())
    }
    fn read<R: ProtocolReader>(r: &mut R) -> Result<Self, ProtocolError> {
        let mut out = Vec::new();
        read_elems(r, true, |v| out.push(v))?;
        Ok(ListSet(out))
    }
}

impl<K: Wire + Hash + Eq, V: Wire> Wire for HashMap<K, V> {
    const TTYPE: TType = TType::Map;
    fn write<W: ProtocolWriter>(&self, w: &mut W) -> Result<(), ProtocolError> {
        write_pairs(w, self.len(), self.iter())
    }
    fn read<R: ProtocolReader>(r: &mut R) -> Result<Self, ProtocolError> {
        read_pairs(r, HashMap::with_capacity, |m, k, v| {
            m.insert(k, v);
        })
    }
}

impl<K: Wire, V: Wire> Wire for ListMap<K, V> {
    const TTYPE: TType = TType::Map;
    fn write<W: ProtocolWriter>(&self, w: &mut W) -> Result<(), ProtocolError> {
        write_pairs(w, self.0.len(), self.0.iter().map(|(k, v)| (k, v)))
    }
    fn read<R: ProtocolReader>(r: &mut R) -> Result<Self, ProtocolError> {
        read_pairs(r, |n| ListMap(Vec::with_capacity(n)), |m, k, v| m.0.push((k, v)))
    }
}

/// Writes one struct field: its header, the value, the field end.
#[inline]
pub fn write_field<W: ProtocolWriter, T: Wire>(w: &mut W, id: i16, value: &T) -> Result<(), ProtocolError> {
    w.write_field_begin(T::TTYPE, id)?;
    value.write(w)?;
    w.write_field_end()
}

/// Reads a struct: calls `field` with each field's id and type; a field it does not take (returns
/// `false`) is skipped.
pub fn read_fields<R: ProtocolReader>(
    r: &mut R,
    mut field: impl FnMut(&mut R, i16, TType) -> Result<bool, ProtocolError>,
) -> Result<(), ProtocolError> {
    r.read_struct_begin()?;
    loop {
        let header = r.read_field_begin()?;
        if header.ttype == TType::Stop {
            break;
        }
        if !field(r, header.id, header.ttype)? {
            r.skip(header.ttype)?;
        }
        r.read_field_end()?;
    }
    r.read_struct_end()
}

/// The value of a required field, or the error naming the field.
#[inline]
pub fn required<T>(value: Option<T>, strukt: &'static str, field: &'static str) -> Result<T, ProtocolError> {
    value.ok_or(ProtocolError::MissingRequiredField { strukt, field })
}

/// `impl Wire` for a generated struct, union or exception: a Thrift struct on the wire, through its
/// `Encode` and `Decode`.
#[macro_export]
#[doc(hidden)]
macro_rules! struct_wire {
    ($ty:ty) => {
        impl $crate::codec::Wire for $ty {
            const TTYPE: $crate::codec::TType = $crate::codec::TType::Struct;
            #[inline]
            fn write<W: $crate::codec::ProtocolWriter>(
                &self,
                w: &mut W,
            ) -> ::core::result::Result<(), $crate::codec::ProtocolError> {
                $crate::codec::Encode::encode(self, w)
            }
            #[inline]
            fn read<R: $crate::codec::ProtocolReader>(
                r: &mut R,
            ) -> ::core::result::Result<Self, $crate::codec::ProtocolError> {
                $crate::codec::Decode::decode(r)
            }
        }
    };
}
