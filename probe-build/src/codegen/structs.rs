//! Structs and exceptions as Rust structs, unions as Rust enums, with their `Encode`/`Decode`.

use proc_macro2::TokenStream;
use quote::quote;

use crate::ast::{Field, Requiredness, Struct, StructKind};
use crate::ir::{DefId, Ty};
use crate::names;

use super::analysis::field_ty;
use super::codec_impl::{codec_impls, decode_body, encode_body};
use super::{CodegenError, Gen, doc_attr, ident, upper_camel};

/// How one field is stored.
pub(crate) struct FieldShape<'a> {
    /// The file that defines the field (its default values are resolved there).
    pub(crate) file: usize,
    pub(crate) field: &'a Field,
    pub(crate) ty: &'a Ty,
    pub(crate) name: proc_macro2::Ident,
    pub(crate) option: bool,
    /// Decoding fails when the field is absent.
    pub(crate) required: bool,
    pub(crate) boxed: bool,
}

impl Gen<'_> {
    pub(crate) fn field_shapes<'a>(
        &'a self,
        id: DefId,
        fields: &'a [Field],
    ) -> Result<Vec<FieldShape<'a>>, CodegenError> {
        let mut used = std::collections::HashSet::new();
        fields
            .iter()
            .enumerate()
            .map(|(index, field)| {
                let ty = field_ty(self.program, id.file, field).ok_or_else(|| {
                    CodegenError(format!("field `{}` has no resolved type", field.name.name))
                })?;
                let mut rust_name = names::field_name(&field.name.name);
                if !used.insert(rust_name.clone()) {
                    rust_name = names::escape(&field.name.name);
                    if !used.insert(rust_name.clone()) {
                        rust_name = format!("{rust_name}_{index}");
                        used.insert(rust_name.clone());
                    }
                }
                Ok(FieldShape {
                    file: id.file,
                    field,
                    ty,
                    name: ident(&rust_name),
                    option: self.analysis.stored_as_option(self.program, id.file, field),
                    required: field.requiredness == Requiredness::Required,
                    boxed: self.analysis.is_boxed(id, index),
                })
            })
            .collect()
    }

    /// The Rust type a field is stored as (without the `Option`).
    pub(crate) fn stored_type(&self, shape: &FieldShape<'_>) -> TokenStream {
        let ty = self.rust_type(shape.ty);
        if shape.boxed { quote!(__pc::Box<#ty>) } else { ty }
    }

    pub(crate) fn structure(&self, id: DefId, s: &Struct) -> Result<TokenStream, CodegenError> {
        let shapes = self.field_shapes(id, &s.fields)?;
        let name = ident(&names::type_name(&s.name.name));
        let doc = doc_attr(s.doc.as_deref());
        let hash = self.analysis.struct_hashable(id).then(|| quote!(Eq, Hash,));
        if s.kind == StructKind::Union {
            return Ok(self.union(&name, &s.name.name, &doc, hash, &shapes));
        }
        let fields = shapes.iter().map(|f| {
            let (fname, ty) = (&f.name, self.stored_type(f));
            let ty = if f.option { quote!(__pc::Option<#ty>) } else { ty };
            let fdoc = doc_attr(f.field.doc.as_deref());
            quote! { #fdoc pub #fname: #ty, }
        });
        let defaultable = self.analysis.struct_defaultable(id);
        let has_idl_defaults = shapes.iter().any(|f| f.field.default.is_some() && !f.option);
        let derive_default = (defaultable && !has_idl_defaults).then(|| quote!(Default,));
        let default_impl = if defaultable && has_idl_defaults {
            let inits = shapes.iter().map(|f| {
                let fname = &f.name;
                let value = self.field_default(f)?;
                Ok(quote! { #fname: #value, })
            });
            let inits = inits.collect::<Result<Vec<_>, CodegenError>>()?;
            quote! {
                impl __pc::Default for #name {
                    fn default() -> Self { Self { #(#inits)* } }
                }
            }
        } else {
            TokenStream::new()
        };
        let exception = (s.kind == StructKind::Exception).then(|| {
            quote! {
                impl __pc::fmt::Display for #name {
                    fn fmt(&self, f: &mut __pc::fmt::Formatter<'_>) -> __pc::fmt::Result {
                        __pc::fmt::Debug::fmt(self, f)
                    }
                }
                impl __pc::StdError for #name {}
            }
        });
        let codec = codec_impls(
            &name,
            self.struct_encode(&s.name.name, &shapes),
            self.struct_decode(&s.name.name, &shapes)?,
        );
        Ok(quote! {
            #doc
            #[derive(Debug, Clone, PartialEq, #hash #derive_default)]
            pub struct #name { #(#fields)* }
            #default_impl
            #exception
            #codec
        })
    }

    /// The value a field takes when the wire does not carry it (and in `Default`).
    pub(crate) fn field_default(&self, f: &FieldShape<'_>) -> Result<TokenStream, CodegenError> {
        if f.option {
            return Ok(quote!(__pc::None));
        }
        let value = match &f.field.default {
            Some(default) => {
                let value = self.program.files[f.file].values.get(&default.span.start).ok_or_else(|| {
                    CodegenError(format!("default of `{}` has no resolved value", f.field.name.name))
                })?;
                self.value_expr(f.ty, value)?
            }
            None => quote!(__pc::Default::default()),
        };
        Ok(if f.boxed { quote!(__pc::Box::new(#value)) } else { value })
    }

    /// Field-writing statements for fields stored in `self`.
    pub(crate) fn struct_encode(&self, idl_name: &str, shapes: &[FieldShape<'_>]) -> TokenStream {
        let writes = shapes.iter().map(|f| {
            let fname = &f.name;
            let id = f.field.id as i16;
            if f.option {
                quote! { if let __pc::Some(v) = &self.#fname { __pc::write_field(w, #id, v)?; } }
            } else {
                quote! { __pc::write_field(w, #id, &self.#fname)?; }
            }
        });
        encode_body(idl_name, quote!(#(#writes)*))
    }

    /// The body of `decode` for a struct whose fields are `shapes`.
    pub(crate) fn struct_decode(
        &self,
        idl_name: &str,
        shapes: &[FieldShape<'_>],
    ) -> Result<TokenStream, CodegenError> {
        let slots: Vec<_> = (0..shapes.len()).map(|i| quote::format_ident!("f{i}")).collect();
        let decls = shapes.iter().zip(&slots).map(|(f, slot)| {
            let ty = self.stored_type(f);
            quote! { let mut #slot: __pc::Option<#ty> = __pc::None; }
        });
        let arms = shapes.iter().zip(&slots).map(|(f, slot)| {
            let id = f.field.id as i16;
            let tt = self.ttype(f.ty);
            quote! { (#id, #tt) => #slot = __pc::Some(__pc::Wire::read(r)?), }
        });
        let inits = shapes
            .iter()
            .zip(&slots)
            .map(|(f, slot)| {
                let fname = &f.name;
                let field_name = &*f.field.name.name;
                Ok(if f.option {
                    quote! { #fname: #slot, }
                } else if f.required {
                    quote! { #fname: __pc::required(#slot, #idl_name, #field_name)?, }
                } else {
                    let default = self.field_default(f)?;
                    quote! { #fname: match #slot { __pc::Some(v) => v, __pc::None => #default }, }
                })
            })
            .collect::<Result<Vec<_>, CodegenError>>()?;
        Ok(decode_body(quote!(#(#decls)*), arms, quote!(__pc::Ok(Self { #(#inits)* }))))
    }

    fn union(
        &self,
        name: &proc_macro2::Ident,
        idl_name: &str,
        doc: &TokenStream,
        hash: Option<TokenStream>,
        shapes: &[FieldShape<'_>],
    ) -> TokenStream {
        let variant = |f: &FieldShape<'_>| ident(&names::escape(&upper_camel(&f.field.name.name)));
        let variants = shapes.iter().map(|f| {
            let (v, ty, fdoc) = (variant(f), self.stored_type(f), doc_attr(f.field.doc.as_deref()));
            quote! { #fdoc #v(#ty), }
        });
        let writes = shapes.iter().map(|f| {
            let v = variant(f);
            let id = f.field.id as i16;
            quote! { Self::#v(value) => __pc::write_field(w, #id, value)?, }
        });
        let arms = shapes.iter().map(|f| {
            let v = variant(f);
            let id = f.field.id as i16;
            let tt = self.ttype(f.ty);
            quote! { (#id, #tt) => value = __pc::Some(Self::#v(__pc::Wire::read(r)?)), }
        });
        let write_match =
            if shapes.is_empty() { quote!(match *self {}) } else { quote!(match self { #(#writes)* }) };
        let value_decl = if shapes.is_empty() {
            quote! { let value: __pc::Option<Self> = __pc::None; }
        } else {
            quote! { let mut value: __pc::Option<Self> = __pc::None; }
        };
        let encode = encode_body(idl_name, write_match);
        let decode = decode_body(
            value_decl,
            arms,
            quote!(value.ok_or(__pc::ProtocolError::EmptyUnion { union: #idl_name })),
        );
        let codec = codec_impls(name, encode, decode);
        quote! {
            #doc
            #[derive(Debug, Clone, PartialEq, #hash)]
            pub enum #name { #(#variants)* }
            #codec
        }
    }
}
