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
    pub(crate) analysis: &'p Analysis,
    /// Rust module path of each file.
    modules: &'p [Vec<String>],
    /// Per service: each function's Rust name and type-name stem (see `services::method_names`).
    method_names: &'p HashMap<DefId, Vec<(String, String)>>,
    /// The file being generated.
    pub(crate) current: usize,
}

/// Name of the output root file that declares every module.
pub const ROOT_FILE: &str = "probe_idl.rs";

pub(crate) fn generate(program: &Program, layout: Layout) -> Result<Vec<GeneratedFile>, CodegenError> {
    let modules = layout::module_paths(program, layout);
    let analysis = Analysis::new(program);
    let method_names: HashMap<DefId, Vec<(String, String)>> = program
        .files
        .iter()
        .enumerate()
        .flat_map(|(f, file)| file.doc.definitions.iter().enumerate().map(move |(d, def)| (f, d, def)))
        .filter_map(|(file, index, def)| match def {
            Definition::Service(s) => Some((DefId { file, index }, services::method_names(s))),
            _ => None,
        })
        .collect();
    // Every definition is generated and formatted on its own, on as many threads as there are
    // cores; the texts are then joined in program order, so the output does not depend on them.
    // A service is split into parts (per function, trait, server, client): large services are
    // most of the work.
    let mut jobs: Vec<(usize, usize, usize)> = Vec::new();
    let mut shared: HashMap<(usize, usize), Vec<Option<usize>>> = HashMap::new();
    for (f, file) in program.files.iter().enumerate() {
        for (d, def) in file.doc.definitions.iter().enumerate() {
            if let Definition::Service(s) = def {
                let g = Gen {
                    program,
                    analysis: &analysis,
                    modules: &modules,
                    method_names: &method_names,
                    current: f,
                };
                shared.insert((f, d), g.shared_exceptions(DefId { file: f, index: d }, s));
                jobs.extend((0..g.service_parts(DefId { file: f, index: d }, s)).map(|p| (f, d, p)));
            } else {
                jobs.push((f, d, 0));
            }
        }
    }
    // The big parts (a service's trait, server and client) start first, so no core is left with
    // one of them at the end.
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| {
        let (file, index, part) = jobs[i];
        match program.def(DefId { file, index }) {
            Definition::Service(s) if part >= s.functions.len() => 0,
            _ => 1,
        }
    });
    let texts = run_jobs(&jobs, &order, |(file, index, part)| {
        let g = Gen {
            program,
            analysis: &analysis,
            modules: &modules,
            method_names: &method_names,
            current: file,
        };
        let none = Vec::new();
        unparse(g.definition(file, index, part, shared.get(&(file, index)).unwrap_or(&none))?)
    })?;
    // Files that share a module (one namespace) go into one output file, in program order.
    let header = unparse(quote! { use ::probe::__codegen as __pc; })?;
    let mut order: Vec<&Vec<String>> = Vec::new();
    let mut bodies: HashMap<&Vec<String>, String> = HashMap::new();
    for path in &modules {
        if !bodies.contains_key(path) {
            order.push(path);
            bodies.insert(path, header.clone());
        }
    }
    for (&(file, _, _), text) in jobs.iter().zip(texts) {
        if let Some(body) = bodies.get_mut(&modules[file]) {
            body.push_str(&text);
        }
    }
    let mut out = Vec::new();
    let mut root_entries = Vec::new();
    for path in order {
        let name = layout::file_name(path);
        let code = bodies.remove(path).unwrap_or_default();
        root_entries.push((path.clone(), name.clone()));
        out.push(GeneratedFile { name, module: path.join("::"), code });
    }
    let root = layout::root(&root_entries);
    out.push(GeneratedFile { name: ROOT_FILE.to_owned(), module: String::new(), code: unparse(root)? });
    Ok(out)
}

/// Runs `job` over `jobs`, taken in `order`, on up to one thread per core; results come back in
/// job order.
fn run_jobs<J: Copy + Sync>(
    jobs: &[J],
    order: &[usize],
    job: impl Fn(J) -> Result<String, CodegenError> + Sync,
) -> Result<Vec<String>, CodegenError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(jobs.len()).max(1);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, Result<String, CodegenError>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&i) = order.get(k) else { break };
                        let Some(&j) = jobs.get(i) else { break };
                        done.push((i, job(j)));
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| {
                w.join().unwrap_or_else(|_| {
                    vec![(0, Err(CodegenError("a code generation thread panicked".into())))]
                })
            })
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
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

    /// One unit of generation: a definition, or part `part` of a service (`shared` is the
    /// service's `shared_exceptions`).
    fn definition(
        &self,
        file: usize,
        index: usize,
        part: usize,
        shared: &[Option<usize>],
    ) -> Result<TokenStream, CodegenError> {
        let id = DefId { file, index };
        Ok(match self.program.def(id) {
            Definition::Const(c) => self.constant(c)?,
            Definition::Typedef(t) => self.typedef(t),
            Definition::Enum(e) => self.enumeration(id, e),
            Definition::Struct(s) => self.structure(id, s)?,
            Definition::Service(s) => self.service_part(id, s, part, shared)?,
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
