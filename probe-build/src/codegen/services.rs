//! Per service: a handler trait with async methods, argument and result structs, an exception enum
//! per method that declares `throws`, a server (`FooServer<H>`, a `Dispatch`) and a client
//! (`FooClient`, over a `Channel`). `extends` makes the base trait a supertrait, and the server and
//! client of the extending service serve and call the inherited methods too.

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

use crate::ast::{Definition, Function, Service};
use crate::ir::DefId;
use crate::names;

use super::codec_impl::codec_impls;
use super::structs::FieldShape;
use super::{CodegenError, Gen, doc_attr, ident, upper_camel};

/// Names generated for one function.
struct Method<'a> {
    owner: DefId,
    function: &'a Function,
    rust: Ident,
    args: Ident,
    exception: Option<Ident>,
}

impl Gen<'_> {
    fn method<'a>(&self, owner: DefId, service: &Service, function: &'a Function) -> Method<'a> {
        let position = service.functions.iter().position(|f| std::ptr::eq(f, function)).unwrap_or(0);
        let (rust, camel) = match self.method_names.get(&owner).and_then(|names| names.get(position)) {
            Some(names) => names.clone(),
            None => method_names(service).swap_remove(position),
        };
        let base = format!("{}{camel}", service.name.name);
        Method {
            owner,
            function,
            rust: ident(&names::escape(&rust)),
            args: format_ident!("{base}Args"),
            exception: (!function.throws.is_empty()).then(|| format_ident!("{base}Exception")),
        }
    }

    /// Own functions first, then inherited ones (nearest base first), each name once.
    fn all_methods<'a>(&'a self, id: DefId, service: &'a Service) -> Vec<Method<'a>> {
        let mut out: Vec<Method<'a>> = Vec::new();
        let mut current = Some((id, service));
        let mut hops = 0;
        while let Some((owner, s)) = current {
            for f in &s.functions {
                if !out.iter().any(|m| m.function.name.name == f.name.name) {
                    out.push(self.method(owner, s, f));
                }
            }
            current = self.base(owner, s);
            hops += 1;
            if hops > 64 {
                break;
            }
        }
        out
    }

    fn base(&self, owner: DefId, s: &Service) -> Option<(DefId, &Service)> {
        let name = s.extends.as_ref()?;
        let file = &self.program.files[owner.file];
        let base_id = if let Some(&index) = file.names.get(&name.name) {
            DefId { file: owner.file, index }
        } else {
            let (stem, rest) = file.includes.iter().find_map(|(stem, _)| {
                name.name.strip_prefix(stem.as_str()).and_then(|r| r.strip_prefix('.')).map(|r| (stem, r))
            })?;
            let included = file.includes[stem];
            DefId { file: included, index: *self.program.files[included].names.get(rest)? }
        };
        match self.program.def(base_id) {
            Definition::Service(b) => Some((base_id, b)),
            _ => None,
        }
    }

    fn exception_type(&self, m: &Method<'_>) -> TokenStream {
        match &m.exception {
            Some(e) => self.qualify(m.owner.file, quote!(#e)),
            None => quote!(__pc::NoException),
        }
    }

    fn return_type(&self, m: &Method<'_>) -> TokenStream {
        match &m.function.returns {
            Some(t) => {
                let ty = self.program.files[m.owner.file].types.get(&t.span.start);
                ty.map_or_else(|| quote!(()), |ty| self.rust_type(ty))
            }
            None => quote!(()),
        }
    }

    /// The runtime's result struct for a method: `Outcome<T, E>` or `VoidOutcome<E>`.
    fn outcome_type(&self, m: &Method<'_>) -> TokenStream {
        let exc = self.exception_type(m);
        match &m.function.returns {
            Some(_) => {
                let ret = self.return_type(m);
                quote!(__pc::Outcome<#ret, #exc>)
            }
            None => quote!(__pc::VoidOutcome<#exc>),
        }
    }

    fn arg_shapes<'a>(&'a self, m: &Method<'a>) -> Result<Vec<FieldShape<'a>>, CodegenError> {
        let mut shapes = self.field_shapes(m.owner, &m.function.args)?;
        for s in &mut shapes {
            s.option = false;
            s.boxed = false;
            s.required = s.required || !self.analysis.is_defaultable(self.program, s.ty);
        }
        Ok(shapes)
    }

    /// For each function of a service, the earlier function whose exception enum it shares (methods
    /// that declare the same exceptions, a common API style, share one enum; the later ones name it
    /// through a type alias).
    pub(crate) fn shared_exceptions(&self, id: DefId, s: &Service) -> Vec<Option<usize>> {
        let mut first: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        s.functions
            .iter()
            .enumerate()
            .map(|(k, f)| {
                if f.throws.is_empty() {
                    return None;
                }
                let signature = self.throws_signature(&self.method(id, s, f));
                match first.get(&signature) {
                    Some(&earlier) => Some(earlier),
                    None => {
                        first.insert(signature, k);
                        None
                    }
                }
            })
            .collect()
    }

    /// How many independently generated parts a service has: one per function, then the trait,
    /// the server and the client's parts.
    pub(crate) fn service_parts(&self, id: DefId, s: &Service) -> usize {
        s.functions.len() + 2 + self.client_parts(id, s)
    }

    /// One part of a service (see [`Gen::service_parts`]); `shared` is from `shared_exceptions`.
    pub(crate) fn service_part(
        &self,
        id: DefId,
        s: &Service,
        part: usize,
        shared: &[Option<usize>],
    ) -> Result<TokenStream, CodegenError> {
        let n = s.functions.len();
        if part == n {
            return self.handler_trait(id, s);
        }
        if part == n + 1 {
            return self.server(id, s);
        }
        if part > n + 1 {
            return self.client(id, s, part - n - 2);
        }
        let f = &s.functions[part];
        let m = self.method(id, s, f);
        let args = self.args_struct(&m)?;
        let exceptions = match (&m.exception, shared.get(part).copied().flatten()) {
            (Some(name), Some(earlier)) => {
                let first = self.method(id, s, &s.functions[earlier]).exception;
                let first_name = first.as_ref().map(ToString::to_string).unwrap_or_default();
                let doc =
                    format!(" The exceptions `{}` declares (the same as [`{first_name}`]).", f.name.name);
                quote! { #[doc = #doc] pub type #name = #first; }
            }
            _ => self.exception_enum(&m).unwrap_or_default(),
        };
        Ok(quote! { #args #exceptions })
    }

    fn args_struct(&self, m: &Method<'_>) -> Result<TokenStream, CodegenError> {
        let shapes = self.arg_shapes(m)?;
        let name = &m.args;
        let fields = shapes.iter().map(|f| {
            let (fname, ty) = (&f.name, self.stored_type(f));
            quote! { pub #fname: #ty, }
        });
        let idl_name = format!("{}_args", m.function.name.name);
        let codec = codec_impls(
            name,
            self.struct_encode(&idl_name, &shapes),
            self.struct_decode(&idl_name, &shapes)?,
        );
        let doc = format!(" Arguments of `{}`.", m.function.name.name);
        Ok(quote! {
            #[doc = #doc]
            #[derive(Debug, Clone, PartialEq)]
            pub struct #name { #(#fields)* }
            #codec
        })
    }

    /// What makes two methods' exception enums identical: each throw's name, id and type.
    fn throws_signature(&self, m: &Method<'_>) -> String {
        let file = &self.program.files[m.owner.file];
        m.function
            .throws
            .iter()
            .map(|t| {
                let ty = file.types.get(&t.ty.span.start).map(|ty| self.rust_type(ty).to_string());
                format!("{}:{}:{}", t.name.name, t.id, ty.unwrap_or_default())
            })
            .collect::<Vec<_>>()
            .join(";")
    }

    fn exception_enum(&self, m: &Method<'_>) -> Option<TokenStream> {
        let name = m.exception.as_ref()?;
        let shapes = self.field_shapes(m.owner, &m.function.throws).ok()?;
        let variants: Vec<(Ident, TokenStream)> = shapes
            .iter()
            .map(|s| (ident(&names::escape(&upper_camel(&s.field.name.name))), self.rust_type(s.ty)))
            .collect();
        let decls = variants.iter().map(|(v, ty)| quote! { #v(#ty), });
        let writes = variants.iter().zip(&m.function.throws).map(|((v, _), t)| {
            let id = t.id as i16;
            quote! { Self::#v(e) => __pc::write_field(w, #id, e), }
        });
        let reads = variants.iter().zip(&shapes).map(|((v, _), shape)| {
            let (id, tt) = (shape.field.id as i16, self.ttype(shape.ty));
            quote! { (#id, #tt) => __pc::Ok(__pc::Some(Self::#v(__pc::Wire::read(r)?))), }
        });
        let mut seen = std::collections::HashSet::new();
        let froms = variants
            .iter()
            .filter(|(_, ty)| seen.insert(ty.to_string()))
            .filter(|(_, ty)| variants.iter().filter(|(_, t)| t.to_string() == ty.to_string()).count() == 1);
        let froms = froms.map(|(v, ty)| {
            quote! {
                impl __pc::From<#ty> for __pc::CallError<#name> {
                    fn from(e: #ty) -> Self { __pc::CallError::Exception(#name::#v(e)) }
                }
            }
        });
        let doc = format!(" The exceptions `{}` declares.", m.function.name.name);
        Some(quote! {
            #[doc = #doc]
            #[derive(Debug, Clone, PartialEq)]
            pub enum #name { #(#decls)* }
            impl __pc::fmt::Display for #name {
                fn fmt(&self, f: &mut __pc::fmt::Formatter<'_>) -> __pc::fmt::Result {
                    __pc::fmt::Debug::fmt(self, f)
                }
            }
            impl __pc::StdError for #name {}
            impl __pc::Exceptions for #name {
                fn write<W: __pc::ProtocolWriter>(&self, w: &mut W) -> __pc::Result<(), __pc::ProtocolError> {
                    match self { #(#writes)* }
                }
                fn read<R: __pc::ProtocolReader>(id: i16, ttype: __pc::TType, r: &mut R) -> __pc::Result<__pc::Option<Self>, __pc::ProtocolError> {
                    match (id, ttype) { #(#reads)* _ => __pc::Ok(__pc::None) }
                }
            }
            #(#froms)*
        })
    }

    fn handler_trait(&self, id: DefId, s: &Service) -> Result<TokenStream, CodegenError> {
        let name = ident(&names::type_name(&s.name.name));
        let doc = doc_attr(s.doc.as_deref());
        let supertrait = match self.base(id, s) {
            Some((base_id, _)) => self.path(base_id),
            None => quote!(__pc::Send + __pc::Sync + 'static),
        };
        let methods = s
            .functions
            .iter()
            .map(|f| {
                let m = self.method(id, s, f);
                let shapes = self.arg_shapes(&m)?;
                let args = shapes.iter().map(|a| {
                    let (n, ty) = (&a.name, self.stored_type(a));
                    quote!(#n: #ty)
                });
                let (rust, ret, exc) = (&m.rust, self.return_type(&m), self.exception_type(&m));
                let fdoc = doc_attr(f.doc.as_deref());
                Ok(quote! {
                    #fdoc
                    fn #rust(&self, #(#args),*) -> impl __pc::Future<Output = __pc::Result<#ret, __pc::CallError<#exc>>> + __pc::Send;
                })
            })
            .collect::<Result<Vec<_>, CodegenError>>()?;
        let service_const = format_ident!("__PROBE_SERVICE_{}", &*s.name.name);
        let into_server = format_ident!("__probe_into_server_{}", &*s.name.name);
        let server = format_ident!("{}Server", &*s.name.name);
        let idl_name = &*s.name.name;
        Ok(quote! {
            #doc
            pub trait #name: #supertrait {
                #(#methods)*
                #[doc(hidden)]
                const #service_const: &'static str = #idl_name;
                #[doc(hidden)]
                fn #into_server(self) -> __pc::Arc<dyn __pc::Dispatch> where Self: __pc::Sized {
                    __pc::Arc::new(#server::new(self))
                }
            }
        })
    }

    fn server(&self, id: DefId, s: &Service) -> Result<TokenStream, CodegenError> {
        let trait_name = ident(&names::type_name(&s.name.name));
        let server = format_ident!("{}Server", &*s.name.name);
        let idl_name = &*s.name.name;
        let methods = self.all_methods(id, s);
        let infos = methods.iter().map(|m| {
            let (n, oneway, idempotent) =
                (&*m.function.name.name, m.function.oneway, is_idempotent(m.function));
            quote! { __pc::MethodInfo { name: #n, oneway: #oneway, idempotent: #idempotent } }
        });
        let arms = methods.iter().map(|m| self.dispatch_arm(m)).collect::<Result<Vec<_>, _>>()?;
        let doc = format!(" Serves a [`{}`] handler: give it to `probe::Server`.", trait_name);
        Ok(quote! {
            #[doc = #doc]
            #[derive(Debug)]
            pub struct #server<H> { handler: __pc::Arc<H> }
            impl<H: #trait_name> #server<H> {
                /// The IDL service name.
                pub const SERVICE: &'static str = #idl_name;
                /// A server for `handler`.
                pub fn new(handler: H) -> Self { Self { handler: __pc::Arc::new(handler) } }
                /// A server for a shared handler.
                pub fn from_arc(handler: __pc::Arc<H>) -> Self { Self { handler } }
            }
            impl<H> __pc::Clone for #server<H> {
                fn clone(&self) -> Self { Self { handler: __pc::Arc::clone(&self.handler) } }
            }
            impl<H: #trait_name> __pc::Dispatch for #server<H> {
                fn service_name(&self) -> &'static str { #idl_name }
                fn methods(&self) -> &'static [__pc::MethodInfo] { &[#(#infos),*] }
                fn dispatch(&self, request: __pc::Request) -> __pc::BoxFuture<'_, __pc::Reply> {
                    let handler = &*self.handler;
                    __pc::Box::pin(async move {
                        match request.method() {
                            #(#arms)*
                            _ => request.unknown_method(),
                        }
                    })
                }
            }
        })
    }

    fn dispatch_arm(&self, m: &Method<'_>) -> Result<TokenStream, CodegenError> {
        let name = &*m.function.name.name;
        let args_ty = self.qualify(m.owner.file, {
            let a = &m.args;
            quote!(#a)
        });
        let outcome = self.outcome_type(m);
        let trait_path = self.path(m.owner);
        let rust = &m.rust;
        let shapes = self.arg_shapes(m)?;
        let arg_names = shapes.iter().map(|s| &s.name);
        Ok(quote! {
            #name => __pc::serve::<#args_ty, #outcome, _>(&request, |args| {
                <H as #trait_path>::#rust(handler, #(args.#arg_names),*)
            }).await,
        })
    }

    /// Client methods per `impl` block: a large service's client is generated in several blocks,
    /// in parallel.
    const CLIENT_CHUNK: usize = 40;

    /// How many parts a service's client has.
    fn client_parts(&self, id: DefId, s: &Service) -> usize {
        self.all_methods(id, s).len().div_ceil(Self::CLIENT_CHUNK).max(1)
    }

    /// Part `chunk` of a service's client: the struct and its first methods, then more methods.
    fn client(&self, id: DefId, s: &Service, chunk: usize) -> Result<TokenStream, CodegenError> {
        let client = format_ident!("{}Client", &*s.name.name);
        let idl_name = &*s.name.name;
        let methods = self
            .all_methods(id, s)
            .iter()
            .skip(chunk * Self::CLIENT_CHUNK)
            .take(Self::CLIENT_CHUNK)
            .map(|m| self.client_method(m))
            .collect::<Result<Vec<_>, _>>()?;
        if chunk > 0 {
            return Ok(quote! { impl #client { #(#methods)* } });
        }
        let doc = format!(" Calls `{idl_name}` through a `probe::Channel`.");
        Ok(quote! {
            #[doc = #doc]
            #[derive(Debug, Clone)]
            pub struct #client { channel: __pc::Channel }
            impl #client {
                /// The IDL service name.
                pub const SERVICE: &'static str = #idl_name;
                /// A client calling through `channel`.
                pub fn new(channel: __pc::Channel) -> Self { Self { channel } }
                #(#methods)*
            }
        })
    }

    fn client_method(&self, m: &Method<'_>) -> Result<TokenStream, CodegenError> {
        let shapes = self.arg_shapes(m)?;
        let params = shapes.iter().map(|a| {
            let (n, ty) = (&a.name, self.stored_type(a));
            quote!(#n: #ty)
        });
        let names: Vec<_> = shapes.iter().map(|a| &a.name).collect();
        let args_ty = self.qualify(m.owner.file, {
            let a = &m.args;
            quote!(#a)
        });
        let (rust, ret, exc, outcome) =
            (&m.rust, self.return_type(m), self.exception_type(m), self.outcome_type(m));
        let method = &*m.function.name.name;
        let (oneway, idempotent) = (m.function.oneway, is_idempotent(m.function));
        let timeout = match timeout_ms(m.function) {
            Some(ms) => quote!(::core::option::Option::Some(::core::time::Duration::from_millis(#ms))),
            None => quote!(::core::option::Option::None),
        };
        // The IDL documentation lives on the handler trait; repeating it here would double the
        // generated code of documented APIs.
        let fdoc = format!(" Calls `{method}` (documented on the service trait).");
        Ok(quote! {
            #[doc = #fdoc]
            pub async fn #rust(&self, #(#params),*) -> __pc::Result<#ret, __pc::CallError<#exc>> {
                let options = __pc::CallOptions { oneway: #oneway, idempotent: #idempotent, timeout: #timeout };
                self.channel.invoke::<_, #outcome>(Self::SERVICE, #method, &#args_ty { #(#names),* }, options).await
            }
        })
    }
}

/// `(probe.idempotent)` or `(probe.idempotent = "true")` on a function.
fn is_idempotent(f: &Function) -> bool {
    f.annotations.iter().any(|a| {
        &*a.key.name == "probe.idempotent" && a.value.as_deref().is_none_or(|v| v == "true" || v.is_empty())
    })
}

/// `(probe.timeout_ms = "200")` on a function (checked when the IDL was resolved).
fn timeout_ms(f: &Function) -> Option<u64> {
    let a = f.annotations.iter().find(|a| &*a.key.name == crate::ast::TIMEOUT_ANNOTATION)?;
    crate::ast::timeout_ms(a.value.as_deref())
}

/// The Rust method name and the UpperCamel stem of generated type names of every function of a
/// service. Names that differ only in case (`Test`, `test`) still get distinct Rust names: a later
/// clash is suffixed with the function's position.
pub(crate) fn method_names(service: &Service) -> Vec<(String, String)> {
    let mut snakes = std::collections::HashSet::new();
    let mut camels = std::collections::HashSet::new();
    service
        .functions
        .iter()
        .enumerate()
        .map(|(position, f)| {
            let snake = names::snake_case(&f.name.name);
            let camel = upper_camel(&f.name.name);
            let rust = if snakes.insert(snake.clone()) { snake } else { format!("{snake}_{position}") };
            let camel = if camels.insert(camel.clone()) { camel } else { format!("{camel}{position}") };
            (rust, camel)
        })
        .collect()
}
