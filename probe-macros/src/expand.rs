//! Output: the impl as written, and the handler's binding to its appkey and service trait.

use proc_macro2::TokenStream;
use quote::quote;

use crate::parse::ServiceInput;

pub(crate) fn expand(input: &ServiceInput) -> TokenStream {
    let item = &input.item;
    let appkey = &input.appkey;
    let self_ty = &item.self_ty;
    let (impl_generics, _, where_clause) = item.generics.split_for_impl();
    // Every generated trait carries hidden items naming its service and wrapping a handler in
    // its server, so the macro needs only the trait path the user wrote.
    let trait_path =
        item.trait_.as_ref().map(|(_, path, _)| path.clone()).unwrap_or_else(|| syn::parse_quote!(Unknown));
    let trait_ident = trait_path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default();
    let service_const = quote::format_ident!("__PROBE_SERVICE_{}", trait_ident);
    let into_server = quote::format_ident!("__probe_into_server_{}", trait_ident);
    quote! {
        #item

        impl #impl_generics #self_ty #where_clause {
            /// The appkey this handler registers under.
            pub const APPKEY: &'static str = #appkey;
        }

        impl #impl_generics ::probe::Provider for #self_ty #where_clause {
            const APPKEY: &'static str = #appkey;
            const SERVICE: &'static str = <Self as #trait_path>::#service_const;
            fn into_service(self) -> ::std::sync::Arc<dyn ::probe::Dispatch> {
                <Self as #trait_path>::#into_server(self)
            }
        }
    }
}
