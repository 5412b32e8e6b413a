//! Reading `#[service(appkey = "...")]` and the `impl Trait for Type` it sits on.

use proc_macro2::TokenStream;
use syn::parse::{Parse, ParseStream};
use syn::{Ident, ItemImpl, LitStr, Token};

/// What the attribute and its item say.
pub(crate) struct ServiceInput {
    pub(crate) appkey: LitStr,
    pub(crate) item: ItemImpl,
}

struct Args {
    appkey: Option<LitStr>,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut appkey = None;
        while !input.is_empty() {
            let key: Ident = input.parse()?;
            input.parse::<Token![=]>()?;
            match key.to_string().as_str() {
                "appkey" => {
                    if appkey.is_some() {
                        return Err(syn::Error::new_spanned(key, "`appkey` is given twice"));
                    }
                    appkey = Some(input.parse()?);
                }
                _ => {
                    return Err(syn::Error::new_spanned(
                        &key,
                        format!("unknown argument `{key}`; expected `appkey = \"...\"`"),
                    ));
                }
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(Args { appkey })
    }
}

pub(crate) fn parse(attr: TokenStream, item: TokenStream) -> syn::Result<ServiceInput> {
    let args: Args = syn::parse2(attr)?;
    let item: ItemImpl = syn::parse2(item)?;
    let appkey = args.appkey.ok_or_else(|| {
        syn::Error::new(
            proc_macro2::Span::call_site(),
            "missing `appkey`: write #[probe::service(appkey = \"your_app\")]",
        )
    })?;
    Ok(ServiceInput { appkey, item })
}
