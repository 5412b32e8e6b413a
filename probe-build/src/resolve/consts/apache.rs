//! Apache Thrift 0.17's rules for constant values, step by step (`t_scope::resolve_const_value`, then
//! `validate_const_rec` in its `main.cc`, then what its code generators accept):
//!
//! - a reference is looked up only where the declared type is a base type (or an enum, which takes a
//!   qualified member name); it copies the referenced value when that constant is a number, string,
//!   list or map, and stays an unresolved name otherwise (set, enum and struct constants);
//! - an integer for an enum becomes the member with that value;
//! - the check then wants a string for strings, an integer for bools and integers, either for doubles,
//!   a qualified member for enums and a map with known field names for structs.

use std::sync::Arc;

use crate::ast::{BaseType, ConstKind, ConstValue, Definition, Ident};
use crate::diagnostic::Diagnostic;
use crate::ir::{DefId, Ty};
use crate::resolve::scope::{ValueLookup, lookup_value};
use crate::source::Span;

use super::Checker;

/// Marker of probe's messages for checks Apache Thrift 0.17 does not make on typedef'd types.
pub(super) const UNCHECKED_TYPEDEF: &str = "(Apache Thrift 0.17 does not check values of typedef'd types)";
/// Marker for a container written with the other brackets, which Apache reads as empty.
pub(super) const READ_AS_EMPTY: &str = "(Apache Thrift 0.17 reads it as an empty container)";
/// Marker for integers that do not fit their type.
pub(super) const UNCHECKED_RANGE: &str = "(Apache Thrift 0.17 does not check integer ranges)";
/// Marker for a non-integer given for an enum that has a member 0.
pub(super) const READ_AS_ZERO: &str = "(Apache Thrift 0.17 reads it as 0)";

/// A value after resolution.
#[derive(Debug, Clone)]
pub(crate) enum Cv {
    Int(i64),
    Double(f64),
    Str(Arc<str>),
    List(Vec<Node>),
    Map(Vec<(Node, Node)>),
    /// A name left unresolved; `enum_id` is set where the declared type is that enum.
    Ident {
        name: Arc<str>,
        enum_id: Option<DefId>,
    },
}

/// A resolved value with the span it was written at.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) cv: Cv,
    pub(crate) span: Span,
}

pub(super) fn is_exception(def: &Definition) -> bool {
    matches!(def, Definition::Struct(s) if s.kind == crate::ast::StructKind::Exception)
}

/// Whether two written values are the same to Apache's map (its `t_const_value::operator<`).
fn same(a: &ConstKind, b: &ConstKind) -> bool {
    match (a, b) {
        (ConstKind::Int(x), ConstKind::Int(y)) => x == y,
        (ConstKind::Double(x), ConstKind::Double(y)) => x == y,
        (ConstKind::Literal(x), ConstKind::Literal(y)) => x == y,
        (ConstKind::Ident(x), ConstKind::Ident(y)) => x.name == y.name,
        (ConstKind::List(x), ConstKind::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(&a.kind, &b.kind))
        }
        (ConstKind::Map(x), ConstKind::Map(y)) => {
            let (x, y) = (dedup(x), dedup(y));
            x.len() == y.len()
                && x.iter()
                    .zip(&y)
                    .all(|((k1, v1), (k2, v2))| same(&k1.kind, &k2.kind) && same(&v1.kind, &v2.kind))
        }
        _ => false,
    }
}

/// A map literal's entries as Apache keeps them: one per key, the first key with the last value
/// (earlier values of a repeated key are dropped unchecked).
pub(super) fn dedup(entries: &[(ConstValue, ConstValue)]) -> Vec<(&ConstValue, &ConstValue)> {
    let mut out: Vec<(&ConstValue, &ConstValue)> = Vec::new();
    for (k, v) in entries {
        match out.iter_mut().find(|(seen, _)| same(&seen.kind, &k.kind)) {
            Some(entry) => entry.1 = v,
            None => out.push((k, v)),
        }
    }
    out
}

fn raw(value: &ConstValue) -> Node {
    let cv = match &value.kind {
        ConstKind::Int(v) => Cv::Int(*v),
        ConstKind::Double(v) => Cv::Double(*v),
        ConstKind::Literal(s) => Cv::Str(s.clone()),
        ConstKind::Ident(i) => Cv::Ident { name: i.name.clone(), enum_id: None },
        ConstKind::List(items) => Cv::List(items.iter().map(raw).collect()),
        ConstKind::Map(entries) => {
            Cv::Map(dedup(entries).into_iter().map(|(k, v)| (raw(k), raw(v))).collect())
        }
    };
    Node { cv, span: value.span }
}

impl Checker<'_, '_> {
    pub(super) fn error(&mut self, span: Span, message: String) {
        self.errors.push(Diagnostic::new(span, message));
    }

    /// Step 1: references and enum integers resolved against the unaliased declared type.
    pub(super) fn resolve(&mut self, ty: &Ty, value: &ConstValue) -> Option<Node> {
        if self.depth > 64 {
            self.error(value.span, "constant nested too deeply".into());
            return None;
        }
        if let Some(later) = self.defined_later(ty) {
            let message =
                format!("type `{later}` is used in a value before it is defined; move its definition up");
            self.error(value.span, message);
            return None;
        }
        self.depth += 1;
        let result = self.resolve_inner(ty, value);
        self.depth -= 1;
        result
    }

