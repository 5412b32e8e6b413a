//! The syntax tree of one IDL file, every node with its span. Names are not resolved here.

use std::sync::Arc;

use crate::source::{FileId, Span};

/// A name as written, with its place.
#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    /// The text, possibly dotted (`other.Type`).
    pub name: Arc<str>,
    /// Where it is.
    pub span: Span,
}

/// `(key = "value", flag)` after a type or definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    /// The key.
    pub key: Ident,
    /// The value; `None` for a valueless annotation.
    pub value: Option<Arc<str>>,
}

/// The function annotation that sets a method's client timeout: `(probe.timeout_ms = "200")`.
pub const TIMEOUT_ANNOTATION: &str = "probe.timeout_ms";

/// The milliseconds of a `probe.timeout_ms` value: a whole number from 1 to a day.
pub fn timeout_ms(value: Option<&str>) -> Option<u64> {
    value?.trim().parse::<u64>().ok().filter(|ms| (1..=86_400_000).contains(ms))
}

/// One parsed file.
#[derive(Debug, Clone)]
pub struct Document {
    /// The file.
    pub file: FileId,
    /// `include "x.thrift"`, in order.
    pub includes: Vec<(Arc<str>, Span)>,
    /// `cpp_include "..."`, kept for completeness.
    pub cpp_includes: Vec<Arc<str>>,
    /// `namespace scope name`; scope `*` for all languages.
    pub namespaces: Vec<Namespace>,
    /// Definitions in file order.
    pub definitions: Vec<Definition>,
}

/// `namespace rs my.module`.
#[derive(Debug, Clone)]
pub struct Namespace {
    /// Language scope, or `*`.
    pub scope: Arc<str>,
    /// The namespace.
    pub name: Ident,
    /// Annotations after it.
    pub annotations: Vec<Annotation>,
}

/// The built-in types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BaseType {
    /// `bool`
    Bool,
    /// `i8` (and its old alias `byte`)
    I8,
    /// `i16`
    I16,
    /// `i32`
    I32,
    /// `i64`
    I64,
    /// `double`
    Double,
    /// `string` (and the old `slist`)
    String,
    /// `binary`
    Binary,
    /// `uuid` (Thrift 0.19+)
    Uuid,
}

/// A type as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Type {
    /// What kind of type.
    pub kind: TypeKind,
    /// Where it is.
    pub span: Span,
    /// Annotations on the type (`i64 (js.type = "Long")`).
    pub annotations: Vec<Annotation>,
}

/// The shapes of a written type.
#[derive(Debug, Clone, PartialEq)]
pub enum TypeKind {
    /// A built-in type.
    Base(BaseType),
    /// A reference to a typedef, enum, struct, union or exception, maybe qualified.
    Named(Ident),
    /// `list<T>`
    List(Box<Type>),
    /// `set<T>`
    Set(Box<Type>),
    /// `map<K, V>`
    Map(Box<Type>, Box<Type>),
}

/// A constant value as written.
#[derive(Debug, Clone, PartialEq)]
pub struct ConstValue {
    /// The value.
    pub kind: ConstKind,
    /// Where it is.
    pub span: Span,
}

/// The shapes of a constant value.
#[derive(Debug, Clone, PartialEq)]
pub enum ConstKind {
    /// An integer (also `true` = 1 and `false` = 0).
    Int(i64),
    /// A floating-point number.
    Double(f64),
    /// A string.
    Literal(Arc<str>),
    /// A reference to a constant or enum value.
    Ident(Ident),
    /// `[a, b]`
    List(Vec<ConstValue>),
    /// `{k: v}`: for maps and struct literals.
    Map(Vec<(ConstValue, ConstValue)>),
}

/// `required`, `optional` or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requiredness {
    /// Neither: written when set, accepted when absent.
    Default,
    /// `required`
    Required,
    /// `optional`
    Optional,
}

