//! The three real services answer: an ephemeral ZooKeeper node lives exactly as long as its session,
//! Redis keeps a hash field, MariaDB stores an app in `serviceapp`.

use mysql_async::prelude::Queryable;
use probe::registry::layout::{Env, NodeData, NodeKey, redis_hash, zk_app_path};
use probe_tests::{mysql, redis, unique, zookeeper};
use redis::AsyncCommands;
use zookeeper_client::{Acls, CreateMode};

#[tokio::test]
async fn zookeeper_ephemeral_node_lives_with_its_session() -> anyhow::Result<()> {
    let appkey = unique("svc_test");
    let key = NodeKey::new(Env::Dev, &appkey, "Ping", "127.0.0.1", 9090)?;
    let data = NodeData::new("127.0.0.1", 9090).to_json();

    let owner = zookeeper().await?;
    let parent = CreateMode::Persistent.with_acls(Acls::anyone_all());
    let ephemeral = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    let app_path = zk_app_path(Env::Dev, &appkey);
    for path in ["/services", "/services/dev", app_path.as_str()] {
        match owner.create(path, b"", &parent).await {
            Ok(_) | Err(zookeeper_client::Error::NodeExists) => {}
            Err(e) => return Err(e.into()),
        }
    }
    owner.create(&key.zk_node_path(), &data, &ephemeral).await?;

    let observer = zookeeper().await?;
    let (read, stat) = observer.get_data(&key.zk_node_path()).await?;
    assert_eq!(read, data);
    assert_eq!(stat.ephemeral_owner, owner.session_id().0, "node is owned by the creating session");
    assert_eq!(NodeData::from_json(&read)?.weight, 10);

    drop(owner); // closes the session
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while observer.check_stat(&key.zk_node_path()).await?.is_some() {
        assert!(tokio::time::Instant::now() < deadline, "ephemeral node outlived its session by 10 s");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    observer.delete(&app_path, None).await?;
    Ok(())
}

#[tokio::test]
async fn redis_hash_keeps_node_settings() -> anyhow::Result<()> {
    let mut conn = redis().await?;
    let hash = format!("{}_{}", redis_hash(Env::Dev), unique("t"));
    let key = NodeKey::new(Env::Dev, "svc_test", "Ping", "127.0.0.1", 9091)?;
    let mut data = NodeData::new("127.0.0.1", 9091);
    data.weight = 70.into();
    let () = conn.hset(&hash, key.redis_field(), data.to_json()).await?;
    let read: Vec<u8> = conn.hget(&hash, key.redis_field()).await?;
    assert_eq!(NodeData::from_json(&read)?, data);
    let () = conn.del(&hash).await?;
    Ok(())
}

#[tokio::test]
async fn mysql_serviceapp_stores_an_app() -> anyhow::Result<()> {
    let mut conn = mysql().await?;
    let appkey = unique("app");
    conn.exec_drop("INSERT INTO serviceapp (appkey, description) VALUES (?, ?)", (&appkey, "services test"))
        .await?;
    let count: Option<i64> =
        conn.exec_first("SELECT COUNT(*) FROM serviceapp WHERE appkey = ?", (&appkey,)).await?;
    assert_eq!(count, Some(1));
    let duplicate = conn.exec_drop("INSERT INTO serviceapp (appkey) VALUES (?)", (&appkey,)).await;
    assert!(duplicate.is_err(), "appkey must be unique in serviceapp");
    conn.exec_drop("DELETE FROM serviceapp WHERE appkey = ?", (&appkey,)).await?;
    conn.disconnect().await?;
    Ok(())
}
