//! The shape every generated `Encode`/`Decode` pair shares: a struct written field by field, and a
//! field loop that keeps known fields and skips the rest.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};

/// `impl Encode` and `impl Decode` for `name` with these bodies, and `impl Wire` (a struct on the
/// wire) so that other types can hold it.
pub(crate) fn codec_impls(name: &impl ToTokens, encode: TokenStream, decode: TokenStream) -> TokenStream {
    quote! {
        __pc::struct_wire!(#name);
        impl __pc::Encode for #name {
            fn encode<W: __pc::ProtocolWriter>(&self, w: &mut W) -> __pc::Result<(), __pc::ProtocolError> {
                #encode
            }
        }
        impl __pc::Decode for #name {
            fn decode<R: __pc::ProtocolReader>(r: &mut R) -> __pc::Result<Self, __pc::ProtocolError> {
                #decode
            }
        }
    }
}

/// An `encode` body: the struct header, `writes`, the stop field.
pub(crate) fn encode_body(idl_name: &str, writes: TokenStream) -> TokenStream {
    quote! {
        w.write_struct_begin(#idl_name)?;
        #writes
        w.write_field_stop()?;
        w.write_struct_end()
    }
}

/// A `decode` body: `prologue`, then the fields through `read_fields`, matching `(id, type)` against
/// `arms` (each an assignment; unknown fields are skipped), then `finish` as the result.
pub(crate) fn decode_body(
    prologue: TokenStream,
    arms: impl IntoIterator<Item = TokenStream>,
    finish: TokenStream,
) -> TokenStream {
    let arms = arms.into_iter();
    quote! {
        #prologue
        __pc::read_fields(r, |r, id, ttype| {
            match (id, ttype) {
                #(#arms)*
                _ => return __pc::Ok(false),
            }
            __pc::Ok(true)
        })?;
        #finish
    }
}
