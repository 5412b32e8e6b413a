//! IDL constants: `const` items for numbers and strings, `LazyLock` statics for containers and
//! struct literals; and Rust expressions for resolved values (also used for field defaults).

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use crate::ast::{BaseType, Const, Definition};
use crate::ir::{Ty, Value};
use crate::names;

use super::{CodegenError, Gen, doc_attr, ident};

impl Gen<'_> {
    pub(crate) fn constant(&self, c: &Const) -> Result<TokenStream, CodegenError> {
        let file = &self.program.files[self.current];
        let ty = file
            .types
            .get(&c.ty.span.start)
            .ok_or_else(|| CodegenError(format!("constant `{}` has no resolved type", c.name.name)))?;
        let value = file
            .values
            .get(&c.value.span.start)
            .ok_or_else(|| CodegenError(format!("constant `{}` has no resolved value", c.name.name)))?;
        let name = ident(&names::escape(&c.name.name));
        let doc = doc_attr(c.doc.as_deref());
        let simple = match self.program.unalias(ty) {
            Ty::Base(BaseType::String) => {
                let Value::Str(s) = value else { return Err(mismatch(&c.name.name)) };
                let s = s.as_ref();
                Some((quote!(&str), quote!(#s)))
            }
            Ty::Base(BaseType::Binary) => {
                let Value::Str(s) = value else { return Err(mismatch(&c.name.name)) };
                let bytes = Literal::byte_string(s.as_bytes());
                Some((quote!(&[u8]), quote!(#bytes)))
            }
            Ty::Base(_) | Ty::Enum(_) => Some((self.rust_type(ty), self.value_expr(ty, value)?)),
            _ => None,
        };
        Ok(match simple {
            Some((rust, expr)) => quote! { #doc pub const #name: #rust = #expr; },
            None => {
                let rust = self.rust_type(ty);
                let expr = self.value_expr(ty, value)?;
                quote! {
                    #doc
                    pub static #name: __pc::LazyLock<#rust> = __pc::LazyLock::new(|| #expr);
                }
            }
        })
    }

    /// A Rust expression of type `ty` for a resolved value.
    pub(crate) fn value_expr(&self, ty: &Ty, value: &Value) -> Result<TokenStream, CodegenError> {
        let bad = || CodegenError(format!("value {value:?} does not fit type {ty:?}"));
        Ok(match (self.program.unalias(ty), value) {
            (Ty::Base(BaseType::Bool), Value::Int(v)) => {
                let b = *v != 0;
                quote!(#b)
            }
            (Ty::Base(BaseType::I8), Value::Int(v)) => lit(Literal::i8_suffixed(*v as i8)),
            (Ty::Base(BaseType::I16), Value::Int(v)) => lit(Literal::i16_suffixed(*v as i16)),
            (Ty::Base(BaseType::I32), Value::Int(v)) => lit(Literal::i32_suffixed(*v as i32)),
            (Ty::Base(BaseType::I64), Value::Int(v)) => lit(Literal::i64_suffixed(*v)),
            (Ty::Base(BaseType::Double), Value::Int(v)) => lit(Literal::f64_suffixed(*v as f64)),
            (Ty::Base(BaseType::Double), Value::Double(v)) if v.is_finite() => lit(Literal::f64_suffixed(*v)),
            (Ty::Base(BaseType::Double), Value::Double(v)) if v.is_nan() => quote!(f64::NAN),
            (Ty::Base(BaseType::Double), Value::Double(v)) if *v > 0.0 => quote!(f64::INFINITY),
            (Ty::Base(BaseType::Double), Value::Double(_)) => quote!(f64::NEG_INFINITY),
            (Ty::Base(BaseType::String), Value::Str(s)) => {
                let s = s.as_ref();
                quote!(__pc::String::from(#s))
            }
            (Ty::Base(BaseType::Binary), Value::Str(s)) => {
                let bytes = Literal::byte_string(s.as_bytes());
                quote!(__pc::Bytes::from_static(#bytes))
            }
            (Ty::Base(BaseType::Uuid), Value::Str(s)) => {
                let bytes = parse_uuid(s).ok_or_else(|| CodegenError(format!("{s:?} is not a UUID")))?;
                quote!([#(#bytes),*])
            }
            (Ty::Enum(id), Value::Int(v)) => {
                let path = self.path(*id);
                let v = *v as i32;
                quote!(#path(#v))
            }
            (unaliased @ (Ty::List(elem) | Ty::Set(elem)), Value::List(items)) => {
                let container = self.rust_type(unaliased);
                let items = items.iter().map(|i| self.value_expr(elem, i)).collect::<Result<Vec<_>, _>>()?;
                quote!(<#container as __pc::FromIterator<_>>::from_iter([#(#items),*]))
            }
            (unaliased @ Ty::Map(k, v), Value::Map(entries)) => {
                let container = self.rust_type(unaliased);
                let entries = entries
                    .iter()
                    .map(|(key, val)| {
                        let (key, val) = (self.value_expr(k, key)?, self.value_expr(v, val)?);
                        Ok(quote!((#key, #val)))
                    })
                    .collect::<Result<Vec<_>, CodegenError>>()?;
                quote!(<#container as __pc::FromIterator<_>>::from_iter([#(#entries),*]))
            }
            (Ty::Struct(id), Value::Struct(given)) => self.struct_literal(*id, given)?,
            _ => return Err(bad()),
        })
    }

    fn struct_literal(
        &self,
        id: crate::ir::DefId,
        given: &[(usize, Value)],
    ) -> Result<TokenStream, CodegenError> {
        let Definition::Struct(s) = self.program.def(id) else {
            return Err(CodegenError("not a struct".into()));
        };
        let path = self.path(id);
        let shapes = self.field_shapes(id, &s.fields)?;
        if s.kind == crate::ast::StructKind::Union {
            let [(index, value)] = given else {
                return Err(CodegenError(format!("a `{}` constant must set exactly one field", s.name.name)));
            };
            let f = &shapes[*index];
            let variant = ident(&names::escape(&super::upper_camel(&f.field.name.name)));
            let expr = self.value_expr(f.ty, value)?;
            let expr = if f.boxed { quote!(__pc::Box::new(#expr)) } else { expr };
            return Ok(quote!(#path::#variant(#expr)));
        }
        let inits = shapes
            .iter()
            .enumerate()
            .map(|(index, f)| {
                let fname = &f.name;
                let value = match given.iter().find(|(i, _)| *i == index) {
                    Some((_, v)) => {
                        let expr = self.value_expr(f.ty, v)?;
                        let expr = if f.boxed { quote!(__pc::Box::new(#expr)) } else { expr };
                        if f.option { quote!(__pc::Some(#expr)) } else { expr }
                    }
                    None => self.field_default(f)?,
                };
                Ok(quote! { #fname: #value, })
            })
            .collect::<Result<Vec<_>, CodegenError>>()?;
        Ok(quote!(#path { #(#inits)* }))
    }
}

fn lit(l: Literal) -> TokenStream {
    quote!(#l)
}

fn mismatch(name: &str) -> CodegenError {
    CodegenError(format!("constant `{name}` does not match its type"))
}

fn parse_uuid(s: &str) -> Option<Vec<u8>> {
    let hex: String = s.trim_matches(['{', '}']).chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        return None;
    }
    (0..16).map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()).collect()
}
