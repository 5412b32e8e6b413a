//! Resolving written types to [`Ty`], and the checks on struct fields and services.

use std::collections::HashMap;

use crate::ast::{Definition, Field, StructKind, Type, TypeKind};
use crate::diagnostic::Diagnostic;
use crate::ir::{DefId, Program, Ty};

use super::scope::{Lookup, from_failed_include, lookup};

pub(super) fn resolve_file(program: &mut Program, file: usize, errors: &mut Vec<Diagnostic>) {
    let mut resolved = HashMap::new();
    {
        let mut r = Resolver { program, file, errors, resolved: &mut resolved, lazy: false };
        for def in &r.program.files[file].doc.definitions {
            match def {
                // Apache looks the names in these types up only when a generator or a value needs them.
                Definition::Const(c) => r.lazily(|r| r.ty(&c.ty)),
                Definition::Typedef(t) => r.lazily(|r| r.ty(&t.ty)),
                Definition::Enum(_) => {}
                Definition::Struct(s) => r.fields(&s.fields, "field"),
                Definition::Service(s) => {
                    r.service_extends(s);
                    for f in &s.functions {
                        if let Some(ty) = &f.returns {
                            r.ty(ty);
                        }
                        r.fields(&f.args, "argument");
                        r.fields(&f.throws, "exception");
                    }
                }
            }
        }
    }
    program.files[file].types = resolved;
    check_typedef_cycles(program, file, errors);
    check_services(program, file, errors);
}

struct Resolver<'p, 'e> {
    /// Whether the type being resolved is one Apache resolves only on use (typedefs, constants).
    lazy: bool,
    program: &'p Program,
    file: usize,
    errors: &'e mut Vec<Diagnostic>,
    resolved: &'e mut HashMap<u32, Ty>,
}

impl Resolver<'_, '_> {
    fn lazily(&mut self, f: impl FnOnce(&mut Self)) {
        self.lazy = true;
        f(self);
        self.lazy = false;
    }

    fn lazy_note(&self) -> &'static str {
        if self.lazy { " (Apache Thrift 0.17 looks it up only where it is used)" } else { "" }
    }

    fn ty(&mut self, ty: &Type) {
        if let Some(t) = self.resolve(ty) {
            self.resolved.insert(ty.span.start, t);
        }
    }

    fn resolve(&mut self, ty: &Type) -> Option<Ty> {
        Some(match &ty.kind {
            TypeKind::Base(b) => Ty::Base(*b),
            TypeKind::List(elem) => Ty::List(Box::new(self.resolve_nested(elem)?)),
            TypeKind::Set(elem) => Ty::Set(Box::new(self.resolve_nested(elem)?)),
            TypeKind::Map(k, v) => {
                let k = self.resolve_nested(k);
                let v = self.resolve_nested(v);
                Ty::Map(Box::new(k?), Box::new(v?))
            }
            TypeKind::Named(name) => match lookup(self.program, self.file, &name.name) {
                Lookup::Def(id) => match self.program.def(id) {
                    Definition::Typedef(_) => Ty::Alias(id),
                    Definition::Enum(_) => Ty::Enum(id),
                    Definition::Struct(_) => Ty::Struct(id),
                    Definition::Service(_) | Definition::Const(_) => {
                        let what = if matches!(self.program.def(id), Definition::Service(_)) {
                            "a service"
                        } else {
                            "a constant"
                        };
                        self.errors.push(Diagnostic::new(
                            name.span,
                            format!("`{}` is {what}, not a type", name.name),
                        ));
                        return None;
                    }
                },
                Lookup::EnumValue => {
                    self.errors.push(Diagnostic::new(
                        name.span,
                        format!("`{}` is an enum value, not a type", name.name),
                    ));
                    return None;
                }
                Lookup::NotFound if from_failed_include(self.program, self.file, &name.name) => return None,
                Lookup::NotFound => {
                    let hint = unknown_hint(self.program, self.file, &name.name);
                    self.errors.push(Diagnostic::new(
                        name.span,
                        format!("unknown type `{}`{hint}{}", name.name, self.lazy_note()),
                    ));
                    return None;
                }
            },
        })
    }

    fn resolve_nested(&mut self, ty: &Type) -> Option<Ty> {
        let t = self.resolve(ty)?;
        self.resolved.insert(ty.span.start, t.clone());
        Some(t)
    }

    fn fields(&mut self, fields: &[Field], what: &str) {
        let mut ids: HashMap<i32, &Field> = HashMap::new();
        let mut names: HashMap<&str, &Field> = HashMap::new();
        for field in fields {
            self.ty(&field.ty);
            if let Some(first) = ids.insert(field.id, field) {
                self.errors.push(
                    Diagnostic::new(
                        field.span,
                        format!("{what} id {} is already used by `{}`", field.id, first.name.name),
                    )
                    .with_note(first.span, "first used here"),
                );
            }
            if let Some(first) = names.insert(&field.name.name, field) {
                self.errors.push(
                    Diagnostic::new(
                        field.name.span,
                        format!("{what} `{}` is already defined", field.name.name),
                    )
                    .with_note(first.name.span, "first defined here"),
                );
            }
        }
    }

    fn service_extends(&mut self, service: &crate::ast::Service) {
        let Some(base) = &service.extends else { return };
        match lookup(self.program, self.file, &base.name) {
            Lookup::Def(id) if matches!(self.program.def(id), Definition::Service(_)) => {}
            Lookup::NotFound => {
                let hint = unknown_hint(self.program, self.file, &base.name);
                self.errors
                    .push(Diagnostic::new(base.span, format!("unknown service `{}`{hint}", base.name)));
            }
            _ => self.errors.push(Diagnostic::new(base.span, format!("`{}` is not a service", base.name))),
        }
    }
}

