//! A call's priority.

use std::fmt;

/// How much a call matters when a server must shed load: a small integer, lower is more
/// important, with three named levels. Carried as the decimal number in
/// [`names::PRIORITY`](super::names::PRIORITY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Priority(u8);

impl Priority {
    /// Must not be shed: `0`.
    pub const CRITICAL: Priority = Priority(0);
    /// The default: `1`.
    pub const NORMAL: Priority = Priority(1);
    /// May be shed first: `2` (higher levels are more sheddable still).
    pub const SHEDDABLE: Priority = Priority(2);

    /// The priority of `level`.
    pub const fn new(level: u8) -> Priority {
        Priority(level)
    }

    /// The level.
    pub const fn level(self) -> u8 {
        self.0
    }

    /// The name of a named level.
    pub const fn name(self) -> Option<&'static str> {
        match self.0 {
            0 => Some("critical"),
            1 => Some("normal"),
            2 => Some("sheddable"),
            _ => None,
        }
    }

    /// Reads a header value: a decimal level or a level's name.
    pub fn parse(text: &str) -> Option<Priority> {
        match text.trim() {
            "critical" => Some(Priority::CRITICAL),
            "normal" => Some(Priority::NORMAL),
            "sheddable" => Some(Priority::SHEDDABLE),
            number => number.parse().ok().map(Priority),
        }
    }
}

impl Default for Priority {
    fn default() -> Self {
        Priority::NORMAL
    }
}

impl fmt::Display for Priority {
    /// The decimal level, as the header carries it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_read_as_numbers_or_names() {
        assert_eq!(Priority::parse("0"), Some(Priority::CRITICAL));
        assert_eq!(Priority::parse("sheddable"), Some(Priority::SHEDDABLE));
        assert_eq!(Priority::parse(" 7 "), Some(Priority::new(7)));
        assert_eq!(Priority::parse("-1"), None);
        assert_eq!(Priority::parse("urgent"), None);
        assert!(Priority::CRITICAL < Priority::NORMAL);
        assert_eq!(Priority::NORMAL.to_string(), "1");
        assert_eq!(Priority::new(9).name(), None);
    }
}
