//! How IDL names become Rust names: fields and functions in snake_case, types and enum values as
//! written, Rust keywords escaped (`r#type`), and the four names that cannot be raw identifiers
//! (`self`, `Self`, `super`, `crate`) suffixed with `_`.
//!
//! ```
//! use probe_build::names;
//! assert_eq!(names::field_name("userId"), "user_id");
//! assert_eq!(names::field_name("type"), "r#type");
//! assert_eq!(names::field_name("self"), "self_");
//! assert_eq!(names::type_name("Self"), "Self_");
//! assert_eq!(names::module_name("dsn.layer2"), "dsn_layer2");
//! ```

const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn", "else",
    "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "macro",
    "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return", "static", "struct", "trait",
    "true", "try", "type", "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Names that are keywords and cannot be written as raw identifiers either.
const NOT_RAW: &[&str] = &["self", "Self", "super", "crate", "_"];

/// Escapes a name that would clash with Rust syntax.
pub fn escape(name: &str) -> String {
    if NOT_RAW.contains(&name) {
        format!("{name}_")
    } else if KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else {
        name.to_owned()
    }
}

/// `userId` -> `user_id`, `HTTPServer` -> `http_server`; already snake names stay as they are.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                Some(p) if p.is_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_uppercase() => next.is_some_and(char::is_lowercase),
                _ => false,
            };
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The Rust name of a struct field, function or argument.
pub fn field_name(name: &str) -> String {
    escape(&snake_case(name))
}

/// The Rust name of a type (struct, union, exception, enum, typedef, service trait): as written.
pub fn type_name(name: &str) -> String {
    escape(name)
}

/// The Rust module of an IDL file, from its file name without `.thrift`.
pub fn module_name(stem: &str) -> String {
    let snake = snake_case(stem).replace(['.', '-', ' '], "_");
    let snake = if snake.starts_with(|c: char| c.is_ascii_digit()) { format!("_{snake}") } else { snake };
    escape(&snake)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_rules() {
        for (input, expected) in [
            ("userId", "user_id"),
            ("HTTPServer", "http_server"),
            ("already_snake", "already_snake"),
            ("ABC", "abc"),
            ("field1", "field1"),
            ("getV2Name", "get_v2_name"),
            ("Base", "base"),
            ("__isset", "__isset"),
            ("My_Field", "my_field"),
        ] {
            assert_eq!(snake_case(input), expected, "{input}");
        }
    }

    #[test]
    fn keywords_are_escaped() {
        assert_eq!(field_name("match"), "r#match");
        assert_eq!(field_name("crate"), "crate_");
        assert_eq!(type_name("Self"), "Self_");
        assert_eq!(module_name("2fa"), "_2fa");
        assert_eq!(module_name("Thrift5320.enum"), "thrift5320_enum");
    }
}
