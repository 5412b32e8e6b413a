//! Each source, and how they stack: defaults, then the file, then the environment.

use std::collections::BTreeMap;

use super::*;

const FILE: &str = r#"
env = "prod"
zookeeper = "zk1:2181,zk2:2182/probe"
zk_session_timeout_ms = 4000
zk_connect_timeout_ms = 2500
redis = "redis://cache:6380/1"
mysql = "mysql://probe:pw@db/probe"

[server]
bind = "10.0.0.7:9090"
advertise_host = "node7.internal"
grace_period_ms = 0
admin_addr = "127.0.0.1:9464"

[client]
balancer = "consistent_hash"
call_timeout_ms = 1500
connect_timeout_ms = 250
retry_budget_ratio = 0
"#;

#[test]
fn a_file_sets_every_setting() {
    let file = TempFile::new(FILE);
    let config = Config::from_file(file.path()).unwrap();
    assert_eq!(config.env, Env::Prod);
    let Some(RegistryBackend::ZooKeeper(zk)) = &config.registry else { panic!("{config:?}") };
    assert_eq!(zk.connect.hosts(), [("zk1".to_owned(), 2181), ("zk2".to_owned(), 2182)]);
    assert_eq!(zk.connect.chroot(), Some("/probe"));
    assert_eq!(
        (zk.session_timeout, zk.connect_timeout),
        (Duration::from_millis(4000), Duration::from_millis(2500))
    );
    let Some(SettingsBackend::Redis(redis)) = &config.settings else { panic!("{config:?}") };
    assert_eq!(redis.as_str(), "redis://cache:6380/1");
    let Some(AppsBackend::MySql(mysql)) = &config.apps else { panic!("{config:?}") };
    assert_eq!((mysql.host(), mysql.port()), ("db", 3306));
    assert_eq!(config.server.bind_addr().to_string(), "10.0.0.7:9090");
    assert_eq!(config.server.advertise_host().unwrap(), "node7.internal");
    assert_eq!(config.server.grace_period, Duration::ZERO);
    assert_eq!(config.server.admin_addr, Some("127.0.0.1:9464".parse().unwrap()));
    assert_eq!(config.client.balancer, BalancerKind::ConsistentHash);
    assert_eq!(config.client.call_timeout, Duration::from_millis(1500));
    assert_eq!(config.client.connect_timeout, Duration::from_millis(250));
    assert_eq!(config.client.retry_budget_ratio, 0.0);
}

#[test]
fn variables_override_the_file_setting_by_setting() {
    let file = TempFile::new(FILE);
    let vars = [
        ("PROBE_ENV", "dev"),
        ("PROBE_ZOOKEEPER", "embedded"),
        ("PROBE_MYSQL", "mysql://other@db2:3307/apps"),
        ("PROBE_PORT", "9999"),
        ("PROBE_BALANCER", "round_robin"),
        ("PROBE_CALL_TIMEOUT_MS", "700"),
        ("PROBE_CONNECT_TIMEOUT_MS", "70"),
        ("PROBE_ADVERTISE_HOST", "10.9.9.9"),
        ("PROBE_ADMIN_ADDR", "[::1]:9465"),
        ("PROBE_ZK_PORT", "not ours, ignored"),
    ];
    let config = Config::load_with_vars(Some(file.path()), vars).unwrap();
    assert_eq!(config.env, Env::Dev);
    assert_eq!(config.registry, Some(RegistryBackend::Embedded));
    let Some(AppsBackend::MySql(mysql)) = &config.apps else { panic!("{config:?}") };
    assert_eq!((mysql.host(), mysql.port(), mysql.database()), ("db2", 3307, "apps"));
    assert_eq!(config.server.bind_addr().to_string(), "10.0.0.7:9999");
    assert_eq!(config.server.advertise_host.as_deref(), Some("10.9.9.9"));
    assert_eq!(config.server.admin_addr, Some("[::1]:9465".parse().unwrap()));
    assert_eq!(config.client.balancer, BalancerKind::RoundRobin);
    assert_eq!(config.client.call_timeout, Duration::from_millis(700));
    assert_eq!(config.client.connect_timeout, Duration::from_millis(70));
    // Left alone by the variables: the file's values.
    assert!(matches!(&config.settings, Some(SettingsBackend::Redis(url)) if url.port() == 6380));
    assert_eq!(config.client.retry_budget_ratio, 0.0);
}

#[test]
fn zookeeper_timeouts_apply_whichever_source_names_the_ensemble() {
    let file = TempFile::new("zookeeper = \"zk9:2181\"\nredis = \"embedded\"\nmysql = \"embedded\"\n");
    let vars = [("PROBE_ZK_SESSION_TIMEOUT_MS", "3000"), ("PROBE_ZK_CONNECT_TIMEOUT_MS", "1000")];
    let config = Config::load_with_vars(Some(file.path()), vars).unwrap();
    let Some(RegistryBackend::ZooKeeper(zk)) = &config.registry else { panic!("{config:?}") };
    assert_eq!(zk.connect.to_string(), "zk9:2181");
    assert_eq!((zk.session_timeout, zk.connect_timeout), (Duration::from_secs(3), Duration::from_secs(1)));
}

