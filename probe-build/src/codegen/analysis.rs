//! Facts about types that decide the Rust shapes: which types can derive `Eq + Hash` (map keys, set
//! elements), which have a `Default`, and which struct fields must be boxed to break recursion.

use std::collections::{HashMap, HashSet};

use crate::ast::{BaseType, Definition, Field, Requiredness, StructKind};
use crate::ir::{DefId, Program, Ty};

/// The facts, computed once per program.
#[derive(Debug, Default)]
pub(crate) struct Analysis {
    /// Structs, unions and exceptions that can derive `Eq` and `Hash`.
    hashable: HashSet<DefId>,
    /// Structs, unions and exceptions that implement `Default`.
    defaultable: HashSet<DefId>,
    /// Fields `(struct, field index)` stored in a `Box`.
    boxed: HashSet<(DefId, usize)>,
}

fn structs(program: &Program) -> impl Iterator<Item = (DefId, &crate::ast::Struct)> {
    program.files.iter().enumerate().flat_map(|(file, f)| {
        f.doc.definitions.iter().enumerate().filter_map(move |(index, d)| match d {
            Definition::Struct(s) => Some((DefId { file, index }, s)),
            _ => None,
        })
    })
}

/// The resolved type of a field, if resolution succeeded.
pub(crate) fn field_ty<'p>(program: &'p Program, owner_file: usize, field: &Field) -> Option<&'p Ty> {
    program.files[owner_file].types.get(&field.ty.span.start)
}

impl Analysis {
    pub(crate) fn new(program: &Program) -> Self {
        // Greatest fixed points: assume every struct qualifies, then remove those that cannot.
        let mut a = Analysis {
            hashable: structs(program).map(|(id, _)| id).collect(),
            defaultable: structs(program)
                .filter(|(_, s)| s.kind != StructKind::Union)
                .map(|(id, _)| id)
                .collect(),
            boxed: HashSet::new(),
        };
        loop {
            let mut changed = false;
            for (id, s) in structs(program) {
                let hashable = s
                    .fields
                    .iter()
                    .all(|f| field_ty(program, id.file, f).is_some_and(|t| a.is_hashable(program, t)));
                if !hashable && a.hashable.remove(&id) {
                    changed = true;
                }
                let defaultable = s.kind != StructKind::Union
                    && s.fields.iter().all(|f| {
                        f.default.is_some()
                            || a.stored_as_option(program, id.file, f)
                            || field_ty(program, id.file, f).is_some_and(|t| a.is_defaultable(program, t))
                    });
                if !defaultable && a.defaultable.remove(&id) {
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        a.boxed = boxed_fields(program);
        a
    }

    /// Whether a value of `ty` can derive `Eq + Hash` (no `double` inside, no set or map inside).
    pub(crate) fn is_hashable(&self, program: &Program, ty: &Ty) -> bool {
        match program.unalias(ty) {
            Ty::Base(BaseType::Double) => false,
            Ty::Base(_) | Ty::Enum(_) => true,
            Ty::List(elem) => self.is_hashable(program, elem),
            Ty::Set(_) | Ty::Map(..) => false,
            Ty::Struct(id) => self.hashable.contains(id),
            Ty::Alias(_) => false,
        }
    }

    /// Whether `ty` has a Rust `Default`.
    pub(crate) fn is_defaultable(&self, program: &Program, ty: &Ty) -> bool {
        match program.unalias(ty) {
            Ty::Struct(id) => self.defaultable.contains(id),
            Ty::Alias(_) => false,
            _ => true,
        }
    }

    /// Whether a struct derives `Eq + Hash`.
    pub(crate) fn struct_hashable(&self, id: DefId) -> bool {
        self.hashable.contains(&id)
    }

    /// Whether a struct implements `Default`.
    pub(crate) fn struct_defaultable(&self, id: DefId) -> bool {
        self.defaultable.contains(&id)
    }

    /// Whether field `index` of struct `id` is boxed.
    pub(crate) fn is_boxed(&self, id: DefId, index: usize) -> bool {
        self.boxed.contains(&(id, index))
    }

    /// Whether a struct field is an `Option`: optional fields, and default-requiredness fields
    /// whose type has no `Default` and no IDL default.
    pub(crate) fn stored_as_option(&self, program: &Program, file: usize, field: &Field) -> bool {
        match field.requiredness {
            Requiredness::Optional => true,
            Requiredness::Required => false,
            Requiredness::Default => {
                field.default.is_none()
                    && !field_ty(program, file, field).is_some_and(|t| self.is_defaultable(program, t))
            }
        }
    }
}

/// Fields that embed (not through a container) a struct from which the owner is reachable again,
/// and fields written with `&`.
fn boxed_fields(program: &Program) -> HashSet<(DefId, usize)> {
    let mut edges: HashMap<DefId, Vec<DefId>> = HashMap::new();
    for (id, s) in structs(program) {
        let targets = s
            .fields
            .iter()
            .filter_map(|f| match field_ty(program, id.file, f).map(|t| program.unalias(t)) {
                Some(Ty::Struct(target)) => Some(*target),
                _ => None,
            })
            .collect();
        edges.insert(id, targets);
    }
    let reaches = |from: DefId, to: DefId| {
        let mut stack = vec![from];
        let mut seen = HashSet::new();
        while let Some(at) = stack.pop() {
            if at == to {
                return true;
            }
            if seen.insert(at) {
                stack.extend(edges.get(&at).into_iter().flatten().copied());
            }
        }
        false
    };
    let mut boxed = HashSet::new();
    for (id, s) in structs(program) {
        for (index, f) in s.fields.iter().enumerate() {
            let direct = match field_ty(program, id.file, f).map(|t| program.unalias(t)) {
                Some(Ty::Struct(target)) => Some(*target),
                _ => None,
            };
            if f.reference || direct.is_some_and(|target| reaches(target, id)) {
                boxed.insert((id, index));
            }
        }
    }
    boxed
}