    fn resolve_inner(&mut self, ty: &Ty, value: &ConstValue) -> Option<Node> {
        let program = self.program;
        let t = program.unalias(ty);
        let cv = match (t, &value.kind) {
            (Ty::Map(k, v), ConstKind::Map(entries)) => {
                let mut out = Vec::new();
                for (key, val) in dedup(entries) {
                    out.push((self.resolve(k, key)?, self.resolve(v, val)?));
                }
                Cv::Map(out)
            }
            (Ty::List(e) | Ty::Set(e), ConstKind::List(items)) => {
                Cv::List(items.iter().map(|i| self.resolve(e, i)).collect::<Option<_>>()?)
            }
            // Apache resolves nothing inside an exception literal (its `is_struct()` is false for
            // exceptions), so enum values and references there stay unresolved names.
            (Ty::Struct(id), ConstKind::Map(entries)) if !is_exception(program.def(*id)) => {
                let Definition::Struct(s) = program.def(*id) else { return None };
                let mut out = Vec::new();
                for (key, val) in dedup(entries) {
                    let ConstKind::Literal(field_name) = &key.kind else {
                        self.error(key.span, "struct literal keys must be quoted field names".into());
                        return None;
                    };
                    let Some(field) = s.fields.iter().rev().find(|f| f.name.name == *field_name) else {
                        self.error(key.span, format!("`{}` has no field `{field_name}`", s.name.name));
                        return None;
                    };
                    let field_ty = program.files[id.file].types.get(&field.ty.span.start)?;
                    out.push((raw(key), self.resolve(field_ty, val)?));
                }
                Cv::Map(out)
            }
            (Ty::Map(..) | Ty::List(_) | Ty::Set(_) | Ty::Struct(_), _) => return Some(raw(value)),
            (Ty::Enum(id), ConstKind::Ident(i)) => Cv::Ident { name: i.name.clone(), enum_id: Some(*id) },
            (_, ConstKind::Ident(i)) => self.reference(i, value.span)?,
            (Ty::Enum(id), kind) => {
                let v = if let ConstKind::Int(v) = kind { *v } else { 0 };
                let enum_name = program.def(*id).name().name.clone();
                let member = program.files[id.file]
                    .enum_values
                    .iter()
                    .filter(|((e, _), x)| *e == id.index && **x == v)
                    .map(|((_, n), _)| n.clone())
                    .min();
                match (member, kind) {
                    (Some(m), ConstKind::Int(_)) => {
                        Cv::Ident { name: format!("{enum_name}.{m}").into(), enum_id: Some(*id) }
                    }
                    (Some(_), _) => {
                        let m =
                            format!("type mismatch: enum `{enum_name}` wants a member name {READ_AS_ZERO}");
                        self.error(value.span, m);
                        return None;
                    }
                    (None, _) => {
                        self.error(value.span, format!("enum `{enum_name}` has no value {v}"));
                        return None;
                    }
                }
            }
            _ => return Some(raw(value)),
        };
        Some(Node { cv, span: value.span })
    }

    /// A name where a base type is declared: a constant or enum value defined before this point.
    fn reference(&mut self, ident: &Ident, span: Span) -> Option<Cv> {
        let program = self.program;
        let found = match lookup_value(program, self.file, &ident.name) {
            ValueLookup::Const(id) if !(id.file == self.file && id.index >= self.current) => Some(id),
            ValueLookup::EnumValue { enum_id, value }
                if !(enum_id.file == self.file && enum_id.index > self.current) =>
            {
                return Some(Cv::Int(value));
            }
            _ => None,
        };
        let Some(id) = found else {
            let unqualified = !ident.name.contains('.')
                && program.files[self.file].enum_values.keys().any(|(_, n)| **n == *ident.name);
            let message = if unqualified {
                format!("enum value `{0}` must be qualified with its enum: `EnumName.{0}`", ident.name)
            } else {
                format!("no enum value or constant named `{}` is defined before this point", ident.name)
            };
            self.error(span, message);
            return None;
        };
        let Definition::Const(c) = program.def(id) else { return None };
        // A constant with errors of its own has been reported already.
        let node = self.table.get(&(id.file, c.value.span.start))?.clone();
        let const_ty = program.files[id.file].types.get(&c.ty.span.start)?;
        Some(match program.unalias(const_ty) {
            Ty::Base(BaseType::String | BaseType::Binary | BaseType::Uuid) => {
                Cv::Str(if let Cv::Str(s) = &node.cv { s.clone() } else { "".into() })
            }
            Ty::Base(BaseType::Double) => match node.cv {
                Cv::Double(d) => Cv::Double(d),
                Cv::Int(v) => Cv::Double(v as f64),
                _ => Cv::Double(0.0),
            },
            Ty::Base(_) => match &node.cv {
                Cv::Int(v) => Cv::Int(*v),
                Cv::Ident { enum_id: Some(e), .. } => Cv::Int(self.enum_member(*e, &node)?),
                Cv::Ident { name, .. } => {
                    self.error(
                        span,
                        format!("`{}` refers to `{name}`, which is not a value here", ident.name),
                    );
                    return None;
                }
                _ => Cv::Int(0),
            },
            Ty::Map(..) | Ty::List(_) => node.cv,
            _ => Cv::Ident { name: ident.name.clone(), enum_id: None },
        })
    }
}
