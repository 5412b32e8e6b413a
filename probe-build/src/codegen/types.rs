//! Rust types of IDL types, and the code that writes and reads a value of each on the wire.

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
                if hashable { quote!(__pc::HashSet<#elem>) } else { quote!(__pc::Vec<#elem>) }
            }
            Ty::Map(k, v) => {
                let hashable = self.analysis.is_hashable(self.program, k);
                let (k, v) = (self.rust_type(k), self.rust_type(v));
                if hashable { quote!(__pc::HashMap<#k, #v>) } else { quote!(__pc::Vec<(#k, #v)>) }
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

    /// Statements writing the value behind the reference expression `v` (of type `&T`) to `w`.
    pub(crate) fn write_value(&self, ty: &Ty, v: &TokenStream, depth: usize) -> TokenStream {
        let unaliased = self.program.unalias(ty);
        // `v` as a method receiver: `&self.x` must become `(&self.x)` before `.len()`.
        let recv = if syn::parse2::<syn::Ident>(v.clone()).is_ok() { v.clone() } else { quote!((#v)) };
        match unaliased {
            Ty::Base(b) => {
                let (method, arg) = match b {
                    BaseType::Bool => ("write_bool", quote!(*#v)),
                    BaseType::I8 => ("write_i8", quote!(*#v)),
                    BaseType::I16 => ("write_i16", quote!(*#v)),
                    BaseType::I32 => ("write_i32", quote!(*#v)),
                    BaseType::I64 => ("write_i64", quote!(*#v)),
                    BaseType::Double => ("write_double", quote!(*#v)),
                    BaseType::String => ("write_string", quote!(#v)),
                    BaseType::Binary => ("write_binary", quote!(#v)),
                    BaseType::Uuid => ("write_uuid", quote!(#v)),
                };
                let method = format_ident!("{method}");
                quote! { w.#method(#arg)?; }
            }
            Ty::Enum(_) => quote! { w.write_i32(#recv.0)?; },
            Ty::Struct(_) | Ty::Alias(_) => quote! { __pc::Encode::encode(#v, w)?; },
            Ty::List(elem) | Ty::Set(elem) => {
                let (begin, end) = if matches!(unaliased, Ty::List(_)) {
                    (quote!(write_list_begin), quote!(write_list_end))
                } else {
                    (quote!(write_set_begin), quote!(write_set_end))
                };
                let tt = self.ttype(elem);
                let e = format_ident!("e{depth}");
                let inner = self.write_value(elem, &quote!(#e), depth + 1);
                quote! {
                    w.#begin(#tt, #recv.len())?;
                    for #e in #recv.iter() { #inner }
                    w.#end()?;
                }
            }
            Ty::Map(k, val) => {
                let (kt, vt) = (self.ttype(k), self.ttype(val));
                let (ke, ve) = (format_ident!("k{depth}"), format_ident!("v{depth}"));
                let wk = self.write_value(k, &quote!(#ke), depth + 1);
                let wv = self.write_value(val, &quote!(#ve), depth + 1);
                quote! {
                    w.write_map_begin(#kt, #vt, #recv.len())?;
                    for (#ke, #ve) in #recv.iter() { #wk #wv }
                    w.write_map_end()?;
                }
            }
        }
    }

    /// An expression reading a value of `ty` from `r`.
    pub(crate) fn read_value(&self, ty: &Ty, depth: usize) -> TokenStream {
        let unaliased = self.program.unalias(ty);
        match unaliased {
            Ty::Base(b) => {
                let method = format_ident!(
                    "{}",
                    match b {
                        BaseType::Bool => "read_bool",
                        BaseType::I8 => "read_i8",
                        BaseType::I16 => "read_i16",
                        BaseType::I32 => "read_i32",
                        BaseType::I64 => "read_i64",
                        BaseType::Double => "read_double",
                        BaseType::String => "read_string",
                        BaseType::Binary => "read_binary",
                        BaseType::Uuid => "read_uuid",
                    }
                );
                quote!(r.#method()?)
            }
            Ty::Enum(id) => {
                let path = self.path(*id);
                quote!(#path(r.read_i32()?))
            }
            Ty::Struct(_) | Ty::Alias(_) => {
                let rust = self.rust_type(ty);
                quote!(<#rust as __pc::Decode>::decode(r)?)
            }
            Ty::List(elem) | Ty::Set(elem) => {
                let (begin, end) = if matches!(unaliased, Ty::List(_)) {
                    (quote!(read_list_begin), quote!(read_list_end))
                } else {
                    (quote!(read_set_begin), quote!(read_set_end))
                };
                let container = self.rust_type(unaliased);
                let insert = if matches!(unaliased, Ty::Set(e) if self.analysis.is_hashable(self.program, e))
                {
                    quote!(insert)
                } else {
                    quote!(push)
                };
                let tt = self.ttype(elem);
                let read = self.read_value(elem, depth + 1);
                let h = format_ident!("h{depth}");
                let out = format_ident!("out{depth}");
                quote! {{
                    let #h = r.#begin()?;
                    __pc::check_elem(#h.elem, #tt, #h.len)?;
                    let mut #out: #container = __pc::with_capacity(#h.capacity_hint());
                    for _ in 0..#h.len { #out.#insert(#read); }
                    r.#end()?;
                    #out
                }}
            }
            Ty::Map(k, v) => {
                let container = self.rust_type(unaliased);
                let insert = if self.analysis.is_hashable(self.program, k) {
                    quote!(insert(key, value))
                } else {
                    quote!(push((key, value)))
                };
                let (kt, vt) = (self.ttype(k), self.ttype(v));
                let (rk, rv) = (self.read_value(k, depth + 1), self.read_value(v, depth + 1));
                let h = format_ident!("h{depth}");
                let out = format_ident!("out{depth}");
                quote! {{
                    let #h = r.read_map_begin()?;
                    __pc::check_map(&#h, #kt, #vt)?;
                    let mut #out: #container = __pc::with_capacity(#h.capacity_hint());
                    for _ in 0..#h.len {
                        let key = #rk;
                        let value = #rv;
                        #out.#insert;
                    }
                    r.read_map_end()?;
                    #out
                }}
            }
        }
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
