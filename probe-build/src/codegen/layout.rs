//! Where generated items live: one Rust module per IDL file (the default), or one module per
//! `namespace rs` (or `namespace *`), nested along its dots, shared by every file that declares it.

use std::collections::{BTreeMap, HashMap};

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use crate::ir::Program;
use crate::names;

/// How generated modules are laid out; set with [`Builder::layout`](crate::Builder::layout).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Layout {
    /// One module per IDL file, named after the file (`user.thrift` -> `user`). The default.
    #[default]
    PerFile,
    /// One module per namespace: `namespace rs acme.user` (or `namespace *`) -> `acme::user`; files
    /// without either are laid out per file. Files of one namespace share a module, so their
    /// definition names must differ.
    PerNamespace,
}

/// The module path (segments) of every file.
pub(crate) fn module_paths(program: &Program, layout: Layout) -> Vec<Vec<String>> {
    let mut used: HashMap<String, usize> = HashMap::new();
    let mut per_file = |stem: &str| {
        let base = names::module_name(stem);
        let n = used.entry(base.clone()).or_insert(0);
        *n += 1;
        vec![if *n == 1 { base } else { format!("{base}_{n}") }]
    };
    program
        .files
        .iter()
        .map(|file| {
            let namespace = (layout == Layout::PerNamespace)
                .then(|| {
                    let find = |scope: &str| file.doc.namespaces.iter().find(|n| &*n.scope == scope);
                    find("rs").or_else(|| find("*")).map(|n| n.name.name.clone())
                })
                .flatten();
            match namespace {
                Some(ns) => ns.split('.').map(names::module_name).collect(),
                None => per_file(&file.stem),
            }
        })
        .collect()
}

/// The output file name of a module path: `acme.user.rs`.
pub(crate) fn file_name(path: &[String]) -> String {
    let plain: Vec<&str> = path.iter().map(|s| s.trim_start_matches("r#")).collect();
    format!("{}.rs", plain.join("."))
}

/// `super::super::` enough times to climb from a module at `depth` to the root of the generated code.
pub(crate) fn to_root(depth: usize) -> TokenStream {
    let supers = (0..depth).map(|_| quote!(super::));
    quote!(#(#supers)*)
}

#[derive(Default)]
struct Node {
    file: Option<String>,
    children: BTreeMap<String, Node>,
}

/// The root file: nested `pub mod` items that `include!` each generated file.
pub(crate) fn root(modules: &[(Vec<String>, String)]) -> TokenStream {
    let mut tree = Node::default();
    for (path, file) in modules {
        let mut node = &mut tree;
        for segment in path {
            node = node.children.entry(segment.clone()).or_default();
        }
        node.file = Some(file.clone());
    }
    render(&tree)
}

fn render(node: &Node) -> TokenStream {
    // Relative to this root file, so a root written to any directory finds its modules.
    let include = node.file.as_ref().map(|name| quote! { include!(#name); });
    let children = node.children.iter().map(|(name, child)| {
        let module = syn::parse_str::<syn::Ident>(name).unwrap_or_else(|_| format_ident!("invalid_module"));
        let body = render(child);
        quote! {
            #[allow(clippy::all, clippy::pedantic, non_camel_case_types, non_snake_case, non_upper_case_globals,
                dead_code, unused_imports, unused_variables, unused_mut, unreachable_code)]
            pub mod #module { #body }
        }
    });
    quote! { #include #(#children)* }
}
