//! The random IDL generator: a program of one to four files with include graphs (nested directories,
//! missing files, repeats, rare cycles), namespaces, and definitions of every kind, mostly valid and
//! sometimes deliberately broken. Deterministic for a seed (rand's `StdRng`).

mod defs;
mod values;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::model::{File, Item, Program};
pub(crate) use values::Shape;

/// What one file defines, as later files and values see it.
#[derive(Debug, Default, Clone)]
pub(crate) struct Scope {
    /// Types: name and shape.
    pub(crate) types: Vec<(String, Shape)>,
    /// Constants: name and shape.
    pub(crate) consts: Vec<(String, Shape)>,
    /// Services.
    pub(crate) services: Vec<String>,
    /// Exceptions (a subset of `types`).
    pub(crate) exceptions: Vec<String>,
}

/// The generator's state for one program.
pub(crate) struct Gen {
    pub(crate) rng: StdRng,
    /// Probability that a site is deliberately broken.
    pub(crate) p_break: f64,
    /// Scopes of finished files, by file index.
    pub(crate) done: Vec<Option<Scope>>,
    /// The file being generated: its scope so far and its includes (file index, qualifier).
    pub(crate) here: Scope,
    pub(crate) includes: Vec<(usize, String)>,
    /// Names planned for the rest of the current file, for forward references.
    pub(crate) planned: Vec<String>,
    pub(crate) counter: usize,
}

const PATHS: &[&str] = &["main.thrift", "inc1.thrift", "sub/inc2.thrift", "sub/inc3.thrift"];

/// Generates program number `index` of the run with `seed`.
pub fn program(seed: u64, index: u64) -> Program {
    let mut rng = StdRng::seed_from_u64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let p_break = match rng.random_range(0..10) {
        0..=3 => 0.0,
        4..=7 => 0.02,
        _ => 0.08,
    };
    let count = rng.random_range(1..=PATHS.len());
    let mut g = Gen {
        rng,
        p_break,
        done: vec![None; count],
        here: Scope::default(),
        includes: Vec::new(),
        planned: Vec::new(),
        counter: 0,
    };
    let mut files = vec![None; count];
    // Leaves first: file k may include files after it.
    for k in (0..count).rev() {
        files[k] = Some(g.file(k, count));
    }
    Program { files: files.into_iter().flatten().collect() }
}

impl Gen {
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p.clamp(0.0, 1.0))
    }

    /// Whether to break this site.
    pub(crate) fn broken(&mut self) -> bool {
        self.p_break > 0.0 && self.chance(self.p_break)
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.random_range(0..items.len())]
    }

    pub(crate) fn sep(&mut self) -> &'static str {
        const SEPARATORS: [&str; 4] = ["", ",", ";", ","];
        SEPARATORS[self.rng.random_range(0..SEPARATORS.len())]
    }

    fn file(&mut self, k: usize, count: usize) -> File {
        let path = PATHS[k];
        self.here = Scope::default();
        self.includes.clear();
        let mut items = Vec::new();
        for _ in 0..self.rng.random_range(0..3) {
            items.push(Item::line(self.namespace()));
        }
        for (j, target) in PATHS.iter().enumerate().take(count).skip(k + 1) {
            if self.chance(0.6) {
                let written = relative(path, target);
                items.push(Item::line(format!("include \"{written}\"")));
                self.includes.push((j, stem(target).to_owned()));
            }
        }
        if self.broken() {
            let what = *self.pick(&[
                "include \"missing.thrift\"",
                "include \"inc2.thrift\"",
                "include \"main.thrift\"",
                "include \"sub/../inc1.thrift\"",
            ]);
            items.push(Item::line(what));
            if what.contains("inc1") && count > 1 && k != 1 {
                self.includes.push((1, "inc1".into()));
            }
        }
        let n = self.rng.random_range(1..9);
        self.planned = (0..n).map(|_| self.fresh("X")).collect();
        for i in 0..n {
            let name = self.planned[i].clone();
            self.planned.remove(i);
            self.planned.insert(i, String::new());
            let item = self.definition(name);
            items.push(item);
        }
        if self.broken() && items.len() > 1 {
            // A header after a definition.
            let ns = self.namespace();
            items.push(Item::line(ns));
        }
        self.done[k] = Some(std::mem::take(&mut self.here));
        File { path: path.to_owned(), items }
    }

    fn namespace(&mut self) -> String {
        let (scope, names): (&str, &[&str]) = *self.pick(&[
            ("py", &["a", "b.c"][..]),
            ("java", &["x", "a"]),
            ("*", &["s", "a"]),
            ("rs", &["r"]),
        ]);
        let name = *self.pick(names);
        let annotation = if scope != "*" && self.chance(0.1) { " (k = \"v\")" } else { "" };
        format!("namespace {scope} {name}{annotation}")
    }

    pub(crate) fn fresh(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}{}", self.counter)
    }
}

fn stem(path: &str) -> &str {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.strip_suffix(".thrift").unwrap_or(file)
}

/// How `from` writes an include of `to` (both relative to the program directory).
fn relative(from: &str, to: &str) -> String {
    match (from.starts_with("sub/"), to.strip_prefix("sub/")) {
        (true, Some(rest)) => rest.to_owned(),
        (true, None) => format!("../{to}"),
        (false, _) => to.to_owned(),
    }
}
