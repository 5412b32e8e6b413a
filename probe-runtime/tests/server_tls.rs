//! TLS on the RPC port: TLS-only and optional ports, client certificates and the appkey they
//! name, plaintext peers of a TLS-only port, certificates renewed on disk while serving (the
//! server's, and a client's certificate and CA bundle), bad files, and discovered nodes that
//! advertise TLS.

mod server_support;
mod tls_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use probe_runtime::Error;
use probe_runtime::client::{Channel, ClusterOptions, TcpTransport};
use probe_runtime::codec::ApplicationExceptionKind;
use probe_runtime::context::Context;
use probe_runtime::registry::embedded::Embedded;
use probe_runtime::registry::layout::{Env, NodeData, NodeKey};
use probe_runtime::registry::{Backends, Registry};
use probe_runtime::server::{ServeError, Server, ServerHandle};
use probe_runtime::service::{BoxFuture, Dispatch, MethodInfo, Protocol, Reply, Request};
use probe_runtime::tls::{ClientAuth, ClientTls, ServerTls, TlsClient, TlsMode};
use probe_runtime::transport::{Framing, WireFormat};
use server_support::*;
use tls_support::{Issued, Pki, write_atomically};

/// `Who.whoami(msg)`: answers `msg` and the appkey of the caller's TLS certificate as the
/// handler's context tells it (`-` for none, `no context` without one).
struct Who;

impl Dispatch for Who {
    fn service_name(&self) -> &'static str {
        "Who"
    }

    fn methods(&self) -> &'static [MethodInfo] {
        &[MethodInfo { name: "whoami", oneway: false, idempotent: true }]
    }

    fn dispatch(&self, request: Request) -> BoxFuture<'_, Reply> {
        let seen = match Context::current() {
            Some(cx) => cx.tls_peer_appkey().unwrap_or("-").to_owned(),
            None => "no context".to_owned(),
        };
        let from_request = request.tls_peer_appkey().map(str::to_owned);
        Box::pin(async move {
            let args = match request.decode_args::<EchoArgs>() {
                Ok(args) => args,
                Err(e) => return request.protocol_error(&e),
            };
            // The request and the context agree.
            assert_eq!(from_request.as_deref().unwrap_or("-"), seen.replace("no context", "-"));
            request.reply(&EchoResult { success: Some(format!("{} {seen}", args.msg)) })
        })
    }
}

async fn whoami(channel: &Channel) -> Result<String, Error> {
    call(channel, "Who", "whoami", EchoArgs::new("hi")).await
}

async fn serve(tls: ServerTls) -> ServerHandle {
    let builder = Server::builder().add_service(Echo::new("Echo", "").0).add_service(Who);
    start(builder.tls(tls)).await
}

fn server_tls(issued: &Issued) -> ServerTls {
    ServerTls::new(&issued.cert, &issued.key).reload_interval(Duration::from_millis(50))
}

fn client_tls(pki: &Pki) -> TlsClient {
    ClientTls::new(pki.ca()).load().unwrap()
}

fn tls_channel(server: &ServerHandle, tls: &TlsClient, wire: WireFormat, multiplex: bool) -> Channel {
    let transport = TcpTransport::builder(server.local_addr().to_string())
        .protocol(wire.protocol)
        .framed(wire.framing != Framing::Unframed)
        .header(wire.framing == Framing::Header)
        .multiplex(multiplex)
        .service_prefix(true)
        .timeout(Duration::from_secs(5))
        .tls(tls.clone())
        .build();
    Channel::new(transport)
}

fn plain_channel(server: &ServerHandle, wire: WireFormat) -> Channel {
    channel(server.local_addr(), wire, false, true)
}

