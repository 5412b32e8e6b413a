//! Procedural macros of probe. Use them through the `probe` crate: `#[probe::service(appkey = "...")]`.
//!
//! The macro is split the way thiserror's is: `parse` reads the attribute and the item, `validate`
//! checks them and reports spanned errors, `expand` writes the output.

use proc_macro::TokenStream;

mod expand;
mod parse;
mod validate;

/// Binds a handler `impl` of a generated service trait to an appkey: implements `probe::Provider`,
/// so `probe::Server::builder().add_provider(handler)` serves it through the generated `FooServer`.
///
/// ```
/// # mod idl {
/// #     use probe::__codegen as __pc;
/// #     pub trait Echo: Send + Sync + 'static {
/// #         const __PROBE_SERVICE_Echo: &'static str = "Echo";
/// #         fn __probe_into_server_Echo(self) -> std::sync::Arc<dyn probe::Dispatch> where Self: Sized {
/// #             std::sync::Arc::new(EchoServer::new(self))
/// #         }
/// #     }
/// #     pub struct EchoServer<H>(std::sync::Arc<H>);
/// #     impl<H: Echo> EchoServer<H> {
/// #         pub const SERVICE: &'static str = "Echo";
/// #         pub fn new(h: H) -> Self { Self(std::sync::Arc::new(h)) }
/// #     }
/// #     impl<H: Echo> __pc::Dispatch for EchoServer<H> {
/// #         fn service_name(&self) -> &'static str { "Echo" }
/// #         fn methods(&self) -> &'static [__pc::MethodInfo] { &[] }
/// #         fn dispatch(&self, r: __pc::Request) -> __pc::BoxFuture<'_, __pc::Reply> {
/// #             Box::pin(async move { r.unknown_method() })
/// #         }
/// #     }
/// # }
/// use idl::Echo;
/// struct Handler;
///
/// #[probe::service(appkey = "greeter_app")]
/// impl Echo for Handler {}
///
/// assert_eq!(Handler::APPKEY, "greeter_app");
/// assert_eq!(<Handler as probe::Provider>::SERVICE, "Echo");
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
