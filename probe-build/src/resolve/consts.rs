//! Constant values and field defaults: references resolved, values checked against declared types.

use std::collections::HashMap;

use crate::ast::{BaseType, ConstKind, ConstValue, Definition, Field};
use crate::diagnostic::Diagnostic;
use crate::ir::{Program, Ty, Value};

use super::scope::{Lookup, from_failed_include, lookup};

pub(super) fn resolve_file(program: &mut Program, file: usize, errors: &mut Vec<Diagnostic>) {
    let mut values = HashMap::new();
    {
        let mut c = Checker { program, file, errors, values: &mut values, depth: 0, current: 0 };
        for (index, def) in c.program.files[file].doc.definitions.iter().enumerate() {
            c.current = index;
            match def {
                Definition::Const(k) => c.check_top(&k.ty.span.start, &k.value, &k.name.name),
                Definition::Struct(s) => c.defaults(&s.fields),
                Definition::Service(s) => s.functions.iter().for_each(|f| c.defaults(&f.args)),
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
    depth: usize,
    /// Index of the definition being checked: values may only use types defined before it.
    current: usize,
}

impl Checker<'_, '_> {
    fn check_top(&mut self, ty_key: &u32, value: &ConstValue, name: &str) {
        let Some(ty) = self.program.files[self.file].types.get(ty_key) else { return };
        if let Some(v) = self.value(ty, value, name) {
            self.values.insert(value.span.start, v);
        }
    }

    fn defaults(&mut self, fields: &[Field]) {
        for field in fields {
            if let Some(default) = &field.default {
                self.check_top(&field.ty.span.start, default, &field.name.name);
            }
        }
    }

    fn mismatch(&mut self, value: &ConstValue, name: &str, expected: &str) -> Option<Value> {
        self.errors.push(Diagnostic::new(
            value.span,
            format!("type mismatch: `{name}` is declared as {expected}, but this value is not one"),
        ));
        None
    }

    /// Resolves an identifier to the value it names: an enum value or another constant.
    fn reference(&mut self, value: &ConstValue, ident: &crate::ast::Ident) -> Option<Resolved> {
        match lookup(self.program, self.file, &ident.name) {
            Lookup::EnumValue(v) => Some(Resolved::Enum(v)),
            Lookup::Def(id) => match self.program.def(id) {
                Definition::Const(c) => {
                    let file = &self.program.files[id.file];
                    let v = if id.file == self.file {
                        self.values.get(&c.value.span.start).cloned()
                    } else {
                        file.values.get(&c.value.span.start).cloned()
                    };
                    match v {
                        Some(v) => Some(Resolved::Const(v)),
                        None => {
                            self.errors.push(Diagnostic::new(
                                value.span,
                                format!("constant `{}` is used before it is defined", ident.name),
                            ));
                            None
                        }
                    }
                }
                _ => {
                    self.errors.push(Diagnostic::new(
                        value.span,
                        format!("`{}` is not a constant or enum value", ident.name),
                    ));
                    None
                }
            },
            Lookup::NotFound if from_failed_include(self.program, self.file, &ident.name) => None,
            Lookup::NotFound => {
                let unqualified = !ident.name.contains('.') && self.is_some_enum_value(&ident.name);
                let message = if unqualified {
                    format!(
                        "enum value `{}` must be qualified with its enum: `EnumName.{}`",
                        ident.name, ident.name
                    )
                } else {
                    format!("no enum value or constant named `{}`", ident.name)
                };
                self.errors.push(Diagnostic::new(value.span, message));
                None
            }
        }
    }

    fn is_some_enum_value(&self, name: &str) -> bool {
        self.program.files[self.file].enum_values.keys().any(|(_, n)| &**n == name)
    }

    fn value(&mut self, ty: &Ty, value: &ConstValue, name: &str) -> Option<Value> {
        self.depth += 1;
        let result = if self.depth > 64 {
            self.errors.push(Diagnostic::new(value.span, "constant nested too deeply"));
            None
        } else {
            self.value_inner(ty, value, name)
        };
        self.depth -= 1;
        result
    }

    /// A type of this file defined after the definition being checked, which Thrift cannot use yet.
    fn defined_later(&self, ty: &Ty) -> Option<String> {
        let mut ty = ty.clone();
        let program = self.program;
        for _ in 0..64 {
            let (Ty::Alias(id) | Ty::Enum(id) | Ty::Struct(id)) = &ty else { return None };
            if id.file == self.file && id.index > self.current {
                return Some(program.def(*id).name().name.to_string());
            }
            let Ty::Alias(id) = &ty else { return None };
            let crate::ast::Definition::Typedef(t) = program.def(*id) else { return None };
            let types = if id.file == self.file {
                &self.program.files[id.file].types
            } else {
                &program.files[id.file].types
            };
            ty = types.get(&t.ty.span.start)?.clone();
        }
        None
    }

    /// An identifier where an enum value is expected: Thrift 0.17 requires a qualified name and looks
    /// the last part up in the expected enum.
    fn enum_ident(
        &mut self,
        id: crate::ir::DefId,
        value: &ConstValue,
        ident: &crate::ast::Ident,
    ) -> Option<Value> {
        let program = self.program;
        let enum_name = program.def(id).name().name.clone();
        let Some((_, rest)) = ident.name.split_once('.') else {
            self.errors.push(Diagnostic::new(
                value.span,
                format!(
                    "`{}` is unqualified; a value of enum `{enum_name}` is written `{enum_name}.NAME`",
                    ident.name
                ),
            ));
            return None;
        };
        let member = rest.split_once('.').map_or(rest, |(_, last)| last);
        match program.files[id.file].enum_values.get(&(id.index, member.into())) {
            Some(v) => Some(Value::Int(*v)),
            None => {
                self.errors
                    .push(Diagnostic::new(value.span, format!("enum `{enum_name}` has no value `{member}`")));
                None
            }
        }
    }

    fn value_inner(&mut self, ty: &Ty, value: &ConstValue, name: &str) -> Option<Value> {
        let program = self.program;
        if let Some(later) = self.defined_later(ty) {
            let message =
                format!("type `{later}` is used in a value before it is defined; move its definition up");
            self.errors.push(Diagnostic::new(value.span, message));
            return None;
        }
        let ty = program.unalias(ty);
        if let (Ty::Enum(id), ConstKind::Ident(ident)) = (ty, &value.kind) {
            return self.enum_ident(*id, value, ident);
        }
        if let ConstKind::Ident(ident) = &value.kind {
            return match self.reference(value, ident)? {
                Resolved::Enum(v) => match ty {
                    Ty::Base(BaseType::I8 | BaseType::I16 | BaseType::I32 | BaseType::I64) => {
                        Some(Value::Int(v))
                    }
                    _ => self.mismatch(value, name, &describe(program, ty)),
                },
                Resolved::Const(v) => Some(v),
            };
        }
        match (ty, &value.kind) {
            (Ty::Base(BaseType::String | BaseType::Binary | BaseType::Uuid), ConstKind::Literal(s)) => {
                Some(Value::Str(s.clone()))
            }
            (Ty::Base(BaseType::Bool), ConstKind::Int(v)) => Some(Value::Int(*v)),
            (
                Ty::Base(b @ (BaseType::I8 | BaseType::I16 | BaseType::I32 | BaseType::I64)),
                ConstKind::Int(v),
            ) => {
                let fits = match b {
                    BaseType::I8 => i8::try_from(*v).is_ok(),
                    BaseType::I16 => i16::try_from(*v).is_ok(),
                    BaseType::I32 => i32::try_from(*v).is_ok(),
                    _ => true,
                };
                if fits {
                    Some(Value::Int(*v))
                } else {
                    self.errors
                        .push(Diagnostic::new(value.span, format!("{v} is out of range for `{name}`")));
                    None
                }
            }
            (Ty::Base(BaseType::Double), ConstKind::Int(v)) => Some(Value::Double(*v as f64)),
            (Ty::Base(BaseType::Double), ConstKind::Double(v)) => Some(Value::Double(*v)),
            (Ty::Enum(id), ConstKind::Int(v)) => {
                let known =
                    program.files[id.file].enum_values.iter().any(|((e, _), x)| *e == id.index && x == v);
                if known {
                    Some(Value::Int(*v))
                } else {
                    let enum_name = program.def(*id).name().name.clone();
                    self.errors
                        .push(Diagnostic::new(value.span, format!("enum `{enum_name}` has no value {v}")));
                    None
                }
            }
            (Ty::List(elem) | Ty::Set(elem), ConstKind::List(items)) => {
                let items: Vec<_> = items.iter().map(|i| self.value(elem, i, name)).collect();
                items.into_iter().collect::<Option<Vec<_>>>().map(Value::List)
            }
            // Thrift 0.17 takes `{}` as an empty list or set too.
            (Ty::List(_) | Ty::Set(_), ConstKind::Map(entries)) if entries.is_empty() => {
                Some(Value::List(Vec::new()))
            }
            (Ty::Map(k, v), ConstKind::Map(entries)) => {
                let mut out = Vec::new();
                let mut ok = true;
                for (key, val) in entries {
                    let key = self.value(k, key, name);
                    let val = self.value(v, val, name);
                    match (key, val) {
                        (Some(key), Some(val)) => out.push((key, val)),
                        _ => ok = false,
                    }
                }
                ok.then_some(Value::Map(out))
            }
            (Ty::Struct(id), ConstKind::Map(entries)) => self.struct_literal(*id, entries, name),
            _ => self.mismatch(value, name, &describe(program, ty)),
        }
    }

    fn struct_literal(
        &mut self,
        id: crate::ir::DefId,
        entries: &[(ConstValue, ConstValue)],
        name: &str,
    ) -> Option<Value> {
        let program = self.program;
        let Definition::Struct(s) = program.def(id) else { return None };
        let mut out = Vec::new();
        let mut ok = true;
        for (key, val) in entries {
            let ConstKind::Literal(field_name) = &key.kind else {
                self.errors.push(Diagnostic::new(key.span, "struct literal keys must be quoted field names"));
                ok = false;
                continue;
            };
            let Some((index, field)) = s.fields.iter().enumerate().find(|(_, f)| f.name.name == *field_name)
            else {
                self.errors.push(Diagnostic::new(
                    key.span,
                    format!("`{}` has no field `{field_name}`", s.name.name),
                ));
                ok = false;
                continue;
            };
            let Some(field_ty) = program.files[id.file].types.get(&field.ty.span.start) else {
                ok = false;
                continue;
            };
            match self.value(field_ty, val, name) {
                Some(v) => out.push((index, v)),
                None => ok = false,
            }
        }
        ok.then_some(Value::Struct(out))
    }
}

enum Resolved {
    Enum(i64),
    Const(Value),
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
