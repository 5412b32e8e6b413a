//! The CA bundles for TLS to Redis and MySQL: read when the configuration loads, put into the
//! backends' URLs, refused for URLs without TLS.

use super::*;
use crate::config::tls::tests::CA_PEM;

fn vars<'a>(ca: &'a str, redis: &'a str, mysql: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("PROBE_ZOOKEEPER", "zk1:2181"),
        ("PROBE_REDIS", redis),
        ("PROBE_MYSQL", mysql),
        ("PROBE_REDIS_TLS_CA", ca),
        ("PROBE_MYSQL_TLS_CA", ca),
    ]
}

#[test]
fn ca_bundles_go_into_the_tls_urls() {
    let ca = TempFile::new(CA_PEM);
    let path = ca.path().to_str().unwrap();
    let config = from_vars(&vars(
        path,
        "rediss://:pw@cache-1:6380,rediss://:pw@cache-2:6380",
        "mysql://probe:pw@db/probe?require_ssl=true",
    ))
    .unwrap();
    let Some(SettingsBackend::RedisCluster(seeds)) = &config.settings else { panic!("{config:?}") };
    assert!(seeds.iter().all(|seed| seed.ca().map(CaBundle::path) == Some(ca.path())), "{seeds:?}");
    let Some(AppsBackend::MySql(mysql)) = &config.apps else { panic!("{config:?}") };
    assert_eq!(mysql.ca().map(CaBundle::len), Some(1));
    // Debug shows the bundle's path, never a password.
    let shown = format!("{config:?}");
    assert!(!shown.contains(":pw@") && shown.contains("certificates: 1"), "{shown}");
}

#[test]
fn a_ca_for_urls_without_tls_is_refused() {
    let ca = TempFile::new(CA_PEM);
    let path = ca.path().to_str().unwrap();
    let err = from_vars(&vars(path, "redis://:pw@cache:6379", "mysql://probe:pw@db/probe?require_ssl=true"))
        .unwrap_err();
    assert_eq!(
        err,
        format!(
            "invalid PROBE_REDIS_TLS_CA={path:?}: redis://:***@cache:6379 is not a TLS URL, so the CA \
             bundle would not be used: write rediss:// to connect over TLS; expected {}",
            Setting::RedisTlsCa.expected()
        )
    );
    let err = from_vars(&vars(path, "rediss://cache", "mysql://probe:pw@db/probe")).unwrap_err();
    assert!(
        err.starts_with(&format!("invalid PROBE_MYSQL_TLS_CA={path:?}: mysql://probe:***@db/probe")),
        "{err}"
    );
    assert!(err.contains("add ?require_ssl=true to the URL"), "{err}");
    // Embedded backends connect to nothing: the bundle is unused, not wrong.
    assert!(from_vars(&vars(path, "embedded", "embedded")).is_ok());
}

#[test]
fn a_bundle_that_cannot_be_read_names_the_setting_and_the_file_line() {
    let err = from_vars(&real_with(&[("PROBE_REDIS_TLS_CA", "/nonexistent/ca.pem")])).unwrap_err();
    assert!(
        err.starts_with(
            "invalid PROBE_REDIS_TLS_CA=\"/nonexistent/ca.pem\": cannot read the CA bundle /nonexistent/ca.pem"
        ),
        "{err}"
    );
    let not_pem = TempFile::new("not a certificate");
    let file = TempFile::new(&format!(
        "zookeeper = \"zk1\"\nredis = \"rediss://cache\"\nmysql = \"mysql://db/p?require_ssl=true\"\n\
         mysql_tls_ca = {:?}\n",
        not_pem.path()
    ));
    let err = Config::from_file(file.path()).unwrap_err().to_string();
    assert!(
        err.contains(&format!("`mysql_tls_ca` = {:?} in {} line 4", not_pem.path(), file.path().display())),
        "{err}"
    );
    assert!(err.contains("holds no certificate"), "{err}");
}
