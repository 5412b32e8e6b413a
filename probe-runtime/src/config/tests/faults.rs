//! The client's fault-tolerance settings from each source, how they stack, and their errors.

use std::collections::BTreeMap;

use super::*;
use crate::balance::BreakerConfig;

fn load(file: &str, vars: &[(&'static str, &'static str)]) -> Result<ClientConfig, String> {
    let file = TempFile::new(file);
    Config::load_with_vars(Some(file.path()), EMBEDDED.iter().chain(vars).copied())
        .map(|config| config.client)
        .map_err(|e| e.to_string())
}

fn timeouts(pairs: &[(&str, u64)]) -> BTreeMap<String, Duration> {
    pairs.iter().map(|(method, ms)| (method.to_string(), Duration::from_millis(*ms))).collect()
}

fn file_error(text: &str) -> String {
    file::parse(text, Path::new("/etc/probe.toml")).unwrap_err().to_string()
}

#[test]
fn defaults_are_no_method_timeouts_no_limit_no_hedging_and_the_breakers_defaults() {
    let client = load("", &[]).unwrap();
    assert_eq!(client, ClientConfig::default());
    assert!(client.method_timeouts.is_empty());
    assert_eq!((client.qps_limit, client.hedge_percentile), (None, None));
    assert_eq!((client.breaker_failures, client.breaker_error_rate), (5, 0.5));
    assert_eq!(client.breaker(), BreakerConfig::default());
}

#[test]
fn a_file_sets_them_as_text_or_table_and_the_variables_win() {
    let file = "[client]\nmethod_timeouts = { \"Echo.echo\" = 200, slow = 2000 }\nqps_limit = 500\n\
                hedge_percentile = 0.95\nbreaker_failures = 3\nbreaker_error_rate = 1\n";
    let client = load(file, &[]).unwrap();
    assert_eq!(client.method_timeouts, timeouts(&[("Echo.echo", 200), ("slow", 2000)]));
    assert_eq!((client.qps_limit, client.hedge_percentile), (Some(500.0), Some(0.95)));
    assert_eq!((client.breaker_failures, client.breaker_error_rate), (3, 1.0));
    let breaker = client.breaker();
    assert_eq!((breaker.failures, breaker.error_rate, breaker.min_calls), (3, 1.0, 20));

    // The same as text, and a service's table of its methods (TOML's dotted keys).
    let text = "[client]\nmethod_timeouts = \"Echo.echo=200, slow=2000\"\n";
    assert_eq!(load(text, &[]).unwrap().method_timeouts, timeouts(&[("Echo.echo", 200), ("slow", 2000)]));
    let dotted = "[client.method_timeouts]\nEcho.echo = 200\nEcho.slow = 300\nping = 50\n";
    let expected = timeouts(&[("Echo.echo", 200), ("Echo.slow", 300), ("ping", 50)]);
    assert_eq!(load(dotted, &[]).unwrap().method_timeouts, expected);

    // Each variable replaces its setting whole; `off` turns the file's limit and hedging off.
    let vars = [
        ("PROBE_CLIENT_METHOD_TIMEOUTS", "Other.get=75"),
        ("PROBE_CLIENT_QPS_LIMIT", "off"),
        ("PROBE_CLIENT_HEDGE_PERCENTILE", "OFF"),
        ("PROBE_CLIENT_BREAKER_FAILURES", "10"),
        ("PROBE_CLIENT_BREAKER_ERROR_RATE", "0.25"),
    ];
    let client = load(file, &vars).unwrap();
    assert_eq!(client.method_timeouts, timeouts(&[("Other.get", 75)]));
    assert_eq!((client.qps_limit, client.hedge_percentile), (None, None));
    assert_eq!((client.breaker_failures, client.breaker_error_rate), (10, 0.25));
    let client = load("", &[("PROBE_CLIENT_QPS_LIMIT", "0.5"), ("PROBE_CLIENT_HEDGE_PERCENTILE", "0.9")]);
    let client = client.unwrap();
    assert_eq!((client.qps_limit, client.hedge_percentile), (Some(0.5), Some(0.9)));
    // `off` in the file, and an empty table: nothing.
    let off = load("[client]\nqps_limit = \"off\"\nhedge_percentile = \"Off\"\nmethod_timeouts = {}\n", &[]);
    assert_eq!(off.unwrap(), ClientConfig::default());
}

