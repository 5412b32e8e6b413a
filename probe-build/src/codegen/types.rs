//! Rust types of IDL types, and the code that writes and reads a value of each on the wire (through
//! the runtime's `Wire` trait, which every generated type implements too).

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::ast::BaseType;
use crate::ir::Ty;

use super::Gen;

impl Gen<'_> {
    /// The Rust type of a resolved IDL type.
    pub(crate) fn rust_type(&self, ty: &Ty) -> TokenStream {
        match ty {
            Ty::Base(b) => base_type(*b),
            Ty::List(elem) => {
                let elem = self.rust_type(elem);
                quote!(__pc::Vec<#elem>)
            }
            Ty::Set(elem) => {
                let hashable = self.analysis.is_hashable(self.program, elem);
                let elem = self.rust_type(elem);
                if hashable { quote!(__pc::HashSet<#elem>) } else { quote!(__pc::ListSet<#elem>) }
            }
            Ty::Map(k, v) => {
                let hashable = self.analysis.is_hashable(self.program, k);
                let (k, v) = (self.rust_type(k), self.rust_type(v));
                if hashable { quote!(__pc::HashMap<#k, #v>) } else { quote!(__pc::ListMap<#k, #v>) }
            }
            Ty::Enum(id) | Ty::Struct(id) | Ty::Alias(id) => self.path(*id),
        }
    }

    /// The wire type tag of an IDL type.
    pub(crate) fn ttype(&self, ty: &Ty) -> TokenStream {
        let name = match self.program.unalias(ty) {
            Ty::Base(BaseType::Bool) => "Bool",
            Ty::Base(BaseType::I8) => "I8",
            Ty::Base(BaseType::I16) => "I16",
            Ty::Base(BaseType::I32) | Ty::Enum(_) => "I32",
            Ty::Base(BaseType::I64) => "I64",
            Ty::Base(BaseType::Double) => "Double",
            Ty::Base(BaseType::String | BaseType::Binary) => "String",
            Ty::Base(BaseType::Uuid) => "Uuid",
            Ty::List(_) => "List",
            Ty::Set(_) => "Set",
            Ty::Map(..) => "Map",
            Ty::Struct(_) | Ty::Alias(_) => "Struct",
        };
        let name = format_ident!("{name}");
        quote!(__pc::TType::#name)
    }
}

fn base_type(b: BaseType) -> TokenStream {
    match b {
        BaseType::Bool => quote!(bool),
        BaseType::I8 => quote!(i8),
        BaseType::I16 => quote!(i16),
        BaseType::I32 => quote!(i32),
        BaseType::I64 => quote!(i64),
        BaseType::Double => quote!(f64),
        BaseType::String => quote!(__pc::String),
        BaseType::Binary => quote!(__pc::Bytes),
        BaseType::Uuid => quote!([u8; 16]),
    }
}