#[test]
fn load_reads_the_file_probe_config_names_and_a_given_path_wins() {
    let named = TempFile::new("zookeeper = \"named:2181\"\nredis = \"embedded\"\nmysql = \"embedded\"\n");
    let given = TempFile::new("zookeeper = \"given:2181\"\nredis = \"embedded\"\nmysql = \"embedded\"\n");
    let named_path = named.path().to_str().unwrap();
    let connect = |config: Config| match config.registry {
        Some(RegistryBackend::ZooKeeper(zk)) => zk.connect.to_string(),
        other => format!("{other:?}"),
    };
    let config = Config::load_with_vars(None, [("PROBE_CONFIG", named_path)]).unwrap();
    assert_eq!(connect(config), "named:2181");
    let config = Config::load_with_vars(Some(given.path()), [("PROBE_CONFIG", named_path)]).unwrap();
    assert_eq!(connect(config), "given:2181");
    // from_vars reads no file.
    assert!(matches!(Config::from_vars([("PROBE_CONFIG", named_path)]), Err(ConfigError::NoRegistry)));
}

#[test]
fn several_redis_urls_are_a_cluster_and_the_flag_forces_one_seed_into_one() {
    let cluster = |vars: &[(&'static str, &'static str)]| from_vars(&real_with(vars)).map(|c| c.settings);
    let Ok(Some(SettingsBackend::RedisCluster(seeds))) =
        cluster(&[("PROBE_REDIS", "redis://a:7000, redis://b:7001,redis://c:7002")])
    else {
        panic!("not a cluster")
    };
    let ports: Vec<u16> = seeds.iter().map(RedisUrl::port).collect();
    assert_eq!(ports, [7000, 7001, 7002]);
    let forced = cluster(&[("PROBE_REDIS_CLUSTER", "true")]).unwrap();
    assert!(matches!(forced, Some(SettingsBackend::RedisCluster(seeds)) if seeds.len() == 1));
    let single = cluster(&[("PROBE_REDIS_CLUSTER", "false")]).unwrap();
    assert!(matches!(single, Some(SettingsBackend::Redis(_))));
    assert!(matches!(cluster(&[]).unwrap(), Some(SettingsBackend::Redis(_))));
}

#[test]
fn a_file_lists_cluster_seeds_as_an_array() {
    let text = "redis = [\"redis://a:7000\", \"redis://b:7000\"]\n";
    let layer = file::parse(text, Path::new("probe.toml")).unwrap();
    let mut config = Config::default();
    layer.apply(&mut config).unwrap();
    assert!(matches!(config.settings, Some(SettingsBackend::RedisCluster(seeds)) if seeds.len() == 2));
    let one =
        file::parse("redis = [\"redis://a:7000\"]\nredis_cluster = true\n", Path::new("p.toml")).unwrap();
    let mut config = Config::default();
    one.apply(&mut config).unwrap();
    assert!(matches!(config.settings, Some(SettingsBackend::RedisCluster(seeds)) if seeds.len() == 1));
}

#[test]
fn a_port_in_bind_counts_unless_a_port_is_given_in_the_same_or_a_later_source() {
    let addr = |file: &str, vars: &[(&'static str, &'static str)]| {
        let file = TempFile::new(file);
        Config::load_with_vars(Some(file.path()), EMBEDDED.iter().chain(vars).copied())
            .map(|config| config.server.bind_addr().to_string())
            .unwrap()
    };
    assert_eq!(addr("[server]\nbind = \"127.0.0.1:80\"\n", &[]), "127.0.0.1:80");
    assert_eq!(addr("[server]\nbind = \"127.0.0.1:80\"\nport = 81\n", &[]), "127.0.0.1:81");
    assert_eq!(addr("[server]\nport = 81\n", &[("PROBE_BIND", "[::1]:82")]), "[::1]:82");
    assert_eq!(addr("[server]\nbind = \"127.0.0.1:80\"\n", &[("PROBE_PORT", "83")]), "127.0.0.1:83");
    assert_eq!(addr("", &[("PROBE_BIND", "10.0.0.1:84"), ("PROBE_PORT", "85")]), "10.0.0.1:85");
}

