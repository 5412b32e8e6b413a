//! Procedural macros of probe. Use them through the `probe` crate: `#[probe::service(appkey = "...")]`.
//!
//! The macro is split the way thiserror's is: [`parse`] reads the attribute and the item, [`validate`]
//! checks them and reports spanned errors, [`expand`] writes the output.

use proc_macro::TokenStream;

mod expand;
mod parse;
mod validate;

/// Binds a handler `impl` of a generated service trait to an appkey.
///
/// ```
/// # mod generated { pub trait Greeter { fn hello(&self) -> String; } }
/// # use generated::Greeter;
/// struct Handler;
///
/// #[probe::service(appkey = "greeter_app")]
/// impl Greeter for Handler {
///     fn hello(&self) -> String { "hi".into() }
/// }
///
/// assert_eq!(Handler::APPKEY, "greeter_app");
/// assert_eq!(Handler::SERVICE_TRAIT, "Greeter");
/// ```
///
/// The appkey must match `^\w+$` (letters, digits, underscores); a bad one is a compile error on
/// the string.
#[proc_macro_attribute]
pub fn service(attr: TokenStream, item: TokenStream) -> TokenStream {
    parse::parse(attr.into(), item.into())
        .and_then(|input| validate::validate(&input).map(|()| input))
        .map(|input| expand::expand(&input))
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
