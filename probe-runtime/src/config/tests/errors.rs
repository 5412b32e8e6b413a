//! The text of every error: it names the setting, where its value came from, and how to fix it.

use super::*;

fn env_error(vars: &[(&'static str, &'static str)]) -> String {
    from_vars(&real_with(vars)).unwrap_err()
}

fn file_error(text: &str) -> String {
    file::parse(text, Path::new("/etc/probe.toml")).unwrap_err().to_string()
}

#[test]
fn missing_backends_say_what_to_set_and_how_to_choose_embedded() {
    assert_eq!(
        ConfigError::NoRegistry.to_string(),
        "no ZooKeeper configured: set PROBE_ZOOKEEPER=host:port[,host:port][/chroot] or `zookeeper = \"...\"` \
         in the config file, or choose the embedded registry explicitly with PROBE_ZOOKEEPER=embedded"
    );
    assert_eq!(
        ConfigError::NoSettingsStore.to_string(),
        "no Redis configured for node settings: set PROBE_REDIS=redis://host:port (several URLs separated by \
         commas for a Redis Cluster) or `redis = \"...\"` in the config file, or choose the embedded settings \
         store explicitly with PROBE_REDIS=embedded"
    );
    assert_eq!(
        ConfigError::NoAppRegistry.to_string(),
        "no MySQL configured for the app registry: set PROBE_MYSQL=mysql://user:password@host:port/db or \
         `mysql = \"...\"` in the config file, or choose the embedded app registry explicitly with \
         PROBE_MYSQL=embedded"
    );
}

#[test]
fn bad_zookeeper_connect_strings_name_the_variable() {
    assert_eq!(
        env_error(&[("PROBE_ZOOKEEPER", " ")]),
        "invalid PROBE_ZOOKEEPER=\" \": it is empty; expected host:port[,host:port...][/chroot], or `embedded`"
    );
    assert_eq!(
        env_error(&[("PROBE_ZOOKEEPER", ",/probe")]),
        "invalid PROBE_ZOOKEEPER=\",/probe\": it has an empty host between commas; expected \
         host:port[,host:port...][/chroot], or `embedded`"
    );
    assert_eq!(
        env_error(&[("PROBE_ZOOKEEPER", "zk1:2181,zk2:99999")]),
        "invalid PROBE_ZOOKEEPER=\"zk1:2181,zk2:99999\": the port `99999` is not a number from 1 to 65535; \
         expected host:port[,host:port...][/chroot], or `embedded`"
    );
}

