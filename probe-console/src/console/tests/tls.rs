//! HTTPS: the console over real TLS connections (test certificates in `fixtures/`), its session
//! cookie `Secure` then and only then, and TLS files it cannot use refused with their names.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::{Method, StatusCode, header};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

use super::super::{ConsoleTls, ConsoleTlsError, serve_tls_on};
use super::*;

fn fixture_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/console/tests/fixtures").join(name)
}

fn test_tls() -> ConsoleTls {
    ConsoleTls::new(fixture_file("server.pem"), fixture_file("server.key"))
}

/// A TLS client trusting only the fixtures' CA.
fn connector() -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(fixture_file("ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// The console over HTTPS on a free port; answers its address.
async fn start_https(f: &Fixture) -> std::net::SocketAddr {
    let options = ConsoleOptions { tls: Some(test_tls()), ..options() };
    let state = ConsoleState::new(&options, f.backends.clone()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = test_tls().load().unwrap();
    tokio::spawn(serve_tls_on(listener, config, state, std::future::pending()));
    addr
}

/// `request` sent on a fresh TLS connection; everything the console answered.
async fn https(addr: std::net::SocketAddr, request: &str) -> String {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector().connect(name, tcp).await.unwrap();
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).await.unwrap();
    String::from_utf8(answer).unwrap()
}

fn login_request(addr: std::net::SocketAddr) -> String {
    let body = json!({ "token": ADMIN, "user": "alice" }).to_string();
    format!(
        "POST /api/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn a_login_over_https_sets_a_secure_cookie() {
    let f = fixture().await;
    let addr = start_https(&f).await;
    let answer = https(addr, &login_request(addr)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let cookie = answer
        .lines()
        .find_map(|line| line.strip_prefix("set-cookie: "))
        .unwrap_or_else(|| panic!("no cookie in {answer}"));
    assert!(cookie.starts_with(&format!("{SESSION_COOKIE}=")), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(cookie.split("; ").any(|a| a == attribute), "{cookie} lacks {attribute}");
    }
    // The page itself comes over HTTPS too.
    let page = https(addr, &format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")).await;
    assert!(page.starts_with("HTTP/1.1 200") && page.contains("<html"), "{page}");
}

#[tokio::test]
async fn plain_http_to_the_https_port_gets_no_page() {
    let f = fixture().await;
    let addr = start_https(&f).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer).await;
    assert!(!String::from_utf8_lossy(&answer).contains("HTTP/1.1"), "{answer:?}");
    // The listener still serves TLS clients after that.
    assert!(https(addr, &login_request(addr)).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_plain_console_sets_no_secure_cookie() {
    let f = fixture().await;
    let body = json!({ "token": ADMIN });
    let (status, headers, _) =
        send(&f.app, request(Method::POST, "/api/login", Auth::None, Some(body))).await;
    assert_eq!(status, StatusCode::OK);
    let cookie = headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
    assert!(!cookie.contains("Secure"), "{cookie}");
    // A state made without TLS is not served over HTTPS, where its cookie would lack Secure.
    let state = ConsoleState::new(&options(), f.backends.clone()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err =
        serve_tls_on(listener, test_tls().load().unwrap(), state, std::future::pending()).await.unwrap_err();
    assert!(err.to_string().contains("set ConsoleOptions::tls"), "{err}");
}

#[test]
fn unusable_tls_files_are_refused_naming_the_option() {
    let missing = ConsoleTls::new("/nonexistent/console.pem", fixture_file("server.key")).load().unwrap_err();
    assert!(matches!(missing, ConsoleTlsError::Read { .. }));
    assert!(
        missing.to_string().starts_with(
            "cannot read the console's TLS certificate (--tls-cert, PROBE_CONSOLE_TLS_CERT) /nonexistent/console.pem"
        ),
        "{missing}"
    );
    let swapped = ConsoleTls::new(fixture_file("server.key"), fixture_file("server.pem")).load().unwrap_err();
    assert!(swapped.to_string().contains("(--tls-cert, PROBE_CONSOLE_TLS_CERT)"), "{swapped}");
    assert!(swapped.to_string().contains("holds no certificate"), "{swapped}");
    let no_key = ConsoleTls::new(fixture_file("server.pem"), fixture_file("ca.pem")).load().unwrap_err();
    assert!(no_key.to_string().contains("TLS key (--tls-key, PROBE_CONSOLE_TLS_KEY)"), "{no_key}");
    let other = ConsoleTls::new(fixture_file("server.pem"), fixture_file("other.key")).load().unwrap_err();
    assert!(matches!(other, ConsoleTlsError::Mismatch { .. }), "{other}");
    assert!(other.to_string().contains("does not go with its certificate"), "{other}");
    // No message quotes key material.
    let key = std::fs::read_to_string(fixture_file("other.key")).unwrap();
    let middle = key.lines().nth(1).unwrap();
    for err in [missing, swapped, no_key, other] {
        assert!(!err.to_string().contains(middle), "{err}");
    }
}
