//! The client's fault-tolerance settings: timeouts per method, its own QPS limit, hedging and the
//! nodes' circuit breakers. Their parsers, shared by the file and the environment, and what one
//! source gave of them.

use std::collections::BTreeMap;
use std::time::Duration;

use super::error::InvalidValue;
use super::options::ClientConfig;
use super::value;

/// The most calls per second a limit may name, as for the servers' limits ([`crate::limits`]).
const MAX_QPS: f64 = 1e9;

/// What one source gave of these settings; `None` for those it left out.
#[derive(Debug, Clone, Default)]
pub(super) struct FaultSettings {
    pub(super) method_timeouts: Option<BTreeMap<String, Duration>>,
    /// `Some(None)`: `off` was given, which overrides a limit of a source below.
    pub(super) qps_limit: Option<Option<f64>>,
    /// `Some(None)`: `off` was given, as for `qps_limit`.
    pub(super) hedge_percentile: Option<Option<f64>>,
    pub(super) breaker_failures: Option<u32>,
    pub(super) breaker_error_rate: Option<f64>,
}

impl FaultSettings {
    /// These settings with every one `top` gives replaced by `top`'s value (method timeouts whole,
    /// not merged method by method).
    pub(super) fn under(self, top: FaultSettings) -> FaultSettings {
        FaultSettings {
            method_timeouts: top.method_timeouts.or(self.method_timeouts),
            qps_limit: top.qps_limit.or(self.qps_limit),
            hedge_percentile: top.hedge_percentile.or(self.hedge_percentile),
            breaker_failures: top.breaker_failures.or(self.breaker_failures),
            breaker_error_rate: top.breaker_error_rate.or(self.breaker_error_rate),
        }
    }

    /// Writes the settings given into `client`.
    pub(super) fn apply(self, client: &mut ClientConfig) {
        if let Some(timeouts) = self.method_timeouts {
            client.method_timeouts = timeouts;
        }
        client.qps_limit = self.qps_limit.unwrap_or(client.qps_limit);
        client.hedge_percentile = self.hedge_percentile.unwrap_or(client.hedge_percentile);
        client.breaker_failures = self.breaker_failures.unwrap_or(client.breaker_failures);
        client.breaker_error_rate = self.breaker_error_rate.unwrap_or(client.breaker_error_rate);
    }
}

/// `off`, in any case, turns an optional setting off.
fn is_off(text: &str) -> bool {
    text.eq_ignore_ascii_case("off")
}

/// Method timeouts as text: `Echo.echo=200,slow=2000`, spaces around a pair ignored.
pub(super) fn method_timeouts(text: &str) -> Result<BTreeMap<String, Duration>, InvalidValue> {
    method_timeout_map(super::value::pairs(text, "pair", |pair| format!("{pair:?} has no `=milliseconds`"))?)
}

/// Method timeouts from method and milliseconds pairs (a TOML table's, or the text's); a method
/// given twice is an error rather than a silent choice of one timeout.
pub(super) fn method_timeout_map<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<BTreeMap<String, Duration>, InvalidValue> {
    let mut timeouts = BTreeMap::new();
    for (method, ms) in pairs {
        method_name(method)?;
        let timeout = match ms.parse::<u64>() {
            Ok(0) => return Err(InvalidValue::new(format!("the timeout of {method:?} is 0 ms, too short"))),
            Ok(ms) => Duration::from_millis(ms),
            Err(_) => {
                return Err(InvalidValue::new(format!(
                    "the timeout of {method:?}, {ms:?}, is not a whole number of milliseconds"
                )));
            }
        };
        if timeouts.insert(method.to_owned(), timeout).is_some() {
            return Err(InvalidValue::new(format!("the method {method:?} is given twice")));
        }
    }
    Ok(timeouts)
}

/// `Service.method`, or a bare `method` (of any service), each part of ASCII letters, digits and
/// `_`, as [`Channel::method_timeout`](crate::client::Channel::method_timeout) matches them.
fn method_name(name: &str) -> Result<(), InvalidValue> {
    if let Some(bad) = name.chars().find(|&c| !(c.is_ascii_alphanumeric() || c == '_' || c == '.')) {
        return Err(InvalidValue::new(format!("the method {name:?} has the character {bad:?}")));
    }
    match name.split_once('.') {
        None if !name.is_empty() => Ok(()),
        Some((service, method)) if !service.is_empty() && !method.is_empty() && !method.contains('.') => {
            Ok(())
        }
        _ => Err(InvalidValue::new(format!("the method {name:?} is neither Service.method nor method"))),
    }
}

/// Calls per second, above 0, or `off`.
pub(super) fn qps_limit(text: &str) -> Result<Option<f64>, InvalidValue> {
    if is_off(text) {
        return Ok(None);
    }
    match text.parse::<f64>() {
        Ok(qps) if qps > 0.0 && qps <= MAX_QPS => Ok(Some(qps)),
        Ok(qps) if qps <= 0.0 => Err(InvalidValue::new("a limit of 0 or less would refuse every call")),
        Ok(_) => Err(InvalidValue::new("it is out of range")),
        Err(_) => Err(InvalidValue::new("it is neither a number nor `off`")),
    }
}

