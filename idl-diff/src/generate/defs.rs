//! Definitions: enums, structs/unions/exceptions, typedefs, constants and services, with name clashes,
//! reserved words, bad field ids, annotations and bad service declarations as the breakages.

use std::rc::Rc;

use rand::Rng;

use super::{Gen, Shape};
use crate::model::Item;

/// Words that can never be names in Thrift (its grammar's keywords).
const THRIFT_WORDS: &[&str] = &["struct", "list", "i32", "void", "oneway", "include", "required", "true"];
/// Python keywords Apache's py generator refuses; Rust keywords probe escapes.
const OTHER_WORDS: &[&str] =
    &["from", "pass", "lambda", "type", "match", "mod", "fn", "crate", "Self", "async"];

impl Gen {
    pub(crate) fn definition(&mut self, planned: String) -> Item {
        let name = self.def_name(planned);
        match self.rng.random_range(0..20) {
            0..=3 => self.enumeration(name),
            4..=8 => self.structure(name),
            9..=11 => self.typedef(name),
            12..=16 => self.constant(name),
            _ => self.service(name),
        }
    }

    /// The definition's name, or a clashing or reserved one.
    fn def_name(&mut self, planned: String) -> String {
        if !self.broken() {
            return planned;
        }
        let mut earlier: Vec<String> = self.here.types.iter().map(|t| t.0.clone()).collect();
        earlier.extend(self.here.consts.iter().map(|c| c.0.clone()));
        earlier.extend(self.here.services.iter().cloned());
        let included: Vec<String> = self
            .includes
            .iter()
            .filter_map(|(f, _)| self.done[*f].as_ref())
            .flat_map(|s| s.types.iter().map(|t| t.0.clone()).chain(s.services.iter().cloned()))
            .collect();
        match self.rng.random_range(0..6) {
            0 | 1 if !earlier.is_empty() => self.pick(&earlier).clone(),
            2 | 3 if !included.is_empty() => self.pick(&included).clone(),
            4 => (*self.pick(THRIFT_WORDS)).to_owned(),
            5 => (*self.pick(OTHER_WORDS)).to_owned(),
            _ => format!("a.{planned}"),
        }
    }

    fn annotations(&mut self) -> String {
        if !self.chance(0.1) {
            return String::new();
        }
        let sep = self.sep();
        (*self.pick(&[" (x = \"1\")", " (flag)", " (a = \"b\", c = \"d\")"])).replace(',', &format!("{sep},"))
    }

    fn enumeration(&mut self, name: String) -> Item {
        let mut members = Vec::new();
        let mut lines = Vec::new();
        let mut next: i64 = 0;
        for _ in 0..self.rng.random_range(0..5) {
            let mut member = self.fresh("V");
            if self.broken() && !members.is_empty() {
                let (m, _): &(String, i64) = self.pick(&members);
                member = m.clone();
            }
            let explicit = if self.chance(0.3) {
                let v: i64 = if self.broken() {
                    *self.pick(&[2147483648, -2147483649, 2147483647])
                } else {
                    *self.pick(&[0, 1, 5, -3, 100, 7])
                };
                Some(v)
            } else {
                None
            };
            let value = explicit.unwrap_or(next);
            next = value + 1;
            let written = explicit.map_or(String::new(), |v| format!(" = {v}"));
            let annotations = self.annotations();
            let sep = self.sep();
            lines.push(format!("{member}{written}{annotations}{sep}"));
            members.push((member, value));
        }
        let annotations = self.annotations();
        self.here.types.push((name.clone(), Shape::Enum(Rc::new((name.clone(), members)))));
        Item::block(format!("enum {name} {{"), lines, format!("}}{annotations}"))
    }

