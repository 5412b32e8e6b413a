//! The README's middleware example: a server that lets in only listed caller appkeys, and a client
//! layer that names the caller on every call.

use probe::{Channel, TcpTransport};
use probe::{Error, Server};
use probe_examples::allowlist::{AllowAppkeys, CallerStamp};
use probe_examples::handler::DemoHandler;
use probe_examples::idl::demo::DemoClient;

#[tokio::test]
async fn only_listed_callers_get_through() {
    let server = Server::builder()
        .add_provider(DemoHandler::new("n1"))
        .layer(AllowAppkeys::layer(["order_app"]))
        .start("127.0.0.1:0")
        .await
        .unwrap();
    // Calls carry metadata in THeader frames (discovered probe nodes get them so by themselves).
    let transport = TcpTransport::builder(server.local_addr().to_string()).header(true).multiplex(true);
    let channel = Channel::new(transport.connect().await.unwrap());

    // Anonymous: refused by the server's layer, the handler never runs.
    match DemoClient::new(channel.clone()).say("anon".into()).await {
        Err(probe::CallError::Rpc(Error::Application(e))) => {
            assert!(e.message.contains("may not call Demo.say"), "{e}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Named by the client's layer: served.
    let order = DemoClient::new(channel.layer(CallerStamp::layer("order_app", "Order")));
    assert_eq!(order.say("ada".into()).await.unwrap().message, "hello, ada");
    // Another app: refused.
    let billing = DemoClient::new(channel.layer(CallerStamp::layer("billing_app", "Billing")));
    assert!(billing.say("bob".into()).await.is_err());
    server.shutdown().await.unwrap();
}
