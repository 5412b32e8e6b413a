//! Per service: a handler trait with async methods, argument and result structs, an exception enum
//! per method that declares `throws`, a server (`FooServer<H>`, a `Dispatch`) and a client
//! (`FooClient`, over a `Channel`). `extends` makes the base trait a supertrait, and the server and
//! client of the extending service serve and call the inherited methods too.

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

use crate::ast::{Definition, Function, Service};
use crate::ir::DefId;
use crate::names;

use super::codec_impl::{codec_impls, decode_body, encode_body};
use super::structs::FieldShape;
use super::{CodegenError, Gen, doc_attr, ident, upper_camel};

/// Names generated for one function.
struct Method<'a> {
    owner: DefId,
    function: &'a Function,
    rust: Ident,
    args: Ident,
    result: Ident,
    exception: Option<Ident>,
}

impl Gen<'_> {
    fn method<'a>(&self, owner: DefId, service: &Service, function: &'a Function) -> Method<'a> {
        // Names that differ only in case (`Test`, `test`) must still give distinct Rust names.
        let position = service.functions.iter().position(|f| std::ptr::eq(f, function)).unwrap_or(0);
        let earlier = &service.functions[..position];
        let snake = names::snake_case(&function.name.name);
        let rust = if earlier.iter().any(|f| names::snake_case(&f.name.name) == snake) {
            format!("{snake}_{position}")
        } else {
            snake
        };
        let camel = upper_camel(&function.name.name);
        let camel = if earlier.iter().any(|f| upper_camel(&f.name.name) == camel) {
            format!("{camel}{position}")
        } else {
            camel
        };
        let base = format!("{}{camel}", service.name.name);
        Method {
            owner,
            function,
            rust: ident(&names::escape(&rust)),
            args: format_ident!("{base}Args"),
            result: format_ident!("{base}Result"),
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

    fn arg_shapes<'a>(&'a self, m: &Method<'a>) -> Result<Vec<FieldShape<'a>>, CodegenError> {
        let mut shapes = self.field_shapes(m.owner, &m.function.args)?;
        for s in &mut shapes {
            s.option = false;
            s.boxed = false;
            s.required = s.required || !self.analysis.is_defaultable(self.program, s.ty);
        }
        Ok(shapes)
    }

    pub(crate) fn service(&self, id: DefId, s: &Service) -> Result<TokenStream, CodegenError> {
        let mut items = Vec::new();
        for f in &s.functions {
            let m = self.method(id, s, f);
            items.push(self.args_struct(&m)?);
            items.push(self.result_struct(&m)?);
            if let Some(e) = self.exception_enum(&m) {
                items.push(e);
            }
        }
        items.push(self.handler_trait(id, s)?);
        items.push(self.server(id, s)?);
        items.push(self.client(id, s)?);
        Ok(quote! { #(#items)* })
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

    /// `(rust field name, IDL id, resolved type)` of the result struct: `success` (id 0) and throws.
    fn result_fields(&self, m: &Method<'_>) -> Result<Vec<(Ident, i16, crate::ir::Ty)>, CodegenError> {
        let file = &self.program.files[m.owner.file];
        let mut fields = Vec::new();
        if let Some(t) = &m.function.returns {
            let ty =
                file.types.get(&t.span.start).ok_or_else(|| CodegenError("unresolved return type".into()))?;
            fields.push((format_ident!("success"), 0, ty.clone()));
        }
        for (shape, t) in self.field_shapes(m.owner, &m.function.throws)?.into_iter().zip(&m.function.throws)
        {
            let name = if shape.name == "success" { format_ident!("success_") } else { shape.name };
            fields.push((name, t.id as i16, shape.ty.clone()));
        }
        Ok(fields)
    }

    fn result_struct(&self, m: &Method<'_>) -> Result<TokenStream, CodegenError> {
        let fields = self.result_fields(m)?;
        let name = &m.result;
        let decls = fields.iter().map(|(f, _, ty)| {
            let ty = self.rust_type(ty);
            quote! { pub #f: __pc::Option<#ty>, }
        });
        let writes = fields.iter().map(|(f, id, ty)| {
            let tt = self.ttype(ty);
            let write = self.write_value(ty, &quote!(v), 0);
            quote! {
                if let __pc::Some(v) = &self.#f {
                    w.write_field_begin(#tt, #id)?; #write w.write_field_end()?;
                }
            }
        });
        let arms = fields.iter().map(|(f, id, ty)| {
            let tt = self.ttype(ty);
            let read = self.read_value(ty, 0);
            quote! { (#id, #tt) => { out.#f = __pc::Some(#read); } }
        });
        let idl_name = format!("{}_result", m.function.name.name);
        let doc = format!(" Result of `{}`: the value or a declared exception.", m.function.name.name);
        let encode = encode_body(&idl_name, quote!(#(#writes)*));
        let decode = decode_body(quote!(let mut out = Self::default();), arms, quote!(__pc::Ok(out)));
        let codec = codec_impls(name, encode, decode);
        Ok(quote! {
            #[doc = #doc]
            #[derive(Debug, Clone, PartialEq, Default)]
            pub struct #name { #(#decls)* }
            #codec
        })
    }

    fn exception_enum(&self, m: &Method<'_>) -> Option<TokenStream> {
        let name = m.exception.as_ref()?;
        let shapes = self.field_shapes(m.owner, &m.function.throws).ok()?;
        let variants: Vec<(Ident, TokenStream)> = shapes
            .iter()
            .map(|s| (ident(&names::escape(&upper_camel(&s.field.name.name))), self.rust_type(s.ty)))
            .collect();
        let decls = variants.iter().map(|(v, ty)| quote! { #v(#ty), });
        let shows = variants.iter().map(|(v, _)| quote! { Self::#v(e) => __pc::fmt::Debug::fmt(e, f), });
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
                    match self { #(#shows)* }
                }
            }
            impl __pc::StdError for #name {}
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
        Ok(quote! {
            #doc
            pub trait #name: #supertrait { #(#methods)* }
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
        let result_ty = self.qualify(m.owner.file, {
            let r = &m.result;
            quote!(#r)
        });
        let trait_path = self.path(m.owner);
        let rust = &m.rust;
        let shapes = self.arg_shapes(m)?;
        let arg_names = shapes.iter().map(|s| &s.name);
        let fields = self.result_fields(m)?;
        let ok_arm = match fields.first() {
            Some((f, 0, _)) if m.function.returns.is_some() => quote! {
                __pc::Ok(v) => request.reply(&#result_ty { #f: __pc::Some(v), ..__pc::Default::default() }),
            },
            _ => quote! { __pc::Ok(()) => request.reply(&#result_ty::default()), },
        };
        let exc_arms: Vec<TokenStream> = match &m.exception {
            Some(exc) => {
                let exc_ty = self.qualify(m.owner.file, quote!(#exc));
                let throws = fields.iter().skip(usize::from(m.function.returns.is_some()));
                throws
                    .zip(&m.function.throws)
                    .map(|((f, ..), t)| {
                        let v = ident(&names::escape(&upper_camel(&t.name.name)));
                        quote! {
                            __pc::Err(__pc::CallError::Exception(#exc_ty::#v(e))) =>
                                request.reply(&#result_ty { #f: __pc::Some(e), ..__pc::Default::default() }),
                        }
                    })
                    .collect()
            }
            None => vec![quote! { __pc::Err(__pc::CallError::Exception(never)) => match never {}, }],
        };
        Ok(quote! {
            #name => {
                let args: #args_ty = match request.decode_args() {
                    __pc::Ok(args) => args,
                    __pc::Err(e) => return request.protocol_error(&e),
                };
                match <H as #trait_path>::#rust(handler, #(args.#arg_names),*).await {
                    #ok_arm
                    #(#exc_arms)*
                    __pc::Err(__pc::CallError::Rpc(e)) => request.internal_error(&e),
                }
            }
        })
    }

    fn client(&self, id: DefId, s: &Service) -> Result<TokenStream, CodegenError> {
        let client = format_ident!("{}Client", &*s.name.name);
        let idl_name = &*s.name.name;
        let methods = self
            .all_methods(id, s)
            .iter()
            .map(|m| self.client_method(idl_name, m))
            .collect::<Result<Vec<_>, _>>()?;
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

    fn client_method(&self, service: &str, m: &Method<'_>) -> Result<TokenStream, CodegenError> {
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
        let result_ty = self.qualify(m.owner.file, {
            let r = &m.result;
            quote!(#r)
        });
        let (rust, ret, exc) = (&m.rust, self.return_type(m), self.exception_type(m));
        let method = &*m.function.name.name;
        let (oneway, idempotent) = (m.function.oneway, is_idempotent(m.function));
        let fields = self.result_fields(m)?;
        let success = m.function.returns.as_ref().map(|_| {
            quote! { if let __pc::Some(v) = result.success { return __pc::Ok(v); } }
        });
        let excs = fields.iter().skip(usize::from(m.function.returns.is_some())).zip(&m.function.throws).map(
            |((f, ..), t)| {
                let v = ident(&names::escape(&upper_camel(&t.name.name)));
                quote! {
                    if let __pc::Some(e) = result.#f {
                        return __pc::Err(__pc::CallError::Exception(#exc::#v(e)));
                    }
                }
            },
        );
        let tail = if m.function.returns.is_some() {
            quote! { __pc::Err(__pc::Error::MissingResult { method: #method.into() }.into()) }
        } else {
            quote! { __pc::Ok(()) }
        };
        let on_none = if oneway { quote!(__pc::Ok(())) } else { tail.clone() };
        let _ = service;
        let fdoc = doc_attr(m.function.doc.as_deref());
        Ok(quote! {
            #fdoc
            pub async fn #rust(&self, #(#params),*) -> __pc::Result<#ret, __pc::CallError<#exc>> {
                let args = #args_ty { #(#names),* };
                let options = __pc::CallOptions { oneway: #oneway, idempotent: #idempotent };
                let result: __pc::Option<#result_ty> = self.channel.call(Self::SERVICE, #method, &args, options).await?;
                let __pc::Some(result) = result else { return #on_none; };
                #success
                #(#excs)*
                #tail
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