/// A percentile strictly between 0 and 1, or `off`.
pub(super) fn hedge_percentile(text: &str) -> Result<Option<f64>, InvalidValue> {
    if is_off(text) {
        return Ok(None);
    }
    match text.parse::<f64>() {
        Ok(percentile) if percentile > 0.0 && percentile < 1.0 => Ok(Some(percentile)),
        Ok(_) => Err(InvalidValue::new("it is out of range")),
        Err(_) => Err(InvalidValue::new("it is neither a number nor `off`")),
    }
}

/// Failures in a row, at least 1.
pub(super) fn breaker_failures(text: &str) -> Result<u32, InvalidValue> {
    let failures = value::count(text, 1)?;
    u32::try_from(failures).map_err(|_| InvalidValue::new(format!("{failures} is more than {}", u32::MAX)))
}

/// A share of failed calls, above 0 and at most 1.
pub(super) fn breaker_error_rate(text: &str) -> Result<f64, InvalidValue> {
    match text.parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate <= 1.0 => Ok(rate),
        Ok(_) => Err(InvalidValue::new("it is out of range")),
        Err(_) => Err(InvalidValue::new("it is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem<T: std::fmt::Debug>(result: Result<T, InvalidValue>) -> String {
        result.unwrap_err().problem().to_owned()
    }

    #[test]
    fn parses_good_values() {
        let expected = BTreeMap::from([
            ("Echo.echo".to_owned(), Duration::from_millis(200)),
            ("slow".to_owned(), Duration::from_secs(2)),
        ]);
        assert_eq!(method_timeouts("Echo.echo=200,slow=2000").unwrap(), expected);
        assert_eq!(method_timeouts(" Echo.echo=200 , slow=2000 ").unwrap(), expected);
        assert_eq!(method_timeout_map([("slow", "2000"), ("Echo.echo", "200")]).unwrap(), expected);
        assert_eq!(method_timeouts("A_1.b_2=1").unwrap().len(), 1);
        assert_eq!(qps_limit("200").unwrap(), Some(200.0));
        assert_eq!(qps_limit("0.5").unwrap(), Some(0.5));
        assert_eq!((qps_limit("off").unwrap(), qps_limit("OFF").unwrap()), (None, None));
        assert_eq!(hedge_percentile("0.95").unwrap(), Some(0.95));
        assert_eq!(hedge_percentile("Off").unwrap(), None);
        assert_eq!((breaker_failures("1").unwrap(), breaker_failures("10").unwrap()), (1, 10));
        assert_eq!((breaker_error_rate("1").unwrap(), breaker_error_rate("0.25").unwrap()), (1.0, 0.25));
    }

    #[test]
    fn names_what_is_wrong() {
        assert_eq!(problem(method_timeouts("echo=200,")), "it has an empty pair between commas");
        assert_eq!(problem(method_timeouts("echo")), "\"echo\" has no `=milliseconds`");
        assert_eq!(problem(method_timeouts("echo=0")), "the timeout of \"echo\" is 0 ms, too short");
        assert_eq!(
            problem(method_timeouts("echo=2s")),
            "the timeout of \"echo\", \"2s\", is not a whole number of milliseconds"
        );
        assert_eq!(
            problem(method_timeouts("echo=-5")),
            "the timeout of \"echo\", \"-5\", is not a whole number of milliseconds"
        );
        assert_eq!(problem(method_timeouts("echo=1,echo=2")), "the method \"echo\" is given twice");
        assert_eq!(problem(method_timeouts("=200")), "the method \"\" is neither Service.method nor method");
        for name in ["Echo.", ".echo", "a.b.c"] {
            assert_eq!(
                problem(method_timeout_map([(name, "200")])),
                format!("the method {name:?} is neither Service.method nor method")
            );
        }
        assert_eq!(
            problem(method_timeouts("Echo:echo=200")),
            "the method \"Echo:echo\" has the character ':'"
        );
        assert_eq!(
            problem(method_timeouts("echo\u{202e}=200")),
            "the method \"echo\\u{202e}\" has the character '\\u{202e}'"
        );
        assert_eq!(problem(qps_limit("0")), "a limit of 0 or less would refuse every call");
        assert_eq!(problem(qps_limit("-1")), "a limit of 0 or less would refuse every call");
        assert_eq!(problem(qps_limit("NaN")), "it is out of range");
        assert_eq!(problem(qps_limit("inf")), "it is out of range");
        assert_eq!(problem(qps_limit("2e9")), "it is out of range");
        assert_eq!(problem(qps_limit("none")), "it is neither a number nor `off`");
        for bad in ["0", "1", "1.5", "-0.5", "NaN"] {
            assert_eq!(problem(hedge_percentile(bad)), "it is out of range", "{bad}");
        }
        assert_eq!(problem(hedge_percentile("p99")), "it is neither a number nor `off`");
        assert_eq!(problem(breaker_failures("0")), "0 is less than 1");
        assert_eq!(problem(breaker_failures("4294967296")), "4294967296 is more than 4294967295");
        assert_eq!(problem(breaker_failures("2.5")), "it is not a whole number");
        for bad in ["0", "1.01", "-1", "NaN"] {
            assert_eq!(problem(breaker_error_rate(bad)), "it is out of range", "{bad}");
        }
        assert_eq!(problem(breaker_error_rate("half")), "it is not a number");
    }
}
