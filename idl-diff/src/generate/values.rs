//! Written types and constant values: the shape of a type decides which value is right for it, and a
//! broken site writes a value of another shape, an out-of-range number, an unknown name, or a
//! reference to a constant of another type.

use std::rc::Rc;

use rand::Rng;

use super::Gen;

/// What a type is, as far as values are concerned.
#[derive(Debug, Clone)]
pub(crate) enum Shape {
    Bool,
    Int(u8),
    Double,
    Str,
    Binary,
    List(Box<Shape>),
    Set(Box<Shape>),
    Map(Box<Shape>, Box<Shape>),
    /// An enum: its name as written at the definition, and its members.
    Enum(Rc<(String, Vec<(String, i64)>)>),
    /// A struct, union or exception: its name and fields.
    Struct(Rc<(String, Vec<(String, Shape)>)>),
    /// Unknown or not yet defined.
    Opaque,
}

impl Shape {
    /// A canonical text, for "same type" comparisons between constants.
    pub(crate) fn canon(&self) -> String {
        match self {
            Shape::Bool => "bool".into(),
            Shape::Int(b) => format!("i{b}"),
            Shape::Double => "double".into(),
            Shape::Str => "string".into(),
            Shape::Binary => "binary".into(),
            Shape::List(e) => format!("list<{}>", e.canon()),
            Shape::Set(e) => format!("set<{}>", e.canon()),
            Shape::Map(k, v) => format!("map<{},{}>", k.canon(), v.canon()),
            Shape::Enum(e) => format!("enum {}", e.0),
            Shape::Struct(s) => format!("struct {}", s.0),
            Shape::Opaque => "?".into(),
        }
    }
}

const BASE: &[(&str, Shape)] = &[
    ("bool", Shape::Bool),
    ("byte", Shape::Int(8)),
    ("i8", Shape::Int(8)),
    ("i16", Shape::Int(16)),
    ("i32", Shape::Int(32)),
    ("i64", Shape::Int(64)),
    ("double", Shape::Double),
    ("string", Shape::Str),
    ("binary", Shape::Binary),
];

impl Gen {
    /// A written type and its shape.
    pub(crate) fn ty(&mut self, depth: usize) -> (String, Shape) {
        if self.broken() {
            return self.broken_ty();
        }
        let roll = self.rng.random_range(0..100);
        let (text, shape) = if roll < 45 || depth > 2 {
            let (t, s) = self.pick(BASE).clone();
            (t.to_owned(), s)
        } else if roll < 65 {
            let (e, es) = self.ty(depth + 1);
            match self.rng.random_range(0..3) {
                0 => (format!("list<{e}>"), Shape::List(Box::new(es))),
                1 => (format!("set<{e}>"), Shape::Set(Box::new(es))),
                _ => {
                    let (k, ks) = self.ty(depth + 1);
                    (format!("map<{k},{e}>"), Shape::Map(Box::new(ks), Box::new(es)))
                }
            }
        } else {
            match self.visible_type() {
                Some(found) => return found,
                None => ("i32".to_owned(), Shape::Int(32)),
            }
        };
        if !matches!(shape, Shape::Enum(_) | Shape::Struct(_)) && self.chance(0.05) {
            return (format!("{text} (a = \"b\")"), shape);
        }
        (text, shape)
    }

    /// A defined type this file can name: its own or an included file's (qualified).
    fn visible_type(&mut self) -> Option<(String, Shape)> {
        let mut all: Vec<(String, Shape)> = self.here.types.clone();
        for (file, stem) in &self.includes {
            if let Some(scope) = &self.done[*file] {
                all.extend(scope.types.iter().map(|(n, s)| (format!("{stem}.{n}"), s.clone())));
            }
        }
        (!all.is_empty()).then(|| self.pick(&all).clone())
    }

    fn broken_ty(&mut self) -> (String, Shape) {
        let later: Vec<String> = self.planned.iter().filter(|n| !n.is_empty()).cloned().collect();
        let text = match self.rng.random_range(0..8) {
            0 if !later.is_empty() => self.pick(&later).clone(),
            1 if !self.here.consts.is_empty() => {
                let consts = self.here.consts.clone();
                self.pick(&consts).0.clone()
            }
            2 if !self.here.services.is_empty() => {
                let services = self.here.services.clone();
                self.pick(&services).clone()
            }
            3 => "inc9.Nope".to_owned(),
            4 => {
                // An included file's type, unqualified.
                let names: Vec<String> = self
                    .includes
                    .iter()
                    .filter_map(|(f, _)| self.done[*f].as_ref())
                    .flat_map(|s| s.types.iter().map(|t| t.0.clone()))
                    .collect();
                if names.is_empty() { "Nope".to_owned() } else { self.pick(&names).clone() }
            }
            5 => "void".to_owned(),
            6 => format!("{} (a = \"b\")", self.visible_type().map_or("Nope".to_owned(), |t| t.0)),
            _ => "Nope".to_owned(),
        };
        (text, Shape::Opaque)
    }

