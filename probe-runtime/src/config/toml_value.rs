//! Config-file values that take more than one TOML shape: a Redis URL or a list of them, tags
//! or method timeouts as text or a table, a number or `off`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};

/// `redis = "redis://..."`, `redis = "embedded"` or `redis = ["redis://...", ...]`.
pub(super) enum RedisValue {
    One(String),
    List(Vec<String>),
}

impl<'de> Deserialize<'de> for RedisValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RedisVisitor;

        impl<'de> Visitor<'de> for RedisVisitor {
            type Value = RedisValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Redis URL, a list of Redis Cluster seed URLs, or \"embedded\"")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<RedisValue, E> {
                Ok(RedisValue::One(text.to_owned()))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RedisValue, A::Error> {
                let mut urls = Vec::new();
                while let Some(url) = seq.next_element::<String>()? {
                    urls.push(url);
                }
                Ok(RedisValue::List(urls))
            }
        }

        deserializer.deserialize_any(RedisVisitor)
    }
}

/// `tags = "zone=eu-1,group=blue"` or `tags = { zone = "eu-1", group = "blue" }`.
pub(super) enum TagsValue {
    Text(String),
    Table(BTreeMap<String, String>),
}

impl<'de> Deserialize<'de> for TagsValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TagsVisitor;

        impl<'de> Visitor<'de> for TagsVisitor {
            type Value = TagsValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("tags as \"key=value,...\" or a table of strings, { zone = \"eu-1\" }")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<TagsValue, E> {
                Ok(TagsValue::Text(text.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TagsValue, A::Error> {
                let mut tags = BTreeMap::new();
                while let Some((key, value)) = map.next_entry::<String, String>()? {
                    tags.insert(key, value);
                }
                Ok(TagsValue::Table(tags))
            }
        }

        deserializer.deserialize_any(TagsVisitor)
    }
}

/// `method_timeouts = "Echo.echo=200,slow=2000"`, or a table of milliseconds:
/// `method_timeouts = { "Echo.echo" = 200, slow = 2000 }`, where a service's own table stands for
/// its methods (`Echo = { echo = 200 }`, or `Echo.echo = 200` under `[client.method_timeouts]`).
pub(super) enum MethodTimeoutsValue {
    Text(String),
    /// `Service.method` or `method`, and milliseconds, as the TOML reader lists them.
    Table(Vec<(String, i64)>),
}

/// A table entry's value: milliseconds, or a service's table of them.
enum TimeoutEntry {
    Millis(i64),
    Service(Vec<(String, i64)>),
}

impl<'de> Deserialize<'de> for MethodTimeoutsValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TimeoutsVisitor;

        impl<'de> Visitor<'de> for TimeoutsVisitor {
            type Value = MethodTimeoutsValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "method timeouts as \"Service.method=milliseconds,...\" or a table of integers, \
                     { \"Echo.echo\" = 200 }",
                )
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<MethodTimeoutsValue, E> {
                Ok(MethodTimeoutsValue::Text(text.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MethodTimeoutsValue, A::Error> {
                let mut timeouts = Vec::new();
                while let Some((key, entry)) = map.next_entry::<String, TimeoutEntry>()? {
                    match entry {
                        TimeoutEntry::Millis(ms) => timeouts.push((key, ms)),
                        TimeoutEntry::Service(methods) => timeouts
                            .extend(methods.into_iter().map(|(method, ms)| (format!("{key}.{method}"), ms))),
                    }
                }
                Ok(MethodTimeoutsValue::Table(timeouts))
            }
        }

        deserializer.deserialize_any(TimeoutsVisitor)
    }
}

impl<'de> Deserialize<'de> for TimeoutEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;

        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = TimeoutEntry;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number of milliseconds, or a service's table of them")
            }

            fn visit_i64<E: de::Error>(self, ms: i64) -> Result<TimeoutEntry, E> {
                Ok(TimeoutEntry::Millis(ms))
            }

            fn visit_u64<E: de::Error>(self, ms: u64) -> Result<TimeoutEntry, E> {
                i64::try_from(ms)
                    .map(TimeoutEntry::Millis)
                    .map_err(|_| E::invalid_value(Unexpected::Unsigned(ms), &self))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TimeoutEntry, A::Error> {
                let mut methods = Vec::new();
                while let Some(entry) = map.next_entry::<String, i64>()? {
                    methods.push(entry);
                }
                Ok(TimeoutEntry::Service(methods))
            }
        }

        deserializer.deserialize_any(EntryVisitor)
    }
}

/// A number, or `"off"` (in any case) for an optional setting turned off: `qps_limit = 200`,
/// `qps_limit = "off"`. Shown as the text its setting parses.
pub(super) enum NumberOrOff {
    Number(f64),
    Off,
}

impl fmt::Display for NumberOrOff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NumberOrOff::Number(number) => write!(f, "{number}"),
            NumberOrOff::Off => f.write_str("off"),
        }
    }
}

impl<'de> Deserialize<'de> for NumberOrOff {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumberVisitor;

        impl<'de> Visitor<'de> for NumberVisitor {
            type Value = NumberOrOff;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, or \"off\"")
            }

            fn visit_f64<E: de::Error>(self, number: f64) -> Result<NumberOrOff, E> {
                Ok(NumberOrOff::Number(number))
            }

            fn visit_i64<E: de::Error>(self, number: i64) -> Result<NumberOrOff, E> {
                Ok(NumberOrOff::Number(number as f64))
            }

            fn visit_u64<E: de::Error>(self, number: u64) -> Result<NumberOrOff, E> {
                Ok(NumberOrOff::Number(number as f64))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<NumberOrOff, E> {
                match text.eq_ignore_ascii_case("off") {
                    true => Ok(NumberOrOff::Off),
                    false => Err(E::invalid_value(Unexpected::Str(text), &self)),
                }
            }
        }

        deserializer.deserialize_any(NumberVisitor)
    }
}
