//! Generated code end to end in one process: a handler behind `DirectoryServer`, called through
//! `DirectoryClient` over a loopback `Channel`, in both protocols. Every IDL shape crosses the codec:
//! structs with required/optional/default fields, typedefs, containers, a map with struct keys, a
//! union, enums, declared exceptions, void, oneway and an inherited method.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use probe::{CallError, Channel, Protocol};
use probe_tests::idl::interop::*;
use probe_tests::idl::shared::Level;

#[derive(Default)]
struct Handler {
    touched: Arc<AtomicI64>,
}

/// The shared sample user, with a struct-keyed map as well (which only some peers can carry).
fn sample_user(id: i64) -> User {
    User {
        points: vec![(Point { x: 1.0, y: -2.5 }, "origin-ish".into())].into(),
        ..probe_tests::fixtures::sample_user(id)
    }
}

impl Base for Handler {
    async fn ping(&self, msg: String) -> Result<String, CallError> {
        Ok(format!("pong: {msg}"))
    }
}

#[probe::service(appkey = "directory_app")]
impl Directory for Handler {
    async fn get(&self, id: UserId) -> Result<User, CallError<DirectoryGetException>> {
        match id {
            0 => Err(Invalid { reason: "id 0".into() }.into()),
            404 => Err(NotFound { message: "no such user".into(), id }.into()),
            500 => Err(probe::Error::handler("database down").into()),
            _ => Ok(sample_user(id)),
        }
    }

    async fn put(&self, user: User) -> Result<(), CallError> {
        if user.name.is_empty() { Err(probe::Error::handler("empty name").into()) } else { Ok(()) }
    }

    async fn find(&self, prefix: String, limit: i32, contact: Contact) -> Result<Vec<User>, CallError> {
        let n = match contact {
            Contact::Phone(p) => p,
            Contact::Email(e) => e.len() as i64,
            Contact::Where(_) => 1,
        };
        Ok((0..limit.min(n as i32))
            .map(|i| User { name: format!("{prefix}{i}"), ..sample_user(i64::from(i)) })
            .collect())
    }

    async fn touch(&self, id: UserId) -> Result<(), CallError> {
        self.touched.store(id, Ordering::SeqCst);
        Ok(())
    }

    async fn count(&self) -> Result<i32, CallError> {
        Ok(42)
    }
}

async fn exercise(protocol: Protocol) {
    let handler = Handler::default();
    let touched = handler.touched.clone();
    let client = DirectoryClient::new(Channel::loopback(DirectoryServer::new(handler), protocol));

    assert_eq!(client.get(7).await.unwrap(), sample_user(7));
    match client.get(404).await {
        Err(CallError::Exception(DirectoryGetException::NotFound(e))) => assert_eq!(e.id, 404),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(matches!(client.get(0).await, Err(CallError::Exception(DirectoryGetException::Invalid(_)))));
    match client.get(500).await {
        Err(CallError::Rpc(probe::Error::Application(e))) => {
            assert!(e.message.contains("database down"), "{e}")
        }
        other => panic!("expected an application exception, got {other:?}"),
    }
    client.put(sample_user(3)).await.unwrap();
    assert!(matches!(client.put(User::default()).await, Err(CallError::Rpc(probe::Error::Application(_)))));
    let found = client.find("x".into(), 10, Contact::Phone(3)).await.unwrap();
    assert_eq!(found.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(), ["x0", "x1", "x2"]);
    client.touch(99).await.unwrap();
    assert_eq!(touched.load(Ordering::SeqCst), 99);
    assert_eq!(client.count().await.unwrap(), 42);
    assert_eq!(client.ping("hi".into()).await.unwrap(), "pong: hi");
}

#[tokio::test]
async fn binary_protocol_roundtrips_every_shape() {
    exercise(Protocol::Binary).await;
}

#[tokio::test]
async fn compact_protocol_roundtrips_every_shape() {
    exercise(Protocol::Compact).await;
}

#[test]
fn defaults_and_constants_follow_the_idl() {
    let user = User::default();
    assert_eq!(user.level, Level::MID);
    assert!(user.active);
    assert_eq!(user.lucky, [7, 13].into_iter().collect());
    assert_eq!(MAX_USERS, 1000);
    assert_eq!(GREETING, "hello");
    assert_eq!(*LEVELS, vec![Level::LOW, Level::HIGH]);
    assert_eq!(LIMITS.get("b"), Some(&2));
    assert_eq!(HOME.city, "Berlin");
    assert_eq!(HOME.zip, 10117);
    assert_eq!(Level(5).name(), None);
    assert_eq!(format!("{:?}", Level::HIGH), "Level::HIGH");
    assert_eq!(format!("{:?}", Level(77)), "Level(77)");
    let methods = probe::Dispatch::methods(&DirectoryServer::new(Handler::default()));
    let ping = methods.iter().find(|m| m.name == "ping").unwrap();
    assert!(ping.idempotent);
    assert!(methods.iter().find(|m| m.name == "touch").unwrap().oneway);
}

#[tokio::test]
async fn provider_served_over_tcp_with_multiplexed_client() {
    use probe_runtime::client::TcpTransport;
    let server = probe::Server::builder().add_provider(Handler::default());
    assert_eq!(server.providers(), &[("directory_app".to_owned(), "Directory")]);
    let handle = server.start("127.0.0.1:0").await.unwrap();
    for (protocol, framed, multiplex) in [(Protocol::Binary, true, true), (Protocol::Compact, false, false)] {
        let transport = TcpTransport::builder(handle.local_addr().to_string())
            .protocol(protocol)
            .framed(framed)
            .multiplex(multiplex)
            .build();
        let client = DirectoryClient::new(Channel::new(transport));
        let calls: Vec<_> = (0..50)
            .map(|i| {
                let client = client.clone();
                tokio::spawn(async move { client.get(i + 1).await })
            })
            .collect();
        for (i, call) in calls.into_iter().enumerate() {
            assert_eq!(call.await.unwrap().unwrap(), sample_user(i as i64 + 1));
        }
        assert!(matches!(
            client.get(404).await,
            Err(CallError::Exception(DirectoryGetException::NotFound(_)))
        ));
        assert_eq!(client.ping("tcp".into()).await.unwrap(), "pong: tcp");
    }
    handle.shutdown().await.unwrap();
}

#[test]
fn namespace_layout_merges_files_and_nests_modules() {
    use probe_tests::idl_ns::acme::{
        common::Price,
        shop::{Item, Order},
    };
    let item = Item { sku: "A-1".into(), price: Price { cents: 250, ..Price::default() } };
    let order = Order { items: vec![item.clone()], total: item.price.clone() };
    assert_eq!(order.total.currency, "EUR");
    let _client: Option<probe_tests::idl_ns::acme::shop::CatalogClient> = None;
}
