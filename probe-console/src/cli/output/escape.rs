//! Text probe did not write itself (registry data, app fields, audit entries, peers' errors) made
//! safe for a terminal: control characters (C0, DEL, C1: ESC starts the sequences that move the
//! cursor, retitle the window or rewrite the clipboard) and the bidirectional controls that reorder
//! what is shown (U+202E turns `exe.txt` into `txt.exe`) are printed as Rust escapes (`\u{1b}`,
//! `\0`, `\u{202e}`), so an operator sees what is there. std's `char::escape_debug` writes the
//! escapes; `--json` output is left exact (serde_json escapes controls itself).

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as it is: a control character, a bidirectional control
/// (U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069) or a line or paragraph separator.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
                | '\u{2028}' | '\u{2029}'
        )
}

/// `text` with every unsafe character escaped, newlines included (a table cell is one line).
pub fn escape(text: &str) -> Cow<'_, str> {
    escape_where(text, is_unsafe)
}

/// `text` with every unsafe character but `\n` escaped: for a whole report, whose lines probe laid
/// out itself.
pub fn escape_lines(text: &str) -> Cow<'_, str> {
    escape_where(text, |c| c != '\n' && is_unsafe(c))
}

fn escape_where(text: &str, unsafe_char: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(&unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_characters_are_escaped() {
        assert_eq!(escape("plain é 中"), "plain é 中");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(escape("\u{1b}[31mred\0"), "\\u{1b}[31mred\\0");
        assert_eq!(escape("a\u{202e}txt.exe"), "a\\u{202e}txt.exe");
        assert_eq!(escape("a\nb\tc\r\u{7f}\u{9b}"), "a\\nb\\tc\\r\\u{7f}\\u{9b}");
        assert_eq!(escape("\u{2066}x\u{2069}\u{200f}\u{2028}"), "\\u{2066}x\\u{2069}\\u{200f}\\u{2028}");
        assert_eq!(escape_lines("one\ntwo\u{1b}]0;title\u{7}\n"), "one\ntwo\\u{1b}]0;title\\u{7}\n");
    }
}