#[test]
fn bad_urls_name_the_variable_and_hide_the_password() {
    assert_eq!(
        env_error(&[("PROBE_REDIS", "http://:hunter2@cache:6379")]),
        "invalid PROBE_REDIS=\"http://:***@cache:6379\": the scheme `http://` is not supported: use redis:// \
         or rediss://; expected redis://[user:password@]host[:port][/db] (or rediss://), several separated \
         by commas for a Redis Cluster, or `embedded`"
    );
    assert_eq!(
        env_error(&[("PROBE_REDIS", "redis://a:7000,,redis://b:7000")]),
        "invalid PROBE_REDIS=\"redis://a:7000,,redis://b:7000\": it has an empty URL in its list; expected \
         redis://[user:password@]host[:port][/db] (or rediss://), several separated by commas for a Redis \
         Cluster, or `embedded`"
    );
    assert_eq!(
        env_error(&[("PROBE_MYSQL", "probe:hunter2@db:3306/probe")]),
        "invalid PROBE_MYSQL=\"***@db:3306/probe\": it has no scheme: start it with mysql://; \
         expected mysql://user:password@host[:port]/database[?require_ssl=true], or `embedded`"
    );
    // A password with an unencoded `/` (the URL parser ends the user info there): all of the
    // credential is masked, and the parser's message quotes none of it.
    let err = env_error(&[("PROBE_MYSQL", "mysql://probe:hunter2/x@db:3306/probe")]);
    assert!(
        err.starts_with("invalid PROBE_MYSQL=\"mysql://***@db:3306/probe\": it is not a valid URL"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    let err = env_error(&[("PROBE_REDIS", "redis://:hunter2@a:7000,redis://:hunter3/x@b:7000,http://c")]);
    assert!(err.contains("\"redis://:***@a:7000,redis://***@b:7000,http://c\""), "{err}");
    assert!(!err.contains("hunter"), "{err}");
    assert_eq!(
        env_error(&[("PROBE_MYSQL", "mysql://probe:hunter2@db:3306")]),
        "invalid PROBE_MYSQL=\"mysql://probe:***@db:3306\": it names no database: end it with /database, the \
         one holding the serviceapp table; expected mysql://user:password@host[:port]/database[?require_ssl=true], or `embedded`"
    );
}

#[test]
fn a_cluster_flag_that_contradicts_several_urls_is_an_error() {
    assert_eq!(
        env_error(&[("PROBE_REDIS", "redis://a,redis://b"), ("PROBE_REDIS_CLUSTER", "false")]),
        "invalid PROBE_REDIS_CLUSTER=\"false\": redis lists 2 URLs, and a single Redis takes one: give one \
         URL, or set it to true; expected `true` or `false`"
    );
    assert_eq!(
        env_error(&[("PROBE_REDIS_CLUSTER", "maybe")]),
        "invalid PROBE_REDIS_CLUSTER=\"maybe\": it is neither true nor false; expected `true` or `false`"
    );
}

#[test]
fn bad_options_name_the_variable_and_the_valid_values() {
    assert_eq!(
        env_error(&[("PROBE_BALANCER", "fastest")]),
        "invalid PROBE_BALANCER=\"fastest\": probe has no balancer of that name; expected one of random, \
         round_robin, least_loaded, consistent_hash"
    );
    assert_eq!(
        env_error(&[("PROBE_ENV", "staging")]),
        "invalid PROBE_ENV=\"staging\": it is not an environment probe knows; expected `dev` or `prod`"
    );
    assert_eq!(
        env_error(&[("PROBE_CALL_TIMEOUT_MS", "0")]),
        "invalid PROBE_CALL_TIMEOUT_MS=\"0\": 0 ms is too short; expected a whole number of milliseconds, at \
         least 1"
    );
    assert_eq!(
        env_error(&[("PROBE_ZK_SESSION_TIMEOUT_MS", "10s")]),
        "invalid PROBE_ZK_SESSION_TIMEOUT_MS=\"10s\": it is not a whole number of milliseconds; expected a \
         whole number of milliseconds, at least 1"
    );
    assert_eq!(
        env_error(&[("PROBE_BIND", "localhost")]),
        "invalid PROBE_BIND=\"localhost\": it is not an IP address or IP address and port; expected an IP \
         address, optionally with a port: 0.0.0.0, 10.0.0.7:9090, [::]:9090"
    );
    assert_eq!(
        env_error(&[("PROBE_ADVERTISE_HOST", "10.0.0.7|x")]),
        "invalid PROBE_ADVERTISE_HOST=\"10.0.0.7|x\": it has the character '|'; expected the IP address or \
         host name other machines reach this one at"
    );
    assert_eq!(
        env_error(&[("PROBE_ADMIN_ADDR", "localhost:9464")]),
        "invalid PROBE_ADMIN_ADDR=\"localhost:9464\": it is not an IP address and port, nor `off`; expected \
         an IP address and port for the admin endpoint: 127.0.0.1:9464, 0.0.0.0:9464, [::1]:9464, or `off`"
    );
}

#[test]
fn bad_file_values_name_the_key_file_and_line() {
    assert_eq!(
        file_error("env = \"dev\"\n\n[server]\nport = 70000\n"),
        "invalid `server.port` = \"70000\" in /etc/probe.toml line 4: it is not a port number; expected a port \
         number from 0 to 65535 (0: any free port)"
    );
    assert_eq!(
        file_error("# probe\nredis = [\"redis://a:7000\", \"tcp://b:7000\"]\n"),
        "invalid `redis` = \"redis://a:7000,tcp://b:7000\" in /etc/probe.toml line 2: the scheme `tcp://` is \
         not supported: use redis:// or rediss://; expected redis://[user:password@]host[:port][/db] (or \
         rediss://), several separated by commas for a Redis Cluster, or `embedded`"
    );
    assert_eq!(
        file_error("[client]\nbalancer = \"p2c\"\n"),
        "invalid `client.balancer` = \"p2c\" in /etc/probe.toml line 2: probe has no balancer of that name; \
         expected one of random, round_robin, least_loaded, consistent_hash"
    );
    assert_eq!(
        file_error("[server]\nport = 9090\nadmin_addr = \"0.0.0.0\"\n"),
        "invalid `server.admin_addr` = \"0.0.0.0\" in /etc/probe.toml line 3: it has no port; expected an IP \
         address and port for the admin endpoint: 127.0.0.1:9464, 0.0.0.0:9464, [::1]:9464, or `off`"
    );
}

#[test]
fn unknown_keys_bad_types_and_bad_toml_name_the_file_and_line() {
    let unknown = file_error("zookeeper = \"zk1:2181\"\nzookeper = \"zk1:2181\"\n");
    assert!(
        unknown.starts_with("/etc/probe.toml line 2: unknown field `zookeper`, expected one of `env`"),
        "{unknown}"
    );
    let section = file_error("[server]\nbind = \"0.0.0.0\"\nadvertise = \"x\"\n");
    assert!(
        section.starts_with("/etc/probe.toml line 3: unknown field `advertise`, expected one of `bind`"),
        "{section}"
    );
    assert_eq!(
        file_error("[server]\nport = \"9090\"\n"),
        "/etc/probe.toml line 2: invalid type: string \"9090\", expected an integer"
    );
    assert_eq!(
        file_error("redis = 5\n"),
        "/etc/probe.toml line 1: invalid type: integer `5`, expected a Redis URL, a list of Redis Cluster seed \
         URLs, or \"embedded\""
    );
    let syntax = file_error("zookeeper = zk1:2181\n");
    assert!(syntax.starts_with("/etc/probe.toml line 1: "), "{syntax}");
}

#[test]
fn file_and_config_path_problems_say_which_path_and_who_named_it() {
    let missing = Path::new("/nonexistent/probe.toml");
    let err = Config::from_file(missing).unwrap_err().to_string();
    assert!(err.starts_with("cannot read config file /nonexistent/probe.toml: "), "{err}");
    let err = Config::load_with_vars(None, [("PROBE_CONFIG", "/nonexistent/probe.toml")]).unwrap_err();
    let err = err.to_string();
    assert!(
        err.starts_with("cannot read config file /nonexistent/probe.toml (named by PROBE_CONFIG): "),
        "{err}"
    );
    let err = Config::load_with_vars(None, [("PROBE_CONFIG", "")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "PROBE_CONFIG is empty: set it to the path of a TOML config file, or unset it"
    );
}

#[test]
fn bad_traffic_declarations_name_the_variable_and_the_valid_values() {
    let tags_hint = "expected key=value pairs separated by commas, each key once, keys and values of letters, \
                     digits, `_`, `.` and `-`: zone=eu-1,group=blue (in the file also a table: { zone = \"eu-1\" })";
    assert_eq!(
        env_error(&[("PROBE_SERVER_VERSION", "2.0 beta")]),
        "invalid PROBE_SERVER_VERSION=\"2.0 beta\": it has the character ' '; expected a version without \
         spaces, as traffic rules name it: 2.0.0, 2.1.0-rc.1, canary"
    );
    assert!(
        env_error(&[("PROBE_SERVER_VERSION", "")])
            .starts_with("invalid PROBE_SERVER_VERSION=\"\": it is empty;")
    );
    assert_eq!(
        env_error(&[("PROBE_SERVER_TIER", "3")]),
        "invalid PROBE_SERVER_TIER=\"3\": there is no tier 3; expected 0, 1 or 2: tiers are 0 (primary), 1 \
         and 2 (backups)"
    );
    assert_eq!(
        env_error(&[("PROBE_SERVER_TIER", "backup")]),
        "invalid PROBE_SERVER_TIER=\"backup\": it is not a whole number; expected 0, 1 or 2: tiers are 0 \
         (primary), 1 and 2 (backups)"
    );
    assert_eq!(
        env_error(&[("PROBE_SERVER_TAGS", "zone=eu-1,zone=eu-2")]),
        format!(
            "invalid PROBE_SERVER_TAGS=\"zone=eu-1,zone=eu-2\": the key \"zone\" is given twice; {tags_hint}"
        )
    );
    assert_eq!(
        env_error(&[("PROBE_CLIENT_TAGS", "zone:eu-1")]),
        format!(
            "invalid PROBE_CLIENT_TAGS=\"zone:eu-1\": the tag \"zone:eu-1\" has no `=value`; {tags_hint}"
        )
    );
    // Characters probe did not write are escaped, in the value and in the problem.
    assert_eq!(
        env_error(&[("PROBE_CLIENT_TAGS", "zone=eu\u{202e}1")]),
        format!(
            "invalid PROBE_CLIENT_TAGS=\"zone=eu\\u{{202e}}1\": the value of tag \"zone\" has the character \
             '\\u{{202e}}'; {tags_hint}"
        )
    );
}

#[test]
fn bad_traffic_declarations_in_the_file_name_the_key_file_and_line() {
    assert_eq!(
        file_error("[server]\nport = 9090\ntier = 5\n"),
        "invalid `server.tier` = \"5\" in /etc/probe.toml line 3: there is no tier 5; expected 0, 1 or 2: \
         tiers are 0 (primary), 1 and 2 (backups)"
    );
    assert_eq!(
        file_error("[server]\nversion = \"\"\n"),
        "invalid `server.version` = \"\" in /etc/probe.toml line 2: it is empty; expected a version without \
         spaces, as traffic rules name it: 2.0.0, 2.1.0-rc.1, canary"
    );
    let table = file_error("[server]\n\ntags = { zone = \"eu-1\", \"gr oup\" = \"blue\" }\n");
    assert!(
        table.starts_with(
            "invalid `server.tags` = \"gr oup=blue,zone=eu-1\" in /etc/probe.toml line 3: the tag key \
             \"gr oup\" has the character ' '; expected key=value pairs"
        ),
        "{table}"
    );
    let text = file_error("[client]\ntags = \"zone=eu-1,\"\n");
    assert!(
        text.starts_with(
            "invalid `client.tags` = \"zone=eu-1,\" in /etc/probe.toml line 2: it has an empty tag between commas;"
        ),
        "{text}"
    );
    assert_eq!(
        file_error("[client]\ntags = { zone = 1 }\n"),
        "/etc/probe.toml line 2: invalid type: integer `1`, expected a string"
    );
    assert_eq!(
        file_error("[server]\ntags = [\"zone=eu-1\"]\n"),
        "/etc/probe.toml line 2: invalid type: sequence, expected tags as \"key=value,...\" or a table of \
         strings, { zone = \"eu-1\" }"
    );
    assert_eq!(
        file_error("[server]\nversion = 2\n"),
        "/etc/probe.toml line 2: invalid type: integer `2`, expected a string"
    );
}