#[test]
fn the_admin_endpoint_is_off_unless_an_address_is_given_and_off_overrides_one() {
    let admin = |file: &str, vars: &[(&'static str, &'static str)]| {
        let file = TempFile::new(file);
        Config::load_with_vars(Some(file.path()), EMBEDDED.iter().chain(vars).copied())
            .map(|config| config.server.admin_addr.map(|addr| addr.to_string()))
            .unwrap()
    };
    assert_eq!(admin("", &[]), None);
    assert_eq!(admin("", &[("PROBE_ADMIN_ADDR", "0.0.0.0:9464")]).as_deref(), Some("0.0.0.0:9464"));
    assert_eq!(admin("[server]\nadmin_addr = \"[::1]:9464\"\n", &[]).as_deref(), Some("[::1]:9464"));
    let file = "[server]\nadmin_addr = \"0.0.0.0:9464\"\n";
    assert_eq!(admin(file, &[("PROBE_ADMIN_ADDR", "127.0.0.1:9465")]).as_deref(), Some("127.0.0.1:9465"));
    assert_eq!(admin(file, &[("PROBE_ADMIN_ADDR", "off")]), None);
    assert_eq!(admin("[server]\nadmin_addr = \"Off\"\n", &[]), None);
}

#[test]
fn hostile_input_options_come_from_the_file_and_the_variables() {
    let file = TempFile::new(
        "[server]\nallow_unframed = false\nhandshake_timeout_ms = 2500\nmax_connections_per_peer = 50\n\
         reserved_connections = 0\nmemory_budget_mb = 64\n",
    );
    let vars = [("PROBE_MAX_CONNECTIONS_PER_PEER", "7"), ("PROBE_ALLOW_UNFRAMED", "true")];
    let config = Config::load_with_vars(Some(file.path()), EMBEDDED.iter().chain(&vars).copied()).unwrap();
    let server = &config.server;
    assert!(server.allow_unframed);
    assert_eq!(server.handshake_timeout, Duration::from_millis(2500));
    assert_eq!((server.max_connections_per_peer, server.reserved_connections), (7, 0));
    assert_eq!(server.memory_budget, 64 << 20);

    let defaults = Config::load_with_vars(None, EMBEDDED.iter().copied()).unwrap().server;
    assert_eq!(defaults, ServerConfig::default());
    assert!(defaults.allow_unframed && defaults.memory_budget == 512 << 20);

    for (var, bad) in [("PROBE_MAX_CONNECTIONS_PER_PEER", "0"), ("PROBE_MEMORY_BUDGET_MB", "lots")] {
        let err = Config::load_with_vars(None, EMBEDDED.iter().copied().chain([(var, bad)])).unwrap_err();
        assert!(err.to_string().contains(var), "{err}");
    }
}

#[test]
fn traffic_declarations_come_from_the_file_as_text_or_table_and_the_variables_win() {
    let load = |file: &str, vars: &[(&'static str, &'static str)]| {
        let file = TempFile::new(file);
        Config::load_with_vars(Some(file.path()), EMBEDDED.iter().chain(vars).copied()).unwrap()
    };
    let tags = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    };
    let defaults = load("", &[]);
    assert_eq!(
        (defaults.server.version, defaults.server.tags, defaults.server.tier, defaults.client.tags),
        (None, tags(&[]), 0, tags(&[]))
    );

    let table = "[server]\nversion = \"2.0.0\"\ntags = { zone = \"eu-1\", group = \"blue\" }\ntier = 1\n\n\
                 [client]\ntags = { zone = \"eu-2\" }\n";
    let config = load(table, &[]);
    assert_eq!(config.server.version.as_deref(), Some("2.0.0"));
    assert_eq!(config.server.tags, tags(&[("zone", "eu-1"), ("group", "blue")]));
    assert_eq!(config.server.tier, 1);
    assert_eq!(config.client.tags, tags(&[("zone", "eu-2")]));

    let text = "[server]\ntags = \"zone=eu-1, group=blue\"\ntier = 2\n[client]\ntags = \"zone=eu-2\"\n";
    let config = load(text, &[]);
    assert_eq!(config.server.tags, tags(&[("zone", "eu-1"), ("group", "blue")]));
    assert_eq!((config.server.tier, config.client.tags.len()), (2, 1));

    // Each variable replaces its setting whole: tags are not merged key by key.
    let vars = [
        ("PROBE_SERVER_VERSION", "2.1.0-rc.1"),
        ("PROBE_SERVER_TAGS", "zone=us-1"),
        ("PROBE_SERVER_TIER", "0"),
        ("PROBE_CLIENT_TAGS", "zone=us-2,rack=r7"),
    ];
    let config = load(table, &vars);
    assert_eq!(config.server.version.as_deref(), Some("2.1.0-rc.1"));
    assert_eq!(config.server.tags, tags(&[("zone", "us-1")]));
    assert_eq!(config.server.tier, 0);
    assert_eq!(config.client.tags, tags(&[("zone", "us-2"), ("rack", "r7")]));
    // An empty table is no tags.
    assert!(load("[server]\ntags = {}\n", &[]).server.tags.is_empty());
}