/// Advice for an unknown name: a missing include, or a name qualified with the wrong file.
fn unknown_hint(program: &Program, file: usize, name: &str) -> String {
    match name.split_once('.') {
        Some((prefix, _)) if program.files[file].missing_includes.iter().any(|m| m == prefix) => {
            format!("; the included file `{prefix}.thrift` was not found")
        }
        Some((prefix, _))
            if !program.files[file].includes.keys().any(|stem| name.starts_with(&format!("{stem}."))) =>
        {
            format!("; no included file is named `{prefix}.thrift`")
        }
        Some(_) => String::new(),
        None => {
            let elsewhere = program.files[file]
                .includes
                .iter()
                .find(|(_, i)| program.files[**i].names.contains_key(name))
                .map(|(stem, _)| stem.clone());
            elsewhere.map_or_else(String::new, |stem| format!("; did you mean `{stem}.{name}`?"))
        }
    }
}

fn check_typedef_cycles(program: &Program, file: usize, errors: &mut Vec<Diagnostic>) {
    for (index, def) in program.files[file].doc.definitions.iter().enumerate() {
        let Definition::Typedef(t) = def else { continue };
        let start = DefId { file, index };
        let mut current = program.files[file].types.get(&t.ty.span.start);
        let mut steps = 0;
        while let Some(Ty::Alias(id)) = current {
            if *id == start || steps > 64 {
                errors.push(Diagnostic::new(
                    t.name.span,
                    format!("typedef `{}` refers to itself", t.name.name),
                ));
                break;
            }
            let Definition::Typedef(next) = program.def(*id) else { break };
            current = program.files[id.file].types.get(&next.ty.span.start);
            steps += 1;
        }
    }
}

fn check_services(program: &Program, file: usize, errors: &mut Vec<Diagnostic>) {
    let here = &program.files[file];
    for def in &here.doc.definitions {
        let Definition::Service(service) = def else { continue };
        let mut seen: HashMap<&str, &crate::ast::Ident> = HashMap::new();
        for f in &service.functions {
            if let Some(first) = seen.insert(&f.name.name, &f.name) {
                errors.push(
                    Diagnostic::new(f.name.span, format!("function `{}` is already defined", f.name.name))
                        .with_note(first.span, "first defined here"),
                );
            }
            if f.oneway && f.returns.is_some() {
                errors.push(Diagnostic::new(
                    f.name.span,
                    format!(
                        "oneway function `{}` must return void (Apache Thrift 0.17 only warns)",
                        f.name.name
                    ),
                ));
            }
            if f.oneway && !f.throws.is_empty() {
                errors.push(Diagnostic::new(
                    f.name.span,
                    format!("oneway function `{}` cannot throw", f.name.name),
                ));
            }
            for a in f.annotations.iter().filter(|a| &*a.key.name == crate::ast::TIMEOUT_ANNOTATION) {
                if crate::ast::timeout_ms(a.value.as_deref()).is_none() {
                    errors.push(Diagnostic::new(
                        a.key.span,
                        format!(
                            "`probe.timeout_ms` of `{}` must be a whole number of milliseconds from 1 to \
                             86400000, not {:?}",
                            f.name.name,
                            a.value.as_deref().unwrap_or("")
                        ),
                    ));
                }
            }
            for t in &f.throws {
                let Some(ty) = here.types.get(&t.ty.span.start) else { continue };
                let is_exception = matches!(program.unalias(ty), Ty::Struct(id)
                    if matches!(program.def(*id), Definition::Struct(s) if s.kind == StructKind::Exception));
                if !is_exception {
                    errors.push(Diagnostic::new(
                        t.ty.span,
                        format!("`{}` in throws is not an exception", t.name.name),
                    ));
                }
            }
        }
    }
}
