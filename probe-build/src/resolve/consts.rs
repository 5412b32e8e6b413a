//! Constant values and field defaults, checked in Apache Thrift 0.17's two steps: first references
//! are resolved against the (unaliased) declared type ([`resolve`](Checker::resolve)), then the result
//! is checked against the declared type ([`check`](Checker::check)). Where Apache skips a check that
//! probe makes (values of typedef'd types, integer ranges, a container written with the other
//! brackets), probe's message says so; README "IDL compatibility with Apache Thrift 0.17" has the list.

mod apache;
mod check;

use std::collections::HashMap;

use crate::ast::{ConstValue, Definition, Field};
use crate::diagnostic::Diagnostic;
use crate::ir::{DefId, Program, Ty, Value};

use apache::{Cv, Node};

/// Resolved values of constants checked so far, by (file, span start of the value), for references.
pub(super) type ConstTable = HashMap<(usize, u32), Node>;

pub(super) fn resolve_file(
    program: &mut Program,
    file: usize,
    table: &mut ConstTable,
    errors: &mut Vec<Diagnostic>,
) {
    let mut values = HashMap::new();
    {
        let mut c = Checker { program, file, errors, values: &mut values, table, current: 0, depth: 0 };
        for (index, def) in c.program.files[file].doc.definitions.iter().enumerate() {
            c.current = index;
            match def {
                Definition::Const(k) => c.top(k.ty.span.start, &k.value, &k.name.name, true),
                Definition::Struct(s) => {
                    let mut defaults = 0;
                    for f in &s.fields {
                        c.default(f);
                        defaults += usize::from(f.default.is_some());
                        if s.kind == crate::ast::StructKind::Union && f.default.is_some() && defaults > 1 {
                            let message =
                                format!("union `{}` may give at most one field a default value", s.name.name);
                            c.errors.push(Diagnostic::new(f.name.span, message));
                        }
                    }
                }
                Definition::Service(s) => s.functions.iter().flat_map(|f| &f.args).for_each(|f| c.default(f)),
                Definition::Typedef(_) | Definition::Enum(_) => {}
            }
        }
    }
    program.files[file].values = values;
}

struct Checker<'p, 'e> {
    program: &'p Program,
    file: usize,
    errors: &'e mut Vec<Diagnostic>,
    values: &'e mut HashMap<u32, Value>,
    table: &'e mut ConstTable,
    /// Index of the definition being checked: values may only use what is defined before it.
    current: usize,
    depth: usize,
}

impl Checker<'_, '_> {
    fn default(&mut self, field: &Field) {
        if let Some(default) = &field.default {
            self.top(field.ty.span.start, default, &field.name.name, false);
        }
    }

    /// Resolves and checks one constant or default, and records its value.
    fn top(&mut self, ty_key: u32, value: &ConstValue, name: &str, is_const: bool) {
        let Some(ty) = self.program.files[self.file].types.get(&ty_key) else { return };
        let before = self.errors.len();
        let Some(node) = self.resolve(ty, value) else { return };
        if is_const {
            self.table.insert((self.file, value.span.start), node.clone());
        }
        self.check(ty, &node, name, false);
        if self.errors.len() == before {
            if let Some(v) = self.to_value(ty, &node) {
                self.values.insert(value.span.start, v);
            }
        }
    }

    /// A type of this file defined after the definition being checked, which Thrift cannot use yet.
    fn defined_later(&self, ty: &Ty) -> Option<String> {
        let mut ty = ty.clone();
        for _ in 0..64 {
            let (Ty::Alias(id) | Ty::Enum(id) | Ty::Struct(id)) = &ty else { return None };
            if id.file == self.file && id.index > self.current {
                return Some(self.program.def(*id).name().name.to_string());
            }
            let Ty::Alias(id) = &ty else { return None };
            let Definition::Typedef(t) = self.program.def(*id) else { return None };
            ty = self.program.files[id.file].types.get(&t.ty.span.start)?.clone();
        }
        None
    }

    /// The value Rust code is generated from, once the checks passed.
    fn to_value(&self, ty: &Ty, node: &Node) -> Option<Value> {
        let ty = self.program.unalias(ty);
        Some(match (&node.cv, ty) {
            (Cv::Int(v), Ty::Base(crate::ast::BaseType::Double)) => Value::Double(*v as f64),
            (Cv::Int(v), _) => Value::Int(*v),
            (Cv::Double(v), _) => Value::Double(*v),
            (Cv::Str(s), _) => Value::Str(s.clone()),
            (Cv::Ident { .. }, Ty::Enum(id)) => Value::Int(self.enum_member(*id, node)?),
            (Cv::Ident { .. }, _) => return None,
            (Cv::List(items), Ty::List(e) | Ty::Set(e)) => {
                Value::List(items.iter().map(|i| self.to_value(e, i)).collect::<Option<_>>()?)
            }
            (Cv::Map(entries), Ty::List(_) | Ty::Set(_)) if entries.is_empty() => Value::List(Vec::new()),
            (Cv::Map(entries), Ty::Map(k, v)) => {
                let mut out: Vec<(Value, Value)> = Vec::new();
                for (key, val) in entries {
                    let (key, val) = (self.to_value(k, key)?, self.to_value(v, val)?);
                    // Apache keeps one entry per key: the last one written.
                    out.retain(|(k, _)| *k != key);
                    out.push((key, val));
                }
                Value::Map(out)
            }
            (Cv::Map(entries), Ty::Struct(id)) => {
                let Definition::Struct(s) = self.program.def(*id) else { return None };
                let mut out: Vec<(usize, Value)> = Vec::new();
                for (key, val) in entries {
                    let Cv::Str(field_name) = &key.cv else { return None };
                    let index = s.fields.iter().rposition(|f| f.name.name == *field_name)?;
                    let field_ty = self.program.files[id.file].types.get(&s.fields[index].ty.span.start)?;
                    let v = self.to_value(field_ty, val)?;
                    out.retain(|(i, _)| *i != index);
                    out.push((index, v));
                }
                Value::Struct(out)
            }
            _ => return None,
        })
    }

    /// The value of the enum member an identifier names (the part after the last dot, as Apache
    /// looks it up when it writes code).
    fn enum_member(&self, id: DefId, node: &Node) -> Option<i64> {
        let Cv::Ident { name, .. } = &node.cv else { return None };
        let member = name.rsplit('.').next().unwrap_or(name);
        self.program.files[id.file].enum_values.get(&(id.index, member.into())).copied()
    }
}

fn describe(program: &Program, ty: &Ty) -> String {
    match ty {
        Ty::Base(b) => format!("`{}`", format!("{b:?}").to_lowercase()),
        Ty::List(_) => "a list".into(),
        Ty::Set(_) => "a set".into(),
        Ty::Map(..) => "a map".into(),
        Ty::Enum(id) => format!("enum `{}`", program.def(*id).name().name),
        Ty::Struct(id) => format!("struct `{}`", program.def(*id).name().name),
        Ty::Alias(id) => format!("`{}`", program.def(*id).name().name),
    }
}
