//! Tokens of the Thrift IDL, as Apache Thrift 0.17's lexer reads them.
//!
//! Identifiers may contain dots (`other.Type`); integers are decimal or `0x` hex with an optional
//! sign and must fit in i64; strings use `"` or `'`, may not span lines, and know the escapes
//! `\\ \" \' \n \r \t`. Comments are `//`, `#` and `/* */`; a `/** */` comment is kept as the doc
//! text of the next token.

use std::sync::Arc;

use crate::diagnostic::Diagnostic;
use crate::source::{FileId, Span};

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    Ident(Arc<str>),
    Int(i64),
    Double(f64),
    Literal(Arc<str>),
    Punct(char),
    Eof,
}

/// A token with its place and the doc comment right before it.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    pub(crate) span: Span,
    pub(crate) doc: Option<Arc<str>>,
}

const PUNCT: &[u8] = b"{}[]()<>,;:=*&";

pub(crate) fn tokenize(file: FileId, text: &str, errors: &mut Vec<Diagnostic>) -> Vec<Token> {
    let mut lexer = Lexer { file, src: text.as_bytes(), text, pos: 0, doc: None, tokens: Vec::new() };
    lexer.run(errors);
    lexer.tokens
}

struct Lexer<'a> {
    file: FileId,
    src: &'a [u8],
    text: &'a str,
    pos: usize,
    doc: Option<Arc<str>>,
    tokens: Vec<Token>,
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> u8 {
        self.src.get(self.pos + ahead).copied().unwrap_or(0)
    }

    fn span(&self, start: usize) -> Span {
        Span::new(self.file, start, self.pos)
    }

    fn push(&mut self, kind: TokenKind, start: usize) {
        let doc = self.doc.take();
        self.tokens.push(Token { kind, span: self.span(start), doc });
    }

    fn run(&mut self, errors: &mut Vec<Diagnostic>) {
        while self.pos < self.src.len() {
            let start = self.pos;
            let c = self.src[self.pos];
            match c {
                b' ' | b'\t' | b'\r' | b'\n' | b'\x0c' => self.pos += 1,
                b'#' => self.skip_line(),
                b'/' if self.peek(1) == b'/' => self.skip_line(),
                b'/' if self.peek(1) == b'*' => self.block_comment(errors),
                b'"' | b'\'' => self.literal(c, errors),
                b'a'..=b'z' | b'A'..=b'Z' | b'_' => self.ident(),
                b'0'..=b'9' | b'.' => self.number(errors),
                b'+' | b'-' if self.peek(1).is_ascii_digit() || self.peek(1) == b'.' => self.number(errors),
                _ if PUNCT.contains(&c) => {
                    self.pos += 1;
                    self.push(TokenKind::Punct(c as char), start);
                }
                _ => {
                    let ch = self.text[start..].chars().next().unwrap_or('\u{fffd}');
                    self.pos += ch.len_utf8();
                    errors.push(Diagnostic::new(self.span(start), format!("unexpected character {ch:?}")));
                }
            }
        }
        let end = self.src.len();
        self.tokens.push(Token { kind: TokenKind::Eof, span: Span::new(self.file, end, end), doc: None });
    }

    fn skip_line(&mut self) {
        while self.pos < self.src.len() && self.src[self.pos] != b'\n' {
            self.pos += 1;
        }
    }

    fn block_comment(&mut self, errors: &mut Vec<Diagnostic>) {
        let start = self.pos;
        let is_doc = self.peek(2) == b'*' && self.peek(3) != b'/';
        self.pos += 2;
        while self.pos < self.src.len() && !(self.src[self.pos] == b'*' && self.peek(1) == b'/') {
            self.pos += 1;
        }
        if self.pos >= self.src.len() {
            errors.push(Diagnostic::new(Span::new(self.file, start, start + 2), "unterminated comment"));
            return;
        }
        self.pos += 2;
        if is_doc {
            self.doc = Some(clean_doc(&self.text[start + 3..self.pos - 2]).into());
        }
    }

    fn ident(&mut self) {
        let start = self.pos;
        loop {
            match self.peek(0) {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => self.pos += 1,
                b'.' if matches!(self.peek(1), b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_') => {
                    self.pos += 2
                }
                _ => break,
            }
        }
        let word: Arc<str> = self.text[start..self.pos].into();
        self.push(TokenKind::Ident(word), start);
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek(0).is_ascii_digit() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self, errors: &mut Vec<Diagnostic>) {
        let start = self.pos;
        if matches!(self.peek(0), b'+' | b'-') {
            self.pos += 1;
        }
        let negative = self.src[start] == b'-';
        if self.peek(0) == b'0' && matches!(self.peek(1), b'x' | b'X') && self.peek(2).is_ascii_hexdigit() {
            self.pos += 2;
            let digits_start = self.pos;
            while self.peek(0).is_ascii_hexdigit() {
                self.pos += 1;
            }
            let text = &self.text[digits_start..self.pos];
            let value = u64::from_str_radix(text, 16)
                .ok()
                .and_then(|v| if negative { 0i64.checked_sub_unsigned(v) } else { i64::try_from(v).ok() });
            return self.finish_int(value, start, errors);
        }
        let int_digits = self.digits();
        let mut is_double = false;
        if self.peek(0) == b'.' && self.peek(1).is_ascii_digit() {
            self.pos += 1;
            self.digits();
            is_double = true;
        }
        if matches!(self.peek(0), b'e' | b'E') {
            let save = self.pos;
            self.pos += 1;
            if matches!(self.peek(0), b'+' | b'-') {
                self.pos += 1;
            }
            if self.digits() == 0 {
                self.pos = save;
            } else {
                is_double = true;
            }
        }
        let text = &self.text[start..self.pos];
        if is_double {
            let value = text.parse::<f64>().unwrap_or(f64::NAN);
            self.push(TokenKind::Double(value), start);
        } else if int_digits == 0 {
            self.pos = start + 1;
            errors.push(Diagnostic::new(
                self.span(start),
                format!("unexpected {:?}", &self.text[start..self.pos]),
            ));
        } else {
            self.finish_int(text.trim_start_matches('+').parse::<i64>().ok(), start, errors);
        }
    }

    fn finish_int(&mut self, value: Option<i64>, start: usize, errors: &mut Vec<Diagnostic>) {
        match value {
            Some(v) => self.push(TokenKind::Int(v), start),
            None => {
                let text = &self.text[start..self.pos];
                errors.push(Diagnostic::new(self.span(start), format!("this integer is too big: {text}")));
                self.push(TokenKind::Int(0), start);
            }
        }
    }

    fn literal(&mut self, quote: u8, errors: &mut Vec<Diagnostic>) {
        let start = self.pos;
        self.pos += 1;
        let mut value = String::new();
        let mut run = self.pos;
        loop {
            match self.peek(0) {
                0 if self.pos >= self.src.len() => {
                    errors.push(Diagnostic::new(self.span(start), "end of file inside a string literal"));
                    return;
                }
                b'\n' | b'\r' => {
                    errors.push(Diagnostic::new(
                        self.span(start),
                        "end of line inside a string literal; close it with a matching quote",
                    ));
                    // Keep the text as a literal so parsing goes on at the next line.
                    value.push_str(&self.text[run..self.pos]);
                    break;
                }
                c if c == quote => {
                    value.push_str(&self.text[run..self.pos]);
                    self.pos += 1;
                    break;
                }
                b'\\' => {
                    value.push_str(&self.text[run..self.pos]);
                    let escaped = match self.peek(1) {
                        b'\\' => '\\',
                        b'"' => '"',
                        b'\'' => '\'',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        _ => {
                            let at = Span::new(self.file, self.pos, self.pos + 2);
                            errors.push(Diagnostic::new(at, "bad escape in string literal"));
                            '\\'
                        }
                    };
                    value.push(escaped);
                    self.pos += 2;
                    run = self.pos;
                }
                _ => self.pos += 1,
            }
        }
        self.push(TokenKind::Literal(value.into()), start);
    }
}