#[test]
fn bad_values_name_the_variable_and_the_valid_values() {
    let env_error =
        |name: &'static str, value: &'static str| from_vars(&real_with(&[(name, value)])).unwrap_err();
    let timeouts_hint = "expected method=milliseconds pairs separated by commas, each method once, a \
                         method as Service.method or a bare method of any service, milliseconds whole \
                         and at least 1: Echo.echo=200,slow=2000 (in the file also a table: \
                         { \"Echo.echo\" = 200 })";
    assert_eq!(
        env_error("PROBE_CLIENT_METHOD_TIMEOUTS", "Echo.echo=200ms"),
        format!(
            "invalid PROBE_CLIENT_METHOD_TIMEOUTS=\"Echo.echo=200ms\": the timeout of \"Echo.echo\", \
             \"200ms\", is not a whole number of milliseconds; {timeouts_hint}"
        )
    );
    assert_eq!(
        env_error("PROBE_CLIENT_METHOD_TIMEOUTS", "Echo.echo.x=200"),
        format!(
            "invalid PROBE_CLIENT_METHOD_TIMEOUTS=\"Echo.echo.x=200\": the method \"Echo.echo.x\" is \
             neither Service.method nor method; {timeouts_hint}"
        )
    );
    assert_eq!(
        env_error("PROBE_CLIENT_QPS_LIMIT", "0"),
        "invalid PROBE_CLIENT_QPS_LIMIT=\"0\": a limit of 0 or less would refuse every call; expected a \
         number of calls per second to each service, above 0 and at most 1000000000, or `off`"
    );
    assert_eq!(
        env_error("PROBE_CLIENT_HEDGE_PERCENTILE", "95"),
        "invalid PROBE_CLIENT_HEDGE_PERCENTILE=\"95\": it is out of range; expected a number between 0 and \
         1, both excluded, or `off`: 0.95 sends an idempotent call to a second node once it has waited \
         longer than 95% of recent calls took"
    );
    assert_eq!(
        env_error("PROBE_CLIENT_BREAKER_FAILURES", "0"),
        "invalid PROBE_CLIENT_BREAKER_FAILURES=\"0\": 0 is less than 1; expected a whole number of failures \
         in a row, at least 1"
    );
    assert_eq!(
        env_error("PROBE_CLIENT_BREAKER_ERROR_RATE", "50%"),
        "invalid PROBE_CLIENT_BREAKER_ERROR_RATE=\"50%\": it is not a number; expected a number above 0 and \
         at most 1: 0.5 opens a node's breaker when half its recent calls fail"
    );
    assert!(
        env_error("PROBE_CLIENT_QPS_LIMIT", " ")
            .starts_with("invalid PROBE_CLIENT_QPS_LIMIT=\" \": it is empty;")
    );
}

#[test]
fn bad_file_values_name_the_key_file_and_line() {
    let table = file_error("[client]\n\nmethod_timeouts = { echo = 0, \"Echo.slow\" = 300 }\n");
    assert!(
        table.starts_with(
            "invalid `client.method_timeouts` = \"Echo.slow=300,echo=0\" in /etc/probe.toml line 3: the \
             timeout of \"echo\" is 0 ms, too short; expected method=milliseconds pairs"
        ),
        "{table}"
    );
    // A method given in a service's table and by its full name.
    let twice = file_error("[client.method_timeouts]\n\"Echo.echo\" = 1\nEcho.echo = 2\n");
    assert!(twice.contains(": the method \"Echo.echo\" is given twice;"), "{twice}");
    let text = file_error("[client]\nmethod_timeouts = \"echo\"\n");
    assert!(
        text.starts_with(
            "invalid `client.method_timeouts` = \"echo\" in /etc/probe.toml line 2: \"echo\" has no \
             `=milliseconds`;"
        ),
        "{text}"
    );
    assert_eq!(
        file_error("[client]\nqps_limit = -5\n"),
        "invalid `client.qps_limit` = \"-5\" in /etc/probe.toml line 2: a limit of 0 or less would refuse \
         every call; expected a number of calls per second to each service, above 0 and at most 1000000000, \
         or `off`"
    );
    assert!(file_error("[client]\nbreaker_error_rate = 1.5\n").starts_with(
        "invalid `client.breaker_error_rate` = \"1.5\" in /etc/probe.toml line 2: it is out of range;"
    ));
    assert!(file_error("[client]\nhedge_percentile = 1\n").starts_with(
        "invalid `client.hedge_percentile` = \"1\" in /etc/probe.toml line 2: it is out of range;"
    ));
    // Wrong types, as the TOML reader sees them.
    assert_eq!(
        file_error("[client]\nqps_limit = \"none\"\n"),
        "/etc/probe.toml line 2: invalid value: string \"none\", expected a number, or \"off\""
    );
    assert_eq!(
        file_error("[client]\nmethod_timeouts = { echo = \"200\" }\n"),
        "/etc/probe.toml line 2: invalid type: string \"200\", expected a whole number of milliseconds, or a \
         service's table of them"
    );
    assert_eq!(
        file_error("[client]\nmethod_timeouts = { Echo = { echo = 0.5 } }\n"),
        "/etc/probe.toml line 2: invalid type: floating point `0.5`, expected an integer"
    );
    assert_eq!(
        file_error("[client]\nbreaker_failures = \"5\"\n"),
        "/etc/probe.toml line 2: invalid type: string \"5\", expected an integer"
    );
}
