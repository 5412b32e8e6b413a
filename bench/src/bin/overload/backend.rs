//! The node under test: probe's server in front of a backend of fixed capacity, `workers` calls at
//! a time for `service` each (a tokio semaphore held across a sleep), like a database pool or a
//! thread pool behind an RPC handler. Calls past the capacity wait inside the handler, first come
//! first served, so latency grows with the queue; a call whose deadline passes while it waits is
//! dropped by the server (its wait is cancelled, it never uses a worker).
//!
//! tokio's timer rounds each sleep up to the next millisecond, so a worker is held about 3 ms for
//! a service of 2 ms, a little more or less with how the queue lines up with the timer: the
//! capacity is measured, not computed, and the served rate of a run may differ from it by a few %.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use probe::CallError;
use probe_runtime::limits::{GateStats, RequestLimits};
use probe_runtime::server::{Server, ServerHandle};
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;

use crate::idl::echo::{Echo, EchoClient, EchoServer};

/// What limits the node.
#[derive(Clone)]
pub enum Limiter {
    /// Nothing.
    None,
    /// The server's request limits on the `Echo` service.
    Limits(RequestLimits),
}

/// The backend's shape.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Calls served at once.
    pub workers: usize,
    /// How long each call holds its worker.
    pub service: Duration,
}

/// A backend of `workers` slots.
#[derive(Debug)]
struct Backend {
    slots: Arc<Semaphore>,
    service: Duration,
}

impl Echo for Backend {
    async fn echo(&self, payload: Bytes) -> Result<Bytes, CallError> {
        let _slot = self.slots.acquire().await.map_err(|_| probe::Error::handler("the backend is closed"))?;
        tokio::time::sleep(self.service).await;
        Ok(payload)
    }
}

/// A running node: its server, on a runtime of its own (the load's runtime stays apart, as a
/// separate process's would).
pub struct Node {
    runtime: Runtime,
    handle: Arc<ServerHandle>,
}

impl Node {
    /// Starts a server on a free loopback port, limited by `limiter`. Each connection may run
    /// any number of calls, so the queue is the backend's alone.
    pub fn start(runtime: Runtime, shape: Shape, limiter: Limiter) -> Result<Node> {
        let backend =
            Backend { slots: Arc::new(Semaphore::new(shape.workers.max(1))), service: shape.service };
        let mut builder = Server::builder().add_service(EchoServer::new(backend)).max_in_flight(1 << 20);
        if let Limiter::Limits(limits) = limiter {
            builder = builder.request_limits(EchoClient::SERVICE, limits);
        }
        let handle =
            runtime.block_on(builder.start("127.0.0.1:0")).context("cannot start the probe server")?;
        Ok(Node { runtime, handle: Arc::new(handle) })
    }

    /// Where the server listens.
    pub fn addr(&self) -> String {
        self.handle.local_addr().to_string()
    }

    /// A reader of the `Echo` service's gate (calls in flight, adaptive limit, refusals), for the
    /// load's sampler.
    pub fn gate(&self) -> impl Fn() -> Option<GateStats> + Send + Sync + 'static {
        let handle = self.handle.clone();
        move || {
            handle
                .request_limit_stats()
                .into_iter()
                .find(|s| s.service == EchoClient::SERVICE && s.method.is_none())
                .map(|s| s.stats)
        }
    }

    /// Stops the server; returns its runtime for the next node.
    pub fn stop(self) -> Result<Runtime> {
        let handle = Arc::try_unwrap(self.handle)
            .map_err(|_| anyhow::anyhow!("the server's handle is still shared after the load"))?;
        self.runtime.block_on(handle.shutdown()).context("the probe server did not stop cleanly")?;
        Ok(self.runtime)
    }
}
