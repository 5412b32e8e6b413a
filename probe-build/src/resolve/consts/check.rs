//! Step 2 of constant values: the resolved value checked against the declared type, as Apache
//! Thrift 0.17's `validate_const_rec` does, and stricter where Apache's generated code would be wrong
//! (those messages carry a marker saying what Apache does instead).

use crate::ast::{BaseType, Definition};
use crate::ir::Ty;

use super::Checker;
use super::apache::{Cv, Node, READ_AS_EMPTY, UNCHECKED_RANGE, UNCHECKED_TYPEDEF};

impl Checker<'_, '_> {
    /// Checks `node` against the declared `ty`; `aliased` once a typedef was crossed on the way.
    pub(super) fn check(&mut self, ty: &Ty, node: &Node, name: &str, aliased: bool) {
        let program = self.program;
        if let Ty::Alias(_) = ty {
            let under = program.unalias(ty);
            // A typedef cycle or an unresolved typedef is reported where it is defined.
            if !matches!(under, Ty::Alias(_)) {
                self.check(under, node, name, true);
            }
            return;
        }
        let marker = if aliased { format!(" {UNCHECKED_TYPEDEF}") } else { String::new() };
        match (ty, &node.cv) {
            (Ty::Base(BaseType::String | BaseType::Binary | BaseType::Uuid), Cv::Str(_)) => {}
            (Ty::Base(BaseType::Double), Cv::Int(_) | Cv::Double(_)) => {}
            (
                Ty::Base(b @ (BaseType::Bool | BaseType::I8 | BaseType::I16 | BaseType::I32 | BaseType::I64)),
                Cv::Int(v),
            ) => {
                let fits = match b {
                    BaseType::I8 => i8::try_from(*v).is_ok(),
                    BaseType::I16 => i16::try_from(*v).is_ok(),
                    BaseType::I32 => i32::try_from(*v).is_ok(),
                    _ => true,
                };
                if !fits {
                    self.error(node.span, format!("{v} is out of range for `{name}` {UNCHECKED_RANGE}"));
                }
            }
            // An unresolved name where a number or enum is wanted fails in Apache's generator too.
            (
                Ty::Base(BaseType::Bool | BaseType::I8 | BaseType::I16 | BaseType::I32 | BaseType::I64),
                Cv::Ident { name: n, .. },
            )
            | (Ty::Enum(_), Cv::Ident { name: n, enum_id: None }) => {
                self.error(node.span, format!("`{n}` is not a value of the type declared for `{name}`"));
            }
            (Ty::Enum(id), Cv::Ident { name: n, .. }) => {
                let enum_name = program.def(*id).name().name.clone();
                // Apache's check strips one qualifier (`Enum.`, or `inc.Enum.`); its generator, which is
                // all that looks at a typedef'd value, takes the part after the last dot.
                let member = if aliased {
                    n.rsplit('.').next().unwrap_or(n)
                } else {
                    let Some((_, rest)) = n.split_once('.') else {
                        let m = format!(
                            "`{n}` is unqualified; a value of enum `{enum_name}` is written `{enum_name}.NAME`"
                        );
                        return self.error(node.span, m);
                    };
                    rest.split_once('.').map_or(rest, |(_, last)| last)
                };
                if !program.files[id.file].enum_values.contains_key(&(id.index, member.into())) {
                    self.error(node.span, format!("enum `{enum_name}` has no value `{member}`"));
                }
            }
            (Ty::Struct(id), Cv::Map(entries)) => {
                let Definition::Struct(s) = program.def(*id) else { return };
                // Keys were checked already where the literal was resolved, but not inside exception
                // literals, which Apache does not resolve (its generator then fails on a bad key).
                for (key, val) in entries {
                    let Cv::Str(field_name) = &key.cv else {
                        self.error(key.span, "struct literal keys must be quoted field names".into());
                        continue;
                    };
                    let Some(index) = s.fields.iter().rposition(|f| f.name.name == *field_name) else {
                        self.error(key.span, format!("`{}` has no field `{field_name}`", s.name.name));
                        continue;
                    };
                    let field = &s.fields[index];
                    let Some(field_ty) = program.files[id.file].types.get(&field.ty.span.start) else {
                        continue;
                    };
                    // A field whose type was defined after the struct is a forward reference to Apache,
                    // which it does not check either.
                    let forward = matches!(field_ty, Ty::Alias(t) | Ty::Struct(t) | Ty::Enum(t)
                        if t.file == id.file && t.index > id.index);
                    self.check(field_ty, val, name, aliased || forward);
                }
            }
            (Ty::Map(k, v), Cv::Map(entries)) => {
                for (key, val) in entries {
                    self.check(k, key, name, aliased);
                    self.check(v, val, name, aliased);
                }
            }
            (Ty::List(e) | Ty::Set(e), Cv::List(items)) => {
                for item in items {
                    self.check(e, item, name, aliased);
                }
            }
            (Ty::List(_) | Ty::Set(_), Cv::Map(entries)) if entries.is_empty() => {}
            (Ty::Map(..) | Ty::List(_) | Ty::Set(_), _) => {
                let what = super::describe(program, ty);
                let marker = if aliased { marker } else { format!(" {READ_AS_EMPTY}") };
                self.error(
                    node.span,
                    format!(
                        "type mismatch: `{name}` is declared as {what}, but this value is not one{marker}"
                    ),
                );
            }
            _ => {
                let what = super::describe(program, ty);
                self.error(
                    node.span,
                    format!(
                        "type mismatch: `{name}` is declared as {what}, but this value is not one{marker}"
                    ),
                );
            }
        }
    }
}