    fn fields(&mut self, kind: &str, exceptions_only: bool) -> (Vec<String>, Vec<(String, Shape)>) {
        let mut lines = Vec::new();
        let mut fields: Vec<(String, Shape)> = Vec::new();
        let mut id = 0;
        for _ in 0..self.rng.random_range(0..5) {
            id += 1;
            let mut name = self.fresh("f");
            if self.broken() && !fields.is_empty() {
                name = self.pick(&fields).0.clone();
            }
            let written_id = if self.broken() {
                (*self.pick(&["", "0: ", "-1: ", "1: ", "32768: "])).to_owned()
            } else {
                format!("{id}: ")
            };
            let (ty, shape) = if exceptions_only && !self.broken() {
                match self.visible_exception() {
                    Some(e) => e,
                    None => continue,
                }
            } else {
                self.ty(0)
            };
            let req = if kind == "args" || kind == "throws" {
                ""
            } else {
                *self.pick(&["", "", "required ", "optional "])
            };
            let default = if kind != "throws" && self.chance(0.25) {
                format!(" = {}", self.value(&shape, 0))
            } else {
                String::new()
            };
            let annotations = self.annotations();
            let sep = self.sep();
            lines.push(format!("{written_id}{req}{ty} {name}{default}{annotations}{sep}"));
            fields.push((name, shape));
        }
        (lines, fields)
    }

    fn visible_exception(&mut self) -> Option<(String, Shape)> {
        let mut all: Vec<String> = self.here.exceptions.clone();
        for (file, stem) in &self.includes {
            if let Some(scope) = &self.done[*file] {
                all.extend(scope.exceptions.iter().map(|e| format!("{stem}.{e}")));
            }
        }
        (!all.is_empty()).then(|| (self.pick(&all).clone(), Shape::Opaque))
    }

    fn structure(&mut self, name: String) -> Item {
        let kind = *self.pick(&["struct", "struct", "union", "exception"]);
        let (lines, fields) = self.fields(kind, false);
        let annotations = self.annotations();
        if kind == "exception" {
            self.here.exceptions.push(name.clone());
        }
        self.here.types.push((name.clone(), Shape::Struct(Rc::new((name.clone(), fields)))));
        Item::block(format!("{kind} {name} {{"), lines, format!("}}{annotations}"))
    }

    fn typedef(&mut self, name: String) -> Item {
        let (ty, shape) = self.ty(0);
        let annotations = self.annotations();
        let sep = self.sep();
        self.here.types.push((name.clone(), shape));
        Item::line(format!("typedef {ty} {name}{annotations}{sep}"))
    }

    fn constant(&mut self, name: String) -> Item {
        let (ty, shape) = self.ty(0);
        let value = self.value(&shape, 0);
        let sep = self.sep();
        self.here.consts.push((name.clone(), shape));
        Item::line(format!("const {ty} {name} = {value}{sep}"))
    }

    fn service(&mut self, name: String) -> Item {
        let mut extends = String::new();
        if self.chance(0.3) {
            let mut bases: Vec<String> = self.here.services.clone();
            for (file, stem) in &self.includes {
                if let Some(scope) = &self.done[*file] {
                    bases.extend(scope.services.iter().map(|s| format!("{stem}.{s}")));
                }
            }
            if self.broken() {
                bases = vec!["Nope".into(), "inc9.Svc".into()];
                bases.extend(self.here.types.iter().map(|t| t.0.clone()));
            }
            if !bases.is_empty() {
                extends = format!(" extends {}", self.pick(&bases));
            }
        }
        let mut lines = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for _ in 0..self.rng.random_range(0..4) {
            let mut fname = self.fresh("m");
            if self.broken() && !names.is_empty() {
                fname = self.pick(&names).clone();
            }
            let oneway = self.chance(0.15);
            let returns =
                if (oneway && !self.broken()) || self.chance(0.3) { "void".to_owned() } else { self.ty(0).0 };
            let (args, _) = self.fields("args", false);
            let throws = if (!oneway || self.broken()) && self.chance(0.3) {
                let (t, _) = self.fields("throws", true);
                format!(" throws ({})", t.join(" "))
            } else {
                String::new()
            };
            let annotations = self.annotations();
            let sep = self.sep();
            let prefix = if oneway { "oneway " } else { "" };
            lines.push(format!("{prefix}{returns} {fname}({}){throws}{annotations}{sep}", args.join(" ")));
            names.push(fname);
        }
        let annotations = self.annotations();
        self.here.services.push(name.clone());
        Item::block(format!("service {name}{extends} {{"), lines, format!("}}{annotations}"))
    }
}
