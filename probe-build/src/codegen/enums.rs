//! IDL enums as `i32` newtypes with a constant per value: a value a newer peer added still decodes
//! and round-trips.

use proc_macro2::TokenStream;
use quote::quote;

use crate::ast::Enum;
use crate::ir::DefId;
use crate::names;

use super::{Gen, doc_attr, ident};

impl Gen<'_> {
    pub(crate) fn enumeration(&self, id: DefId, e: &Enum) -> TokenStream {
        let name = ident(&names::type_name(&e.name.name));
        let doc = doc_attr(e.doc.as_deref());
        let values = &self.program.files[id.file].enum_values;
        let mut seen = std::collections::HashSet::new();
        let consts: Vec<_> = e
            .values
            .iter()
            .filter(|v| seen.insert(v.name.name.clone()))
            .map(|v| {
                let value = values.get(&(id.index, v.name.name.clone())).copied().unwrap_or_default() as i32;
                (ident(&names::escape(&v.name.name)), value, &*v.name.name, doc_attr(v.doc.as_deref()))
            })
            .collect();
        let defs =
            consts.iter().map(|(c, value, _, vdoc)| quote! { #vdoc pub const #c: Self = Self(#value); });
        let list = consts.iter().map(|(c, ..)| quote!(Self::#c));
        let mut named = std::collections::HashSet::new();
        let arms = consts
            .iter()
            .filter(|(_, value, ..)| named.insert(*value))
            .map(|(_, value, text, _)| quote! { #value => __pc::Some(#text), });
        let idl_name = &*e.name.name;
        quote! {
            #doc
            #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
            pub struct #name(pub i32);
            impl #name {
                #(#defs)*
                /// Every value the IDL names, in IDL order.
                pub const VALUES: &'static [Self] = &[#(#list),*];
                /// The IDL name of this value, if it has one.
                pub fn name(&self) -> __pc::Option<&'static str> {
                    match self.0 { #(#arms)* _ => __pc::None }
                }
            }
            impl __pc::fmt::Debug for #name {
                fn fmt(&self, f: &mut __pc::fmt::Formatter<'_>) -> __pc::fmt::Result {
                    match self.name() {
                        __pc::Some(n) => write!(f, "{}::{}", #idl_name, n),
                        __pc::None => write!(f, "{}({})", #idl_name, self.0),
                    }
                }
            }
            impl __pc::Wire for #name {
                const TTYPE: __pc::TType = __pc::TType::I32;
                #[inline]
                fn write<W: __pc::ProtocolWriter>(&self, w: &mut W) -> __pc::Result<(), __pc::ProtocolError> {
                    w.write_i32(self.0)
                }
                #[inline]
                fn read<R: __pc::ProtocolReader>(r: &mut R) -> __pc::Result<Self, __pc::ProtocolError> {
                    r.read_i32().map(Self)
                }
            }
            impl __pc::From<i32> for #name {
                fn from(v: i32) -> Self { Self(v) }
            }
            impl __pc::From<#name> for i32 {
                fn from(v: #name) -> i32 { v.0 }
            }
        }
    }
}
