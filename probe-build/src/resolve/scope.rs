//! Declaring names: duplicate definitions, enum values, and type names that collide with an included
//! file's types.

use std::collections::HashMap;
use std::sync::Arc;

use crate::ast::Definition;
use crate::diagnostic::Diagnostic;
use crate::ir::{DefId, Program};

pub(super) fn declare(program: &mut Program, index: usize, errors: &mut Vec<Diagnostic>) {
    let file = &program.files[index];
    // Apache reads a file included twice twice, and then finds its constants defined twice.
    for &(included, span) in &file.repeated_includes {
        let other = &program.files[included];
        if !other.const_names.is_empty() || !other.enum_values.is_empty() {
            let message = format!(
                "`{}.thrift` is already included; a second include defines its constants and enum values again",
                other.stem
            );
            errors.push(Diagnostic::new(span, message));
        }
    }
    let mut names: HashMap<Arc<str>, usize> = HashMap::new();
    let mut const_names: HashMap<Arc<str>, usize> = HashMap::new();
    let mut enum_values = HashMap::new();
    for (i, def) in file.doc.definitions.iter().enumerate() {
        let name = def.name();
        if name.name.contains('.') {
            errors.push(Diagnostic::new(
                name.span,
                format!("`{}`: a definition name cannot contain '.'", name.name),
            ));
            continue;
        }
        let space = if is_type(def) { &mut names } else { &mut const_names };
        if let Some(&previous) = space.get(&name.name) {
            errors.push(
                Diagnostic::new(name.span, format!("`{}` is already defined", name.name))
                    .with_note(file.def(previous).name().span, "first defined here"),
            );
            continue;
        }
        if is_type(def) {
            if let Some((other, id)) = colliding_include_type(program, index, &name.name) {
                errors.push(
                    Diagnostic::new(
                        name.span,
                        format!(
                            "type `{}` is already defined in `{other}`, which declares the same namespaces; rename one",
                            name.name
                        ),
                    )
                    .with_note(program.def(id).name().span, "defined here"),
                );
            }
        }
        space.insert(name.name.clone(), i);
        if let Definition::Enum(e) = def {
            let mut next: i64 = 0;
            let mut seen: HashMap<&str, &crate::ast::Ident> = HashMap::new();
            for value in &e.values {
                let v = value.value.map_or(next, |(v, _)| v);
                if let Some(first) = seen.insert(&value.name.name, &value.name) {
                    errors.push(
                        Diagnostic::new(
                            value.name.span,
                            format!("enum value `{}` is already defined", value.name.name),
                        )
                        .with_note(first.span, "first defined here"),
                    );
                }
                if i32::try_from(v).is_err() {
                    let span = value.value.map_or(value.name.span, |(_, s)| s);
                    errors.push(Diagnostic::new(span, format!("enum value {v} does not fit in i32")));
                }
                enum_values.insert((i, value.name.name.clone()), v);
                next = v.saturating_add(1);
            }
        }
    }
    let file = &mut program.files[index];
    file.names = names;
    file.const_names = const_names;
    file.enum_values = enum_values;
}

/// Types and services share one set of names; constants have their own.
fn is_type(def: &Definition) -> bool {
    !matches!(def, Definition::Const(_))
}

/// A type or service of the same name in a directly included file whose namespaces are the same
/// as this file's, by Apache Thrift 0.17's rule: every namespace one file declares is the one the
/// other file uses for that language (its own, or its `*` one), both ways. Two files without any
/// namespace declarations therefore collide.
fn colliding_include_type(program: &Program, index: usize, name: &str) -> Option<(String, DefId)> {
    let file = &program.files[index];
    for &included in file.includes.values() {
        let other = &program.files[included];
        if !same_namespaces(&file.doc, &other.doc) {
            continue;
        }
        if let Some(&i) = other.names.get(name) {
            return Some((format!("{}.thrift", other.stem), DefId { file: included, index: i }));
        }
    }
    None
}

