//! The resolved program: every file with its definitions, and every written type turned into a
//! [`Ty`] that points at the definition it names. Code generation reads only this.

use std::collections::HashMap;
use std::sync::Arc;

use crate::ast::{BaseType, Definition, Document};
use crate::source::FileId;

/// A definition: file index in [`Program::files`] and index in that file's definitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DefId {
    /// Index of the file in [`Program::files`].
    pub file: usize,
    /// Index of the definition in the file.
    pub index: usize,
}

/// A resolved type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Ty {
    /// A built-in type.
    Base(BaseType),
    /// `list<T>`
    List(Box<Ty>),
    /// `set<T>`
    Set(Box<Ty>),
    /// `map<K, V>`
    Map(Box<Ty>, Box<Ty>),
    /// An enum.
    Enum(DefId),
    /// A struct, union or exception.
    Struct(DefId),
    /// A typedef, kept so generated code can use the alias name.
    Alias(DefId),
}

/// A constant's value after resolution: references replaced by what they name.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Integers, bools (0/1) and enum values.
    Int(i64),
    /// Doubles.
    Double(f64),
    /// Strings and binaries.
    Str(Arc<str>),
    /// Lists and sets.
    List(Vec<Value>),
    /// Maps.
    Map(Vec<(Value, Value)>),
    /// A struct literal: field index and value.
    Struct(Vec<(usize, Value)>),
}

/// One file of the program.
#[derive(Debug)]
pub struct File {
    /// Where its text is.
    pub id: FileId,
    /// The name used to qualify its definitions elsewhere: the file name without `.thrift`.
    pub stem: String,
    /// The syntax tree.
    pub doc: Document,
    /// Included files by stem.
    pub includes: HashMap<String, usize>,
    /// Stems of includes that failed to load; names qualified with them are not reported again.
    pub failed_includes: Vec<String>,
    /// Stems of includes that were not found; names qualified with them are unknown.
    pub missing_includes: Vec<String>,
    /// Files included more than once (file index, span of the repeated include).
    pub repeated_includes: Vec<(usize, crate::source::Span)>,
    /// Types and services by name.
    pub names: HashMap<Arc<str>, usize>,
    /// Constants by name (a constant may share its name with a type, as in Apache Thrift).
    pub const_names: HashMap<Arc<str>, usize>,
    /// Resolved types, keyed by the span start of the written type.
    pub types: HashMap<u32, Ty>,
    /// Values of defaults and constants, keyed by the span start of the written value.
    pub values: HashMap<u32, Value>,
    /// Enum values: (enum index, value name) -> value.
    pub enum_values: HashMap<(usize, Arc<str>), i64>,
}

impl File {
    /// A definition by index.
    pub fn def(&self, index: usize) -> &Definition {
        &self.doc.definitions[index]
    }
}

/// Every file reached from the roots, includes before includers.
#[derive(Debug)]
pub struct Program {
    /// The files.
    pub files: Vec<File>,
    /// Indexes of the files the user asked for.
    pub roots: Vec<usize>,
}

impl Program {
    /// The definition a [`DefId`] names.
    pub fn def(&self, id: DefId) -> &Definition {
        self.files[id.file].def(id.index)
    }

    /// Follows typedefs to the type underneath.
    pub fn unalias<'a>(&'a self, mut ty: &'a Ty) -> &'a Ty {
        for _ in 0..64 {
            let Ty::Alias(id) = ty else { return ty };
            let Definition::Typedef(t) = self.def(*id) else { return ty };
            match self.files[id.file].types.get(&t.ty.span.start) {
                Some(next) => ty = next,
                None => return ty,
            }
        }
        ty
    }
}