#[tokio::test]
async fn a_tls_port_serves_every_wire_pooled_and_multiplexed() {
    let pki = Pki::new("wires");
    let server = serve(server_tls(&pki.server("server"))).await;
    assert_eq!(server.tls_mode(), TlsMode::Required);
    let tls = client_tls(&pki);
    let header = WireFormat::new(Protocol::Compact, Framing::Header);
    for wire in WIRES.into_iter().chain([header]) {
        for multiplex in [false, true] {
            let channel = tls_channel(&server, &tls, wire, multiplex);
            for n in 0..3 {
                assert_eq!(echo(&channel, &format!("{wire} {n}")).await.unwrap(), format!("{wire} {n}"));
            }
            // No client certificate: no identity, and a context only for header calls.
            let want = if wire.framing == Framing::Header { "hi -" } else { "hi no context" };
            assert_eq!(whoami(&channel).await.unwrap(), want, "{wire}");
        }
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_plaintext_client_of_a_tls_only_port_is_told_so_at_once() {
    let pki = Pki::new("required");
    let server = serve(server_tls(&pki.server("server"))).await;
    let header = WireFormat::new(Protocol::Binary, Framing::Header);
    for wire in WIRES.into_iter().chain([header]) {
        let channel = plain_channel(&server, wire);
        let started = Instant::now();
        match echo(&channel, "in the clear").await {
            Err(Error::Application(e)) => {
                assert_eq!(e.kind, ApplicationExceptionKind::UnsupportedClientType, "{wire}: {e}");
                assert!(e.message.contains("this port requires TLS; configure the client's TLS"), "{e}");
            }
            other => panic!("{wire}: expected the TLS-required error, got {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(2), "{wire}: took {:?}", started.elapsed());
    }
    // A raw unframed peer gets the error in its own protocol, and the connection is closed.
    let wire = WIRES[3];
    let stream = send_raw(
        server.local_addr(),
        &on_wire(wire, &message(wire.protocol, "echo", 7, &EchoArgs::new("x"))),
    )
    .await;
    let replies = replies_until_closed(stream, wire).await;
    assert_eq!(replies.len(), 1);
    let (header, body) = replies.into_iter().next().unwrap();
    assert_eq!((header.seqid, &*header.name), (7, "echo"));
    assert!(exception(wire.protocol, &header, body).message.contains("requires TLS"));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_optional_port_serves_tls_and_plaintext_side_by_side() {
    let pki = Pki::new("optional");
    let server = serve(server_tls(&pki.server("server")).mode(TlsMode::Optional)).await;
    let tls = client_tls(&pki);
    for wire in WIRES {
        let secure = tls_channel(&server, &tls, wire, true);
        let plain = plain_channel(&server, wire);
        assert_eq!(echo(&secure, "tls").await.unwrap(), "tls");
        assert_eq!(echo(&plain, "plain").await.unwrap(), "plain");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn required_client_certificates_name_the_callers_appkey() {
    let pki = Pki::new("mtls");
    let tls = server_tls(&pki.server("server")).client_auth(ClientAuth::Required, pki.ca());
    let server = serve(tls).await;
    let by_uri = pki.client_uri("billing", "billing_app");
    let by_cn = pki.client_cn("order", "order_app");
    let wire = WIRES[0];
    for (issued, appkey) in [(&by_uri, "billing_app"), (&by_cn, "order_app")] {
        let client = ClientTls::new(pki.ca()).identity(&issued.cert, &issued.key).load().unwrap();
        for multiplex in [false, true] {
            let channel = tls_channel(&server, &client, wire, multiplex);
            assert_eq!(whoami(&channel).await.unwrap(), format!("hi {appkey}"));
        }
        let header = tls_channel(&server, &client, WireFormat::new(Protocol::Binary, Framing::Header), true);
        assert_eq!(whoami(&header).await.unwrap(), format!("hi {appkey}"));
    }
    // Without a certificate, or with one another CA issued, the handshake fails.
    let other = Pki::new("mtls-other");
    let stranger = other.client_cn("stranger", "stranger_app");
    let strangers = [
        ClientTls::new(pki.ca()).load().unwrap(),
        ClientTls::new(pki.ca()).identity(&stranger.cert, &stranger.key).load().unwrap(),
    ];
    for client in strangers {
        match whoami(&tls_channel(&server, &client, wire, false)).await {
            // TLS 1.3: the server refuses the certificate after the client's handshake is done, so
            // the client learns it from the server's alert when it reads.
            Err(e @ (Error::Connect { .. } | Error::Transport { .. })) => {
                let text = e.to_string();
                assert!(text.contains("Certificate") || text.contains("UnknownCA"), "{text}");
            }
            other => panic!("expected the handshake to fail, got {other:?}"),
        }
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn optional_client_certificates_let_callers_without_one_in() {
    let pki = Pki::new("mtls-optional");
    let tls = server_tls(&pki.server("server")).client_auth(ClientAuth::Optional, pki.ca());
    let server = serve(tls.mode(TlsMode::Optional)).await;
    let wire = WIRES[0];
    let anonymous = tls_channel(&server, &client_tls(&pki), wire, false);
    assert_eq!(whoami(&anonymous).await.unwrap(), "hi no context");
    let issued = pki.client_cn("c", "stock_app");
    let named = ClientTls::new(pki.ca()).identity(&issued.cert, &issued.key).load().unwrap();
    assert_eq!(whoami(&tls_channel(&server, &named, wire, true)).await.unwrap(), "hi stock_app");
    // A certificate whose CN is no appkey names none.
    let odd = pki.client_cn("odd", "not an appkey");
    let odd = ClientTls::new(pki.ca()).identity(&odd.cert, &odd.key).load().unwrap();
    assert_eq!(whoami(&tls_channel(&server, &odd, wire, false)).await.unwrap(), "hi no context");
    assert_eq!(whoami(&plain_channel(&server, wire)).await.unwrap(), "hi no context");
    server.shutdown().await.unwrap();
}

/// Waits until `server` has reloaded its TLS files `n` times.
async fn reloaded(server: &ServerHandle, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.tls_reloads() < n {
        assert!(Instant::now() < deadline, "the server did not reload its certificate within 5 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart_and_a_bad_one_is_not() {
    let (old_ca, new_ca) = (Pki::new("old"), Pki::new("new"));
    let issued = old_ca.server("server");
    let server = serve(server_tls(&issued)).await;
    let (old_client, new_client) = (client_tls(&old_ca), client_tls(&new_ca));
    let wire = WIRES[0];
    // Pooled: its one connection is reused for the calls below.
    let kept = tls_channel(&server, &old_client, wire, false);
    assert_eq!(echo(&kept, "old").await.unwrap(), "old");
    assert!(echo(&tls_channel(&server, &new_client, wire, false), "new").await.is_err());

    // Renewed by the new CA: the files are replaced, the server reloads them.
    let renewed = new_ca.server("renewed");
    write_atomically(&issued.key, &std::fs::read(&renewed.key).unwrap());
    write_atomically(&issued.cert, &std::fs::read(&renewed.cert).unwrap());
    reloaded(&server, 1).await;
    assert_eq!(echo(&tls_channel(&server, &new_client, wire, false), "new").await.unwrap(), "new");
    // Connections made before keep working.
    assert_eq!(echo(&kept, "still").await.unwrap(), "still");

    // A broken certificate, then a key that is not the certificate's: the last good files serve on.
    write_atomically(&issued.cert, b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let other_key = new_ca.server("other");
    write_atomically(&issued.key, &std::fs::read(&other_key.key).unwrap());
    write_atomically(&issued.cert, &std::fs::read(&renewed.cert).unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.tls_reloads(), 1, "bad files are not loaded");
    assert_eq!(echo(&tls_channel(&server, &new_client, wire, false), "kept").await.unwrap(), "kept");
    // Fixed: loaded again.
    write_atomically(&issued.key, &std::fs::read(&renewed.key).unwrap());
    reloaded(&server, 2).await;
    assert_eq!(echo(&tls_channel(&server, &new_client, wire, true), "fixed").await.unwrap(), "fixed");
    server.shutdown().await.unwrap();
}

/// A client's TLS whose files are looked at for changes every 50 ms, as connections open.
fn reloading_client(ca: &std::path::Path, identity: Option<&Issued>) -> TlsClient {
    let tls = ClientTls::new(ca).reload_interval(Duration::from_millis(50));
    let tls = match identity {
        Some(issued) => tls.identity(&issued.cert, &issued.key),
        None => tls,
    };
    tls.load().unwrap()
}

/// Past the client's reload interval: its next connection looks at the files.
async fn past_interval() {
    tokio::time::sleep(Duration::from_millis(120)).await;
}

#[tokio::test]
async fn a_renewed_client_certificate_is_presented_without_a_restart_and_a_bad_one_is_not() {
    let pki = Pki::new("client-renewal");
    let tls = server_tls(&pki.server("server")).client_auth(ClientAuth::Required, pki.ca());
    let server = serve(tls).await;
    let client = reloading_client(&pki.ca(), Some(&pki.client_cn("me", "stock_app")));
    let wire = WIRES[0];
    // Pooled: its one connection is reused for the calls below.
    let kept = tls_channel(&server, &client, wire, false);
    assert_eq!(whoami(&kept).await.unwrap(), "hi stock_app");

    // Renewed, naming another appkey: the files are replaced; the next connection presents it.
    let renewed = pki.client_cn("me", "order_app");
    past_interval().await;
    assert_eq!(whoami(&tls_channel(&server, &client, wire, false)).await.unwrap(), "hi order_app");
    assert_eq!(client.reloads(), 1);
    // The connection opened before keeps its certificate; clones share the reloaded one.
    assert_eq!(whoami(&kept).await.unwrap(), "hi stock_app");
    assert_eq!(whoami(&tls_channel(&server, &client.clone(), wire, true)).await.unwrap(), "hi order_app");

    // A broken certificate, then a key that is not the certificate's: the last good files serve on.
    write_atomically(&renewed.cert, b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    past_interval().await;
    assert_eq!(whoami(&tls_channel(&server, &client, wire, false)).await.unwrap(), "hi order_app");
    let other = pki.client_cn("other", "pay_app");
    write_atomically(&renewed.cert, &std::fs::read(&other.cert).unwrap());
    past_interval().await;
    assert_eq!(whoami(&tls_channel(&server, &client, wire, true)).await.unwrap(), "hi order_app");
    assert_eq!(client.reloads(), 1, "bad files are not loaded");
    // Fixed: loaded again.
    write_atomically(&renewed.key, &std::fs::read(&other.key).unwrap());
    past_interval().await;
    assert_eq!(whoami(&tls_channel(&server, &client, wire, false)).await.unwrap(), "hi pay_app");
    assert_eq!(client.reloads(), 2);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_client_trusts_a_new_issuer_once_its_ca_bundle_file_has_it() {
    let (old_ca, new_ca) = (Pki::new("bundle-old"), Pki::new("bundle-new"));
    let server = serve(server_tls(&new_ca.server("server"))).await;
    let bundle = old_ca.dir.join("bundle.pem");
    write_atomically(&bundle, &std::fs::read(old_ca.ca()).unwrap());
    let client = reloading_client(&bundle, None);
    let wire = WIRES[0];
    let err = echo(&tls_channel(&server, &client, wire, false), "x").await.unwrap_err().to_string();
    assert!(err.contains("TLS handshake failed"), "{err}");

    // The bundle now holds both issuers, as during a CA rotation.
    let mut both = std::fs::read(old_ca.ca()).unwrap();
    both.extend(std::fs::read(new_ca.ca()).unwrap());
    write_atomically(&bundle, &both);
    past_interval().await;
    assert_eq!(echo(&tls_channel(&server, &client, wire, true), "y").await.unwrap(), "y");
    assert_eq!(client.reloads(), 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_files_stop_the_server_naming_the_file_and_setting() {
    let pki = Pki::new("bad");
    let good = pki.server("server");
    let other = pki.server("other");
    let start_with = |tls: ServerTls| async move {
        match Server::builder().add_service(Who).tls(tls).start("127.0.0.1:0").await {
            Err(ServeError::Tls(e)) => e.to_string(),
            Ok(_) => panic!("the server started"),
            Err(e) => panic!("not a TLS error: {e}"),
        }
    };
    let missing = pki.dir.join("missing.pem");
    let text = start_with(ServerTls::new(&missing, &good.key)).await;
    assert!(
        text.contains(&missing.display().to_string()) && text.contains("PROBE_SERVER_TLS_CERT"),
        "{text}"
    );
    let text = start_with(ServerTls::new(&good.cert, &other.key)).await;
    assert!(
        text.contains("does not belong to the certificate") && text.contains("PROBE_SERVER_TLS_KEY"),
        "{text}"
    );
    let text = start_with(ServerTls::new(&good.key, &good.key)).await;
    assert!(text.contains("holds no certificate"), "{text}");
    let text = start_with(ServerTls::new(&good.cert, &good.cert)).await;
    assert!(text.contains("holds no private key") && !text.contains("BEGIN CERTIFICATE-----\n"), "{text}");
    let text =
        start_with(ServerTls::new(&good.cert, &good.key).client_auth(ClientAuth::Required, &missing)).await;
    assert!(text.contains("PROBE_SERVER_TLS_CLIENT_CA"), "{text}");
    let client = ClientTls::new(pki.ca()).identity(&good.cert, &other.key).load().unwrap_err().to_string();
    assert!(client.contains("PROBE_CLIENT_TLS_KEY"), "{client}");
}

#[tokio::test]
async fn clients_are_told_what_went_wrong_with_the_handshake() {
    let pki = Pki::new("handshake");
    let wire = WIRES[0];
    // A TLS client of a plaintext port.
    let (plain, _) = start_echo().await;
    let err = echo(&tls_channel(&plain, &client_tls(&pki), wire, false), "x").await.unwrap_err().to_string();
    assert!(err.contains("does it serve TLS"), "{err}");
    plain.shutdown().await.unwrap();
    // A server whose certificate another CA issued.
    let server = serve(server_tls(&pki.server("server"))).await;
    let stranger = Pki::new("handshake-other");
    let err =
        echo(&tls_channel(&server, &client_tls(&stranger), wire, false), "x").await.unwrap_err().to_string();
    assert!(err.contains("TLS handshake failed") && err.contains("certificate"), "{err}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn discovered_nodes_that_advertise_tls_get_tls_and_the_others_plaintext() {
    let pki = Pki::new("discovery");
    let tls = server_tls(&pki.server("server")).mode(TlsMode::Required);
    let secure = start(Server::builder().add_service(Echo::new("Echo", "tls:").0).tls(tls)).await;
    let plain = start(Server::builder().add_service(Echo::new("Echo", "plain:").0)).await;
    let embedded = Embedded::new();
    let backends = Backends::embedded(Env::Dev, &embedded);
    let session = embedded.registry.session().await.unwrap();
    for (server, advertised) in [(&secure, Some(TlsMode::Required)), (&plain, None)] {
        let addr = server.local_addr();
        let key = NodeKey::new(Env::Dev, "tls_app", "Echo", &addr.ip().to_string(), addr.port()).unwrap();
        let mut node = NodeData::new(&addr.ip().to_string(), addr.port());
        node.version = Some("0.1.0".into());
        if let Some(mode) = advertised {
            node.extra.insert(probe_runtime::tls::NODE_FIELD.into(), mode.as_str().into());
        }
        session.register(&key, &node).await.unwrap();
    }
    let options = ClusterOptions::default().tls(client_tls(&pki));
    let channel = Channel::discover(&backends, "tls_app", "Echo", options).await.unwrap();
    let mut answered = std::collections::BTreeSet::new();
    for n in 0..40 {
        let reply = echo(&channel, &n.to_string()).await.unwrap();
        answered.insert(reply.split_once(':').unwrap().0.to_owned());
    }
    assert_eq!(answered, ["plain", "tls"].map(str::to_owned).into_iter().collect());
    drop(session);
    let _ = Arc::new(());
    secure.shutdown().await.unwrap();
    plain.shutdown().await.unwrap();
}

#[tokio::test]
async fn client_certificates_prove_callers_to_a_caller_policy() {
    use probe_runtime::security::{CallerPolicy, Unauthenticated};
    let pki = Pki::new("mtls-policy");
    let tls =
        server_tls(&pki.server("server")).client_auth(ClientAuth::Optional, pki.ca()).mode(TlsMode::Optional);
    let policy = CallerPolicy {
        allow: Some(["billing_app".to_owned()].into_iter().collect()),
        unauthenticated: Unauthenticated::Refuse,
    };
    let builder = Server::builder().add_service(Who).caller_policy("Who", policy).tls(tls);
    let server = start(builder).await;
    let wire = WIRES[0];
    let with = |appkey: &str| {
        let issued = pki.client_uri(appkey, appkey);
        ClientTls::new(pki.ca()).identity(&issued.cert, &issued.key).load().unwrap()
    };
    let billing = tls_channel(&server, &with("billing_app"), wire, true);
    assert_eq!(whoami(&billing).await.unwrap(), "hi billing_app");
    let refused = |result: Result<String, Error>| match result {
        Err(Error::Application(e)) => e.message,
        other => panic!("expected a refusal, got {other:?}"),
    };
    let order = refused(whoami(&tls_channel(&server, &with("order_app"), wire, false)).await);
    assert!(order.contains("caller order_app is not on the allow-list of service Who"), "{order}");
    let anonymous = refused(whoami(&plain_channel(&server, wire)).await);
    assert!(anonymous.contains("proved no appkey"), "{anonymous}");
    let stats = server.caller_stats();
    assert_eq!(stats[0].refused, [1, 1, 0], "{stats:?}");
    server.shutdown().await.unwrap();
}
