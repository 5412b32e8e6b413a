//! Recursive-descent parser for the Thrift IDL grammar of Apache Thrift 0.17.
//!
//! On a syntax error the parser records it and skips to the next definition keyword, so one run
//! reports the errors of several definitions.

use std::sync::Arc;

use crate::ast::*;
use crate::diagnostic::Diagnostic;
use crate::lexer::{Token, TokenKind};
use crate::source::{FileId, Span};

/// Words the grammar owns: they can never name anything.
const KEYWORDS: &[&str] = &[
    "namespace",
    "cpp_include",
    "cpp_type",
    "include",
    "void",
    "bool",
    "byte",
    "i8",
    "i16",
    "i32",
    "i64",
    "double",
    "string",
    "binary",
    "slist",
    "senum",
    "map",
    "list",
    "set",
    "oneway",
    "async",
    "typedef",
    "struct",
    "union",
    "exception",
    "extends",
    "throws",
    "service",
    "enum",
    "const",
    "required",
    "optional",
    "xsd_all",
    "xsd_optional",
    "xsd_nillable",
    "xsd_namespace",
    "xsd_attrs",
    "true",
    "false",
];

/// Declarations Thrift once had and 0.17 refuses, with the `namespace` scope that replaced them.
const OLD_NAMESPACES: &[(&str, &str)] = &[
    ("cpp_namespace", "cpp"),
    ("php_namespace", "php"),
    ("py_module", "py"),
    ("perl_package", "perl"),
    ("ruby_namespace", "rb"),
    ("smalltalk_category", "smalltalk.category"),
    ("smalltalk_prefix", "smalltalk.prefix"),
    ("java_package", "java"),
    ("cocoa_prefix", "cocoa"),
    ("csharp_namespace", "csharp"),
    ("delphi_namespace", "delphi"),
];

const DEFINITION_STARTS: &[&str] =
    &["const", "typedef", "enum", "senum", "struct", "union", "exception", "service"];

/// A failed parse step; the diagnostic is already recorded.
struct Fail;

type PResult<T> = Result<T, Fail>;

pub(crate) fn parse(file: FileId, tokens: Vec<Token>, errors: &mut Vec<Diagnostic>) -> Document {
    let mut parser = Parser { tokens, pos: 0, errors, field_counter: -1 };
    let mut doc = Document {
        file,
        includes: Vec::new(),
        cpp_includes: Vec::new(),
        namespaces: Vec::new(),
        definitions: Vec::new(),
    };
    parser.document(&mut doc);
    doc
}