/// A field of a struct, union, exception, argument list or throws list.
#[derive(Debug, Clone)]
pub struct Field {
    /// Doc comment.
    pub doc: Option<Arc<str>>,
    /// The field id: as written, or assigned (negative, counting down from -1) as Thrift does.
    pub id: i32,
    /// Whether the id was assigned rather than written.
    pub id_assigned: bool,
    /// Requiredness.
    pub requiredness: Requiredness,
    /// The type.
    pub ty: Type,
    /// `&`: a reference (recursive) field.
    pub reference: bool,
    /// The name.
    pub name: Ident,
    /// The default value.
    pub default: Option<ConstValue>,
    /// Annotations.
    pub annotations: Vec<Annotation>,
    /// The whole field.
    pub span: Span,
}

/// Which kind of struct-like definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StructKind {
    /// `struct`
    Struct,
    /// `union`
    Union,
    /// `exception`
    Exception,
}

/// A top-level definition.
#[derive(Debug, Clone)]
pub enum Definition {
    /// `const T name = value`
    Const(Const),
    /// `typedef T name`
    Typedef(Typedef),
    /// `enum`
    Enum(Enum),
    /// `struct`, `union`, `exception`
    Struct(Struct),
    /// `service`
    Service(Service),
}

impl Definition {
    /// The defined name.
    pub fn name(&self) -> &Ident {
        match self {
            Definition::Const(d) => &d.name,
            Definition::Typedef(d) => &d.name,
            Definition::Enum(d) => &d.name,
            Definition::Struct(d) => &d.name,
            Definition::Service(d) => &d.name,
        }
    }
}

/// `const T name = value`.
#[derive(Debug, Clone)]
pub struct Const {
    /// Doc comment.
    pub doc: Option<Arc<str>>,
    /// Declared type.
    pub ty: Type,
    /// Name.
    pub name: Ident,
    /// Value.
    pub value: ConstValue,
}

/// `typedef T name`.
#[derive(Debug, Clone)]
pub struct Typedef {
    /// Doc comment.
    pub doc: Option<Arc<str>>,
    /// The aliased type.
    pub ty: Type,
    /// The new name.
    pub name: Ident,
    /// Annotations.
    pub annotations: Vec<Annotation>,
}

/// `enum`.
#[derive(Debug, Clone)]
pub struct Enum {
    /// Doc comment.
    pub doc: Option<Arc<str>>,
    /// Name.
    pub name: Ident,
    /// Values in order.
    pub values: Vec<EnumValue>,
    /// Annotations.
    pub annotations: Vec<Annotation>,
}

/// One enum value.
#[derive(Debug, Clone)]
pub struct EnumValue {
    /// Doc comment.
    pub doc: Option<Arc<str>>,
    /// Name.
    pub name: Ident,
    /// Explicit value, if written.
    pub value: Option<(i64, Span)>,
    /// Annotations.
    pub annotations: Vec<Annotation>,
}

/// `struct`, `union` or `exception`.
#[derive(Debug, Clone)]
pub struct Struct {
    /// Doc comment.
    pub doc: Option<Arc<str>>,
    /// Which kind.
    pub kind: StructKind,
    /// Name.
    pub name: Ident,
    /// Fields in order.
    pub fields: Vec<Field>,
    /// Annotations.
    pub annotations: Vec<Annotation>,
}

/// `service`.
#[derive(Debug, Clone)]
pub struct Service {
    /// Doc comment.
    pub doc: Option<Arc<str>>,
    /// Name.
    pub name: Ident,
    /// `extends Base`.
    pub extends: Option<Ident>,
    /// Functions in order.
    pub functions: Vec<Function>,
    /// Annotations.
    pub annotations: Vec<Annotation>,
}

/// A service function.
#[derive(Debug, Clone)]
pub struct Function {
    /// Doc comment.
    pub doc: Option<Arc<str>>,
    /// `oneway` (or the old `async`).
    pub oneway: bool,
    /// Return type; `None` for `void`.
    pub returns: Option<Type>,
    /// Name.
    pub name: Ident,
    /// Arguments.
    pub args: Vec<Field>,
    /// Declared exceptions.
    pub throws: Vec<Field>,
    /// Annotations.
    pub annotations: Vec<Annotation>,
}
