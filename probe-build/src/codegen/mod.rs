//! Rust code from the resolved program: one module per IDL file, built with `quote!` and printed with
//! prettyplease. Generated code names only `::probe::__codegen::*`, through the alias `__pc` each module
//! declares, so an IDL type called `Option` or `String` cannot capture a generated path.

mod analysis;
mod codec_impl;
mod consts;
mod enums;
mod services;
mod structs;
mod types;

use std::collections::HashMap;

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};

use crate::ast::Definition;
use crate::ir::{DefId, Program};
use crate::names;

pub(crate) use analysis::Analysis;

/// One generated Rust file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// File name in the output directory, e.g. `demo.rs`.
    pub name: String,
    /// The Rust module it is included as.
    pub module: String,
    /// The formatted code.
    pub code: String,
}

/// A code generation failure: a bug, or a value Rust cannot express.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodegenError(pub String);

/// State shared by the generators of one program.
pub(crate) struct Gen<'p> {
    pub(crate) program: &'p Program,
    pub(crate) analysis: Analysis,
    /// Rust module name of each file.
    modules: Vec<String>,
    /// The file being generated.
    pub(crate) current: usize,
}

/// Name of the output root file that declares every module.
pub const ROOT_FILE: &str = "probe_idl.rs";

pub(crate) fn generate(program: &Program) -> Result<Vec<GeneratedFile>, CodegenError> {
    let mut g = Gen { program, analysis: Analysis::new(program), modules: Vec::new(), current: 0 };
    let mut used: HashMap<String, usize> = HashMap::new();
    for file in &program.files {
        let base = names::module_name(&file.stem);
        let n = used.entry(base.clone()).or_insert(0);
        *n += 1;
        g.modules.push(if *n == 1 { base } else { format!("{base}_{n}") });
    }
    let mut out = Vec::new();
    for index in 0..program.files.len() {
        g.current = index;
        let tokens = g.file(index)?;
        let module = g.modules[index].clone();
        out.push(GeneratedFile {
            name: format!("{}.rs", module.trim_start_matches("r#")),
            module,
            code: unparse(tokens)?,
        });
    }
    let mods = out.iter().map(|f| {
        let module = syn::parse_str::<syn::Ident>(&f.module).unwrap_or_else(|_| format_ident!("invalid_module"));
        let name = &f.name;
        quote! {
            #[allow(clippy::all, non_camel_case_types, non_snake_case, non_upper_case_globals, dead_code, unused_imports, unused_variables, unused_mut, unreachable_code, clippy::pedantic)]
            pub mod #module {
                include!(concat!(env!("OUT_DIR"), "/", #name));
            }
        }
    });
    let root = quote! { #(#mods)* };
    out.push(GeneratedFile { name: ROOT_FILE.to_owned(), module: String::new(), code: unparse(root)? });
    Ok(out)
}

fn unparse(tokens: TokenStream) -> Result<String, CodegenError> {
    let file: syn::File = syn::parse2(tokens).map_err(|e| {
        CodegenError(format!("generated code does not parse ({e}); this is a probe-build bug"))
    })?;
    Ok(prettyplease::unparse(&file))
}

/// An identifier from a Rust name that may be raw (`r#type`).
pub(crate) fn ident(name: &str) -> Ident {
    match name.strip_prefix("r#") {
        Some(raw) => Ident::new_raw(raw, Span::call_site()),
        None => Ident::new(name, Span::call_site()),
    }
}

/// `FooBar` from `foo_bar` or `fooBar`: for generated type and variant names.
pub(crate) fn upper_camel(name: &str) -> String {
    names::snake_case(name)
        .split('_')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let mut c = s.chars();
            c.next().map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
        })
        .collect()
}

impl Gen<'_> {
    /// The path to a definition from the file being generated.
    pub(crate) fn path(&self, id: DefId) -> TokenStream {
        let name = ident(&names::type_name(&self.program.def(id).name().name));
        self.qualify(id.file, quote!(#name))
    }

    /// Qualifies an item of `file` for use from the file being generated.
    pub(crate) fn qualify(&self, file: usize, item: TokenStream) -> TokenStream {
        if file == self.current {
            item
        } else {
            let module = ident(&self.modules[file]);
            quote!(super::#module::#item)
        }
    }

    fn file(&self, index: usize) -> Result<TokenStream, CodegenError> {
        let mut items = Vec::new();
        for (i, def) in self.program.files[index].doc.definitions.iter().enumerate() {
            let id = DefId { file: index, index: i };
            items.push(match def {
                Definition::Const(c) => self.constant(c)?,
                Definition::Typedef(t) => self.typedef(t),
                Definition::Enum(e) => self.enumeration(id, e),
                Definition::Struct(s) => self.structure(id, s)?,
                Definition::Service(s) => self.service(id, s)?,
            });
        }
        Ok(quote! {
            use ::probe::__codegen as __pc;
            #(#items)*
        })
    }

    fn typedef(&self, t: &crate::ast::Typedef) -> TokenStream {
        let name = ident(&names::type_name(&t.name.name));
        let doc = doc_attr(t.doc.as_deref());
        let ty = self.program.files[self.current].types.get(&t.ty.span.start).map(|ty| self.rust_type(ty));
        quote! { #doc pub type #name = #ty; }
    }
}

/// `#[doc = "..."]` for a doc comment.
pub(crate) fn doc_attr(doc: Option<&str>) -> TokenStream {
    match doc {
        Some(text) if !text.trim().is_empty() => {
            let lines = text.lines().map(|l| format!(" {l}"));
            quote! { #(#[doc = #lines])* }
        }
        _ => TokenStream::new(),
    }
}