/// The namespace a file uses for `scope`: the last declaration of it, else of `*`, else none.
fn namespace_for<'d>(doc: &'d crate::ast::Document, scope: &str) -> &'d str {
    let find = |s: &str| doc.namespaces.iter().rev().find(|n| &*n.scope == s).map(|n| &*n.name.name);
    find(scope).or_else(|| find("*")).unwrap_or("")
}

fn same_namespaces(a: &crate::ast::Document, b: &crate::ast::Document) -> bool {
    let one_way = |x: &crate::ast::Document, y: &crate::ast::Document| {
        x.namespaces.iter().all(|n| namespace_for(y, &n.scope) == namespace_for(x, &n.scope))
    };
    one_way(a, b) && one_way(b, a)
}

/// What a possibly qualified name refers to.
pub(super) enum Lookup {
    Def(DefId),
    EnumValue,
    NotFound,
}

/// Looks a name up from `file`: `Name`, `inc.Name`, `Enum.VALUE`, `inc.Enum.VALUE`.
pub(super) fn lookup(program: &Program, file: usize, name: &str) -> Lookup {
    let here = &program.files[file];
    if let Some(&i) = here.names.get(name) {
        return Lookup::Def(DefId { file, index: i });
    }
    let Some((first, rest)) = name.split_once('.') else { return Lookup::NotFound };
    if let Some(found) = enum_value(program, file, first, rest) {
        return found;
    }
    // `inc.Name` or `inc.Enum.VALUE`; include stems may themselves contain dots (`dsn.layer2`).
    for (stem, &included) in &here.includes {
        let Some(rest) = name.strip_prefix(stem.as_str()).and_then(|r| r.strip_prefix('.')) else { continue };
        let there = &program.files[included];
        if let Some(&i) = there.names.get(rest) {
            return Lookup::Def(DefId { file: included, index: i });
        }
        if let Some((enum_name, value)) = rest.split_once('.') {
            if let Some(found) = enum_value(program, included, enum_name, value) {
                return found;
            }
        }
    }
    Lookup::NotFound
}

fn enum_value(program: &Program, file: usize, enum_name: &str, value: &str) -> Option<Lookup> {
    let here = &program.files[file];
    let &i = here.names.get(enum_name)?;
    here.enum_values.contains_key(&(i, Arc::from(value))).then_some(Lookup::EnumValue)
}

/// Whether `name` is qualified with an include that failed to load (its error is already reported).
pub(super) fn from_failed_include(program: &Program, file: usize, name: &str) -> bool {
    program.files[file].failed_includes.iter().any(|stem| name.starts_with(&format!("{stem}.")))
}

/// What a name in a value refers to.
pub(super) enum ValueLookup {
    Const(DefId),
    EnumValue { enum_id: DefId, value: i64 },
    NotFound,
}

/// Looks a value name up as Apache Thrift 0.17's scope does: `NAME` and `Enum.VALUE` of this file,
/// `inc.NAME` and `inc.Enum.VALUE` of a directly included file.
pub(super) fn lookup_value(program: &Program, file: usize, name: &str) -> ValueLookup {
    let in_file = |f: usize, name: &str| {
        let there = &program.files[f];
        if let Some(&i) = there.const_names.get(name) {
            return Some(ValueLookup::Const(DefId { file: f, index: i }));
        }
        let (enum_name, member) = name.split_once('.')?;
        let &i = there.names.get(enum_name)?;
        let value = *there.enum_values.get(&(i, Arc::from(member)))?;
        Some(ValueLookup::EnumValue { enum_id: DefId { file: f, index: i }, value })
    };
    if let Some(found) = in_file(file, name) {
        return found;
    }
    for (stem, &included) in &program.files[file].includes {
        let Some(rest) = name.strip_prefix(stem.as_str()).and_then(|r| r.strip_prefix('.')) else { continue };
        if let Some(found) = in_file(included, rest) {
            return found;
        }
    }
    ValueLookup::NotFound
}
