//! The Rust twin of `tests/python/directory_peer.py`: the same Directory handler, the same sample
//! users and the same JSON form of a user, so probe and the Python peers expect the same answers
//! from each other. Change both sides together.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use probe::CallError;
use probe_tests::idl::interop::*;
use probe_tests::idl::shared::{Address, Level};
use serde_json::{Value, json};

/// What the handler saw: users put, ids touched, the appkeys of callers' TLS certificates.
#[derive(Debug, Default)]
pub struct Seen {
    pub users: HashMap<UserId, User>,
    pub touched: HashSet<UserId>,
    pub tls_appkeys: HashSet<String>,
}

/// Directory as the peers' `DirectoryHandler`: get answers stored users, then samples; count is
/// the number of distinct ids put or touched, so a oneway touch shows in the next count.
#[derive(Debug, Default)]
pub struct Handler {
    seen: Mutex<Seen>,
}

impl Handler {
    pub fn seen(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Base for Handler {
    /// A call that came with headers (THeader) gets them back in its reply, with `x-probe-saw`:
    /// what the context read.
    async fn ping(&self, msg: String) -> Result<String, CallError> {
        if let Some(cx) = probe::Context::current() {
            if let Some(appkey) = cx.tls_peer_appkey() {
                self.seen().tls_appkeys.insert(appkey.to_owned());
            }
            for (key, value) in cx.headers().iter() {
                cx.set_reply_header(Bytes::copy_from_slice(key), Bytes::copy_from_slice(value));
            }
            let saw = format!(
                "appkey={} service={} request_id={} priority={} deadline={} traceparent={} tracestate={}",
                cx.caller_appkey().unwrap_or("-"),
                cx.caller_service().unwrap_or("-"),
                cx.request_id().unwrap_or("-"),
                cx.priority().and_then(|p| p.name()).unwrap_or("-"),
                cx.deadline().is_some(),
                cx.traceparent().unwrap_or("-"),
                cx.tracestate().unwrap_or("-"),
            );
            cx.set_reply_header("x-probe-saw", saw);
        }
        Ok(format!("pong: {msg}"))
    }
}

impl Directory for Handler {
    async fn get(&self, id: UserId) -> Result<User, CallError<DirectoryGetException>> {
        match id {
            0 => Err(Invalid { reason: "id 0".into() }.into()),
            404 => Err(NotFound { message: "no such user".into(), id }.into()),
            500 => Err(probe::Error::handler("database down").into()),
            _ => Ok(self.seen().users.get(&id).cloned().unwrap_or_else(|| sample_user(id))),
        }
    }

    async fn put(&self, user: User) -> Result<(), CallError> {
        if user.name.is_empty() {
            return Err(probe::Error::handler("empty name").into());
        }
        self.seen().users.insert(user.id, user);
        Ok(())
    }

    async fn find(&self, prefix: String, limit: i32, contact: Contact) -> Result<Vec<User>, CallError> {
        let n = match contact {
            Contact::Phone(p) => i32::try_from(p).unwrap_or(i32::MAX),
            Contact::Email(e) => i32::try_from(e.chars().count()).unwrap_or(i32::MAX),
            Contact::Where(_) => 1,
        };
        Ok((0..limit.min(n)).map(|i| named(sample_user(i64::from(i)), format!("{prefix}{i}"))).collect())
    }

    async fn touch(&self, id: UserId) -> Result<(), CallError> {
        self.seen().touched.insert(id);
        Ok(())
    }

    async fn count(&self) -> Result<i32, CallError> {
        let seen = self.seen();
        let ids: HashSet<_> = seen.users.keys().chain(&seen.touched).collect();
        Ok(i32::try_from(ids.len()).unwrap_or(i32::MAX))
    }
}

pub use probe_tests::fixtures::{blank_user, sample_user};

pub fn named(user: User, name: String) -> User {
    User { name, ..user }
}

/// What clients put: other values than the sample's, extremes, an absent optional field, and a
/// `map<Point, string>` only when both sides can hold one (Apache's Python structs cannot be
/// dict keys).
pub fn put_user(with_points: bool) -> User {
    let points = [(Point { x: 0.25, y: -3.0 }, "p".to_owned()), (Point { x: 1.0, y: 2.0 }, "q".to_owned())];
    User {
        id: 3,
        name: "py3 \u{fc}\u{df} \u{2603}".into(),
        address: Some(Address { city: "Berlin".into(), street: None, zip: 10117 }),
        tags: vec!["x".into(), String::new(), "z".into()],
        lucky: [-1, 0, i32::MAX].into_iter().collect(),
        scores: [("a".to_owned(), -0.5), ("b".to_owned(), 1e100)].into_iter().collect(),
        level: Level::LOW,
        avatar: Some(Bytes::from_static(b"\xff\x00\x80")),
        active: false,
        nested: vec![
            HashMap::new(),
            [
                ("big".to_owned(), [i64::MIN, i64::MAX].into_iter().collect()),
                ("none".to_owned(), HashSet::new()),
            ]
            .into_iter()
            .collect(),
        ],
        parent: Some(Box::new(sample_user(8))),
        points: points.into_iter().filter(|_| with_points).collect(),
    }
}

/// A user as `user_json` in Python prints it: plain JSON, sets and maps sorted.
pub fn user_json(u: &User) -> Value {
    let mut lucky: Vec<_> = u.lucky.iter().copied().collect();
    lucky.sort_unstable();
    let scores: serde_json::Map<_, _> = u.scores.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    let nested: Vec<Value> = u
        .nested
        .iter()
        .map(|m| {
            let m: serde_json::Map<_, _> = m.iter().map(|(k, v)| (k.clone(), json!(sorted(v)))).collect();
            Value::Object(m)
        })
        .collect();
    let mut points: Vec<_> = u.points.iter().map(|(p, s)| (p.x, p.y, s.clone())).collect();
    points.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let points: Vec<Value> = points.into_iter().map(|(x, y, s)| json!([x, y, s])).collect();
    json!({
        "id": u.id,
        "name": u.name,
        "address": u.address.as_ref().map(|a| json!({"city": a.city, "street": a.street, "zip": a.zip})),
        "tags": u.tags,
        "lucky": lucky,
        "scores": scores,
        "level": u.level.0,
        "avatar": u.avatar.as_ref().map(|b| b.iter().map(|byte| format!("{byte:02x}")).collect::<String>()),
        "active": u.active,
        "nested": nested,
        "parent": u.parent.as_deref().map(user_json),
        "points": points,
    })
}

fn sorted(set: &HashSet<i64>) -> Vec<i64> {
    let mut v: Vec<_> = set.iter().copied().collect();
    v.sort_unstable();
    v
}