/// Doc text without the comment's leading `*` columns and surrounding blank lines.
fn clean_doc(raw: &str) -> String {
    let lines: Vec<&str> = raw
        .lines()
        .map(|line| {
            let t = line.trim_start();
            t.strip_prefix('*').map_or(line.trim(), |rest| rest.strip_prefix(' ').unwrap_or(rest)).trim_end()
        })
        .collect();
    let first = lines.iter().position(|l| !l.is_empty()).unwrap_or(lines.len());
    let last = lines.iter().rposition(|l| !l.is_empty()).map_or(first, |i| i + 1);
    lines[first..last].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> (Vec<TokenKind>, Vec<String>) {
        let mut errors = Vec::new();
        let toks = tokenize(FileId(0), text, &mut errors);
        (toks.into_iter().map(|t| t.kind).collect(), errors.into_iter().map(|e| e.message).collect())
    }

    #[test]
    fn numbers_identifiers_and_punctuation() {
        let (k, e) = kinds("a.b_1 = -0x10 +7 1.5e3 .5 1e2 { }");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(
            k,
            vec![
                TokenKind::Ident("a.b_1".into()),
                TokenKind::Punct('='),
                TokenKind::Int(-16),
                TokenKind::Int(7),
                TokenKind::Double(1500.0),
                TokenKind::Double(0.5),
                TokenKind::Double(100.0),
                TokenKind::Punct('{'),
                TokenKind::Punct('}'),
                TokenKind::Eof,
            ]
        );
    }

    #[test]
    fn too_big_integer_and_unterminated_string() {
        let (_, e) = kinds("9876543210987654321 'abc\n");
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e[0].contains("too big"));
        assert!(e[1].contains("end of line"));
        let (k, e) = kinds("-9223372036854775808");
        assert!(e.is_empty());
        assert_eq!(k[0], TokenKind::Int(i64::MIN));
    }

    #[test]
    fn comments_and_docs() {
        let mut errors = Vec::new();
        let toks = tokenize(FileId(0), "# x\n// y\n/* z */ /**\n * Hello\n * world\n */ struct", &mut errors);
        assert!(errors.is_empty());
        assert_eq!(toks[0].doc.as_deref(), Some("Hello\nworld"));
        assert_eq!(toks[0].kind, TokenKind::Ident("struct".into()));
    }

    #[test]
    fn escapes() {
        let (k, _) = kinds(r#""a\"b\n" 'it\'s'"#);
        assert_eq!(k[0], TokenKind::Literal("a\"b\n".into()));
        assert_eq!(k[1], TokenKind::Literal("it's".into()));
    }
}
