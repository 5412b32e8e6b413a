//! Declaring names: duplicate definitions, enum values, and type names that collide with an included
//! file's types.

use std::collections::HashMap;
use std::sync::Arc;

use crate::ast::Definition;
use crate::diagnostic::Diagnostic;
use crate::ir::{DefId, Program};

pub(super) fn declare(program: &mut Program, index: usize, errors: &mut Vec<Diagnostic>) {
    let file = &program.files[index];
    let mut names: HashMap<Arc<str>, usize> = HashMap::new();
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
        if let Some(&previous) = names.get(&name.name) {
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
        names.insert(name.name.clone(), i);
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
    file.enum_values = enum_values;
}

fn is_type(def: &Definition) -> bool {
    !matches!(def, Definition::Const(_))
}

/// A type of the same name in a directly included file with identical namespace declarations.
fn colliding_include_type(program: &Program, index: usize, name: &str) -> Option<(String, DefId)> {
    let file = &program.files[index];
    let namespaces = namespace_set(&file.doc);
    for &included in file.includes.values() {
        let other = &program.files[included];
        let other_namespaces = namespace_set(&other.doc);
        if namespaces.is_empty() && other_namespaces.is_empty() || namespaces != other_namespaces {
            continue;
        }
        if let Some(&i) = other.names.get(name) {
            if is_type(other.def(i)) {
                return Some((format!("{}.thrift", other.stem), DefId { file: included, index: i }));
            }
        }
    }
    None
}

fn namespace_set(doc: &crate::ast::Document) -> Vec<(Arc<str>, Arc<str>)> {
    let mut set: Vec<_> = doc.namespaces.iter().map(|n| (n.scope.clone(), n.name.name.clone())).collect();
    set.sort();
    set.dedup();
    set
}

/// What a possibly qualified name refers to.
pub(super) enum Lookup {
    Def(DefId),
    EnumValue(i64),
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
    let v = here.enum_values.get(&(i, Arc::from(value)))?;
    Some(Lookup::EnumValue(*v))
}

/// Whether `name` is qualified with an include that failed to load (its error is already reported).
pub(super) fn from_failed_include(program: &Program, file: usize, name: &str) -> bool {
    program.files[file].failed_includes.iter().any(|stem| name.starts_with(&format!("{stem}.")))
}
