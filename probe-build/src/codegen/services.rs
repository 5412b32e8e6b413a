//! Per service: a handler trait with async methods, argument and result structs, an exception enum
//! per method that declares `throws`, a server (`FooServer<H>`, a `Dispatch`) and a client
//! (`FooClient`, over a `Channel`). `extends` makes the base trait a supertrait, and the server and
//! client of the extending service serve and call the inherited methods too.

use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};

use crate::ast::{Definition, Function, Service};
use crate::ir::DefId;
use crate::names;

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
            None => quote!(::probe::__codegen::NoException),
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
        let encode = self.struct_encode(&idl_name, &shapes);
        let decode = self.struct_decode(&idl_name, &shapes)?;
        let doc = format!(" Arguments of `{}`.", m.function.name.name);
        Ok(quote! {
            #[doc = #doc]
            #[derive(Debug, Clone, PartialEq)]
            pub struct #name { #(#fields)* }
            impl ::probe::__codegen::Encode for #name {
                fn encode<W: ::probe::__codegen::ProtocolWriter>(&self, w: &mut W) -> ::std::result::Result<(), ::probe::__codegen::ProtocolError> {
                    #encode
                }
            }
            impl ::probe::__codegen::Decode for #name {
                fn decode<R: ::probe::__codegen::ProtocolReader>(r: &mut R) -> ::std::result::Result<Self, ::probe::__codegen::ProtocolError> {
                    #decode
                }
            }
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
            quote! { pub #f: ::std::option::Option<#ty>, }
        });
        let writes = fields.iter().map(|(f, id, ty)| {
            let tt = self.ttype(ty);
            let write = self.write_value(ty, &quote!(v), 0);
            quote! {
                if let ::std::option::Option::Some(v) = &self.#f {
                    w.write_field_begin(#tt, #id)?; #write w.write_field_end()?;
                }
            }
        });
        let arms = fields.iter().map(|(f, id, ty)| {
            let tt = self.ttype(ty);
            let read = self.read_value(ty, 0);
            quote! { (#id, #tt) => { out.#f = ::std::option::Option::Some(#read); } }
        });
        let idl_name = format!("{}_result", m.function.name.name);
        let doc = format!(" Result of `{}`: the value or a declared exception.", m.function.name.name);
        Ok(quote! {
            #[doc = #doc]
            #[derive(Debug, Clone, PartialEq, Default)]
            pub struct #name { #(#decls)* }
            impl ::probe::__codegen::Encode for #name {
                fn encode<W: ::probe::__codegen::ProtocolWriter>(&self, w: &mut W) -> ::std::result::Result<(), ::probe::__codegen::ProtocolError> {
                    w.write_struct_begin(#idl_name)?;
                    #(#writes)*
                    w.write_field_stop()?;
                    w.write_struct_end()
                }
            }
            impl ::probe::__codegen::Decode for #name {
                fn decode<R: ::probe::__codegen::ProtocolReader>(r: &mut R) -> ::std::result::Result<Self, ::probe::__codegen::ProtocolError> {
                    let mut out = Self::default();
                    r.read_struct_begin()?;
                    loop {
                        let field = r.read_field_begin()?;
                        if field.ttype == ::probe::__codegen::TType::Stop { break; }
                        match (field.id, field.ttype) {
                            #(#arms)*
                            (_, other) => r.skip(other)?,
                        }
                        r.read_field_end()?;
                    }
                    r.read_struct_end()?;
                    ::std::result::Result::Ok(out)
                }
            }
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
        let shows = variants.iter().map(|(v, _)| quote! { Self::#v(e) => ::std::fmt::Debug::fmt(e, f), });
        let mut seen = std::collections::HashSet::new();
        let froms = variants
            .iter()
            .filter(|(_, ty)| seen.insert(ty.to_string()))
            .filter(|(_, ty)| variants.iter().filter(|(_, t)| t.to_string() == ty.to_string()).count() == 1);
        let froms = froms.map(|(v, ty)| {
            quote! {
                impl ::std::convert::From<#ty> for ::probe::__codegen::CallError<#name> {
                    fn from(e: #ty) -> Self { ::probe::__codegen::CallError::Exception(#name::#v(e)) }
                }
            }
        });
        let doc = format!(" The exceptions `{}` declares.", m.function.name.name);
        Some(quote! {
            #[doc = #doc]
            #[derive(Debug, Clone, PartialEq)]
            pub enum #name { #(#decls)* }
            impl ::std::fmt::Display for #name {
                fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                    match self { #(#shows)* }
                }
            }
            impl ::std::error::Error for #name {}
            #(#froms)*
        })
    }

    fn handler_trait(&self, id: DefId, s: &Service) -> Result<TokenStream, CodegenError> {
        let name = ident(&names::type_name(&s.name.name));
        let doc = doc_attr(s.doc.as_deref());
        let supertrait = match self.base(id, s) {
            Some((base_id, _)) => self.path(base_id),
            None => quote!(::std::marker::Send + ::std::marker::Sync + 'static),
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
                    fn #rust(&self, #(#args),*) -> impl ::std::future::Future<Output = ::std::result::Result<#ret, ::probe::__codegen::CallError<#exc>>> + ::std::marker::Send;
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
            quote! { ::probe::__codegen::MethodInfo { name: #n, oneway: #oneway, idempotent: #idempotent } }
        });
        let arms = methods.iter().map(|m| self.dispatch_arm(m)).collect::<Result<Vec<_>, _>>()?;
        let doc = format!(" Serves a [`{}`] handler: give it to `probe::Server`.", trait_name);
        Ok(quote! {
            #[doc = #doc]
            #[derive(Debug)]
            pub struct #server<H> { handler: ::std::sync::Arc<H> }
            impl<H: #trait_name> #server<H> {
                /// A server for `handler`.
                pub fn new(handler: H) -> Self { Self { handler: ::std::sync::Arc::new(handler) } }
                /// A server for a shared handler.
                pub fn from_arc(handler: ::std::sync::Arc<H>) -> Self { Self { handler } }
            }
            impl<H> ::std::clone::Clone for #server<H> {
                fn clone(&self) -> Self { Self { handler: ::std::sync::Arc::clone(&self.handler) } }
            }
            impl<H: #trait_name> ::probe::__codegen::Dispatch for #server<H> {
                fn service_name(&self) -> &'static str { #idl_name }
                fn methods(&self) -> &'static [::probe::__codegen::MethodInfo] { &[#(#infos),*] }
                fn dispatch(&self, request: ::probe::__codegen::Request) -> ::probe::__codegen::BoxFuture<'_, ::probe::__codegen::Reply> {
                    let handler = &*self.handler;
                    ::std::boxed::Box::pin(async move {
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
        let none_except = |except: &Ident| {
            let others = fields
                .iter()
                .filter(|(f, ..)| f != except)
                .map(|(f, ..)| quote!(#f: ::std::option::Option::None,));
            quote!(#(#others)*)
        };
        let ok_arm = match fields.first() {
            Some((f, 0, _)) if m.function.returns.is_some() => {
                let rest = none_except(f);
                quote! { ::std::result::Result::Ok(v) => request.reply(&#result_ty { #f: ::std::option::Option::Some(v), #rest }), }
            }
            _ => {
                let all = fields.iter().map(|(f, ..)| quote!(#f: ::std::option::Option::None,));
                quote! { ::std::result::Result::Ok(()) => request.reply(&#result_ty { #(#all)* }), }
            }
        };
        let exc_arms: Vec<TokenStream> = match &m.exception {
            Some(exc) => {
                let exc_ty = self.qualify(m.owner.file, quote!(#exc));
                let throws = fields.iter().skip(usize::from(m.function.returns.is_some()));
                throws
                    .zip(&m.function.throws)
                    .map(|((f, ..), t)| {
                        let v = ident(&names::escape(&upper_camel(&t.name.name)));
                        let rest = none_except(f);
                        quote! {
                            ::std::result::Result::Err(::probe::__codegen::CallError::Exception(#exc_ty::#v(e))) =>
                                request.reply(&#result_ty { #f: ::std::option::Option::Some(e), #rest }),
                        }
                    })
                    .collect()
            }
            None => vec![
                quote! { ::std::result::Result::Err(::probe::__codegen::CallError::Exception(never)) => match never {}, },
            ],
        };
        Ok(quote! {
            #name => {
                let args: #args_ty = match request.decode_args() {
                    ::std::result::Result::Ok(args) => args,
                    ::std::result::Result::Err(e) => return request.protocol_error(&e),
                };
                match <H as #trait_path>::#rust(handler, #(args.#arg_names),*).await {
                    #ok_arm
                    #(#exc_arms)*
                    ::std::result::Result::Err(::probe::__codegen::CallError::Rpc(e)) => request.internal_error(&e),
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
            pub struct #client { channel: ::probe::__codegen::Channel }
            impl #client {
                /// The IDL service name.
                pub const SERVICE: &'static str = #idl_name;
                /// A client calling through `channel`.
                pub fn new(channel: ::probe::__codegen::Channel) -> Self { Self { channel } }
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
            quote! { if let ::std::option::Option::Some(v) = result.success { return ::std::result::Result::Ok(v); } }
        });
        let excs = fields.iter().skip(usize::from(m.function.returns.is_some())).zip(&m.function.throws).map(|((f, ..), t)| {
            let v = ident(&names::escape(&upper_camel(&t.name.name)));
            quote! {
                if let ::std::option::Option::Some(e) = result.#f {
                    return ::std::result::Result::Err(::probe::__codegen::CallError::Exception(#exc::#v(e)));
                }
            }
        });
        let tail = if m.function.returns.is_some() {
            quote! { ::std::result::Result::Err(::probe::__codegen::Error::MissingResult { method: #method.into() }.into()) }
        } else {
            quote! { ::std::result::Result::Ok(()) }
        };
        let on_none = if oneway { quote!(::std::result::Result::Ok(())) } else { tail.clone() };
        let _ = service;
        let fdoc = doc_attr(m.function.doc.as_deref());
        Ok(quote! {
            #fdoc
            pub async fn #rust(&self, #(#params),*) -> ::std::result::Result<#ret, ::probe::__codegen::CallError<#exc>> {
                let args = #args_ty { #(#names),* };
                let options = ::probe::__codegen::CallOptions { oneway: #oneway, idempotent: #idempotent };
                let result: ::std::option::Option<#result_ty> = self.channel.call(Self::SERVICE, #method, &args, options).await?;
                let ::std::option::Option::Some(result) = result else { return #on_none; };
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
