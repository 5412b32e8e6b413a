//! Output: the impl as written, and the handler's binding to its appkey and service trait.

use proc_macro2::TokenStream;
use quote::quote;

use crate::parse::ServiceInput;

pub(crate) fn expand(input: &ServiceInput) -> TokenStream {
    let item = &input.item;
    let appkey = &input.appkey;
    let self_ty = &item.self_ty;
    let (impl_generics, _, where_clause) = item.generics.split_for_impl();
    let trait_name = item
        .trait_
        .as_ref()
        .and_then(|(_, path, _)| path.segments.last())
        .map(|segment| segment.ident.to_string())
        .unwrap_or_default();
    quote! {
        #item

        impl #impl_generics #self_ty #where_clause {
            /// The appkey this handler registers under.
            pub const APPKEY: &'static str = #appkey;
            /// The generated service trait this handler implements.
            pub const SERVICE_TRAIT: &'static str = #trait_name;
        }
    }
}
