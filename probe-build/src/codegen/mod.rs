//! Rust code from the resolved program: one module per IDL file, built with `quote!` and printed with
//! prettyplease. Generated code names only `::probe::__codegen::*`, through the alias `__pc` each module
//! declares, so an IDL type called `Option` or `String` cannot capture a generated path.

mod analysis;
mod codec_impl;
mod consts;
mod enums;
mod layout;
mod services;
mod structs;
mod types;

use std::collections::HashMap;

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;

use crate::ast::Definition;
use crate::ir::{DefId, Program};
use crate::names;

pub(crate) use analysis::Analysis;
pub use layout::Layout;

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
    /// Rust module path of each file.
    modules: Vec<Vec<String>>,
    /// The file being generated.
    pub(crate) current: usize,
}

/// Name of the output root file that declares every module.
pub const ROOT_FILE: &str = "probe_idl.rs";

pub(crate) fn generate(program: &Program, layout: Layout) -> Result<Vec<GeneratedFile>, CodegenError> {
    let modules = layout::module_paths(program, layout);
    let mut g = Gen { program, analysis: Analysis::new(program), modules: modules.clone(), current: 0 };
    // Files that share a module (one namespace) go into one output file, in program order.
    let mut order: Vec<Vec<String>> = Vec::new();
    let mut items: HashMap<Vec<String>, Vec<TokenStream>> = HashMap::new();
    for (index, path) in modules.iter().enumerate() {
        g.current = index;
        if !items.contains_key(path) {
            order.push(path.clone());
        }
        items.entry(path.clone()).or_default().push(g.file(index)?);
    }
    let mut out = Vec::new();
    let mut root_entries = Vec::new();
    for path in order {
        let parts = items.remove(&path).unwrap_or_default();
        let name = layout::file_name(&path);
        let code = unparse(quote! {
            use ::probe::__codegen as __pc;
            #(#parts)*
        })?;
        root_entries.push((path.clone(), name.clone()));
        out.push(GeneratedFile { name, module: path.join("::"), code });
    }
    let root = layout::root(&root_entries);
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
        let (here, there) = (&self.modules[self.current], &self.modules[file]);
        if here == there {
            item
        } else {
            let up = layout::to_root(here.len());
            let path = there.iter().map(|s| ident(s));
            quote!(#up #(#path::)* #item)
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
        Ok(quote! { #(#items)* })
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
