//! Live updates: `GET /api/events?app=&env=` is a server-sent event stream with two events:
//!
//! - `changed` `{"app": "...", "generation": N}` when the registry nodes of the watched app change
//!   (a node registers, leaves, or an operator changes its weight or valid flag), driven by the
//!   registry's watch, so every console sees a change made by any console or the CLI at once;
//! - `tick` `{"at_ms": N}` every [`TICK`], so the page refreshes metrics, chart and audit log.
//!
//! A stream ends when the session it was opened with ends (logout or expiry) and when the console
//! shuts down. Browsers without `EventSource` poll the same endpoints instead.

use std::convert::Infallible;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use probe_runtime::registry::AppWatch;
use probe_runtime::registry::layout::check_appkey;
use serde::Deserialize;
use tokio::time::{Interval, MissedTickBehavior};

use super::api::EnvQuery;
use super::auth::{Caller, Via};
use super::error::ApiResult;
use super::state::ConsoleState;

/// How often a `tick` event is sent.
pub const TICK: Duration = Duration::from_secs(2);

/// `GET /api/events` query.
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    /// The app whose nodes to watch; only ticks without it.
    pub app: Option<String>,
    /// Its env; the console's env when absent.
    pub env: Option<String>,
}

struct Live {
    state: ConsoleState,
    app: String,
    watch: Option<AppWatch>,
    tick: Interval,
    session: Option<String>,
    stopped: Pin<Box<dyn Future<Output = ()> + Send>>,
}

/// `GET /api/events?app=&env=`: the event stream.
pub async fn events(
    State(state): State<ConsoleState>,
    caller: Caller,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let Query(query) = query?;
    let backends = EnvQuery { env: query.env }.backends(&state)?;
    let app = query.app.filter(|app| !app.is_empty()).unwrap_or_default();
    let watch = match app.as_str() {
        "" => None,
        app => {
            check_appkey(app)?;
            let mut watch = backends.registry.watch_app(backends.env, app).await?;
            watch.borrow_and_update();
            Some(watch)
        }
    };
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let session = match caller.via {
        Via::Session { id, .. } => Some(id),
        Via::Bearer => None,
    };
    let stopped = Box::pin(state.stopped());
    let live = Live { state, app, watch, tick, session, stopped };
    let stream = futures_util::stream::unfold(live, |live| async move {
        let (event, live) = next_event(live).await?;
        Some((Ok(event), live))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// The generation after the next change; `None` when the watch is gone. Never resolves without
/// a watch.
async fn next_change(watch: &mut Option<AppWatch>) -> Option<u64> {
    match watch {
        Some(watch) => {
            watch.changed().await.ok()?;
            Some(watch.borrow_and_update().generation)
        }
        None => std::future::pending().await,
    }
}

async fn next_event(mut live: Live) -> Option<(Event, Live)> {
    loop {
        tokio::select! {
            () = &mut live.stopped => return None,
            change = next_change(&mut live.watch) => match change {
                Some(generation) => {
                    let data = serde_json::json!({ "app": live.app, "generation": generation });
                    return Some((Event::default().event("changed").data(data.to_string()), live));
                }
                // The registry dropped the watch: go on with ticks, which refresh the page too.
                None => live.watch = None,
            },
            _ = live.tick.tick() => {
                if let Some(id) = &live.session {
                    if !live.state.sessions().is_live(id) {
                        return None;
                    }
                }
                let at_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
                let data = serde_json::json!({ "at_ms": at_ms });
                return Some((Event::default().event("tick").data(data.to_string()), live));
            }
        }
    }
}