struct Parser<'e> {
    tokens: Vec<Token>,
    pos: usize,
    errors: &'e mut Vec<Diagnostic>,
    /// Next id Thrift assigns to a field written without one (counts down from -1 per list).
    field_counter: i32,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn peek_at(&self, ahead: usize) -> &Token {
        &self.tokens[(self.pos + ahead).min(self.tokens.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let token = self.peek().clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        token
    }

    fn prev_span(&self) -> Span {
        self.tokens[self.pos.saturating_sub(1)].span
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(&self.peek().kind, TokenKind::Ident(w) if &**w == word)
    }

    fn is_punct(&self, c: char) -> bool {
        self.peek().kind == TokenKind::Punct(c)
    }

    fn eat_word(&mut self, word: &str) -> bool {
        let hit = self.is_word(word);
        if hit {
            self.bump();
        }
        hit
    }

    fn eat_punct(&mut self, c: char) -> bool {
        let hit = self.is_punct(c);
        if hit {
            self.bump();
        }
        hit
    }

    fn error<T>(&mut self, span: Span, message: impl Into<String>) -> PResult<T> {
        self.errors.push(Diagnostic::new(span, message));
        Err(Fail)
    }

    fn unexpected<T>(&mut self, expected: &str) -> PResult<T> {
        let token = self.peek();
        let found = describe(&token.kind);
        let span = token.span;
        self.error(span, format!("expected {expected}, found {found}"))
    }

    fn expect_punct(&mut self, c: char) -> PResult<Span> {
        if self.is_punct(c) { Ok(self.bump().span) } else { self.unexpected(&format!("`{c}`")) }
    }

    fn separator(&mut self) {
        if !self.eat_punct(',') {
            self.eat_punct(';');
        }
    }

    /// A name: an identifier that is not a keyword.
    fn name(&mut self, what: &str) -> PResult<Ident> {
        match &self.peek().kind {
            TokenKind::Ident(word) if KEYWORDS.contains(&&**word) => {
                let (word, span) = (word.clone(), self.peek().span);
                self.error(span, format!("`{word}` is a Thrift keyword and cannot be used as {what}"))
            }
            TokenKind::Ident(word) => {
                let ident = Ident { name: word.clone(), span: self.peek().span };
                self.bump();
                Ok(ident)
            }
            _ => self.unexpected(what),
        }
    }

    fn literal(&mut self, what: &str) -> PResult<(Arc<str>, Span)> {
        match &self.peek().kind {
            TokenKind::Literal(value) => {
                let value = value.clone();
                Ok((value, self.bump().span))
            }
            _ => self.unexpected(what),
        }
    }

    fn recover(&mut self) {
        // Skip at least one token, then up to the next definition keyword at line start depth.
        let mut depth = 0i32;
        loop {
            let token = self.bump();
            match token.kind {
                TokenKind::Eof => return,
                TokenKind::Punct('{') => depth += 1,
                TokenKind::Punct('}') => depth -= 1,
                _ => {}
            }
            if depth <= 0 && DEFINITION_STARTS.iter().any(|w| self.is_word(w)) {
                return;
            }
            if self.peek().kind == TokenKind::Eof {
                return;
            }
        }
    }

    fn document(&mut self, doc: &mut Document) {
        while self.peek().kind != TokenKind::Eof {
            let result =
                if self.is_word("include") || self.is_word("cpp_include") || self.is_word("namespace") {
                    if doc.definitions.is_empty() {
                        self.header(doc)
                    } else {
                        let span = self.peek().span;
                        self.error(
                            span,
                            "headers (include, cpp_include, namespace) must come before all definitions",
                        )
                    }
                } else {
                    self.definition().map(|d| doc.definitions.push(d))
                };
            if result.is_err() {
                self.recover();
            }
        }
    }

    fn header(&mut self, doc: &mut Document) -> PResult<()> {
        let keyword = self.bump();
        match &keyword.kind {
            TokenKind::Ident(w) if &**w == "include" => {
                let (path, span) = self.literal("a quoted file name after `include`")?;
                doc.includes.push((path, keyword.span.to(span)));
            }
            TokenKind::Ident(w) if &**w == "cpp_include" => {
                let (path, _) = self.literal("a quoted file name after `cpp_include`")?;
                doc.cpp_includes.push(path);
            }
            _ => {
                let scope: Arc<str> = if self.eat_punct('*') {
                    "*".into()
                } else {
                    match &self.peek().kind {
                        TokenKind::Ident(w) => {
                            let w = w.clone();
                            self.bump();
                            w
                        }
                        _ => return self.unexpected("a language or `*` after `namespace`"),
                    }
                };
                let name = match &self.peek().kind {
                    TokenKind::Ident(w) => Ident { name: w.clone(), span: self.bump().span },
                    _ => return self.unexpected("a namespace name"),
                };
                let annotations = self.annotations()?;
                doc.namespaces.push(Namespace { scope, name, annotations });
            }
        }
        // Apache Thrift takes no `,` or `;` after a header.
        Ok(())
    }

    fn definition(&mut self) -> PResult<Definition> {
        let doc = self.peek().doc.clone();
        let token = self.peek().clone();
        let TokenKind::Ident(word) = &token.kind else {
            return self.unexpected("a definition (struct, union, exception, enum, const, typedef, service)");
        };
        if let Some((old, scope)) = OLD_NAMESPACES.iter().find(|(old, _)| **old == **word) {
            return self.error(
                token.span,
                format!("unsupported declaration `{old}`; use `namespace {scope}` instead"),
            );
        }
        let definition = match &**word {
            "const" => self.constant(doc).map(Definition::Const),
            "typedef" => self.typedef(doc).map(Definition::Typedef),
            "enum" => self.enumeration(doc).map(Definition::Enum),
            "senum" => self.error(token.span, "`senum` is no longer supported; use `string` instead"),
            "struct" | "union" | "exception" => self.structure(doc).map(Definition::Struct),
            "service" => self.service(doc).map(Definition::Service),
            _ => self.unexpected("a definition (struct, union, exception, enum, const, typedef, service)"),
        }?;
        self.separator();
        Ok(definition)
    }

    fn constant(&mut self, doc: Option<Arc<str>>) -> PResult<Const> {
        self.bump();
        let ty = self.field_type()?;
        let name = self.name("a constant name")?;
        self.expect_punct('=')?;
        let value = self.const_value()?;
        Ok(Const { doc, ty, name, value })
    }

    fn typedef(&mut self, doc: Option<Arc<str>>) -> PResult<Typedef> {
        self.bump();
        let ty = self.field_type()?;
        let name = self.name("a typedef name")?;
        let annotations = self.annotations()?;
        Ok(Typedef { doc, ty, name, annotations })
    }

    fn enumeration(&mut self, doc: Option<Arc<str>>) -> PResult<Enum> {
        self.bump();
        let name = self.name("an enum name")?;
        self.expect_punct('{')?;
        let mut values = Vec::new();
        while !self.eat_punct('}') {
            let doc = self.peek().doc.clone();
            let value_name = self.name("an enum value name or `}`")?;
            let value = if self.eat_punct('=') {
                match self.peek().kind {
                    TokenKind::Int(v) => Some((v, self.bump().span)),
                    _ => return self.unexpected("an integer enum value"),
                }
            } else {
                None
            };
            let annotations = self.annotations()?;
            self.separator();
            values.push(EnumValue { doc, name: value_name, value, annotations });
        }
        let annotations = self.annotations()?;
        Ok(Enum { doc, name, values, annotations })
    }

    fn structure(&mut self, doc: Option<Arc<str>>) -> PResult<Struct> {
        let kind = match &self.bump().kind {
            TokenKind::Ident(w) if &**w == "union" => StructKind::Union,
            TokenKind::Ident(w) if &**w == "exception" => StructKind::Exception,
            _ => StructKind::Struct,
        };
        let name = self.name("a name")?;
        if kind != StructKind::Exception {
            self.eat_word("xsd_all");
        }
        self.expect_punct('{')?;
        let fields = self.field_list('}', false)?;
        let annotations = self.annotations()?;
        Ok(Struct { doc, kind, name, fields, annotations })
    }

    fn service(&mut self, doc: Option<Arc<str>>) -> PResult<Service> {
        self.bump();
        let name = self.name("a service name")?;
        let extends = if self.eat_word("extends") {
            match &self.peek().kind {
                TokenKind::Ident(w) => Some(Ident { name: w.clone(), span: self.bump().span }),
                _ => return self.unexpected("the name of the service to extend"),
            }
        } else {
            None
        };
        self.expect_punct('{')?;
        let mut functions = Vec::new();
        while !self.eat_punct('}') {
            functions.push(self.function()?);
        }
        let annotations = self.annotations()?;
        Ok(Service { doc, name, extends, functions, annotations })
    }

    fn function(&mut self) -> PResult<Function> {
        let doc = self.peek().doc.clone();
        // `async` is the old spelling of `oneway`, and a keyword like it.
        let oneway = self.eat_word("oneway") || self.eat_word("async");
        let returns = if self.eat_word("void") { None } else { Some(self.field_type()?) };
        let name = self.name("a function name")?;
        self.expect_punct('(')?;
        let args = self.field_list(')', true)?;
        let throws = if self.eat_word("throws") {
            self.expect_punct('(')?;
            self.field_list(')', true)?
        } else {
            Vec::new()
        };
        let annotations = self.annotations()?;
        self.separator();
        Ok(Function { doc, oneway, returns, name, args, throws, annotations })
    }

    /// Fields up to and including `close`. Ids written as 0 or below are reassigned, as Thrift does.
    fn field_list(&mut self, close: char, _in_args: bool) -> PResult<Vec<Field>> {
        self.field_counter = -1;
        let mut fields = Vec::new();
        while !self.eat_punct(close) {
            fields.push(self.field()?);
        }
        Ok(fields)
    }

    fn field(&mut self) -> PResult<Field> {
        let start = self.peek().span;
        let doc = self.peek().doc.clone();
        let (id, id_assigned) = match self.peek().kind {
            TokenKind::Int(v) if self.peek_at(1).kind == TokenKind::Punct(':') => {
                let span = self.bump().span;
                self.bump();
                if v > i64::from(i16::MAX) {
                    // Reported, and parsing goes on as Apache's does (it only warns).
                    let message =
                        format!("field id {v} is out of range (1..=32767) (Apache Thrift 0.17 only warns)");
                    self.errors.push(Diagnostic::new(span, message));
                }
                if v <= 0 {
                    let id = self.field_counter;
                    self.field_counter -= 1;
                    (id, true)
                } else {
                    (i32::try_from(v).unwrap_or(i32::MAX), false)
                }
            }
            _ => {
                let id = self.field_counter;
                self.field_counter -= 1;
                (id, true)
            }
        };
        let requiredness = if self.eat_word("required") {
            Requiredness::Required
        } else if self.eat_word("optional") {
            Requiredness::Optional
        } else {
            Requiredness::Default
        };
        let ty = self.field_type()?;
        let reference = self.eat_punct('&');
        let name = self.name("a field name")?;
        let default = if self.eat_punct('=') { Some(self.const_value()?) } else { None };
        self.eat_word("xsd_optional");
        self.eat_word("xsd_nillable");
        if self.eat_word("xsd_attrs") {
            self.expect_punct('{')?;
            let saved = self.field_counter;
            self.field_list('}', false)?;
            self.field_counter = saved;
        }
        let annotations = self.annotations()?;
        let span = start.to(self.prev_span());
        self.separator();
        Ok(Field { doc, id, id_assigned, requiredness, ty, reference, name, default, annotations, span })
    }

    fn field_type(&mut self) -> PResult<Type> {
        let token = self.peek().clone();
        let TokenKind::Ident(word) = &token.kind else { return self.unexpected("a type") };
        let base = match &**word {
            "bool" => Some(BaseType::Bool),
            "byte" | "i8" => Some(BaseType::I8),
            "i16" => Some(BaseType::I16),
            "i32" => Some(BaseType::I32),
            "i64" => Some(BaseType::I64),
            "double" => Some(BaseType::Double),
            "string" | "slist" => Some(BaseType::String),
            "binary" => Some(BaseType::Binary),
            "uuid" => Some(BaseType::Uuid),
            _ => None,
        };
        self.bump();
        let kind = if let Some(base) = base {
            TypeKind::Base(base)
        } else {
            match &**word {
                "list" | "set" => {
                    self.cpp_type()?;
                    self.expect_punct('<')?;
                    let elem = Box::new(self.field_type()?);
                    self.expect_punct('>')?;
                    self.cpp_type()?;
                    if &**word == "list" { TypeKind::List(elem) } else { TypeKind::Set(elem) }
                }
                "map" => {
                    self.cpp_type()?;
                    self.expect_punct('<')?;
                    let key = Box::new(self.field_type()?);
                    self.expect_punct(',')?;
                    let value = Box::new(self.field_type()?);
                    self.expect_punct('>')?;
                    self.cpp_type()?;
                    TypeKind::Map(key, value)
                }
                w if KEYWORDS.contains(&w) => {
                    return self.error(token.span, format!("expected a type, found keyword `{w}`"));
                }
                _ => TypeKind::Named(Ident { name: word.clone(), span: token.span }),
            }
        };
        let span = token.span.to(self.prev_span());
        // Annotations may follow base and container types, not a named type (as in Thrift 0.17).
        let annotations = if matches!(kind, TypeKind::Named(_)) { Vec::new() } else { self.annotations()? };
        Ok(Type { kind, span, annotations })
    }

    fn cpp_type(&mut self) -> PResult<()> {
        if self.eat_word("cpp_type") {
            self.literal("a quoted type after `cpp_type`")?;
        }
        Ok(())
    }

    fn annotations(&mut self) -> PResult<Vec<Annotation>> {
        let mut annotations = Vec::new();
        // `(` starts annotations only where a name or `=` follows; a function's `(` is handled elsewhere.
        if !self.is_punct('(') {
            return Ok(annotations);
        }
        self.bump();
        while !self.eat_punct(')') {
            let key = match &self.peek().kind {
                TokenKind::Ident(w) => Ident { name: w.clone(), span: self.bump().span },
                _ => return self.unexpected("an annotation name or `)`"),
            };
            let value =
                if self.eat_punct('=') { Some(self.literal("a quoted annotation value")?.0) } else { None };
            self.separator();
            annotations.push(Annotation { key, value });
        }
        Ok(annotations)
    }

    fn const_value(&mut self) -> PResult<ConstValue> {
        let token = self.bump();
        let kind = match &token.kind {
            TokenKind::Int(v) => ConstKind::Int(*v),
            TokenKind::Double(v) => ConstKind::Double(*v),
            TokenKind::Literal(s) => ConstKind::Literal(s.clone()),
            TokenKind::Ident(w) if &**w == "true" => ConstKind::Int(1),
            TokenKind::Ident(w) if &**w == "false" => ConstKind::Int(0),
            TokenKind::Ident(w) => ConstKind::Ident(Ident { name: w.clone(), span: token.span }),
            TokenKind::Punct('[') => {
                let mut items = Vec::new();
                while !self.eat_punct(']') {
                    items.push(self.const_value()?);
                    self.separator();
                }
                ConstKind::List(items)
            }
            TokenKind::Punct('{') => {
                let mut entries = Vec::new();
                while !self.eat_punct('}') {
                    let key = self.const_value()?;
                    self.expect_punct(':')?;
                    let value = self.const_value()?;
                    self.separator();
                    entries.push((key, value));
                }
                ConstKind::Map(entries)
            }
            _ => {
                self.pos -= 1;
                return self.unexpected("a constant value");
            }
        };
        Ok(ConstValue { kind, span: token.span.to(self.prev_span()) })
    }
}

fn describe(kind: &TokenKind) -> String {
    match kind {
        TokenKind::Ident(w) => format!("`{w}`"),
        TokenKind::Int(v) => format!("integer {v}"),
        TokenKind::Double(v) => format!("number {v}"),
        TokenKind::Literal(s) => format!("string {s:?}"),
        TokenKind::Punct(c) => format!("`{c}`"),
        TokenKind::Eof => "end of file".to_owned(),
    }
}
