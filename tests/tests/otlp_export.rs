//! `probe::telemetry::Telemetry::otlp` exports call spans over OTLP/HTTP: a collector on loopback
//! (a minimal HTTP server here) receives the spans of a call between a probe client and server in
//! this process, named for the service, when the telemetry is dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use probe::telemetry::Telemetry;
use probe::{CallError, Channel, Server, TcpTransport};
use probe_tests::idl::hop::{Hop, HopClient, HopServer};

struct Last;

impl Hop for Last {
    async fn relay(&self, note: String) -> Result<String, CallError> {
        Ok(note)
    }
}

/// Serves HTTP requests on `listener`, answering 200 to each and sending `(request line, body)`.
fn collector(listener: TcpListener, got: mpsc::Sender<(String, Vec<u8>)>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { return };
        let mut reader = BufReader::new(stream);
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).is_err() {
            continue;
        }
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            continue;
        }
        let _ = reader.get_mut().write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
        let _ = got.send((request_line.trim().to_owned(), body));
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn call_spans_reach_an_otlp_collector() -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/v1/traces", listener.local_addr()?);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || collector(listener, tx));

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    // Started inside the runtime, as a `#[tokio::main]` program does.
    let telemetry = runtime.block_on(async { Telemetry::otlp("otlp-test-service", Some(&url)) })?;
    runtime.block_on(async {
        let server = Server::builder().add_service(HopServer::new(Last)).start("127.0.0.1:0").await?;
        let transport = TcpTransport::builder(server.local_addr().to_string()).header(true).multiplex(true);
        let client = HopClient::new(Channel::new(transport.connect().await?));
        assert_eq!(client.relay("traced".into()).await?, "traced");
        server.shutdown().await?;
        anyhow::Ok(())
    })?;
    drop(runtime);
    drop(telemetry); // flushes the batch

    let (request_line, body) =
        rx.recv_timeout(Duration::from_secs(10)).context("no export reached the collector")?;
    ensure!(request_line.starts_with("POST /v1/traces"), "{request_line}");
    ensure!(contains(&body, "otlp-test-service"), "the resource names the service");
    ensure!(contains(&body, "relay"), "the call spans name the method");
    Ok(())
}