    /// A constant value for `shape`, sometimes broken.
    pub(crate) fn value(&mut self, shape: &Shape, depth: usize) -> String {
        if self.broken() {
            return self.wrong_value(depth);
        }
        if self.chance(0.12) {
            if let Some(name) = self.const_ref(shape) {
                return name;
            }
        }
        match shape {
            Shape::Bool => (*self.pick(&["true", "false", "0", "1"])).to_owned(),
            Shape::Int(bits) => self.int(*bits),
            Shape::Double => (*self.pick(&["1.5", "-2", "0", "1e3", "3.25", "7"])).to_owned(),
            Shape::Str | Shape::Binary => (*self.pick(&["\"s\"", "'q'", "\"\"", "\"a\\tb\""])).to_owned(),
            Shape::Enum(e) => self.enum_value(e),
            Shape::Struct(s) => self.struct_value(s, depth),
            Shape::List(e) | Shape::Set(e) => {
                if depth > 3 || self.chance(0.1) {
                    return (*self.pick(&["[]", "{}"])).to_owned();
                }
                let n = self.rng.random_range(0..3);
                let items: Vec<String> = (0..n).map(|_| self.value(e, depth + 1)).collect();
                let sep = self.sep();
                format!("[{}]", items.join(&format!("{sep} ")))
            }
            Shape::Map(k, v) => {
                if depth > 3 {
                    return "{}".to_owned();
                }
                let n = self.rng.random_range(0..3);
                let entries: Vec<String> = (0..n)
                    .map(|_| format!("{}: {}", self.value(k, depth + 1), self.value(v, depth + 1)))
                    .collect();
                format!("{{{}}}", entries.join(", "))
            }
            Shape::Opaque => self.wrong_value(depth),
        }
    }

    fn int(&mut self, bits: u8) -> String {
        if self.chance(0.97) {
            return (*self.pick(&["0", "1", "-1", "42", "0x10", "-7", "100"])).to_owned();
        }
        let edge: &[&str] = match bits {
            8 => &["127", "-128", "128", "-129", "255"],
            16 => &["32767", "-32768", "32768", "-40000"],
            32 => &["2147483647", "-2147483648", "2147483648", "-2147483649"],
            _ => &["9223372036854775807", "-9223372036854775808", "0x7fffffffffffffff", "4294967296"],
        };
        (*self.pick(edge)).to_owned()
    }

    fn enum_value(&mut self, e: &Rc<(String, Vec<(String, i64)>)>) -> String {
        let (name, members) = (&e.0, &e.1);
        if members.is_empty() || self.chance(0.1) {
            return (*self.pick(&["0", "1", "5"])).to_owned();
        }
        let (member, value) = self.pick(members).clone();
        match self.rng.random_range(0..10) {
            0 => value.to_string(),
            1 if self.p_break > 0.0 => member,
            2 if self.p_break > 0.0 => format!("Other.{member}"),
            _ => format!("{name}.{member}"),
        }
    }

    fn struct_value(&mut self, s: &Rc<(String, Vec<(String, Shape)>)>, depth: usize) -> String {
        if depth > 3 {
            return "{}".to_owned();
        }
        let mut entries = Vec::new();
        for (field, shape) in &s.1 {
            if self.chance(0.6) {
                let v = self.value(shape, depth + 1);
                entries.push(format!("\"{field}\": {v}"));
            }
        }
        if self.broken() {
            entries.push(format!("\"nofield\": {}", self.int(32)));
        }
        format!("{{{}}}", entries.join(", "))
    }

    /// A value of the wrong shape, or a name that does not resolve.
    fn wrong_value(&mut self, depth: usize) -> String {
        let all_consts: Vec<String> = self.here.consts.iter().map(|c| c.0.clone()).collect();
        match self.rng.random_range(0..9) {
            0 => "\"str\"".to_owned(),
            1 => "3".to_owned(),
            2 => "2.5".to_owned(),
            3 if depth < 3 => format!("[{}]", self.int(32)),
            4 if depth < 3 => format!("{{\"k\": {}}}", self.int(32)),
            5 => "Nope".to_owned(),
            6 if !all_consts.is_empty() => self.pick(&all_consts).clone(),
            7 => "Nope.Value".to_owned(),
            _ => "{}".to_owned(),
        }
    }

    /// A constant of the same shape this file can see, qualified as needed.
    fn const_ref(&mut self, shape: &Shape) -> Option<String> {
        let want = shape.canon();
        let mut all: Vec<String> =
            self.here.consts.iter().filter(|c| c.1.canon() == want).map(|c| c.0.clone()).collect();
        for (file, stem) in &self.includes {
            if let Some(scope) = &self.done[*file] {
                all.extend(
                    scope.consts.iter().filter(|c| c.1.canon() == want).map(|c| format!("{stem}.{}", c.0)),
                );
            }
        }
        (!all.is_empty()).then(|| self.pick(&all).clone())
    }
}
